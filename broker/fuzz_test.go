package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fuzzTopic receives the fuzzer's produce requests; fuzzLivenessTopic is
// where the well-behaved client checks, after every input, that the broker
// still serves.
const (
	fuzzTopic         = "fuzz-target"
	fuzzLivenessTopic = "fuzz-liveness"
)

// fuzzBatch encodes a valid v2 record batch.
func fuzzBatch(pid int64, seq int32, values ...string) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Key: []byte(fmt.Sprint(i)), Value: []byte(v)}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	if pid < 0 {
		seq = -1
	}
	rb := kmsg.RecordBatch{
		Length:          int32(49 + len(recs)),
		Magic:           2,
		LastOffsetDelta: int32(len(values) - 1),
		FirstTimestamp:  1700000000000,
		MaxTimestamp:    1700000000000,
		ProducerID:      pid,
		FirstSequence:   seq,
		NumRecords:      int32(len(values)),
		Records:         recs,
	}
	b := rb.AppendTo(nil)
	rb.CRC = int32(crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return rb.AppendTo(nil)
}

// fuzzSeeds are valid request frames of several APIs and versions.
func fuzzSeeds() [][]byte {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	var seeds [][]byte
	add := func(req kmsg.Request, versions ...int16) {
		for _, v := range versions {
			req.SetVersion(v)
			seeds = append(seeds, f.AppendRequest(nil, req, int32(len(seeds)+1)))
		}
	}

	add(kmsg.NewPtrApiVersionsRequest(), 0, 3)

	meta := kmsg.NewPtrMetadataRequest()
	meta.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(fuzzTopic)}, {Topic: kmsg.StringPtr("no-such-topic")}}
	add(meta, 0, 4, 9, 12)

	produce := kmsg.NewPtrProduceRequest()
	produce.Acks, produce.TimeoutMillis = 1, 1000
	produce.Topics = []kmsg.ProduceRequestTopic{{Topic: fuzzTopic, Partitions: []kmsg.ProduceRequestTopicPartition{
		{Partition: 0, Records: fuzzBatch(-1, 0, "a", "b")},
		{Partition: 1, Records: append(fuzzBatch(-1, 0, "c"), fuzzBatch(-1, 0, "d", "e", "f")...)},
	}}}
	add(produce, 3, 7, 9)
	produce.Acks = -1
	produce.Topics[0].Partitions = produce.Topics[0].Partitions[:1]
	produce.Topics[0].Partitions[0].Records = fuzzBatch(1000, 0, "idempotent")
	add(produce, 8)

	fetch := kmsg.NewPtrFetchRequest()
	fetch.ReplicaID, fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = -1, 0, 1, 1<<20
	fetch.Topics = []kmsg.FetchRequestTopic{{Topic: fuzzTopic, Partitions: []kmsg.FetchRequestTopicPartition{
		{Partition: 0, FetchOffset: 0, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1},
		{Partition: 1, FetchOffset: 2, PartitionMaxBytes: 100, CurrentLeaderEpoch: -1},
	}}}
	add(fetch, 4, 11, 12)

	list := kmsg.NewPtrListOffsetsRequest()
	list.ReplicaID = -1
	list.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: fuzzTopic, Partitions: []kmsg.ListOffsetsRequestTopicPartition{
		{Partition: 0, Timestamp: -1, CurrentLeaderEpoch: -1},
		{Partition: 1, Timestamp: 1700000000000, CurrentLeaderEpoch: -1},
	}}}
	add(list, 0, 1, 7)

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey, fc.CoordinatorKeys = "fuzz-group", []string{"fuzz-group"}
	add(fc, 0, 4)

	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.Generation = "fuzz-group", -1
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: fuzzTopic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
	add(commit, 2, 8)

	ofetch := kmsg.NewPtrOffsetFetchRequest()
	ofetch.Group = "fuzz-group"
	ofetch.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: fuzzTopic, Partitions: []int32{0, 1}}}
	add(ofetch, 1, 7)

	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID = "fuzz-group", "nobody"
	add(hb, 0, 4)

	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: fuzzTopic}, {ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "1"}}
	add(dc, 0, 4)

	ipid := kmsg.NewPtrInitProducerIDRequest()
	ipid.TransactionTimeoutMillis = 60000
	add(ipid, 0, 4)

	olea := kmsg.NewPtrOffsetForLeaderEpochRequest()
	olea.ReplicaID = -1
	olea.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{{Topic: fuzzTopic, Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{{Partition: 0, CurrentLeaderEpoch: -1, LeaderEpoch: 0}}}}
	add(olea, 0, 4)

	add(kmsg.NewPtrDescribeClusterRequest(), 0)
	add(kmsg.NewPtrListGroupsRequest(), 0, 4)

	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"fuzz-group"}
	add(dg, 0, 5)

	ld := kmsg.NewPtrDescribeLogDirsRequest()
	ld.Topics = []kmsg.DescribeLogDirsRequestTopic{{Topic: fuzzTopic, Partitions: []int32{0, 1}}}
	add(ld, 0, 2)

	// Pipelined requests in one stream, and one cut short.
	seeds = append(seeds, bytes.Join(seeds[:6], nil))
	seeds = append(seeds, seeds[len(seeds)-1][:50])
	return seeds
}

// fuzzLiveness is a well-behaved franz-go producer and consumer of
// fuzzLivenessTopic.
type fuzzLiveness struct {
	prod, cons *kgo.Client
	adm        *kadm.Client
}

func newFuzzLiveness(tb testing.TB, addr string) *fuzzLiveness {
	tb.Helper()
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(fuzzLivenessTopic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		tb.Fatal(err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{fuzzLivenessTopic: {0: kgo.NewOffset().At(0)}}))
	if err != nil {
		tb.Fatal(err)
	}
	return &fuzzLiveness{prod: prod, cons: cons, adm: kadm.NewClient(prod)}
}

// check produces one record and reads it back.
func (l *fuzzLiveness) check(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	value := fmt.Sprintf("alive-%d-%d", time.Now().UnixNano(), n)
	r := &kgo.Record{Value: []byte(value)}
	err := l.prod.ProduceSync(ctx, r).FirstErr()
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		// The fuzzer may have deleted the topic with a DeleteTopics request.
		l.adm.CreateTopic(ctx, 1, 1, nil, fuzzLivenessTopic)
		err = l.prod.ProduceSync(ctx, r).FirstErr()
	}
	if err != nil {
		t.Fatalf("the broker no longer takes a produce from a normal client: %v", err)
	}
	for {
		fs := l.cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("the broker no longer serves a record just produced (offset %d) to a normal client", r.Offset)
		}
		found := false
		fs.EachRecord(func(got *kgo.Record) {
			if string(got.Value) == value {
				found = true
			}
		})
		if found {
			return
		}
	}
}

// FuzzRequestFraming sends arbitrary bytes as the request stream of a TCP
// connection to an embedded broker. The broker must not panic (a panic in
// any of its goroutines ends the fuzzing process), must close or answer the
// connection, and must go on serving a normal client: after every input a
// franz-go client produces a record and reads it back.
func FuzzRequestFraming(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0})

	b, err := Start(context.Background(), Config{
		Listen:  "127.0.0.1:0",
		DataDir: f.TempDir(),
		Fsync:   "never", // durability is not what is fuzzed; keep inputs fast
		Settings: map[string]string{
			// Topics named by fuzzed requests would pile up.
			"auto.create.topics.enable": "false",
			"socket.request.max.bytes":  "1048576",
		},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Close() })
	live := newFuzzLiveness(f, b.Addr())
	f.Cleanup(func() { live.prod.Close(); live.cons.Close() })
	for _, topic := range []struct {
		name       string
		partitions int32
	}{{fuzzTopic, 2}, {fuzzLivenessTopic, 1}} {
		if _, err := live.adm.CreateTopic(context.Background(), topic.partitions, 1, nil, topic.name); err != nil {
			f.Fatal(err)
		}
	}
	n := 0

	f.Fuzz(func(t *testing.T, stream []byte) {
		nc, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatalf("the broker no longer accepts connections: %v", err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		// Write while reading: the broker may answer (or close) before it
		// has read everything.
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			if _, err := nc.Write(stream); err == nil {
				nc.(*net.TCPConn).CloseWrite()
			}
		}()
		// Drain answers until the broker closes the connection. A request
		// that waits (a fetch with a long MaxWaitMillis, a JoinGroup) may
		// keep it open; give it a moment, then hang up.
		nc.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		io.Copy(io.Discard, nc)
		nc.Close()
		<-wrote

		n++
		live.check(t, n)
	})
}
