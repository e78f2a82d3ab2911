package broker

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Tests of KIP-848 consumer groups: franz-go consumers with
// kgo.ServerSideBalancer (the Kafka 4 protocol), and raw
// ConsumerGroupHeartbeat exchanges for the protocol's fine print.

// consumerGroupSettings make heartbeats and sessions short enough for tests.
var consumerGroupSettings = map[string]string{
	"group.consumer.heartbeat.interval.ms": "100",
	"group.consumer.session.timeout.ms":    "1500",
}

// kip848Member is a franz-go consumer in a consumer-protocol group that
// records what it is assigned and every record it reads.
type kip848Member struct {
	*recordTally
	asg *assignments
}

func newKIP848Member(t *testing.T, b *Broker, group, topic string, opts ...kgo.Opt) *kip848Member {
	t.Helper()
	asg := &assignments{}
	all := append([]kgo.Opt{
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ServerSideBalancer(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.ClientID("kip848-test"),
	}, asg.opts()...)
	return &kip848Member{recordTally: startTally(groupClient(t, b, append(all, opts...)...), nil), asg: asg}
}

func describeConsumerGroup(t *testing.T, b *Broker, group string) kadm.DescribedConsumerGroup {
	t.Helper()
	cl := groupClient(t, b)
	defer cl.Close()
	d, err := kadm.NewClient(cl).DescribeConsumerGroups(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	g := d[group]
	if g.Err != nil {
		t.Fatalf("describe %s: %v", group, g.Err)
	}
	return g
}

// Two Kafka 4 consumers split the partitions without overlap, read every
// record between them, and when one leaves the other takes over the rest.
func TestConsumerGroupProtocolSplitsAndRebalances(t *testing.T) {
	b := protoBroker(t, consumerGroupSettings)
	groupCreateTopic(t, b, "clicks", 6)
	groupProduce(t, b, "clicks", 600)

	a := newKIP848Member(t, b, "kip848", "clicks")
	defer a.cl.Close()
	waitFor(t, "the first member to own all 6 partitions", func() bool { return len(a.asg.partitions()) == 6 })

	c := newKIP848Member(t, b, "kip848", "clicks")
	waitFor(t, "both members to own 3 partitions each", func() bool {
		return len(a.asg.partitions()) == 3 && len(c.asg.partitions()) == 3
	})
	for _, p := range a.asg.partitions() {
		if slices.Contains(c.asg.partitions(), p) {
			t.Fatalf("partition %d is assigned to both members: %v and %v", p, a.asg.partitions(), c.asg.partitions())
		}
	}
	g := describeConsumerGroup(t, b, "kip848")
	if g.State != "Stable" || len(g.Members) != 2 || g.AssignorName != "uniform" || g.Epoch != g.AssignmentEpoch {
		t.Fatalf("described group: state %s, %d members, assignor %q, epoch %d, assignment epoch %d", g.State, len(g.Members), g.AssignorName, g.Epoch, g.AssignmentEpoch)
	}
	for _, m := range g.Members {
		if m.MemberEpoch != g.Epoch || len(m.Assignment["clicks"]) != 3 || m.ClientID != "kip848-test" || !slices.Equal(m.SubscribedTopics, []string{"clicks"}) {
			t.Fatalf("described member %+v", m)
		}
	}

	waitFor(t, "all 600 records read", func() bool { return len(a.counts())+len(c.counts()) >= 600 })
	if err := c.cl.CommitUncommittedOffsets(context.Background()); err != nil {
		t.Fatalf("commit with the member epoch: %v", err)
	}
	c.cl.Close() // leaves with epoch -1
	waitFor(t, "the remaining member to own all 6 partitions", func() bool { return len(a.asg.partitions()) == 6 })
	groupProduce(t, b, "clicks", 60)
	waitFor(t, "the 60 new records (offsets 100-109 of each partition) read by the remaining member", func() bool {
		n := 0
		for k := range a.counts() {
			var p, o int
			fmt.Sscanf(k, "%d/%d", &p, &o)
			if o >= 100 {
				n++
			}
		}
		return n == 60
	})
	total := map[string]int{}
	for _, m := range []*kip848Member{a, c} {
		for k, v := range m.counts() {
			total[k] += v
		}
	}
	if len(total) != 660 {
		t.Fatalf("read %d distinct records, want 660", len(total))
	}

	adm := kadm.NewClient(groupClient(t, b))
	listed, err := adm.ListGroupsByType(context.Background(), []string{"consumer"})
	if err != nil {
		t.Fatal(err)
	}
	if lg, ok := listed["kip848"]; !ok || lg.ProtocolType != "consumer" {
		t.Fatalf("ListGroups type=consumer: %+v", listed)
	}
	if classic, _ := adm.ListGroupsByType(context.Background(), []string{"classic"}); len(classic) != 0 {
		t.Fatalf("ListGroups type=classic lists %v", classic.Groups())
	}
}

// The range assignor gives each member contiguous partitions of each topic.
func TestConsumerGroupProtocolRangeAssignor(t *testing.T) {
	b := protoBroker(t, consumerGroupSettings)
	groupCreateTopic(t, b, "ranged", 5)
	opts := []kgo.Opt{kgo.Balancers(kgo.RangeBalancer())}
	a := newKIP848Member(t, b, "ranger", "ranged", opts...)
	defer a.cl.Close()
	waitFor(t, "the first member to own all 5 partitions", func() bool { return len(a.asg.partitions()) == 5 })
	c := newKIP848Member(t, b, "ranger", "ranged", opts...)
	defer c.cl.Close()
	waitFor(t, "3 and 2 partitions", func() bool {
		return len(a.asg.partitions())+len(c.asg.partitions()) == 5 && len(c.asg.partitions()) > 0
	})
	g := describeConsumerGroup(t, b, "ranger")
	if g.AssignorName != "range" {
		t.Fatalf("assignor %q, want range", g.AssignorName)
	}
	var got [][]int32
	for _, m := range g.Members { // sorted by member id, as the assignor sorts them
		var ps []int32
		for p := range m.TargetAssignment["ranged"] {
			ps = append(ps, p)
		}
		slices.Sort(ps)
		got = append(got, ps)
	}
	slices.SortFunc(got, func(x, y []int32) int { return len(y) - len(x) })
	if fmt.Sprint(got) != "[[0 1 2] [3 4]]" && fmt.Sprint(got) != "[[2 3 4] [0 1]]" {
		t.Fatalf("range targets %v, want contiguous ranges of 3 and 2", got)
	}
}

// hb is a raw ConsumerGroupHeartbeat client for one member.
type hb struct {
	t     *testing.T
	c     *protoConn
	group string
	id    string
	epoch int32
	owned map[[16]byte][]int32

	rebalanceTimeout int32 // milliseconds, sent in full heartbeats
}

func newHB(t *testing.T, b *Broker, group, id string) *hb {
	return &hb{t: t, c: protoDial(t, b), group: group, id: id, owned: map[[16]byte][]int32{}, rebalanceTimeout: 2000}
}

func (h *hb) request(epoch int32, full bool, topics ...string) *kmsg.ConsumerGroupHeartbeatRequest {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch = h.group, h.id, epoch
	if full {
		req.RebalanceTimeoutMillis = h.rebalanceTimeout
		req.SubscribedTopicNames = topics
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		for id, ps := range h.owned {
			req.Topics = append(req.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: id, Partitions: ps})
		}
	}
	return req
}

// send sends a heartbeat; on success the member adopts the epoch and
// assignment it is given.
func (h *hb) send(req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	h.t.Helper()
	resp := h.c.roundTrip(req, 1).(*kmsg.ConsumerGroupHeartbeatResponse)
	if resp.ErrorCode == 0 {
		h.epoch = resp.MemberEpoch
		if resp.Assignment != nil {
			h.owned = map[[16]byte][]int32{}
			for _, at := range resp.Assignment.Topics {
				h.owned[at.TopicID] = at.Partitions
			}
		}
	}
	return resp
}

func (h *hb) join(topics ...string) *kmsg.ConsumerGroupHeartbeatResponse {
	h.t.Helper()
	h.owned = map[[16]byte][]int32{}
	resp := h.send(h.request(0, true, topics...))
	if resp.ErrorCode != 0 {
		h.t.Fatalf("join: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp
}

// beat sends a full heartbeat at the current epoch, reporting what it owns.
func (h *hb) beat(topics ...string) *kmsg.ConsumerGroupHeartbeatResponse {
	h.t.Helper()
	resp := h.send(h.request(h.epoch, true, topics...))
	if resp.ErrorCode != 0 {
		h.t.Fatalf("heartbeat of %s at epoch %d: %v", h.id, h.epoch, kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp
}

func (h *hb) count() int {
	n := 0
	for _, ps := range h.owned {
		n += len(ps)
	}
	return n
}

func (h *hb) partitions() []int32 {
	var out []int32
	for _, ps := range h.owned {
		out = append(out, ps...)
	}
	slices.Sort(out)
	return out
}

// A partition moves only after its owner released it: the new member waits
// (an older epoch, nothing assigned) until the owner's heartbeat no longer
// lists the partitions it was told to give up.
func TestConsumerGroupHeartbeatRevokesBeforeAssigning(t *testing.T) {
	b := protoBroker(t, consumerGroupSettings)
	groupCreateTopic(t, b, "moves", 4)
	a := newHB(t, b, "movers", "member-a")
	a.join("moves")
	if a.count() != 4 || a.epoch < 1 {
		t.Fatalf("first member got %v at epoch %d, want all 4 partitions", a.partitions(), a.epoch)
	}
	aEpoch := a.epoch

	c := newHB(t, b, "movers", "member-c")
	resp := c.join("moves")
	if c.count() != 0 {
		t.Fatalf("second member got %v while the first still owns everything", c.partitions())
	}
	if resp.MemberEpoch <= aEpoch {
		t.Fatalf("second member's epoch %d, want the new group epoch (the first member is at %d)", resp.MemberEpoch, aEpoch)
	}

	// The owner hears it must give two up: its epoch stays, its
	// assignment shrinks.
	a.beat("moves")
	if a.count() != 2 || a.epoch != aEpoch {
		t.Fatalf("owner after revocation: %v at epoch %d, want 2 partitions at epoch %d", a.partitions(), a.epoch, aEpoch)
	}
	// Until it acknowledges (a full heartbeat without them), they stay put.
	keep := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	keep.Group, keep.MemberID, keep.MemberEpoch = "movers", "member-c", c.epoch
	if r := c.send(keep); r.ErrorCode != 0 || c.count() != 0 {
		t.Fatalf("second member before the release: %v, %v", kerr.ErrorForCode(r.ErrorCode), c.partitions())
	}
	a.beat("moves") // reports 2 owned: released
	if a.epoch <= aEpoch {
		t.Fatalf("owner's epoch %d did not move past %d after releasing", a.epoch, aEpoch)
	}
	c.beat("moves")
	if c.count() != 2 || c.epoch != a.epoch {
		t.Fatalf("second member after the release: %v at epoch %d (owner at %d)", c.partitions(), c.epoch, a.epoch)
	}
	if slices.ContainsFunc(c.partitions(), func(p int32) bool { return slices.Contains(a.partitions(), p) }) {
		t.Fatalf("overlap: %v and %v", a.partitions(), c.partitions())
	}

	// Offsets: a commit needs the member's current epoch.
	cl := groupClient(t, b)
	defer cl.Close()
	commit := func(member string, epoch int32) error {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.MemberID, req.Generation = "movers", member, epoch
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "moves"
		for id := range c.owned {
			rt.TopicID = id // OffsetCommit v10 names topics by id
		}
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = c.partitions()[0], 7
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(context.Background(), cl)
		if err != nil {
			return err
		}
		return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
	}
	for _, tc := range []struct {
		member string
		epoch  int32
		want   error
	}{
		{"member-c", c.epoch, nil},
		{"member-c", c.epoch - 1, kerr.StaleMemberEpoch},
		{"member-c", c.epoch + 1, kerr.FencedMemberEpoch},
		{"nobody", c.epoch, kerr.UnknownMemberID},
		{"", -1, kerr.UnknownMemberID}, // the group has members
	} {
		if err := commit(tc.member, tc.epoch); err != tc.want {
			t.Errorf("commit by %q at epoch %d: %v, want %v", tc.member, tc.epoch, err, tc.want)
		}
	}
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fg := kmsg.NewOffsetFetchRequestGroup()
	fg.Group, fg.MemberID, fg.MemberEpoch = "movers", kmsg.StringPtr("member-c"), c.epoch-1
	fetch.Groups = append(fetch.Groups, fg)
	if fr, err := fetch.RequestWith(context.Background(), cl); err != nil || kerr.ErrorForCode(fr.Groups[0].ErrorCode) != kerr.StaleMemberEpoch {
		t.Errorf("OffsetFetch with an old member epoch: %v, %+v", err, fr)
	}

	// A member that stops heartbeating is removed after its session
	// timeout, and the other gets everything.
	deadline := time.Now().Add(10 * time.Second)
	for c.count() != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("the live member owns %v after the other went silent", c.partitions())
		}
		time.Sleep(100 * time.Millisecond)
		c.beat("moves")
	}
	if r := a.send(a.request(a.epoch, true, "moves")); kerr.ErrorForCode(r.ErrorCode) != kerr.UnknownMemberID {
		t.Fatalf("heartbeat of the expired member: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(r.ErrorCode))
	}
}

// Fencing and validation answers.
func TestConsumerGroupHeartbeatErrors(t *testing.T) {
	b := protoBroker(t, consumerGroupSettings)
	groupCreateTopic(t, b, "errs", 2)
	a := newHB(t, b, "errs", "member-a")
	a.join("errs")

	code := func(req *kmsg.ConsumerGroupHeartbeatRequest) error {
		return kerr.ErrorForCode(a.c.roundTrip(req, 1).(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode)
	}
	mk := func(edit func(r *kmsg.ConsumerGroupHeartbeatRequest)) *kmsg.ConsumerGroupHeartbeatRequest {
		r := a.request(0, true, "errs")
		r.MemberID, r.Topics = "member-new", []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		edit(r)
		return r
	}
	for name, tc := range map[string]struct {
		req  *kmsg.ConsumerGroupHeartbeatRequest
		want error
	}{
		"empty group":     {mk(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Group = "" }), kerr.InvalidRequest},
		"empty member id": {mk(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID = "" }), kerr.InvalidRequest},
		"no subscription": {mk(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.SubscribedTopicNames = nil }), kerr.InvalidRequest},
		"join owning": {mk(func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{Partitions: []int32{0}}}
		}), kerr.InvalidRequest},
		"epoch -3":            {mk(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -3 }), kerr.InvalidRequest},
		"unknown assignor":    {mk(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.ServerAssignor = kmsg.StringPtr("sticky") }), kerr.UnsupportedAssignor},
		"bad regex":           {mk(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.SubscribedTopicRegex = kmsg.StringPtr("(") }), kerr.InvalidRegularExpression},
		"unknown member":      {mk(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = 3 }), kerr.UnknownMemberID},
		"epoch from future":   {mk(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID, r.MemberEpoch = "member-a", a.epoch+1 }), kerr.FencedMemberEpoch},
		"leave unknown":       {mk(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -1 }), kerr.UnknownMemberID},
		"static leave, no id": {mk(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -2 }), kerr.InvalidRequest},
	} {
		if got := code(tc.req); got != tc.want {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}

	// A consumer-protocol group with members does not take classic
	// members, and the classic DescribeGroups does not describe it (as
	// Kafka 4).
	classic := groupClient(t, b)
	defer classic.Close()
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis, join.ProtocolType = "errs", 10000, 10000, "consumer"
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0, 0, 0, 0, 0, 0, 0}}}
	if jr, err := join.RequestWith(context.Background(), classic); err != nil || kerr.ErrorForCode(jr.ErrorCode) != kerr.InconsistentGroupProtocol {
		t.Errorf("classic join of a consumer-protocol group: %v %+v", err, jr)
	}
	adm := kadm.NewClient(classic)
	if d, _ := adm.DescribeGroups(context.Background(), "errs"); d["errs"].Err != kerr.GroupIDNotFound {
		t.Errorf("DescribeGroups of a consumer-protocol group: %+v", d["errs"])
	}

	// Nor does a classic group with members take consumer-protocol ones.
	member := groupClient(t, b, kgo.ConsumerGroup("classic-one"), kgo.ConsumeTopics("errs"))
	defer member.Close()
	waitFor(t, "the classic group to be stable", func() bool {
		d, err := adm.DescribeGroups(context.Background(), "classic-one")
		return err == nil && d["classic-one"].State == "Stable"
	})
	r := mk(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Group = "classic-one" })
	if got := code(r); got != kerr.GroupIDNotFound {
		t.Errorf("consumer-protocol join of a classic group: %v, want GROUP_ID_NOT_FOUND", got)
	}
}

// A static member that leaves with epoch -2 and comes back under a new
// member id gets its partitions and epoch back without a rebalance.
func TestConsumerGroupStaticMemberComesBack(t *testing.T) {
	b := protoBroker(t, consumerGroupSettings)
	groupCreateTopic(t, b, "statics", 4)
	a := newHB(t, b, "statics", "a-1")
	c := newHB(t, b, "statics", "c-1")
	instance := "pod-a"
	joinStatic := func(h *hb) {
		req := h.request(0, true, "statics")
		req.InstanceID = &instance
		if r := h.send(req); r.ErrorCode != 0 {
			t.Fatalf("static join: %v", kerr.ErrorForCode(r.ErrorCode))
		}
	}
	joinStatic(a)
	c.join("statics")
	for i := 0; i < 10 && (a.count() != 2 || c.count() != 2); i++ {
		a.beat("statics")
		c.beat("statics")
	}
	if a.count() != 2 || c.count() != 2 {
		t.Fatalf("assignments %v and %v, want 2 each", a.partitions(), c.partitions())
	}
	before, epoch := a.partitions(), describeConsumerGroup(t, b, "statics").Epoch

	leave := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	leave.Group, leave.MemberID, leave.MemberEpoch, leave.InstanceID = "statics", "a-1", -2, &instance
	if r := a.send(leave); r.ErrorCode != 0 || r.MemberEpoch != -2 {
		t.Fatalf("static leave: %v epoch %d", kerr.ErrorForCode(r.ErrorCode), r.MemberEpoch)
	}
	// While it is away, the instance id is still its own.
	other := newHB(t, b, "statics", "a-2")
	joinStatic(other)
	if !slices.Equal(other.partitions(), before) {
		t.Fatalf("static member back with %v, had %v", other.partitions(), before)
	}
	if g := describeConsumerGroup(t, b, "statics"); g.Epoch != epoch || len(g.Members) != 2 {
		t.Fatalf("group epoch %d -> %d with %d members: the return rebalanced", epoch, g.Epoch, len(g.Members))
	}
	dup := newHB(t, b, "statics", "a-3")
	req := dup.request(0, true, "statics")
	req.InstanceID = &instance
	if r := dup.send(req); kerr.ErrorForCode(r.ErrorCode) != kerr.UnreleasedInstanceID {
		t.Fatalf("second live member with the same instance id: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

// Committed offsets of a consumer-protocol group survive a restart, and the
// group is still listed as a consumer group; its members come back with
// UNKNOWN_MEMBER_ID handling (franz-go rejoins) and resume.
func TestConsumerGroupProtocolResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	b := protoBrokerAt(t, dir, consumerGroupSettings)
	groupCreateTopic(t, b, "durable", 2)
	groupProduce(t, b, "durable", 100)
	m := newKIP848Member(t, b, "keeper", "durable", kgo.DisableAutoCommit())
	waitFor(t, "100 records read", func() bool { return len(m.counts()) == 100 })
	if err := m.cl.CommitUncommittedOffsets(context.Background()); err != nil {
		t.Fatal(err)
	}
	m.cl.Close()
	b.Close()

	b = protoBrokerAt(t, dir, consumerGroupSettings)
	adm := kadm.NewClient(groupClient(t, b))
	listed, err := adm.ListGroupsByType(context.Background(), []string{"consumer"})
	if err != nil || listed["keeper"].State != "Empty" {
		t.Fatalf("after restart: %+v %v", listed, err)
	}
	groupProduce(t, b, "durable", 10)
	m = newKIP848Member(t, b, "keeper", "durable")
	defer m.cl.Close()
	waitFor(t, "the 10 new records", func() bool { return len(m.counts()) == 10 })
	time.Sleep(300 * time.Millisecond)
	if n := len(m.counts()); n != 10 {
		t.Fatalf("after restart the group read %d records, want only the 10 new ones", n)
	}
}

// A member subscribed by regular expression gets the partitions of every
// matching topic, including a topic created after it joined.
func TestConsumerGroupRegexSubscription(t *testing.T) {
	b := protoBroker(t, consumerGroupSettings)
	groupCreateTopic(t, b, "rx-a", 2)
	groupCreateTopic(t, b, "rx-b", 1)
	groupCreateTopic(t, b, "other", 1)
	m := newHB(t, b, "regex", "member-rx")
	join := m.request(0, true)
	join.SubscribedTopicNames, join.SubscribedTopicRegex = nil, kmsg.StringPtr("rx-.*")
	if r := m.send(join); r.ErrorCode != 0 {
		t.Fatalf("join by regex: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if m.count() != 3 || len(m.owned) != 2 {
		t.Fatalf("regex rx-.* got %d partitions of %d topics, want rx-a's 2 and rx-b's 1", m.count(), len(m.owned))
	}
	groupCreateTopic(t, b, "rx-c", 1)
	beat := m.request(m.epoch, true)
	beat.SubscribedTopicNames, beat.SubscribedTopicRegex = nil, kmsg.StringPtr("rx-.*")
	if r := m.send(beat); r.ErrorCode != 0 || m.count() != 4 {
		t.Fatalf("after rx-c was created: %v, %d partitions, want 4", kerr.ErrorForCode(r.ErrorCode), m.count())
	}
	g := describeConsumerGroup(t, b, "regex")
	if rx := g.Members[0].SubscribedTopicRegex; rx == nil || *rx != "rx-.*" || len(g.Members[0].Assignment["other"]) != 0 {
		t.Fatalf("described member: %+v", g.Members[0])
	}
}

// A member that keeps heartbeating but never releases the partitions it was
// told to give up is removed after its rebalance timeout, and the partitions
// go to the member waiting for them.
func TestConsumerGroupRevocationTimeout(t *testing.T) {
	b := protoBroker(t, consumerGroupSettings)
	groupCreateTopic(t, b, "stuck", 2)
	a := newHB(t, b, "stuck", "member-a")
	a.rebalanceTimeout = 300
	a.join("stuck")
	c := newHB(t, b, "stuck", "member-c")
	c.join("stuck")
	a.beat("stuck") // told to give one partition up
	if a.count() != 1 {
		t.Fatalf("member a owns %v, want 1 partition left after the revocation", a.partitions())
	}
	keepalive := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	keepalive.Group, keepalive.MemberID = "stuck", "member-a"
	deadline := time.Now().Add(5 * time.Second)
	for {
		keepalive.MemberEpoch = a.epoch
		r := a.c.roundTrip(keepalive, 1).(*kmsg.ConsumerGroupHeartbeatResponse)
		if kerr.ErrorForCode(r.ErrorCode) == kerr.UnknownMemberID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member a still in the group (error %v) long after its 300 ms rebalance timeout", kerr.ErrorForCode(r.ErrorCode))
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.beat("stuck")
	if c.count() != 2 {
		t.Fatalf("member c owns %v after a was removed, want both partitions", c.partitions())
	}
}
