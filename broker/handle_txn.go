package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/cluster"
	"github.com/creek-pipeline/creek/internal/group"
	"github.com/creek-pipeline/creek/internal/storage"
	"github.com/creek-pipeline/creek/internal/txn"
)

// Transactions: the node is the transaction coordinator of every
// transactional id (FindCoordinator answers with it), and internal/txn
// keeps their state. This file adapts the protocol to it and gives it what
// it needs from the broker: producer ids, partition logs for markers, and
// the group coordinator for transactional offset commits.

func init() {
	register(kmsg.AddPartitionsToTxn, 0, handleAddPartitionsToTxn)
	register(kmsg.AddOffsetsToTxn, 0, handleAddOffsetsToTxn)
	register(kmsg.EndTxn, 0, handleEndTxn)
	register(kmsg.TxnOffsetCommit, 0, handleTxnOffsetCommit)
	register(kmsg.DescribeTransactions, 0, handleDescribeTransactions)
	register(kmsg.ListTransactions, 0, handleListTransactions)
	register(kmsg.DescribeProducers, 0, handleDescribeProducers)
}

// txnEnv gives the transaction coordinator access to the broker.
type txnEnv struct {
	cluster *cluster.Cluster
	groups  *group.Coordinator
	logger  *slog.Logger
}

func (e txnEnv) NextProducerID() (int64, error) { return e.cluster.NextProducerID() }

func (e txnEnv) WriteMarker(p txn.Partition, producerID int64, epoch int16, commit bool) error {
	t, ok := e.cluster.Topic(p.Topic)
	if !ok || t.Partition(p.Partition) == nil {
		e.logger.Info("no marker written: the partition is gone", "topic", p.Topic, "partition", p.Partition)
		return nil
	}
	l := t.Partition(p.Partition)
	offset, err := l.AppendMarker(producerID, epoch, commit, 0)
	if errors.Is(err, storage.ErrClosed) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return err
	}
	return l.Sync(offset + 1)
}

func (e txnEnv) CommitOffsets(groupName string, offsets []txn.Offset) error {
	stored := make([]group.StoredOffset, len(offsets))
	for i, o := range offsets {
		stored[i] = group.StoredOffset{Topic: o.Topic, Partition: o.Partition.Partition, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata}
	}
	return e.groups.CommitTransactional(groupName, stored)
}

// checkTransactionalProduce lets a transactional producer write only to
// partitions it added to its open transaction.
func (b *Broker) checkTransactionalProduce(id, topic string, partition int32, records []byte) error {
	pid, epoch, ok := storage.BatchProducer(records)
	if !ok {
		return fmt.Errorf("%w: no record batch", storage.ErrCorruptBatch)
	}
	if !storage.IsTransactional(records) {
		return fmt.Errorf("%w: a produce with transactional id %q carries a non-transactional batch", kerr.InvalidRecord, id)
	}
	return b.txns.CheckProduce(id, pid, epoch, txn.Partition{Topic: topic, Partition: partition})
}

func initTransactionalProducer(b *Broker, req *kmsg.InitProducerIDRequest, resp *kmsg.InitProducerIDResponse) {
	pid, epoch := int64(-1), int16(-1)
	if req.Version >= 3 {
		pid, epoch = req.ProducerID, req.ProducerEpoch
	}
	timeout := time.Duration(req.TransactionTimeoutMillis) * time.Millisecond
	id, ep, err := b.txns.InitProducerID(*req.TransactionalID, timeout, pid, epoch)
	resp.ErrorCode = errorCode(err)
	if err == nil {
		resp.ProducerID, resp.ProducerEpoch = id, ep
	} else if resp.ErrorCode == kerr.KafkaStorageError.Code {
		b.logger.Error("transaction coordinator failed", "transactional_id", *req.TransactionalID, "err", err)
	}
	resp.ErrorCode = fencedCode(resp.ErrorCode, req.Version, 4)
}

func handleAddPartitionsToTxn(b *Broker, r *request, req *kmsg.AddPartitionsToTxnRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	add := func(id string, pid int64, epoch int16, verify bool, topics map[string][]int32, set func(topic string, partition int32, code int16)) {
		var parts []txn.Partition
		for topic, ps := range topics {
			for _, p := range ps {
				t, ok := b.cluster.Topic(topic)
				if !ok || t.Partition(p) == nil {
					set(topic, p, kerr.UnknownTopicOrPartition.Code)
					continue
				}
				parts = append(parts, txn.Partition{Topic: topic, Partition: p})
			}
		}
		if len(parts) < countPartitions(topics) {
			// Kafka adds none when one is bad; the others are reported as
			// not attempted.
			for _, p := range parts {
				set(p.Topic, p.Partition, kerr.OperationNotAttempted.Code)
			}
			return
		}
		results, err := b.txns.AddPartitions(id, pid, epoch, parts, verify)
		for _, p := range parts {
			code := fencedCode(errorCode(err), req.Version, 2)
			if err == nil {
				code = errorCode(results[p])
			}
			set(p.Topic, p.Partition, code)
		}
	}
	if req.Version < 4 {
		topics := map[string][]int32{}
		for _, t := range req.Topics {
			topics[t.Topic] = append(topics[t.Topic], t.Partitions...)
		}
		index := map[string]int{}
		add(req.TransactionalID, req.ProducerID, req.ProducerEpoch, false, topics, func(topic string, p int32, code int16) {
			i, ok := index[topic]
			if !ok {
				i = len(resp.Topics)
				index[topic] = i
				rt := kmsg.NewAddPartitionsToTxnResponseTopic()
				rt.Topic = topic
				resp.Topics = append(resp.Topics, rt)
			}
			rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p, code
			resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, rp)
		})
		return resp
	}
	for _, tr := range req.Transactions {
		rt := kmsg.NewAddPartitionsToTxnResponseTransaction()
		rt.TransactionalID = tr.TransactionalID
		topics := map[string][]int32{}
		for _, t := range tr.Topics {
			topics[t.Topic] = append(topics[t.Topic], t.Partitions...)
		}
		index := map[string]int{}
		add(tr.TransactionalID, tr.ProducerID, tr.ProducerEpoch, tr.VerifyOnly, topics, func(topic string, p int32, code int16) {
			i, ok := index[topic]
			if !ok {
				i = len(rt.Topics)
				index[topic] = i
				t := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
				t.Topic = topic
				rt.Topics = append(rt.Topics, t)
			}
			rp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
			rp.Partition, rp.ErrorCode = p, code
			rt.Topics[i].Partitions = append(rt.Topics[i].Partitions, rp)
		})
		resp.Transactions = append(resp.Transactions, rt)
	}
	return resp
}

func countPartitions(topics map[string][]int32) int {
	n := 0
	for _, ps := range topics {
		n += len(ps)
	}
	return n
}

func handleAddOffsetsToTxn(b *Broker, r *request, req *kmsg.AddOffsetsToTxnRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	err := b.txns.AddOffsets(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group)
	resp.ErrorCode = fencedCode(errorCode(err), req.Version, 2)
	return resp
}

// fencedCode turns PRODUCER_FENCED into INVALID_PRODUCER_EPOCH for request
// versions from before KIP-588 (below since), which clients expect there.
func fencedCode(code, version, since int16) int16 {
	if code == kerr.ProducerFenced.Code && version < since {
		return kerr.InvalidProducerEpoch.Code
	}
	return code
}

func handleEndTxn(b *Broker, r *request, req *kmsg.EndTxnRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	err := b.txns.End(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit)
	resp.ErrorCode = fencedCode(errorCode(err), req.Version, 2)
	if resp.ErrorCode == kerr.KafkaStorageError.Code {
		b.logger.Error("could not end a transaction", "transactional_id", req.TransactionalID, "err", err)
	}
	resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch
	return resp
}

func handleTxnOffsetCommit(b *Broker, r *request, req *kmsg.TxnOffsetCommitRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	var offsets []txn.Offset
	type slot struct{ ti, pi int }
	var valid []slot
	for ti, rt := range req.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		var t *cluster.Topic
		var ok bool
		if req.Version >= 6 {
			t, ok = b.cluster.TopicByID(rt.TopicID)
		} else {
			t, ok = b.cluster.Topic(rt.Topic)
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case !ok && req.Version >= 6: // as Kafka: an id that names no topic
				sp.ErrorCode = kerr.UnknownTopicID.Code
			case !ok || t.Partition(rp.Partition) == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.Metadata != nil && len(*rp.Metadata) > b.groups.MaxMetadataBytes():
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				o := txn.Offset{Partition: txn.Partition{Topic: t.Name(), Partition: rp.Partition}, Offset: rp.Offset, LeaderEpoch: -1}
				if req.Version >= 2 {
					o.LeaderEpoch = rp.LeaderEpoch
				}
				if rp.Metadata != nil {
					o.Metadata = *rp.Metadata
				}
				offsets = append(offsets, o)
				valid = append(valid, slot{ti, len(st.Partitions)})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Group == "" {
		for _, s := range valid {
			resp.Topics[s.ti].Partitions[s.pi].ErrorCode = kerr.InvalidGroupID.Code
		}
		return resp
	}
	if len(offsets) == 0 {
		return resp
	}
	if req.Version >= 3 {
		if e := b.groups.CheckTxnCommit(req.Group, req.MemberID, req.InstanceID, req.Generation); e != nil {
			if e == kerr.GroupIDNotFound && req.Version < 6 {
				e = kerr.IllegalGeneration // what Kafka answers before v6
			}
			for _, s := range valid {
				resp.Topics[s.ti].Partitions[s.pi].ErrorCode = e.Code
			}
			return resp
		}
	}
	err := b.txns.CommitOffsets(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group, offsets)
	if err == nil {
		b.groups.NoteTxnCommit(req.Group)
	}
	code := fencedCode(errorCode(err), req.Version, 3)
	for _, s := range valid {
		resp.Topics[s.ti].Partitions[s.pi].ErrorCode = code
	}
	return resp
}

func handleDescribeTransactions(b *Broker, r *request, req *kmsg.DescribeTransactionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for i, t := range b.txns.Describe(req.TransactionalIDs) {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID = req.TransactionalIDs[i]
		if t == nil {
			st.ErrorCode = kerr.TransactionalIDNotFound.Code
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		st.State, st.TimeoutMillis, st.ProducerID, st.ProducerEpoch = string(t.State), t.TimeoutMs, t.ProducerID, t.Epoch
		// As Kafka: the start of the last transaction stays after it
		// completed, and a completed one lists no partitions.
		st.StartTimestamp = -1
		if t.State != txn.Empty && !t.Started.IsZero() {
			st.StartTimestamp = t.Started.UnixMilli()
		}
		var partitions []txn.Partition
		if t.State != txn.CompleteCommit && t.State != txn.CompleteAbort {
			partitions = t.Partitions
		}
		index := map[string]int{}
		for _, p := range partitions {
			i, ok := index[p.Topic]
			if !ok {
				i = len(st.Topics)
				index[p.Topic] = i
				tt := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
				tt.Topic = p.Topic
				st.Topics = append(st.Topics, tt)
			}
			st.Topics[i].Partitions = append(st.Topics[i].Partitions, p.Partition)
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp
}

// knownTxnStates are the states ListTransactions may filter on.
var knownTxnStates = map[string]bool{"Empty": true, "Ongoing": true, "PrepareCommit": true, "PrepareAbort": true, "CompleteCommit": true, "CompleteAbort": true, "Dead": true, "PrepareEpochFence": true}

func handleListTransactions(b *Broker, r *request, req *kmsg.ListTransactionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	states := map[string]bool{}
	for _, s := range req.StateFilters {
		if !knownTxnStates[s] {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, s)
		}
		states[s] = true
	}
	var pattern *regexp.Regexp // KIP-1152: the whole id must match, as in Kafka
	if req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		var err error
		if pattern, err = regexp.Compile("^(?:" + *req.TransactionalIDPattern + ")$"); err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp
		}
	}
	pids := map[int64]bool{}
	for _, p := range req.ProducerIDFilters {
		pids[p] = true
	}
	now := time.Now()
	for _, t := range b.txns.List() {
		switch {
		case len(states) > 0 && !states[string(t.State)],
			len(pids) > 0 && !pids[t.ProducerID],
			// As Kafka: a transactional id that never began a transaction
			// has no start time, and passes any duration.
			req.DurationFilterMillis > 0 && now.Sub(t.Started).Milliseconds() < req.DurationFilterMillis:
			continue
		}
		if pattern != nil && !pattern.MatchString(t.ID) {
			continue
		}
		st := kmsg.NewListTransactionsResponseTransactionState()
		st.TransactionalID, st.ProducerID, st.TransactionState = t.ID, t.ProducerID, string(t.State)
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp
}

func handleDescribeProducers(b *Broker, r *request, req *kmsg.DescribeProducersRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		t, ok := b.cluster.Topic(rt.Topic)
		for _, p := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = p
			var l *storage.Log
			if ok {
				l = t.Partition(p)
			}
			if l == nil {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			for _, pi := range l.Producers() {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch, ap.LastSequence, ap.LastTimestamp = pi.ProducerID, int32(pi.Epoch), pi.LastSequence, pi.LastTimestamp
				ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = 0, pi.TxnStart
				sp.ActiveProducers = append(sp.ActiveProducers, ap)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// markUnstableOffsets answers UNSTABLE_OFFSET_COMMIT (KIP-447) for the
// partitions whose offset an open transaction is about to commit, so that
// a consumer asking for stable offsets waits instead of reading the old one.
func (b *Broker) markUnstableOffsets(req *kmsg.OffsetFetchRequest, resp *kmsg.OffsetFetchResponse) {
	unstable := func(group, topic string, p int32) bool {
		return b.txns.HasPendingOffsets(group, txn.Partition{Topic: topic, Partition: p})
	}
	for j := range resp.Topics { // before v8: one group
		for k := range resp.Topics[j].Partitions {
			if sp := &resp.Topics[j].Partitions[k]; sp.ErrorCode == 0 && unstable(req.Group, resp.Topics[j].Topic, sp.Partition) {
				sp.ErrorCode = kerr.UnstableOffsetCommit.Code
			}
		}
	}
	for i := range resp.Groups {
		g := &resp.Groups[i]
		for j := range g.Topics {
			topic := g.Topics[j].Topic
			if resp.Version >= 10 {
				if t, ok := b.cluster.TopicByID(g.Topics[j].TopicID); ok {
					topic = t.Name()
				}
			}
			for k := range g.Topics[j].Partitions {
				if sp := &g.Topics[j].Partitions[k]; sp.ErrorCode == 0 && unstable(g.Group, topic, sp.Partition) {
					sp.ErrorCode = kerr.UnstableOffsetCommit.Code
				}
			}
		}
	}
}
