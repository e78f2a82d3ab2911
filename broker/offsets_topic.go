package broker

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/cluster"
	"github.com/creek-pipeline/creek/internal/config"
	"github.com/creek-pipeline/creek/internal/group"
	"github.com/creek-pipeline/creek/internal/storage"
)

// The group coordinator's changes are written to __consumer_offsets as
// Kafka writes them, so that tools which read committed offsets from that
// topic (Burrow, Kafka's OffsetsMessageFormatter) find them: one record per
// committed partition, keyed by OffsetCommitKey v1 (group, topic,
// partition) with an OffsetCommitValue v4; a classic group's membership
// (GroupMetadataKey v2, GroupMetadataValue v3) when it is made, rebalanced
// or left empty; and tombstones for offsets and groups that are deleted or
// expire. All of a group's records go to the partition Kafka gives it. The
// metadata store stays what the coordinator loads from; a change is
// acknowledged once both hold it.

// offsetsTopicStore is the group coordinator's store: the metadata store,
// with every change also written to __consumer_offsets.
type offsetsTopicStore struct {
	group.Store
	cluster *cluster.Cluster
	sync    bool // fsync each write, as an acks=all produce is
}

func newOffsetsTopicStore(cl *cluster.Cluster, fsync config.FsyncPolicy) offsetsTopicStore {
	return offsetsTopicStore{Store: cl.GroupStore(), cluster: cl, sync: fsync.Mode == "always" || fsync.Mode == "acks"}
}

// SaveGroup writes a commit's records and saves the group.
func (s offsetsTopicStore) SaveGroup(g group.StoredGroup) error {
	records := make([]kmsg.Record, 0, len(g.Offsets))
	for _, o := range g.Offsets {
		records = append(records, s.commitRecord(g.Name, o))
	}
	return s.record(g.Name, records, func() error { return s.Store.SaveGroup(g) })
}

// RecordMembership writes a classic group's group metadata record. It is
// not fsynced: nothing is loaded from it, and a rebalance (or a hostile
// client making groups) waits for no disk.
func (s offsetsTopicStore) RecordMembership(name string, m *kmsg.GroupMetadataValue) error {
	_, err := s.write(name, []kmsg.Record{groupRecord(name, m)}) // its fsync is not taken
	return err
}

// DeleteOffsets writes a tombstone for each offset and deletes them.
func (s offsetsTopicStore) DeleteOffsets(name string, offsets []group.TopicPartition) error {
	return s.record(name, offsetTombstones(name, offsets), func() error { return s.Store.DeleteOffsets(name, offsets) })
}

// DeleteGroup writes a tombstone for each offset and one for the group's
// metadata, as Kafka does, and deletes the group.
func (s offsetsTopicStore) DeleteGroup(name string, offsets []group.TopicPartition) error {
	records := append(offsetTombstones(name, offsets), groupRecord(name, nil))
	return s.record(name, records, func() error { return s.Store.DeleteGroup(name, offsets) })
}

// groupRecord is a group metadata record (key v2), a tombstone when
// membership is nil.
func groupRecord(groupName string, membership *kmsg.GroupMetadataValue) kmsg.Record {
	key := kmsg.NewGroupMetadataKey()
	key.Version, key.Group = 2, groupName
	r := kmsg.Record{Key: key.AppendTo(nil)}
	if membership != nil {
		r.Value = membership.AppendTo(nil)
	}
	return r
}

// commitKey is the key (v1) of a group's commit records for a partition.
func commitKey(groupName, topic string, partition int32) []byte {
	key := kmsg.NewOffsetCommitKey()
	key.Version, key.Group, key.Topic, key.Partition = 1, groupName, topic, partition
	return key.AppendTo(nil)
}

func (s offsetsTopicStore) commitRecord(groupName string, o group.StoredOffset) kmsg.Record {
	value := kmsg.NewOffsetCommitValue()
	value.Version = 4
	value.Offset, value.LeaderEpoch, value.Metadata = o.Offset, o.LeaderEpoch, o.Metadata
	value.CommitTimestamp = o.CommitTime.UnixMilli()
	if t, ok := s.cluster.Topic(o.Topic); ok {
		value.TopicID = t.ID()
	}
	return kmsg.Record{Key: commitKey(groupName, o.Topic, o.Partition), Value: value.AppendTo(nil)}
}

// offsetTombstones are the tombstones of a group's offsets, with room for
// the group's own.
func offsetTombstones(groupName string, offsets []group.TopicPartition) []kmsg.Record {
	records := make([]kmsg.Record, 0, len(offsets)+1)
	for _, tp := range offsets {
		records = append(records, kmsg.Record{Key: commitKey(groupName, tp.Topic, tp.Partition)})
	}
	return records
}

// record writes records to __consumer_offsets and makes the change in the
// metadata store (save), even when the records could not be written: the
// coordinator has made the change in memory already, and the metadata
// store is what it loads after a restart. The records are fsynced while
// save makes its own fsync. The change is acknowledged only once both are
// done.
func (s offsetsTopicStore) record(groupName string, records []kmsg.Record, save func() error) error {
	synced, err := s.write(groupName, records)
	switch {
	case err != nil:
		return errors.Join(err, save())
	case synced == nil:
		return save()
	}
	syncErr := make(chan error, 1)
	go func() { syncErr <- synced() }()
	err = save()
	return errors.Join(<-syncErr, err)
}

// write appends records to the group's partition of __consumer_offsets and
// returns the fsync the durability policy asks for (nil: none). The topic
// is made first if it does not exist (a client that commits without
// looking for its coordinator), and again if it is deleted during the
// write.
func (s offsetsTopicStore) write(groupName string, records []kmsg.Record) (sync func() error, err error) {
	if len(records) == 0 {
		return nil, nil
	}
	sync, err = s.append(groupName, records)
	if errors.Is(err, storage.ErrClosed) {
		sync, err = s.append(groupName, records)
	}
	return sync, err
}

// Bounds of the batches a write makes: a commit of many partitions (or a
// group's tombstones) is written in batches within the topic's
// max.message.bytes, at most maxOffsetsBatchBytes each.
const (
	maxOffsetsBatchBytes = 512 << 10
	batchHeaderBytes     = 61 // a record batch's fixed fields
	recordOverheadBytes  = 23 // the most a record here encodes beside its key and value
)

func (s offsetsTopicStore) append(groupName string, records []kmsg.Record) (sync func() error, err error) {
	t, err := ensureInternalTopic(s.cluster, offsetsTopic)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", offsetsTopic, err)
	}
	p := offsetsPartition(groupName, t.NumPartitions())
	l := t.Partition(p)
	if l == nil {
		return nil, fmt.Errorf("%s has no partition %d", offsetsTopic, p)
	}
	limit := min(maxOffsetsBatchBytes, config.TopicInt64("max.message.bytes", t.Configs(), s.cluster.Broker())-batchHeaderBytes)
	now := time.Now().UnixMilli()
	for len(records) > 0 {
		n, size := 0, int64(0)
		for n < len(records) {
			next := int64(len(records[n].Key) + len(records[n].Value) + recordOverheadBytes)
			if n > 0 && size+next > limit {
				break
			}
			size += next
			n++
		}
		if _, err := l.Append(storage.NewBatch(records[:n], now)); err != nil {
			return nil, fmt.Errorf("writing to %s-%d: %w", offsetsTopic, p, err)
		}
		records = records[n:]
	}
	if !s.sync {
		return nil, nil
	}
	_, end := l.Offsets()
	return func() error {
		if err := l.Sync(end); err != nil {
			return fmt.Errorf("fsync of %s-%d: %w", offsetsTopic, p, err)
		}
		return nil
	}, nil
}

// offsetsPartition is the partition of __consumer_offsets that holds a
// group, chosen as Kafka chooses it: the absolute value of the group id's
// Java hash code, modulo the partition count.
func offsetsPartition(groupName string, partitions int32) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(groupName)) {
		h = 31*h + int32(u)
	}
	if h < 0 {
		h = -h // Kafka's Utils.abs: the smallest int32 stays itself, then is 0 below
		if h < 0 {
			h = 0
		}
	}
	return h % partitions
}
