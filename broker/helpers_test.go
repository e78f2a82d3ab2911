package broker

// Shared helpers of the protocol tests (produce_test.go, fetch_test.go,
// offsets_test.go, admin_test.go, configs_test.go). Every helper is named
// proto* so it cannot clash with the helpers of the other test files.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"net"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// protoTimeout bounds each protocol test; a hang fails the test instead of
// the whole run.
const protoTimeout = 20 * time.Second

// protoCtx is a context that ends with the test or after protoTimeout.
func protoCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), protoTimeout)
	t.Cleanup(cancel)
	return ctx
}

// protoBroker starts a broker on a fresh data dir with extra Kafka-named
// settings; it is closed when the test ends.
func protoBroker(t testing.TB, settings map[string]string) *Broker {
	t.Helper()
	return protoBrokerAt(t, t.TempDir(), settings)
}

// protoBrokerAt starts a broker on dir (to restart one on the same data).
// Closing it again at cleanup is harmless.
func protoBrokerAt(t testing.TB, dir string, settings map[string]string) *Broker {
	t.Helper()
	b, err := Start(context.Background(), Config{Listen: "127.0.0.1:0", DataDir: dir, Settings: settings})
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// protoClient is a franz-go client of b, closed when the test ends.
func protoClient(t testing.TB, b *Broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{kgo.SeedBrokers(b.Addr()), kgo.RetryTimeout(5 * time.Second), kgo.ProduceRequestTimeout(5 * time.Second)}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// protoAdmin is a kadm client of b.
func protoAdmin(t *testing.T, b *Broker) *kadm.Client {
	t.Helper()
	return kadm.NewClient(protoClient(t, b))
}

// protoCreateTopic creates a topic with config overrides and returns its id.
func protoCreateTopic(t testing.TB, b *Broker, topic string, partitions int32, configs map[string]string) [16]byte {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	resp, err := req.RequestWith(protoCtx(t), protoClient(t, b))
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	st := resp.Topics[0]
	if err := kerr.ErrorForCode(st.ErrorCode); err != nil {
		t.Fatalf("create topic %s: %v (%v)", topic, err, protoStr(st.ErrorMessage))
	}
	if st.TopicID == ([16]byte{}) {
		t.Fatalf("create topic %s: no topic id in the response", topic)
	}
	return st.TopicID
}

func protoStr(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// protoConsume reads want records of a topic from the start with a franz-go
// consumer and returns them ordered by partition and offset.
func protoConsume(t *testing.T, b *Broker, topic string, want int) []*kgo.Record {
	t.Helper()
	ctx := protoCtx(t)
	cl := protoClient(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records of %s before the timeout", len(out), want, topic)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("consume %s[%d]: %v", topic, p, err)
		})
		out = append(out, fs.Records()...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Offset < out[j].Offset
	})
	if len(out) > want {
		t.Fatalf("consumed %d records of %s, want %d", len(out), topic, want)
	}
	return out
}

// protoBatchSpec describes a record batch built by hand.
type protoBatchSpec struct {
	values     []string
	timestamps []int64 // per record; now when empty
	idempotent bool    // with producerID, epoch and sequence; else producer id -1
	producerID int64
	epoch      int16
	sequence   int32
	codec      kgo.CompressionCodec // zero value: none
}

// protoBatch encodes a v2 record batch the way a producer would, with the
// CRC-32C over everything from the attributes on.
func protoBatch(t *testing.T, sp protoBatchSpec) []byte {
	t.Helper()
	now := time.Now().UnixMilli()
	ts := func(i int) int64 {
		if i < len(sp.timestamps) {
			return sp.timestamps[i]
		}
		return now
	}
	first, maxTs := ts(0), ts(0)
	var recs []byte
	for i, v := range sp.values {
		r := kmsg.Record{
			TimestampDelta64: ts(i) - first,
			OffsetDelta:      int32(i),
			Key:              []byte(fmt.Sprintf("k%d", i)),
			Value:            []byte(v),
		}
		body := r.AppendTo(nil) // a zero Length takes one byte; re-encode with the real one
		r.Length = int32(len(body) - 1)
		recs = r.AppendTo(recs)
		maxTs = max(maxTs, ts(i))
	}
	attrs := int16(0)
	if sp.codec != (kgo.CompressionCodec{}) {
		comp, err := kgo.DefaultCompressor(sp.codec)
		if err != nil {
			t.Fatal(err)
		}
		out, codec := comp.Compress(new(bytes.Buffer), recs)
		recs = append([]byte(nil), out...)
		attrs = int16(codec)
	}
	pid, seq := int64(-1), int32(-1)
	if sp.idempotent {
		pid, seq = sp.producerID, sp.sequence
	}
	rb := kmsg.RecordBatch{
		Length:          int32(49 + len(recs)), // the 61-byte header less FirstOffset and Length
		Magic:           2,
		Attributes:      attrs,
		LastOffsetDelta: int32(len(sp.values) - 1),
		FirstTimestamp:  first,
		MaxTimestamp:    maxTs,
		ProducerID:      pid,
		ProducerEpoch:   sp.epoch,
		FirstSequence:   seq,
		NumRecords:      int32(len(sp.values)),
		Records:         recs,
	}
	if pid < 0 {
		rb.ProducerEpoch = -1
	}
	b := rb.AppendTo(nil)
	rb.CRC = int32(crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return rb.AppendTo(nil)
}

// protoRec is a record decoded from a fetched record set.
type protoRec struct {
	offset    int64
	timestamp int64
	value     string
	codec     int8 // compression codec of its batch
}

// protoDecode decodes the record batches of a fetched record set, checking
// every CRC. A trailing partial batch (allowed by the protocol) is ignored.
func protoDecode(t *testing.T, raw []byte) (recs []protoRec, batches int) {
	t.Helper()
	dec := kgo.DefaultDecompressor()
	for len(raw) >= 12 {
		n := 12 + int(int32(binary.BigEndian.Uint32(raw[8:12])))
		if n > len(raw) {
			break
		}
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(raw[:n]); err != nil {
			t.Fatalf("decode batch: %v", err)
		}
		if crc := crc32.Checksum(raw[21:n], crc32.MakeTable(crc32.Castagnoli)); int32(crc) != rb.CRC {
			t.Fatalf("fetched batch at offset %d has a bad CRC", rb.FirstOffset)
		}
		data, err := dec.Decompress(rb.Records, kgo.CompressionCodecType(rb.Attributes&7))
		if err != nil {
			t.Fatalf("decompress batch at offset %d: %v", rb.FirstOffset, err)
		}
		for len(data) > 0 {
			l, size := kbin.Varint(data)
			if size == 0 || l < 0 || int(l) > len(data)-size {
				t.Fatalf("bad record length in batch at offset %d", rb.FirstOffset)
			}
			var r kmsg.Record
			if err := r.ReadFrom(data[:size+int(l)]); err != nil {
				t.Fatalf("decode record: %v", err)
			}
			data = data[size+int(l):]
			recs = append(recs, protoRec{
				offset:    rb.FirstOffset + int64(r.OffsetDelta),
				timestamp: rb.FirstTimestamp + r.TimestampDelta64,
				value:     string(r.Value),
				codec:     int8(rb.Attributes & 7),
			})
		}
		batches++
		raw = raw[n:]
	}
	return recs, batches
}

// protoConn is a bare Kafka connection for requests that need an exact
// version or fields a franz-go client would rewrite (such as acks).
type protoConn struct {
	t    testing.TB
	nc   net.Conn
	r    *bufio.Reader
	corr int32
	fmt  *kmsg.RequestFormatter
}

func protoDial(t testing.TB, b *Broker) *protoConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", b.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &protoConn{t: t, nc: nc, r: bufio.NewReader(nc), fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("proto-test"))}
}

// send writes req at version and returns its correlation id.
func (c *protoConn) send(req kmsg.Request, version int16) int32 {
	c.t.Helper()
	c.corr++
	req.SetVersion(version)
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(c.fmt.AppendRequest(nil, req, c.corr)); err != nil {
		c.t.Fatalf("write %s v%d: %v", kmsg.NameForKey(req.Key()), version, err)
	}
	return c.corr
}

// readFrame reads one response frame and returns its correlation id and the rest.
func (c *protoConn) readFrame() (int32, []byte) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(protoTimeout))
	var size [4]byte
	if _, err := io.ReadFull(c.r, size[:]); err != nil {
		c.t.Fatalf("read response size: %v", err)
	}
	buf := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.r, buf); err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	if len(buf) < 4 {
		c.t.Fatalf("response of %d bytes has no correlation id", len(buf))
	}
	return int32(binary.BigEndian.Uint32(buf)), buf[4:]
}

// recv reads the response to the request sent with corr into resp.
func (c *protoConn) recv(corr int32, resp kmsg.Response) {
	c.t.Helper()
	got, body := c.readFrame()
	if got != corr {
		c.t.Fatalf("response has correlation id %d, want %d", got, corr)
	}
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		rd := kbin.Reader{Src: body}
		kmsg.SkipTags(&rd)
		body = rd.Src
	}
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("decode %s v%d response: %v", kmsg.NameForKey(resp.Key()), resp.GetVersion(), err)
	}
}

// roundTrip sends req at version and decodes the response.
func (c *protoConn) roundTrip(req kmsg.Request, version int16) kmsg.Response {
	c.t.Helper()
	corr := c.send(req, version)
	resp := req.ResponseKind()
	resp.SetVersion(version)
	c.recv(corr, resp)
	return resp
}

// protoProduceRaw sends one partition's record set in a ProduceRequest at
// version (by topic name up to v12, by id from v13) and returns its answer.
func protoProduceRaw(t *testing.T, c *protoConn, version, acks int16, topic string, id [16]byte, partition int32, records []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = acks, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := c.roundTrip(req, version).(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response has %d topics, want 1 with 1 partition: %+v", len(resp.Topics), resp.Topics)
	}
	return resp.Topics[0].Partitions[0]
}

// protoSessionFetch is a fetch of a session (or none: 0 and epoch -1): the partitions given (partition →
// fetch offset), and those to forget.
func protoSessionFetch(topic string, id [16]byte, session, epoch int32, offsets map[int32]int64, forget ...int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 10, 1, 50<<20
	req.SessionID, req.SessionEpoch = session, epoch
	if len(offsets) > 0 {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, id
		for _, p := range slices.Sorted(maps.Keys(offsets)) {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, offsets[p], 10<<20
			rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	if len(forget) > 0 {
		ft := kmsg.NewFetchRequestForgottenTopic()
		ft.Topic, ft.TopicID, ft.Partitions = topic, id, forget
		req.ForgottenTopics = append(req.ForgottenTopics, ft)
	}
	return req
}

// protoFetchReq is a one-partition fetch request without a session that
// does not wait; callers adjust it.
func protoFetchReq(topic string, id [16]byte, partition int32, offset int64) *kmsg.FetchRequest {
	req := protoSessionFetch(topic, id, 0, -1, map[int32]int64{partition: offset})
	req.MaxWaitMillis = 0
	return req
}

// protoFetchPartition returns the one partition of a one-topic fetch answer.
func protoFetchPartition(t *testing.T, resp *kmsg.FetchResponse) kmsg.FetchResponseTopicPartition {
	t.Helper()
	if resp.ErrorCode != 0 {
		t.Fatalf("fetch failed: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch response has %d topics, want 1 with 1 partition", len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0]
}

// protoListOffset asks ListOffsets (v7, which knows timestamp -3) for one
// partition and returns the offset and timestamp.
func protoListOffset(t *testing.T, c *protoConn, topic string, partition int32, ts int64) (int64, int64) {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = partition, ts, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := c.roundTrip(req, 7).(*kmsg.ListOffsetsResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("list offsets answered %d topics", len(resp.Topics))
	}
	sp := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(sp.ErrorCode); err != nil {
		t.Fatalf("list offsets %s[%d] at %d: %v", topic, partition, ts, err)
	}
	return sp.Offset, sp.Timestamp
}

// protoTopicExists reports whether the broker lists a topic.
func protoTopicExists(t *testing.T, b *Broker, topic string) bool {
	t.Helper()
	c := protoDial(t, b)
	req := kmsg.NewPtrMetadataRequest() // Topics nil: all topics
	resp := c.roundTrip(req, 12).(*kmsg.MetadataResponse)
	for _, mt := range resp.Topics {
		if mt.Topic != nil && *mt.Topic == topic {
			return true
		}
	}
	return false
}

// protoWait polls cond until it holds or a generous deadline passes.
func protoWait(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// protoErr fails the test unless code is the wanted Kafka error (nil: none).
func protoErr(t *testing.T, what string, code int16, want *kerr.Error) {
	t.Helper()
	got := kerr.ErrorForCode(code)
	if want == nil {
		if got != nil {
			t.Fatalf("%s: unexpected error %v", what, got)
		}
		return
	}
	if code != want.Code {
		t.Fatalf("%s: got error %v, want %v", what, got, want)
	}
}

// recordTally consumes in the background with a franz-go client and counts
// how often each record ("partition/offset") was read.
type recordTally struct {
	cl *kgo.Client
	mu sync.Mutex
	n  map[string]int
}

// startTally polls cl until it is closed, calling each (if not nil) on
// every record before counting it.
func startTally(cl *kgo.Client, each func(*kgo.Record)) *recordTally {
	r := &recordTally{cl: cl, n: map[string]int{}}
	go func() {
		for {
			fs := cl.PollFetches(context.Background())
			if fs.IsClientClosed() {
				return
			}
			fs.EachRecord(func(rec *kgo.Record) {
				if each != nil {
					each(rec)
				}
				r.mu.Lock()
				r.n[fmt.Sprintf("%d/%d", rec.Partition, rec.Offset)]++
				r.mu.Unlock()
			})
		}
	}()
	return r
}

// counts returns a copy of the counts so far.
func (r *recordTally) counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.n)
}

// protoMetric is the value of the gauge or counter (without labels) name.
func protoMetric(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			m := f.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
