package broker

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceFrame is a whole ProduceRequest v9 frame with a batch of one
// value of valueSize bytes for each of partitions partitions of topic.
func produceFrame(t *testing.T, topic string, partitions int32, valueSize int, corr int32) []byte {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = 1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p
		rp.Records = protoBatch(t, protoBatchSpec{values: []string{strings.Repeat("v", valueSize)}})
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	req.SetVersion(9)
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("memory-test")).AppendRequest(nil, req, corr)
}

// readProduceAnswer reads the answer to a frame from produceFrame and fails
// the test unless every partition took its batch.
func readProduceAnswer(t *testing.T, c *protoConn, corr int32) {
	t.Helper()
	resp := kmsg.NewPtrProduceResponse()
	resp.SetVersion(9)
	c.recv(corr, resp)
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				t.Fatalf("partition %d: %v", rp.Partition, err)
			}
		}
	}
}

// metadataAnsweredWithin sends a Metadata request and reports whether its
// answer arrives within d; if not, the answer is still read later by
// awaitMetadata.
func metadataAnsweredWithin(t *testing.T, c *protoConn, d time.Duration) (corr int32, answered bool) {
	t.Helper()
	corr = c.send(kmsg.NewPtrMetadataRequest(), 12)
	c.nc.SetReadDeadline(time.Now().Add(d))
	_, err := c.r.Peek(4)
	if err == nil {
		return corr, true
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("waiting for the metadata answer: %v", err)
	}
	return corr, false
}

// queued.max.request.bytes: while one client's request holds the budget,
// another client's next request waits, and goes on once the first is done.
// With -1 (no limit, the default) it does not wait; either way the metric
// counts the request while it is read.
func TestQueuedRequestBytesHoldsBackOtherRequests(t *testing.T) {
	for _, limit := range []string{"1048576", "-1"} {
		t.Run("limit="+limit, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			b, err := Start(context.Background(), Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Metrics: reg,
				Settings: map[string]string{"queued.max.request.bytes": limit}, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			protoCreateTopic(t, b, "budget", 2, nil)

			// A sends half of a 1.8 MB produce request and stops.
			frame := produceFrame(t, "budget", 2, 900<<10, 1)
			a := protoDial(t, b)
			if _, err := a.nc.Write(frame[:len(frame)/2]); err != nil {
				t.Fatal(err)
			}
			protoWait(t, "the half-sent request to be counted", func() bool {
				return protoMetric(t, reg, "creek_broker_queued_request_bytes") >= float64(len(frame)-4)
			})

			bystander := protoDial(t, b)
			corr, answered := metadataAnsweredWithin(t, bystander, 500*time.Millisecond)
			if limit == "-1" {
				if !answered {
					t.Fatal("with no limit, a metadata request waited for another client's half-sent produce")
				}
				resp := kmsg.NewPtrMetadataResponse()
				resp.SetVersion(12)
				bystander.recv(corr, resp)
			} else if answered {
				t.Fatal("a metadata request was answered while another client's request held the whole budget")
			}

			// A sends the rest: its records go in, and the bystander is answered.
			if _, err := a.nc.Write(frame[len(frame)/2:]); err != nil {
				t.Fatal(err)
			}
			readProduceAnswer(t, a, 1)
			if limit != "-1" {
				resp := kmsg.NewPtrMetadataResponse()
				resp.SetVersion(12)
				bystander.recv(corr, resp)
				if len(resp.Brokers) != 1 {
					t.Fatalf("metadata answer after the wait has %d brokers", len(resp.Brokers))
				}
			}
			if got := protoMetric(t, reg, "creek_broker_queued_request_bytes"); got != 0 {
				t.Fatalf("%v request bytes still taken after every request was answered", got)
			}
		})
	}
}

// Each connection used to keep its last produce request's buffer (up to 16
// MiB) for its next one, so idle connections that had each sent one large
// request held all those buffers: a few hundred could take gigabytes.
// Buffers now go back to a pool that every connection shares, and that
// the garbage collector empties.
func TestIdleConnectionsHoldNoRequestBuffers(t *testing.T) {
	b, _ := hostileBroker(t, nil)
	protoCreateTopic(t, b, "idle", 4, nil)
	frame := produceFrame(t, "idle", 4, 900<<10, 1) // 3.6 MB: a 4 MiB buffer
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	const conns = 48
	for range conns {
		c := protoDial(t, b)
		if _, err := c.nc.Write(frame); err != nil {
			t.Fatal(err)
		}
		readProduceAnswer(t, c, 1)
	}
	runtime.GC()
	runtime.GC() // a pooled buffer outlives one collection
	runtime.ReadMemStats(&ms)
	if grew := int64(ms.HeapInuse) - int64(base); grew > 48<<20 {
		t.Fatalf("%d idle connections that each sent one 3.6 MB produce request hold %d MiB", conns, grew>>20)
	}
}

// A connection used to keep the buffer of its largest answer: the check
// that lets go of one over 1 MiB only ran after acks=0 produce requests.
func TestLargeAnswerBufferIsNotKept(t *testing.T) {
	b, _ := hostileBroker(t, nil)
	const partitions = 32
	id := protoCreateTopic(t, b, "answers", partitions, nil)
	c := protoDial(t, b)
	for p := range int32(partitions) {
		// 40 KB a partition: under sendfileMin, so the fetch answer copies it.
		r := protoProduceRaw(t, c, 9, 1, "answers", id, p, protoBatch(t, protoBatchSpec{values: []string{strings.Repeat("x", 40<<10)}}))
		if r.ErrorCode != 0 {
			t.Fatalf("produce to partition %d: %v", p, kerr.ErrorForCode(r.ErrorCode))
		}
	}
	req := protoFetchReq("answers", id, 0, 0)
	for p := int32(1); p < partitions; p++ {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = p, 1<<20
		req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
	}
	resp := c.roundTrip(req, 11).(*kmsg.FetchResponse)
	size := 0
	for _, rp := range resp.Topics[0].Partitions {
		size += len(rp.RecordBatches)
	}
	if size < 1<<20 {
		t.Fatalf("the fetch answer carried %d bytes of records, want over 1 MiB", size)
	}
	var kept int
	b.mu.Lock()
	for sc := range b.conns {
		if sc.nc.RemoteAddr().String() == c.nc.LocalAddr().String() {
			sc.wmu.Lock()
			kept = cap(sc.wbuf)
			sc.wmu.Unlock()
		}
	}
	b.mu.Unlock()
	if kept > 1<<20 {
		t.Fatalf("after a %d-byte answer the connection keeps a %d-byte buffer", size, kept)
	}
}

// A body given back goes to the pool of its capacity, and one handed out
// has room for the request it is handed out for. Small requests (most of
// them, and not given back) take nothing from the pool.
func TestBodyPoolClasses(t *testing.T) {
	for _, size := range []int{minPooledBody, minPooledBody + 1, 3 << 20, maxPooledBody} {
		var got []byte
		for try := 0; got == nil && try < 10; try++ { // the race detector makes sync.Pool drop some
			recycleBody(make([]byte, size, pooledCapacity(size)))
			got = pooledBody(size)
		}
		if got == nil || cap(got) < size || len(got) != 0 {
			t.Fatalf("the pooled body for %d bytes has length %d and capacity %d", size, len(got), cap(got))
		}
	}
	recycleBody(make([]byte, 0, minPooledBody))
	if got := pooledBody(minPooledBody - 1); got != nil {
		t.Fatalf("a request of %d bytes took a %d-byte buffer from the pool", minPooledBody-1, cap(got))
	}
	recycleBody(make([]byte, 0, minPooledBody+1))
	if got := pooledBody(minPooledBody + 1); got != nil && cap(got) < minPooledBody+1 {
		t.Fatalf("a body of capacity %d went into a pool it does not fit", cap(got))
	}
	if pooledBody(maxPooledBody+1) != nil {
		t.Fatal("a body over the largest class came from the pool")
	}
}
