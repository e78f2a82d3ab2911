package x

// A local X API v2 server for the tests: the filtered and sample streams
// (newline-delimited JSON, "\r\n" keep-alives, error objects, HTTP errors,
// scripted per connection) and the filtered stream's rules endpoint (list,
// add with dry_run, delete), all behind an app-only bearer token.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/tweet"
)

const testToken = "AAAAAAAAAAAAAAAAAAAAAtest%2Bbearer%3Dtoken"

const (
	streamPath = "/2/tweets/search/stream"
	samplePath = "/2/tweets/sample/stream"
)

// seenRequest is one request the fake server received.
type seenRequest struct {
	Method string
	Path   string
	Query  url.Values
	Auth   string
	Body   string
	At     time.Time
}

// connScript plays one stream connection.
type connScript func(c *streamConn)

// fakeX is the fake X API.
type fakeX struct {
	t    *testing.T
	srv  *httptest.Server
	quit chan struct{}

	// connected receives the number of each stream connection (1, 2, ...).
	connected chan int

	mu       sync.Mutex
	requests []seenRequest
	conns    int
	scripts  []connScript
	// rules on the server, in the order they were created
	rules    []Rule
	nextRule int
	// invalid rule values and the reason X gives for each
	invalid map[string]string
	// statuses answered to the first rules requests, in order (0: normal)
	rulesStatus []int
}

func newFakeX(t *testing.T, scripts ...connScript) *fakeX {
	t.Helper()
	f := &fakeX{
		t:         t,
		quit:      make(chan struct{}),
		connected: make(chan int, 1000),
		scripts:   scripts,
		nextRule:  1785000000000000000,
		invalid:   map[string]string{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc(streamPath, f.stream)
	mux.HandleFunc(samplePath, f.stream)
	mux.HandleFunc(rulesPath, f.rulesEndpoint)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		f.record(r, "")
		problem(w, http.StatusNotFound, `{"errors":[{"parameters":{},"message":"The requested resource does not exist"}],"title":"Not Found Error","detail":"The requested resource could not be found.","type":"https://api.twitter.com/2/problems/resource-not-found"}`)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		close(f.quit)
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
	return f
}

// URL is the base URL to give the source as APIURL.
func (f *fakeX) URL() string { return f.srv.URL }

func (f *fakeX) record(r *http.Request, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, seenRequest{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(),
		Auth: r.Header.Get("Authorization"), Body: body, At: time.Now(),
	})
}

// seen returns the requests received so far.
func (f *fakeX) seen() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// streamConns returns how many stream connections were made.
func (f *fakeX) streamConns() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns
}

func (f *fakeX) authorized(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("Authorization") == "Bearer "+testToken {
		return true
	}
	problem(w, http.StatusUnauthorized, `{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}`)
	return false
}

func problem(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// waitConn waits for stream connection n.
func (f *fakeX) waitConn(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		if f.streamConns() >= n {
			return
		}
		select {
		case <-f.connected:
		case <-deadline:
			t.Fatalf("stream connection %d never came (%d so far)", n, f.streamConns())
		}
	}
}

func (f *fakeX) stream(w http.ResponseWriter, r *http.Request) {
	f.record(r, "")
	if r.Method != http.MethodGet {
		problem(w, http.StatusMethodNotAllowed, `{"title":"Method Not Allowed"}`)
		return
	}
	if !f.authorized(w, r) {
		return
	}
	f.mu.Lock()
	f.conns++
	n := f.conns
	var script connScript
	if n <= len(f.scripts) {
		script = f.scripts[n-1]
	}
	f.mu.Unlock()
	f.connected <- n
	c := &streamConn{N: n, w: w, f: w.(http.Flusher), ctx: r.Context(), quit: f.quit}
	if script == nil {
		c.Hold()
		return
	}
	script(c)
}

// streamConn is one stream connection, as a script sees it.
type streamConn struct {
	N       int
	w       http.ResponseWriter
	f       http.Flusher
	ctx     context.Context
	quit    <-chan struct{}
	started bool
}

// OK sends the 200 header (the first line or keep-alive does it too).
func (c *streamConn) OK() {
	if c.started {
		return
	}
	c.started = true
	c.w.Header().Set("Content-Type", "application/json; charset=utf-8")
	c.w.Header().Set("x-rate-limit-limit", "50")
	c.w.Header().Set("x-rate-limit-remaining", "49")
	c.w.WriteHeader(http.StatusOK)
	c.f.Flush()
}

// Line sends one line of the stream, ended by "\r\n" as X ends them.
func (c *streamConn) Line(s string) bool {
	c.OK()
	if _, err := io.WriteString(c.w, s+"\r\n"); err != nil {
		return false
	}
	c.f.Flush()
	return c.ctx.Err() == nil
}

// KeepAlive sends the "\r\n" X sends when it has nothing else to say.
func (c *streamConn) KeepAlive() bool { return c.Line("") }

// Fail answers the connection with an HTTP error instead of the stream.
func (c *streamConn) Fail(status int, header map[string]string, body string) {
	for k, v := range header {
		c.w.Header().Set(k, v)
	}
	problem(c.w, status, body)
}

// Pause waits d, or until the client goes away (false).
func (c *streamConn) Pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
	case <-c.quit:
	}
	return false
}

// Hold keeps the connection open, silent, until the client closes it.
func (c *streamConn) Hold() {
	c.OK()
	select {
	case <-c.ctx.Done():
	case <-c.quit:
	}
}

// Rules sets the rules on the server.
func (f *fakeX) setRules(rules ...Rule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range rules {
		f.nextRule++
		r.ID = strconv.Itoa(f.nextRule)
		f.rules = append(f.rules, r)
	}
}

// serverRules returns the rules on the server.
func (f *fakeX) serverRules() []Rule {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.rules)
}

const sent = "2024-05-01T12:00:00.000Z"

func (f *fakeX) rulesEndpoint(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.record(r, string(bytes.TrimSpace(body)))
	if !f.authorized(w, r) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.rulesStatus) > 0 {
		status := f.rulesStatus[0]
		f.rulesStatus = f.rulesStatus[1:]
		if status != 0 {
			problem(w, status, fmt.Sprintf(`{"title":"%s","detail":"scripted","type":"about:blank","status":%d}`, http.StatusText(status), status))
			return
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)

	switch r.Method {
	case http.MethodGet:
		resp := map[string]any{"meta": map[string]any{"sent": sent, "result_count": len(f.rules)}}
		if len(f.rules) > 0 {
			resp["data"] = f.rules
		}
		enc.Encode(resp)
	case http.MethodPost:
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			problem(w, http.StatusBadRequest, `{"title":"Invalid Request","detail":"Content-Type must be application/json","type":"https://api.twitter.com/2/problems/invalid-request"}`)
			return
		}
		var req struct {
			Add    []Rule `json:"add"`
			Delete *struct {
				IDs []string `json:"ids"`
			} `json:"delete"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || (req.Add == nil) == (req.Delete == nil) {
			problem(w, http.StatusBadRequest, `{"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.twitter.com/2/problems/invalid-request"}`)
			return
		}
		dry := r.URL.Query().Get("dry_run") == "true"
		if req.Delete != nil {
			enc.Encode(f.delete(req.Delete.IDs, dry))
		} else {
			enc.Encode(f.add(req.Add, dry))
		}
	default:
		problem(w, http.StatusMethodNotAllowed, `{"title":"Method Not Allowed"}`)
	}
}

// add answers as X does: HTTP 200, the rules created under data, each
// rejected one under errors (invalid, or a duplicate of a rule's value).
func (f *fakeX) add(rules []Rule, dry bool) map[string]any {
	var data []Rule
	var errs []map[string]any
	byValue := map[string]string{}
	for _, r := range f.rules {
		byValue[r.Value] = r.ID
	}
	for _, r := range rules {
		if reason, bad := f.invalid[r.Value]; bad {
			errs = append(errs, map[string]any{"value": r.Value, "details": []string{reason},
				"title": "Invalid Rule", "type": "https://api.twitter.com/2/problems/invalid-rules"})
			continue
		}
		if id, dup := byValue[r.Value]; dup {
			errs = append(errs, map[string]any{"value": r.Value, "id": id,
				"title": "DuplicateRule", "type": "https://api.twitter.com/2/problems/duplicate-rules"})
			continue
		}
		f.nextRule++
		r.ID = strconv.Itoa(f.nextRule)
		byValue[r.Value] = r.ID
		data = append(data, r)
	}
	if !dry {
		f.rules = append(f.rules, data...)
	}
	created := len(data)
	if dry {
		created = 0
	}
	resp := map[string]any{"meta": map[string]any{"sent": sent, "summary": map[string]int{
		"created": created, "not_created": len(rules) - created, "valid": len(data), "invalid": len(errs)}}}
	if len(data) > 0 {
		resp["data"] = data
	}
	if len(errs) > 0 {
		resp["errors"] = errs
	}
	return resp
}

func (f *fakeX) delete(ids []string, dry bool) map[string]any {
	deleted := 0
	keep := f.rules[:0:0]
	for _, r := range f.rules {
		if slices.Contains(ids, r.ID) {
			deleted++
			if !dry {
				continue
			}
		}
		keep = append(keep, r)
	}
	f.rules = keep
	return map[string]any{"meta": map[string]any{"sent": sent, "summary": map[string]int{
		"deleted": deleted, "not_deleted": len(ids) - deleted}}}
}

// post is a stream line in the shape X sends: the post, its author under
// includes, the rules it matched.
func post(id, text string, tags ...string) string {
	e := tweet.Envelope{
		Data: tweet.Post{ID: id, Text: text, CreatedAt: "2024-05-01T09:30:15.000Z", Lang: "en",
			AuthorID: "2244994945", EditHistory: []string{id},
			PublicMetrics: &tweet.Metrics{LikeCount: 3}},
		Includes: &tweet.Includes{Users: []tweet.User{{ID: "2244994945", Name: "Creek Dev", Username: "creekdev"}}},
	}
	for i, tag := range tags {
		e.MatchingRules = append(e.MatchingRules, tweet.RuleRef{ID: strconv.Itoa(1785000000000000001 + i), Tag: tag})
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		panic(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// operationalDisconnect is the error object X sends before it closes a
// stream for its own reasons.
const operationalDisconnect = `{"errors":[{"title":"operational-disconnect","disconnect_type":"UpstreamOperationalDisconnect","detail":"This stream has been disconnected upstream for operational reasons.","type":"https://api.twitter.com/2/problems/operational-disconnect"}]}`

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// sleeps records the waits the source asks for and returns at once.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
	// then, if set, runs after recording (in the source's goroutine)
	then func(n int)
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) bool {
	s.mu.Lock()
	s.d = append(s.d, d)
	n := len(s.d)
	then := s.then
	s.mu.Unlock()
	if then != nil {
		then(n)
	}
	return ctx.Err() == nil
}

func (s *sleeps) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.d)
}

// testSource is a source for f with its waits, log and counters observed.
type testSource struct {
	*Source
	sleeps *sleeps
	logs   *lockedBuffer
	stats  *pipeline.Stats
}

func newTestSource(t *testing.T, f *fakeX, sample bool) *testSource {
	t.Helper()
	ts := &testSource{sleeps: &sleeps{}, logs: &lockedBuffer{}, stats: &pipeline.Stats{}}
	ts.Source = &Source{
		APIURL:      f.URL(),
		Token:       testToken,
		Sample:      sample,
		TweetFields: "created_at,lang,author_id,public_metrics",
		Expansions:  "author_id",
		UserFields:  "username,name",
		Logger:      slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Stats:       ts.stats,
		Sleep:       ts.sleeps.sleep,
	}
	t.Cleanup(func() {
		logs := ts.logs.String()
		if strings.Contains(logs, testToken) {
			t.Errorf("the bearer token appears in the log")
		}
		if t.Failed() {
			t.Logf("source log:\n%s", logs)
		}
	})
	return ts
}

// run is a Source.Run in progress, its batches collected (and acked).
type run struct {
	cancel   context.CancelFunc
	finished chan struct{} // closed when Run has returned
	err      error         // what Run returned

	mu      sync.Mutex
	msgs    []pipeline.Message
	batches int
	more    chan struct{}
	stopCol chan struct{}
	colDone chan struct{}
}

// start runs s with a consumer that takes every batch at once.
func start(t *testing.T, s *Source) *run {
	return startWith(t, s, nil)
}

// startWith runs s; before taking batch n (from 1), the consumer calls
// before(n) if set, so a test can play a slow sink.
func startWith(t *testing.T, s *Source, before func(n int)) *run {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan *pipeline.Batch)
	r := &run{cancel: cancel, finished: make(chan struct{}), more: make(chan struct{}, 1),
		stopCol: make(chan struct{}), colDone: make(chan struct{})}
	go func() {
		r.err = s.Run(ctx, out)
		close(r.finished)
	}()
	go func() {
		defer close(r.colDone)
		for n := 1; ; n++ {
			if before != nil {
				before(n)
			}
			select {
			case b := <-out:
				if b.Ack != nil {
					b.Ack()
				}
				r.mu.Lock()
				r.msgs = append(r.msgs, b.Messages...)
				r.batches++
				r.mu.Unlock()
				select {
				case r.more <- struct{}{}:
				default:
				}
			case <-r.stopCol:
				return
			}
		}
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *run) messages() []pipeline.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// waitMsgs waits until at least n messages have arrived.
func (r *run) waitMsgs(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for len(r.messages()) < n {
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("waited for %d messages, got %d: %v", n, len(r.messages()), ids(r.messages()))
		case <-r.finished:
			if len(r.messages()) < n {
				t.Fatalf("Run returned %v before %d messages arrived (got %v)", r.err, n, ids(r.messages()))
			}
		}
	}
}

// wait waits for Run to return on its own.
func (r *run) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-r.finished:
	case <-time.After(5 * time.Second):
		t.Fatalf("Run did not return")
	}
	r.stopCollector()
	return r.err
}

// stop cancels Run and waits for it to return.
func (r *run) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.finished:
	case <-time.After(5 * time.Second):
		t.Fatalf("Run did not return within 5s of its context being cancelled")
	}
	r.stopCollector()
	return r.err
}

func (r *run) stopCollector() {
	select {
	case <-r.stopCol:
	default:
		close(r.stopCol)
	}
	<-r.colDone
}

func ids(msgs []pipeline.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Key)
	}
	return out
}

// wantIDs checks exactly which posts reached the output, in order.
func wantIDs(t *testing.T, msgs []pipeline.Message, want ...string) {
	t.Helper()
	if got := ids(msgs); !slices.Equal(got, want) {
		t.Errorf("posts delivered: %v, want %v", got, want)
	}
}

// wantSleeps checks exactly which waits the source asked for.
func wantSleeps(t *testing.T, s *sleeps, want ...time.Duration) {
	t.Helper()
	got := slices.DeleteFunc(s.got(), func(d time.Duration) bool { return d == 0 })
	if !slices.Equal(got, want) {
		t.Errorf("waits asked for: %v, want %v", got, want)
	}
}
