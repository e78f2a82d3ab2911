package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creek-pipeline/creek/internal/s3test"
	"github.com/creek-pipeline/creek/internal/storetest"
)

// quickstartCommands returns the shell commands of a quickstart page's
// ```sh blocks, comments stripped, in order.
func quickstartCommands(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	inSh := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```sh"):
			inSh = true
		case strings.HasPrefix(line, "```"):
			inSh = false
		case inSh && strings.TrimSpace(line) != "":
			if i := strings.Index(line, " #"); i >= 0 && !strings.Contains(line[:i], "'") {
				line = line[:i]
			}
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

// TestQuickstartCommands runs every command of docs/quickstart.md, as a
// reader would, against `creek up` in an empty folder, and checks what the
// page says they show. The Korean page must list the same commands.
func TestQuickstartCommands(t *testing.T) {
	english := quickstartCommands(t, "../../docs/quickstart.md")
	korean := quickstartCommands(t, "../../docs/quickstart.ko.md")
	normalize := func(cmds []string) []string {
		var out []string
		for _, c := range cmds {
			if !strings.HasPrefix(c, "git clone") { // the clone names the repository in each language
				out = append(out, c)
			}
		}
		return out
	}
	if !slices.Equal(normalize(english), normalize(korean)) {
		t.Fatalf("quickstart.ko.md and quickstart.md list different commands:\n%q\n%q", normalize(korean), normalize(english))
	}

	dir := t.TempDir()
	// The S3 steps run against versitygw in the seed's region, standing in
	// for the EC2 server's bucket: credentials and the endpoint come from
	// the environment, as an instance role's would.
	var s3env []string
	isS3 := func(c string) bool { return strings.Contains(c, " s3 ") || strings.Contains(c, "--to s3") }
	_, noS3 := s3test.Binary()
	if noS3 != nil {
		t.Logf("skipping the S3 steps: %v", noS3)
	} else if slices.ContainsFunc(english, isS3) {
		srv := s3test.StartRegion(t, "ap-northeast-2")
		s3env = append(srv.Env(), "AWS_ENDPOINT_URL_S3="+srv.Endpoint)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("the bucket held %v", srv.Keys(t, "hg-myclass", ""))
			}
		})
	}
	// The PostgreSQL steps run against the test's own server, in place of
	// the reader's CREEK_PG_URL.
	isPG := func(c string) bool { return strings.Contains(c, "--to postgres") || strings.HasPrefix(c, "psql ") }
	pgURL := ""
	if slices.ContainsFunc(english, isPG) {
		pg, skip := storetest.PostgreSQLIfInstalled(t)
		if skip != "" {
			t.Logf("skipping the PostgreSQL steps: %s", skip)
		} else {
			pgURL = pg.URL
		}
	}
	_, noPsql := exec.LookPath("psql")
	exported := map[string]string{} // a page's `export NAME=value` holds for the commands after it
	port := freePort(t)
	addr := "127.0.0.1:" + port
	up := startUp(t, dir, port, "--rate", "50")
	up.waitTweets(t, 20)

	// run executes one documented command: `go run ./cmd/creek` is the
	// built binary, localhost:9092 the test's broker.
	run := func(ctx context.Context, command string) *exec.Cmd {
		command = strings.ReplaceAll(command, "go run ./cmd/creek", creekBin)
		command = strings.ReplaceAll(command, "localhost:9092", addr)
		cmd := exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", command)
		cmd.Dir = dir
		env := withoutXToken(os.Environ())
		if s3env != nil {
			env = withoutXToken(s3env)
		}
		cmd.Env = append(env, "CREEK_BROKERS="+addr)
		for k, v := range exported {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		return cmd
	}
	_, haveKcat := exec.LookPath("kcat")
	checked := 0
	for _, c := range english {
		switch {
		case strings.HasPrefix(c, "git clone"), strings.HasSuffix(c, "creek up"):
			continue // the test is the clone, and `creek up` is running
		case strings.Contains(c, "X_BEARER_TOKEN="):
			continue // needs a real X account
		case isS3(c) && noS3 != nil, isPG(c) && pgURL == "":
			continue
		case strings.HasPrefix(c, "psql ") && noPsql != nil:
			t.Logf("psql not installed; skipping %q (make test installs it)", c)
			continue
		case strings.HasPrefix(c, "export "):
			k, v, _ := strings.Cut(strings.TrimPrefix(c, "export "), "=")
			if k == "CREEK_PG_URL" && pgURL != "" {
				v = pgURL
			}
			exported[k] = v
			continue
		case strings.HasPrefix(c, "kcat") && haveKcat != nil:
			t.Logf("kcat not installed; skipping %q (make test installs it)", c)
			continue
		}
		checked++
		t.Run(c, func(t *testing.T) {
			if strings.Contains(c, " consume ") && !strings.Contains(c, "--count") {
				checkResumingConsumer(t, c, run)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := run(ctx, c).CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			checkDocumentedOutput(t, c, string(out), run)
		})
	}
	if checked < 8 {
		t.Fatalf("only %d commands checked; has the quickstart lost its code blocks?", checked)
	}
	up.stop(t)
}

// checkDocumentedOutput checks what the quickstart says a command shows.
func checkDocumentedOutput(t *testing.T, command, out string, run func(context.Context, string) *exec.Cmd) {
	t.Helper()
	want := map[string][]string{
		"-L":                {"tweets"},
		"-o beginning":      {`"data"`, "\n9 "},
		"groups list":       {"creek-console", "analytics"},
		"groups describe":   {"analytics", "tweets", "LAG"},
		"topics create":     {"waterfall"},
		"topics describe":   {"waterfall", "retention.bytes"},
		"produce --topic w": {},
		"s3 mb":             {"make_bucket: hg-myclass"},
		"s3 sync":           {},
		"--to s3":           {},
		"s3 ls s3://":       {"tweets+0+00000000000000000000.json.gz"},
		"group by lang":     {"lang", "count", "ko"},
		"any(hashtags)":     {"username", "(5 rows)"},
	}
	for k, words := range want {
		if !strings.Contains(command, k) {
			continue
		}
		for _, w := range words {
			if !strings.Contains(out, w) {
				t.Fatalf("output lacks %q:\n%s", w, out)
			}
		}
	}
	if strings.Contains(command, "topics describe waterfall") {
		checkWaterfall(t, command, run)
	}
}

// checkWaterfall: with retention.bytes at 1 MiB the earliest offset has moved
// and the partition stays near 1 MiB on disk.
func checkWaterfall(t *testing.T, command string, run func(context.Context, string) *exec.Cmd) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second) // retention also runs every 30 s
	for {
		var topics []struct {
			Partitions []struct {
				Earliest int64 `json:"earliest"`
				Latest   int64 `json:"latest"`
				Bytes    int64 `json:"size_bytes"`
			} `json:"partitions"`
		}
		out, err := run(context.Background(), command+" --output json").Output()
		if err != nil {
			t.Fatalf("%s --output json: %v", command, err)
		}
		if err := json.Unmarshal(out, &topics); err != nil || len(topics) != 1 || len(topics[0].Partitions) == 0 {
			t.Fatalf("topics describe --output json: %v\n%s", err, out)
		}
		moved, bounded := true, true
		for _, p := range topics[0].Partitions {
			moved = moved && (p.Earliest > 0 || p.Latest == 0)
			bounded = bounded && p.Bytes <= 2<<20
		}
		if moved && bounded {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention did not move the earliest offset or bound the size:\n%s", out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// checkResumingConsumer runs a consumer that does not end on its own: it
// shows tweets, stops cleanly on Ctrl-C, and a second run continues after
// the last tweet the first one showed.
func checkResumingConsumer(t *testing.T, command string, run func(context.Context, string) *exec.Cmd) {
	t.Helper()
	offsetsOf := func(n int) []int64 {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := run(ctx, "exec "+command) // exec: the signal reaches creek, not bash
		stdout, _ := cmd.StdoutPipe()
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var offsets []int64
		sc := bufio.NewScanner(stdout)
		line := regexp.MustCompile(`tweets/(\d+)@(\d+)$`)
		for sc.Scan() {
			if m := line.FindStringSubmatch(sc.Text()); m != nil && m[1] == "0" {
				o, _ := strconv.ParseInt(m[2], 10, 64)
				offsets = append(offsets, o)
				if len(offsets) == n {
					cmd.Process.Signal(syscall.SIGINT)
				}
			}
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("after Ctrl-C: %v\n%s", err, stderr.String())
		}
		if len(offsets) < n {
			t.Fatalf("showed %d tweets, want at least %d\n%s", len(offsets), n, stderr.String())
		}
		return offsets
	}
	first := offsetsOf(10)
	if first[0] != 0 {
		t.Fatalf("--from-beginning started at offset %d", first[0])
	}
	second := offsetsOf(3)
	if want := first[len(first)-1] + 1; second[0] != want {
		t.Fatalf("the second run started at offset %d, want %d (after the last one shown)", second[0], want)
	}
}
