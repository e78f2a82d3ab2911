package dashboard

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/broker"
)

// TestTopicCompaction: a compacted topic's page data carries each
// partition's dirty ratio and last cleaning; other topics carry none.
func TestTopicCompaction(t *testing.T) {
	b, err := broker.Start(context.Background(), broker.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Settings: map[string]string{"log.cleaner.backoff.ms": "20"}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("profiles"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact"),
		"segment.bytes": kadm.StringPtr("1000"), "min.cleanable.dirty.ratio": kadm.StringPtr("0.01")}, "profiles"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, -1, nil, "plain"); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte{byte('a' + i%4)}, Value: []byte(strings.Repeat("x", 60))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := New(Config{Brokers: []string{b.Addr()}, Interval: 100 * time.Millisecond, NoAnalytics: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })

	waitFor(t, "both topics in the view", func() bool {
		_, a := srv.View().Snapshot().Topic("profiles")
		_, b := srv.View().Snapshot().Topic("plain")
		return a && b
	})
	var d topicDetail
	waitFor(t, "the topic page to show a cleaning", func() bool {
		d = get[topicDetail](t, hs.URL+"/api/topics/profiles")
		return len(d.Compaction) == 1 && d.Compaction[0].LastCleaning != nil && d.Compaction[0].DirtyBytes == 0
	})
	if !d.Compacted || d.Deletes || d.Compaction[0].FirstDirtyOffset == 0 || d.Compaction[0].LastCleaning.RecordsKept >= d.Compaction[0].LastCleaning.RecordsRead {
		t.Fatalf("compacted topic: compacted %v deletes %v, %+v", d.Compacted, d.Deletes, d.Compaction[0])
	}
	if p := get[topicDetail](t, hs.URL+"/api/topics/plain"); p.Compacted || !p.Deletes || p.Compaction != nil {
		t.Fatalf("a topic that is not compacted: compacted %v deletes %v compaction %+v", p.Compacted, p.Deletes, p.Compaction)
	}

	// The topic page shows it (when Chromium is here; TestPagesInChromium
	// says so when it is not).
	if chromiumPath() == "" {
		return
	}
	br := newBrowser(t)
	if err := chromedp.Do(br.ctx, chromedp.Navigate(hs.URL+"/#/topics/profiles")); err != nil {
		t.Fatal(err)
	}
	br.waitJS(t, "the compaction table on the topic page", `(document.getElementById("compaction")?.innerText || "").includes("records kept")`)
	if text := evalJS[string](t, br, `document.getElementById("waterfall-note").innerText`); !strings.Contains(text, "Compacted") {
		t.Fatalf("the note of a compacted topic says %q", text)
	}
	br.screenshot(t, "compaction")
	if errs := br.jsErrors(); len(errs) > 0 {
		t.Fatalf("JavaScript errors: %v", errs)
	}
}
