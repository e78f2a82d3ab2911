package group

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Partition sets: the algebra KIP-848's reconciliation and assignors work in.

// topicIDPartition is a partition by topic id, as KIP-848 names them.
type topicIDPartition struct {
	id        [16]byte
	partition int32
}

// partitionSet is a set of partitions.
type partitionSet map[topicIDPartition]struct{}

func (s partitionSet) has(p topicIDPartition) bool { _, ok := s[p]; return ok }

func (s partitionSet) equal(o partitionSet) bool {
	if len(s) != len(o) {
		return false
	}
	for p := range s {
		if !o.has(p) {
			return false
		}
	}
	return true
}

func (s partitionSet) intersects(o partitionSet) bool {
	for p := range s {
		if o.has(p) {
			return true
		}
	}
	return false
}

// minus returns the partitions of s not in o.
func (s partitionSet) minus(o partitionSet) partitionSet {
	out := partitionSet{}
	for p := range s {
		if !o.has(p) {
			out[p] = struct{}{}
		}
	}
	return out
}

// byTopic groups a set by topic id, partitions sorted, topics in id order.
func (s partitionSet) byTopic() ([][16]byte, map[[16]byte][]int32) {
	m := map[[16]byte][]int32{}
	for p := range s {
		m[p.id] = append(m[p.id], p.partition)
	}
	ids := make([][16]byte, 0, len(m))
	for id, ps := range m {
		slices.Sort(ps)
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b [16]byte) int { return strings.Compare(string(a[:]), string(b[:])) })
	return ids, m
}

func ownedPartitions(topics []kmsg.ConsumerGroupHeartbeatRequestTopic) partitionSet {
	out := partitionSet{}
	for _, t := range topics {
		for _, p := range t.Partitions {
			out[topicIDPartition{t.TopicID, p}] = struct{}{}
		}
	}
	return out
}
