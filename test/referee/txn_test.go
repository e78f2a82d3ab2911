package referee

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func initProducerReq(txnID *string, timeoutMs int32) func(string) kmsg.Request {
	return func(string) kmsg.Request {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID, req.TransactionTimeoutMillis = txnID, timeoutMs
		req.ProducerID, req.ProducerEpoch = -1, -1
		return req
	}
}

func TestTransactionErrors(t *testing.T) {
	p := newPair(t)
	txn := uniqueName(t, "txn")
	topic := uniqueName(t, "topic")
	p.createTopic(topic, 1, nil)
	p.coordinatorReady(1, txn)
	p.producerIDsReady(txn)
	for _, v := range versions(kmsg.InitProducerID, 0) {
		p.same("InitProducerId idempotent", v, initProducerReq(nil, 60000))
		p.same("InitProducerId transaction timeout too long", v, initProducerReq(kmsg.StringPtr(txn+"-long"), 3_600_000))
		p.same("InitProducerId empty transactional id", v, initProducerReq(kmsg.StringPtr(""), 60000))
	}
	// A real transactional producer: each broker's own producer id is kept
	// to build the next requests.
	ids := map[string][2]int64{}
	vInit := versions(kmsg.InitProducerID, 0)
	c, k := p.same("InitProducerId transactional", vInit[len(vInit)-1], initProducerReq(kmsg.StringPtr(txn), 60000))
	if c == nil {
		t.FailNow()
	}
	ids["creek"] = [2]int64{c.(*kmsg.InitProducerIDResponse).ProducerID, int64(c.(*kmsg.InitProducerIDResponse).ProducerEpoch)}
	ids["kafka"] = [2]int64{k.(*kmsg.InitProducerIDResponse).ProducerID, int64(k.(*kmsg.InitProducerIDResponse).ProducerEpoch)}

	addPartitions := func(pid int64, epoch int16, topic string, partition int32) func(string) kmsg.Request {
		return func(side string) kmsg.Request {
			req := kmsg.NewPtrAddPartitionsToTxnRequest()
			if pid == 0 {
				pid, epoch = ids[side][0], int16(ids[side][1])
			}
			req.TransactionalID, req.ProducerID, req.ProducerEpoch = txn, pid, epoch
			req.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: topic, Partitions: []int32{partition}}}
			return req
		}
	}
	for _, v := range versions(kmsg.AddPartitionsToTxn, 0) {
		if v >= 4 {
			continue // v4+ is the broker-to-broker form
		}
		p.same("AddPartitionsToTxn wrong producer id", v, addPartitions(424242, 0, topic, 0))
		p.same("AddPartitionsToTxn unknown partition", v, addPartitions(0, 0, topic, 5))
		p.same("AddPartitionsToTxn unknown topic", v, addPartitions(0, 0, topic+"-none", 0))
	}
	endTxn := func(commit bool, epochDelta int16) func(string) kmsg.Request {
		return func(side string) kmsg.Request {
			req := kmsg.NewPtrEndTxnRequest()
			req.TransactionalID, req.ProducerID, req.ProducerEpoch = txn, ids[side][0], int16(ids[side][1])+epochDelta
			req.Commit = commit
			return req
		}
	}
	for _, v := range versions(kmsg.EndTxn, 0) {
		if v >= 5 {
			continue // v5 bumps the epoch on every commit (KIP-890)
		}
		p.same("EndTxn with nothing in the transaction", v, endTxn(true, 0))
		p.same("EndTxn old epoch", v, endTxn(false, -1))
	}
	for _, v := range versions(kmsg.DescribeTransactions, 0) {
		p.same("DescribeTransactions unknown id", v, func(string) kmsg.Request {
			req := kmsg.NewPtrDescribeTransactionsRequest()
			req.TransactionalIDs = []string{txn + "-none"}
			return req
		})
	}
	for _, v := range versions(kmsg.DescribeProducers, 0) {
		p.same("DescribeProducers unknown partition", v, func(string) kmsg.Request {
			req := kmsg.NewPtrDescribeProducersRequest()
			req.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: topic, Partitions: []int32{3}}}
			return req
		})
	}
}

// producerIDsReady waits until both brokers hand out producer ids for a
// transactional id: Kafka loads its transaction state partitions a moment
// after it names a coordinator.
func (p *pair) producerIDsReady(txn string) {
	p.t.Helper()
	p.both(func(side string, c *conn) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			req := initProducerReq(kmsg.StringPtr(txn+"-warmup"), 60000)(side)
			req.SetVersion(4)
			code := c.must(req).(*kmsg.InitProducerIDResponse).ErrorCode
			if code == 0 {
				return
			}
			if time.Now().After(deadline) {
				p.t.Fatalf("%s: InitProducerId still fails with %d after 30s", side, code)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// initTransactional readies a transactional id on both brokers and inits
// its producer; it returns each broker's producer id and epoch.
func (p *pair) initTransactional(txn string) map[string][2]int64 {
	p.t.Helper()
	p.coordinatorReady(1, txn)
	p.producerIDsReady(txn)
	ids := map[string][2]int64{}
	p.both(func(side string, c *conn) {
		req := initProducerReq(kmsg.StringPtr(txn), 60000)(side)
		req.SetVersion(4)
		resp := c.must(req).(*kmsg.InitProducerIDResponse)
		if resp.ErrorCode != 0 {
			p.t.Fatalf("%s: InitProducerId: %d", side, resp.ErrorCode)
		}
		ids[side] = [2]int64{resp.ProducerID, int64(resp.ProducerEpoch)}
	})
	return ids
}

// A transaction described after it committed, as kafka-transactions
// describe shows it: Kafka keeps the start time of the last transaction and
// lists no partitions once it completed.
func TestDescribeCompletedTransaction(t *testing.T) {
	p := newPair(t)
	txn := uniqueName(t, "txn")
	topic := uniqueName(t, "topic")
	p.createTopic(topic, 1, nil)
	ids := p.initTransactional(txn)
	p.both(func(side string, c *conn) {
		pid, epoch := ids[side][0], int16(ids[side][1])
		add := kmsg.NewPtrAddPartitionsToTxnRequest()
		add.SetVersion(3)
		add.TransactionalID, add.ProducerID, add.ProducerEpoch = txn, pid, epoch
		add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: topic, Partitions: []int32{0}}}
		if r := c.must(add).(*kmsg.AddPartitionsToTxnResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("%s: AddPartitionsToTxn: %d", side, r.Topics[0].Partitions[0].ErrorCode)
		}
		end := kmsg.NewPtrEndTxnRequest()
		end.SetVersion(4) // before KIP-890's epoch bump on every commit
		end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = txn, pid, epoch, true
		if r := c.must(end).(*kmsg.EndTxnResponse); r.ErrorCode != 0 {
			t.Fatalf("%s: EndTxn: %d", side, r.ErrorCode)
		}
		// Kafka writes the markers after it answered EndTxn.
		deadline := time.Now().Add(10 * time.Second)
		for {
			d := kmsg.NewPtrDescribeTransactionsRequest()
			d.TransactionalIDs = []string{txn}
			if st := c.must(d).(*kmsg.DescribeTransactionsResponse).TransactionStates[0]; st.State == "CompleteCommit" || time.Now().After(deadline) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	startSet := func(resp kmsg.Response) {
		for i := range resp.(*kmsg.DescribeTransactionsResponse).TransactionStates {
			st := &resp.(*kmsg.DescribeTransactionsResponse).TransactionStates[i]
			if st.StartTimestamp > 0 {
				st.StartTimestamp = 1 // a time of each broker's clock: only whether it is set is compared
			}
		}
	}
	for _, v := range versions(kmsg.DescribeTransactions, 0) {
		p.same("DescribeTransactions after commit", v, func(string) kmsg.Request {
			req := kmsg.NewPtrDescribeTransactionsRequest()
			req.TransactionalIDs = []string{txn}
			return req
		}, startSet)
	}
}
