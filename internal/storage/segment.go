package storage

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// File names follow Kafka's layout so operators recognise them:
// 00000000000000001234.log holds the batches whose offsets start at 1234,
// .index maps offsets to file positions every index.interval.bytes, and
// .timeindex maps timestamps to offsets at the same points.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	corruptSuffix   = ".corrupt"

	offsetEntrySize = 8  // relative offset (4) + file position (4)
	timeEntrySize   = 12 // timestamp (8) + relative offset (4)
)

func segmentName(dir string, base int64, suffix string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, suffix))
}

type offsetEntry struct {
	rel uint32 // offset - segment base
	pos uint32 // byte position of the batch holding that offset
}

type timeEntry struct {
	ts  int64  // largest timestamp at or before rel
	rel uint32 // first offset of the batch that carried ts
}

// segment is one file of a partition's log plus its two sparse indexes.
// The owning Log's lock guards every field except those under indexMu.
//
// The index of the active segment lives in memory; its files are written
// whole when the segment is sealed and at a clean close, so an append writes
// one file only, and a failed append is undone by cutting that file back.
type segment struct {
	dir  string
	base int64

	log       *os.File
	size      int64 // bytes of whole batches in log
	next      int64 // offset after the last batch
	created   time.Time
	maxTs     int64 // largest batch timestamp, -1 when unknown
	maxTsBase int64 // first offset of the batch holding maxTs

	indexMu         sync.Mutex // guards the lazily loaded index of a sealed segment
	indexLoaded     bool
	offsets         []offsetEntry
	times           []timeEntry
	bytesSinceIndex int64
}

// createSegment starts an empty segment at base.
func createSegment(dir string, base int64, now time.Time) (*segment, error) {
	s := &segment{dir: dir, base: base, next: base, created: now, maxTs: -1, maxTsBase: base, indexLoaded: true}
	var err error
	if s.log, err = os.OpenFile(segmentName(dir, base, logSuffix), os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644); err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	return s, nil
}

// openSealedSegment opens a segment that is not the active one without
// reading its data: its size comes from stat, its last offset from the next
// segment's base and its largest timestamp from the last time index entry
// (written when the segment was rolled). The offset index loads on first use.
func openSealedSegment(dir string, base, next int64) (*segment, error) {
	s := &segment{dir: dir, base: base, next: next, maxTs: -1, maxTsBase: base}
	var err error
	if s.log, err = os.OpenFile(segmentName(dir, base, logSuffix), os.O_RDWR, 0); err != nil {
		return nil, err
	}
	st, err := s.log.Stat()
	if err != nil {
		s.log.Close()
		return nil, err
	}
	s.size = st.Size()
	s.created = st.ModTime()
	if err := s.checkFirstBatch(); err != nil {
		s.log.Close()
		return nil, err
	}
	if b, err := os.ReadFile(segmentName(dir, base, timeIndexSuffix)); err == nil && len(b) >= timeEntrySize {
		last := b[len(b)-len(b)%timeEntrySize-timeEntrySize:]
		s.maxTs = int64(binary.BigEndian.Uint64(last))
		s.maxTsBase = base + int64(binary.BigEndian.Uint32(last[8:]))
	}
	return s, nil
}

// checkFirstBatch is the cheap sanity check run on every sealed segment at
// start: the file begins with a v2 batch whose offset is in its range.
func (s *segment) checkFirstBatch() error {
	if s.size == 0 {
		return nil
	}
	var hdr [batchHeaderSize]byte
	if s.size < batchHeaderSize {
		return fmt.Errorf("%w: %d bytes is shorter than one batch", ErrCorruptBatch, s.size)
	}
	if _, err := s.log.ReadAt(hdr[:], 0); err != nil {
		return err
	}
	if hdr[posMagic] != 2 {
		return fmt.Errorf("%w: first batch has magic %d", ErrCorruptBatch, hdr[posMagic])
	}
	// Compaction can remove a segment's first batches: the file keeps the
	// name of the offset its range starts at.
	if first := int64(binary.BigEndian.Uint64(hdr[:8])); first < s.base || first >= s.next {
		return fmt.Errorf("%w: first batch has offset %d, outside the segment's offsets %d to %d", ErrCorruptBatch, first, s.base, s.next-1)
	}
	if n := batchLen(hdr[:]); n < batchHeaderSize || int64(n) > s.size {
		return fmt.Errorf("%w: first batch length %d does not fit the %d-byte file", ErrCorruptBatch, n, s.size)
	}
	return nil
}

// loadIndex reads the offset and time index files, dropping entries that
// point past the end of the log (written before a crash that cut the log
// shorter) or that are out of order.
func (s *segment) loadIndex() {
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	if s.indexLoaded {
		return
	}
	s.indexLoaded = true
	if b, err := os.ReadFile(segmentName(s.dir, s.base, indexSuffix)); err == nil {
		for ; len(b) >= offsetEntrySize; b = b[offsetEntrySize:] {
			e := offsetEntry{rel: binary.BigEndian.Uint32(b), pos: binary.BigEndian.Uint32(b[4:])}
			if int64(e.pos) >= s.size || (len(s.offsets) > 0 && (e.rel <= s.offsets[len(s.offsets)-1].rel || e.pos <= s.offsets[len(s.offsets)-1].pos)) {
				break
			}
			s.offsets = append(s.offsets, e)
		}
	}
	if b, err := os.ReadFile(segmentName(s.dir, s.base, timeIndexSuffix)); err == nil {
		for ; len(b) >= timeEntrySize; b = b[timeEntrySize:] {
			e := timeEntry{ts: int64(binary.BigEndian.Uint64(b)), rel: binary.BigEndian.Uint32(b[8:])}
			if s.base+int64(e.rel) >= s.next {
				break
			}
			s.times = append(s.times, e)
		}
	}
}

// errTailNotCut marks a failed append whose partial bytes could not be cut
// off the segment file again; the Log retries the cut before the next write.
type errTailNotCut struct{ write, truncate error }

func (e *errTailNotCut) Error() string {
	return fmt.Sprintf("%v; cutting the partly written batch off again failed too: %v", e.write, e.truncate)
}

func (e *errTailNotCut) Unwrap() error { return e.write }

// append writes one batch whose offsets are already assigned. It is called
// with the Log's write lock held. A write that fails is undone: the file is
// cut back to its previous size and nothing in memory changes.
func (s *segment) append(b []byte, rb *kmsg.RecordBatch, indexInterval int64, now time.Time) error {
	pos := s.size
	if _, err := s.log.WriteAt(b, pos); err != nil {
		if terr := s.log.Truncate(pos); terr != nil {
			return &errTailNotCut{write: err, truncate: terr}
		}
		return err // an *os.PathError: it names the file
	}
	if pos == 0 {
		s.created = now // segment.ms counts from the first batch
	}
	s.size += int64(len(b))
	s.noteBatch(rb, pos, int64(len(b)), indexInterval)
	return nil
}

// noteBatch updates the segment's offsets, timestamps and sparse in-memory
// indexes for a batch that sits at pos in the file.
func (s *segment) noteBatch(rb *kmsg.RecordBatch, pos, n, indexInterval int64) {
	s.next = rb.FirstOffset + int64(rb.LastOffsetDelta) + 1
	if rb.MaxTimestamp > s.maxTs {
		s.maxTs, s.maxTsBase = rb.MaxTimestamp, rb.FirstOffset
	}
	s.bytesSinceIndex += n
	if pos == 0 || s.bytesSinceIndex >= indexInterval {
		s.bytesSinceIndex = 0
		s.offsets = append(s.offsets, offsetEntry{rel: uint32(rb.FirstOffset - s.base), pos: uint32(pos)})
		if len(s.times) == 0 || s.maxTs > s.times[len(s.times)-1].ts {
			s.times = append(s.times, timeEntry{ts: s.maxTs, rel: uint32(s.maxTsBase - s.base)})
		}
	}
}

// writeIndexes writes the segment's in-memory indexes to their files, each
// whole through a temporary file, so a crash leaves the old or the new one.
// The last time entry records the segment's largest timestamp, which
// openSealedSegment reads back.
func (s *segment) writeIndexes(sync bool) error { return s.writeIndexesAs("", sync) }

// writeIndexesAs writes the index files under their names plus suffix.
func (s *segment) writeIndexesAs(suffix string, sync bool) error {
	if s.maxTs >= 0 && (len(s.times) == 0 || s.times[len(s.times)-1].ts < s.maxTs) {
		s.times = append(s.times, timeEntry{ts: s.maxTs, rel: uint32(s.maxTsBase - s.base)})
	}
	off := make([]byte, 0, len(s.offsets)*offsetEntrySize)
	for _, e := range s.offsets {
		off = binary.BigEndian.AppendUint32(off, e.rel)
		off = binary.BigEndian.AppendUint32(off, e.pos)
	}
	tim := make([]byte, 0, len(s.times)*timeEntrySize)
	for _, e := range s.times {
		tim = binary.BigEndian.AppendUint64(tim, uint64(e.ts))
		tim = binary.BigEndian.AppendUint32(tim, e.rel)
	}
	write := writeFile
	if suffix != "" {
		write = writeNewFile // a cleaning's files: committed later, by one rename
	}
	if err := write(segmentName(s.dir, s.base, indexSuffix)+suffix, off, sync); err != nil {
		return fmt.Errorf("write offset index: %w", err)
	}
	if err := write(segmentName(s.dir, s.base, timeIndexSuffix)+suffix, tim, sync); err != nil {
		return fmt.Errorf("write time index: %w", err)
	}
	return nil
}

func (s *segment) close() error { return s.log.Close() }

// path is the segment's data file (s.log may have been opened under the
// name a cleaning wrote it as).
func (s *segment) path() string { return segmentName(s.dir, s.base, logSuffix) }

// remove deletes the segment's files (retention, DeleteRecords). The data
// file goes first: once it is gone the segment is gone, whatever happens to
// its index files (leftovers are removed at the next start). When the data
// file cannot be removed, nothing has changed.
func (s *segment) remove() error {
	if err := os.Remove(s.path()); err != nil && !os.IsNotExist(err) {
		return err
	}
	s.close()
	for _, suf := range []string{indexSuffix, timeIndexSuffix} {
		os.Remove(segmentName(s.dir, s.base, suf))
	}
	return nil
}

// indexLookup returns the file position of the last indexed batch starting at
// or before offset.
func (s *segment) indexLookup(offset int64) int64 {
	s.loadIndex()
	rel := offset - s.base
	i := sort.Search(len(s.offsets), func(i int) bool { return int64(s.offsets[i].rel) > rel })
	if i == 0 {
		return 0
	}
	return int64(s.offsets[i-1].pos)
}

// batchRef locates one batch in the segment file.
type batchRef struct {
	pos, size  int64
	base, last int64 // first and last offset
	maxTs      int64
}

// scanHeaders walks batch headers from pos, calling fn for each until fn
// returns false or the end of the segment (as of limit) is reached. It reads
// the file in windows, so a walk over small batches costs few syscalls.
func (s *segment) scanHeaders(pos, limit int64, fn func(batchRef) bool) error {
	buf := make([]byte, 64<<10)
	for pos < limit {
		n := min(int64(len(buf)), limit-pos)
		if _, err := s.log.ReadAt(buf[:n], pos); err != nil && err != io.EOF {
			return err
		}
		w := buf[:n]
		consumed := int64(0)
		for int64(len(w)) >= batchHeaderSize {
			size := int64(batchLen(w))
			if size < batchHeaderSize {
				return fmt.Errorf("%w: batch length %d at position %d of %s", ErrCorruptBatch, size, pos+consumed, s.path())
			}
			ref := batchRef{
				pos:   pos + consumed,
				size:  size,
				base:  int64(binary.BigEndian.Uint64(w)),
				maxTs: int64(binary.BigEndian.Uint64(w[posMaxTimestamp:])),
			}
			ref.last = ref.base + int64(int32(binary.BigEndian.Uint32(w[23:27])))
			if !fn(ref) {
				return nil
			}
			consumed += size
			if size > int64(len(w)) {
				break
			}
			w = w[size:]
		}
		if consumed == 0 { // the window is never smaller than a header, so the file ends mid-header
			return fmt.Errorf("%w: %d trailing bytes at position %d of %s", ErrCorruptBatch, limit-pos, pos, s.path())
		}
		pos += consumed
	}
	return nil
}

// locate finds the batch that holds offset, or the first batch after it.
// It returns found=false when offset is past the segment's last batch.
func (s *segment) locate(offset, limit int64) (batchRef, bool, error) {
	var hit batchRef
	found := false
	err := s.scanHeaders(s.indexLookup(offset), limit, func(r batchRef) bool {
		if r.last >= offset {
			hit, found = r, true
			return false
		}
		return true
	})
	return hit, found, err
}

// readBatch reads one whole batch.
func (s *segment) readBatch(r batchRef) ([]byte, error) {
	b := make([]byte, r.size)
	if _, err := s.log.ReadAt(b, r.pos); err != nil {
		return nil, err
	}
	return b, nil
}
