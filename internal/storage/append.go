package storage

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// AppendResult is what a producer learns from an append.
type AppendResult struct {
	BaseOffset     int64 // offset given to the first record
	LogAppendTime  int64 // broker timestamp under LogAppendTime, else -1
	LogStartOffset int64
	Duplicate      bool // a retried batch, answered with its earlier offset
}

// Append checks the record batch of one produce request for this partition
// (exactly one, as Kafka requires of produce v3 and later), gives it offsets
// and writes it. The data is in the page cache when Append returns, so it
// survives the broker process being killed; Sync makes it survive the
// machine losing power too. data is modified in place. A batch that is
// refused, and a write that fails, leave the log as it was.
func (l *Log) Append(data []byte) (AppendResult, error) {
	res := AppendResult{LogAppendTime: -1}
	raws, hdrs, err := splitBatches(data)
	if err != nil {
		return res, err
	}
	if len(raws) > 1 {
		return res, fmt.Errorf("%w: %d record batches for one partition; a produce request carries exactly one", ErrInvalidRecord, len(raws))
	}
	raw, rb := raws[0], &hdrs[0]
	l.mu.RLock()
	cfg := l.cfg
	l.mu.RUnlock()
	if int64(len(raw)) > cfg.MaxMessageBytes {
		return res, fmt.Errorf("%w: batch of %d bytes, max.message.bytes is %d", ErrBatchTooLarge, len(raw), cfg.MaxMessageBytes)
	}
	if isControl(rb) {
		return res, fmt.Errorf("%w: control batches are written by the broker, not by producers", ErrInvalidRecord)
	}
	// The records are checked before the lock is taken: produces to the
	// same partition from other connections go on meanwhile.
	raw, err = validateClientBatch(raw, rb, rulesOf(cfg, l.now()))
	if err != nil {
		return res, err
	}
	if int64(len(raw)) > cfg.MaxMessageBytes { // recompressed larger (Kafka checks again too)
		return res, fmt.Errorf("%w: batch of %d bytes once recompressed (compression.type=%s), max.message.bytes is %d", ErrBatchTooLarge, len(raw), cfg.Compression, cfg.MaxMessageBytes)
	}
	raws[0] = raw

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return res, ErrClosed
	}
	return l.appendLocked(raws, hdrs, l.now())
}

// appendLocked gives batches offsets and writes them; l.mu is held.
func (l *Log) appendLocked(raws [][]byte, hdrs []kmsg.RecordBatch, now time.Time) (AppendResult, error) {
	res := AppendResult{LogAppendTime: -1}
	if err := l.writable(); err != nil {
		return res, err
	}
	cfg := l.cfg
	nowMs := now.UnixMilli()
	rolled := false
	var err error
	for i, raw := range raws {
		rb := &hdrs[i]
		var dup *producerBatch
		if !isControl(rb) { // markers have no sequence; AppendMarker checks their epoch
			if dup, err = l.producers.check(rb); err != nil {
				return res, err
			}
		}
		if dup != nil {
			if i == 0 {
				res.BaseOffset, res.Duplicate = dup.FirstOffset, true
			}
			continue
		}

		a := l.active()
		lastRel := a.next + int64(rb.LastOffsetDelta) - a.base
		if a.size > 0 && (a.size+int64(len(raw)) > cfg.SegmentBytes ||
			nowMs-a.created.UnixMilli() >= cfg.rollMs() ||
			lastRel > math.MaxUint32 || a.size+int64(len(raw)) > math.MaxUint32) {
			if err := l.roll(); err != nil {
				return res, err
			}
			rolled = true
			a = l.active()
		}

		rb.FirstOffset = a.next
		assignOffset(raw, rb.FirstOffset, cfg.PartitionLeaderEpoch)
		if cfg.LogAppendTime {
			setLogAppendTime(raw, nowMs)
			rb.MaxTimestamp = nowMs
			res.LogAppendTime = nowMs
		}
		if err := a.append(raw, rb, cfg.IndexIntervalBytes, now); err != nil {
			var notCut *errTailNotCut
			if errors.As(err, &notCut) {
				l.tailNotCut = err
			}
			return res, err
		}
		if isControl(rb) {
			if err := l.noteMarker(rb, nowMs, true); err != nil {
				return res, err
			}
		} else {
			l.recordProducerBatch(rb, nowMs)
		}
		if i == 0 {
			res.BaseOffset = rb.FirstOffset
		}
	}

	l.notifyAppended()
	if rolled && cfg.RetentionCheckOnRolls {
		if _, err := l.enforceRetention(now); err != nil {
			l.logger.Warn("retention after roll failed", "err", err)
		}
	}
	res.LogStartOffset = l.start
	return res, nil
}

// Sync makes every offset below upTo durable with fsync. Concurrent callers
// share one fsync: while one runs, later callers wait and the next fsync
// covers all of them (group commit).
func (l *Log) Sync(upTo int64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	for l.synced < upTo {
		if l.syncing {
			l.syncCond.Wait()
			continue
		}
		l.syncing = true
		l.syncMu.Unlock()
		target, err := l.syncActive()
		if err != nil && !errors.Is(err, ErrClosed) {
			l.mu.Lock()
			err = l.syncFailed(err)
			l.mu.Unlock()
		}
		l.syncMu.Lock()
		l.syncing = false
		if err == nil && target > l.synced {
			l.synced = target
		}
		l.syncCond.Broadcast()
		if err != nil {
			return err
		}
	}
	return nil
}

// syncActive fsyncs the active segment and returns the offset it covers.
// Segments before it were fsynced when they were rolled.
func (l *Log) syncActive() (int64, error) {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return 0, ErrClosed
	}
	f, target := l.active().log, l.active().next
	l.mu.RUnlock()
	began := time.Now()
	if err := f.Sync(); err != nil {
		return 0, err // an *os.PathError: it names the file
	}
	if l.onSync != nil {
		l.onSync(time.Since(began))
	}
	return target, nil
}

// markSynced records that a roll fsynced everything below offset.
func (l *Log) markSynced(offset int64) {
	l.syncMu.Lock()
	if offset > l.synced {
		l.synced = offset
	}
	l.syncMu.Unlock()
}

// Unsynced reports whether some appended offsets are not yet fsynced.
func (l *Log) Unsynced() bool {
	_, end := l.Offsets()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	return l.synced < end
}
