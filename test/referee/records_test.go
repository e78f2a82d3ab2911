package referee

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// batch encodes a v2 record batch of values, as a producer would.
func batch(codec kgo.CompressionCodec, pid int64, seq int32, values ...string) []byte {
	return batchAt(time.Now().UnixMilli(), codec, pid, seq, values...)
}

// batchAt is batch with the records' timestamp given.
func batchAt(now int64, codec kgo.CompressionCodec, pid int64, seq int32, values ...string) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Key: []byte("k"), Value: []byte(v)}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	attrs := int16(0)
	if codec != (kgo.CompressionCodec{}) {
		c, _ := kgo.DefaultCompressor(codec)
		out, used := c.Compress(new(bytes.Buffer), recs)
		recs, attrs = append([]byte(nil), out...), int16(used)
	}
	epoch := int16(0)
	if pid < 0 {
		epoch, seq = -1, -1
	}
	rb := kmsg.RecordBatch{
		Length: int32(49 + len(recs)), Magic: 2, Attributes: attrs,
		LastOffsetDelta: int32(len(values) - 1), FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: pid, ProducerEpoch: epoch, FirstSequence: seq, NumRecords: int32(len(values)), Records: recs,
	}
	return reseal(rb.AppendTo(nil))
}

func reseal(b []byte) []byte {
	binary.BigEndian.PutUint32(b[17:21], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// produce writes values to a partition of both brokers, in one plain
// batch (produce v7): setup, not compared.
func (p *pair) produce(topic string, partition int32, values ...string) {
	p.t.Helper()
	p.both(func(side string, c *conn) {
		req := produceReq(-1, topic, partition, batch(kgo.CompressionCodec{}, -1, 0, values...))(side)
		req.SetVersion(7)
		c.must(req)
	})
}

func produceReq(acks int16, topic string, partition int32, records []byte) func(string) kmsg.Request {
	return func(string) kmsg.Request {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = acks, 1000 // Kafka waits this long to answer a request with nothing to append
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = partition, records
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}
}

// produceAnswer leaves out offsets (each broker's log has its own history
// in these tests) but keeps every error code.
func produceAnswer(resp kmsg.Response) {
	for i := range resp.(*kmsg.ProduceResponse).Topics {
		for j := range resp.(*kmsg.ProduceResponse).Topics[i].Partitions {
			p := &resp.(*kmsg.ProduceResponse).Topics[i].Partitions[j]
			p.BaseOffset, p.LogStartOffset = 0, 0
			p.ErrorRecords = nil
		}
	}
}

func TestProduce(t *testing.T) {
	p := newPair(t)
	topic := uniqueName(t, "produce")
	p.createTopic(topic, 2, map[string]string{"max.message.bytes": "2000"})
	flipped := batch(kgo.CompressionCodec{}, -1, 0, "x")
	flipped[len(flipped)-1] ^= 1
	badCount := batch(kgo.CompressionCodec{}, -1, 0, "a", "b")
	binary.BigEndian.PutUint32(badCount[57:61], 3)
	binary.BigEndian.PutUint32(badCount[23:27], 2)
	reseal(badCount)
	codec7 := batch(kgo.CompressionCodec{}, -1, 0, "x")
	codec7[22] |= 7
	reseal(codec7)
	cases := []struct {
		what      string
		acks      int16
		topic     string
		partition int32
		records   []byte
		from      int16
	}{
		{"a batch", -1, topic, 0, batch(kgo.CompressionCodec{}, -1, 0, "v"), 3},
		{"acks=1", 1, topic, 1, batch(kgo.CompressionCodec{}, -1, 0, "v"), 3},
		{"acks=2", 2, topic, 0, batch(kgo.CompressionCodec{}, -1, 0, "v"), 3},
		{"unknown partition", -1, topic, 9, batch(kgo.CompressionCodec{}, -1, 0, "v"), 3},
		{"negative partition", -1, topic, -1, batch(kgo.CompressionCodec{}, -1, 0, "v"), 3},
		{"larger than max.message.bytes", -1, topic, 0, batch(kgo.CompressionCodec{}, -1, 0, strings.Repeat("z", 3000)), 3},
		{"checksum mismatch", -1, topic, 0, flipped, 3},
		{"record count lies", -1, topic, 0, badCount, 3},
		{"codec 7", -1, topic, 0, codec7, 3},
		{"zstd", -1, topic, 0, batch(kgo.ZstdCompression(), -1, 0, "z"), 3},
		{"two batches", -1, topic, 0, append(batch(kgo.CompressionCodec{}, -1, 0, "1"), batch(kgo.CompressionCodec{}, -1, 0, "2")...), 3},
		{"garbage", -1, topic, 0, bytes.Repeat([]byte{2}, 80), 3},
		{"invalid topic name", -1, "bad name", 0, batch(kgo.CompressionCodec{}, -1, 0, "v"), 3},
		{"unknown producer id", -1, topic, 0, batch(kgo.CompressionCodec{}, 987654321, 0, "v"), 3},
	}
	for _, c := range cases {
		for _, v := range versions(kmsg.Produce, c.from) {
			if v >= 13 {
				continue // by topic id: see TestProduceByTopicID
			}
			p.same("Produce "+c.what, v, produceReq(c.acks, c.topic, c.partition, c.records), produceAnswer)
		}
	}
}

func fetchReq(topic string, partition int32, offset int64, session, epoch int32) func(string) kmsg.Request {
	return func(string) kmsg.Request {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 10, 1, 1<<20
		req.SessionID, req.SessionEpoch = session, epoch
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = topic
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = partition, offset, 1<<20
		fp.CurrentLeaderEpoch, fp.LogStartOffset = -1, -1
		ft.Partitions = append(ft.Partitions, fp)
		req.Topics = append(req.Topics, ft)
		return req
	}
}

// fetchAnswer keeps error codes and offsets, not the bytes of the records
// (each broker stamps its own timestamps).
func fetchAnswer(resp kmsg.Response) {
	f := resp.(*kmsg.FetchResponse)
	for i := range f.Topics {
		for j := range f.Topics[i].Partitions {
			pt := &f.Topics[i].Partitions[j]
			if len(pt.RecordBatches) > 0 {
				pt.RecordBatches = []byte("records")
			}
		}
	}
}

func TestFetch(t *testing.T) {
	p := newPair(t)
	topic := uniqueName(t, "fetch")
	p.createTopic(topic, 1, nil)
	p.produce(topic, 0, "a", "b", "c")
	for _, v := range versions(kmsg.Fetch, 4) {
		if v >= 13 {
			continue // by topic id
		}
		p.same("Fetch from the start", v, fetchReq(topic, 0, 0, 0, -1), fetchAnswer)
		p.same("Fetch at the end", v, fetchReq(topic, 0, 3, 0, -1), fetchAnswer)
		p.same("Fetch past the end", v, fetchReq(topic, 0, 10, 0, -1), fetchAnswer)
		p.same("Fetch before the start", v, fetchReq(topic, 0, -5, 0, -1), fetchAnswer)
		p.same("Fetch of an unknown partition", v, fetchReq(topic, 4, 0, 0, -1), fetchAnswer)
		p.same("Fetch of an unknown topic", v, fetchReq(topic+"-none", 0, 0, 0, -1), fetchAnswer)
		p.same("Fetch of a partition named twice", v, func(side string) kmsg.Request {
			req := fetchReq(topic, 0, 0, 0, -1)(side).(*kmsg.FetchRequest)
			again := req.Topics[0].Partitions[0]
			again.FetchOffset = 2
			req.Topics[0].Partitions = append(req.Topics[0].Partitions, again)
			req.Topics = append(req.Topics, req.Topics[0])
			return req
		}, fetchAnswer)
		if v >= 7 {
			// KIP-227's session id and epoch combinations.
			p.same("Fetch session id -1 epoch -1", v, fetchReq(topic, 0, 0, -1, -1), fetchAnswer)
			p.same("Fetch unknown session", v, fetchReq(topic, 0, 0, 12345, 1), fetchAnswer)
			p.same("Fetch unknown session epoch 0", v, fetchReq(topic, 0, 0, 12345, 0), fetchAnswer)
			p.same("Fetch session 0 epoch 5", v, fetchReq(topic, 0, 0, 0, 5), fetchAnswer)
		}
	}
}

// sessionReq is a fetch of a session: each broker's own session id, the
// partitions given (partition → fetch offset) and those to forget.
func sessionReq(topic string, sessions map[string]int32, epoch int32, offsets map[int32]int64, forget ...int32) func(string) kmsg.Request {
	return func(side string) kmsg.Request {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 10, 1, 1<<20
		req.SessionID, req.SessionEpoch = sessions[side], epoch
		if len(offsets) > 0 {
			ft := kmsg.NewFetchRequestTopic()
			ft.Topic = topic
			for partition := range int32(3) {
				offset, ok := offsets[partition]
				if !ok {
					continue
				}
				fp := kmsg.NewFetchRequestTopicPartition()
				fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = partition, offset, 1<<20
				fp.CurrentLeaderEpoch, fp.LogStartOffset = -1, -1
				ft.Partitions = append(ft.Partitions, fp)
			}
			req.Topics = append(req.Topics, ft)
		}
		if len(forget) > 0 {
			f := kmsg.NewFetchRequestForgottenTopic()
			f.Topic, f.Partitions = topic, forget
			req.ForgottenTopics = append(req.ForgottenTopics, f)
		}
		return req
	}
}

// An incremental fetch session's life (KIP-227) on both brokers: made by a
// full fetch, then fetches carrying and answered only what changed (new
// records, a new log start offset), a repeated epoch, a forgotten
// partition, the session closed by epoch -1 and then unknown.
func TestFetchSession(t *testing.T) {
	p := newPair(t)
	topic := uniqueName(t, "session")
	p.createTopic(topic, 3, nil)
	p.produce(topic, 0, "a", "b", "c")
	const v = 12
	sessions := map[string]int32{}
	creek, kafka := p.same("Fetch that makes a session", v, sessionReq(topic, sessions, 0, map[int32]int64{0: 0, 1: 0, 2: 0}), fetchAnswer)
	if creek == nil || kafka == nil {
		t.Fatal("the first fetch was not answered")
	}
	sessions["creek"], sessions["kafka"] = creek.(*kmsg.FetchResponse).SessionID, kafka.(*kmsg.FetchResponse).SessionID
	if sessions["creek"] == 0 || sessions["kafka"] == 0 {
		t.Fatalf("sessions made: creek %d, kafka %d", sessions["creek"], sessions["kafka"])
	}
	p.same("Fetch of the session, partition 0 moved on", v, sessionReq(topic, sessions, 1, map[int32]int64{0: 3}), fetchAnswer)
	p.produce(topic, 2, "d")
	p.same("Fetch of the session after a record to partition 2", v, sessionReq(topic, sessions, 2, nil), fetchAnswer)
	p.same("Fetch of the session with an epoch used before", v, sessionReq(topic, sessions, 2, nil), fetchAnswer)
	p.same("Fetch of the session forgetting partition 2", v, sessionReq(topic, sessions, 3, map[int32]int64{2: 1}, 2), fetchAnswer)
	p.produce(topic, 2, "e")
	p.same("Fetch of the session after a record to the forgotten partition", v, sessionReq(topic, sessions, 4, nil), fetchAnswer)
	p.both(func(side string, c *conn) {
		req := deleteRecordsReq(topic, 0, 1)(side)
		req.SetVersion(1)
		c.must(req)
	})
	p.same("Fetch of the session after DeleteRecords on partition 0", v, sessionReq(topic, sessions, 5, nil), fetchAnswer)
	p.same("Fetch closing the session", v, sessionReq(topic, sessions, -1, map[int32]int64{1: 0}), fetchAnswer)
	p.same("Fetch of the closed session", v, sessionReq(topic, sessions, 6, nil), fetchAnswer)
}

func listOffsetsReq(topic string, partition int32, ts int64) func(string) kmsg.Request {
	return func(string) kmsg.Request {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = topic
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp, lp.CurrentLeaderEpoch, lp.MaxNumOffsets = partition, ts, -1, 1
		lt.Partitions = append(lt.Partitions, lp)
		req.Topics = append(req.Topics, lt)
		return req
	}
}

func TestListOffsets(t *testing.T) {
	p := newPair(t)
	empty, full := uniqueName(t, "empty"), uniqueName(t, "full")
	p.createTopic(empty, 1, nil)
	p.createTopic(full, 1, nil)
	base := time.Now().Add(-time.Hour).UnixMilli() // one second apart, so both brokers store the same times
	p.both(func(side string, c *conn) {
		for i := range 3 {
			req := produceReq(-1, full, 0, batchAt(base+int64(i)*1000, kgo.CompressionCodec{}, -1, 0, "a", "b"))(side)
			req.SetVersion(7)
			c.must(req)
		}
	})
	for _, v := range versions(kmsg.ListOffsets, 0) {
		for _, topic := range []string{empty, full} {
			for _, ts := range []int64{-1, -2, -3, 0, time.Now().Add(time.Hour).UnixMilli()} {
				if ts == -3 && v < 7 {
					continue // max timestamp needs v7
				}
				what := map[bool]string{true: "an empty topic", false: "a topic with records"}[topic == empty]
				p.same(fmt.Sprintf("ListOffsets of %s at timestamp %d", what, min(ts, 1)), v, listOffsetsReq(topic, 0, ts))
			}
		}
		p.same("ListOffsets of an unknown partition", v, listOffsetsReq(full, 3, -1))
		p.same("ListOffsets of an unknown topic", v, listOffsetsReq(full+"-none", 0, -1))
	}
}

func deleteRecordsReq(topic string, partition int32, offset int64) func(string) kmsg.Request {
	return func(string) kmsg.Request {
		req := kmsg.NewPtrDeleteRecordsRequest()
		req.TimeoutMillis = 5000
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = partition, offset
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}
}

func TestDeleteRecords(t *testing.T) {
	p := newPair(t)
	topic := uniqueName(t, "delrec")
	p.createTopic(topic, 1, nil)
	p.produce(topic, 0, "a", "b", "c", "d")
	for _, v := range versions(kmsg.DeleteRecords, 0) {
		p.same("DeleteRecords beyond the high watermark", v, deleteRecordsReq(topic, 0, 10))
		p.same("DeleteRecords of an unknown partition", v, deleteRecordsReq(topic, 5, 1))
		p.same("DeleteRecords of an unknown topic", v, deleteRecordsReq(topic+"-none", 0, 1))
		p.same("DeleteRecords -2", v, deleteRecordsReq(topic, 0, -2))
	}
	v := versions(kmsg.DeleteRecords, 0)
	p.same("DeleteRecords to 1", v[len(v)-1], deleteRecordsReq(topic, 0, 1))
	p.same("DeleteRecords to the high watermark (-1)", v[len(v)-1], deleteRecordsReq(topic, 0, -1))
	p.same("DeleteRecords below the start", v[len(v)-1], deleteRecordsReq(topic, 0, 2))
}

// topicIDs reads a topic's id on each broker.
func (p *pair) topicIDs(name string) map[string][16]byte {
	p.t.Helper()
	ids := map[string][16]byte{}
	p.both(func(side string, c *conn) {
		m := kmsg.NewPtrMetadataRequest()
		m.SetVersion(12)
		m.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(name)}}
		mr := c.must(m).(*kmsg.MetadataResponse)
		if len(mr.Topics) != 1 || mr.Topics[0].ErrorCode != 0 {
			p.t.Fatalf("%s: no metadata of %s", side, name)
		}
		ids[side] = mr.Topics[0].TopicID
	})
	return ids
}

// fetchOrder lists a fetch answer's partitions in order: the answer entry
// each is under, its topic (by name; by the name names gives its id from
// v13), partition and error. The comparisons of whole answers sort them.
func fetchOrder(resp kmsg.Response, names map[[16]byte]string) []string {
	var out []string
	for i, rt := range resp.(*kmsg.FetchResponse).Topics {
		name := rt.Topic
		if rt.TopicID != ([16]byte{}) {
			name = names[rt.TopicID]
		}
		for _, rp := range rt.Partitions {
			out = append(out, fmt.Sprintf("entry %d %s-%d error %d", i, name, rp.Partition, rp.ErrorCode))
		}
	}
	return out
}

// TestFetchErrorOrder: Kafka answers the partitions it reads first, then
// unknown topic ids, then unknown topics and partitions; creek answers in
// the same order, entry by entry.
func TestFetchErrorOrder(t *testing.T) {
	p := newPair(t)
	topic := uniqueName(t, "order")
	p.createTopic(topic, 2, nil)
	ids := p.topicIDs(topic)
	madeUp := [16]byte{7, 7, 7}
	fetch := func(v int16, names ...string) func(string) kmsg.Request {
		return func(side string) kmsg.Request {
			req := kmsg.NewPtrFetchRequest()
			req.ReplicaID, req.SessionEpoch = -1, -1
			req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 0, 1, 1<<20
			for _, n := range names {
				name, part, _ := strings.Cut(n, ":")
				ft := kmsg.NewFetchRequestTopic()
				ft.Topic = name
				if v >= 13 {
					ft.TopicID = madeUp
					if name == topic {
						ft.TopicID = ids[side]
					}
				}
				for _, c := range part {
					fp := kmsg.NewFetchRequestTopicPartition()
					fp.Partition, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch, fp.LogStartOffset = int32(c-'0'), 1<<20, -1, -1
					ft.Partitions = append(ft.Partitions, fp)
				}
				req.Topics = append(req.Topics, ft)
			}
			return req
		}
	}
	for _, c := range []struct {
		v     int16
		names []string
	}{
		{12, []string{topic + "-none:0", topic + ":051"}},
		{13, []string{"unknown-id:0", topic + ":50"}},
	} {
		creek, kafka := p.send(fmt.Sprintf("Fetch of %v", c.names), c.v, fetch(c.v, c.names...))
		if creek == nil || kafka == nil {
			continue
		}
		co := fetchOrder(creek, map[[16]byte]string{ids["creek"]: topic, madeUp: "unknown-id"})
		ko := fetchOrder(kafka, map[[16]byte]string{ids["kafka"]: topic, madeUp: "unknown-id"})
		if !slices.Equal(co, ko) {
			t.Errorf("Fetch v%d of %v answers in another order:\ncreek: %q\nkafka: %q", c.v, c.names, co, ko)
		}
	}
}

// TestFetchSessionOfADeletedTopic: a v13 session's partition whose topic
// is deleted, then made again under the same name.
func TestFetchSessionOfADeletedTopic(t *testing.T) {
	p := newPair(t)
	gone, kept := uniqueName(t, "gone"), uniqueName(t, "kept")
	p.createTopic(gone, 1, nil)
	p.createTopic(kept, 1, nil)
	goneIDs, keptIDs := p.topicIDs(gone), p.topicIDs(kept)
	sessions := map[string]int32{}
	fetch := func(epoch int32) func(string) kmsg.Request {
		return func(side string) kmsg.Request {
			req := kmsg.NewPtrFetchRequest()
			req.ReplicaID = -1
			req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 0, 1, 1<<20
			req.SessionID, req.SessionEpoch = sessions[side], epoch
			if epoch == 0 {
				for _, id := range []map[string][16]byte{goneIDs, keptIDs} {
					ft := kmsg.NewFetchRequestTopic()
					ft.TopicID = id[side]
					fp := kmsg.NewFetchRequestTopicPartition()
					fp.PartitionMaxBytes, fp.CurrentLeaderEpoch, fp.LogStartOffset = 1<<20, -1, -1
					ft.Partitions = append(ft.Partitions, fp)
					req.Topics = append(req.Topics, ft)
				}
			}
			return req
		}
	}
	const v = 13
	creek, kafka := p.same("Fetch v13 that makes a session", v, fetch(0), fetchAnswer)
	if creek == nil || kafka == nil {
		t.Fatal("the first fetch was not answered")
	}
	sessions["creek"], sessions["kafka"] = creek.(*kmsg.FetchResponse).SessionID, kafka.(*kmsg.FetchResponse).SessionID
	p.both(func(side string, c *conn) {
		req := deleteTopicsReq(gone)(side)
		req.SetVersion(4)
		if code := c.must(req).(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode; code != 0 {
			t.Fatalf("%s: delete %s: %v", side, gone, kerr.ErrorForCode(code))
		}
	})
	gotGone := metadataReq(false, gone)("kafka")
	gotGone.SetVersion(12)
	p.kafkaSettled(gotGone, func(resp kmsg.Response) bool {
		ts := resp.(*kmsg.MetadataResponse).Topics
		return len(ts) == 1 && ts[0].ErrorCode == kerr.UnknownTopicOrPartition.Code
	})
	p.same("Fetch of the session after its topic was deleted", v, fetch(1), fetchAnswer)
	p.createTopic(gone, 1, nil)
	p.same("Fetch of the session after a topic of that name was made again", v, fetch(2), fetchAnswer)
}
