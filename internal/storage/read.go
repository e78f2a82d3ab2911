package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Chunk is a byte range of a segment file that holds whole batches, ready to
// be copied or sent to a socket with sendfile.
type Chunk struct {
	File *os.File
	Pos  int64
	Len  int64
}

// ReadResult is what a fetch gets from one partition.
type ReadResult struct {
	Chunk          Chunk // Len 0 when nothing is available at the offset
	HighWatermark  int64
	LogStartOffset int64
}

// ErrSegmentGone is returned when the segment a chunk points into was
// deleted by retention before the chunk was read.
var ErrSegmentGone = errors.New("segment deleted while being read")

// Bytes reads the chunk. A chunk whose segment retention deleted meanwhile
// yields ErrSegmentGone; the reader should fetch again.
func (c Chunk) Bytes() ([]byte, error) {
	if c.Len == 0 {
		return nil, nil
	}
	b := make([]byte, c.Len)
	if _, err := c.File.ReadAt(b, c.Pos); err != nil {
		if errors.Is(err, os.ErrClosed) {
			return nil, ErrSegmentGone
		}
		return nil, err
	}
	return b, nil
}

// Read returns the batches from the one holding offset onwards, up to about
// maxBytes and cut at a batch boundary. When the first batch alone is larger
// than maxBytes it is returned whole if minOne is set (KIP-74) and not at
// all otherwise. Reading at the log end offset returns an empty chunk.
func (l *Log) Read(offset, maxBytes int64, minOne bool) (ReadResult, error) {
	return l.ReadUpTo(offset, maxBytes, minOne, noLimit)
}

// ReadUpTo is Read that stops before the batch holding offset limit:
// read_committed fetches pass the last stable offset.
func (l *Log) ReadUpTo(offset, maxBytes int64, minOne bool, limit int64) (ReadResult, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ReadResult{}, ErrClosed
	}
	res := ReadResult{HighWatermark: l.active().next, LogStartOffset: l.start}
	if offset < l.start || offset > res.HighWatermark {
		return res, fmt.Errorf("%w: %d is outside [%d, %d]", ErrOffsetOutOfRange, offset, l.start, res.HighWatermark)
	}
	for i := l.segmentFor(offset); i < len(l.segments); i++ {
		s := l.segments[i]
		if offset >= s.next || s.size == 0 {
			continue // offsets in a gap (a segment set aside) continue in the next segment
		}
		if offset >= limit {
			return res, nil
		}
		ref, found, err := s.locate(max(offset, s.base), s.size)
		if err != nil {
			return res, err
		}
		if !found {
			continue
		}
		if ref.size > maxBytes && !minOne {
			return res, nil
		}
		end := ref.pos + ref.size
		if limit := ref.pos + maxBytes; limit >= s.size {
			end = s.size
		} else if b := s.boundaryBefore(limit); b > end {
			end = b
		}
		if end, err = s.untilLimit(ref.pos, end, limit); err != nil || end == ref.pos {
			return res, err
		}
		res.Chunk = Chunk{File: s.log, Pos: ref.pos, Len: end - ref.pos}
		return res, nil
	}
	return res, nil
}

// segmentFor returns the index of the segment whose range holds offset.
func (l *Log) segmentFor(offset int64) int {
	i := sort.Search(len(l.segments), func(i int) bool { return l.segments[i].base > offset })
	return max(i-1, 0)
}

// boundaryBefore returns the largest indexed batch position at or before pos.
func (s *segment) boundaryBefore(pos int64) int64 {
	s.loadIndex()
	i := sort.Search(len(s.offsets), func(i int) bool { return int64(s.offsets[i].pos) > pos })
	if i == 0 {
		return 0
	}
	return int64(s.offsets[i-1].pos)
}

var decompressor = kgo.DefaultDecompressor()

// eachRecord calls fn with the offset and timestamp of every record of a
// batch, decompressing it if needed, until fn returns false.
func eachRecord(raw []byte, fn func(offset, ts int64) bool) error {
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(raw); err != nil {
		return err
	}
	if rb.Attributes&attrTimestampLogAppend != 0 {
		for d := int32(0); d <= rb.LastOffsetDelta; d++ {
			if !fn(rb.FirstOffset+int64(d), rb.MaxTimestamp) {
				return nil
			}
		}
		return nil
	}
	recs, err := decompressor.Decompress(rb.Records, kgo.CompressionCodecType(rb.Attributes&0x07))
	if err != nil {
		return fmt.Errorf("decompress batch at offset %d: %w", rb.FirstOffset, err)
	}
	for len(recs) > 0 {
		n, size := kbin.Varint(recs)
		if size <= 0 || n < 0 || int(n) > len(recs)-size {
			return fmt.Errorf("%w: bad record length in batch at offset %d", ErrCorruptBatch, rb.FirstOffset)
		}
		var r kmsg.Record
		if err := r.ReadFrom(recs[:size+int(n)]); err != nil {
			return fmt.Errorf("%w: %v", ErrCorruptBatch, err)
		}
		recs = recs[size+int(n):]
		if !fn(rb.FirstOffset+int64(r.OffsetDelta), rb.FirstTimestamp+r.TimestampDelta64) {
			return nil
		}
	}
	return nil
}

// OffsetForTimestamp returns the first offset whose record timestamp is at
// or after ts, and that timestamp; -1, -1 when there is none.
func (l *Log) OffsetForTimestamp(ts int64) (int64, int64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return -1, -1, ErrClosed
	}
	for _, s := range l.segments {
		if s.size == 0 || s.next <= l.start || (s.maxTs >= 0 && s.maxTs < ts) {
			continue
		}
		s.loadIndex()
		from := s.base
		if i := sort.Search(len(s.times), func(i int) bool { return s.times[i].ts >= ts }); i > 0 {
			from = s.base + int64(s.times[i-1].rel)
		}
		var hit *batchRef
		err := s.scanHeaders(s.indexLookup(from), s.size, func(r batchRef) bool {
			if r.maxTs >= ts && r.last >= l.start {
				hit = &r
				return false
			}
			return true
		})
		if err != nil {
			return -1, -1, err
		}
		if hit == nil {
			continue
		}
		raw, err := s.readBatch(*hit)
		if err != nil {
			return -1, -1, err
		}
		offset, found := int64(-1), int64(-1)
		err = eachRecord(raw, func(o, t int64) bool {
			if o >= l.start && t >= ts {
				offset, found = o, t
				return false
			}
			return true
		})
		if err != nil || offset >= 0 {
			return offset, found, err
		}
	}
	return -1, -1, nil
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp (the earliest such record on a tie); -1, -1 when empty.
func (l *Log) MaxTimestamp() (int64, int64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return -1, -1, ErrClosed
	}
	var best *segment
	for _, s := range l.segments {
		if s.size > 0 && s.maxTs >= 0 && s.next > l.start && (best == nil || s.maxTs > best.maxTs) {
			best = s
		}
	}
	if best == nil {
		return -1, -1, nil
	}
	ref, found, err := best.locate(best.maxTsBase, best.size)
	if err != nil || !found {
		return -1, -1, err
	}
	raw, err := best.readBatch(ref)
	if err != nil {
		return -1, -1, err
	}
	offset, ts := int64(-1), int64(-1)
	err = eachRecord(raw, func(o, t int64) bool {
		if t > ts && o >= l.start {
			offset, ts = o, t
		}
		return true
	})
	return offset, ts, err
}

// readAll is used by tests and tools: every stored batch from offset on.
func (l *Log) readAll(offset int64) ([]byte, error) {
	var out []byte
	for {
		res, err := l.Read(offset, 1<<20, true)
		if err != nil || res.Chunk.Len == 0 {
			return out, err
		}
		b, err := res.Chunk.Bytes()
		if err != nil && err != io.EOF {
			return out, err
		}
		out = append(out, b...)
		last := int64(-1)
		for p := b; len(p) >= batchHeaderSize; p = p[batchLen(p):] {
			var rb kmsg.RecordBatch
			if rb.ReadFrom(p[:batchLen(p)]) == nil {
				last = rb.FirstOffset + int64(rb.LastOffsetDelta)
			}
		}
		offset = last + 1
	}
}
