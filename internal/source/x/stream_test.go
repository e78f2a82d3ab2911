package x

import (
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

// A stream X closes is reconnected at once, and the posts X sends again on
// the new connection are dropped.
func TestDroppedStreamReconnectsAtOnceAndDropsRepeats(t *testing.T) {
	f := newFakeX(t,
		func(c *streamConn) { c.Line(post("101", "first")); c.Line(post("102", "second")) },
		func(c *streamConn) { c.Line(post("102", "second")); c.Line(post("103", "third")); c.Hold() },
	)
	s := newTestSource(t, f, true)
	r := start(t, s.Source)
	r.waitMsgs(t, 3)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	wantIDs(t, r.messages(), "101", "102", "103")
	wantSleeps(t, s.sleeps)
	if n := f.streamConns(); n != 2 {
		t.Errorf("stream connections: %d, want 2", n)
	}
	if !strings.Contains(s.logs.String(), "closed by X") {
		t.Errorf("the drop is not logged")
	}
}

// The dedup window is bounded: an id older than DedupWindow posts is
// forgotten.
func TestDedupWindowIsBounded(t *testing.T) {
	f := newFakeX(t,
		func(c *streamConn) { c.Line(post("1", "a")); c.Line(post("2", "b")); c.Line(post("3", "c")) },
		func(c *streamConn) { c.Line(post("1", "a")); c.Line(post("3", "c")); c.Line(post("4", "d")); c.Hold() },
	)
	s := newTestSource(t, f, true)
	s.DedupWindow = 2
	r := start(t, s.Source)
	r.waitMsgs(t, 5)
	r.stop(t)
	wantIDs(t, r.messages(), "1", "2", "3", "1", "4")
}

const unavailable = `{"title":"Service Unavailable","detail":"Service Unavailable","type":"about:blank","status":503}`

// HTTP errors back off exponentially from 5 s.
func TestHTTPErrorsBackOffExponentially(t *testing.T) {
	f := newFakeX(t,
		func(c *streamConn) { c.Fail(http.StatusServiceUnavailable, nil, unavailable) },
		func(c *streamConn) { c.Fail(http.StatusServiceUnavailable, nil, unavailable) },
		func(c *streamConn) { c.Line(post("1", "back")); c.Hold() },
	)
	s := newTestSource(t, f, true)
	r := start(t, s.Source)
	r.waitMsgs(t, 1)
	r.stop(t)
	wantIDs(t, r.messages(), "1")
	wantSleeps(t, s.sleeps, 5*time.Second, 10*time.Second)
	if !strings.Contains(s.logs.String(), "status=503") {
		t.Errorf("the 503 is not logged")
	}
}

// The waits for HTTP errors double up to 320 s and stay there, however
// long the errors last; a success starts again from 5 s.
func TestBackoffSequences(t *testing.T) {
	p := DefaultPolicy
	var b backoff
	var httpWaits []time.Duration
	for range 100 {
		httpWaits = append(httpWaits, b.next(waitHTTP, p, 0))
	}
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320}
	for i, w := range want {
		if httpWaits[i] != w*time.Second {
			t.Errorf("HTTP wait %d: %v, want %v", i+1, httpWaits[i], w*time.Second)
		}
	}
	for i, d := range httpWaits[len(want):] {
		if d != 320*time.Second {
			t.Fatalf("HTTP wait %d: %v, want 320s", len(want)+i+1, d)
		}
	}
	var rate []time.Duration
	for range 100 {
		rate = append(rate, b.next(waitRateLimit, p, 0))
	}
	if rate[0] != time.Minute || rate[1] != 2*time.Minute || rate[2] != 4*time.Minute {
		t.Errorf("429 waits start %v, want 1m, 2m, 4m", rate[:3])
	}
	for i := 1; i < len(rate); i++ {
		if rate[i] < rate[i-1] {
			t.Fatalf("429 wait %d (%v) shorter than the one before (%v)", i+1, rate[i], rate[i-1])
		}
	}
	var net []time.Duration
	for range 70 {
		net = append(net, b.next(waitNetwork, p, 0))
	}
	if net[0] != 250*time.Millisecond || net[63] != 16*time.Second || net[69] != 16*time.Second {
		t.Errorf("network waits: %v", net)
	}
}

var fixedNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

const tooMany = `{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}`

// A 429 waits until x-rate-limit-reset when that is later than the
// backoff's minute.
func TestRateLimitHonoursResetHeader(t *testing.T) {
	reset := strconv.FormatInt(fixedNow.Add(90*time.Second).Unix(), 10)
	f := newFakeX(t,
		func(c *streamConn) {
			c.Fail(http.StatusTooManyRequests, map[string]string{
				"x-rate-limit-limit": "50", "x-rate-limit-remaining": "0", "x-rate-limit-reset": reset}, tooMany)
		},
		func(c *streamConn) { c.Line(post("1", "after the reset")); c.Hold() },
	)
	s := newTestSource(t, f, true)
	s.Now = func() time.Time { return fixedNow }
	r := start(t, s.Source)
	r.waitMsgs(t, 1)
	r.stop(t)
	wantIDs(t, r.messages(), "1")
	wantSleeps(t, s.sleeps, 90*time.Second)
}

// Without the header, 429s back off exponentially from a minute.
func TestRateLimitWithoutHeaderBacksOffFromAMinute(t *testing.T) {
	f := newFakeX(t,
		func(c *streamConn) { c.Fail(http.StatusTooManyRequests, nil, tooMany) },
		func(c *streamConn) { c.Fail(http.StatusTooManyRequests, nil, tooMany) },
		func(c *streamConn) { c.Line(post("1", "in")); c.Hold() },
	)
	s := newTestSource(t, f, true)
	s.Now = func() time.Time { return fixedNow }
	r := start(t, s.Source)
	r.waitMsgs(t, 1)
	r.stop(t)
	wantSleeps(t, s.sleeps, time.Minute, 2*time.Minute)
}

// No line, not even a keep-alive, for Policy.Stall: the client closes the
// connection and reconnects at once.
func TestStallReconnectsAtOnce(t *testing.T) {
	sentAt := make(chan time.Time, 1)
	closedAt := make(chan time.Time, 1)
	f := newFakeX(t,
		func(c *streamConn) {
			c.Line(post("1", "then silence"))
			sentAt <- time.Now()
			c.Hold()
			closedAt <- time.Now()
		},
		func(c *streamConn) { c.Line(post("2", "new connection")); c.Hold() },
	)
	s := newTestSource(t, f, true)
	s.Policy = DefaultPolicy
	s.Policy.Stall = 300 * time.Millisecond
	r := start(t, s.Source)
	r.waitMsgs(t, 2)
	r.stop(t)
	wantIDs(t, r.messages(), "1", "2")
	wantSleeps(t, s.sleeps)

	t0 := <-sentAt
	var second time.Time
	for _, q := range f.seen() {
		if q.Path == samplePath {
			second = q.At // the last stream request
		}
	}
	if gap := second.Sub(t0); gap < 280*time.Millisecond || gap > 3*time.Second {
		t.Errorf("reconnected %v after the last line, want about 300ms", gap)
	}
	select {
	case c := <-closedAt:
		if gap := c.Sub(t0); gap > 3*time.Second {
			t.Errorf("stalled connection closed %v after the last line", gap)
		}
	case <-time.After(3 * time.Second):
		t.Errorf("the client never closed the stalled connection")
	}
	if !strings.Contains(s.logs.String(), "stalled") {
		t.Errorf("the stall is not logged")
	}
}

// Keep-alives every Stall/3 for several Stall periods keep the
// connection.
func TestKeepAlivesKeepTheConnection(t *testing.T) {
	f := newFakeX(t,
		func(c *streamConn) {
			c.Line(post("1", "before"))
			for range 10 {
				if !c.Pause(100*time.Millisecond) || !c.KeepAlive() {
					return
				}
			}
			c.Line(post("2", "after a second of keep-alives"))
			c.Hold()
		},
	)
	s := newTestSource(t, f, true)
	s.Policy = DefaultPolicy
	s.Policy.Stall = 300 * time.Millisecond
	begin := time.Now()
	r := start(t, s.Source)
	r.waitMsgs(t, 2)
	elapsed := time.Since(begin)
	r.stop(t)
	wantIDs(t, r.messages(), "1", "2")
	wantSleeps(t, s.sleeps)
	if n := f.streamConns(); n != 1 {
		t.Errorf("stream connections: %d, want 1", n)
	}
	if elapsed < time.Second {
		t.Errorf("the second post came after %v, the script takes 1s", elapsed)
	}
	if s.stats.Errors.Load() != 0 {
		t.Errorf("keep-alives counted as errors: %d", s.stats.Errors.Load())
	}
}

// A slow sink is not a stalled stream: while the pipeline takes its time
// with a batch, the lines X sends meanwhile wait, and no reconnect happens
// (a reconnect would lose them). The consumer spends 500 ms on each batch;
// each post but the first arrives 100 ms into that, so the source waits
// 400 ms (longer than Stall) to hand it over, while keep-alives pile up.
func TestSlowSinkIsNotAStall(t *testing.T) {
	const posts = 6
	f := newFakeX(t,
		func(c *streamConn) {
			c.Line(post("1", "post"))
			c.Pause(100 * time.Millisecond)
			for i := 2; i <= posts; i++ {
				c.Line(post(strconv.Itoa(i), "post"))
				for range 4 {
					if !c.Pause(100*time.Millisecond) || !c.KeepAlive() {
						return
					}
				}
				c.Pause(100 * time.Millisecond)
			}
			c.Hold()
		},
	)
	s := newTestSource(t, f, true)
	s.Policy = DefaultPolicy
	s.Policy.Stall = 300 * time.Millisecond
	r := startWith(t, s.Source, func(n int) {
		if n >= 2 {
			time.Sleep(500 * time.Millisecond) // writing batch n-1
		}
	})
	r.waitMsgs(t, posts)
	r.stop(t)
	wantIDs(t, r.messages(), "1", "2", "3", "4", "5", "6")
	if n := f.streamConns(); n != 1 {
		t.Errorf("stream connections: %d, want 1 (a slow sink was taken for a stall)", n)
	}
}

// An operational-disconnect error object is logged, and the stream X
// closes after it is reconnected at once.
func TestOperationalDisconnect(t *testing.T) {
	f := newFakeX(t,
		func(c *streamConn) { c.Line(post("1", "before")); c.Line(operationalDisconnect) },
		func(c *streamConn) { c.Line(post("2", "after")); c.Hold() },
	)
	s := newTestSource(t, f, true)
	r := start(t, s.Source)
	r.waitMsgs(t, 2)
	r.stop(t)
	wantIDs(t, r.messages(), "1", "2")
	wantSleeps(t, s.sleeps)
	logs := s.logs.String()
	for _, want := range []string{"title=operational-disconnect", "disconnect_type=UpstreamOperationalDisconnect", "operational reasons"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if s.stats.Errors.Load() != 0 {
		t.Errorf("an error object was counted as a malformed line")
	}
}

// A malformed line is counted and logged; the posts around it go through.
func TestMalformedLineIsSkipped(t *testing.T) {
	f := newFakeX(t,
		func(c *streamConn) {
			c.Line(post("1", "good"))
			c.Line(`{"data":{"id":"17856123456789`)
			c.Line(post("2", "also good"))
			c.Hold()
		},
	)
	s := newTestSource(t, f, true)
	r := start(t, s.Source)
	r.waitMsgs(t, 2)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	wantIDs(t, r.messages(), "1", "2")
	if n := s.stats.Errors.Load(); n != 1 {
		t.Errorf("Stats.Errors = %d, want 1", n)
	}
	if n := f.streamConns(); n != 1 {
		t.Errorf("stream connections: %d, want 1", n)
	}
	if !strings.Contains(s.logs.String(), "malformed line") {
		t.Errorf("the malformed line is not logged")
	}
}

// 401 and 403 stop Run with an error that says what to fix, without a
// retry.
func TestRefusedCredentialsStopRun(t *testing.T) {
	forbidden := `{"client_id":"12345","detail":"When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a Twitter developer App that is attached to a Project.","registration_url":"https://developer.twitter.com/en/docs/projects/overview","title":"Client Forbidden","required_enrollment":"Appropriate Level of API Access","reason":"client-not-enrolled","type":"https://api.twitter.com/2/problems/client-forbidden"}`
	for _, tc := range []struct {
		name   string
		sample bool
		token  string
		script connScript
		want   string
	}{
		{name: "401 stream", sample: true, token: "wrong", want: "X_BEARER_TOKEN"},
		{name: "401 rules", sample: false, token: "wrong", want: "X_BEARER_TOKEN"},
		{name: "403 stream", sample: true, token: testToken, want: "access level",
			script: func(c *streamConn) { c.Fail(http.StatusForbidden, nil, forbidden) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeX(t, tc.script)
			s := newTestSource(t, f, tc.sample)
			s.Token = tc.token
			s.Rules = []Rule{{Value: "kafka"}}
			err := start(t, s.Source).wait(t)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run returned %v, want an error mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), "wrong") {
				t.Errorf("the error shows the token: %v", err)
			}
			if n := len(f.seen()); n != 1 {
				t.Errorf("X saw %d requests, want 1 (no retry)", n)
			}
			wantSleeps(t, s.sleeps)
		})
	}
}

// Connections refused by a closed port back off linearly by 250 ms.
func TestNetworkErrorsBackOffLinearly(t *testing.T) {
	f := newFakeX(t, func(c *streamConn) { c.Line(post("1", "finally")); c.Hold() })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()

	s := newTestSource(t, f, true)
	s.APIURL = closed
	s.sleeps.then = func(n int) {
		if n == 3 {
			s.APIURL = f.URL() // the network is back (same goroutine as Run)
		}
	}
	r := start(t, s.Source)
	r.waitMsgs(t, 1)
	r.stop(t)
	wantIDs(t, r.messages(), "1")
	wantSleeps(t, s.sleeps, 250*time.Millisecond, 500*time.Millisecond, 750*time.Millisecond)
	if !strings.Contains(s.logs.String(), "cannot connect") {
		t.Errorf("the refused connections are not logged")
	}
}

// failingTransport fails the requests for which fail(n) is true (n counts
// from 1) with a network error, and passes the others on.
type failingTransport struct {
	mu   sync.Mutex
	n    int
	fail func(n int) bool
	next http.RoundTripper
}

func (f *failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.n++
	n := f.n
	f.mu.Unlock()
	if f.fail(n) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	return f.next.RoundTrip(r)
}

// The linear backoff stops growing at 16 s.
func TestNetworkBackoffIsCapped(t *testing.T) {
	f := newFakeX(t, func(c *streamConn) { c.Line(post("1", "finally")); c.Hold() })
	s := newTestSource(t, f, true)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	s.Client = &http.Client{Transport: &failingTransport{fail: func(n int) bool { return n <= 70 }, next: tr}}
	r := start(t, s.Source)
	r.waitMsgs(t, 1)
	r.stop(t)
	var want []time.Duration
	for i := 1; i <= 70; i++ {
		want = append(want, min(time.Duration(i)*250*time.Millisecond, 16*time.Second))
	}
	wantSleeps(t, s.sleeps, want...)
	if n := len(f.seen()); n != 1 {
		t.Errorf("X saw %d requests, want 1", n)
	}
}

// A connection that worked starts the backoff again from the beginning.
func TestBackoffStartsAgainAfterAConnection(t *testing.T) {
	f := newFakeX(t,
		func(c *streamConn) { c.Line(post("1", "a")) },
		func(c *streamConn) { c.Line(post("2", "b")); c.Hold() },
	)
	s := newTestSource(t, f, true)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	s.Client = &http.Client{Transport: &failingTransport{fail: func(n int) bool { return n != 3 && n < 6 }, next: tr}}
	r := start(t, s.Source)
	r.waitMsgs(t, 2)
	r.stop(t)
	wantIDs(t, r.messages(), "1", "2")
	ms := time.Millisecond
	wantSleeps(t, s.sleeps, 250*ms, 500*ms, 250*ms, 500*ms)
}

// The sample stream has its own path, no rules, and asks for the fields.
// The source is built the way creek builds it: from the registry.
func TestSampleStreamRequest(t *testing.T) {
	clearEnv(t)
	f := newFakeX(t, func(c *streamConn) { c.Line(post("1", "sampled")); c.Hold() })
	src := bindX(t, map[string]string{"stream": "sample", "bearer-token": testToken, "api-url": f.URL() + "/"})
	s := src.(*Source)
	var sl sleeps
	s.Sleep = sl.sleep
	r := start(t, s)
	r.waitMsgs(t, 1)
	r.stop(t)
	wantIDs(t, r.messages(), "1")

	reqs := f.seen()
	if len(reqs) != 1 {
		t.Fatalf("requests: %+v, want the stream alone", reqs)
	}
	q := reqs[0]
	if q.Method != http.MethodGet || q.Path != samplePath {
		t.Errorf("request %s %s, want GET %s", q.Method, q.Path, samplePath)
	}
	if q.Auth != "Bearer "+testToken {
		t.Errorf("Authorization %q", q.Auth)
	}
	for k, v := range map[string]string{
		"tweet.fields": "created_at,lang,author_id,public_metrics",
		"expansions":   "author_id",
		"user.fields":  "username,name",
	} {
		if got := q.Query.Get(k); got != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
}

// A post becomes a record: key the id, value the line byte for byte,
// timestamp created_at, a "rule" header per matching rule.
func TestRecordShape(t *testing.T) {
	line := `{"data":{"author_id":"2244994945","created_at":"2024-05-01T09:30:15.123Z","edit_history_tweet_ids":["1785612345678901234"],"id":"1785612345678901234","lang":"ko","public_metrics":{"retweet_count":2,"reply_count":0,"like_count":15,"quote_count":1,"bookmark_count":0,"impression_count":340},"text":"카프카로 실시간 트윗 파이프라인 만들기 \ud83d\ude80 #kafka &amp; \"스트림\""},"includes":{"users":[{"id":"2244994945","name":"데이터 엔지니어","username":"data_eng"}]},"matching_rules":[{"id":"1785000000000000001","tag":"kafka"},{"id":"1785000000000000002","tag":"한국어"}]}`
	bare := `{"data":{"id":"1785612345678901235","text":"no created_at, no rules"}}`
	f := newFakeX(t, func(c *streamConn) { c.Line(line); c.Line(bare); c.Hold() })
	s := newTestSource(t, f, true)
	s.Now = func() time.Time { return fixedNow }
	r := start(t, s.Source)
	r.waitMsgs(t, 2)
	r.stop(t)
	msgs := r.messages()
	wantIDs(t, msgs, "1785612345678901234", "1785612345678901235")
	m := msgs[0]
	if string(m.Value) != line {
		t.Errorf("value differs from the line sent:\n got %s\nwant %s", m.Value, line)
	}
	if want := time.Date(2024, 5, 1, 9, 30, 15, 123e6, time.UTC); !m.Timestamp.Equal(want) {
		t.Errorf("timestamp %v, want %v", m.Timestamp, want)
	}
	want := []pipeline.Header{{Key: "rule", Value: []byte("kafka")}, {Key: "rule", Value: []byte("한국어")}}
	if !slices.EqualFunc(m.Headers, want, func(a, b pipeline.Header) bool { return a.Key == b.Key && string(a.Value) == string(b.Value) }) {
		t.Errorf("headers %v, want %v", m.Headers, want)
	}
	if b := msgs[1]; string(b.Value) != bare || len(b.Headers) != 0 || !b.Timestamp.Equal(fixedNow) {
		t.Errorf("post without created_at or rules: value %s, headers %v, timestamp %v", b.Value, b.Headers, b.Timestamp)
	}
}

// Cancelling the context ends Run promptly, also in the middle of a long
// wait (the real Sleep) and of the rules' retries.
func TestCancelDuringLongWait(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sample bool
		rules  []int
	}{
		{name: "stream 503", sample: true},
		{name: "stream 429", sample: true},
		{name: "rules 503", sample: false, rules: []int{503}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status := http.StatusServiceUnavailable
			if strings.Contains(tc.name, "429") {
				status = http.StatusTooManyRequests
			}
			f := newFakeX(t, func(c *streamConn) { c.Fail(status, nil, "{}") })
			f.rulesStatus = tc.rules
			s := newTestSource(t, f, tc.sample)
			s.Rules = []Rule{{Value: "kafka"}}
			s.Sleep = nil // the real one: 5 s or a minute
			r := start(t, s.Source)
			deadline := time.Now().Add(5 * time.Second)
			for len(f.seen()) == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			begin := time.Now()
			if err := r.stop(t); err != nil {
				t.Errorf("Run after cancel: %v, want nil", err)
			}
			if d := time.Since(begin); d > time.Second {
				t.Errorf("Run took %v to return after cancel", d)
			}
			if n := len(f.seen()); n != 1 {
				t.Errorf("requests: %d, want 1", n)
			}
		})
	}
}

// Cancelling while connected returns nil at once too.
func TestCancelWhileStreaming(t *testing.T) {
	f := newFakeX(t)
	s := newTestSource(t, f, true)
	r := start(t, s.Source)
	f.waitConn(t, 1)
	begin := time.Now()
	if err := r.stop(t); err != nil {
		t.Errorf("Run: %v, want nil", err)
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("Run took %v to return", d)
	}
}

// Log previews of long lines are cut between characters, not inside one.
func TestClipKeepsCharactersWhole(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"카프카", 9, "카프카"},
		{"카프카", 8, "카프…"},
		{"카프카", 4, "카…"},
		{"kafka", 3, "kaf…"},
	} {
		if got := clip(tc.in, tc.n); got != tc.want || !utf8.ValidString(got) {
			t.Errorf("clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
