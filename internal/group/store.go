package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Store persists what must survive a restart: committed offsets and the
// little group metadata offset retention needs. Members and assignments are
// not persisted; after a restart members rejoin, as after a coordinator
// move in Kafka.
type Store interface {
	LoadGroups() ([]StoredGroup, error)
	// SaveGroup writes a group's metadata and the given offsets (a commit).
	SaveGroup(g StoredGroup) error
	// DeleteOffsets removes some offsets of a group.
	DeleteOffsets(group string, offsets []TopicPartition) error
	// DeleteGroup removes a group and all its offsets; offsets names them
	// (a store that keeps a log of commits writes a tombstone for each).
	DeleteGroup(group string, offsets []TopicPartition) error
	// RecordMembership is told a classic group's generation and members, as
	// Kafka's group metadata record (value v3) holds them, when the group
	// was made by a join, completed a rebalance or became empty. The
	// metadata store keeps none of it (members rejoin after a restart); a
	// store that logs changes as Kafka does writes it.
	RecordMembership(group string, m *kmsg.GroupMetadataValue) error
}

// StoredGroup is a group as persisted.
type StoredGroup struct {
	Name         string         `json:"name"`
	ProtocolType string         `json:"protocol_type,omitempty"`
	Type         string         `json:"type,omitempty"` // "consumer" for a KIP-848 group, "" for classic
	EmptySince   time.Time      `json:"empty_since,omitempty"`
	Offsets      []StoredOffset `json:"-"`
}

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// StoredOffset is one committed offset as persisted.
type StoredOffset struct {
	Topic       string    `json:"topic"`
	Partition   int32     `json:"partition"`
	Offset      int64     `json:"offset"`
	LeaderEpoch int32     `json:"leader_epoch"`
	Metadata    string    `json:"metadata,omitempty"`
	CommitTime  time.Time `json:"commit_time"`
}

func (o StoredOffset) committed() committed {
	return committed{offset: o.Offset, leaderEpoch: o.LeaderEpoch, metadata: o.Metadata, at: o.CommitTime}
}

// MemoryStore keeps groups in memory only (for tests and embedders that
// want no persistence).
type MemoryStore struct{}

// LoadGroups returns nothing.
func (MemoryStore) LoadGroups() ([]StoredGroup, error) { return nil, nil }

// SaveGroup does nothing.
func (MemoryStore) SaveGroup(StoredGroup) error { return nil }

// DeleteOffsets does nothing.
func (MemoryStore) DeleteOffsets(string, []TopicPartition) error { return nil }

// DeleteGroup does nothing.
func (MemoryStore) DeleteGroup(string, []TopicPartition) error { return nil }

// RecordMembership does nothing.
func (MemoryStore) RecordMembership(string, *kmsg.GroupMetadataValue) error { return nil }
