package broker

import (
	"fmt"
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/cluster"
	"github.com/creek-pipeline/creek/internal/quota"
	"github.com/creek-pipeline/creek/internal/storage"
)

// handleProduce appends each partition's batches as the request is read, so
// a connection's produces land in order. Acknowledgement waits, in the
// finish step, for the fsync the durability policy asks for: acks=all
// under fsync=acks, every acks under fsync=always. Concurrent and pipelined
// produces share fsyncs (storage.Log.Sync).
func handleProduce(b *Broker, r *request, req *kmsg.ProduceRequest) (kmsg.Response, func()) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	type syncWait struct {
		log    *storage.Log
		upTo   int64
		ti, pi int // the partition's place in resp
	}
	var waits []syncWait
	mustSync := b.fsync.Mode == "always" || (b.fsync.Mode == "acks" && req.Acks == -1)

	var sent int64 // record bytes, counted against the producer's quota
	for ti, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		t, topicErr := b.produceTopic(req, rt)
		for pi, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogStartOffset = -1, -1
			sent += int64(len(rp.Records))
			l, err := b.producePartition(req, t, topicErr, rp)
			if err == nil {
				var res storage.AppendResult
				res, err = l.Append(rp.Records)
				sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = res.BaseOffset, res.LogAppendTime, res.LogStartOffset
				if err == nil && mustSync {
					_, end := l.Offsets()
					waits = append(waits, syncWait{log: l, upTo: end, ti: ti, pi: pi})
				}
			}
			if err != nil {
				sp.ErrorCode = errorCode(err)
				sp.ErrorMessage = errorMessage(err)
				sp.BaseOffset = -1
				if sp.ErrorCode == kerr.KafkaStorageError.Code {
					name := rt.Topic // empty from v13, which names topics by id
					if t != nil {
						name = t.Name()
					}
					b.logger.Error("produce failed", "topic", name, "partition", rp.Partition, "err", err)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	resp.ThrottleMillis = r.throttle(b.quotas.Throttle(quota.ProducerByteRate, r.quotaClient(), sent))
	if req.Acks == 0 {
		return nil, nil
	}
	if len(waits) == 0 {
		return resp, nil
	}
	return resp, func() {
		for _, w := range waits {
			if err := w.log.Sync(w.upTo); err != nil {
				b.logger.Error("fsync failed; answering the producer with KAFKA_STORAGE_ERROR", "partition", filepath.Base(w.log.Dir()), "err", err)
				sp := &resp.Topics[w.ti].Partitions[w.pi]
				sp.ErrorCode = kerr.KafkaStorageError.Code
				sp.ErrorMessage = errorMessage(err)
			}
		}
	}
}

// producePartition checks that a produce may go to a partition.
func (b *Broker) producePartition(req *kmsg.ProduceRequest, t *cluster.Topic, topicErr error, rp kmsg.ProduceRequestTopicPartition) (*storage.Log, error) {
	p := rp.Partition
	switch {
	case topicErr != nil:
		return nil, topicErr
	case req.Acks != -1 && req.Acks != 0 && req.Acks != 1:
		return nil, fmt.Errorf("%w: acks=%d (want -1/all, 0 or 1)", kerr.InvalidRequiredAcks, req.Acks)
	case req.Acks == -1 && t.MinInsyncReplicas() > 1:
		return nil, fmt.Errorf("%w: min.insync.replicas is %d but one node has one replica", kerr.NotEnoughReplicas, t.MinInsyncReplicas())
	case req.Version < 7 && storage.Compression(rp.Records) == "zstd":
		// As Kafka: a client old enough to use produce v6 cannot be trusted
		// to read zstd back.
		return nil, fmt.Errorf("%w: zstd needs produce v7 or later, this request is v%d", kerr.UnsupportedCompressionType, req.Version)
	}
	if isInternalTopic(t.Name()) {
		return nil, errInternalTopic(t.Name())
	}
	l := t.Partition(p)
	if l == nil {
		return nil, fmt.Errorf("%w: partition %d of %s", cluster.ErrUnknownTopic, p, t.Name())
	}
	if req.TransactionID != nil {
		if err := b.checkTransactionalProduce(*req.TransactionID, t.Name(), p, rp.Records); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// produceTopic resolves a produce request's topic by name (or id from v13).
// As in Kafka, a produce never creates a topic (clients create it through
// Metadata) and an unknown or invalid name is UNKNOWN_TOPIC_OR_PARTITION.
func (b *Broker) produceTopic(req *kmsg.ProduceRequest, rt kmsg.ProduceRequestTopic) (*cluster.Topic, error) {
	if req.Version >= 13 {
		t, ok := b.cluster.TopicByID(rt.TopicID)
		if !ok {
			return nil, kerr.UnknownTopicID
		}
		return t, nil
	}
	t, ok := b.cluster.Topic(rt.Topic)
	if !ok {
		return nil, fmt.Errorf("%w: %q", cluster.ErrUnknownTopic, rt.Topic)
	}
	return t, nil
}
