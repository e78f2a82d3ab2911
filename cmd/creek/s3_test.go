package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creek-pipeline/creek/internal/s3test"
)

// writeTree writes files (path -> content) below dir, dated an hour ago so
// that uploads are newer than the files whatever the clock's second.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(full, old, old); err != nil {
			t.Fatal(err)
		}
	}
}

// actionLines are the lines of a sync's output that say what it did, in
// order, with the bucket's and the folders' names made the same for both
// tools (aws cli reports in completion order, creek too).
func actionLines(out string, replace ...string) []string {
	var lines []string
	for _, l := range strings.FieldsFunc(out, func(r rune) bool { return r == '\n' || r == '\r' }) {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "Completed ") {
			continue
		}
		for i := 0; i+1 < len(replace); i += 2 {
			l = strings.ReplaceAll(l, replace[i], replace[i+1])
		}
		lines = append(lines, l)
	}
	sort.Strings(lines)
	return lines
}

// creek s3 sync against aws s3 sync (Debian's awscli) on the same tree:
// excludes and includes, nested folders, a second run that copies nothing,
// a changed file, a newer file of the same size, a deleted file with
// --delete, --dryrun, and back down to local folders. The same lines and the
// same keys in the bucket.
func TestS3SyncMatchesAWSCLI(t *testing.T) {
	awsCLI, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("aws cli is not installed (scripts/test-deps.sh installs Debian's awscli); the comparison needs it")
	}
	srv := s3test.Start(t)
	srv.SetEnv(t)
	work := t.TempDir()
	tree := filepath.Join(work, "tree")
	writeTree(t, tree, map[string]string{
		"a.txt": "alpha", "log.tmp": "scratch", "sub/b.txt": "bravo", "sub/deep/c.log": "charlie", "sub/[x].txt": "brackets",
		".git/config": "[core]", ".git/objects/ab/cdef": "blob", "sub/.git/HEAD": "ref", "한글 파일.txt": "한글",
	})
	t.Chdir(tree)
	mustCreek(t, "s3", "mb", "s3://creek-side", "--endpoint-url", srv.Endpoint)
	aws := func(args ...string) string {
		t.Helper()
		if len(args) > 1 && (args[1] == "sync" || args[1] == "cp") {
			args = append(args, "--no-progress")
		}
		cmd := exec.Command(awsCLI, append([]string{"--endpoint-url", srv.Endpoint}, args...)...)
		cmd.Env = srv.Env()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	aws("s3", "mb", "s3://aws-side")
	both := func(args ...string) {
		t.Helper()
		var creekArgs, awsArgs []string
		for _, a := range args {
			creekArgs = append(creekArgs, strings.ReplaceAll(a, "BUCKET", "creek-side"))
			awsArgs = append(awsArgs, strings.ReplaceAll(strings.ReplaceAll(a, "BUCKET", "aws-side"), "down-creek", "down-aws"))
		}
		got := actionLines(mustCreek(t, append([]string{"s3", "--endpoint-url", srv.Endpoint}, creekArgs...)...), "creek-side", "BUCKET", "down-creek", "DOWN")
		want := actionLines(aws(append([]string{"s3"}, awsArgs...)...), "aws-side", "BUCKET", "down-aws", "DOWN")
		if !slices.Equal(got, want) {
			t.Fatalf("%s:\ncreek s3:\n  %s\naws s3:\n  %s", strings.Join(args, " "), strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		ck, ak := srv.Keys(t, "creek-side", ""), srv.Keys(t, "aws-side", "")
		if len(ck) != len(ak) {
			t.Fatalf("%s: creek's bucket holds %v, aws cli's %v", strings.Join(args, " "), ck, ak)
		}
		for k, size := range ak {
			if ck[k] != size {
				t.Fatalf("%s: %s is %d bytes in aws cli's bucket, %d in creek's (%v)", strings.Join(args, " "), k, size, ck[k], ck)
			}
		}
	}
	// The seed's line, with one more exclude.
	both("sync", ".", "s3://BUCKET", "--exclude", ".git/*", "--exclude", "*.tmp")
	if n := len(srv.Keys(t, "creek-side", "")); n != 6 {
		t.Fatalf("%d objects after the first sync, want 6: %v", n, srv.Keys(t, "creek-side", ""))
	}
	both("sync", ".", "s3://BUCKET", "--exclude", ".git/*", "--exclude", "*.tmp") // nothing to do
	// A changed file, a same-sized file made newer, a new file, a deleted one.
	writeTree(t, tree, map[string]string{"sub/b.txt": "bravo, longer now", "new.txt": "new"})
	future := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(tree, "sub/deep/c.log"), future, future)
	os.Remove(filepath.Join(tree, "a.txt"))
	both("sync", ".", "s3://BUCKET", "--exclude", ".git/*", "--exclude", "*.tmp", "--delete", "--dryrun")
	both("sync", ".", "s3://BUCKET", "--exclude", ".git/*", "--exclude", "*.tmp", "--delete")
	// Filters apply to deletion too: excluded objects stay.
	both("sync", ".", "s3://BUCKET", "--exclude", "*", "--include", "*.txt", "--delete")
	both("sync", ".", "s3://BUCKET/only-logs", "--exclude", "*", "--include", "*.log", "--include", "sub/*/[!x]*", "--size-only")
	// Down again, twice (the second copies nothing), and --exact-timestamps.
	t.Chdir(work)
	both("sync", "s3://BUCKET", "down-creek")
	both("sync", "s3://BUCKET", "down-creek")
	os.Chtimes(filepath.Join(work, "down-creek", "new.txt"), future, future)
	os.Chtimes(filepath.Join(work, "down-aws", "new.txt"), future, future)
	both("sync", "s3://BUCKET", "down-creek", "--exclude", "sub/*") // the local copy is newer: downloaded again
	past := time.Now().Add(-3 * time.Hour)
	os.Chtimes(filepath.Join(work, "down-creek", "sub", "b.txt"), past, past)
	os.Chtimes(filepath.Join(work, "down-aws", "sub", "b.txt"), past, past)
	both("sync", "s3://BUCKET", "down-creek", "--exact-timestamps")
	os.Remove(filepath.Join(work, "tree", "sub", "b.txt"))
	both("sync", "s3://BUCKET/sub", "down-creek/sub", "--delete", "--dryrun")

	// ls shows what aws cli shows.
	for _, args := range [][]string{{"ls", "s3://BUCKET"}, {"ls", "s3://BUCKET/sub/"}, {"ls", "s3://BUCKET/su"}, {"ls", "s3://BUCKET", "--recursive"}} {
		var c, a []string
		for _, x := range args {
			c = append(c, strings.ReplaceAll(x, "BUCKET", "creek-side"))
			a = append(a, strings.ReplaceAll(x, "BUCKET", "aws-side"))
		}
		got := mustCreek(t, append([]string{"s3", "--endpoint-url", srv.Endpoint}, c...)...)
		want := aws(append([]string{"s3"}, a...)...)
		// Same names, sizes and layout; the times are each bucket's own.
		strip := func(s string) string {
			var out []string
			for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
				if len(l) > 19 && l[4] == '-' {
					l = "YYYY-MM-DD HH:MM:SS" + l[19:]
				}
				out = append(out, l)
			}
			return strings.Join(out, "\n")
		}
		if strip(got) != strip(want) {
			t.Fatalf("%s:\ncreek:\n%s\naws:\n%s", strings.Join(args, " "), got, want)
		}
	}
}

// cp of single files both ways and through standard output.
func TestS3Copy(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	dir := t.TempDir()
	t.Chdir(dir)
	writeTree(t, dir, map[string]string{"report.csv": "a,b\n1,2\n"})
	s3 := func(args ...string) string {
		return mustCreek(t, append([]string{"s3", "--endpoint-url", srv.Endpoint}, args...)...)
	}
	if out := s3("mb", "s3://copies"); out != "make_bucket: copies\n" {
		t.Fatalf("mb printed %q", out)
	}
	if out := s3("cp", "report.csv", "s3://copies/in/"); out != "upload: report.csv to s3://copies/in/report.csv\n" {
		t.Fatalf("cp up printed %q", out)
	}
	if out := s3("cp", "s3://copies/in/report.csv", "-"); out != "a,b\n1,2\n" {
		t.Fatalf("cp to stdout printed %q", out)
	}
	os.Mkdir("back", 0o755)
	s3("cp", "s3://copies/in/report.csv", "back")
	if b, _ := os.ReadFile(filepath.Join("back", "report.csv")); string(b) != "a,b\n1,2\n" {
		t.Fatalf("downloaded %q", b)
	}
	s3("cp", "s3://copies/in/report.csv", "s3://copies/other/")
	if _, ok := srv.Keys(t, "copies", "")["other/report.csv"]; !ok {
		t.Fatalf("no copy: %v", srv.Keys(t, "copies", ""))
	}
	_, _, err := runCreek(t, "s3", "--endpoint-url", srv.Endpoint, "ls", "s3://missing-bucket")
	if err == nil || !strings.Contains(err.Error(), "bucket s3://missing-bucket at "+srv.Endpoint+" does not exist") {
		t.Fatalf("ls of a missing bucket: %v", err)
	}
}

// On EC2 with an instance role, nothing is configured: no keys in the
// environment, and the credentials come from the instance metadata service
// through IMDSv2 (a session token first, then the role's keys). A local
// stand-in for the metadata service serves the role's keys (with an empty
// session token: versitygw refuses tokens it did not issue).
func TestS3InstanceRoleCredentials(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	srv.MakeBucket(t, "role-bucket")
	var mu sync.Mutex
	var seen []string
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		mu.Unlock()
		if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
			if r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds") == "" {
				http.Error(w, "no ttl", http.StatusBadRequest)
				return
			}
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"))
			fmt.Fprint(w, "imds-session-token")
			return
		}
		if r.Header.Get("X-Aws-Ec2-Metadata-Token") != "imds-session-token" {
			http.Error(w, "IMDSv2 needs the session token", http.StatusUnauthorized)
			return
		}
		switch {
		case strings.HasSuffix(r.URL.Path, "/security-credentials/") || strings.HasSuffix(r.URL.Path, "/security-credentials-extended/"):
			fmt.Fprint(w, "EC2Admin")
		case strings.HasSuffix(r.URL.Path, "/EC2Admin"):
			json.NewEncoder(w).Encode(map[string]string{"Code": "Success", "Type": "AWS-HMAC", "LastUpdated": time.Now().UTC().Format(time.RFC3339),
				"AccessKeyId": srv.AccessKey, "SecretAccessKey": srv.SecretKey, "Token": "", "Expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
		default:
			http.NotFound(w, r)
		}
	}))
	defer imds.Close()
	os.Unsetenv("AWS_ACCESS_KEY_ID")
	os.Unsetenv("AWS_SECRET_ACCESS_KEY")
	os.Unsetenv("AWS_EC2_METADATA_DISABLED")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL+"/")
	dir := t.TempDir()
	t.Chdir(dir)
	writeTree(t, dir, map[string]string{"logs/app.log": "started"})
	out, stderr, err := runCreek(t, "s3", "--endpoint-url", srv.Endpoint, "sync", ".", "s3://role-bucket")
	if err != nil {
		mu.Lock()
		t.Fatalf("sync with the instance role: %v\n%s\nthe metadata service saw %v", err, stderr, seen)
	}
	if !strings.Contains(out, "upload: logs/app.log to s3://role-bucket/logs/app.log") {
		t.Fatalf("sync with the instance role printed %q", out)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(seen, "PUT /latest/api/token") || !slices.ContainsFunc(seen, func(s string) bool { return strings.HasSuffix(s, "/EC2Admin") }) {
		t.Fatalf("the metadata service saw %v; want an IMDSv2 token and the role's credentials asked for", seen)
	}
}
