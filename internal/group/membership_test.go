package group

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// stableGroup forms a stable group of n dynamic members (the first is the
// leader) and returns their ids and the generation.
func stableGroup(t *testing.T, c *Coordinator, g string, n int) ([]string, int32) {
	t.Helper()
	var ids []string
	var dones []<-chan struct{}
	var resps []*kmsg.JoinGroupResponse
	for i := 0; i < n; i++ {
		id, resp, done := joinNew(t, c, g)
		ids, resps, dones = append(ids, id), append(resps, resp), append(dones, done)
		// Everyone already in rejoins, so that the join phase can end.
		for j := 0; j < i; j++ {
			resps[j], dones[j] = rejoin(t, c, g, ids[j])
		}
	}
	for i := range ids {
		mustAnswer(t, "join", dones[i])
		code(t, "join", resps[i].ErrorCode, errNone)
	}
	gen := resps[0].Generation
	assign := map[string][]byte{}
	for _, id := range ids {
		assign[id] = []byte("assignment of " + id)
	}
	for i := len(ids) - 1; i >= 0; i-- { // followers first: they wait for the leader
		req := syncRequest(g, ids[i], gen, nil)
		if i == 0 {
			req = syncRequest(g, ids[i], gen, assign)
		}
		resp, wait := c.Sync(cl, req)
		if i == 0 {
			mustAnswer(t, "leader sync", answered(wait))
		} else {
			defer func(resp *kmsg.SyncGroupResponse, id string, done <-chan struct{}) {
				mustAnswer(t, "follower sync", done)
				if string(resp.MemberAssignment) != "assignment of "+id {
					t.Fatalf("%s was assigned %q", id, resp.MemberAssignment)
				}
			}(resp, ids[i], answered(wait))
		}
	}
	if st, _, _ := stateOf(c, g); st != stateStable {
		t.Fatalf("group is %v after every member synced", st)
	}
	return ids, gen
}

func rejoin(t *testing.T, c *Coordinator, g, id string) (*kmsg.JoinGroupResponse, <-chan struct{}) {
	t.Helper()
	resp, wait := c.Join(cl, joinRequest(g, id, nil))
	return resp, answered(wait)
}

func heartbeat(c *Coordinator, g, id string, gen int32) int16 {
	return c.Heartbeat(cl, heartbeatRequest(g, id, gen)).ErrorCode
}

func TestClassicJoinSyncHeartbeatLeave(t *testing.T) {
	c, _ := newTestCoordinator(t, Config{}, nil)
	ids, gen := stableGroup(t, c, "g", 1)
	a := ids[0]
	code(t, "heartbeat in a stable group", heartbeat(c, "g", a, gen), errNone)
	code(t, "heartbeat with an old generation", heartbeat(c, "g", a, gen-1), kerr.IllegalGeneration)
	code(t, "heartbeat of a stranger", heartbeat(c, "g", "nobody", gen), kerr.UnknownMemberID)

	// A second member starts a rebalance; the first learns it from its heartbeat.
	b, respB, doneB := joinNew(t, c, "g")
	if st, _, _ := stateOf(c, "g"); st != statePreparingRebalance {
		t.Fatalf("state %v after a member joined, want PreparingRebalance", st)
	}
	code(t, "heartbeat during a rebalance", heartbeat(c, "g", a, gen), kerr.RebalanceInProgress)
	respA, doneA := rejoin(t, c, "g", a)
	mustAnswer(t, "a's rejoin", doneA)
	mustAnswer(t, "b's join", doneB)
	if respA.Generation != gen+1 || respB.Generation != gen+1 || respA.LeaderID != a || len(respA.Members) != 2 || len(respB.Members) != 0 {
		t.Fatalf("generation %d/%d leader %s, %d/%d members listed", respA.Generation, respB.Generation, respA.LeaderID, len(respA.Members), len(respB.Members))
	}
	code(t, "sync with the old generation", func() int16 { r, _ := c.Sync(cl, syncRequest("g", b, gen, nil)); return r.ErrorCode }(), kerr.IllegalGeneration)

	// b leaves: a must rejoin, and is then alone.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.SetVersion(3)
	leave.Group = "g"
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: b}}
	if r := c.Leave(cl, leave); r.ErrorCode != 0 || r.Members[0].ErrorCode != 0 {
		t.Fatalf("leave: %v / %v", kerr.ErrorForCode(r.ErrorCode), kerr.ErrorForCode(r.Members[0].ErrorCode))
	}
	respA, doneA = rejoin(t, c, "g", a)
	mustAnswer(t, "rejoin after the leave", doneA)
	if _, _, n := stateOf(c, "g"); n != 1 || respA.Generation != gen+2 {
		t.Fatalf("%d members in generation %d after the leave", n, respA.Generation)
	}
}

// A member that keeps heartbeating but does not rejoin is dropped when the
// rebalance timeout ends; the others start the new generation without it.
func TestClassicRebalanceTimeoutKicksAMemberThatDoesNotRejoin(t *testing.T) {
	c, clk := newTestCoordinator(t, Config{}, nil)
	ids, gen := stableGroup(t, c, "g", 2)
	a, b := ids[0], ids[1]
	_, respC, doneC := joinNew(t, c, "g")
	respA, doneA := rejoin(t, c, "g", a)
	for i := 0; i < 5; i++ { // 25 s of the 30 s rebalance timeout, b alive but not rejoining
		clk.Advance(5 * time.Second)
		code(t, "b's heartbeat", heartbeat(c, "g", b, gen), kerr.RebalanceInProgress)
	}
	if st, _, n := stateOf(c, "g"); st != statePreparingRebalance || n != 3 {
		t.Fatalf("before the rebalance timeout: %v with %d members", st, n)
	}
	clk.Advance(5 * time.Second)
	mustAnswer(t, "a's join", doneA)
	mustAnswer(t, "c's join", doneC)
	if st, g2, n := stateOf(c, "g"); st != stateCompletingRebalance || n != 2 || g2 != gen+1 || respA.Generation != g2 || respC.Generation != g2 {
		t.Fatalf("after the rebalance timeout: %v, generation %d, %d members", st, g2, n)
	}
	code(t, "the kicked member's heartbeat", heartbeat(c, "g", b, gen+1), kerr.UnknownMemberID)
}

// A member that stops heartbeating is removed once its session times out,
// and the others rebalance.
func TestClassicSessionTimeout(t *testing.T) {
	c, clk := newTestCoordinator(t, Config{}, nil)
	ids, gen := stableGroup(t, c, "g", 2)
	a, b := ids[0], ids[1]
	clk.Advance(6 * time.Second)
	code(t, "a's heartbeat", heartbeat(c, "g", a, gen), errNone)
	clk.Advance(3 * time.Second) // 9 s: b's 10 s session is not over yet
	code(t, "b's heartbeat is still welcome", heartbeat(c, "g", a, gen), errNone)
	if _, _, n := stateOf(c, "g"); n != 2 {
		t.Fatalf("%d members before the session timeout", n)
	}
	// b heartbeats no more; a does.
	for i := 0; i < 3; i++ {
		clk.Advance(4 * time.Second)
		heartbeat(c, "g", a, gen)
	}
	code(t, "a's heartbeat after b timed out", heartbeat(c, "g", a, gen), kerr.RebalanceInProgress)
	code(t, "b's heartbeat after its session", heartbeat(c, "g", b, gen), kerr.UnknownMemberID)
}

// A static member (KIP-345) that restarts within its session takes its
// place back with a new member id and no rebalance; its old id is fenced.
// After its session it is gone, and coming back is a rebalance.
func TestClassicStaticMemberRejoin(t *testing.T) {
	c, clk := newTestCoordinator(t, Config{}, nil)
	instance := "instance-1"
	resp, wait := c.Join(cl, joinRequest("g", "", &instance)) // static members need no MEMBER_ID_REQUIRED round
	mustAnswer(t, "static join", answered(wait))
	old, gen := resp.MemberID, resp.Generation
	sresp, swait := c.Sync(cl, syncRequest("g", old, gen, map[string][]byte{old: []byte("mine")}))
	mustAnswer(t, "static sync", answered(swait))
	code(t, "static sync", sresp.ErrorCode, errNone)

	clk.Advance(5 * time.Second) // restarted within its 10 s session
	resp, wait = c.Join(cl, joinRequest("g", "", &instance))
	if wait != nil {
		mustAnswer(t, "static rejoin", answered(wait))
	}
	code(t, "static rejoin", resp.ErrorCode, errNone)
	if resp.MemberID == old || resp.Generation != gen {
		t.Fatalf("rejoin: member %s (was %s) generation %d (was %d)", resp.MemberID, old, resp.Generation, gen)
	}
	if st, _, _ := stateOf(c, "g"); st != stateStable {
		t.Fatalf("a static rejoin rebalanced: %v", st)
	}
	fenced := heartbeatRequest("g", old, gen)
	fenced.InstanceID = &instance
	code(t, "the old incarnation's heartbeat", c.Heartbeat(cl, fenced).ErrorCode, kerr.FencedInstanceID)
	sresp, swait = c.Sync(cl, syncRequest("g", resp.MemberID, gen, nil))
	mustAnswer(t, "sync after the rejoin", answered(swait))
	if string(sresp.MemberAssignment) != "mine" {
		t.Fatalf("the rejoined member's assignment is %q", sresp.MemberAssignment)
	}

	clk.Advance(11 * time.Second) // no heartbeat: the session ends
	if _, _, n := stateOf(c, "g"); n != 0 {
		t.Fatalf("%d members after the static member's session ended", n)
	}
	resp, wait = c.Join(cl, joinRequest("g", "", &instance))
	mustAnswer(t, "join after the session", answered(wait))
	if resp.Generation <= gen {
		t.Fatalf("coming back after the session is generation %d, want a new one after %d", resp.Generation, gen)
	}
}

// group.initial.rebalance.delay.ms: the first rebalance of an empty group
// waits, and each member joining meanwhile extends the wait.
func TestClassicInitialRebalanceDelay(t *testing.T) {
	c, clk := newTestCoordinator(t, Config{InitialRebalanceDelay: 3 * time.Second}, nil)
	_, respA, doneA := joinNew(t, c, "g")
	clk.Advance(time.Second)
	_, _, doneB := joinNew(t, c, "g")
	clk.Advance(2900 * time.Millisecond) // 3.9 s: b's join moved the end to 4 s
	if st, _, _ := stateOf(c, "g"); st != statePreparingRebalance {
		t.Fatalf("state %v within the initial delay", st)
	}
	clk.Advance(200 * time.Millisecond)
	mustAnswer(t, "a", doneA)
	mustAnswer(t, "b", doneB)
	if respA.Generation != 1 || len(respA.Members) != 2 {
		t.Fatalf("first generation %d with %d members", respA.Generation, len(respA.Members))
	}
}

// Members that do not send SyncGroup within the rebalance timeout after the
// join phase are dropped, and the others rebalance.
func TestClassicSyncTimeout(t *testing.T) {
	c, clk := newTestCoordinator(t, Config{}, nil)
	join := func(id string) (*kmsg.JoinGroupResponse, <-chan struct{}) {
		req := joinRequest("g", id, nil)
		req.RebalanceTimeoutMillis = 4000 // shorter than the 10 s session
		resp, wait := c.Join(cl, req)
		return resp, answered(wait)
	}
	first, _ := join("")
	a := first.MemberID
	_, doneA := join(a)
	mustAnswer(t, "a", doneA)
	second, _ := join("")
	b := second.MemberID
	respB, doneB := join(b)
	respA, doneA := join(a)
	mustAnswer(t, "a", doneA)
	mustAnswer(t, "b", doneB)
	if respA.LeaderID != a || respB.Generation != respA.Generation {
		t.Fatalf("leader %s (a is %s), generations %d and %d", respA.LeaderID, a, respA.Generation, respB.Generation)
	}
	gen := respA.Generation
	// The leader, a, never syncs; b's sync waits for it.
	resp, wait := c.Sync(cl, syncRequest("g", b, gen, nil))
	syncB := answered(wait)
	clk.Advance(3900 * time.Millisecond)
	if st, _, n := stateOf(c, "g"); st != stateCompletingRebalance || n != 2 {
		t.Fatalf("within the rebalance timeout: %v with %d members", st, n)
	}
	clk.Advance(100 * time.Millisecond)
	mustAnswer(t, "b's sync", syncB)
	code(t, "b's sync once the leader was dropped", resp.ErrorCode, kerr.RebalanceInProgress)
	if st, _, n := stateOf(c, "g"); st != statePreparingRebalance || n != 1 {
		t.Fatalf("after the sync timeout: %v with %d members", st, n)
	}
	code(t, "a's heartbeat", heartbeat(c, "g", a, gen), kerr.UnknownMemberID)
}

// Offset expiry runs on the coordinator's clock: offsets a client committed
// without joining expire offsets.retention.minutes after their commit, and
// the group with them.
func TestOffsetsExpireOnTheClock(t *testing.T) {
	c, clk := newTestCoordinator(t, Config{OffsetsRetention: time.Hour, RetentionCheck: time.Minute, MaxMetadataBytes: 4096}, testTopics{"t": 1})
	req := kmsg.NewPtrOffsetCommitRequest()
	req.SetVersion(8)
	req.Group, req.Generation = "simple", -1
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 42}}}}
	code(t, "commit", c.Commit(cl, req).Topics[0].Partitions[0].ErrorCode, errNone)
	clk.Advance(59 * time.Minute)
	if !c.Has("simple") {
		t.Fatal("the group expired before offsets.retention.minutes")
	}
	clk.Advance(2 * time.Minute)
	if c.Has("simple") {
		t.Fatal("the group and its offsets outlived offsets.retention.minutes")
	}
}
