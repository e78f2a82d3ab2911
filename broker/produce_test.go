package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// protoValues returns n values "prefix-i".
func protoValues(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// protoFetchAll fetches a partition by name (Fetch v12) from offset and
// decodes every record of the answer.
func protoFetchAll(t *testing.T, c *protoConn, topic string, partition int32, offset int64) []protoRec {
	t.Helper()
	sp := protoFetchPartition(t, c.roundTrip(protoFetchReq(topic, [16]byte{}, partition, offset), 12).(*kmsg.FetchResponse))
	protoErr(t, "fetch "+topic, sp.ErrorCode, nil)
	recs, _ := protoDecode(t, sp.RecordBatches)
	return recs
}

// TestProduceAcks: acks 0, 1 and -1 all store the records, with the real
// client and raw requests; acks=0 gets no response at all.
func TestProduceAcks(t *testing.T) {
	b := protoBroker(t, nil)
	protoCreateTopic(t, b, "acks", 1, nil)

	clients := []struct {
		name string
		opts []kgo.Opt
	}{
		{"all", []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}},
		{"leader", []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}},
		{"none", []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}},
	}
	var want []string
	for _, tc := range clients {
		cl := protoClient(t, b, append(tc.opts, kgo.DefaultProduceTopic("acks"))...)
		vals := protoValues(tc.name, 10)
		var recs []*kgo.Record
		for _, v := range vals {
			recs = append(recs, kgo.StringRecord(v))
		}
		if err := cl.ProduceSync(protoCtx(t), recs...).FirstErr(); err != nil {
			t.Fatalf("acks=%s: %v", tc.name, err)
		}
		want = append(want, vals...)
		if tc.name == "none" { // nothing tells the producer when acks=0 data is in
			c := protoDial(t, b)
			protoWait(t, "acks=0 records to arrive", func() bool {
				end, _ := protoListOffset(t, c, "acks", 0, -1)
				return end == int64(len(want))
			})
		}
	}
	got := protoConsume(t, b, "acks", len(want))
	for i, r := range got {
		if r.Offset != int64(i) || string(r.Value) != want[i] {
			t.Fatalf("record %d is offset %d %q, want %q", i, r.Offset, r.Value, want[i])
		}
	}

	// Raw requests: the client library rewrites acks, a bare connection does not.
	c := protoDial(t, b)
	base := int64(len(want))
	for i, acks := range []int16{1, -1} {
		sp := protoProduceRaw(t, c, 9, acks, "acks", [16]byte{}, 0, protoBatch(t, protoBatchSpec{values: []string{"raw"}}))
		protoErr(t, fmt.Sprintf("raw acks=%d", acks), sp.ErrorCode, nil)
		if sp.BaseOffset != base+int64(i) || sp.LogStartOffset != 0 {
			t.Fatalf("raw acks=%d: base offset %d, log start %d; want %d, 0", acks, sp.BaseOffset, sp.LogStartOffset, base+int64(i))
		}
	}
	// acks=0: no response; the next request's answer is the next frame.
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = 0, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "acks"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = protoBatch(t, protoBatchSpec{values: []string{"raw-acks0"}})
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	c.send(req, 9)
	corr := c.send(kmsg.NewPtrApiVersionsRequest(), 0)
	if got, _ := c.readFrame(); got != corr {
		t.Fatalf("after an acks=0 produce the next response has correlation id %d, want %d (the ApiVersions request): acks=0 must not be answered", got, corr)
	}
	if end, _ := protoListOffset(t, c, "acks", 0, -1); end != base+3 {
		t.Fatalf("log end offset %d after the raw produces, want %d", end, base+3)
	}
	recs := protoFetchAll(t, c, "acks", 0, base)
	if len(recs) != 3 || recs[2].value != "raw-acks0" || recs[2].offset != base+2 {
		t.Fatalf("raw records read back as %+v", recs)
	}
}

// TestProduceCompressionCodecs: every codec round-trips through a consumer,
// and the broker stores batches with the codec the producer chose.
func TestProduceCompressionCodecs(t *testing.T) {
	b := protoBroker(t, nil)
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
		typ   int8
	}{
		{"none", kgo.NoCompression(), 0},
		{"gzip", kgo.GzipCompression(), 1},
		{"snappy", kgo.SnappyCompression(), 2},
		{"lz4", kgo.Lz4Compression(), 3},
		{"zstd", kgo.ZstdCompression(), 4},
	}
	for _, tc := range codecs {
		t.Run(tc.name, func(t *testing.T) {
			topic := "codec-" + tc.name
			protoCreateTopic(t, b, topic, 1, nil)
			cl := protoClient(t, b, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(tc.codec))
			want := make([]string, 50)
			recs := make([]*kgo.Record, len(want))
			for i := range want {
				want[i] = fmt.Sprintf("%s %d %s", tc.name, i, strings.Repeat("compressible ", 20))
				recs[i] = kgo.StringRecord(want[i])
			}
			if err := cl.ProduceSync(protoCtx(t), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			for i, r := range protoConsume(t, b, topic, len(want)) {
				if r.Offset != int64(i) || string(r.Value) != want[i] {
					t.Fatalf("record %d: offset %d %q, want %q", i, r.Offset, r.Value, want[i])
				}
			}
			c := protoDial(t, b)
			stored := protoFetchAll(t, c, topic, 0, 0)
			if len(stored) != len(want) {
				t.Fatalf("raw fetch decoded %d records, want %d", len(stored), len(want))
			}
			for _, r := range stored {
				if r.codec != tc.typ {
					t.Fatalf("record %d is stored with codec %d, want %d (%s)", r.offset, r.codec, tc.typ, tc.name)
				}
			}

			// A hand-built batch with the codec reads back the same way.
			sp := protoProduceRaw(t, c, 9, -1, topic, [16]byte{}, 0, protoBatch(t, protoBatchSpec{values: []string{"a", "b", "c"}, codec: tc.codec}))
			protoErr(t, "raw produce", sp.ErrorCode, nil)
			got := protoFetchAll(t, c, topic, 0, sp.BaseOffset)
			if len(got) != 3 || got[0].value != "a" || got[2].value != "c" || got[2].offset != int64(len(want))+2 {
				t.Fatalf("raw %s batch read back as %+v", tc.name, got)
			}
		})
	}
}

// TestProduceCorruptBatch: a batch whose CRC does not match, or whose length
// lies, is refused with CORRUPT_MESSAGE, nothing of the request is stored,
// and the partition keeps working.
func TestProduceCorruptBatch(t *testing.T) {
	b := protoBroker(t, nil)
	protoCreateTopic(t, b, "corrupt", 1, nil)
	c := protoDial(t, b)

	good := protoBatch(t, protoBatchSpec{values: []string{"good-1", "good-2"}})
	flipped := protoBatch(t, protoBatchSpec{values: []string{"bad-1", "bad-2"}})
	flipped[len(flipped)-3] ^= 0x5a // a byte of the last record's value, after the CRC was computed
	short := protoBatch(t, protoBatchSpec{values: []string{"short"}})
	short = short[:len(short)-4] // the length field promises more than is sent

	cases := []struct {
		name    string
		records []byte
		want    *kerr.Error
	}{
		{"flipped byte", flipped, kerr.CorruptMessage},
		{"truncated", short, kerr.InvalidRecord}, // as Kafka: no whole batch was sent
		{"good then flipped", append(append([]byte(nil), good...), flipped...), kerr.CorruptMessage},
	}
	for _, tc := range cases {
		sp := protoProduceRaw(t, c, 9, -1, "corrupt", [16]byte{}, 0, tc.records)
		protoErr(t, tc.name, sp.ErrorCode, tc.want)
		if sp.BaseOffset != -1 {
			t.Fatalf("%s: base offset %d, want -1", tc.name, sp.BaseOffset)
		}
		if end, _ := protoListOffset(t, c, "corrupt", 0, -1); end != 0 {
			t.Fatalf("%s: log end offset %d, want 0 (nothing of a refused request may be stored)", tc.name, end)
		}
	}

	sp := protoProduceRaw(t, c, 9, -1, "corrupt", [16]byte{}, 0, good)
	protoErr(t, "good batch after corrupt ones", sp.ErrorCode, nil)
	if sp.BaseOffset != 0 {
		t.Fatalf("good batch got offset %d, want 0", sp.BaseOffset)
	}
	got := protoConsume(t, b, "corrupt", 2)
	if string(got[0].Value) != "good-1" || string(got[1].Value) != "good-2" {
		t.Fatalf("consumed %q, %q", got[0].Value, got[1].Value)
	}
}

// TestProduceMessageTooLarge: a batch over the topic's max.message.bytes is
// refused with MESSAGE_TOO_LARGE, for raw requests and the real client.
func TestProduceMessageTooLarge(t *testing.T) {
	b := protoBroker(t, nil)
	protoCreateTopic(t, b, "small", 1, map[string]string{"max.message.bytes": "1000"})
	c := protoDial(t, b)

	big := protoBatch(t, protoBatchSpec{values: []string{strings.Repeat("x", 2000)}})
	sp := protoProduceRaw(t, c, 9, -1, "small", [16]byte{}, 0, big)
	protoErr(t, "2000-byte batch", sp.ErrorCode, kerr.MessageTooLarge)

	cl := protoClient(t, b, kgo.DefaultProduceTopic("small"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	err := cl.ProduceSync(protoCtx(t), kgo.StringRecord(strings.Repeat("y", 2000))).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("franz-go producing 2000 bytes got %v, want MESSAGE_TOO_LARGE", err)
	}

	sp = protoProduceRaw(t, c, 9, -1, "small", [16]byte{}, 0, protoBatch(t, protoBatchSpec{values: []string{"fits"}}))
	protoErr(t, "small batch", sp.ErrorCode, nil)
	if sp.BaseOffset != 0 {
		t.Fatalf("small batch got offset %d, want 0: the refused batches must not take offsets", sp.BaseOffset)
	}
}

// TestProduceInvalidAcks: acks other than -1, 0 and 1 get INVALID_REQUIRED_ACKS.
func TestProduceInvalidAcks(t *testing.T) {
	b := protoBroker(t, nil)
	protoCreateTopic(t, b, "acks-bad", 1, nil)
	c := protoDial(t, b)
	for _, acks := range []int16{2, -2, 5} {
		sp := protoProduceRaw(t, c, 9, acks, "acks-bad", [16]byte{}, 0, protoBatch(t, protoBatchSpec{values: []string{"v"}}))
		protoErr(t, fmt.Sprintf("acks=%d", acks), sp.ErrorCode, kerr.InvalidRequiredAcks)
	}
	if end, _ := protoListOffset(t, c, "acks-bad", 0, -1); end != 0 {
		t.Fatalf("log end offset %d, want 0", end)
	}
}

// TestProduceNotEnoughReplicas: a topic asking min.insync.replicas=2 cannot
// take acks=all writes on one node; acks=1 still works.
func TestProduceNotEnoughReplicas(t *testing.T) {
	b := protoBroker(t, nil)
	protoCreateTopic(t, b, "isr2", 1, map[string]string{"min.insync.replicas": "2"})
	c := protoDial(t, b)
	batch := func() []byte { return protoBatch(t, protoBatchSpec{values: []string{"v"}}) }

	sp := protoProduceRaw(t, c, 9, -1, "isr2", [16]byte{}, 0, batch())
	protoErr(t, "acks=-1", sp.ErrorCode, kerr.NotEnoughReplicas)
	if end, _ := protoListOffset(t, c, "isr2", 0, -1); end != 0 {
		t.Fatalf("log end offset %d after a NOT_ENOUGH_REPLICAS produce, want 0", end)
	}
	sp = protoProduceRaw(t, c, 9, 1, "isr2", [16]byte{}, 0, batch())
	protoErr(t, "acks=1", sp.ErrorCode, nil)
	if sp.BaseOffset != 0 {
		t.Fatalf("acks=1 got offset %d, want 0", sp.BaseOffset)
	}
}

// protoInitProducerID gets a producer id and epoch with InitProducerId.
func protoInitProducerID(t *testing.T, c *protoConn) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = 60000
	req.ProducerID, req.ProducerEpoch = -1, -1
	resp := c.roundTrip(req, 4).(*kmsg.InitProducerIDResponse)
	protoErr(t, "InitProducerId", resp.ErrorCode, nil)
	if resp.ProducerID < 0 || resp.ProducerEpoch != 0 {
		t.Fatalf("InitProducerId gave id %d epoch %d", resp.ProducerID, resp.ProducerEpoch)
	}
	return resp.ProducerID, resp.ProducerEpoch
}

// TestProduceIdempotent: a retried batch (same producer id, epoch and
// sequence) is answered with its first offset and not stored twice; a gap in
// sequences and an old epoch are refused.
func TestProduceIdempotent(t *testing.T) {
	b := protoBroker(t, nil)
	protoCreateTopic(t, b, "idem", 1, nil)
	c := protoDial(t, b)
	pid, epoch := protoInitProducerID(t, c)

	batch := func(epoch int16, seq int32, values ...string) []byte {
		return protoBatch(t, protoBatchSpec{values: values, idempotent: true, producerID: pid, epoch: epoch, sequence: seq})
	}
	produce := func(what string, records []byte, wantOffset int64, wantErr *kerr.Error) {
		t.Helper()
		sp := protoProduceRaw(t, c, 9, -1, "idem", [16]byte{}, 0, records)
		protoErr(t, what, sp.ErrorCode, wantErr)
		if wantErr == nil && sp.BaseOffset != wantOffset {
			t.Fatalf("%s: base offset %d, want %d", what, sp.BaseOffset, wantOffset)
		}
	}
	end := func() int64 {
		e, _ := protoListOffset(t, c, "idem", 0, -1)
		return e
	}

	first := batch(epoch, 0, "a", "b", "c")
	produce("first batch", bytes.Clone(first), 0, nil)
	produce("retry of the first batch", bytes.Clone(first), 0, nil)
	if e := end(); e != 3 {
		t.Fatalf("log end offset %d after a retried batch, want 3", e)
	}
	produce("second batch", batch(epoch, 3, "d", "e"), 3, nil)
	produce("late retry of the first batch", bytes.Clone(first), 0, nil)
	produce("sequence gap", batch(epoch, 10, "gap"), 0, kerr.OutOfOrderSequenceNumber)
	if e := end(); e != 5 {
		t.Fatalf("log end offset %d, want 5", e)
	}
	produce("next in sequence", batch(epoch, 5, "f"), 5, nil)
	produce("new epoch", batch(epoch+1, 0, "g"), 6, nil)
	produce("old epoch", batch(epoch, 6, "h"), 0, kerr.InvalidProducerEpoch)

	got := protoConsume(t, b, "idem", 7)
	var vals []string
	for _, r := range got {
		vals = append(vals, string(r.Value))
	}
	if strings.Join(vals, "") != "abcdefg" {
		t.Fatalf("consumed %q, want a..g exactly once each", vals)
	}
}

// TestProduceTopicResolution: as in Kafka, a produce does not create a
// topic (clients create it through Metadata); it can address a topic by id
// from v13, and refuses unknown ids and partitions.
func TestProduceTopicResolution(t *testing.T) {
	b := protoBroker(t, nil)
	c := protoDial(t, b)
	batch := func() []byte { return protoBatch(t, protoBatchSpec{values: []string{"v"}}) }

	if protoTopicExists(t, b, "auto-produce") {
		t.Fatal("topic exists before the produce")
	}
	sp := protoProduceRaw(t, c, 3, -1, "auto-produce", [16]byte{}, 0, batch()) // v3, the first with a transactional id
	protoErr(t, "produce to a new topic", sp.ErrorCode, kerr.UnknownTopicOrPartition)
	if protoTopicExists(t, b, "auto-produce") {
		t.Fatal("a produce created a topic")
	}

	id := protoCreateTopic(t, b, "by-id", 1, nil)
	sp = protoProduceRaw(t, c, 13, -1, "", id, 0, batch())
	protoErr(t, "produce v13 by topic id", sp.ErrorCode, nil)
	sp = protoProduceRaw(t, c, 13, -1, "", id, 0, batch())
	if sp.BaseOffset != 1 {
		t.Fatalf("second produce by id got offset %d, want 1", sp.BaseOffset)
	}
	if got := protoFetchAll(t, c, "by-id", 0, 0); len(got) != 2 {
		t.Fatalf("fetched %d records produced by id, want 2", len(got))
	}
	sp = protoProduceRaw(t, c, 13, -1, "", [16]byte{1, 2, 3}, 0, batch())
	protoErr(t, "produce to an unknown topic id", sp.ErrorCode, kerr.UnknownTopicID)

	sp = protoProduceRaw(t, c, 9, -1, "by-id", [16]byte{}, 7, batch())
	protoErr(t, "produce to a missing partition", sp.ErrorCode, kerr.UnknownTopicOrPartition)
	sp = protoProduceRaw(t, c, 9, -1, "bad/name", [16]byte{}, 0, batch())
	protoErr(t, "produce to an invalid topic name", sp.ErrorCode, kerr.UnknownTopicOrPartition) // as Kafka: no such topic

	off := protoBroker(t, map[string]string{"auto.create.topics.enable": "false"})
	sp = protoProduceRaw(t, protoDial(t, off), 9, -1, "not-created", [16]byte{}, 0, batch())
	protoErr(t, "produce with auto-creation off", sp.ErrorCode, kerr.UnknownTopicOrPartition)
	if protoTopicExists(t, off, "not-created") {
		t.Fatal("topic was created although auto.create.topics.enable=false")
	}
}

// TestProduceLogAppendTime: a LogAppendTime topic answers with the broker's
// timestamp and stores it on the records.
func TestProduceLogAppendTime(t *testing.T) {
	b := protoBroker(t, nil)
	protoCreateTopic(t, b, "lat", 1, map[string]string{"message.timestamp.type": "LogAppendTime"})
	c := protoDial(t, b)
	sp := protoProduceRaw(t, c, 9, -1, "lat", [16]byte{}, 0, protoBatch(t, protoBatchSpec{values: []string{"x", "y"}, timestamps: []int64{1000, 2000}}))
	protoErr(t, "produce", sp.ErrorCode, nil)
	if sp.LogAppendTime < 1_000_000_000_000 {
		t.Fatalf("LogAppendTime %d, want the broker's clock", sp.LogAppendTime)
	}
	for _, r := range protoConsume(t, b, "lat", 2) {
		if r.Timestamp.UnixMilli() != sp.LogAppendTime {
			t.Fatalf("record %d has timestamp %d, want the append time %d", r.Offset, r.Timestamp.UnixMilli(), sp.LogAppendTime)
		}
	}
}

// TestProduceOldVersions: Produce v0-v2 carrying a record batch v2 is stored
// (librdkafka before 2.11 needs v0 advertised to compress), while a message
// set in the pre-0.11 format v1 is refused with UNSUPPORTED_VERSION.
func TestProduceOldVersions(t *testing.T) {
	b := protoBroker(t, nil)
	c := protoDial(t, b)
	protoCreateTopic(t, b, "old", 1, nil)
	for v := int16(0); v <= 2; v++ {
		sp := protoProduceRaw(t, c, v, -1, "old", [16]byte{}, 0, protoBatch(t, protoBatchSpec{values: []string{fmt.Sprint(v)}}))
		protoErr(t, fmt.Sprintf("produce v%d with a record batch v2", v), sp.ErrorCode, nil)
		if sp.BaseOffset != int64(v) {
			t.Fatalf("produce v%d: base offset %d, want %d", v, sp.BaseOffset, v)
		}
	}

	msg := kmsg.MessageV1{Magic: 1, Timestamp: 1, Value: []byte("old format")}
	raw := msg.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[12:], crc32.ChecksumIEEE(raw[16:]))
	sp := protoProduceRaw(t, c, 2, -1, "old", [16]byte{}, 0, raw)
	protoErr(t, "produce of a v1 message set", sp.ErrorCode, kerr.UnsupportedVersion)
	if got := protoFetchAll(t, c, "old", 0, 0); len(got) != 3 {
		t.Fatalf("fetched %d records, want the 3 record-batch-v2 ones", len(got))
	}
}
