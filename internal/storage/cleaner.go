package storage

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/maphash"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Log compaction (cleanup.policy=compact), as Kafka's log cleaner does it.
//
// A compacted partition is a clean section, already compacted, followed by
// a dirty section written since; the active segment and what follows the
// last stable offset, or is younger than min.compaction.lag.ms, cannot be
// cleaned yet. A pass (Log.Clean) reads the dirty section into a map of key
// hashes to the highest offset of each key, then rewrites the closed
// segments from the log start up to where the map reaches, keeping a
// record only when no later record has its key. Offsets never change: a
// rewritten batch keeps its base offset and its last offset delta, so the
// next batch's offsets stay continuous, and a batch that keeps nothing
// disappears, leaving a gap that consumers skip.
//
// Tombstones (records with a null value) and transaction markers stay
// delete.retention.ms after the pass that made them clean, so that a
// consumer reading from the start sees every deletion; a marker goes only
// once its transaction has no records left. Records of aborted transactions
// go at the first pass; records without a key go too (a topic may have been
// switched from delete to compact).
//
// Segments are rewritten in groups that fit segment.bytes, so repeated
// passes merge small segments. Each group is written beside the old files
// as NNN.log.cleaned (and its indexes as NNN.index.cleaned and
// NNN.timeindex.cleaned), fsynced, then committed by one rename to
// NNN-MMM.swap, which names the range of offsets it replaces. Recovery
// (recoverCleaning) deletes uncommitted .cleaned files and completes a
// committed swap: the old segments of the range are deleted and the swap
// becomes NNN.log. A kill -9 at any moment therefore leaves either the old
// segments or the new one, never neither. Readers holding chunks of the old
// files get ErrSegmentGone and fetch again.
//
// The pass's progress and the tombstones' ages are kept in
// cleaner-checkpoint.json. Losing it costs work, never records: the whole
// log is dirty again and every tombstone starts its delete.retention.ms anew.

const (
	cleanerCheckpointFile = "cleaner-checkpoint.json"
	cleanedSuffix         = ".cleaned"
	swapSuffix            = ".swap"

	// mapSlotBytes is the memory one key takes in the offset map.
	mapSlotBytes = 24
	// mapLoadFactor is how full the open-addressing map is allowed to get.
	mapLoadFactor = 0.75
)

// CleaningStats describe one cleaning pass over a partition.
type CleaningStats struct {
	Start             time.Time `json:"start"`
	DurationMs        int64     `json:"duration_ms"`
	FirstDirty        int64     `json:"first_dirty_offset"` // the dirty section read was [FirstDirty, End)
	End               int64     `json:"end_offset"`
	Partial           bool      `json:"partial,omitempty"` // the key map was full: the rest of the dirty section waits for the next pass
	BytesRead         int64     `json:"bytes_read"`
	BytesWritten      int64     `json:"bytes_written"`
	RecordsRead       int64     `json:"records_read"`
	RecordsKept       int64     `json:"records_kept"`
	TombstonesRemoved int64     `json:"tombstones_removed"`
	SegmentsRewritten int       `json:"segments_rewritten"`
	Error             string    `json:"error,omitempty"`
}

// CleanerStatus is a compacted partition as the cleaner sees it.
type CleanerStatus struct {
	FirstDirtyOffset int64          `json:"first_dirty_offset"`
	CleanBytes       int64          `json:"clean_bytes"`
	DirtyBytes       int64          `json:"dirty_bytes"` // in the dirty section and cleanable now
	DirtyRatio       float64        `json:"dirty_ratio"` // DirtyBytes / (CleanBytes + DirtyBytes)
	Due              bool           `json:"due,omitempty"`
	Cleanable        bool           `json:"cleanable"`
	LastCleaning     *CleaningStats `json:"last_cleaning,omitempty"`
}

// tombstoneRange is a range of offsets whose tombstones and markers a pass
// found in its dirty section and kept: they may go delete.retention.ms
// after CleanedAt. Tombstones outside every range are past their time.
type tombstoneRange struct {
	From      int64 `json:"from"`
	To        int64 `json:"to"`
	CleanedAt int64 `json:"cleaned_at_ms"`
}

type cleanerCheckpoint struct {
	FirstDirty int64            `json:"first_dirty_offset"`
	Tombstones []tombstoneRange `json:"tombstone_ranges,omitempty"`
	Last       *CleaningStats   `json:"last_cleaning,omitempty"`
}

// cleanState is the Log's part of compaction, guarded by the Log's lock.
type cleanState struct {
	firstDirty int64
	tombstones []tombstoneRange
	last       *CleaningStats
	dirtyTs    int64 // first timestamp at firstDirty, for max.compaction.lag.ms; -1 unknown
	dirtyTsAt  int64 // the firstDirty dirtyTs was read for
}

func (l *Log) loadCleanState() {
	l.clean = cleanState{firstDirty: -1, dirtyTsAt: -1}
	b, err := os.ReadFile(filepath.Join(l.dir, cleanerCheckpointFile))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	var cp cleanerCheckpoint
	if err == nil {
		err = json.Unmarshal(b, &cp)
	}
	if err != nil {
		l.logger.Warn("cleaner checkpoint unreadable; the whole log is compacted again and tombstones are kept another delete.retention.ms", "file", cleanerCheckpointFile, "err", err)
		return
	}
	l.clean.firstDirty, l.clean.tombstones, l.clean.last = cp.FirstDirty, cp.Tombstones, cp.Last
}

func (l *Log) saveCleanState() error {
	l.mu.RLock()
	cp := cleanerCheckpoint{FirstDirty: l.clean.firstDirty, Tombstones: l.clean.tombstones, Last: l.clean.last}
	l.mu.RUnlock()
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(l.dir, cleanerCheckpointFile), b); err != nil {
		return fmt.Errorf("save cleaner checkpoint: %w", err)
	}
	return nil
}

// firstDirtyLocked is where the dirty section starts: the checkpoint,
// moved to the log start when retention or DeleteRecords passed it.
func (l *Log) firstDirtyLocked() int64 {
	return min(max(l.clean.firstDirty, l.start, l.segments[0].base), l.active().base)
}

// firstUncleanableLocked is the first offset a pass may not clean: the
// active segment, the last stable offset (so every transaction seen is
// decided), and the first segment with records younger than
// min.compaction.lag.ms.
func (l *Log) firstUncleanableLocked(firstDirty, nowMs int64) int64 {
	u := min(l.active().base, l.lastStableLocked())
	if lag := l.cfg.MinCompactionLagMs; lag > 0 {
		for _, s := range l.segments[:len(l.segments)-1] {
			if s.next > firstDirty && s.size > 0 && s.newestTimestamp() > nowMs-lag {
				u = min(u, max(s.base, firstDirty))
				break
			}
		}
	}
	return max(u, firstDirty)
}

// CleanerStatus reports the partition's dirty ratio, whether a pass is
// due, and the last pass.
func (l *Log) CleanerStatus() CleanerStatus {
	l.mu.Lock() // the first dirty timestamp is cached
	defer l.mu.Unlock()
	if l.closed {
		return CleanerStatus{}
	}
	nowMs := l.now().UnixMilli()
	first := l.firstDirtyLocked()
	unclean := l.firstUncleanableLocked(first, nowMs)
	st := CleanerStatus{FirstDirtyOffset: first, LastCleaning: l.clean.last}
	for _, s := range l.segments[:len(l.segments)-1] {
		switch {
		case s.next <= first:
			st.CleanBytes += s.size
		case s.base < unclean && first < unclean:
			st.DirtyBytes += s.size
		}
	}
	if total := st.CleanBytes + st.DirtyBytes; total > 0 {
		st.DirtyRatio = float64(st.DirtyBytes) / float64(total)
	}
	if st.DirtyBytes > 0 && l.cfg.MaxCompactionLagMs < math.MaxInt64 {
		if ts := l.dirtyTimestampLocked(first); ts >= 0 && nowMs-ts > l.cfg.MaxCompactionLagMs {
			st.Due = true
		}
	}
	for _, r := range l.clean.tombstones {
		if r.CleanedAt+l.cfg.DeleteRetentionMs <= nowMs && r.To > l.start {
			st.Due = true
		}
	}
	st.Cleanable = l.cfg.Compact && (st.Due || (st.DirtyBytes > 0 && st.DirtyRatio >= l.cfg.MinCleanableRatio))
	return st
}

// dirtyTimestampLocked is the first timestamp of the batch holding the
// first dirty offset (Kafka measures max.compaction.lag.ms from it).
func (l *Log) dirtyTimestampLocked(first int64) int64 {
	if l.clean.dirtyTsAt == first {
		return l.clean.dirtyTs
	}
	s := l.segments[l.segmentFor(first)]
	ts := int64(-1)
	if ref, found, err := s.locate(first, s.size); err == nil && found {
		var b [8]byte
		if _, err := s.log.ReadAt(b[:], ref.pos+posFirstTimestamp); err == nil {
			ts = int64(binary.BigEndian.Uint64(b[:]))
		}
	}
	l.clean.dirtyTs, l.clean.dirtyTsAt = ts, first
	return ts
}

// posFirstTimestamp is where a batch header holds its first timestamp.
const posFirstTimestamp = 27

// ---------------------------------------------------------------------------
// The cleaner's tools: one Cleaner per cleaning thread.

// Throttle bounds the bytes per second the cleaners read and write
// together (log.cleaner.io.max.bytes.per.second).
type Throttle struct {
	rate float64 // bytes per second; <= 0 or +Inf for no limit
	mu   sync.Mutex
	due  time.Time // when the bytes counted so far may have been moved
}

// NewThrottle limits to rate bytes per second (no limit when rate is not
// finite and positive).
func NewThrottle(rate float64) *Throttle { return &Throttle{rate: rate} }

// wait blocks until n more bytes fit the rate, or abort is closed.
func (t *Throttle) wait(n int, abort, stop <-chan struct{}) {
	if t == nil || t.rate <= 0 || t.rate >= math.MaxFloat64/2 {
		return
	}
	t.mu.Lock()
	now := time.Now()
	if t.due.Before(now) {
		t.due = now
	}
	t.due = t.due.Add(time.Duration(float64(n) / t.rate * float64(time.Second)))
	sleep := time.Until(t.due) - 50*time.Millisecond // a small burst is fine
	t.mu.Unlock()
	if sleep <= 0 {
		return
	}
	timer := time.NewTimer(sleep)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-abort:
	case <-stop:
	}
}

// Cleaner holds what one cleaning thread needs: its share of the dedupe
// buffer, buffers, and the compressors for re-encoding batches.
type Cleaner struct {
	mapBytes int64
	throttle *Throttle
	stop     <-chan struct{}

	kept        []byte // records kept from the batch being filtered
	out         []byte // the rebuilt batch
	compressBuf bytes.Buffer
	compressors map[int]kgo.Compressor
}

// NewCleaner makes a cleaner whose offset map may use up to mapBytes (its
// share of log.cleaner.dedupe.buffer.size). Closing stop aborts a pass.
func NewCleaner(mapBytes int64, throttle *Throttle, stop <-chan struct{}) *Cleaner {
	return &Cleaner{mapBytes: mapBytes, throttle: throttle, stop: stop, compressors: map[int]kgo.Compressor{}}
}

// errCleaningAborted stops a pass that the log's close, the broker's
// shutdown, or retention deleting its segments overtook. Nothing of the
// log changed that is not complete.
var errCleaningAborted = errors.New("cleaning aborted")

// offsetMap maps 128-bit key hashes to the highest offset of each key, in
// memory fixed when it is made: once it holds its limit of keys, put
// refuses new ones. Two keys with the same 128-bit hash would be taken for
// one; the odds of that among billions of keys are below 1 in 10^18.
type offsetMap struct {
	seed1, seed2 maphash.Seed
	slots        []mapSlot
	count        int
	limit        int
}

type mapSlot struct {
	h1, h2 uint64
	offset int64 // offset+1: 0 marks an empty slot
}

// newOffsetMap makes a map of at most maxBytes, and no larger than maxKeys
// need.
func newOffsetMap(maxBytes int64, maxKeys int64) *offsetMap {
	n := max(min(maxBytes/mapSlotBytes, int64(float64(maxKeys)/mapLoadFactor)+1), 2)
	return &offsetMap{seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed(), slots: make([]mapSlot, n), limit: max(int(float64(n)*mapLoadFactor), 1)}
}

func (m *offsetMap) hash(key []byte) (uint64, uint64) {
	return maphash.Bytes(m.seed1, key), maphash.Bytes(m.seed2, key)
}

// put records offset for key; false when the key is new and the map full.
func (m *offsetMap) put(key []byte, offset int64) bool {
	h1, h2 := m.hash(key)
	n := uint64(len(m.slots))
	for i := h1 % n; ; i = (i + 1) % n {
		s := &m.slots[i]
		if s.offset == 0 {
			if m.count >= m.limit {
				return false
			}
			*s = mapSlot{h1: h1, h2: h2, offset: offset + 1}
			m.count++
			return true
		}
		if s.h1 == h1 && s.h2 == h2 {
			s.offset = max(s.offset, offset+1)
			return true
		}
	}
}

// get returns the highest offset of key, or -1.
func (m *offsetMap) get(key []byte) int64 {
	h1, h2 := m.hash(key)
	n := uint64(len(m.slots))
	for i := h1 % n; ; i = (i + 1) % n {
		s := &m.slots[i]
		if s.offset == 0 {
			return -1
		}
		if s.h1 == h1 && s.h2 == h2 {
			return s.offset - 1
		}
	}
}

// ---------------------------------------------------------------------------
// A pass.

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
		comp, err := c.compressor(codec)
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

func (c *Cleaner) compressor(codec int) (kgo.Compressor, error) {
	if comp, ok := c.compressors[codec]; ok {
		return comp, nil
	}
	var cc kgo.CompressionCodec
	switch codec {
	case codecGzip:
		cc = kgo.GzipCompression()
	case codecSnappy:
		cc = kgo.SnappyCompression()
	case codecLz4:
		cc = kgo.Lz4Compression()
	case codecZstd:
		cc = kgo.ZstdCompression()
	default:
		return nil, fmt.Errorf("%w: codec %d", ErrUnsupportedCompression, codec)
	}
	comp, err := kgo.DefaultCompressor(cc)
	if err != nil {
		return nil, err
	}
	c.compressors[codec] = comp
	return comp, nil
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

// ---------------------------------------------------------------------------
// Swapping cleaned segments in, and recovery.

func swapName(dir string, base, next int64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d-%020d%s", base, next, swapSuffix))
}

// swapIn replaces the segments of g, which must still be in the log, by
// out, whose files are written and durable under their .cleaned names. The
// rename to .swap commits the change; what follows it, recovery can finish.
func (l *Log) swapIn(g []*segment, out *segment) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errCleaningAborted
	}
	i := sort.Search(len(l.segments), func(i int) bool { return l.segments[i].base >= g[0].base })
	if i+len(g) > len(l.segments)-1 {
		return errCleaningAborted
	}
	for k, s := range g {
		if l.segments[i+k] != s {
			return errCleaningAborted // retention or DeleteRecords deleted some
		}
	}
	base, next := out.base, out.next
	swap := swapName(l.dir, base, next)
	if err := os.Rename(segmentName(l.dir, base, logSuffix)+cleanedSuffix, swap); err != nil {
		return fmt.Errorf("commit cleaned segment: %w", err)
	}
	sync := l.cfg.SyncSealedSegments
	if sync {
		syncDir(l.dir)
	}
	if crashAt("committed") {
		return errSimulatedCrash
	}
	bases := make([]int64, len(g))
	for k, s := range g {
		bases[k] = s.base
	}
	err := finishSwap(l.dir, base, bases, swap)
	if errors.Is(err, errSimulatedCrash) {
		return err
	}
	for _, s := range g {
		s.close()
	}
	// The renames after the commit need no fsync of their own: lost in a
	// crash, recovery does them again from the swap file.
	l.segments = append(append(append([]*segment(nil), l.segments[:i]...), out), l.segments[i+len(g):]...)
	if err != nil {
		// The swap is committed: the next start completes it. Until then
		// the files do not match the log, so it takes no more changes.
		l.readOnly = fmt.Errorf("partition %s is read-only: a cleaning could not finish replacing its segment files (%v); restart the broker, which completes it", filepath.Base(l.dir), err)
		l.logger.Error("cleaning could not finish swapping segment files; the partition takes no writes until the broker restarts", "err", err)
	}
	return nil
}

// finishSwap completes a committed swap: it deletes the segments it
// replaces (bases, data files first), puts the cleaned index files in
// place, and renames the swap file to the segment's data file.
func finishSwap(dir string, base int64, bases []int64, swap string) error {
	for _, b := range bases {
		if err := os.Remove(segmentName(dir, b, logSuffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if b != base {
			os.Remove(segmentName(dir, b, indexSuffix))
			os.Remove(segmentName(dir, b, timeIndexSuffix))
		}
		if crashAt("removed") {
			return errSimulatedCrash
		}
	}
	for _, suf := range []string{indexSuffix, timeIndexSuffix} {
		name := segmentName(dir, base, suf)
		if err := os.Rename(name+cleanedSuffix, name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if crashAt("indexed") {
			return errSimulatedCrash
		}
	}
	return os.Rename(swap, segmentName(dir, base, logSuffix))
}

// recoverCleaning, run before the segments are listed at open, completes
// swaps that a crash interrupted after their commit and deletes the files
// of cleanings that had not committed.
func recoverCleaning(dir string, logger *slog.Logger) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var logs []int64
	for _, e := range entries {
		if stem, ok := strings.CutSuffix(e.Name(), logSuffix); ok {
			if b, err := strconv.ParseInt(stem, 10, 64); err == nil {
				logs = append(logs, b)
			}
		}
	}
	completed := false
	for _, e := range entries {
		stem, ok := strings.CutSuffix(e.Name(), swapSuffix)
		if !ok {
			continue
		}
		from, to, ok := strings.Cut(stem, "-")
		base, err1 := strconv.ParseInt(from, 10, 64)
		next, err2 := strconv.ParseInt(to, 10, 64)
		if !ok || err1 != nil || err2 != nil || next <= base {
			continue
		}
		var replaced []int64
		for _, b := range logs {
			if b >= base && b < next {
				replaced = append(replaced, b)
			}
		}
		if err := finishSwap(dir, base, replaced, filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("complete the cleaning of offsets %d to %d that a crash interrupted: %w", base, next-1, err)
		}
		logger.Warn("completed a cleaning that a crash interrupted", "offsets_from", base, "offsets_to", next-1, "old_segments_removed", len(replaced))
		completed = true
	}
	if completed {
		syncDir(dir)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), cleanedSuffix) {
			os.Remove(filepath.Join(dir, e.Name())) // already renamed, if its swap was completed
		}
	}
	return nil
}
