package referee

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
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
			d.Topics = slices.DeleteFunc(d.Topics, func(t kmsg.DescribeLogDirsResponseDirTopic) bool { return t.Topic != topic })
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
	p.coordinatorReady(0, group)
	ids := p.initTransactional(txn)
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

func TestListTransactionsFilters(t *testing.T) {
	p := newPair(t)
	txn := uniqueName(t, "pattern")
	p.initTransactional(txn)
	vList := versions(kmsg.ListTransactions, 0)
	if last := vList[len(vList)-1]; last >= 2 {
		for _, pattern := range []string{txn, "^" + txn + "$", txn[:len(txn)-3], txn[4:], txn[:10] + ".*", "*" + txn[4:]} {
			p.same(fmt.Sprintf("ListTransactions matching %q", pattern), last, func(string) kmsg.Request {
				req := kmsg.NewPtrListTransactionsRequest()
				req.TransactionalIDPattern = kmsg.StringPtr(pattern)
				return req
			}, onlyTransaction(txn))
		}
	}
	for _, v := range versions(kmsg.ListTransactions, 0) {
		p.same("ListTransactions of a producer id no transaction has", v, func(string) kmsg.Request {
			req := kmsg.NewPtrListTransactionsRequest()
			req.ProducerIDFilters = []int64{424242424242}
			return req
		})
		p.same("ListTransactions in an unknown state", v, func(string) kmsg.Request {
			req := kmsg.NewPtrListTransactionsRequest()
			req.StateFilters = []string{"Bogus"}
			return req
		})
		if v >= 1 {
			p.same("ListTransactions open for a year", v, func(string) kmsg.Request {
				req := kmsg.NewPtrListTransactionsRequest()
				req.DurationFilterMillis = 365 * 24 * 3600 * 1000
				return req
			})
		}
		if v >= 2 {
			p.same("ListTransactions of an id pattern nothing matches", v, func(string) kmsg.Request {
				req := kmsg.NewPtrListTransactionsRequest()
				req.TransactionalIDPattern = kmsg.StringPtr("^ref-none-.*$")
				return req
			})
			p.same("ListTransactions of an invalid id pattern", v, func(string) kmsg.Request {
				req := kmsg.NewPtrListTransactionsRequest()
				req.TransactionalIDPattern = kmsg.StringPtr("(")
				return req
			})
		}
	}
}

// onlyTransaction keeps one transactional id of a ListTransactions answer
// (Kafka's lists those of the other tests too).
func onlyTransaction(id string) normalizer {
	return func(resp kmsg.Response) {
		r := resp.(*kmsg.ListTransactionsResponse)
		r.TransactionStates = slices.DeleteFunc(r.TransactionStates, func(st kmsg.ListTransactionsResponseTransactionState) bool { return st.TransactionalID != id })
	}
}

// TestShareRequestsWithoutAMember: ShareFetch and ShareAcknowledge from
// clients that never joined the share group, each with a member id of its
// own.
func TestShareRequestsWithoutAMember(t *testing.T) {
	p := newPair(t)
	topic, group := uniqueName(t, "topic"), uniqueName(t, "share")
	p.createTopic(topic, 1, nil)
	ids := p.topicIDs(topic)
	fetch := func(member string, epoch int32) func(string) kmsg.Request {
		return func(side string) kmsg.Request {
			req := kmsg.NewPtrShareFetchRequest()
			req.GroupID, req.MemberID = kmsg.StringPtr(group), kmsg.StringPtr(member)
			req.ShareSessionEpoch, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = epoch, 0, 1, 1<<20
			rt := kmsg.NewShareFetchRequestTopic()
			rt.TopicID = ids[side]
			rp := kmsg.NewShareFetchRequestTopicPartition()
			rp.PartitionMaxBytes = 1 << 20
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			return req
		}
	}
	ack := func(member string) func(string) kmsg.Request {
		return func(side string) kmsg.Request {
			req := kmsg.NewPtrShareAcknowledgeRequest()
			req.GroupID, req.MemberID = kmsg.StringPtr(group), kmsg.StringPtr(member)
			req.ShareSessionEpoch = 1
			rt := kmsg.NewShareAcknowledgeRequestTopic()
			rt.TopicID = ids[side]
			rp := kmsg.NewShareAcknowledgeRequestTopicPartition()
			rp.AcknowledgementBatches = []kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{{FirstOffset: 0, LastOffset: 0, AcknowledgeTypes: []int8{1}}}
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			return req
		}
	}
	// Share members make their ids: UUIDs, as Kafka writes them.
	member := func() string {
		var id [16]byte
		rand.Read(id[:])
		return base64.RawURLEncoding.EncodeToString(id[:])
	}
	for _, v := range versions(kmsg.ShareFetch, 1) {
		p.same("ShareFetch of a session never opened", v, fetch(member(), 3))
		// A deliberate difference (docs/broker.md): Kafka 4.4 opens a share
		// session for a member id its group does not have.
		req := fetch(member(), 0)("creek")
		req.SetVersion(v)
		if resp := p.creek.must(req).(*kmsg.ShareFetchResponse); resp.ErrorCode != kerr.UnknownMemberID.Code {
			t.Errorf("ShareFetch v%d opening a session for a member not in the group: error %d, want UNKNOWN_MEMBER_ID", v, resp.ErrorCode)
		}
	}
	for _, v := range versions(kmsg.ShareAcknowledge, 2) {
		p.same("ShareAcknowledge without a session", v, ack(member()))
	}
}

func TestSASLHandshakeOnAPlaintextListener(t *testing.T) {
	p := newPair(t)
	for _, v := range versions(kmsg.SASLHandshake, 0) {
		p.same("SaslHandshake PLAIN", v, func(string) kmsg.Request {
			req := kmsg.NewPtrSASLHandshakeRequest()
			req.Mechanism = "PLAIN"
			return req
		})
	}
}
