package referee

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// APIs whose answers the other referee tests use but do not compare: the
// same requests, valid and not, to both brokers.

func offsetForLeaderEpochReq(topic string, partition, current, epoch int32) func(string) kmsg.Request {
	return func(string) kmsg.Request {
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.ReplicaID = -1
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = partition, current, epoch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}
}

func TestOffsetForLeaderEpoch(t *testing.T) {
	p := newPair(t)
	topic := uniqueName(t, "epochs")
	p.createTopic(topic, 1, nil)
	p.produce(topic, 0, "a", "b", "c")
	for _, v := range versions(kmsg.OffsetForLeaderEpoch, 2) {
		for _, c := range []struct {
			what                      string
			partition, current, epoch int32
		}{
			{"the current epoch", 0, -1, 0},
			{"the current epoch, naming it", 0, 0, 0},
			{"a later epoch", 0, -1, 5},
			{"a fenced current epoch", 0, 7, 0},
			{"an unknown partition", 3, -1, 0},
		} {
			p.same(fmt.Sprintf("OffsetForLeaderEpoch of %s", c.what), v, offsetForLeaderEpochReq(topic, c.partition, c.current, c.epoch))
		}
		p.same("OffsetForLeaderEpoch of an unknown topic", v, offsetForLeaderEpochReq(topic+"-none", 0, -1, 0))
	}
}

// logDirAnswer keeps what DescribeLogDirs says of the test's topic: its
// partitions, their sizes (the same records take the same bytes) and
// errors, not where each broker keeps them or how much room it has.
func logDirAnswer(topic string) normalizer {
	return func(resp kmsg.Response) {
		r := resp.(*kmsg.DescribeLogDirsResponse)
		for i := range r.Dirs {
			d := &r.Dirs[i]
			d.Dir, d.TotalBytes, d.UsableBytes = "", 0, 0
			var kept []kmsg.DescribeLogDirsResponseDirTopic
			for _, t := range d.Topics {
				if t.Topic == topic {
					kept = append(kept, t)
				}
			}
			d.Topics = kept
		}
	}
}

func TestDescribeLogDirs(t *testing.T) {
	p := newPair(t)
	topic := uniqueName(t, "dirs")
	p.createTopic(topic, 2, nil)
	for _, v := range versions(kmsg.DescribeLogDirs, 1) {
		p.same("DescribeLogDirs of a topic", v, func(string) kmsg.Request {
			req := kmsg.NewPtrDescribeLogDirsRequest()
			req.Topics = []kmsg.DescribeLogDirsRequestTopic{{Topic: topic, Partitions: []int32{0, 1, 5}}}
			return req
		}, logDirAnswer(topic))
		p.same("DescribeLogDirs of an unknown topic", v, func(string) kmsg.Request {
			req := kmsg.NewPtrDescribeLogDirsRequest()
			req.Topics = []kmsg.DescribeLogDirsRequestTopic{{Topic: topic + "-none", Partitions: []int32{0}}}
			return req
		}, logDirAnswer(topic))
	}
}

// TestTransactionalOffsetErrors: AddOffsetsToTxn and TxnOffsetCommit, as a
// transactional consumer-producer (Kafka Streams, exactly-once) sends
// them, and the mistakes a client can make with them.
func TestTransactionalOffsetErrors(t *testing.T) {
	p := newPair(t)
	txn, group, topic := uniqueName(t, "txn"), uniqueName(t, "group"), uniqueName(t, "topic")
	p.createTopic(topic, 1, nil)
	topicIDs := p.topicIDs(topic)
	p.coordinatorReady(1, txn)
	p.coordinatorReady(0, group)
	p.producerIDsReady(txn)
	ids := map[string][2]int64{}
	p.both(func(side string, c *conn) {
		req := initProducerReq(kmsg.StringPtr(txn), 60000)(side)
		req.SetVersion(4)
		resp := c.must(req).(*kmsg.InitProducerIDResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("%s: InitProducerId: %d", side, resp.ErrorCode)
		}
		ids[side] = [2]int64{resp.ProducerID, int64(resp.ProducerEpoch)}
	})
	producer := func(side string, pid int64, epochDelta int16) (int64, int16) {
		if pid == 0 {
			return ids[side][0], int16(ids[side][1]) + epochDelta
		}
		return pid, 0
	}
	addOffsets := func(pid int64, epochDelta int16, g string) func(string) kmsg.Request {
		return func(side string) kmsg.Request {
			req := kmsg.NewPtrAddOffsetsToTxnRequest()
			req.TransactionalID, req.Group = txn, g
			req.ProducerID, req.ProducerEpoch = producer(side, pid, epochDelta)
			return req
		}
	}
	commit := func(pid int64, g string, partition int32, generation int32, member string, byID bool) func(string) kmsg.Request {
		return func(side string) kmsg.Request {
			req := kmsg.NewPtrTxnOffsetCommitRequest()
			req.TransactionalID, req.Group = txn, g
			req.ProducerID, req.ProducerEpoch = producer(side, pid, 0)
			req.Generation, req.MemberID = generation, member
			rt := kmsg.NewTxnOffsetCommitRequestTopic()
			rt.Topic = topic // up to v5
			if byID {
				rt.TopicID = topicIDs[side] // v6 names topics by id
			}
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = partition, 1, -1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			return req
		}
	}
	vAdd := versions(kmsg.AddOffsetsToTxn, 0)
	for _, v := range vAdd {
		p.same("AddOffsetsToTxn wrong producer id", v, addOffsets(424242, 0, group))
		p.same("AddOffsetsToTxn old epoch", v, addOffsets(0, -1, group))
	}
	p.same("AddOffsetsToTxn", vAdd[len(vAdd)-1], addOffsets(0, 0, group))
	vCommit := versions(kmsg.TxnOffsetCommit, 0)
	last := vCommit[len(vCommit)-1]
	for _, v := range vCommit[3:] {
		p.same("TxnOffsetCommit of a member of a group that does not exist yet", v, commit(0, group, 0, 3, "nobody", true))
	}
	for _, v := range vCommit {
		p.same("TxnOffsetCommit wrong producer id", v, commit(424242, group, 0, -1, "", true))
		p.same("TxnOffsetCommit unknown partition", v, commit(0, group, 4, -1, "", true))
		p.same("TxnOffsetCommit unknown topic (id)", v, commit(0, group, 0, -1, "", false))
	}
	p.same("TxnOffsetCommit", last, commit(0, group, 0, -1, "", true))
	for _, v := range vCommit[3:] {
		p.same("TxnOffsetCommit of an unknown member", v, commit(0, group, 0, 3, "nobody", true))
	}
	p.same("EndTxn abort", 4, func(side string) kmsg.Request {
		req := kmsg.NewPtrEndTxnRequest()
		req.TransactionalID, req.Commit = txn, false
		req.ProducerID, req.ProducerEpoch = producer(side, 0, 0)
		return req
	})
}
