package broker

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// offsetsEntry is one record of __consumer_offsets, decoded.
type offsetsEntry struct {
	partition int32
	commit    *kmsg.OffsetCommitKey // or
	group     *kmsg.GroupMetadataKey
	offset    *kmsg.OffsetCommitValue  // nil for a tombstone
	members   *kmsg.GroupMetadataValue // nil for a tombstone
}

// readOffsetsTopic reads want records of __consumer_offsets and decodes
// them as Kafka's tools do.
func readOffsetsTopic(t *testing.T, b *Broker, want int) []offsetsEntry {
	t.Helper()
	var out []offsetsEntry
	decode := func(what string, into interface{ ReadFrom([]byte) error }, b []byte) {
		t.Helper()
		if err := into.ReadFrom(b); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	for _, r := range protoConsume(t, b, offsetsTopic, want) {
		e := offsetsEntry{partition: r.Partition}
		if len(r.Key) < 2 {
			t.Fatalf("record %d of %s has a key of %d bytes", r.Offset, offsetsTopic, len(r.Key))
		}
		switch version := int16(r.Key[0])<<8 | int16(r.Key[1]); version {
		case 1:
			e.commit = new(kmsg.OffsetCommitKey)
			decode("offset commit key", e.commit, r.Key)
			if r.Value != nil {
				e.offset = new(kmsg.OffsetCommitValue)
				decode("offset commit value", e.offset, r.Value)
			}
		case 2:
			e.group = new(kmsg.GroupMetadataKey)
			decode("group metadata key", e.group, r.Key)
			if r.Value != nil {
				e.members = new(kmsg.GroupMetadataValue)
				decode("group metadata value", e.members, r.Value)
			}
		default:
			t.Fatalf("record %d of %s has key version %d", r.Offset, offsetsTopic, version)
		}
		out = append(out, e)
	}
	return out
}

// readAllOffsetsTopic reads every record __consumer_offsets holds now.
func readAllOffsetsTopic(t *testing.T, b *Broker) []offsetsEntry {
	t.Helper()
	ends, err := protoAdmin(t, b).ListEndOffsets(protoCtx(t), offsetsTopic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return readOffsetsTopic(t, b, int(n))
}

// TestOffsetsTopicHoldsCommits: commits, deleted offsets and deleted groups
// are written to __consumer_offsets as Kafka writes them, in the partition
// Kafka would choose, and are still there after a restart.
func TestOffsetsTopicHoldsCommits(t *testing.T) {
	dir := t.TempDir()
	settings := map[string]string{"offsets.topic.num.partitions": "50", "group.initial.rebalance.delay.ms": "0"}
	b := protoBrokerAt(t, dir, settings)
	ctx := protoCtx(t)
	id := protoCreateTopic(t, b, "tweets", 2, nil)
	adm := protoAdmin(t, b)
	start := time.Now()

	// A client that commits without joining, then deletes what it did.
	const simple = "tweets-to-s3" // Java hash -1147384505: partition 5 of 50
	var o kadm.Offsets
	o.Add(kadm.Offset{Topic: "tweets", Partition: 0, At: 5, LeaderEpoch: -1, Metadata: "m"})
	o.Add(kadm.Offset{Topic: "tweets", Partition: 1, At: 7, LeaderEpoch: 3})
	if r, err := adm.CommitOffsets(ctx, simple, o); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	if r, err := adm.DeleteOffsets(ctx, simple, kadm.TopicsSet{"tweets": {1: {}}}); err != nil || r.Error() != nil {
		t.Fatalf("delete offsets: %v %v", err, r.Error())
	}
	if r, err := adm.DeleteGroups(ctx, simple); err != nil || r.Error() != nil {
		t.Fatalf("delete group: %v %v", err, r.Error())
	}
	got := readOffsetsTopic(t, b, 5)
	for i, e := range got {
		if e.partition != 5 {
			t.Errorf("record %d is in partition %d, Kafka puts group %s in 5", i, e.partition, simple)
		}
	}
	// kadm sends a commit's partitions in a map's order.
	if got[0].commit == nil || got[1].commit == nil {
		t.Fatalf("want two offset commit records first, got %+v", got[:2])
	}
	slices.SortFunc(got[:2], func(a, b offsetsEntry) int { return int(a.commit.Partition - b.commit.Partition) })
	type commit struct {
		topic     string
		partition int32
		tombstone bool
	}
	var seen []commit
	for _, e := range got[:4] {
		if e.commit == nil || e.commit.Version != 1 || e.commit.Group != simple {
			t.Fatalf("want offset commit records of %s first, got %+v", simple, e)
		}
		seen = append(seen, commit{e.commit.Topic, e.commit.Partition, e.offset == nil})
	}
	if want := []commit{{"tweets", 0, false}, {"tweets", 1, false}, {"tweets", 1, true}, {"tweets", 0, true}}; !slices.Equal(seen, want) {
		t.Errorf("offset records %v, want %v (two commits, the deleted offset's tombstone, the deleted group's)", seen, want)
	}
	v := got[0].offset
	if v.Version != 4 || v.Offset != 5 || v.LeaderEpoch != -1 || v.Metadata != "m" || v.TopicID != id {
		t.Errorf("first commit %+v, want version 4, offset 5, epoch -1, metadata m and the topic's id", v)
	}
	if ts := time.UnixMilli(v.CommitTimestamp); ts.Before(start.Add(-time.Second)) || ts.After(time.Now()) {
		t.Errorf("commit timestamp %v is not the commit's time", ts)
	}
	if v := got[1].offset; v.Offset != 7 || v.LeaderEpoch != 3 || v.Metadata != "" {
		t.Errorf("second commit %+v, want offset 7 at epoch 3", v)
	}
	if e := got[4]; e.group == nil || e.group.Version != 2 || e.group.Group != simple || e.members != nil {
		t.Errorf("last record %+v, want the group's tombstone (group metadata key v2, no value)", e)
	}

	// A classic group member: the group's creation, its rebalance and its
	// becoming empty are logged with the commit in between.
	const member = "g1" // partition 42 of 50
	cl := protoClient(t, b, kgo.ConsumerGroup(member), kgo.ConsumeTopics("tweets"), kgo.DisableAutoCommit(),
		kgo.Balancers(kgo.RangeBalancer()), kgo.ClientID("creek-test"))
	produced, err := protoClient(t, b).ProduceSync(ctx, &kgo.Record{Topic: "tweets", Value: []byte("x")}).First()
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < 1; {
		n += cl.PollFetches(ctx).NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	cl.Close() // leaves the group
	got = readOffsetsTopic(t, b, 9)[5:]
	for i, e := range got {
		if e.partition != 42 {
			t.Errorf("record %d of %s is in partition %d, Kafka puts it in 42", i, member, e.partition)
		}
	}
	if e := got[0]; e.members == nil || e.members.Version != 3 || e.members.Generation != 0 || e.members.ProtocolType != "" || len(e.members.Members) != 0 {
		t.Errorf("first record of %s: %+v, want the new group, empty at generation 0", member, e)
	}
	stable := got[1].members
	if stable == nil || stable.Generation != 1 || stable.ProtocolType != "consumer" || protoStr(stable.Protocol) != "range" || len(stable.Members) != 1 {
		t.Fatalf("second record of %s: %+v, want generation 1 with its one member", member, got[1])
	}
	m := stable.Members[0]
	if protoStr(stable.Leader) != m.MemberID || m.ClientID != "creek-test" || m.ClientHost != "/127.0.0.1" || m.SessionTimeoutMillis != 45000 {
		t.Errorf("member %+v of leader %s", m, protoStr(stable.Leader))
	}
	var sub kmsg.ConsumerMemberMetadata
	var asg kmsg.ConsumerMemberAssignment
	if err := sub.ReadFrom(m.Subscription); err != nil || !slices.Equal(sub.Topics, []string{"tweets"}) {
		t.Errorf("subscription %+v (%v), want the topic tweets", sub, err)
	}
	if err := asg.ReadFrom(m.Assignment); err != nil || len(asg.Topics) != 1 || len(asg.Topics[0].Partitions) != 2 {
		t.Errorf("assignment %+v (%v), want both partitions of tweets", asg, err)
	}
	if e := got[2]; e.offset == nil || e.commit.Group != member || e.commit.Partition != produced.Partition || e.offset.Offset != 1 {
		t.Errorf("third record of %s: %+v %+v, want the commit of offset 1 in partition %d", member, e.commit, e.offset, produced.Partition)
	}
	if e := got[3].members; e == nil || e.Generation != 2 || e.Protocol != nil || e.Leader != nil || len(e.Members) != 0 {
		t.Errorf("last record of %s: %+v, want the group empty at generation 2", member, got[3])
	}

	// Clients cannot delete them, as in Kafka.
	var everything kadm.Offsets
	everything.Add(kadm.Offset{Topic: offsetsTopic, Partition: 42, At: -1})
	deleted, err := adm.DeleteRecords(ctx, everything)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := deleted.Lookup(offsetsTopic, 42); !errors.Is(d.Err, kerr.InvalidTopicException) {
		t.Errorf("DeleteRecords of %s: %+v, want INVALID_TOPIC_EXCEPTION", offsetsTopic, d)
	}

	// The records survive a restart, in a topic compacted as Kafka's is.
	b.Close()
	b = protoBrokerAt(t, dir, settings)
	if n := len(readOffsetsTopic(t, b, 9)); n != 9 {
		t.Errorf("%d records after a restart, want 9", n)
	}
	rc, err := protoAdmin(t, b).DescribeTopicConfigs(ctx, offsetsTopic)
	if err != nil {
		t.Fatal(err)
	}
	policy, _ := rc.On(offsetsTopic, nil)
	for _, c := range policy.Configs {
		if c.Key == "cleanup.policy" && protoStr(c.Value) != "compact" {
			t.Errorf("%s has cleanup.policy %s, want compact", offsetsTopic, protoStr(c.Value))
		}
	}
}

// TestOffsetsTopicOfAnOlderCreekIsCompacted: an older creek made
// __consumer_offsets without configs; now that it holds commits, it gets
// Kafka's at start, keeping any override of its own.
func TestOffsetsTopicOfAnOlderCreekIsCompacted(t *testing.T) {
	dir := t.TempDir()
	b := protoBrokerAt(t, dir, nil)
	if _, err := b.cluster.CreateTopic(offsetsTopic, 1, -1, map[string]string{"retention.ms": "1000"}, false); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b = protoBrokerAt(t, dir, nil)
	tp, _ := b.cluster.Topic(offsetsTopic)
	got := tp.Configs()
	if got["cleanup.policy"] != "compact" || got["segment.bytes"] != "104857600" || got["retention.ms"] != "1000" {
		t.Errorf("configs after a restart: %v, want Kafka's with retention.ms kept", got)
	}
}

// TestOffsetsPartition: groups go to the partition Kafka gives them (the
// absolute value of the id's Java hash, over UTF-16 code units).
func TestOffsetsPartition(t *testing.T) {
	for _, c := range []struct {
		group string
		want  int32
	}{
		{"g1", 42}, {"g2", 43}, // as Kafka 4.4 placed them
		{"tweets-to-s3", 5},       // a negative hash
		{"polygenelubricants", 0}, // hash math.MinInt32, whose absolute value Kafka takes as 0
		{"그룹", 19},                // 0xADF8*31 + 0xB8F9
		{"😀", 49},                 // a surrogate pair: 0xD83D*31 + 0xDE00
		{"", 0},
	} {
		if got := offsetsPartition(c.group, 50); got != c.want {
			t.Errorf("group %q: partition %d, want %d", c.group, got, c.want)
		}
	}
}

// BenchmarkOffsetCommit: one client committing three partitions' offsets
// at a time, each commit written to __consumer_offsets and the metadata
// store (both fsynced, under the default fsync=acks) before it is answered.
func BenchmarkOffsetCommit(b *testing.B) {
	br := protoBroker(b, nil)
	protoCreateTopic(b, br, "tweets", 3, nil)
	adm := kadm.NewClient(protoClient(b, br))
	ctx := protoCtx(b)
	b.ResetTimer()
	for i := range b.N {
		var o kadm.Offsets
		for p := range int32(3) {
			o.Add(kadm.Offset{Topic: "tweets", Partition: p, At: int64(i), LeaderEpoch: -1})
		}
		if r, err := adm.CommitOffsets(ctx, "bench", o); err != nil || r.Error() != nil {
			b.Fatalf("commit: %v %v", err, r.Error())
		}
	}
}

// TestOffsetsTopicRecordsOnlyAcceptedJoins: a join refused with
// UNKNOWN_MEMBER_ID leaves no group behind, and no record of one in
// __consumer_offsets (a client naming random groups cannot fill it).
func TestOffsetsTopicRecordsOnlyAcceptedJoins(t *testing.T) {
	b := protoBroker(t, nil)
	c := protoDial(t, b)
	for _, g := range []string{"ghost-0", "ghost-1"} {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.MemberID, req.ProtocolType = g, "bogus", "consumer"
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 10000
		req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 1, 0, 0, 0, 0, 0, 0}}}
		resp := c.roundTrip(req, 9).(*kmsg.JoinGroupResponse)
		protoErr(t, "join of "+g+" with a made-up member id", resp.ErrorCode, kerr.UnknownMemberID)
	}
	protoCreateTopic(t, b, "tweets", 1, nil)
	var o kadm.Offsets
	o.Add(kadm.Offset{Topic: "tweets", Partition: 0, At: 1, LeaderEpoch: -1})
	if r, err := protoAdmin(t, b).CommitOffsets(protoCtx(t), "real", o); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	got := readOffsetsTopic(t, b, 1)
	if got[0].commit == nil || got[0].commit.Group != "real" {
		t.Errorf("first record of %s: %+v, want the commit of group real (no record of the refused joins)", offsetsTopic, got[0])
	}
}

// TestCommitThatCannotBeLoggedIsStillKept: when __consumer_offsets refuses
// a commit's record (here a client set its max.message.bytes too low), the
// commit is answered KAFKA_STORAGE_ERROR but kept where the coordinator
// loads from, so that what it answers before and after a restart agree.
func TestCommitThatCannotBeLoggedIsStillKept(t *testing.T) {
	dir := t.TempDir()
	b := protoBrokerAt(t, dir, nil)
	protoCreateTopic(t, b, "tweets", 1, nil)
	adm := protoAdmin(t, b)
	ctx := protoCtx(t)
	commit := func(at int64) error {
		var o kadm.Offsets
		o.Add(kadm.Offset{Topic: "tweets", Partition: 0, At: at, LeaderEpoch: -1})
		r, err := adm.CommitOffsets(ctx, "g", o)
		if err != nil {
			return err
		}
		return r.Error()
	}
	if err := commit(5); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: kmsg.StringPtr("10")}}, offsetsTopic); err != nil {
		t.Fatal(err)
	}
	if err := commit(9); !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("commit with a record the topic refuses: %v, want KAFKA_STORAGE_ERROR", err)
	}
	offsetOf := func(b *Broker) int64 {
		t.Helper()
		got, err := protoAdmin(t, b).FetchOffsets(ctx, "g")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := got.Lookup("tweets", 0)
		return o.At
	}
	before := offsetOf(b)
	b.Close()
	if after := offsetOf(protoBrokerAt(t, dir, nil)); after != before {
		t.Errorf("committed offset %d before the restart, %d after", before, after)
	}
}

// TestLargeCommitIsWrittenInBatches: a commit too large for one batch of
// __consumer_offsets (whose max.message.bytes is small here) is written in
// several, each within the limit, and succeeds with every record there.
func TestLargeCommitIsWrittenInBatches(t *testing.T) {
	b := protoBroker(t, nil)
	protoCreateTopic(t, b, "tweets", 20, nil)
	adm := protoAdmin(t, b)
	ctx := protoCtx(t)
	commit := func(partitions int32, metadata string) error {
		var o kadm.Offsets
		for p := range partitions {
			o.Add(kadm.Offset{Topic: "tweets", Partition: p, At: 1, LeaderEpoch: -1, Metadata: metadata})
		}
		r, err := adm.CommitOffsets(ctx, "g", o)
		if err != nil {
			return err
		}
		return r.Error()
	}
	if err := commit(1, ""); err != nil { // makes the topic
		t.Fatal(err)
	}
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: kmsg.StringPtr("4096")}}, offsetsTopic); err != nil {
		t.Fatal(err)
	}
	if err := commit(20, strings.Repeat("m", 1000)); err != nil {
		t.Fatalf("a commit of 20 KiB over batches of at most 4 KiB: %v", err)
	}
	tp, _ := b.cluster.Topic(offsetsTopic)
	resp := protoDial(t, b).roundTrip(protoFetchReq(offsetsTopic, tp.ID(), 0, 1), 12).(*kmsg.FetchResponse)
	recs, batches := protoDecode(t, protoFetchPartition(t, resp).RecordBatches)
	if len(recs) != 20 || batches < 5 {
		t.Errorf("the commit is %d records in %d batches, want 20 records in at least 5", len(recs), batches)
	}
}
