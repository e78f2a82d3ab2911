package metrics

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Counting a request allocates nothing once its API version was seen, and
// walking an answer without errors allocates nothing either: the hot path
// pays a few atomic operations.
func TestRequestAccountingAllocatesNothing(t *testing.T) {
	m := NewBroker(kmsg.MaxKey, 20)
	resp := kmsg.NewPtrProduceResponse()
	for range 3 {
		rt := kmsg.NewProduceResponseTopic()
		for range 4 {
			rt.Partitions = append(rt.Partitions, kmsg.NewProduceResponseTopicPartition())
		}
		resp.Topics = append(resp.Topics, rt)
	}
	m.Request(0, 11, 100, 100, time.Millisecond)
	allocs := testing.AllocsPerRun(1000, func() {
		m.Errors(0, resp)
		m.Request(0, 11, 1000, 100, time.Millisecond)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per request, want 0", allocs)
	}
}

// Error codes are found at any depth of an answer.
func TestEachErrorCode(t *testing.T) {
	resp := kmsg.NewPtrFetchResponse()
	resp.ErrorCode = 0
	topic := kmsg.NewFetchResponseTopic()
	for _, code := range []int16{0, kerr.UnknownTopicOrPartition.Code, kerr.OffsetOutOfRange.Code} {
		p := kmsg.NewFetchResponseTopicPartition()
		p.ErrorCode = code
		topic.Partitions = append(topic.Partitions, p)
	}
	resp.Topics = append(resp.Topics, topic)
	var got []int16
	eachErrorCode(resp, func(c int16) { got = append(got, c) })
	if len(got) != 2 || got[0] != kerr.UnknownTopicOrPartition.Code || got[1] != kerr.OffsetOutOfRange.Code {
		t.Fatalf("codes %v", got)
	}
}

// BenchmarkRequestAccounting is what the broker pays per request for its
// metrics: a counter, a histogram, the bytes and the walk of an answer's
// error codes (a produce answer of 3 topics × 4 partitions here).
func BenchmarkRequestAccounting(b *testing.B) {
	m := NewBroker(kmsg.MaxKey, 20)
	resp := kmsg.NewPtrProduceResponse()
	for range 3 {
		rt := kmsg.NewProduceResponseTopic()
		for range 4 {
			rt.Partitions = append(rt.Partitions, kmsg.NewProduceResponseTopicPartition())
		}
		resp.Topics = append(resp.Topics, rt)
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Errors(0, resp)
		m.Request(0, 11, 1<<20, 100, time.Millisecond)
	}
}
