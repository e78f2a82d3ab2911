package cluster

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/creek-pipeline/creek/internal/share"
)

// Share groups are stored under "share", one JSON value per group holding
// the start offsets of its partitions.

var (
	bucketShare        = []byte("share")
	bucketGroupConfigs = []byte("group-configs")
)

// ShareStore returns the persistent store of the share group coordinator.
func (c *Cluster) ShareStore() share.Store { return shareStore{c.store.db} }

type shareStore struct{ db *bolt.DB }

func (s shareStore) LoadShareGroups() ([]share.StoredGroup, error) {
	var out []share.StoredGroup
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketShare)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var g share.StoredGroup
			if err := json.Unmarshal(v, &g); err != nil {
				return fmt.Errorf("share group %q: %w", k, err)
			}
			out = append(out, g)
			return nil
		})
	})
	return out, err
}

func (s shareStore) SaveShareGroup(g share.StoredGroup) error {
	v, err := json.Marshal(g)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketShare)
		if err != nil {
			return err
		}
		return b.Put([]byte(g.Name), v)
	})
}

func (s shareStore) DeleteShareGroup(name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketShare)
		if b == nil {
			return nil
		}
		return b.Delete([]byte(name))
	})
}

func (s shareStore) LoadGroupConfigs() (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketGroupConfigs)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var m map[string]string
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("configs of group %q: %w", k, err)
			}
			out[string(k)] = m
			return nil
		})
	})
	return out, err
}

func (s shareStore) SaveGroupConfig(group string, configs map[string]string) error {
	v, err := json.Marshal(configs)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketGroupConfigs)
		if err != nil {
			return err
		}
		if len(configs) == 0 {
			return b.Delete([]byte(group))
		}
		return b.Put([]byte(group), v)
	})
}
