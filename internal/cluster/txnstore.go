package cluster

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/creek-pipeline/creek/internal/txn"
)

// Transactions are stored in the metadata store under "txns", one JSON
// value per transactional id. bbolt fsyncs every update, so a state the
// coordinator answered with survives a crash.

var bucketTxns = []byte("txns")

// TxnStore returns the persistent store of the transaction coordinator.
func (c *Cluster) TxnStore() txn.Store { return txnStore{c.store.db} }

type txnStore struct{ db *bolt.DB }

func (s txnStore) LoadTxns() ([]txn.Txn, error) {
	var out []txn.Txn
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTxns)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var t txn.Txn
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("transaction %q: %w", k, err)
			}
			out = append(out, t)
			return nil
		})
	})
	return out, err
}

func (s txnStore) SaveTxn(t txn.Txn) error {
	v, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketTxns)
		if err != nil {
			return err
		}
		return b.Put([]byte(t.ID), v)
	})
}
