package storage

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// One cleaning pass over a partition (see cleaner.go): plan, key map,
// rewriting in groups, swapping in.

// cleanPlan is what a pass works from, taken under the log's lock.
type cleanPlan struct {
	cfg         Config
	nowMs       int64
	start       int64
	firstDirty  int64
	uncleanable int64
	segments    []*segment // the closed segments from the first to the last holding offsets below uncleanable
	aborted     []AbortedTxn
	tombstones  []tombstoneRange
}

func (l *Log) planCleaning() (*cleanPlan, bool) {
	st := l.CleanerStatus()
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed || !st.Cleanable {
		return nil, false
	}
	p := &cleanPlan{cfg: l.cfg, nowMs: l.now().UnixMilli(), start: l.start, aborted: append([]AbortedTxn(nil), l.aborted...), tombstones: append([]tombstoneRange(nil), l.clean.tombstones...)}
	p.firstDirty = l.firstDirtyLocked()
	p.uncleanable = l.firstUncleanableLocked(p.firstDirty, p.nowMs)
	for _, s := range l.segments[:len(l.segments)-1] {
		if s.base >= p.uncleanable {
			break
		}
		p.segments = append(p.segments, s)
	}
	return p, len(p.segments) > 0
}

// Clean runs one cleaning pass if the partition is compacted and due (see
// CleanerStatus), and returns its statistics; nil, nil when there was
// nothing to do. Producers and consumers go on meanwhile: the log's lock is
// taken only to plan and to swap each rewritten group of segments in.
func (l *Log) Clean(c *Cleaner) (*CleaningStats, error) {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	p, ok := l.planCleaning()
	if !ok {
		return nil, nil
	}
	stats := &CleaningStats{Start: time.UnixMilli(p.nowMs), FirstDirty: p.firstDirty}
	pass := &cleaningPass{l: l, c: c, p: p, stats: stats, retained: map[int64]bool{}}
	l.cleaning.Store(true)
	err := pass.run()
	l.cleaning.Store(false)
	stats.DurationMs = time.Since(stats.Start).Milliseconds()
	if errors.Is(err, errCleaningAborted) {
		return nil, nil
	}
	if errors.Is(err, errSimulatedCrash) {
		return nil, err
	}
	if err != nil {
		stats.Error = err.Error()
	}
	l.mu.Lock()
	l.clean.last = stats
	if err == nil {
		l.finishPass(pass)
	}
	l.mu.Unlock()
	if err == nil && len(pass.abortedGone) > 0 {
		l.mu.Lock()
		serr := l.saveAborted()
		l.mu.Unlock()
		if serr != nil {
			l.logger.Warn("could not update the aborted transaction list after cleaning", "err", serr)
		}
	}
	if serr := l.saveCleanState(); serr != nil && err == nil {
		err = serr
	}
	return stats, err
}

// finishPass moves the dirty section on and keeps the tombstone ranges
// still within delete.retention.ms. l.mu is held.
func (l *Log) finishPass(pass *cleaningPass) {
	p := pass.p
	l.clean.firstDirty = pass.end
	var keep []tombstoneRange
	for _, r := range l.clean.tombstones {
		if r.CleanedAt+l.cfg.DeleteRetentionMs > p.nowMs && r.To > l.start {
			keep = append(keep, r)
		}
	}
	if pass.dirtyTombstones {
		keep = append(keep, tombstoneRange{From: p.firstDirty, To: pass.end, CleanedAt: p.nowMs})
	}
	l.clean.tombstones = keep
	if len(pass.abortedGone) > 0 {
		kept := l.aborted[:0:0]
		for _, a := range l.aborted {
			if !pass.abortedGone[a] {
				kept = append(kept, a)
			}
		}
		l.aborted = kept
	}
}

// cleaningPass is the state of one Clean.
type cleaningPass struct {
	l     *Log
	c     *Cleaner
	p     *cleanPlan
	stats *CleaningStats
	keys  *offsetMap
	end   int64 // the map covers the dirty offsets [p.firstDirty, end)

	retained        map[int64]bool // producer -> its open transaction kept records in this pass
	dirtyTombstones bool           // tombstones or markers of the dirty section were kept
	abortedGone     map[AbortedTxn]bool
}

func (pass *cleaningPass) run() error {
	p := pass.p
	pass.keys = newOffsetMap(pass.c.mapBytes, p.uncleanable-p.firstDirty)
	if err := pass.buildMap(); err != nil {
		return err
	}
	pass.stats.End = pass.end
	var rewrite []*segment
	for _, s := range p.segments {
		if s.base < pass.end {
			rewrite = append(rewrite, s)
		}
	}
	return pass.cleanSegments(rewrite)
}

// isAborted reports whether a transactional batch belongs to an aborted
// transaction.
func (p *cleanPlan) isAborted(rb *kmsg.RecordBatch) bool {
	if !isTransactional(rb) {
		return false
	}
	for _, a := range p.aborted {
		if a.ProducerID == rb.ProducerID && a.FirstOffset <= rb.FirstOffset && rb.FirstOffset < a.LastOffset {
			return true
		}
	}
	return false
}

// buildMap reads the dirty section into the offset map, stopping at the
// first record whose key no longer fits.
func (pass *cleaningPass) buildMap() error {
	p := pass.p
	pass.end = p.uncleanable
	full := errors.New("map full")
	for _, s := range p.segments {
		if s.next <= p.firstDirty {
			continue
		}
		if s.base >= p.uncleanable {
			break
		}
		from := int64(0)
		if s.base < p.firstDirty {
			from = s.indexLookup(p.firstDirty)
		}
		err := pass.eachBatch(s, from, func(raw []byte, rb *kmsg.RecordBatch) error {
			last := rb.FirstOffset + int64(rb.LastOffsetDelta)
			if last < p.firstDirty || isControl(rb) || p.isAborted(rb) {
				return nil
			}
			if rb.FirstOffset >= p.uncleanable {
				return errStopWalk
			}
			return pass.eachRecord(rb, func(_ []byte, r recordView, offset int64) error {
				if offset < p.firstDirty || r.key == nil {
					return nil
				}
				if !pass.keys.put(r.key, offset) {
					pass.end = offset
					return full
				}
				return nil
			})
		})
		if errors.Is(err, full) {
			pass.stats.Partial = true
			return nil
		}
		if errors.Is(err, errStopWalk) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// crashAt is a test's way to stop a pass dead at a named step, as a kill
// -9 would: it returns true where the test wants the crash.
var crashAt = func(step string) bool { return false }

// errSimulatedCrash is what a pass stopped by crashAt returns.
var errSimulatedCrash = errors.New("simulated crash")

// errStopWalk ends a walk over batches early without an error.
var errStopWalk = errors.New("stop")

// tombstoneExpired reports whether a tombstone or marker at offset may go:
// it was in the clean section before this pass and no tombstone range
// still within delete.retention.ms covers it.
func (p *cleanPlan) tombstoneExpired(offset int64) bool {
	if offset >= p.firstDirty {
		return false
	}
	for _, r := range p.tombstones {
		if r.From <= offset && offset < r.To && r.CleanedAt+p.cfg.DeleteRetentionMs > p.nowMs {
			return false
		}
	}
	return true
}

// cleanSegments rewrites segments in groups, each into one new segment
// that is swapped in for the group. A group takes segments while what it
// has written plus the next segment's whole size fits segment.bytes, so a
// group never outgrows a segment, and segments that cleaning shrank merge.
func (pass *cleaningPass) cleanSegments(segs []*segment) error {
	var g *groupWriter
	for _, s := range segs {
		if g != nil && (g.out.size+s.size > pass.p.cfg.SegmentBytes || s.next-1-g.out.base > math.MaxUint32) {
			if err := g.finish(); err != nil {
				return err
			}
			g = nil
		}
		if g == nil {
			var err error
			if g, err = pass.newGroup(s.base); err != nil {
				return err
			}
		}
		if err := g.add(s); err != nil {
			g.discard()
			return err
		}
	}
	if g == nil {
		return nil
	}
	return g.finish()
}

// groupWriter writes one group's cleaned segment as NNN.log.cleaned.
type groupWriter struct {
	pass    *cleaningPass
	f       *os.File
	w       *bufio.Writer
	out     *segment
	segs    []*segment
	changed bool // something was dropped or rebuilt, or segments merged
}

func (pass *cleaningPass) newGroup(base int64) (*groupWriter, error) {
	l := pass.l
	f, err := os.OpenFile(segmentName(l.dir, base, logSuffix)+cleanedSuffix, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create cleaned segment: %w", err)
	}
	out := &segment{dir: l.dir, base: base, next: base, log: f, created: l.now(), maxTs: -1, maxTsBase: base, indexLoaded: true}
	return &groupWriter{pass: pass, f: f, w: bufio.NewWriterSize(f, 256<<10), out: out}, nil
}

// add filters one segment's batches into the group's file.
func (g *groupWriter) add(s *segment) error {
	pass := g.pass
	g.segs = append(g.segs, s)
	g.changed = g.changed || len(g.segs) > 1
	return pass.eachBatch(s, 0, func(raw []byte, rb *kmsg.RecordBatch) error {
		b, nrb, err := pass.filterBatch(raw, rb)
		if err != nil || b == nil {
			g.changed = true
			return err
		}
		if len(b) != len(raw) {
			g.changed = true
		}
		pos := g.out.size
		if _, err := g.w.Write(b); err != nil {
			return fmt.Errorf("write cleaned segment: %w", err)
		}
		g.out.size += int64(len(b))
		g.out.noteBatch(nrb, pos, int64(len(b)), pass.p.cfg.IndexIntervalBytes)
		pass.stats.BytesWritten += int64(len(b))
		pass.c.throttle.wait(len(b), pass.l.cleanAbort, pass.c.stop)
		return nil
	})
}

func (g *groupWriter) discard() {
	g.f.Close()
	name := segmentName(g.out.dir, g.out.base, logSuffix)
	os.Remove(name + cleanedSuffix)
	os.Remove(segmentName(g.out.dir, g.out.base, indexSuffix) + cleanedSuffix)
	os.Remove(segmentName(g.out.dir, g.out.base, timeIndexSuffix) + cleanedSuffix)
}

// finish makes the group's segment durable and swaps it in; a group of
// one segment in which nothing changed is left as it was.
func (g *groupWriter) finish() error {
	pass := g.pass
	if !g.changed {
		g.discard()
		return nil
	}
	sync := pass.p.cfg.SyncSealedSegments
	err := g.w.Flush()
	if err == nil && sync {
		err = g.f.Sync()
	}
	g.out.next = g.segs[len(g.segs)-1].next
	if err == nil {
		err = g.out.writeIndexesAs(cleanedSuffix, sync)
	}
	if err == nil && crashAt("written") {
		return errSimulatedCrash
	}
	if err == nil {
		err = pass.l.swapIn(g.segs, g.out)
	}
	if errors.Is(err, errSimulatedCrash) {
		return err
	}
	if err != nil {
		g.discard()
		return err
	}
	pass.stats.SegmentsRewritten += len(g.segs)
	return nil
}

// filterBatch decides what of one stored batch a pass keeps: the batch as
// it is, a rebuilt batch holding the records kept (b aliases the cleaner's
// buffer), or nothing (nil).
func (pass *cleaningPass) filterBatch(raw []byte, rb *kmsg.RecordBatch) ([]byte, *kmsg.RecordBatch, error) {
	p := pass.p
	last := rb.FirstOffset + int64(rb.LastOffsetDelta)
	if last < p.start {
		return nil, nil, nil // below the log start: unreadable already
	}
	if isControl(rb) {
		return pass.filterMarker(raw, rb), rb, nil
	}
	if rb.FirstOffset < pass.end && p.isAborted(rb) {
		return nil, nil, nil
	}
	if rb.FirstOffset >= pass.end {
		pass.stats.RecordsRead += int64(rb.NumRecords)
		pass.stats.RecordsKept += int64(rb.NumRecords)
		pass.noteRetained(rb)
		return raw, rb, nil // beyond what the map covers
	}
	c := pass.c
	c.kept = c.kept[:0]
	var kept int32
	maxTs := int64(-1)
	err := pass.eachRecord(rb, func(rec []byte, r recordView, offset int64) error {
		pass.stats.RecordsRead++
		keep := true
		switch {
		case offset < p.start:
			keep = false
		case offset >= pass.end:
			// not judged by this pass
		case r.key == nil:
			keep = false // Kafka's cleaner drops records without a key too
		case pass.keys.get(r.key) > offset:
			keep = false // a later record has the key
		case r.nullValue && offset >= p.firstDirty:
			pass.dirtyTombstones = true
		case r.nullValue && p.tombstoneExpired(offset):
			keep = false
			pass.stats.TombstonesRemoved++
		}
		if keep {
			c.kept = append(c.kept, rec...)
			kept++
			maxTs = max(maxTs, rb.FirstTimestamp+r.tsDelta)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	pass.stats.RecordsKept += int64(kept)
	switch {
	case kept == 0:
		return nil, nil, nil
	case kept == rb.NumRecords:
		pass.noteRetained(rb)
		return raw, rb, nil
	}
	pass.noteRetained(rb)
	b, err := c.rebuild(raw, rb, kept, maxTs)
	if err != nil {
		return nil, nil, err
	}
	nrb := *rb
	if rb.Attributes&attrTimestampLogAppend == 0 {
		nrb.MaxTimestamp = maxTs
	}
	return b, &nrb, nil
}

// noteRetained remembers that a transaction kept records in this pass, so
// that its marker stays.
func (pass *cleaningPass) noteRetained(rb *kmsg.RecordBatch) {
	if isTransactional(rb) {
		pass.retained[rb.ProducerID] = true
	}
}

// filterMarker keeps a transaction marker while its transaction has records
// left, or while it is within delete.retention.ms; nil when it goes.
func (pass *cleaningPass) filterMarker(raw []byte, rb *kmsg.RecordBatch) []byte {
	p := pass.p
	retained := pass.retained[rb.ProducerID]
	delete(pass.retained, rb.ProducerID)
	if rb.FirstOffset >= pass.end {
		return raw
	}
	if rb.FirstOffset >= p.firstDirty {
		pass.dirtyTombstones = true
		return raw
	}
	if retained || !p.tombstoneExpired(rb.FirstOffset) {
		return raw
	}
	if commit, ok := markerCommits(rb); ok && !commit {
		for _, a := range p.aborted {
			if a.ProducerID == rb.ProducerID && a.LastOffset == rb.FirstOffset {
				if pass.abortedGone == nil {
					pass.abortedGone = map[AbortedTxn]bool{}
				}
				pass.abortedGone[a] = true
			}
		}
	}
	return nil
}

// rebuild encodes a batch holding the kept records (c.kept): the original
// header with its base offset, last offset delta, producer fields and
// first timestamp, the record count, largest timestamp, length and CRC
// made right, and the records compressed with the batch's own codec.
func (c *Cleaner) rebuild(raw []byte, rb *kmsg.RecordBatch, n int32, maxTs int64) ([]byte, error) {
	recs := c.kept
	if codec := int(rb.Attributes & 0x07); codec != codecNone {
		comp, err := compressorFor(codec, codecDefaultLevel)
		if err != nil {
			return nil, err
		}
		c.compressBuf.Reset()
		var got kgo.CompressionCodecType
		if recs, got = comp.Compress(&c.compressBuf, c.kept); int(got) != codec || recs == nil {
			return nil, fmt.Errorf("re-compressing a batch with %s failed", codecNames[codec])
		}
	}
	b := append(c.out[:0], raw[:batchHeaderSize]...)
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[8:12], uint32(len(b)-batchLengthEnd))
	binary.BigEndian.PutUint32(b[batchHeaderSize-4:], uint32(n))
	if rb.Attributes&attrTimestampLogAppend == 0 {
		binary.BigEndian.PutUint64(b[posMaxTimestamp:], uint64(maxTs))
	}
	binary.BigEndian.PutUint32(b[posCRC:], crc32.Checksum(b[posAttributes:], castagnoli))
	c.out = b
	return b, nil
}

// eachBatch reads the batches of a closed segment from file position from
// on, checking each one's CRC, at the throttle's pace. raw is valid only
// during fn. A segment that retention deleted meanwhile aborts the pass.
func (pass *cleaningPass) eachBatch(s *segment, from int64, fn func(raw []byte, rb *kmsg.RecordBatch) error) error {
	r := bufio.NewReaderSize(io.NewSectionReader(s.log, from, s.size-from), 256<<10)
	var buf []byte
	for pos := from; pos < s.size; {
		select {
		case <-pass.c.stop:
			return errCleaningAborted
		case <-pass.l.cleanAbort:
			return errCleaningAborted
		default:
		}
		var hdr [batchLengthEnd]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return pass.readError(s, pos, err)
		}
		n := int64(batchLen(hdr[:]))
		if n < batchHeaderSize || pos+n > s.size {
			return fmt.Errorf("%w: batch of %d bytes at position %d of %s", ErrCorruptBatch, n, pos, s.path())
		}
		if int64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		b := buf[:n]
		copy(b, hdr[:])
		if _, err := io.ReadFull(r, b[batchLengthEnd:]); err != nil {
			return pass.readError(s, pos, err)
		}
		rb, err := decodeBatch(b)
		if err != nil {
			return fmt.Errorf("batch at position %d of %s: %w", pos, s.path(), err)
		}
		pass.stats.BytesRead += n
		pass.c.throttle.wait(int(n), pass.l.cleanAbort, pass.c.stop)
		if err := fn(b, &rb); err != nil {
			return err
		}
		pos += n
	}
	return nil
}

func (pass *cleaningPass) readError(s *segment, pos int64, err error) error {
	if errors.Is(err, os.ErrClosed) {
		return errCleaningAborted // retention deleted the segment
	}
	return fmt.Errorf("read %s at position %d: %w", s.path(), pos, err)
}

// eachRecord calls fn with every record of a data batch: its bytes
// (length prefix included), its fields and its offset.
func (pass *cleaningPass) eachRecord(rb *kmsg.RecordBatch, fn func(rec []byte, r recordView, offset int64) error) error {
	recs := rb.Records
	if codec := int(rb.Attributes & 0x07); codec != codecNone {
		buf, err := decompress(codec, recs)
		if err != nil {
			return fmt.Errorf("%w: batch at offset %d does not decompress: %v", ErrCorruptBatch, rb.FirstOffset, err)
		}
		defer putDecompressBuffer(buf)
		recs = buf.Bytes()
	}
	for len(recs) > 0 {
		body, rest, err := nextRecord(recs)
		var r recordView
		if err == nil {
			r, err = parseRecord(body)
		}
		if err != nil {
			return fmt.Errorf("%w: batch at offset %d: %v", ErrCorruptBatch, rb.FirstOffset, err)
		}
		if err := fn(recs[:len(recs)-len(rest)], r, rb.FirstOffset+int64(r.offsetDelta)); err != nil {
			return err
		}
		recs = rest
	}
	return nil
}
