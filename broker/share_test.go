package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Tests of KIP-932 share groups: franz-go share consumers (kgo.ShareGroup)
// taking jobs from a topic as from a queue, and raw ShareFetch /
// ShareAcknowledge exchanges for locks, delivery counts, release, reject
// and expiry.

// shareSettings make locks and heartbeats short enough for tests.
var shareSettings = map[string]string{
	"group.share.heartbeat.interval.ms":   "1000",
	"group.share.record.lock.duration.ms": "600",
	"group.share.delivery.count.limit":    "3",
}

// newShareWorker starts a franz-go share consumer that accepts every
// record it gets.
func newShareWorker(t *testing.T, b *Broker, group, topic string) *recordTally {
	t.Helper()
	cl := groupClient(t, b, kgo.ShareGroup(group), kgo.ConsumeTopics(topic), kgo.FetchMaxWait(200*time.Millisecond))
	return startTally(cl, func(r *kgo.Record) { r.Ack(kgo.AckAccept) })
}

func shareMembers(t *testing.T, b *Broker, group string) int {
	t.Helper()
	cl := groupClient(t, b)
	defer cl.Close()
	d, err := kadm.NewClient(cl).DescribeShareGroups(context.Background(), group)
	if err != nil || d[group].Err != nil {
		return 0
	}
	return len(d[group].Members)
}

// Two workers of one share group take the records of a topic between them:
// every record is taken once, and once taken it is gone for the group.
func TestShareGroupWorkersTakeEachRecordOnce(t *testing.T) {
	b := protoBroker(t, shareSettings)
	groupCreateTopic(t, b, "jobs", 2)
	w1 := newShareWorker(t, b, "workers", "jobs")
	defer w1.cl.Close()
	w2 := newShareWorker(t, b, "workers", "jobs")
	defer w2.cl.Close()
	waitFor(t, "both workers in the share group", func() bool { return shareMembers(t, b, "workers") == 2 })
	time.Sleep(1500 * time.Millisecond) // both have their assignment (heartbeats are 1 s apart)

	groupProduce(t, b, "jobs", 300)
	total := func() map[string]int {
		all := map[string]int{}
		for _, w := range []*recordTally{w1, w2} {
			for k, v := range w.counts() {
				all[k] += v
			}
		}
		return all
	}
	waitFor(t, "300 jobs taken", func() bool { return len(total()) == 300 })
	for k, n := range total() {
		if n != 1 {
			t.Fatalf("job %s taken %d times", k, n)
		}
	}
	if err := w1.cl.FlushAcks(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := w2.cl.FlushAcks(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Every job acknowledged: the start offsets reach the end, no lag.
	adm := kadm.NewClient(groupClient(t, b))
	waitFor(t, "the share group's start offsets at the end", func() bool {
		req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
		rg := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
		rg.GroupID = "workers"
		req.Groups = append(req.Groups, rg)
		resp, err := req.RequestWith(context.Background(), groupClient(t, b))
		if err != nil || len(resp.Groups) != 1 || len(resp.Groups[0].Topics) != 1 {
			return false
		}
		sum := int64(0)
		for _, p := range resp.Groups[0].Topics[0].Partitions {
			if p.Lag != 0 {
				return false
			}
			sum += p.StartOffset
		}
		return sum == 300
	})
	listed, err := adm.ListGroupsByType(context.Background(), []string{"share"})
	if err != nil || listed["workers"].State != "Stable" || listed["workers"].ProtocolType != "share" {
		t.Fatalf("ListGroups type=share: %+v %v", listed, err)
	}
}

// shareMember is a raw share group member: heartbeats, fetches and
// acknowledgements over its own connection.
type shareMember struct {
	t     *testing.T
	c     *protoConn
	group string
	id    string
	epoch int32 // share session epoch of the next request
	topic [16]byte
}

func newShareMember(t *testing.T, b *Broker, group, id, topic string) *shareMember {
	t.Helper()
	m := &shareMember{t: t, c: protoDial(t, b), group: group, id: id}
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.GroupID, req.MemberID, req.MemberEpoch, req.SubscribedTopicNames = group, id, 0, []string{topic}
	resp := m.c.roundTrip(req, 1).(*kmsg.ShareGroupHeartbeatResponse)
	if resp.ErrorCode != 0 || resp.Assignment == nil || len(resp.Assignment.TopicPartitions) != 1 {
		t.Fatalf("share heartbeat: %v %+v", kerr.ErrorForCode(resp.ErrorCode), resp.Assignment)
	}
	m.topic = resp.Assignment.TopicPartitions[0].TopicID
	return m
}

// fetch sends a ShareFetch for partition 0 and returns the acquired ranges.
func (m *shareMember) fetch(wait time.Duration) ([]kmsg.ShareFetchResponseTopicPartitionAcquiredRecord, *kmsg.ShareFetchResponse) {
	m.t.Helper()
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID, req.ShareSessionEpoch = &m.group, &m.id, m.epoch
	req.MaxWaitMillis, req.MinBytes, req.MaxRecords = int32(wait.Milliseconds()), 1, 100
	if m.epoch == 0 {
		req.Topics = []kmsg.ShareFetchRequestTopic{{TopicID: m.topic, Partitions: []kmsg.ShareFetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1 << 20}}}}
	}
	resp := m.c.roundTrip(req, 1).(*kmsg.ShareFetchResponse)
	if resp.ErrorCode != 0 {
		m.t.Fatalf("share fetch at epoch %d: %v", m.epoch, kerr.ErrorForCode(resp.ErrorCode))
	}
	m.epoch++
	var got []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			got = append(got, p.AcquiredRecords...)
		}
	}
	return got, resp
}

// ack acknowledges offsets [first, last] with one type and returns the
// partition's error.
func (m *shareMember) ack(first, last int64, kind int8) error {
	m.t.Helper()
	req := kmsg.NewPtrShareAcknowledgeRequest()
	req.GroupID, req.MemberID, req.ShareSessionEpoch = &m.group, &m.id, m.epoch
	req.Topics = []kmsg.ShareAcknowledgeRequestTopic{{TopicID: m.topic, Partitions: []kmsg.ShareAcknowledgeRequestTopicPartition{{
		Partition: 0, AcknowledgementBatches: []kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{{FirstOffset: first, LastOffset: last, AcknowledgeTypes: []int8{kind}}},
	}}}}
	resp := m.c.roundTrip(req, 1).(*kmsg.ShareAcknowledgeResponse)
	if resp.ErrorCode != 0 {
		return kerr.ErrorForCode(resp.ErrorCode)
	}
	m.epoch++
	return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
}

func ranges(rs []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord) string {
	s := ""
	for _, r := range rs {
		s += fmt.Sprintf("[%d-%d x%d]", r.FirstOffset, r.LastOffset, r.DeliveryCount)
	}
	return s
}

// Locks, delivery counts, release, reject and expiry, member by member.
func TestShareGroupAcknowledgeReleaseRejectExpire(t *testing.T) {
	b := protoBroker(t, shareSettings)
	groupCreateTopic(t, b, "queue", 1)
	a := newShareMember(t, b, "q", "member-a", "queue")
	c := newShareMember(t, b, "q", "member-c", "queue")
	groupProduce(t, b, "queue", 10)

	got, resp := a.fetch(time.Second)
	if ranges(got) != "[0-9 x1]" || len(resp.Topics[0].Partitions[0].Records) == 0 || resp.AcquisitionLockTimeoutMillis != 600 {
		t.Fatalf("first fetch acquired %s (lock %d ms)", ranges(got), resp.AcquisitionLockTimeoutMillis)
	}
	// While a holds them, c gets nothing.
	if got, _ := c.fetch(100 * time.Millisecond); len(got) != 0 {
		t.Fatalf("second member acquired %s while the first holds every record", ranges(got))
	}
	// Release 0-2, reject 3, accept 4-9.
	for _, step := range []struct {
		first, last int64
		kind        int8
	}{{0, 2, 2}, {3, 3, 3}, {4, 9, 1}} {
		if err := a.ack(step.first, step.last, step.kind); err != nil {
			t.Fatalf("ack %d-%d type %d: %v", step.first, step.last, step.kind, err)
		}
	}
	// Records it no longer holds cannot be acknowledged again.
	if err := a.ack(4, 4, 1); err != kerr.InvalidRecordState {
		t.Fatalf("second acknowledgement of a record: %v, want INVALID_RECORD_STATE", err)
	}
	// The released ones go to c, delivered a second time; the rejected
	// one never again.
	got, _ = c.fetch(time.Second)
	if ranges(got) != "[0-2 x2]" {
		t.Fatalf("after release the other member acquired %s, want [0-2 x2]", ranges(got))
	}
	// c lets the lock expire: they come back for a third delivery, the
	// limit; expiring again archives them.
	time.Sleep(800 * time.Millisecond)
	got, _ = a.fetch(time.Second)
	if ranges(got) != "[0-2 x3]" {
		t.Fatalf("after the lock expired: %s, want [0-2 x3]", ranges(got))
	}
	if err := c.ack(0, 0, 1); err != kerr.InvalidRecordState {
		t.Fatalf("acknowledging after the lock expired: %v, want INVALID_RECORD_STATE", err)
	}
	time.Sleep(800 * time.Millisecond)
	if got, _ := c.fetch(200 * time.Millisecond); len(got) != 0 {
		t.Fatalf("records past the delivery limit were delivered again: %s", ranges(got))
	}
	req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
	rg := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
	rg.GroupID = "q"
	req.Groups = append(req.Groups, rg)
	offsets := a.c.roundTrip(req, 1).(*kmsg.DescribeShareGroupOffsetsResponse)
	if p := offsets.Groups[0].Topics[0].Partitions[0]; p.StartOffset != 10 || p.Lag != 0 {
		t.Fatalf("share-partition start %d lag %d, want 10 and 0", p.StartOffset, p.Lag)
	}

	// Session epochs are checked.
	bad := kmsg.NewPtrShareFetchRequest()
	bad.GroupID, bad.MemberID, bad.ShareSessionEpoch = &a.group, &a.id, a.epoch+5
	if r := a.c.roundTrip(bad, 1).(*kmsg.ShareFetchResponse); kerr.ErrorForCode(r.ErrorCode) != kerr.InvalidShareSessionEpoch {
		t.Fatalf("wrong session epoch: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	stranger := "stranger"
	bad.MemberID, bad.ShareSessionEpoch = &stranger, 0
	if r := a.c.roundTrip(bad, 1).(*kmsg.ShareFetchResponse); kerr.ErrorForCode(r.ErrorCode) != kerr.UnknownMemberID {
		t.Fatalf("fetch by a non-member: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

// A share group's progress survives a restart: the workers of the group
// after it get only the records produced since.
func TestShareGroupStartOffsetSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b := protoBrokerAt(t, dir, shareSettings)
	groupCreateTopic(t, b, "durable-jobs", 1)
	a := newShareMember(t, b, "dq", "member-a", "durable-jobs")
	groupProduce(t, b, "durable-jobs", 5)
	got, _ := a.fetch(time.Second)
	if ranges(got) != "[0-4 x1]" {
		t.Fatalf("acquired %s", ranges(got))
	}
	if err := a.ack(0, 4, 1); err != nil {
		t.Fatal(err)
	}
	b.Close()

	b = protoBrokerAt(t, dir, shareSettings)
	groupProduce(t, b, "durable-jobs", 3)
	a = newShareMember(t, b, "dq", "member-a2", "durable-jobs")
	got, _ = a.fetch(time.Second)
	if ranges(got) != "[5-7 x1]" {
		t.Fatalf("after restart acquired %s, want only the new records [5-7 x1]", ranges(got))
	}
}

// A member whose connection closes gives its records back at once, without
// waiting for the lock to expire.
func TestShareGroupConnectionCloseReleases(t *testing.T) {
	b := protoBroker(t, shareSettings)
	groupCreateTopic(t, b, "handover", 1)
	a := newShareMember(t, b, "h", "member-a", "handover")
	c := newShareMember(t, b, "h", "member-c", "handover")
	groupProduce(t, b, "handover", 4)
	if got, _ := a.fetch(time.Second); ranges(got) != "[0-3 x1]" {
		t.Fatalf("acquired %s", ranges(got))
	}
	a.c.nc.Close()
	start := time.Now()
	got, _ := c.fetch(2 * time.Second)
	if ranges(got) != "[0-3 x2]" {
		t.Fatalf("after the holder's connection closed the other member got %s, want [0-3 x2]", ranges(got))
	}
	if waited := time.Since(start); waited > 500*time.Millisecond {
		t.Fatalf("the handover took %v: the records waited for their lock (600 ms) instead of being released", waited)
	}
}

// share.auto.offset.reset=earliest, set as Kafka users do with
// IncrementalAlterConfigs on the GROUP resource, makes a new share group
// start at the earliest records.
func TestShareGroupAutoOffsetResetEarliest(t *testing.T) {
	b := protoBroker(t, shareSettings)
	groupCreateTopic(t, b, "backlog", 1)
	groupProduce(t, b, "backlog", 3)
	cl := groupClient(t, b)
	defer cl.Close()
	alter := func(value string) error {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, "early"
		rr.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "share.auto.offset.reset", Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr(value)}}
		req.Resources = append(req.Resources, rr)
		resp, err := req.RequestWith(context.Background(), cl)
		if err != nil {
			return err
		}
		return kerr.ErrorForCode(resp.Resources[0].ErrorCode)
	}
	if err := alter("sometimes"); err != kerr.InvalidConfig {
		t.Fatalf("bad value: %v, want INVALID_CONFIG", err)
	}
	if err := alter("earliest"); err != nil {
		t.Fatal(err)
	}
	dreq := kmsg.NewPtrDescribeConfigsRequest()
	dr := kmsg.NewDescribeConfigsRequestResource()
	dr.ResourceType, dr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, "early"
	dreq.Resources = append(dreq.Resources, dr)
	dresp, err := dreq.RequestWith(context.Background(), cl)
	if err != nil || len(dresp.Resources) != 1 {
		t.Fatalf("DescribeConfigs of the group: %v %+v", err, dresp)
	}
	found := false
	for _, c := range dresp.Resources[0].Configs {
		if c.Name == "share.auto.offset.reset" {
			found = *c.Value == "earliest" && c.Source == kmsg.ConfigSourceGroupConfig
		}
	}
	if !found {
		t.Fatalf("DescribeConfigs of the group does not report share.auto.offset.reset=earliest as its own: %+v", dresp.Resources[0].Configs)
	}

	w := newShareWorker(t, b, "early", "backlog")
	defer w.cl.Close()
	waitFor(t, "the 3 records produced before the group existed", func() bool { return len(w.counts()) == 3 })
}

// A ShareFetch that only acknowledges answers its partition with an empty
// record set, never a null one: librdkafka (confluent-kafka 2.x's share
// consumer) fails to parse the whole answer on a null record set.
func TestShareFetchAcknowledgeOnlyAnswerHasEmptyRecords(t *testing.T) {
	b := protoBroker(t, shareSettings)
	groupCreateTopic(t, b, "acks", 1)
	m := newShareMember(t, b, "ack-only", "member-a", "acks")
	groupProduce(t, b, "acks", 4)
	if got, _ := m.fetch(time.Second); ranges(got) != "[0-3 x1]" {
		t.Fatalf("acquired %s", ranges(got))
	}
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID, req.ShareSessionEpoch = &m.group, &m.id, m.epoch
	req.MaxWaitMillis, req.MinBytes, req.MaxRecords = 50, 1, 100
	req.Topics = []kmsg.ShareFetchRequestTopic{{TopicID: m.topic, Partitions: []kmsg.ShareFetchRequestTopicPartition{{
		Partition: 0, PartitionMaxBytes: 1 << 20,
		AcknowledgementBatches: []kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch{{FirstOffset: 0, LastOffset: 3, AcknowledgeTypes: []int8{1}}},
	}}}}
	resp := m.c.roundTrip(req, 1).(*kmsg.ShareFetchResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("acknowledging fetch: %v, %d topics", kerr.ErrorForCode(resp.ErrorCode), len(resp.Topics))
	}
	p := resp.Topics[0].Partitions[0]
	if p.AcknowledgeErrorCode != 0 || p.Records == nil || len(p.Records) != 0 || len(p.AcquiredRecords) != 0 {
		t.Fatalf("partition answer: ack error %v, records nil %v (%d bytes), acquired %s", kerr.ErrorForCode(p.AcknowledgeErrorCode), p.Records == nil, len(p.Records), ranges(p.AcquiredRecords))
	}
}
