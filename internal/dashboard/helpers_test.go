package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/broker"
	"github.com/creek-pipeline/creek/internal/metrics"
	"github.com/creek-pipeline/creek/internal/pipeline"
	_ "github.com/creek-pipeline/creek/internal/sink/file"
	_ "github.com/creek-pipeline/creek/internal/sink/kafka"
	_ "github.com/creek-pipeline/creek/internal/source/generate"
	_ "github.com/creek-pipeline/creek/internal/source/kafka"
)

// stack is what a dashboard test runs against: a real broker on loopback,
// a generator pipeline producing tweets to "tweets", a consumer pipeline in
// the group "readers" writing them to a file, and the dashboard served on
// 127.0.0.1:0.
type stack struct {
	broker *broker.Broker
	srv    *Server
	url    string
	http   *httptest.Server
	// stopPipelines stops the generator and the consumer (and waits).
	stopPipelines func()
}

type stackOptions struct {
	rate  int
	admin bool
	auth  Auth
}

func startStack(t testing.TB, o stackOptions) *stack {
	t.Helper()
	reg := metrics.NewRegistry()
	b, err := broker.Start(context.Background(), broker.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Metrics: reg,
		Settings: map[string]string{"group.initial.rebalance.delay.ms": "0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 2, -1, nil, "tweets"); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	if o.rate == 0 {
		o.rate = 40
	}
	gen, err := pipeline.NewSpec("collector", "generate", map[string][]string{"rate": {strconv.Itoa(o.rate)}, "seed": {"7"}},
		"kafka", map[string][]string{"brokers": {b.Addr()}, "topic": {"tweets"}})
	if err != nil {
		t.Fatal(err)
	}
	read, err := pipeline.NewSpec("archive", "kafka", map[string][]string{"brokers": {b.Addr()}, "topic": {"tweets"}, "group": {"readers"}, "from-beginning": {"true"}},
		"file", map[string][]string{"path": {filepath.Join(t.TempDir(), "tweets.jsonl")}})
	if err != nil {
		t.Fatal(err)
	}
	pm := metrics.NewPipelines()
	reg.MustRegister(pm)
	var shown []Pipeline
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for _, spec := range []*pipeline.Spec{gen, read} {
		p, err := spec.Build(pipeline.Env{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		pm.Add(p, spec.Source.Name, spec.Sink.Name)
		d := Pipeline{Name: spec.Name, Source: spec.Source.Name, Sink: spec.Sink.Name, Stats: p.Stats}
		if spec.Source.Name == "kafka" {
			d.Reads, d.Group = "tweets", "readers"
		} else {
			d.Writes = "tweets"
		}
		shown = append(shown, d)
		go func() { p.Run(ctx); done <- struct{}{} }()
	}
	var once sync.Once
	stopPipelines := func() { once.Do(func() { cancel(); <-done; <-done }) }
	t.Cleanup(stopPipelines)
	srv, err := New(Config{Brokers: []string{b.Addr()}, Registry: reg, Topic: "tweets", Pipelines: shown, Admin: o.admin, Auth: o.auth,
		Interval: 300 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return &stack{broker: b, srv: srv, url: hs.URL, http: hs, stopPipelines: stopPipelines}
}

// get decodes a JSON answer of the API, failing the test on an error status.
func get[T any](t testing.TB, url string) T {
	t.Helper()
	var v T
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
	return v
}

// waitFor polls cond for up to 20 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sseRecords reads n record events from the live stream.
func sseRecords(t testing.TB, url string, n int) []Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("live stream Content-Type %q", ct)
	}
	var out []Record
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	event := ""
	for len(out) < n && sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "record":
			var r Record
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &r); err != nil {
				t.Fatalf("record event %q: %v", line, err)
			}
			out = append(out, r)
		}
	}
	if len(out) < n {
		t.Fatalf("live stream gave %d records, want %d (%v)", len(out), n, sc.Err())
	}
	return out
}
