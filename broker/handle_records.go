package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDeleteRecords moves log start offsets (offset -1: the high
// watermark), except on internal topics.
func handleDeleteRecords(b *Broker, r *request, req *kmsg.DeleteRecordsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		t, ok := b.cluster.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition, sp.LowWatermark = rp.Partition, -1
			switch {
			case !ok || t.Partition(rp.Partition) == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case isInternalTopic(rt.Topic): // as Kafka: the coordinators' records are theirs
				sp.ErrorCode = errorCode(errInternalTopic(rt.Topic))
			default:
				low, err := t.Partition(rp.Partition).DeleteRecordsBefore(rp.Offset)
				if sp.ErrorCode = errorCode(err); sp.ErrorCode == 0 {
					sp.LowWatermark = low // with an error, -1 as Kafka answers
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// handleOffsetForLeaderEpoch answers clients validating their position after
// a leader change (KIP-320). One node leads with epoch 0 forever, so epoch 0
// ends at the log end offset and later epochs are unknown.
func handleOffsetForLeaderEpoch(b *Broker, r *request, req *kmsg.OffsetForLeaderEpochRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		t, ok := b.cluster.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			switch {
			case !ok || t.Partition(rp.Partition) == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case req.Version >= 2 && checkLeaderEpoch(rp.CurrentLeaderEpoch) != 0:
				sp.ErrorCode = checkLeaderEpoch(rp.CurrentLeaderEpoch)
			case rp.LeaderEpoch == leaderEpoch:
				_, end := t.Partition(rp.Partition).Offsets()
				sp.LeaderEpoch, sp.EndOffset = leaderEpoch, end
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// handleInitProducerID gives idempotent producers a fresh producer id with
// epoch 0, also when they ask to bump the epoch of an old one (KIP-360):
// a new id is always valid. A transactional id goes to the transaction
// coordinator; an empty one is INVALID_REQUEST, as in Kafka.
func handleInitProducerID(b *Broker, r *request, req *kmsg.InitProducerIDRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		if *req.TransactionalID == "" {
			resp.ErrorCode = kerr.InvalidRequest.Code
			return resp
		}
		initTransactionalProducer(b, req, resp)
		return resp
	}
	id, err := b.cluster.NextProducerID()
	if err != nil {
		b.logger.Error("could not allocate a producer id", "err", err)
		resp.ErrorCode = kerr.KafkaStorageError.Code
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp
}
