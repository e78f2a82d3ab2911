package x

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	ruleA = Rule{Value: "from:old_account", Tag: "old"}
	ruleB = Rule{Value: "kafka lang:ko", Tag: "kafka"}
	ruleC = Rule{Value: `"data pipeline" -is:retweet`, Tag: "pipeline"}
	ruleD = Rule{Value: "kafka or", Tag: "broken"}
)

const ruleDReason = "Ambiguous use of or as a keyword. Use a capitalized OR to use as a keyword. (at position 7)"

// rulesCalls describes the requests to the rules endpoint readably:
// "GET", "POST dry_run add value|tag, ...", "POST delete id, ...".
func rulesCalls(t *testing.T, f *fakeX) []string {
	t.Helper()
	var out []string
	for _, q := range f.seen() {
		if q.Path != rulesPath {
			continue
		}
		if q.Auth != "Bearer "+testToken {
			t.Errorf("rules request without the bearer token: %q", q.Auth)
		}
		if q.Method == http.MethodGet {
			out = append(out, "GET")
			continue
		}
		var body struct {
			Add    []Rule `json:"add"`
			Delete struct {
				IDs []string `json:"ids"`
			} `json:"delete"`
		}
		if err := json.Unmarshal([]byte(q.Body), &body); err != nil {
			t.Fatalf("rules request body %q: %v", q.Body, err)
		}
		s := "POST "
		if q.Query.Get("dry_run") == "true" {
			s += "dry_run "
		}
		if body.Add != nil {
			var rs []string
			for _, r := range body.Add {
				if r.ID != "" {
					t.Errorf("a rule to add carries an id: %+v", r)
				}
				rs = append(rs, r.Value+"|"+r.Tag)
			}
			s += "add " + strings.Join(rs, ", ")
		} else {
			s += "delete " + strings.Join(body.Delete.IDs, ", ")
		}
		out = append(out, s)
	}
	return out
}

func ruleKeys(rules []Rule) []string {
	var out []string
	for _, r := range rules {
		out = append(out, r.Value+"|"+r.Tag)
	}
	return out
}

func ruleID(f *fakeX, value string) string {
	for _, r := range f.serverRules() {
		if r.Value == value {
			return r.ID
		}
	}
	return ""
}

func TestRulesSync(t *testing.T) {
	for _, tc := range []struct {
		name      string
		server    []Rule
		config    []Rule
		keep      bool
		calls     func(f *fakeX) []string // the rules requests expected, given the server before the sync
		end       []Rule
		err       string   // Run's error; "" for none (and the stream is read)
		logs      []string // in the log
		notInLogs []string
	}{
		{
			name:   "add, validate, delete",
			server: []Rule{ruleA, ruleB}, config: []Rule{ruleB, ruleC, ruleD},
			calls: func(f *fakeX) []string {
				return []string{"GET", "POST dry_run add " + ruleC.Value + "|pipeline, kafka or|broken",
					"POST delete " + ruleID(f, ruleA.Value), "POST add " + ruleC.Value + "|pipeline"}
			},
			end:  []Rule{ruleB, ruleC},
			logs: []string{`X rejected a filter rule`, `rule="kafka or"`, "Ambiguous use of or", "filter rule added", "deleted=1"},
		},
		{
			name:   "keep rules",
			server: []Rule{ruleA, ruleB}, config: []Rule{ruleB, ruleC, ruleD}, keep: true,
			calls: func(f *fakeX) []string {
				return []string{"GET", "POST dry_run add " + ruleC.Value + "|pipeline, kafka or|broken", "POST add " + ruleC.Value + "|pipeline"}
			},
			end:  []Rule{ruleA, ruleB, ruleC},
			logs: []string{`rule="kafka or"`},
		},
		{
			name:   "in sync",
			server: []Rule{ruleB}, config: []Rule{ruleB},
			calls: func(*fakeX) []string { return []string{"GET"} },
			end:   []Rule{ruleB},
		},
		{
			// X keys rules by value: the new tag goes in once the old rule
			// is gone.
			name:   "tag changed",
			server: []Rule{{Value: "kafka", Tag: "old"}}, config: []Rule{{Value: "kafka", Tag: "new"}},
			calls: func(f *fakeX) []string {
				return []string{"GET", "POST dry_run add kafka|new", "POST delete " + ruleID(f, "kafka"), "POST add kafka|new"}
			},
			end:       []Rule{{Value: "kafka", Tag: "new"}},
			notInLogs: []string{"rejected"},
		},
		{
			name:   "tag changed, keep rules",
			server: []Rule{{Value: "kafka", Tag: "old"}}, config: []Rule{{Value: "kafka", Tag: "new"}}, keep: true,
			calls: func(f *fakeX) []string { return []string{"GET", "POST dry_run add kafka|new"} },
			end:   []Rule{{Value: "kafka", Tag: "old"}},
			logs:  []string{"already on the stream with another tag"},
		},
		{
			// Nothing is deleted when nothing valid would take its place.
			name:   "every rule rejected",
			server: []Rule{ruleA}, config: []Rule{ruleD},
			calls: func(*fakeX) []string { return []string{"GET", "POST dry_run add kafka or|broken"} },
			end:   []Rule{ruleA},
			err:   "rejected every filter rule",
			logs:  []string{`rule="kafka or"`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeX(t)
			f.invalid[ruleD.Value] = ruleDReason
			f.setRules(tc.server...)
			s := newTestSource(t, f, false)
			s.Rules = tc.config
			s.KeepRules = tc.keep
			wantCalls := tc.calls(f) // ids of the rules on the server before the sync
			r := start(t, s.Source)
			if tc.err != "" {
				err := r.wait(t)
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Run: %v, want an error mentioning %q", err, tc.err)
				}
				if f.streamConns() != 0 {
					t.Errorf("the stream was opened")
				}
			} else {
				f.waitConn(t, 1)
				if err := r.stop(t); err != nil {
					t.Fatalf("Run: %v", err)
				}
			}
			if got, want := rulesCalls(t, f), wantCalls; !slices.Equal(got, want) {
				t.Errorf("rules requests:\n got %q\nwant %q", got, want)
			}
			if got, want := ruleKeys(f.serverRules()), ruleKeys(tc.end); !slices.Equal(got, want) {
				t.Errorf("rules on the server: %q, want %q", got, want)
			}
			logs := s.logs.String()
			for _, w := range tc.logs {
				if !strings.Contains(logs, w) {
					t.Errorf("log lacks %q", w)
				}
			}
			for _, w := range tc.notInLogs {
				if strings.Contains(logs, w) {
					t.Errorf("log has %q", w)
				}
			}
			wantSleeps(t, s.sleeps)
		})
	}
}

// The kept rule keeps its id: it was not deleted and added again.
func TestRulesSyncKeepsExistingRule(t *testing.T) {
	f := newFakeX(t)
	f.setRules(ruleA, ruleB)
	idB := ruleID(f, ruleB.Value)
	s := newTestSource(t, f, false)
	s.Rules = []Rule{ruleB, ruleC}
	r := start(t, s.Source)
	f.waitConn(t, 1)
	r.stop(t)
	if got := ruleID(f, ruleB.Value); got != idB {
		t.Errorf("rule B has id %s, was %s", got, idB)
	}
}

// The filtered stream is read from its own path with the same fields
// after the rules are in place.
func TestFilteredStreamRequest(t *testing.T) {
	f := newFakeX(t, func(c *streamConn) { c.Line(post("1", "matched", "kafka")); c.Hold() })
	s := newTestSource(t, f, false)
	s.Rules = []Rule{ruleB}
	r := start(t, s.Source)
	r.waitMsgs(t, 1)
	r.stop(t)
	reqs := f.seen()
	last := reqs[len(reqs)-1]
	if last.Path != streamPath || last.Query.Get("tweet.fields") != s.TweetFields ||
		last.Query.Get("expansions") != "author_id" || last.Query.Get("user.fields") != "username,name" {
		t.Errorf("stream request %s ?%s", last.Path, last.Query.Encode())
	}
	for _, q := range reqs[:len(reqs)-1] {
		if q.Path != rulesPath {
			t.Errorf("before the stream: %s %s", q.Method, q.Path)
		}
	}
	if h := r.messages()[0].Headers; len(h) != 1 || string(h[0].Value) != "kafka" {
		t.Errorf("headers %v", h)
	}
}

// The rules calls retry what retrying can fix, with the same waits.
func TestRulesCallRetries(t *testing.T) {
	f := newFakeX(t)
	f.rulesStatus = []int{http.StatusServiceUnavailable, http.StatusServiceUnavailable, 0, http.StatusTooManyRequests}
	s := newTestSource(t, f, false)
	s.Rules = []Rule{ruleB}
	s.Now = func() time.Time { return fixedNow }
	r := start(t, s.Source)
	f.waitConn(t, 1)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	// GET 503, GET 503, GET ok, dry run 429, dry run, add
	wantSleeps(t, s.sleeps, 5*time.Second, 10*time.Second, time.Minute)
	if got := ruleKeys(f.serverRules()); !slices.Equal(got, ruleKeys([]Rule{ruleB})) {
		t.Errorf("rules on the server: %q", got)
	}
}
