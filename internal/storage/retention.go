package storage

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"
)

// EnforceRetention deletes the oldest segments that retention.bytes or
// retention.ms no longer keep, and those wholly below the log start offset.
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
// newest record is older than retention.ms. When every segment must go, the
// active one is rolled first so the log keeps its end offset.
func (l *Log) enforceRetention(now time.Time) (int, error) {
	cfg := l.cfg
	var total int64
	for _, s := range l.segments {
		total += s.size
	}
	n := 0
	for ; n < len(l.segments); n++ {
		s := l.segments[n]
		if s.size == 0 {
			break // only the active segment can be empty
		}
		belowStart := s.next <= l.start
		bySize := cfg.RetentionBytes >= 0 && total-s.size >= cfg.RetentionBytes
		byTime := cfg.RetentionMs >= 0 && now.UnixMilli()-s.newestTimestamp() > cfg.RetentionMs
		if !belowStart && !bySize && !byTime {
			break
		}
		total -= s.size
	}
	if n == 0 {
		return 0, nil
	}
	if n == len(l.segments) {
		if err := l.roll(); err != nil {
			return 0, err
		}
	}
	for _, s := range l.segments[:n] {
		if err := s.remove(); err != nil {
			l.logger.Warn("could not delete segment", "file", s.log.Name(), "err", err)
		}
	}
	l.segments = append(l.segments[:0:0], l.segments[n:]...)
	if first := l.segments[0].base; first > l.start {
		l.start = first
	}
	l.pruneAborted()
	l.logger.Info("retention deleted segments", "segments", n, "log_start_offset", l.start, "bytes_left", total)
	return n, nil
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
	l.start = offset
	if err := writeFileAtomic(filepath.Join(l.dir, logStartOffsetFile), []byte(strconv.FormatInt(offset, 10))); err != nil {
		return l.start, fmt.Errorf("persist log start offset: %w", err)
	}
	if _, err := l.enforceRetention(l.now()); err != nil {
		return l.start, err
	}
	return l.start, nil
}
