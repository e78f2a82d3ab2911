package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/broker"
	"github.com/creek-pipeline/creek/internal/storetest"
)

// Ctrl-C after the broker has gone: a pipeline whose producer can no
// longer deliver stops within its drain timeout and the sink's flush
// (about 20 s), says what it could not deliver, and does not hang.
func TestRunStopsWhenTheBrokerIsGone(t *testing.T) {
	b, err := broker.Start(context.Background(), broker.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Settings: map[string]string{"group.initial.rebalance.delay.ms": "0"}})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	spec := filepath.Join(t.TempDir(), "copy.yaml")
	yaml := `pipelines:
  - name: gen
    input:
      generate:
        rate: 200
    output:
      kafka:
        brokers: ADDR
        topic: raw
  - name: copy
    input:
      kafka:
        brokers: ADDR
        topic: raw
        group: copier
    output:
      kafka:
        brokers: ADDR
        topic: copied
`
	if err := os.WriteFile(spec, []byte(strings.ReplaceAll(yaml, "ADDR", addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(creekBin, "run", spec)
	cmd.Env = withoutXToken(os.Environ())
	var stderr storetest.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })

	// Both pipelines are moving records before the broker goes.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("copied"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	fs := cl.PollRecords(ctx, 1)
	cancel()
	cl.Close()
	if fs.Empty() {
		t.Fatalf("no record reached the copied topic within 30 s; stderr:\n%s", stderr.String())
	}
	b.Close()
	time.Sleep(2 * time.Second) // the producers now have records they cannot deliver
	start := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
		t.Logf("stopped %s after Ctrl-C", time.Since(start).Round(time.Second))
	case <-time.After(60 * time.Second):
		cmd.Process.Signal(syscall.SIGQUIT)
		time.Sleep(time.Second)
		t.Fatalf("creek run still running 60 s after Ctrl-C with its broker gone; stderr:\n%s", tail(stderr.String(), 80))
	}
	if !strings.Contains(stderr.String(), "could not deliver") {
		t.Fatalf("creek run did not say what it could not deliver; stderr:\n%s", tail(stderr.String(), 30))
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
