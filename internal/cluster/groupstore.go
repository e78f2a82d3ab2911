package cluster

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
	bolt "go.etcd.io/bbolt"

	"github.com/creek-pipeline/creek/internal/group"
)

// Consumer groups are stored in the metadata store: one bucket per group
// under "groups", holding the group's metadata under "meta" and each
// committed offset under "o/<topic>/<partition>". bbolt fsyncs every
// commit, so an acknowledged OffsetCommit survives a crash.

var (
	bucketGroups = []byte("groups")
	keyGroupMeta = []byte("meta")
)

const offsetKeyPrefix = "o/"

// emptyGroupBucket holds the group with the empty id, which Kafka allows
// for OffsetCommit and OffsetFetch (bbolt buckets need a name).
const emptyGroupBucket = "\x00empty"

func groupBucket(name string) []byte {
	if name == "" {
		return []byte(emptyGroupBucket)
	}
	return []byte(name)
}

func groupName(bucket []byte) string {
	if string(bucket) == emptyGroupBucket {
		return ""
	}
	return string(bucket)
}

func offsetKey(topic string, partition int32) []byte {
	return []byte(offsetKeyPrefix + topic + "/" + strconv.Itoa(int(partition)))
}

// GroupStore returns the persistent store of the group coordinator.
func (c *Cluster) GroupStore() group.Store { return groupStore{c.store.db} }

type groupStore struct{ db *bolt.DB }

func (s groupStore) LoadGroups() ([]group.StoredGroup, error) {
	var out []group.StoredGroup
	err := s.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketGroups)
		if root == nil {
			return nil
		}
		return root.ForEachBucket(func(name []byte) error {
			b := root.Bucket(name)
			var g group.StoredGroup
			if v := b.Get(keyGroupMeta); v != nil {
				if err := json.Unmarshal(v, &g); err != nil {
					return fmt.Errorf("group %q: %w", name, err)
				}
			}
			g.Name = groupName(name)
			err := b.ForEach(func(k, v []byte) error {
				if !strings.HasPrefix(string(k), offsetKeyPrefix) {
					return nil
				}
				var o group.StoredOffset
				if err := json.Unmarshal(v, &o); err != nil {
					return fmt.Errorf("group %q offset %q: %w", name, k, err)
				}
				g.Offsets = append(g.Offsets, o)
				return nil
			})
			out = append(out, g)
			return err
		})
	})
	return out, err
}

func (s groupStore) SaveGroup(g group.StoredGroup) error {
	meta, err := json.Marshal(g)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketGroups)
		if err != nil {
			return err
		}
		b, err := root.CreateBucketIfNotExists(groupBucket(g.Name))
		if err != nil {
			return err
		}
		if err := b.Put(keyGroupMeta, meta); err != nil {
			return err
		}
		for _, o := range g.Offsets {
			v, err := json.Marshal(o)
			if err != nil {
				return err
			}
			if err := b.Put(offsetKey(o.Topic, o.Partition), v); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s groupStore) DeleteOffsets(name string, offsets []group.TopicPartition) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketGroups)
		if root == nil || root.Bucket(groupBucket(name)) == nil {
			return nil
		}
		b := root.Bucket(groupBucket(name))
		for _, tp := range offsets {
			if err := b.Delete(offsetKey(tp.Topic, tp.Partition)); err != nil {
				return err
			}
		}
		return nil
	})
}

// RecordMembership keeps nothing: members rejoin after a restart.
func (groupStore) RecordMembership(string, *kmsg.GroupMetadataValue) error { return nil }

func (s groupStore) DeleteGroup(name string, _ []group.TopicPartition) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketGroups)
		if root == nil || root.Bucket(groupBucket(name)) == nil {
			return nil
		}
		return root.DeleteBucket(groupBucket(name))
	})
}
