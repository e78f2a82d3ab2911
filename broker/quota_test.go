package broker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// setQuota gives a client id a byte rate through AlterClientQuotas.
func setQuota(t *testing.T, b *Broker, clientID, key string, rate float64) {
	t.Helper()
	adm := protoAdmin(t, b)
	resp, err := adm.AlterClientQuotas(context.Background(), []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: kmsg.StringPtr(clientID)}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: key, Value: rate}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp {
		if r.Err != nil {
			t.Fatalf("set quota: %v", r.Err)
		}
	}
}

// TestProduceQuotaThrottles: a producer over its producer_byte_rate is told
// to wait (ThrottleMillis) and its connection's next request waits that
// long; a producer with another client id is not slowed down.
func TestProduceQuotaThrottles(t *testing.T) {
	b := protoBroker(t, map[string]string{"quota.window.num": "3", "quota.window.size.seconds": "1"})
	protoCreateTopic(t, b, "quota", 1, nil)
	setQuota(t, b, "proto-test", "producer_byte_rate", 10000) // protoDial's client id

	c := protoDial(t, b)
	value := strings.Repeat("x", 4000)
	var throttled int32
	var answeredAt time.Time
	for i := 0; i < 10 && throttled == 0; i++ {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 5000
		rp := kmsg.ProduceRequestTopicPartition{Partition: 0, Records: protoBatch(t, protoBatchSpec{values: []string{value, value}})}
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: "quota", Partitions: []kmsg.ProduceRequestTopicPartition{rp}}}
		resp := c.roundTrip(req, 9).(*kmsg.ProduceResponse)
		protoErr(t, "a produce over the quota", resp.Topics[0].Partitions[0].ErrorCode, nil) // throttled, still written
		throttled, answeredAt = resp.ThrottleMillis, time.Now()
	}
	if throttled == 0 {
		t.Fatal("10 produces of 8 KB each at a 10 KB/s quota were never throttled")
	}
	// The connection's next request is read only after the throttle.
	m := kmsg.NewPtrMetadataRequest()
	c.roundTrip(m, 9)
	if waited := time.Since(answeredAt); waited < time.Duration(throttled)*time.Millisecond*8/10 {
		t.Fatalf("answered %d ms throttle, but the next request was served after %s", throttled, waited)
	}

	// Another client id has no quota.
	cl := protoClient(t, b, kgo.ClientID("free"), kgo.DefaultProduceTopic("quota"))
	for range 5 {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte(value)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestProduceQuotaHoldsARealClient: franz-go producing as fast as it can
// under a 100 KB/s quota takes at least about as long as the quota allows
// (a lower bound: a slow machine only makes it longer).
func TestProduceQuotaHoldsARealClient(t *testing.T) {
	b := protoBroker(t, map[string]string{"quota.window.num": "3", "quota.window.size.seconds": "1"})
	protoCreateTopic(t, b, "quota", 1, nil)
	setQuota(t, b, "limited", "producer_byte_rate", 100_000)
	cl := protoClient(t, b, kgo.ClientID("limited"), kgo.DefaultProduceTopic("quota"), kgo.ProducerBatchMaxBytes(16<<10),
		kgo.ProducerBatchCompression(kgo.NoCompression())) // quotas count the bytes sent
	value := []byte(strings.Repeat("q", 1000))
	start := time.Now()
	const n = 400 // 400 KB
	for range n {
		cl.Produce(context.Background(), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := cl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// 400 KB at 100 KB/s, with the first window's 300 KB allowed at once:
	// at least about a second.
	if took := time.Since(start); took < 800*time.Millisecond {
		t.Fatalf("400 KB under a 100 KB/s quota took only %s", took)
	}
}

// TestFetchQuotaThrottles: a consumer over its consumer_byte_rate gets an
// empty answer with the time to wait, as Kafka answers it, and then its
// records.
func TestFetchQuotaThrottles(t *testing.T) {
	b := protoBroker(t, map[string]string{"quota.window.num": "3", "quota.window.size.seconds": "1"})
	id := protoCreateTopic(t, b, "fquota", 1, nil)
	p := protoClient(t, b, kgo.DefaultProduceTopic("fquota"))
	value := []byte(strings.Repeat("f", 20000))
	for range 5 {
		if err := p.ProduceSync(context.Background(), &kgo.Record{Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	setQuota(t, b, "proto-test", "consumer_byte_rate", 10000)
	c := protoDial(t, b)
	var throttled *kmsg.FetchResponse
	for i := 0; i < 5 && throttled == nil; i++ {
		resp := c.roundTrip(protoFetchReq("fquota", id, 0, 0), 12).(*kmsg.FetchResponse)
		if resp.ThrottleMillis > 0 {
			throttled = resp
		} else if len(protoFetchPartition(t, resp).RecordBatches) == 0 {
			t.Fatal("an unthrottled fetch brought nothing")
		}
	}
	if throttled == nil {
		t.Fatal("fetching 100 KB five times at a 10 KB/s quota was never throttled")
	}
	if len(throttled.Topics) != 0 {
		t.Fatalf("a throttled fetch answered %d topics, want none (as Kafka)", len(throttled.Topics))
	}
}

// A throttled fetch in a session, as Kafka answers it: an incremental one
// names its session (whose epoch moved on, so the next fetch continues it);
// a full one that asks for a session gets none.
func TestFetchQuotaInASession(t *testing.T) {
	b := protoBroker(t, map[string]string{"quota.window.num": "3", "quota.window.size.seconds": "1"})
	id := protoCreateTopic(t, b, "squota", 1, nil)
	p := protoClient(t, b, kgo.DefaultProduceTopic("squota"))
	value := []byte(strings.Repeat("s", 20000))
	for range 5 {
		if err := p.ProduceSync(context.Background(), &kgo.Record{Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	setQuota(t, b, "proto-test", "consumer_byte_rate", 10000)
	c := protoDial(t, b)
	fetch := func(session, epoch int32, offsets map[int32]int64) *kmsg.FetchResponse {
		return c.roundTrip(protoSessionFetch("squota", id, session, epoch, offsets), 12).(*kmsg.FetchResponse)
	}
	session := fetch(0, 0, map[int32]int64{0: 0}).SessionID
	epoch := int32(1)
	var throttled *kmsg.FetchResponse
	for ; epoch < 10 && throttled == nil; epoch++ { // the client reads offset 0 again each time
		if resp := fetch(session, epoch, nil); resp.ThrottleMillis > 0 {
			throttled = resp
		}
	}
	if throttled == nil {
		t.Fatal("incremental fetches of 100 KB at a 10 KB/s quota were never throttled")
	}
	if throttled.SessionID != session || throttled.ErrorCode != 0 || len(throttled.Topics) != 0 {
		t.Fatalf("a throttled incremental fetch: session %d (want %d), %v, %d topics", throttled.SessionID, session, kerr.ErrorForCode(throttled.ErrorCode), len(throttled.Topics))
	}
	if resp := fetch(0, 0, map[int32]int64{0: 0}); resp.ThrottleMillis == 0 || resp.SessionID != 0 {
		t.Fatalf("a full fetch right after: throttled %d ms, session %d; want throttled and no session", resp.ThrottleMillis, resp.SessionID)
	}
	if resp := fetch(session, epoch, nil); resp.ErrorCode != 0 {
		t.Fatalf("the session after its throttled fetch: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
}
