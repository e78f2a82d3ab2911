package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// setGroupConfigs sets group configs with IncrementalAlterConfigs, as
// kafka-configs --entity-type groups does, and returns the error.
func setGroupConfigs(t *testing.T, cl *kgo.Client, group string, kv ...string) error {
	t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	for i := 0; i < len(kv); i += 2 {
		rr.Configs = append(rr.Configs, kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: kv[i], Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr(kv[i+1])})
	}
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	return kerr.ErrorForCode(resp.Resources[0].ErrorCode)
}

// A group's own configs take the place of the broker's settings for that
// group alone: the share group's lock duration and heartbeat interval, the
// consumer-protocol group's heartbeat interval; values out of Kafka's
// bounds are refused.
func TestGroupConfigsTakeEffect(t *testing.T) {
	b := protoBroker(t, shareSettings)
	groupCreateTopic(t, b, "gc", 1)
	cl := groupClient(t, b)
	defer cl.Close()
	for _, bad := range [][]string{
		{"share.record.lock.duration.ms", "1000"}, {"share.delivery.count.limit", "11"},
		{"consumer.session.timeout.ms", "1000"}, {"share.isolation.level", "sometimes"}, {"no.such.config", "1"},
	} {
		if err := setGroupConfigs(t, cl, "tuned", bad...); err != kerr.InvalidConfig {
			t.Errorf("%s=%s: %v, want INVALID_CONFIG", bad[0], bad[1], err)
		}
	}
	if err := setGroupConfigs(t, cl, "tuned", "share.record.lock.duration.ms", "15000", "share.heartbeat.interval.ms", "6000",
		"consumer.heartbeat.interval.ms", "7000", "by.the.way", ""); err != kerr.InvalidConfig {
		t.Fatalf("a request with one unknown config: %v, want INVALID_CONFIG", err)
	}
	if err := setGroupConfigs(t, cl, "tuned", "share.record.lock.duration.ms", "15000", "share.heartbeat.interval.ms", "6000", "consumer.heartbeat.interval.ms", "7000"); err != nil {
		t.Fatal(err)
	}

	m := newShareMember(t, b, "tuned", "member-a", "gc")
	hb := kmsg.NewPtrShareGroupHeartbeatRequest()
	hb.GroupID, hb.MemberID, hb.MemberEpoch, hb.SubscribedTopicNames = "tuned", "member-z", 0, []string{"gc"}
	if resp := m.c.roundTrip(hb, 1).(*kmsg.ShareGroupHeartbeatResponse); resp.HeartbeatIntervalMillis != 6000 {
		t.Errorf("share heartbeat: %v, interval %d ms, want the group's 6000", kerr.ErrorForCode(resp.ErrorCode), resp.HeartbeatIntervalMillis)
	}
	if _, resp := m.fetch(0); resp.AcquisitionLockTimeoutMillis != 15000 {
		t.Errorf("share fetch lock timeout %d ms, want the group's 15000", resp.AcquisitionLockTimeoutMillis)
	}
	other := newShareMember(t, b, "plain", "member-b", "gc")
	if _, resp := other.fetch(0); resp.AcquisitionLockTimeoutMillis != 600 {
		t.Errorf("another group's lock timeout %d ms, want the broker's 600", resp.AcquisitionLockTimeoutMillis)
	}

	c := protoDial(t, b)
	if err := setGroupConfigs(t, cl, "tuned-consumers", "consumer.heartbeat.interval.ms", "7000"); err != nil {
		t.Fatal(err)
	}
	for group, want := range map[string]int32{"tuned-consumers": 7000, "plain-consumers": 5000} {
		chb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		chb.Group, chb.MemberID, chb.MemberEpoch, chb.RebalanceTimeoutMillis = group, "consumer-1", 0, 30000
		chb.SubscribedTopicNames, chb.Topics = []string{"gc"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		resp := c.roundTrip(chb, 1).(*kmsg.ConsumerGroupHeartbeatResponse)
		if resp.ErrorCode != 0 || resp.HeartbeatIntervalMillis != want {
			t.Errorf("consumer heartbeat in %s: %v, interval %d ms, want %d", group, kerr.ErrorForCode(resp.ErrorCode), resp.HeartbeatIntervalMillis, want)
		}
	}
}

// share.isolation.level=read_committed: a share group is not delivered
// records of an open transaction, and records of an aborted one are
// archived without delivery; read_uncommitted groups get them all.
func TestShareGroupReadCommitted(t *testing.T) {
	b := protoBroker(t, shareSettings)
	groupCreateTopic(t, b, "txns", 1)
	cl := groupClient(t, b)
	defer cl.Close()
	for _, g := range []string{"committed", "uncommitted"} {
		if err := setGroupConfigs(t, cl, g, "share.auto.offset.reset", "earliest"); err != nil {
			t.Fatal(err)
		}
	}
	if err := setGroupConfigs(t, cl, "committed", "share.isolation.level", "read_committed"); err != nil {
		t.Fatal(err)
	}
	txn := func(id string, commit bool) {
		p := protoClient(t, b, kgo.TransactionalID(id), kgo.DefaultProduceTopic("txns"))
		defer p.Close()
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := p.ProduceSync(context.Background(), &kgo.Record{Value: []byte(id)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.EndTransaction(context.Background(), kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	txn("aborted", false) // offsets 0-2, marker 3
	txn("kept", true)     // offsets 4-6, marker 7

	acquired := func(group string) int64 {
		m := newShareMember(t, b, group, "m", "txns")
		var n int64
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			got, _ := m.fetch(100 * time.Millisecond)
			for _, r := range got {
				if r.FirstOffset <= 2 {
					t.Errorf("group %s acquired [%d-%d], records of the aborted transaction", group, r.FirstOffset, r.LastOffset)
				}
				n += r.LastOffset - r.FirstOffset + 1
			}
			if n >= 4 {
				break
			}
		}
		return n
	}
	if n := acquired("committed"); n < 3 {
		t.Errorf("the read_committed group acquired %d records, want the committed transaction's 3 (and its marker)", n)
	}
	if t.Failed() {
		return
	}
	m := newShareMember(t, b, "uncommitted", "m", "txns")
	got, _ := m.fetch(time.Second)
	if len(got) == 0 || got[0].FirstOffset != 0 {
		t.Errorf("the read_uncommitted group acquired %s, want everything from offset 0", ranges(got))
	}
}
