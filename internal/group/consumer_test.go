package group

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// consumerHB sends a ConsumerGroupHeartbeat with the member's subscription
// and the partitions it owns (of topic "t").
func consumerHB(c *Coordinator, member string, instance *string, epoch int32, owned ...int32) *kmsg.ConsumerGroupHeartbeatResponse {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.SetVersion(1)
	req.Group, req.MemberID, req.InstanceID, req.MemberEpoch = "g", member, instance, epoch
	req.RebalanceTimeoutMillis = 10_000
	req.SubscribedTopicNames = []string{"t"}
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	if len(owned) > 0 {
		req.Topics = append(req.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: topicID("t"), Partitions: owned})
	}
	if epoch < 0 {
		req.RebalanceTimeoutMillis, req.SubscribedTopicNames, req.Topics = -1, nil, nil
	}
	return c.ConsumerHeartbeat(cl, req)
}

// assigned lists the partitions of "t" in a heartbeat answer (nil: none sent).
func assigned(t *testing.T, resp *kmsg.ConsumerGroupHeartbeatResponse) []int32 {
	t.Helper()
	if resp.ErrorCode != 0 {
		t.Fatalf("heartbeat: %v %s", kerr.ErrorForCode(resp.ErrorCode), optional(resp.ErrorMessage))
	}
	if resp.Assignment == nil {
		return nil
	}
	out := []int32{}
	for _, tp := range resp.Assignment.Topics {
		out = append(out, tp.Partitions...)
	}
	return out
}

// neverTwice fails if a partition is assigned to (or still being revoked
// by) two members at once.
func neverTwice(t *testing.T, c *Coordinator) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	owner := map[topicIDPartition]string{}
	for _, m := range c.groups["g"].cg.members {
		for p := range m.assigned {
			if o, dup := owner[p]; dup {
				t.Fatalf("partition %d held by %s and %s", p.partition, o, m.id)
			}
			owner[p] = m.id
		}
		for p := range m.revoking {
			if o, dup := owner[p]; dup {
				t.Fatalf("partition %d held by %s and %s (revoking)", p.partition, o, m.id)
			}
			owner[p] = m.id
		}
	}
}

func equal(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// KIP-848 reconciliation: a partition moves only after its owner has
// revoked it; epochs advance once a member holds its target.
func TestConsumerRevokeBeforeAssign(t *testing.T) {
	c, _ := newTestCoordinator(t, Config{}, testTopics{"t": 2})
	ra := consumerHB(c, "A", nil, 0)
	if got := assigned(t, ra); !equal(got, []int32{0, 1}) {
		t.Fatalf("A alone was given %v", got)
	}
	ea := ra.MemberEpoch
	rb := consumerHB(c, "B", nil, 0)
	if got := assigned(t, rb); len(got) != 0 {
		t.Fatalf("B was given %v while A still holds everything", got)
	}
	eb := rb.MemberEpoch
	if eb <= ea {
		t.Fatalf("B's epoch %d is not past A's %d", eb, ea)
	}
	neverTwice(t, c)

	// A is told to give one partition up, keeping its epoch meanwhile.
	ra = consumerHB(c, "A", nil, ea, 0, 1)
	keep := assigned(t, ra)
	if len(keep) != 1 || ra.MemberEpoch != ea {
		t.Fatalf("A keeps %v at epoch %d (was %d), want one partition at the same epoch", keep, ra.MemberEpoch, ea)
	}
	neverTwice(t, c)
	if got := assigned(t, consumerHB(c, "B", nil, eb)); len(got) != 0 {
		t.Fatalf("B got %v before A released it", got)
	}
	// A releases it: A reaches the new epoch, then B gets the partition.
	ra = consumerHB(c, "A", nil, ea, keep...)
	if ra.ErrorCode != 0 || ra.MemberEpoch != eb {
		t.Fatalf("A after releasing: %v epoch %d, want epoch %d", kerr.ErrorForCode(ra.ErrorCode), ra.MemberEpoch, eb)
	}
	got := assigned(t, consumerHB(c, "B", nil, eb))
	if len(got) != 1 || got[0] == keep[0] {
		t.Fatalf("B was given %v, A keeps %v", got, keep)
	}
	neverTwice(t, c)
}

func TestConsumerEpochFencing(t *testing.T) {
	c, _ := newTestCoordinator(t, Config{}, testTopics{"t": 2})
	ra := consumerHB(c, "A", nil, 0)
	ea := ra.MemberEpoch
	code(t, "an epoch from the future", consumerHB(c, "A", nil, ea+5).ErrorCode, kerr.FencedMemberEpoch)
	code(t, "an unknown member", consumerHB(c, "Z", nil, 3).ErrorCode, kerr.UnknownMemberID)
	rb := consumerHB(c, "B", nil, 0)
	keep := assigned(t, consumerHB(c, "A", nil, ea, 0, 1)) // told to revoke one
	ra = consumerHB(c, "A", nil, ea, keep...)              // released it
	if ra.MemberEpoch != rb.MemberEpoch {
		t.Fatalf("A's epoch %d after releasing, want %d", ra.MemberEpoch, rb.MemberEpoch)
	}
	// A lost that answer and heartbeats with its previous epoch: fine while
	// it owns only what it was given, fenced once it claims more.
	code(t, "the previous epoch, owning what it was given", consumerHB(c, "A", nil, ea, keep...).ErrorCode, errNone)
	code(t, "the previous epoch, owning more", consumerHB(c, "A", nil, ea, 0, 1).ErrorCode, kerr.FencedMemberEpoch)
}

// A member that does not release a revoked partition within its rebalance
// timeout is removed, however often it heartbeats; its partitions move on.
func TestConsumerRevocationTimeout(t *testing.T) {
	c, clk := newTestCoordinator(t, Config{}, testTopics{"t": 2})
	ea := consumerHB(c, "A", nil, 0).MemberEpoch
	eb := consumerHB(c, "B", nil, 0).MemberEpoch
	consumerHB(c, "A", nil, ea, 0, 1) // told to revoke one; its rebalance timeout is 10 s
	for i := 0; i < 3; i++ {
		clk.Advance(3 * time.Second)
		code(t, "A's heartbeat still owning both", consumerHB(c, "A", nil, ea, 0, 1).ErrorCode, errNone)
	}
	clk.Advance(1100 * time.Millisecond)
	code(t, "A after its revocation timeout", consumerHB(c, "A", nil, ea, 0, 1).ErrorCode, kerr.UnknownMemberID)
	if got := assigned(t, consumerHB(c, "B", nil, eb)); !equal(got, []int32{0, 1}) {
		t.Fatalf("B was given %v once A was removed", got)
	}
}

func TestConsumerSessionTimeout(t *testing.T) {
	c, clk := newTestCoordinator(t, Config{ConsumerSessionTimeout: 45 * time.Second}, testTopics{"t": 1})
	ea := consumerHB(c, "A", nil, 0).MemberEpoch
	clk.Advance(44 * time.Second)
	code(t, "within the session", consumerHB(c, "A", nil, ea, 0).ErrorCode, errNone)
	clk.Advance(45 * time.Second)
	code(t, "after the session", consumerHB(c, "A", nil, ea, 0).ErrorCode, kerr.UnknownMemberID)
}

// A static member leaving with epoch -2 keeps its place and partitions for
// its session: back with a new member id, it has them at once. Leaving
// with -1 gives them up.
func TestConsumerStaticLeave(t *testing.T) {
	c, clk := newTestCoordinator(t, Config{}, testTopics{"t": 2})
	inst := "instance-1"
	rs := consumerHB(c, "S1", &inst, 0)
	parts, es := assigned(t, rs), rs.MemberEpoch
	code(t, "epoch -2 without an instance id", consumerHB(c, "X", nil, -2).ErrorCode, kerr.InvalidRequest)
	if r := consumerHB(c, "S1", &inst, -2); r.ErrorCode != 0 || r.MemberEpoch != -2 {
		t.Fatalf("static leave: %v epoch %d", kerr.ErrorForCode(r.ErrorCode), r.MemberEpoch)
	}
	clk.Advance(10 * time.Second)
	code(t, "another member taking the instance", func() int16 {
		c.mu.Lock()
		c.groups["g"].cg.members["S1"].left = false // as if it were still there
		c.mu.Unlock()
		r := consumerHB(c, "S2", &inst, 0)
		c.mu.Lock()
		c.groups["g"].cg.members["S1"].left = true
		c.mu.Unlock()
		return r.ErrorCode
	}(), kerr.UnreleasedInstanceID)
	rs = consumerHB(c, "S2", &inst, 0)
	if got := assigned(t, rs); !equal(got, parts) || rs.MemberEpoch != es {
		t.Fatalf("back as S2: %v at epoch %d, had %v at epoch %d", got, rs.MemberEpoch, parts, es)
	}
	code(t, "the old id leaving", consumerHB(c, "S1", &inst, -1).ErrorCode, kerr.FencedInstanceID)
	if r := consumerHB(c, "S2", &inst, -1); r.ErrorCode != 0 || r.MemberEpoch != -1 {
		t.Fatalf("leave: %v epoch %d", kerr.ErrorForCode(r.ErrorCode), r.MemberEpoch)
	}
	c.mu.Lock()
	n := len(c.groups["g"].cg.members)
	c.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d members after the static member left for good", n)
	}
	// Without coming back, a static member that left with -2 is gone when
	// its session ends.
	consumerHB(c, "S3", &inst, 0)
	consumerHB(c, "S3", &inst, -2)
	clk.Advance(46 * time.Second)
	code(t, "after the session of a member that left with -2", consumerHB(c, "S3", &inst, -1).ErrorCode, kerr.UnknownMemberID)
}
