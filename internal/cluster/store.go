package cluster

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// store is the broker's metadata: topics and their configs, the cluster id
// and the producer id counter, in a bbolt file (crash-safe, fsynced per
// transaction). Partition data lives in the storage package's directories.
type store struct {
	db *bolt.DB
}

var (
	bucketTopics  = []byte("topics")
	bucketCluster = []byte("cluster")

	keyClusterID      = []byte("cluster.id")
	keyNextProducerID = []byte("next.producer.id")
)

// topicRecord is a topic as persisted.
type topicRecord struct {
	Name       string            `json:"name"`
	ID         [16]byte          `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
	Created    time.Time         `json:"created"`
}

// ErrDataDirLocked means another broker process has the data dir open.
var ErrDataDirLocked = errors.New("data dir is in use by another creek broker")

func openStore(dataDir string) (*store, bool, error) {
	path := filepath.Join(dataDir, "meta.db")
	created := !fileExists(path)
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: 500 * time.Millisecond})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, false, fmt.Errorf("%w (%s is locked); stop the other broker or choose another --data-dir", ErrDataDirLocked, path)
	}
	if err != nil {
		return nil, false, fmt.Errorf("open metadata store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketTopics, bucketCluster} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		c := tx.Bucket(bucketCluster)
		if c.Get(keyClusterID) == nil {
			var id [16]byte
			rand.Read(id[:])
			return c.Put(keyClusterID, []byte(base64.RawURLEncoding.EncodeToString(id[:])))
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, false, fmt.Errorf("initialise metadata store %s: %w", path, err)
	}
	return &store{db: db}, created, nil
}

func (s *store) close() error { return s.db.Close() }

func (s *store) clusterID() string {
	var id string
	s.db.View(func(tx *bolt.Tx) error {
		id = string(tx.Bucket(bucketCluster).Get(keyClusterID))
		return nil
	})
	return id
}

func (s *store) topics() ([]topicRecord, error) {
	var out []topicRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTopics).ForEach(func(k, v []byte) error {
			var r topicRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("topic %q: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

func (s *store) putTopic(r topicRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTopics).Put([]byte(r.Name), b)
	})
}

func (s *store) deleteTopic(name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTopics).Delete([]byte(name))
	})
}

// nextProducerIDs reserves n consecutive producer ids.
func (s *store) nextProducerIDs(n int64) (int64, error) {
	var first int64
	err := s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketCluster)
		if v := c.Get(keyNextProducerID); len(v) == 8 {
			first = int64(binary.BigEndian.Uint64(v))
		}
		return c.Put(keyNextProducerID, binary.BigEndian.AppendUint64(nil, uint64(first+n)))
	})
	return first, err
}
