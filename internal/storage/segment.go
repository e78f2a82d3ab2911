package storage

import (
	"encoding/binary"
	"errors"
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
type segment struct {
	dir  string
	base int64

	log       *os.File
	offIdx    *os.File // open only while the segment is active
	timeIdx   *os.File
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
	if err = s.openIndexes(true); err != nil {
		s.log.Close()
		return nil, err
	}
	return s, nil
}

func (s *segment) openIndexes(truncate bool) error {
	flags := os.O_CREATE | os.O_RDWR
	if truncate {
		flags |= os.O_TRUNC
	}
	var err error
	if s.offIdx, err = os.OpenFile(segmentName(s.dir, s.base, indexSuffix), flags, 0o644); err != nil {
		return fmt.Errorf("open offset index: %w", err)
	}
	if s.timeIdx, err = os.OpenFile(segmentName(s.dir, s.base, timeIndexSuffix), flags, 0o644); err != nil {
		s.offIdx.Close()
		return fmt.Errorf("open time index: %w", err)
	}
	return nil
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
// start: the file begins with a v2 batch whose offset matches its name.
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
	if first := int64(binary.BigEndian.Uint64(hdr[:8])); first != s.base {
		return fmt.Errorf("%w: first batch has offset %d, file name says %d", ErrCorruptBatch, first, s.base)
	}
	if n := batchLen(hdr[:]); n < batchHeaderSize || int64(n) > s.size {
		return fmt.Errorf("%w: first batch length %d does not fit the %d-byte file", ErrCorruptBatch, n, s.size)
	}
	return nil
}

// loadIndex reads the offset and time index of a sealed segment, dropping
// entries that point past the end of the log (written before a crash that
// cut the log shorter).
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
			if int64(e.pos) >= s.size || (len(s.offsets) > 0 && e.rel <= s.offsets[len(s.offsets)-1].rel) {
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

// append writes one batch whose offsets are already assigned. It is called
// with the Log's write lock held.
func (s *segment) append(b []byte, rb *kmsg.RecordBatch, indexInterval int64, now time.Time) error {
	pos := s.size
	if pos == 0 {
		s.created = now // segment.ms counts from the first batch
	}
	if _, err := s.log.WriteAt(b, pos); err != nil {
		return fmt.Errorf("write %s: %w", s.log.Name(), err)
	}
	s.size += int64(len(b))
	return s.noteBatch(rb, pos, int64(len(b)), indexInterval)
}

// noteBatch updates the segment's offsets, timestamps and sparse indexes for
// a batch that sits at pos in the file.
func (s *segment) noteBatch(rb *kmsg.RecordBatch, pos, n, indexInterval int64) error {
	s.next = rb.FirstOffset + int64(rb.LastOffsetDelta) + 1
	if rb.MaxTimestamp > s.maxTs {
		s.maxTs, s.maxTsBase = rb.MaxTimestamp, rb.FirstOffset
	}
	s.bytesSinceIndex += n
	if pos == 0 || s.bytesSinceIndex >= indexInterval {
		s.bytesSinceIndex = 0
		return s.addIndexEntry(rb.FirstOffset, pos)
	}
	return nil
}

func (s *segment) addIndexEntry(offset, pos int64) error {
	e := offsetEntry{rel: uint32(offset - s.base), pos: uint32(pos)}
	s.offsets = append(s.offsets, e)
	if s.offIdx != nil {
		var buf [offsetEntrySize]byte
		binary.BigEndian.PutUint32(buf[:], e.rel)
		binary.BigEndian.PutUint32(buf[4:], e.pos)
		if _, err := s.offIdx.Write(buf[:]); err != nil {
			return fmt.Errorf("write offset index: %w", err)
		}
	}
	if len(s.times) == 0 || s.maxTs > s.times[len(s.times)-1].ts {
		return s.addTimeEntry(s.maxTs, s.maxTsBase)
	}
	return nil
}

func (s *segment) addTimeEntry(ts, offset int64) error {
	t := timeEntry{ts: ts, rel: uint32(offset - s.base)}
	s.times = append(s.times, t)
	if s.timeIdx != nil {
		var buf [timeEntrySize]byte
		binary.BigEndian.PutUint64(buf[:], uint64(t.ts))
		binary.BigEndian.PutUint32(buf[8:], t.rel)
		if _, err := s.timeIdx.Write(buf[:]); err != nil {
			return fmt.Errorf("write time index: %w", err)
		}
	}
	return nil
}

// seal finishes the active segment at a roll: the last time index entry
// records the segment's largest timestamp (read back by openSealedSegment),
// and everything is flushed unless syncing is off.
func (s *segment) seal(sync bool) error {
	if s.maxTs >= 0 && (len(s.times) == 0 || s.times[len(s.times)-1].ts < s.maxTs) {
		if err := s.addTimeEntry(s.maxTs, s.maxTsBase); err != nil {
			return err
		}
	}
	var errs []error
	for _, f := range []*os.File{s.log, s.offIdx, s.timeIdx} {
		if sync {
			errs = append(errs, f.Sync())
		}
	}
	errs = append(errs, s.offIdx.Close(), s.timeIdx.Close())
	s.offIdx, s.timeIdx = nil, nil
	return errors.Join(errs...)
}

// resetIndexes empties the active segment's index files before recovery
// rebuilds them batch by batch.
func (s *segment) resetIndexes() error {
	s.offsets, s.times, s.bytesSinceIndex = nil, nil, 0
	for _, f := range []*os.File{s.offIdx, s.timeIdx} {
		if err := f.Truncate(0); err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
	}
	return nil
}

func (s *segment) close() error {
	errs := []error{s.log.Close()}
	if s.offIdx != nil {
		errs = append(errs, s.offIdx.Close(), s.timeIdx.Close())
	}
	return errors.Join(errs...)
}

// remove deletes the segment's files (retention, DeleteRecords, topic deletion).
func (s *segment) remove() error {
	s.close()
	var errs []error
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		if err := os.Remove(segmentName(s.dir, s.base, suf)); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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
				return fmt.Errorf("%w: batch length %d at position %d of %s", ErrCorruptBatch, size, pos+consumed, s.log.Name())
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
			return fmt.Errorf("%w: %d trailing bytes at position %d of %s", ErrCorruptBatch, limit-pos, pos, s.log.Name())
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
