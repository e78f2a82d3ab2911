package storage

import (
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

// Append validates the batches of one produce request for this partition,
// gives them offsets and writes them. The data is in the page cache when
// Append returns, so it survives the broker process being killed; Sync
// makes it survive the machine losing power too. data is modified in place.
func (l *Log) Append(data []byte) (AppendResult, error) {
	raws, hdrs, err := splitBatches(data)
	if err != nil {
		return AppendResult{LogAppendTime: -1}, err
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	res := AppendResult{LogAppendTime: -1}
	if l.closed {
		return res, ErrClosed
	}
	cfg := l.cfg
	now := l.now()
	for i, raw := range raws {
		if int64(len(raw)) > cfg.MaxMessageBytes {
			return res, fmt.Errorf("%w: batch of %d bytes, max.message.bytes is %d", ErrBatchTooLarge, len(raw), cfg.MaxMessageBytes)
		}
		if isControl(&hdrs[i]) {
			return res, fmt.Errorf("%w: control batches are written by the broker, not by producers", ErrInvalidRecord)
		}
	}

	return l.appendLocked(raws, hdrs, now)
}

// appendLocked gives batches offsets and writes them; l.mu is held.
func (l *Log) appendLocked(raws [][]byte, hdrs []kmsg.RecordBatch, now time.Time) (AppendResult, error) {
	res := AppendResult{LogAppendTime: -1}
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
			nowMs-a.created.UnixMilli() >= cfg.SegmentMs ||
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
			return res, err
		}
		if isControl(rb) {
			if err := l.noteMarker(rb, nowMs, true); err != nil {
				return res, err
			}
		} else {
			l.producers.record(rb, nowMs)
		}
		if i == 0 {
			res.BaseOffset = rb.FirstOffset
		}
	}

	close(l.appended)
	l.appended = make(chan struct{})
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
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("fsync %s: %w", f.Name(), err)
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
