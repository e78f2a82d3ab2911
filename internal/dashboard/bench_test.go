package dashboard

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/broker"
	"github.com/creek-pipeline/creek/internal/pipeline"
)

// Benchmarks print figures; they never fail on speed.
//
//	go test -run '^$' -bench PageLoad ./internal/dashboard/
//	go test -run '^$' -bench PipelineWithDashboard -benchtime 3x ./internal/dashboard/

// BenchmarkPageLoad opens the overview, topics and groups pages in
// headless Chromium against a cluster of 1,000 topics and 100 groups and
// reports the time from navigation to the page's data shown.
func BenchmarkPageLoad(b *testing.B) {
	const topics, groups = 1000, 100
	br := newBrowser(b)
	bk, err := broker.Start(context.Background(), broker.Config{Listen: "127.0.0.1:0", DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer bk.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bk.Addr()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	var names []string
	for i := range topics {
		names = append(names, fmt.Sprintf("topic-%04d", i))
	}
	if _, err := adm.CreateTopics(ctx, 1, -1, nil, names...); err != nil {
		b.Fatal(err)
	}
	for i := range groups {
		offs := kadm.Offsets{}
		for j := range 5 {
			offs.Add(kadm.Offset{Topic: names[(i*7+j)%topics], Partition: 0, At: 0, LeaderEpoch: -1})
		}
		if err := adm.CommitAllOffsets(ctx, fmt.Sprintf("group-%03d", i), offs); err != nil {
			b.Fatal(err)
		}
	}
	srv, err := New(Config{Brokers: []string{bk.Addr()}, NoAnalytics: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	srv.Start()
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	waitFor(b, "the view to read every topic and group", func() bool {
		// __consumer_offsets is listed too, now that groups have committed.
		s := srv.View().Snapshot()
		return len(s.Topics) == topics+1 && len(s.Groups) == groups
	})
	b.Logf("one refresh of the cluster view took %v", srv.View().Snapshot().Took)
	for _, page := range []struct{ name, hash, ready string }{
		{"overview", "#/", `document.querySelectorAll("svg.diagram g.node").length > 0`},
		{"topics", "#/topics", `document.querySelectorAll("#list tr").length > 1 && document.getElementById("count").textContent.includes("1000 topics")`},
		{"groups", "#/groups", fmt.Sprintf(`document.querySelectorAll("#list tr").length === %d`, groups+1)},
		{"topic", "#/topics/topic-0007", `document.getElementById("configs").innerText.includes("retention.bytes")`},
	} {
		b.Run(page.name, func(b *testing.B) {
			var total float64
			for range b.N {
				if err := chromedp.Do(br.ctx, chromedp.Navigate("about:blank")); err != nil {
					b.Fatal(err)
				}
				if err := chromedp.Do(br.ctx, chromedp.Navigate(hs.URL+"/"+page.hash)); err != nil {
					b.Fatal(err)
				}
				// performance.now() counts from the navigation's start: the
				// figure is the time until the page shows its data.
				ms, err := pollPage(br, `(`+page.ready+`) ? performance.now() : false`)
				if err != nil {
					b.Fatalf("%s: %v", page.name, err)
				}
				total += ms
				if testing.Verbose() {
					t, _ := chromedp.Run(br.ctx, chromedp.Evaluate[string](`JSON.stringify(performance.getEntries().map(e => [e.name.slice(-40), Math.round(e.startTime), Math.round(e.duration)]))`))
					b.Logf("%s: %.0f ms; %s", page.name, ms, t)
				}
			}
			b.ReportMetric(total/float64(b.N), "ms/load")
		})
	}
	if errs := br.jsErrors(); len(errs) > 0 {
		b.Fatalf("JavaScript errors: %v", errs)
	}
	for _, path := range []string{"/api/topics", "/api/groups", "/api/overview"} {
		began := time.Now()
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		b.Logf("GET %s: %d bytes in %v", path, n, time.Since(began))
	}
}

// pollPage waits (checking on every animation frame) for expr to give a
// number; a poll that started while the page was still being replaced is
// tried again.
func pollPage(br *browser, expr string) (float64, error) {
	var err error
	for range 3 {
		ctx, cancel := context.WithTimeout(br.ctx, 20*time.Second)
		var ms float64
		ms, err = chromedp.Run(ctx, chromedp.Poll[float64](expr))
		cancel()
		if err == nil {
			return ms, nil
		}
	}
	text, _ := chromedp.Run(br.ctx, chromedp.Evaluate[string](`document.body.innerText.slice(0, 1500)`))
	return 0, fmt.Errorf("%w; the page shows:\n%s", err, text)
}

// BenchmarkPipelineWithDashboard runs a generator → Kafka → file pipeline
// of 200,000 tweets alone, and again while the dashboard reads the same
// topic (its analytics group, a live page's stream, the cluster view every
// second), and reports the pipeline's records/s in each case.
func BenchmarkPipelineWithDashboard(b *testing.B) {
	const events = 200_000
	// Alone and watched alternate, so a machine busy with other work
	// slows both alike.
	var alone, watched time.Duration
	for range b.N {
		alone += runPipelineOnce(b, events, false)
		watched += runPipelineOnce(b, events, true)
	}
	n := float64(events) * float64(b.N)
	b.ReportMetric(n/alone.Seconds(), "alone-records/s")
	b.ReportMetric(n/watched.Seconds(), "watched-records/s")
	b.ReportMetric(watched.Seconds()/alone.Seconds(), "watched/alone-time")
}

func runPipelineOnce(b *testing.B, events int, watched bool) time.Duration {
	b.StopTimer()
	defer b.StartTimer()
	bk, err := broker.Start(context.Background(), broker.Config{Listen: "127.0.0.1:0", DataDir: b.TempDir(), Settings: map[string]string{"group.initial.rebalance.delay.ms": "0"}})
	if err != nil {
		b.Fatal(err)
	}
	defer bk.Close()
	cl, _ := kgo.NewClient(kgo.SeedBrokers(bk.Addr()))
	kadm.NewClient(cl).CreateTopic(context.Background(), 2, -1, nil, "tweets")
	cl.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if watched {
		srv, err := New(Config{Brokers: []string{bk.Addr()}, Topic: "tweets", Interval: time.Second, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		srv.Start()
		defer srv.Close()
		hs := httptest.NewServer(srv.Handler())
		defer hs.Close()
		lctx, stop := context.WithCancel(context.Background())
		defer stop()
		req, _ := http.NewRequestWithContext(lctx, "GET", hs.URL+"/api/live?topic=tweets", nil)
		go func() {
			if resp, err := http.DefaultClient.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	gen, _ := pipeline.NewSpec("collector", "generate", map[string][]string{"rate": {"0"}, "count": {strconv.Itoa(events)}, "seed": {"1"}},
		"kafka", map[string][]string{"brokers": {bk.Addr()}, "topic": {"tweets"}})
	read, _ := pipeline.NewSpec("archive", "kafka", map[string][]string{"brokers": {bk.Addr()}, "topic": {"tweets"}, "group": {"archive"},
		"from-beginning": {"true"}, "count": {strconv.Itoa(events)}}, "file", map[string][]string{"path": {filepath.Join(b.TempDir(), "out.jsonl")}})
	var pipes []*pipeline.Pipeline
	for _, s := range []*pipeline.Spec{gen, read} {
		p, err := s.Build(pipeline.Env{Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		pipes = append(pipes, p)
	}
	b.StartTimer()
	began := time.Now()
	errs := make(chan error, 2)
	for _, p := range pipes {
		go func() { errs <- p.Run(context.Background()) }()
	}
	for range pipes {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	took := time.Since(began)
	if got := pipes[1].Stats.Out.Load(); got != int64(events) {
		b.Fatalf("the consumer wrote %d records, want %d", got, events)
	}
	return took
}
