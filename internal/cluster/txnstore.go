package cluster

import (
	bolt "go.etcd.io/bbolt"

	"github.com/creek-pipeline/creek/internal/txn"
)

// Transactions are stored in the metadata store under "txns", one JSON
// value per transactional id.

var bucketTxns = []byte("txns")

// TxnStore returns the persistent store of the transaction coordinator.
func (c *Cluster) TxnStore() txn.Store { return txnStore{c.store.db} }

type txnStore struct{ db *bolt.DB }

func (s txnStore) LoadTxns() ([]txn.Txn, error) {
	var out []txn.Txn
	err := forEachJSON(s.db, bucketTxns, "transaction", func(_ string, t txn.Txn) { out = append(out, t) })
	return out, err
}

func (s txnStore) SaveTxn(t txn.Txn) error { return putJSON(s.db, bucketTxns, t.ID, t) }
