package cluster

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The transaction and share group stores keep one JSON value per key in a
// bucket of the metadata store; these helpers read and write such buckets.
// bbolt fsyncs every update, so a value the broker answered with survives a
// crash.

// forEachJSON decodes every value of a bucket (none if it does not exist
// yet); what names the values in errors.
func forEachJSON[T any](db *bolt.DB, bucket []byte, what string, fn func(key string, v T)) error {
	return db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, raw []byte) error {
			var v T
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("%s %q: %w", what, k, err)
			}
			fn(string(k), v)
			return nil
		})
	})
}

// putJSON stores v under key, creating the bucket if needed.
func putJSON(db *bolt.DB, bucket []byte, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), raw)
	})
}

// deleteKey removes a key from a bucket, if both exist.
func deleteKey(db *bolt.DB, bucket []byte, key string) error {
	return db.Update(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucket); b != nil {
			return b.Delete([]byte(key))
		}
		return nil
	})
}
