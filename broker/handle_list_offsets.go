package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Special ListOffsets timestamps.
const (
	latestTimestamp        = -1 // the high watermark (the last stable offset under read_committed)
	earliestTimestamp      = -2 // the log start offset
	maxTimestamp           = -3 // the record with the largest timestamp (KIP-734)
	earliestLocalTimestamp = -4 // KIP-405: all data is local, so the log start offset
	earliestPendingUpload  = -5 // KIP-1005: nothing is tiered, so no offset
)

func handleListOffsets(b *Broker, r *request, req *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		t, topicOK := b.cluster.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset = -1, -1
			switch {
			case !topicOK || t.Partition(rp.Partition) == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case req.Version >= 4 && checkLeaderEpoch(rp.CurrentLeaderEpoch) != 0:
				sp.ErrorCode = checkLeaderEpoch(rp.CurrentLeaderEpoch)
			default:
				l := t.Partition(rp.Partition)
				offset, ts, err := listOffset(l, rp.Timestamp)
				if rp.Timestamp == latestTimestamp && req.IsolationLevel == 1 {
					offset = l.LastStableOffset() // read_committed consumers end at the LSO
				}
				sp.ErrorCode = errorCode(err)
				sp.Offset, sp.Timestamp = offset, ts
				sp.LeaderEpoch = leaderEpoch
				if offset < 0 {
					sp.LeaderEpoch = -1 // as Kafka: no record found, no epoch
				}
				if req.Version == 0 {
					sp.OldStyleOffsets = oldStyleOffsets(offset, rp.MaxNumOffsets)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// offsetLister is the part of a partition log ListOffsets needs.
type offsetLister interface {
	Offsets() (start, end int64)
	OffsetForTimestamp(ts int64) (int64, int64, error)
	MaxTimestamp() (int64, int64, error)
}

func listOffset(l offsetLister, ts int64) (offset, timestamp int64, err error) {
	start, end := l.Offsets()
	switch ts {
	case latestTimestamp:
		return end, -1, nil
	case earliestTimestamp, earliestLocalTimestamp:
		return start, -1, nil
	case earliestPendingUpload:
		return -1, -1, nil
	case maxTimestamp:
		return l.MaxTimestamp()
	}
	if ts < 0 {
		return -1, -1, kerr.InvalidRequest
	}
	return l.OffsetForTimestamp(ts)
}

// oldStyleOffsets answers ListOffsets v0, which returns a list of offsets
// (segment starts in old Kafka); the offset asked for is what clients use.
func oldStyleOffsets(offset int64, maxNum int32) []int64 {
	if offset < 0 || maxNum <= 0 {
		return []int64{}
	}
	return []int64{offset}
}
