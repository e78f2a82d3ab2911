package cluster

import (
	bolt "go.etcd.io/bbolt"

	"github.com/creek-pipeline/creek/internal/share"
)

// Share groups are stored under "share", one JSON value per group holding
// the start offsets of its partitions; group configs under "group-configs",
// one JSON object per group.

var (
	bucketShare        = []byte("share")
	bucketGroupConfigs = []byte("group-configs")
)

// ShareStore returns the persistent store of the share group coordinator.
func (c *Cluster) ShareStore() share.Store { return shareStore{c.store.db} }

type shareStore struct{ db *bolt.DB }

func (s shareStore) LoadShareGroups() ([]share.StoredGroup, error) {
	var out []share.StoredGroup
	err := forEachJSON(s.db, bucketShare, "share group", func(_ string, g share.StoredGroup) { out = append(out, g) })
	return out, err
}

func (s shareStore) SaveShareGroup(g share.StoredGroup) error {
	return putJSON(s.db, bucketShare, g.Name, g)
}

func (s shareStore) DeleteShareGroup(name string) error { return deleteKey(s.db, bucketShare, name) }

func (s shareStore) LoadGroupConfigs() (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	err := forEachJSON(s.db, bucketGroupConfigs, "configs of group", func(group string, m map[string]string) { out[group] = m })
	return out, err
}

func (s shareStore) SaveGroupConfig(group string, configs map[string]string) error {
	if len(configs) == 0 {
		return deleteKey(s.db, bucketGroupConfigs, group)
	}
	return putJSON(s.db, bucketGroupConfigs, group, configs)
}
