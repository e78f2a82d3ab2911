package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/broker"
)

// creek runs the built binary with stdin and returns stdout, stderr.
func creek(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, creekBin, args...)
	cmd.Env = withoutXToken(os.Environ())
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("creek %s did not finish within 30 s; stderr:\n%s", strings.Join(args, " "), errOut.String())
	}
	return out.String(), errOut.String(), err
}

func mustRun(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := creek(t, stdin, args...)
	if err != nil {
		t.Fatalf("creek %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// The producer and the consumer of the seed, from the command line:
// produce lines from stdin, read them back kcat-style, a group that
// resumes, and a YAML pipeline.
func TestProduceConsumeRunCLI(t *testing.T) {
	b, err := broker.Start(context.Background(), broker.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Settings: map[string]string{"group.initial.rebalance.delay.ms": "0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	addr := b.Addr()

	mustRun(t, "k1:안녕하세요\nk2:hello\n", "produce", "--brokers", addr, "--topic", "notes", "--from", "stdin", "--key-separator", ":")
	out := mustRun(t, "", "consume", "--brokers", addr, "--topic", "notes", "--from-beginning", "--count", "2", "--format", `%k=%s\n`)
	if out != "k1=안녕하세요\nk2=hello\n" {
		t.Fatalf("consume printed %q", out)
	}

	// A group remembers its position between runs.
	out = mustRun(t, "", "consume", "--brokers", addr, "--topic", "notes", "--group", "readers", "--from-beginning", "--count", "2", "--format", `%s\n`)
	if out != "안녕하세요\nhello\n" {
		t.Fatalf("the group's first run printed %q", out)
	}
	mustRun(t, "third\n", "produce", "--brokers", addr, "--topic", "notes", "--from", "stdin")
	out = mustRun(t, "", "consume", "--brokers", addr, "--topic", "notes", "--group", "readers", "--from-beginning", "--count", "1", "--format", `%s\n`)
	if out != "third\n" {
		t.Fatalf("the group's second run printed %q, want only the new record", out)
	}

	// creek run: a generate → kafka pipeline from YAML.
	yaml := filepath.Join(t.TempDir(), "pipeline.yaml")
	os.WriteFile(yaml, []byte(`
input:
  generate:
    rate: 0
    count: 50
output:
  kafka:
    brokers: `+addr+`
    topic: generated
`), 0o644)
	mustRun(t, "", "run", yaml)
	cl, _ := kgo.NewClient(kgo.SeedBrokers(addr))
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), "generated")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != 50 {
		t.Fatalf("creek run wrote %d records, want 50", total)
	}

	// Help and mistakes.
	help := mustRun(t, "", "consume", "--help")
	if !strings.Contains(help, "Without --group") && !strings.Contains(help, "without --group") {
		t.Fatalf("consume --help does not say what happens without --group:\n%s", help)
	}
	_, errOut, err := creek(t, "", "consume", "--brokers", addr, "--topic", "notes", "--format", "%q")
	if err == nil || !strings.Contains(errOut, "%q") {
		t.Fatalf("a bad --format: %v\n%s", err, errOut)
	}
	_, errOut, err = creek(t, "", "produce", "--brokers", addr, "--topic", "notes", "--from", "carrier-pigeon")
	if err == nil || !strings.Contains(errOut, "carrier-pigeon") || !strings.Contains(errOut, "stdin") {
		t.Fatalf("an unknown --from: %v\n%s", err, errOut)
	}
	_, errOut, err = creek(t, "", "consume", "--brokers", addr, "--topik", "notes")
	if err == nil || !strings.Contains(errOut, "--topik") {
		t.Fatalf("an unknown flag: %v\n%s", err, errOut)
	}
}
