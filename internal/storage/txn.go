package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transactions in a partition, as Kafka keeps them: a producer's
// transactional batches are written like any other, and the transaction
// coordinator later appends a control batch (a COMMIT or ABORT marker) for
// that producer. Until then the producer's first transactional offset
// bounds the last stable offset (LSO), the end of what read_committed
// consumers may see. Aborted transactions are listed in aborted-txns.json
// so that fetches can tell read_committed consumers which records to drop;
// the file is rewritten on each abort and rebuilt from the log on recovery.

const abortedTxnFile = "aborted-txns.json"

// AbortedTxn is one aborted transaction of a partition: the producer, the
// offset of its first batch, and the offset of its ABORT marker.
type AbortedTxn struct {
	ProducerID  int64 `json:"producer_id"`
	FirstOffset int64 `json:"first_offset"`
	LastOffset  int64 `json:"last_offset"`
}

// AppendMarker writes a COMMIT or ABORT control batch for a producer and
// returns its offset. The caller syncs it (Sync) before it reports the
// transaction complete.
func (l *Log) AppendMarker(producerID int64, epoch int16, commit bool, coordinatorEpoch int32) (int64, error) {
	now := l.now()
	raw := markerBatch(producerID, epoch, commit, coordinatorEpoch, now.UnixMilli())
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(raw); err != nil {
		return -1, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return -1, ErrClosed
	}
	// A marker carries the coordinator's epoch for the producer, which
	// fences writes from older epochs; it has no sequence to check.
	if e := l.producers[producerID]; e != nil && epoch < e.Epoch {
		return -1, fmt.Errorf("%w: marker for producer %d at epoch %d, current is %d", ErrInvalidEpoch, producerID, epoch, e.Epoch)
	}
	res, err := l.appendLocked([][]byte{raw}, []kmsg.RecordBatch{rb}, now)
	return res.BaseOffset, err
}

// markerBatch encodes a control batch holding one marker record.
func markerBatch(producerID int64, epoch int16, commit bool, coordinatorEpoch int32, nowMs int64) []byte {
	key := kmsg.NewControlRecordKey()
	if commit {
		key.Type = 1
	}
	value := kmsg.NewEndTxnMarker()
	value.CoordinatorEpoch = coordinatorEpoch
	rec := kmsg.Record{Key: key.AppendTo(nil), Value: value.AppendTo(nil)}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1) // everything after the one-byte varint length
	return sealBatch(kmsg.RecordBatch{
		Magic:          2,
		Attributes:     attrControl | attrTransactional,
		FirstTimestamp: nowMs,
		MaxTimestamp:   nowMs,
		ProducerID:     producerID,
		ProducerEpoch:  epoch,
		FirstSequence:  -1,
		NumRecords:     1,
		Records:        rec.AppendTo(nil),
	})
}

// markerCommits reads whether a control batch is a COMMIT (true) or an
// ABORT marker; ok is false for other control records.
func markerCommits(rb *kmsg.RecordBatch) (commit, ok bool) {
	var rec kmsg.Record
	if err := rec.ReadFrom(rb.Records); err != nil {
		return false, false
	}
	var key kmsg.ControlRecordKey
	if err := key.ReadFrom(rec.Key); err != nil {
		return false, false
	}
	switch key.Type {
	case 0:
		return false, true
	case 1:
		return true, true
	}
	return false, false
}

// noteMarker ends the producer's open transaction when its marker is
// appended (persist) or met again on recovery.
func (l *Log) noteMarker(rb *kmsg.RecordBatch, nowMs int64, persist bool) error {
	commit, ok := markerCommits(rb)
	if !ok {
		return nil
	}
	ps := l.producers
	e := ps[rb.ProducerID]
	if e == nil {
		e = &producerEntry{Epoch: rb.ProducerEpoch}
		ps[rb.ProducerID] = e
	}
	if rb.ProducerEpoch > e.Epoch {
		e.Epoch, e.Batches = rb.ProducerEpoch, nil
	}
	e.LastTimestamp = nowMs
	if !e.OpenTxn {
		return nil
	}
	e.OpenTxn = false
	if commit {
		return nil
	}
	if n := len(l.aborted); n > 0 && l.aborted[n-1].LastOffset >= rb.FirstOffset {
		return nil // already listed (recovery after the file was written)
	}
	l.aborted = append(l.aborted, AbortedTxn{ProducerID: rb.ProducerID, FirstOffset: e.TxnStart, LastOffset: rb.FirstOffset})
	if !persist {
		return nil
	}
	return l.saveAborted()
}

func (l *Log) saveAborted() error {
	b, err := json.Marshal(l.aborted)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(l.dir, abortedTxnFile), b); err != nil {
		return fmt.Errorf("save aborted transactions: %w", err)
	}
	return nil
}

// loadAborted reads the aborted-transaction list; a missing file is empty
// and an unreadable one is reported and rebuilt from what recovery finds.
func (l *Log) loadAborted() {
	b, err := os.ReadFile(filepath.Join(l.dir, abortedTxnFile))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err == nil {
		err = json.Unmarshal(b, &l.aborted)
	}
	if err != nil {
		l.logger.Warn("aborted transaction list unreadable; read_committed consumers may see records of transactions aborted before the last restart", "file", abortedTxnFile, "err", err)
		l.aborted = nil
	}
}

// pruneAborted forgets aborted transactions wholly below the log start.
func (l *Log) pruneAborted() {
	i := sort.Search(len(l.aborted), func(i int) bool { return l.aborted[i].LastOffset >= l.start })
	if i == 0 {
		return
	}
	l.aborted = append(l.aborted[:0:0], l.aborted[i:]...)
	if err := l.saveAborted(); err != nil {
		l.logger.Warn("could not prune the aborted transaction list", "err", err)
	}
}

// LastStableOffset is the offset below which every transaction is decided:
// the first offset of the oldest open transaction, or the log end offset.
func (l *Log) LastStableOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.lastStableLocked()
}

func (l *Log) lastStableLocked() int64 {
	lso := l.active().next
	if !l.txnsSeen {
		return lso
	}
	for _, e := range l.producers {
		if e.OpenTxn && e.TxnStart < lso {
			lso = e.TxnStart
		}
	}
	return lso
}

// recordProducerBatch notes a producer's batch in the producer state; l.mu
// is held (or the log is being opened).
func (l *Log) recordProducerBatch(rb *kmsg.RecordBatch, ts int64) {
	l.producers.record(rb, ts)
	l.txnsSeen = l.txnsSeen || isTransactional(rb)
}

// AbortedTxns lists the aborted transactions that overlap [from, to).
func (l *Log) AbortedTxns(from, to int64) []AbortedTxn {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []AbortedTxn
	for _, a := range l.aborted {
		if a.LastOffset >= from && a.FirstOffset < to {
			out = append(out, a)
		}
	}
	return out
}

// Producers describes the producers with state in this partition, for
// DescribeProducers.
func (l *Log) Producers() []ProducerInfo {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]ProducerInfo, 0, len(l.producers))
	for id, e := range l.producers {
		p := ProducerInfo{ProducerID: id, Epoch: e.Epoch, LastSequence: -1, LastTimestamp: e.LastTimestamp, TxnStart: -1}
		if n := len(e.Batches); n > 0 {
			p.LastSequence = e.Batches[n-1].LastSeq
		}
		if e.OpenTxn {
			p.TxnStart = e.TxnStart
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProducerID < out[j].ProducerID })
	return out
}

// noLimit is ReadUpTo's limit for reading to the log end.
const noLimit = math.MaxInt64

// untilLimit cuts a chunk so that it ends before the batch holding limit.
func (s *segment) untilLimit(start, end, limit int64) (int64, error) {
	if limit >= s.next {
		return end, nil
	}
	ref, found, err := s.locate(limit, s.size)
	if err != nil || !found {
		return end, err
	}
	return max(min(end, ref.pos), start), nil
}
