package storage

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Idempotent producers: Kafka keeps, per partition and producer id, the
// epoch and the last five batches' sequence ranges, so that a retried batch
// is answered with the offset it got the first time and a gap in sequences
// is refused. The state is snapshotted at every segment roll and clean close
// and rebuilt on recovery from the snapshot plus the active segment.

const (
	producerStateFile = "producer-state.json"
	cachedBatches     = 5 // Kafka's max.in.flight.requests.per.connection bound for idempotence
)

type producerBatch struct {
	FirstSeq    int32 `json:"first_seq"`
	LastSeq     int32 `json:"last_seq"`
	FirstOffset int64 `json:"first_offset"`
	LastOffset  int64 `json:"last_offset"`
}

type producerEntry struct {
	Epoch         int16           `json:"epoch"`
	Batches       []producerBatch `json:"batches"`
	LastTimestamp int64           `json:"last_timestamp"`
	// OpenTxn is set from the producer's first transactional batch in this
	// partition until its commit or abort marker; TxnStart is that batch's
	// offset, which bounds the last stable offset.
	OpenTxn  bool  `json:"open_txn,omitempty"`
	TxnStart int64 `json:"txn_start,omitempty"`
}

// ProducerInfo describes one producer's last write to a partition.
type ProducerInfo struct {
	ProducerID    int64
	Epoch         int16
	LastSequence  int32 // -1 when only markers were written
	LastTimestamp int64
	TxnStart      int64 // first offset of its open transaction, -1 for none
}

type producerSnapshot struct {
	Offset    int64                    `json:"offset"` // state covers batches before this offset
	Producers map[int64]*producerEntry `json:"producers"`
}

type producerState map[int64]*producerEntry

// lastSeqOf returns the last sequence number of a batch, wrapping past MaxInt32 as Kafka does.
func lastSeqOf(rb *kmsg.RecordBatch) int32 {
	if rb.FirstSequence > math.MaxInt32-rb.LastOffsetDelta {
		return rb.LastOffsetDelta - (math.MaxInt32 - rb.FirstSequence) - 1
	}
	return rb.FirstSequence + rb.LastOffsetDelta
}

func inSequence(last, next int32) bool {
	return next == last+1 || (last == math.MaxInt32 && next == 0)
}

// check validates a batch against its producer's state. It returns the
// earlier append when the batch is a retry of one of the cached batches.
func (ps producerState) check(rb *kmsg.RecordBatch) (*producerBatch, error) {
	if rb.ProducerID < 0 {
		return nil, nil
	}
	e := ps[rb.ProducerID]
	if e == nil {
		return nil, nil // unknown producer (new, or expired): any sequence is accepted
	}
	if rb.ProducerEpoch < e.Epoch {
		return nil, fmt.Errorf("%w: producer %d sent epoch %d, current is %d", ErrInvalidEpoch, rb.ProducerID, rb.ProducerEpoch, e.Epoch)
	}
	if rb.ProducerEpoch > e.Epoch {
		if rb.FirstSequence != 0 {
			return nil, fmt.Errorf("%w: producer %d started epoch %d at sequence %d, not 0", ErrOutOfOrderSequence, rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence)
		}
		return nil, nil
	}
	last := lastSeqOf(rb)
	for i := range e.Batches {
		if b := &e.Batches[i]; b.FirstSeq == rb.FirstSequence && b.LastSeq == last {
			return b, nil
		}
	}
	if n := len(e.Batches); n > 0 && !inSequence(e.Batches[n-1].LastSeq, rb.FirstSequence) {
		return nil, fmt.Errorf("%w: producer %d sent sequence %d after %d", ErrOutOfOrderSequence, rb.ProducerID, rb.FirstSequence, e.Batches[n-1].LastSeq)
	}
	return nil, nil
}

// record adds an appended batch to its producer's state.
func (ps producerState) record(rb *kmsg.RecordBatch, appendTime int64) {
	if rb.ProducerID < 0 {
		return
	}
	e := ps[rb.ProducerID]
	if e == nil || rb.ProducerEpoch > e.Epoch {
		e = &producerEntry{Epoch: rb.ProducerEpoch}
		ps[rb.ProducerID] = e
	}
	e.Batches = append(e.Batches, producerBatch{
		FirstSeq:    rb.FirstSequence,
		LastSeq:     lastSeqOf(rb),
		FirstOffset: rb.FirstOffset,
		LastOffset:  rb.FirstOffset + int64(rb.LastOffsetDelta),
	})
	if len(e.Batches) > cachedBatches {
		e.Batches = e.Batches[len(e.Batches)-cachedBatches:]
	}
	e.LastTimestamp = appendTime
	if isTransactional(rb) && !e.OpenTxn {
		e.OpenTxn, e.TxnStart = true, rb.FirstOffset
	}
}

// expire forgets producers idle since before cutoff (producer.id.expiration.ms).
func (ps producerState) expire(cutoff int64) {
	for id, e := range ps {
		if e.LastTimestamp < cutoff && !e.OpenTxn {
			delete(ps, id)
		}
	}
}

// save writes the state atomically: a temporary file renamed over the old one.
func (ps producerState) save(dir string, offset int64) error {
	b, err := json.Marshal(producerSnapshot{Offset: offset, Producers: ps})
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, producerStateFile), b)
}

// loadProducerState reads the last snapshot; a missing or unreadable one
// yields an empty state at offset -1.
func loadProducerState(dir string) (producerState, int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, producerStateFile))
	if os.IsNotExist(err) {
		return producerState{}, -1, nil
	}
	if err != nil {
		return producerState{}, -1, err
	}
	var snap producerSnapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return producerState{}, -1, fmt.Errorf("%s: %w", producerStateFile, err)
	}
	if snap.Producers == nil {
		snap.Producers = map[int64]*producerEntry{}
	}
	return snap.Producers, snap.Offset, nil
}

// writeFileAtomic replaces a small state file durably: see writeFile.
func writeFileAtomic(path string, data []byte) error { return writeFile(path, data, true) }

// writeFile replaces path with data through a temporary file renamed over
// it, so a crash leaves either the old or the new content. With sync the
// file and the rename are fsynced before it returns. On failure the
// temporary file is removed (on a full disk it would hold space) and path
// is untouched.
func writeFile(path string, data []byte, sync bool) (err error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if sync {
		syncDir(filepath.Dir(path))
	}
	return nil
}

// writeNewFile writes a file that nothing reads before a later rename
// commits it: no temporary file, no fsync of the directory.
func writeNewFile(path string, data []byte, sync bool) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}
