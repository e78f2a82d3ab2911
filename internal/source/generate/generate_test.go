package generate

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/tweet"
)

// The fast encoder must write exactly what encoding/json writes.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	now := time.Date(2026, 11, 24, 14, 3, 12, 345_000_000, time.UTC)
	for seed := uint64(0); seed < 4; seed++ {
		g := New(seed)
		for i := 0; i < 5000; i++ {
			at := now.Add(time.Duration(i) * time.Millisecond)
			p := g.draw()
			want, err := json.Marshal(p.envelope(at))
			if err != nil {
				t.Fatal(err)
			}
			got, idStart, idEnd := g.appendJSON(nil, &p, at)
			if !bytes.Equal(got, want) {
				t.Fatalf("seed %d tweet %d:\n got %s\nwant %s", seed, i, got, want)
			}
			if id := string(got[idStart:idEnd]); id != p.envelope(at).Data.ID {
				t.Fatalf("seed %d tweet %d: id at [%d:%d] is %q", seed, i, idStart, idEnd, id)
			}
		}
	}
}

func TestSameSeedSameTweets(t *testing.T) {
	now := time.Now()
	a, b, c := New(7), New(7), New(8)
	same := true
	for i := 0; i < 100; i++ {
		ma, mb, mc := a.Next(now), b.Next(now), c.Next(now)
		if !bytes.Equal(ma.Value, mb.Value) || !bytes.Equal(ma.Key, mb.Key) {
			t.Fatalf("tweet %d differs between two generators with seed 7", i)
		}
		same = same && bytes.Equal(ma.Value, mc.Value)
	}
	if same {
		t.Fatal("seeds 7 and 8 made the same tweets")
	}
}

func TestNextIsAStreamMessage(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6_789_000, time.UTC)
	langs := map[string]int{}
	g := New(1)
	for i := 0; i < 2000; i++ {
		m := g.Next(now)
		e, ok := tweet.Parse(m.Value)
		if !ok {
			t.Fatalf("not a post: %s", m.Value)
		}
		if string(m.Key) != e.Data.ID || !m.Timestamp.Equal(now.Truncate(time.Millisecond)) {
			t.Fatalf("key %q timestamp %v for post %s", m.Key, m.Timestamp, e.Data.ID)
		}
		if created, ok := e.Created(); !ok || !created.Equal(now.Truncate(time.Millisecond)) {
			t.Fatalf("created_at %q", e.Data.CreatedAt)
		}
		if u, ok := e.Author(); !ok || u.Username == "" {
			t.Fatalf("author not expanded: %s", m.Value)
		}
		if len(m.Headers) != len(e.MatchingRules) || m.Headers[0].Key != "rule" || string(m.Headers[0].Value) != e.MatchingRules[0].Tag {
			t.Fatalf("headers %v for rules %v", m.Headers, e.MatchingRules)
		}
		langs[e.Data.Lang]++
	}
	if langs["ko"] < 800 || langs["en"] < 600 {
		t.Fatalf("language mix %v, want mostly Korean and English", langs)
	}
}

func TestSourceStopsAfterCount(t *testing.T) {
	for _, rate := range []int{0, 1000} {
		s := &Source{Rate: rate, Count: 2500, gen: New(1)}
		out := make(chan *pipeline.Batch)
		errc := make(chan error, 1)
		go func() {
			errc <- s.Run(context.Background(), out)
			close(out)
		}()
		n := 0
		for b := range out {
			n += len(b.Messages)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if n != 2500 {
			t.Fatalf("rate %d: emitted %d tweets, want 2500", rate, n)
		}
	}
}

func BenchmarkNext(b *testing.B) {
	g := New(1)
	now := time.Now()
	for b.Loop() {
		g.Next(now)
	}
}
