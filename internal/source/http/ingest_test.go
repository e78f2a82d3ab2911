package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

// ingest is an http source on a free port; its batches arrive on batches
// for the test to acknowledge.
type ingest struct {
	url     string
	batches chan *pipeline.Batch
	stats   *pipeline.Stats
	cancel  context.CancelFunc
	done    chan error
}

func startIngest(t *testing.T, maxBody int64) *ingest {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in := &ingest{batches: make(chan *pipeline.Batch, 16), stats: &pipeline.Stats{}, done: make(chan error, 1)}
	s := &Source{Listener: ln, Path: "/ingest", MaxBody: maxBody, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stats: in.stats}
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	in.url = "http://" + s.Addr() + "/ingest"
	go func() { in.done <- s.Run(ctx, in.batches) }()
	t.Cleanup(func() {
		cancel()
		<-in.done
	})
	return in
}

type postReply struct {
	code int
	body answer
	err  error
}

// post sends a body and returns a channel with the answer.
func post(url, contentType, body string) chan postReply {
	ch := make(chan postReply, 1)
	go func() {
		resp, err := http.Post(url, contentType, strings.NewReader(body))
		if err != nil {
			ch <- postReply{err: err}
			return
		}
		defer resp.Body.Close()
		var a answer
		json.NewDecoder(resp.Body).Decode(&a)
		ch <- postReply{code: resp.StatusCode, body: a}
	}()
	return ch
}

func (in *ingest) next(t *testing.T) *pipeline.Batch {
	t.Helper()
	select {
	case b := <-in.batches:
		return b
	case <-time.After(5 * time.Second):
		t.Fatal("no batch from the http source")
		return nil
	}
}

func wait(t *testing.T, ch chan postReply) postReply {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no answer to the POST")
		return postReply{}
	}
}

func values(b *pipeline.Batch) []string {
	var out []string
	for _, m := range b.Messages {
		out = append(out, string(m.Value))
	}
	return out
}

// The answer comes only once the batch is acknowledged (in Kafka).
func TestIngestAnswersAfterTheAck(t *testing.T) {
	in := startIngest(t, 1<<20)
	answer := post(in.url, "application/json", `{"user": "minji", "text": "안녕"}`)
	b := in.next(t)
	if got := values(b); len(got) != 1 || got[0] != `{"user":"minji","text":"안녕"}` {
		t.Fatalf("records %q", got)
	}
	select {
	case r := <-answer:
		t.Fatalf("answered %d before the batch was acknowledged", r.code)
	case <-time.After(100 * time.Millisecond):
	}
	b.Ack()
	if r := wait(t, answer); r.code != http.StatusOK || r.body.Accepted != 1 {
		t.Fatalf("answer %+v", r)
	}
}

func TestIngestNDJSONAndArrays(t *testing.T) {
	in := startIngest(t, 1<<20)
	for _, tc := range []struct{ body, ctype string }{
		{"{\"n\":1}\n\n{\"n\":2}\n{\"n\":3}\n", "application/x-ndjson"},
		{`[{"n":1},{"n":2},{"n":3}]`, "application/json"},
	} {
		answer := post(in.url, tc.ctype, tc.body)
		b := in.next(t)
		if got := strings.Join(values(b), " "); got != `{"n":1} {"n":2} {"n":3}` {
			t.Fatalf("%q became %q", tc.body, got)
		}
		b.Ack()
		if r := wait(t, answer); r.code != http.StatusOK || r.body.Accepted != 3 {
			t.Fatalf("answer %+v", r)
		}
	}
}

// A batch the pipeline could not deliver is answered 503, so the client
// sends it again.
func TestIngestNackIs503(t *testing.T) {
	in := startIngest(t, 1<<20)
	answer := post(in.url, "application/json", `{"n":1}`)
	in.next(t).Nack(errors.New("kafka unreachable"))
	if r := wait(t, answer); r.code != http.StatusServiceUnavailable || !strings.Contains(r.body.Error, "kafka unreachable") {
		t.Fatalf("answer %+v", r)
	}
}

// Malformed bodies get 4xx naming the line, and nothing of them is sent on.
func TestIngestRejectsBadBodies(t *testing.T) {
	in := startIngest(t, 100)
	for _, tc := range []struct {
		method, body string
		code         int
		want         string
	}{
		{"POST", "{\"ok\":1}\n{\"ok\":2}\n{\"broken\": \n", 400, "line 3"},
		{"POST", "", 400, "no records"},
		{"POST", strings.Repeat("x", 200), 413, "100 bytes"},
		{"GET", "", 405, "POST"},
	} {
		req, _ := http.NewRequest(tc.method, in.url, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var a answer
		json.NewDecoder(resp.Body).Decode(&a)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(a.Error, tc.want) {
			t.Fatalf("%s %q: %d %q, want %d mentioning %q", tc.method, tc.body, resp.StatusCode, a.Error, tc.code, tc.want)
		}
	}
	select {
	case b := <-in.batches:
		t.Fatalf("a rejected body was sent on: %q", values(b))
	default:
	}
	if in.stats.Errors.Load() == 0 {
		t.Fatal("malformed bodies were not counted as errors")
	}
}

// Many clients at once: every record arrives once and every client gets
// its own answer.
func TestIngestConcurrentClients(t *testing.T) {
	in := startIngest(t, 1<<20)
	go func() {
		for b := range in.batches {
			b.Ack()
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := <-post(in.url, "application/json", fmt.Sprintf(`{"client":%d}`, i))
			if r.err != nil || r.code != http.StatusOK || r.body.Accepted != 1 {
				errs <- errors.New("bad answer")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Shutdown while a request waits for its batch: the request gets an
// answer (the pipeline drains or gives up), never a hang.
func TestIngestShutdownAnswers(t *testing.T) {
	in := startIngest(t, 1<<20)
	answer := post(in.url, "application/json", `{"n":1}`)
	b := in.next(t)
	in.cancel()
	b.Nack(context.Canceled) // the pipeline could not write it before stopping
	if r := wait(t, answer); r.code != http.StatusServiceUnavailable {
		t.Fatalf("answer during shutdown %+v", r)
	}
}
