package cluster

import (
	bolt "go.etcd.io/bbolt"

	"github.com/creek-pipeline/creek/internal/quota"
)

// Client quotas are stored in the metadata store, one JSON entry per
// entity under "quotas", keyed by the entity's canonical form.

var bucketQuotas = []byte("quotas")

// QuotaStore returns the persistent store of client quotas.
func (c *Cluster) QuotaStore() quota.Store { return quotaStore{c.store.db} }

type quotaStore struct{ db *bolt.DB }

func (s quotaStore) LoadQuotas() ([]quota.Entry, error) {
	var out []quota.Entry
	err := forEachJSON(s.db, bucketQuotas, "client quota", func(_ string, e quota.Entry) { out = append(out, e) })
	return out, err
}

func (s quotaStore) SaveQuota(key string, e quota.Entry) error {
	if len(e.Values) == 0 {
		return deleteKey(s.db, bucketQuotas, key)
	}
	return putJSON(s.db, bucketQuotas, key, e)
}
