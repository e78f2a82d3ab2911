package group

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/clock"
)

// testTopics is the broker's topic list for the coordinator under test.
type testTopics map[string]int32 // name -> partitions

func topicID(name string) (id [16]byte) { copy(id[:], name); return id }

func (tt testTopics) TopicByName(name string) ([16]byte, int32, bool) {
	n, ok := tt[name]
	return topicID(name), n, ok
}

func (tt testTopics) TopicByID(id [16]byte) (string, int32, bool) {
	for name, n := range tt {
		if topicID(name) == id {
			return name, n, true
		}
	}
	return "", 0, false
}

func (tt testTopics) TopicNames() []string {
	var out []string
	for name := range tt {
		out = append(out, name)
	}
	return out
}

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// newTestCoordinator is a coordinator on a fake clock: timers run only
// when the test advances it.
func newTestCoordinator(t *testing.T, cfg Config, topics testTopics) (*Coordinator, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(start)
	cfg.Clock = clk
	if cfg.MinSessionTimeout == 0 {
		cfg.MinSessionTimeout, cfg.MaxSessionTimeout = time.Second, 5*time.Minute
	}
	c, err := New(cfg, MemoryStore{}, topics, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, clk
}

var cl = Client{ID: "test-client", Host: "/127.0.0.1"}

// answered runs a JoinGroup or SyncGroup wait in the background; the
// channel closes once the response is complete.
func answered(wait func()) <-chan struct{} {
	done := make(chan struct{})
	if wait == nil {
		close(done)
		return done
	}
	go func() { wait(); close(done) }()
	return done
}

// mustAnswer waits for a response the coordinator has completed (the wait
// only covers the hand-off to the background goroutine).
func mustAnswer(t *testing.T, what string, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no answer", what)
	}
}

func code(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	if got != want.Code {
		t.Fatalf("%s: error %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

// ---- classic protocol requests ----

func joinRequest(group, member string, instance *string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.SetVersion(5)
	req.Group, req.MemberID, req.InstanceID = group, member, instance
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10_000, 30_000
	req.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", []byte{0, 1, 0, 0, 0, 0, 0, 0}
	req.Protocols = append(req.Protocols, p)
	return req
}

func syncRequest(group, member string, generation int32, assign map[string][]byte) *kmsg.SyncGroupRequest {
	req := kmsg.NewPtrSyncGroupRequest()
	req.SetVersion(3)
	req.Group, req.MemberID, req.Generation = group, member, generation
	for id, a := range assign {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: a})
	}
	return req
}

func heartbeatRequest(group, member string, generation int32) *kmsg.HeartbeatRequest {
	req := kmsg.NewPtrHeartbeatRequest()
	req.SetVersion(3)
	req.Group, req.MemberID, req.Generation = group, member, generation
	return req
}

// joinNew joins a new dynamic member (MEMBER_ID_REQUIRED, then the join
// with the id it was given) and returns its id with the pending answer.
func joinNew(t *testing.T, c *Coordinator, group string) (string, *kmsg.JoinGroupResponse, <-chan struct{}) {
	t.Helper()
	resp, wait := c.Join(cl, joinRequest(group, "", nil))
	code(t, "first join", resp.ErrorCode, kerr.MemberIDRequired)
	if wait != nil || resp.MemberID == "" {
		t.Fatalf("MEMBER_ID_REQUIRED came with a wait or without an id: %q", resp.MemberID)
	}
	id := resp.MemberID
	resp, wait = c.Join(cl, joinRequest(group, id, nil))
	return id, resp, answered(wait)
}

// stateOf reads a group's state under the coordinator's lock.
func stateOf(c *Coordinator, name string) (state, int32, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[name]
	if g == nil {
		return -1, 0, 0
	}
	return g.state, g.generation, len(g.members)
}
