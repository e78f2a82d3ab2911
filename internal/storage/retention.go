package storage

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"
)

// EnforceRetention deletes the oldest segments that retention.bytes or
// retention.ms no longer keep (when cleanup.policy includes delete), and
// those wholly below the log start offset.
// It returns the number of segments deleted. It also forgets idempotent
// producers idle for longer than producer.id.expiration.ms, as Kafka does.
func (l *Log) EnforceRetention() (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, nil
	}
	now := l.now()
	if l.cfg.ProducerExpirationMs > 0 {
		l.producers.expire(now.UnixMilli() - l.cfg.ProducerExpirationMs)
	}
	return l.enforceRetention(now)
}

// enforceRetention works like Kafka's: whole segments go, oldest first, while
// the log without them is still at least retention.bytes, or while their
// newest record is older than retention.ms.
func (l *Log) enforceRetention(now time.Time) (int, error) {
	if l.cleaning.Load() {
		// A cleaning pass would have to start again without the segments
		// retention deleted; the next check (or roll) does it.
		return 0, nil
	}
	cfg := l.cfg
	var total int64
	for _, s := range l.segments {
		total += s.size
	}
	n := 0
	for ; n < len(l.segments); n++ {
		s := l.segments[n]
		if s.size == 0 && s == l.active() {
			break // (a sealed segment is empty when compaction removed all it held)
		}
		belowStart := s.next <= l.start
		bySize := cfg.Delete && cfg.RetentionBytes >= 0 && total-s.size >= cfg.RetentionBytes
		byTime := cfg.Delete && cfg.RetentionMs >= 0 && now.UnixMilli()-s.newestTimestamp() > cfg.RetentionMs
		if !belowStart && !bySize && !byTime {
			break
		}
		total -= s.size
	}
	deleted, err := l.deleteSegments(n)
	if deleted > 0 {
		l.logger.Info("retention deleted segments", "segments", deleted, "log_start_offset", l.start, "bytes_left", total)
	}
	return deleted, err
}

// deleteSegments deletes the n oldest segments, oldest first, and moves the
// log start offset to the first segment left. When every segment must go,
// the active one is rolled first so the log keeps its end offset. Each
// deletion is durable and visible as it happens; at the first that fails
// the rest stay, so the log never has a hole.
func (l *Log) deleteSegments(n int) (int, error) {
	var err error
	deleted := 0
	for _, s := range l.segments[:n] {
		if s == l.active() {
			if err = l.roll(); err != nil {
				err = fmt.Errorf("roll before deleting the active segment: %w", err)
				break
			}
		}
		if err = s.remove(); err != nil {
			err = fmt.Errorf("delete segment: %w", err)
			break
		}
		deleted++
	}
	if deleted == 0 {
		return 0, err
	}
	l.segments = append(l.segments[:0:0], l.segments[deleted:]...)
	if l.cfg.SyncSealedSegments {
		syncDir(l.dir)
	}
	if first := l.segments[0].base; first > l.start {
		l.start = first
	}
	l.pruneAborted()
	return deleted, err
}

// newestTimestamp is what retention.ms is measured against: the segment's
// largest record timestamp, or its file time when it has none.
func (s *segment) newestTimestamp() int64 {
	if s.maxTs >= 0 {
		return s.maxTs
	}
	return s.created.UnixMilli()
}

// DeleteRecordsBefore moves the log start offset to offset (-1: the high
// watermark), making earlier records unreadable, and deletes the segments
// that now hold nothing readable. It returns the new log start offset.
//
// The whole segments below offset are deleted first, which frees space even
// on a full disk; then the new start is written durably, and only then is
// it the log start in memory. A failure at any step leaves a log start
// that the next start of the broker finds again.
func (l *Log) DeleteRecordsBefore(offset int64) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return -1, ErrClosed
	}
	end := l.active().next
	if offset == -1 {
		offset = end
	}
	if offset < 0 || offset > end {
		return l.start, fmt.Errorf("%w: %d is beyond the high watermark %d", ErrOffsetOutOfRange, offset, end)
	}
	if offset <= l.start {
		return l.start, nil
	}
	sealed := 0
	for _, s := range l.segments[:len(l.segments)-1] {
		if s.next > offset {
			break
		}
		sealed++
	}
	if _, err := l.deleteSegments(sealed); err != nil {
		return l.start, err
	}
	if err := writeFileAtomic(filepath.Join(l.dir, logStartOffsetFile), []byte(strconv.FormatInt(offset, 10))); err != nil {
		return l.start, fmt.Errorf("persist log start offset: %w", err)
	}
	l.start = offset
	if a := l.active(); a.next <= offset && a.size > 0 {
		// Nothing readable is left in the active segment: roll and delete it.
		// The start is durable already, so a failure here only keeps bytes.
		if _, err := l.deleteSegments(len(l.segments)); err != nil {
			l.logger.Warn("could not delete the active segment below the log start offset", "err", err)
		}
	}
	return l.start, nil
}
