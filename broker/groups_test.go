package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupSettings make group timeouts short enough for tests.
var groupSettings = map[string]string{
	"group.min.session.timeout.ms":     "100",
	"group.initial.rebalance.delay.ms": "0",
}

func groupClient(t *testing.T, b *Broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addr())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close) // a test may close it earlier (a member leaving); closing twice is harmless
	return cl
}

func groupCreateTopic(t *testing.T, b *Broker, topic string, partitions int32) {
	t.Helper()
	cl := groupClient(t, b)
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
}

func groupProduce(t *testing.T, b *Broker, topic string, n int) {
	t.Helper()
	cl := groupClient(t, b, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	defer cl.Close()
	for i := 0; i < n; i++ {
		cl.Produce(context.Background(), &kgo.Record{Value: []byte(fmt.Sprint(i))}, nil)
	}
	if err := cl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// assignments records what a group member was given and had taken away.
type assignments struct {
	mu       sync.Mutex
	assigned map[int32]bool
	revokes  int
}

func (a *assignments) opts() []kgo.Opt {
	a.assigned = map[int32]bool{}
	return []kgo.Opt{
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			a.mu.Lock()
			defer a.mu.Unlock()
			for _, ps := range m {
				for _, p := range ps {
					a.assigned[p] = true
				}
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			a.mu.Lock()
			defer a.mu.Unlock()
			for _, ps := range m {
				for _, p := range ps {
					delete(a.assigned, p)
				}
				if len(ps) > 0 {
					a.revokes++
				}
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			a.mu.Lock()
			defer a.mu.Unlock()
			for _, ps := range m {
				for _, p := range ps {
					delete(a.assigned, p)
				}
			}
		}),
	}
}

func (a *assignments) partitions() []int32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []int32
	for p := range a.assigned {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pollLoop consumes in the background until the client closes.
func pollLoop(cl *kgo.Client, seen chan<- int64) {
	go func() {
		for {
			fs := cl.PollFetches(context.Background())
			if fs.IsClientClosed() {
				return
			}
			fs.EachRecord(func(r *kgo.Record) { seen <- int64(r.Partition)<<32 | r.Offset })
		}
	}()
}

// TestGroupMembersSplitPartitionsAndRebalance: members share the partitions
// without overlap, and when one leaves or stops heartbeating the others
// take its partitions over.
func TestGroupMembersSplitPartitionsAndRebalance(t *testing.T) {
	b := protoBroker(t, groupSettings)
	groupCreateTopic(t, b, "orders", 6)
	groupProduce(t, b, "orders", 600)

	seen := make(chan int64, 10000)
	var as [3]assignments
	var members [3]*kgo.Client
	for i := range members {
		opts := append(as[i].opts(), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("orders"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.SessionTimeout(3*time.Second), kgo.HeartbeatInterval(100*time.Millisecond),
			kgo.Balancers(kgo.RangeBalancer()))
		members[i] = groupClient(t, b, opts...)
		pollLoop(members[i], seen)
	}
	waitFor(t, "three members with two partitions each", func() bool {
		total := map[int32]bool{}
		for i := range as {
			ps := as[i].partitions()
			if len(ps) != 2 {
				return false
			}
			for _, p := range ps {
				total[p] = true
			}
		}
		return len(total) == 6
	})
	got := map[int64]bool{}
	waitFor(t, "all 600 records", func() bool {
		for {
			select {
			case k := <-seen:
				got[k] = true
			default:
				return len(got) == 600
			}
		}
	})

	// A member leaves: the remaining two split all six partitions.
	members[2].Close()
	waitFor(t, "two members covering six partitions", func() bool {
		a, b := as[0].partitions(), as[1].partitions()
		return len(a) == 3 && len(b) == 3
	})

	// A member whose session times out (it never heartbeats again) is removed.
	adm := kadm.NewClient(members[0])
	raw := groupClient(t, b)
	defer raw.Close()
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "g", 300, 5000
	join.ProtocolType = "consumer"
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"orders"}
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
	resp, err := join.RequestWith(context.Background(), raw)
	if err != nil || resp.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("first join: %v %v", resp, err)
	}
	join.MemberID = resp.MemberID
	ghost := resp.MemberID
	go join.RequestWith(context.Background(), raw) // joins, then goes silent
	waitFor(t, "the silent member to join and then be removed", func() bool {
		described, err := adm.DescribeGroups(context.Background(), "g")
		if err != nil {
			return false
		}
		for _, m := range described["g"].Members {
			if m.MemberID == ghost {
				return false
			}
		}
		return len(as[0].partitions())+len(as[1].partitions()) == 6 && described["g"].State == "Stable"
	})
	members[0].Close()
	members[1].Close()
}

// TestGroupCooperativeRebalanceIsIncremental: with cooperative-sticky, a new
// member takes partitions over without the first member giving up the ones
// it keeps.
func TestGroupCooperativeRebalanceIsIncremental(t *testing.T) {
	b := protoBroker(t, groupSettings)
	groupCreateTopic(t, b, "coop", 4)
	opts := func(a *assignments) []kgo.Opt {
		return append(a.opts(), kgo.ConsumerGroup("coop-g"), kgo.ConsumeTopics("coop"),
			kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.HeartbeatInterval(100*time.Millisecond))
	}
	var a1, a2 assignments
	c1 := groupClient(t, b, opts(&a1)...)
	defer c1.Close()
	pollLoop(c1, make(chan int64, 100))
	waitFor(t, "first member owning all four partitions", func() bool { return len(a1.partitions()) == 4 })
	kept := a1.partitions()

	c2 := groupClient(t, b, opts(&a2)...)
	defer c2.Close()
	pollLoop(c2, make(chan int64, 100))
	waitFor(t, "partitions split two and two", func() bool {
		return len(a1.partitions()) == 2 && len(a2.partitions()) == 2
	})
	// Incremental: the first member only lost the partitions that moved.
	for _, p := range a1.partitions() {
		found := false
		for _, k := range kept {
			found = found || k == p
		}
		if !found {
			t.Fatalf("first member gained partition %d it never had", p)
		}
	}
	a1.mu.Lock()
	revokes := a1.revokes
	a1.mu.Unlock()
	if revokes != 1 {
		t.Fatalf("cooperative rebalance revoked %d times from the first member, want one incremental revoke", revokes)
	}
}

// TestGroupStaticMemberRestartKeepsAssignment: KIP-345. A static member that
// restarts within its session timeout gets its partitions back and the
// other member sees no rebalance.
func TestGroupStaticMemberRestartKeepsAssignment(t *testing.T) {
	b := protoBroker(t, groupSettings)
	groupCreateTopic(t, b, "static", 4)
	opts := func(a *assignments, instance string) []kgo.Opt {
		return append(a.opts(), kgo.ConsumerGroup("static-g"), kgo.ConsumeTopics("static"),
			kgo.InstanceID(instance), kgo.SessionTimeout(20*time.Second),
			kgo.HeartbeatInterval(100*time.Millisecond), kgo.Balancers(kgo.RangeBalancer()))
	}
	var a1, a2 assignments
	c1 := groupClient(t, b, opts(&a1, "one")...)
	pollLoop(c1, make(chan int64, 100))
	c2 := groupClient(t, b, opts(&a2, "two")...)
	defer c2.Close()
	pollLoop(c2, make(chan int64, 100))
	waitFor(t, "two static members with two partitions each", func() bool {
		return len(a1.partitions()) == 2 && len(a2.partitions()) == 2
	})
	before := a1.partitions()
	a2.mu.Lock()
	revokesBefore := a2.revokes
	a2.mu.Unlock()

	c1.Close() // a static member does not leave the group when it stops
	var restarted assignments
	c1b := groupClient(t, b, opts(&restarted, "one")...)
	defer c1b.Close()
	pollLoop(c1b, make(chan int64, 100))
	waitFor(t, "the restarted member to get its partitions back", func() bool {
		return fmt.Sprint(restarted.partitions()) == fmt.Sprint(before)
	})
	time.Sleep(300 * time.Millisecond) // time for a rebalance, if one were wrongly triggered
	a2.mu.Lock()
	defer a2.mu.Unlock()
	if a2.revokes != revokesBefore || len(a2.assigned) != 2 {
		t.Fatalf("the other member was disturbed by the restart: %d revokes, %d partitions", a2.revokes-revokesBefore, len(a2.assigned))
	}

	// As Kafka, the group's record in __consumer_offsets names the new
	// member id of instance "one".
	described, err := protoAdmin(t, b).DescribeGroups(protoCtx(t), "static-g")
	if err != nil {
		t.Fatal(err)
	}
	var current string
	for _, m := range described["static-g"].Members {
		if m.InstanceID != nil && *m.InstanceID == "one" {
			current = m.MemberID
		}
	}
	var logged []string
	for _, e := range readAllOffsetsTopic(t, b) {
		if e.members != nil && len(e.members.Members) > 0 {
			logged = nil
			for _, m := range e.members.Members {
				logged = append(logged, m.MemberID)
			}
		}
	}
	if current == "" || !slices.Contains(logged, current) {
		t.Errorf("the last membership in %s lists %q, not instance one's member %q", offsetsTopic, logged, current)
	}
}

// TestGroupOffsetsPersistAndResume: a consumer that restarts resumes after
// its last commit, also after the broker restarts.
func TestGroupOffsetsPersistAndResume(t *testing.T) {
	dir := t.TempDir()
	b := protoBrokerAt(t, dir, groupSettings)
	groupCreateTopic(t, b, "resume", 2)
	groupProduce(t, b, "resume", 100)

	consume := func(b *Broker, n int) []int64 {
		cl := groupClient(t, b, kgo.ConsumerGroup("resume-g"), kgo.ConsumeTopics("resume"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
			kgo.HeartbeatInterval(100*time.Millisecond))
		defer cl.Close()
		var got []int64
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for len(got) < n {
			fs := cl.PollRecords(ctx, n-len(got))
			if err := fs.Err(); err != nil {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) { got = append(got, int64(r.Partition)<<32|r.Offset) })
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatal(err)
			}
		}
		return got
	}
	first := consume(b, 40)
	second := consume(b, 30)
	b.Close()
	b2 := protoBrokerAt(t, dir, groupSettings)
	third := consume(b2, 30)

	all := map[int64]bool{}
	for _, k := range append(append(first, second...), third...) {
		if all[k] {
			t.Fatalf("record %d/%d consumed twice: the group did not resume after its commit", k>>32, k&0xffffffff)
		}
		all[k] = true
	}
	if len(all) != 100 {
		t.Fatalf("consumed %d distinct records, want 100", len(all))
	}

	cl := groupClient(t, b2)
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), "resume-g")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum != 100 {
		t.Fatalf("committed offsets add up to %d after restart, want 100", sum)
	}
}

// TestGroupErrors: Kafka's error codes for bad group requests, never a hang.
func TestGroupErrors(t *testing.T) {
	b := protoBroker(t, groupSettings)
	groupCreateTopic(t, b, "errs", 1)
	cl := groupClient(t, b)
	defer cl.Close()
	ctx := context.Background()

	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "nobody", "ghost", 1
	if r, err := hb.RequestWith(ctx, cl); err != nil || r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat of unknown member: %v %v", r, err)
	}
	join := kmsg.NewPtrJoinGroupRequest()
	join.SessionTimeoutMillis, join.ProtocolType = 1000, "consumer"
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
	// The client first asks FindCoordinator, which refuses the empty id.
	if r, err := join.RequestWith(ctx, cl); !errors.Is(err, kerr.InvalidGroupID) && (err != nil || r.ErrorCode != kerr.InvalidGroupID.Code) {
		t.Fatalf("join with empty group id: %v %v", r, err)
	}
	join.Group, join.SessionTimeoutMillis = "g", 50
	if r, err := join.RequestWith(ctx, cl); err != nil || r.ErrorCode != kerr.InvalidSessionTimeout.Code {
		t.Fatalf("join with too short session: %v %v", r, err)
	}
	join.SessionTimeoutMillis = 1000
	r, _ := join.RequestWith(ctx, cl)
	join.MemberID = r.MemberID
	r, err := join.RequestWith(ctx, cl)
	if err != nil || r.ErrorCode != 0 || r.LeaderID != r.MemberID {
		t.Fatalf("join: %v %v", r, err)
	}
	hb.Group, hb.MemberID, hb.Generation = "g", r.MemberID, r.Generation+5
	if r, _ := hb.RequestWith(ctx, cl); r.ErrorCode != kerr.IllegalGeneration.Code {
		t.Fatalf("heartbeat with wrong generation: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	other := kmsg.NewPtrJoinGroupRequest()
	*other = *join
	other.ProtocolType = "connect"
	other.MemberID = ""
	if r, _ := other.RequestWith(ctx, cl); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("join with another protocol type: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.MemberID, commit.Generation = "g", "ghost", r.Generation
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "errs", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
	if r, _ := commit.RequestWith(ctx, cl); r.Topics[0].Partitions[0].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("commit by unknown member: %v", kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
	}
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"g", "missing"}
	dr, _ := del.RequestWith(ctx, cl)
	if dr.Groups[0].ErrorCode != kerr.NonEmptyGroup.Code || dr.Groups[1].ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("delete groups: %v / %v", kerr.ErrorForCode(dr.Groups[0].ErrorCode), kerr.ErrorForCode(dr.Groups[1].ErrorCode))
	}

	// A member waiting in JoinGroup when the broker shuts down is answered.
	join2 := kmsg.NewPtrJoinGroupRequest()
	*join2 = *join
	join2.Group, join2.MemberID = "slow", ""
	join2.RebalanceTimeoutMillis = 60000
	first, _ := join2.RequestWith(ctx, cl)
	join2.MemberID = first.MemberID
	join2.RequestWith(ctx, cl) // member one is in; a second member makes the next join wait
	join3 := kmsg.NewPtrJoinGroupRequest()
	*join3 = *join2
	join3.MemberID = ""
	r3, _ := join3.RequestWith(ctx, cl)
	join3.MemberID = r3.MemberID
	done := make(chan error, 1)
	go func() {
		_, err := join3.RequestWith(ctx, cl)
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	go b.Close()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("a JoinGroup waiting for other members hung through shutdown")
	}
}

// TestGroupAdmin: ListGroups (with the state filter), DescribeGroups,
// OffsetDelete and DeleteGroups through kadm.
func TestGroupAdmin(t *testing.T) {
	b := protoBroker(t, groupSettings)
	groupCreateTopic(t, b, "adm", 2)
	groupProduce(t, b, "adm", 10)
	ctx := context.Background()
	cl := groupClient(t, b, kgo.ConsumerGroup("live"), kgo.ConsumeTopics("adm"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	for n := 0; n < 10; {
		n += cl.PollFetches(ctx).NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	admin := groupClient(t, b)
	defer admin.Close()
	adm := kadm.NewClient(admin)
	// A group committed to without membership.
	if _, err := adm.CommitOffsets(ctx, "manual", kadm.OffsetsFromRecords(kgo.Record{Topic: "adm", Partition: 0, Offset: 4})); err != nil {
		t.Fatal(err)
	}

	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := listed["live"]; !ok || listed["live"].State != "Stable" || listed["manual"].State != "Empty" {
		t.Fatalf("list groups: %+v", listed)
	}
	stable, err := adm.ListGroups(ctx, "Stable")
	if err != nil || len(stable) != 1 {
		t.Fatalf("list groups in Stable: %+v %v", stable, err)
	}
	described, err := adm.DescribeGroups(ctx, "live")
	if err != nil {
		t.Fatal(err)
	}
	d := described["live"]
	if d.State != "Stable" || d.Protocol == "" || len(d.Members) != 1 || len(d.AssignedPartitions()["adm"]) != 2 {
		t.Fatalf("describe group: %+v", d)
	}
	lag, err := adm.Lag(ctx, "live")
	if err != nil {
		t.Fatal(err)
	}
	if total := lag["live"].Lag.Total(); total != 0 {
		t.Fatalf("lag of a caught-up group is %d", total)
	}

	if resp, err := adm.DeleteOffsets(ctx, "live", kadm.TopicsSet{"adm": {0: {}}}); err != nil || resp.Error() == nil {
		t.Fatalf("deleting offsets of a subscribed topic should fail: %v %v", resp, err)
	}
	if resp, err := adm.DeleteOffsets(ctx, "manual", kadm.TopicsSet{"adm": {0: {}}}); err != nil || resp.Error() != nil {
		t.Fatalf("delete offsets of an empty group: %v %v", resp, err)
	}
	if del, err := adm.DeleteGroups(ctx, "manual"); err != nil || del.Error() != nil {
		t.Fatalf("delete empty group: %v %v", del, err)
	}
	if listed, _ := adm.ListGroups(ctx); len(listed) != 1 {
		t.Fatalf("after delete: %+v", listed)
	}
}

// TestGroupOffsetsGoWithTheirTopic: deleting a topic deletes the offsets
// groups committed for it.
func TestGroupOffsetsGoWithTheirTopic(t *testing.T) {
	b := protoBroker(t, groupSettings)
	groupCreateTopic(t, b, "gone", 1)
	ctx := context.Background()
	cl := groupClient(t, b)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CommitOffsets(ctx, "g", kadm.OffsetsFromRecords(kgo.Record{Topic: "gone", Partition: 0, Offset: 7})); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.DeleteTopics(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	groupCreateTopic(t, b, "gone", 1)
	offs, err := adm.FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("gone", 0); ok && o.At >= 0 {
		t.Fatalf("the re-created topic inherited committed offset %d", o.At)
	}
}
