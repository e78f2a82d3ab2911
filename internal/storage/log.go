// Package storage is creek's durable partition log: append-only segment
// files holding record batches exactly as producers sent them, sparse offset
// and time indexes, size- and time-based retention, log compaction
// (cleaner.go), group-committed fsync, and crash recovery that truncates a
// torn tail and completes an interrupted compaction. It knows the record batch
// format (it is the storage format) but nothing of the Kafka wire protocol.
package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config is a partition's effective log configuration, resolved by the
// caller from topic and broker settings (Kafka names in comments).
type Config struct {
	SegmentBytes          int64 // segment.bytes
	SegmentMs             int64 // segment.ms
	RetentionBytes        int64 // retention.bytes, -1 for no limit
	RetentionMs           int64 // retention.ms, -1 for no limit
	IndexIntervalBytes    int64 // index.interval.bytes
	MaxMessageBytes       int64 // max.message.bytes
	LogAppendTime         bool  // message.timestamp.type=LogAppendTime
	ProducerExpirationMs  int64 // producer.id.expiration.ms
	SyncSealedSegments    bool  // fsync a segment when it is rolled (off with fsync=never)
	PartitionLeaderEpoch  int32 // written into every stored batch
	RetentionCheckOnRolls bool  // enforce retention right after a roll

	// cleanup.policy: Delete lets retention.bytes and retention.ms delete
	// old segments, Compact has the cleaner keep the latest record per key.
	Delete             bool
	Compact            bool
	MinCleanableRatio  float64 // min.cleanable.dirty.ratio
	MinCompactionLagMs int64   // min.compaction.lag.ms
	MaxCompactionLagMs int64   // max.compaction.lag.ms
	DeleteRetentionMs  int64   // delete.retention.ms

	// compression.type: "producer" (or "") stores batches as producers
	// sent them; a codec has each batch recompressed in it at
	// CompressionLevel (0: the codec's default).
	Compression      string
	CompressionLevel int
	// message.timestamp.before.max.ms and message.timestamp.after.max.ms:
	// the bounds of a CreateTime record's timestamp around the broker's clock.
	TimestampBeforeMaxMs int64
	TimestampAfterMaxMs  int64
}

// DefaultConfig holds Kafka's defaults, with creek's smaller segments.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:          128 << 20,
		SegmentMs:             7 * 24 * time.Hour.Milliseconds(),
		RetentionBytes:        1 << 30,
		RetentionMs:           7 * 24 * time.Hour.Milliseconds(),
		IndexIntervalBytes:    4096,
		MaxMessageBytes:       1048588,
		ProducerExpirationMs:  24 * time.Hour.Milliseconds(),
		SyncSealedSegments:    true,
		RetentionCheckOnRolls: true,
		Delete:                true,
		MinCleanableRatio:     0.5,
		MaxCompactionLagMs:    math.MaxInt64,
		DeleteRetentionMs:     24 * time.Hour.Milliseconds(),
		Compression:           "producer",
		TimestampBeforeMaxMs:  math.MaxInt64,
		TimestampAfterMaxMs:   time.Hour.Milliseconds(),
	}
}

// rollMs is the age at which the active segment is closed: segment.ms, or
// max.compaction.lag.ms when that is shorter on a compacted topic (records
// in the active segment cannot be compacted).
func (c *Config) rollMs() int64 {
	if c.Compact && c.MaxCompactionLagMs < c.SegmentMs {
		return c.MaxCompactionLagMs
	}
	return c.SegmentMs
}

const (
	logStartOffsetFile = "log-start-offset"
	cleanShutdownFile  = "clean-shutdown"
)

// Log is one partition: an ordered list of segments, the last one active.
type Log struct {
	dir    string
	logger *slog.Logger
	now    func() time.Time
	onSync func(time.Duration)

	mu        sync.RWMutex
	cfg       Config
	segments  []*segment
	start     int64 // log start offset: first readable offset
	producers producerState
	// txnsSeen is set once a transactional batch was recorded (or loaded
	// open): until then no open transaction can hold the last stable
	// offset back, and reads skip looking through the producers.
	txnsSeen bool
	aborted  []AbortedTxn    // aborted transactions, by marker offset
	watchers []chan struct{} // signalled at every append and at close (WatchAppends)
	closed   bool

	// tailNotCut is set when a failed append left bytes at the end of the
	// active segment that could not be cut off; the cut is retried before
	// the next write, which waits for it.
	tailNotCut error
	// readOnly is set when an fsync failed: the kernel may have dropped
	// what it could not write, so the partition takes no more writes until
	// a restart has checked the log.
	readOnly error

	syncMu   sync.Mutex
	syncCond *sync.Cond
	syncing  bool
	synced   int64 // every offset below is on stable storage

	clean      cleanState    // compaction progress (cleaner.go), under mu
	cleanMu    sync.Mutex    // held by a cleaning pass: one at a time
	cleaning   atomic.Bool   // a pass is under way: retention waits for it
	cleanAbort chan struct{} // closed when the log closes, to stop a pass
}

// Options are what a Log needs from its owner besides the config.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time    // for tests; time.Now by default
	OnSync func(time.Duration) // told how long each fsync of the active segment took; may be nil
}

// Open opens (creating if needed) the partition log in dir and recovers it:
// after an unclean stop the active segment is checked batch by batch and a
// torn tail truncated; a sealed segment that fails its header check is
// renamed *.corrupt and reported, and the rest of the log keeps serving.
func Open(dir string, cfg Config, opts Options) (*Log, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create partition dir: %w", err)
	}
	l := &Log{dir: dir, cfg: cfg, logger: opts.Logger.With("partition", filepath.Base(dir)), now: opts.Now, onSync: opts.OnSync, cleanAbort: make(chan struct{})}
	l.syncCond = sync.NewCond(&l.syncMu)
	if err := l.load(); err != nil {
		for _, s := range l.segments {
			s.close()
		}
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	return l, nil
}

func (l *Log) load() error {
	if err := recoverCleaning(l.dir, l.logger); err != nil {
		return err
	}
	bases, err := listSegments(l.dir)
	if err != nil {
		return err
	}
	l.loadCleanState()
	clean := fileExists(filepath.Join(l.dir, cleanShutdownFile))
	l.loadAborted()
	for i, base := range bases[:max(len(bases)-1, 0)] {
		s, err := openSealedSegment(l.dir, base, bases[i+1])
		if err != nil {
			l.setAside(base, err)
			continue
		}
		l.segments = append(l.segments, s)
	}
	if len(bases) == 0 {
		s, err := createSegment(l.dir, 0, l.now())
		if err != nil {
			return err
		}
		l.segments = append(l.segments, s)
		l.producers = producerState{}
		if l.cfg.SyncSealedSegments { // make the new directory itself durable
			syncDir(l.dir)
			syncDir(filepath.Dir(l.dir))
		}
	} else if err := l.openActive(bases[len(bases)-1], clean); err != nil {
		return err
	}
	l.start = l.segments[0].base
	if b, err := os.ReadFile(filepath.Join(l.dir, logStartOffsetFile)); err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && v > l.start {
			l.start = min(v, l.active().next)
		}
	}
	l.synced = l.active().next
	// From here on a crash is unclean until the next Close.
	if err := os.Remove(filepath.Join(l.dir, cleanShutdownFile)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// openActive opens the last segment. After a clean shutdown its index and
// the producer snapshot are trusted and only the batches after the last
// index entry are checked; otherwise every batch is re-read and checked.
func (l *Log) openActive(base int64, clean bool) error {
	s := &segment{dir: l.dir, base: base, next: base, maxTs: -1, maxTsBase: base, indexLoaded: true}
	var err error
	if s.log, err = os.OpenFile(segmentName(l.dir, base, logSuffix), os.O_RDWR, 0); err != nil {
		return err
	}
	st, err := s.log.Stat()
	if err != nil {
		s.log.Close()
		return err
	}
	s.size, s.created = st.Size(), st.ModTime()
	l.segments = append(l.segments, s)

	ps, snapOffset, err := loadProducerState(l.dir)
	if err != nil {
		l.logger.Warn("producer state snapshot unreadable; idempotent producers start afresh", "err", err)
	}
	l.producers = ps
	for _, e := range ps {
		l.txnsSeen = l.txnsSeen || e.OpenTxn
	}
	if clean && snapOffset >= 0 {
		if err := l.trustActive(s); err == nil {
			return nil
		} else if !errors.Is(err, errNotAsClosed) {
			return err
		}
		l.logger.Warn("the log does not end as it was closed; checking every batch of the active segment", "file", s.log.Name())
	}
	return l.recoverActive(s, snapOffset)
}

// errNotAsClosed says that a log marked as cleanly closed does not end the
// way its index says it should.
var errNotAsClosed = errors.New("log does not end as it was closed")

// trustActive rebuilds the active segment's in-memory state from its index
// files, then checks every batch after the last index entry (length, CRC,
// offsets in sequence) up to the end of the file: that is all a clean start
// reads, and it is what a failed or torn write would have damaged.
func (l *Log) trustActive(s *segment) error {
	fileSize := s.size
	s.indexLoaded = false
	s.next = math.MaxInt64 // keep every time entry; the real value is set below
	s.loadIndex()
	from, expect := int64(0), s.base
	if n := len(s.offsets); n > 0 {
		from, expect = int64(s.offsets[n-1].pos), s.base+int64(s.offsets[n-1].rel)
	}
	for _, t := range s.times {
		if t.ts > s.maxTs {
			s.maxTs, s.maxTsBase = t.ts, s.base+int64(t.rel)
		}
	}
	indexed := len(s.offsets) > 0 // the batch at from is in the index already
	s.size, s.next = from, expect
	torn, err := s.walkBatches(fileSize, func(rb *kmsg.RecordBatch, pos, n int64) error {
		if indexed {
			indexed = false
			s.next = rb.FirstOffset + int64(rb.LastOffsetDelta) + 1
			if rb.MaxTimestamp > s.maxTs {
				s.maxTs, s.maxTsBase = rb.MaxTimestamp, rb.FirstOffset
			}
			s.bytesSinceIndex = n
			return nil
		}
		s.noteBatch(rb, pos, n, l.cfg.IndexIntervalBytes)
		return nil
	})
	if err != nil {
		return err
	}
	if torn != nil || indexed {
		// Start again from nothing: recoverActive resets what was loaded.
		s.size, s.next, s.offsets, s.times = fileSize, s.base, nil, nil
		s.maxTs, s.maxTsBase, s.bytesSinceIndex = -1, s.base, 0
		return fmt.Errorf("%w: %v", errNotAsClosed, torn)
	}
	return nil
}

// walkBatches reads the batches of the segment from s.size on, checking
// each one's length, CRC and first offset (which must be s.next), and calls
// fn for each good one after advancing s.size past it; fn updates s.next.
// It stops at the end of the file (fileSize) or at the first batch that
// fails, which it returns as torn. err is a read error or fn's error.
func (s *segment) walkBatches(fileSize int64, fn func(rb *kmsg.RecordBatch, pos, n int64) error) (torn, err error) {
	var buf []byte
	for s.size < fileSize {
		pos := s.size
		var hdr [batchLengthEnd]byte
		if fileSize-pos < batchHeaderSize {
			return fmt.Errorf("%d trailing bytes are shorter than a batch header", fileSize-pos), nil
		}
		if _, err := s.log.ReadAt(hdr[:], pos); err != nil {
			return nil, err
		}
		n := int64(batchLen(hdr[:]))
		if n < batchHeaderSize || pos+n > fileSize {
			return fmt.Errorf("batch of %d bytes runs past the end of the file", n), nil
		}
		if int64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		b := buf[:n]
		if _, err := s.log.ReadAt(b, pos); err != nil {
			return nil, err
		}
		rb, err := decodeBatch(b)
		if err == nil && rb.FirstOffset != s.next {
			err = fmt.Errorf("batch has offset %d, expected %d", rb.FirstOffset, s.next)
		}
		if err != nil {
			return err, nil
		}
		s.size += n
		if err := fn(&rb, pos, n); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// recoverActive reads every batch of the active segment, checking lengths
// and CRCs, truncates the file at the first batch that fails (a write torn by
// a crash), and rebuilds the in-memory indexes and the producer state.
func (l *Log) recoverActive(s *segment, snapOffset int64) error {
	fileSize := s.size
	s.size, s.next = 0, s.base
	abortedBefore := len(l.aborted)
	tornErr, err := s.walkBatches(fileSize, func(rb *kmsg.RecordBatch, pos, n int64) error {
		s.noteBatch(rb, pos, n, l.cfg.IndexIntervalBytes)
		if rb.FirstOffset < snapOffset {
			return nil
		}
		if isControl(rb) {
			return l.noteMarker(rb, rb.MaxTimestamp, false)
		}
		l.recordProducerBatch(rb, rb.MaxTimestamp)
		return nil
	})
	if err != nil {
		return err
	}
	if tornErr != nil {
		l.logger.Warn("truncating torn write at the end of the log",
			"file", s.log.Name(), "position", s.size, "dropped_bytes", fileSize-s.size, "next_offset", s.next, "reason", tornErr)
		if err := s.log.Truncate(s.size); err != nil {
			return fmt.Errorf("truncate torn write: %w", err)
		}
	}
	if len(l.aborted) != abortedBefore {
		if err := l.saveAborted(); err != nil {
			return err
		}
	}
	if snapOffset > s.next {
		l.logger.Warn("producer state snapshot is ahead of the recovered log; idempotent producers start afresh")
		l.producers = producerState{}
	}
	return nil
}

// setAside renames a damaged sealed segment out of the way and says so; the
// offsets it held become a gap that readers skip.
func (l *Log) setAside(base int64, cause error) {
	name := segmentName(l.dir, base, logSuffix)
	l.logger.Error("segment is corrupt; moved aside, its offsets are skipped", "file", name, "moved_to", name+corruptSuffix, "err", cause)
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		p := segmentName(l.dir, base, suf)
		if fileExists(p) {
			if err := os.Rename(p, p+corruptSuffix); err != nil {
				l.logger.Error("could not move corrupt segment aside", "file", p, "err", err)
			}
		}
	}
}

// listSegments returns the base offsets of the *.log files in dir, sorted,
// and removes leftovers of interrupted writes.
func listSegments(dir string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var bases []int64
	logs := map[string]bool{}
	var indexes []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			os.Remove(filepath.Join(dir, name))
			continue
		}
		if stem, ok := strings.CutSuffix(name, indexSuffix); ok {
			indexes = append(indexes, stem)
			continue
		}
		if stem, ok := strings.CutSuffix(name, timeIndexSuffix); ok {
			indexes = append(indexes, stem)
			continue
		}
		stem, ok := strings.CutSuffix(name, logSuffix)
		if !ok {
			continue
		}
		base, err := strconv.ParseInt(stem, 10, 64)
		if err != nil || base < 0 {
			continue
		}
		logs[stem] = true
		bases = append(bases, base)
	}
	// Index files whose segment was deleted (by a removal cut short).
	for _, stem := range indexes {
		if !logs[stem] {
			os.Remove(filepath.Join(dir, stem+indexSuffix))
			os.Remove(filepath.Join(dir, stem+timeIndexSuffix))
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	return bases, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func (l *Log) active() *segment { return l.segments[len(l.segments)-1] }

// SetConfig applies a new configuration (after a topic config change).
func (l *Log) SetConfig(cfg Config) {
	l.mu.Lock()
	l.cfg = cfg
	l.mu.Unlock()
}

// Compacted reports whether cleanup.policy includes compact.
func (l *Log) Compacted() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cfg.Compact
}

// Offsets returns the log start offset and the log end offset (the next
// offset to be written, which is also the high watermark on one node).
func (l *Log) Offsets() (start, end int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.start, l.active().next
}

// Size is the number of bytes in the partition's segment files.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.segments {
		n += s.size
	}
	return n
}

// WatchAppends has wake signalled at each of the log's appends, and when it
// closes, until UnwatchAppends; give wake room for one value, as signals do
// not wait. A long poll of many partitions watches them all with one
// channel: a tenth of the cost of selecting over a channel per partition.
func (l *Log) WatchAppends(wake chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		signal(wake)
		return
	}
	// Once per channel: a request may name a partition many times.
	if slices.Contains(l.watchers, wake) {
		return
	}
	l.watchers = append(l.watchers, wake)
}

// UnwatchAppends ends a WatchAppends.
func (l *Log) UnwatchAppends(wake chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, w := range l.watchers {
		if w == wake {
			last := len(l.watchers) - 1
			l.watchers[i], l.watchers[last] = l.watchers[last], nil
			l.watchers = l.watchers[:last]
			return
		}
	}
}

// notifyAppended wakes the long polls waiting on the log; l.mu is held.
func (l *Log) notifyAppended() {
	for _, w := range l.watchers {
		signal(w)
	}
}

func signal(wake chan struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}

// Dir is the partition's directory.
func (l *Log) Dir() string { return l.dir }

// roll seals the active segment and starts a new one at the log end
// offset. It changes nothing unless it completes: the old segment's data and
// index files are durable and the producer state is snapshotted before the
// new segment exists.
func (l *Log) roll() error {
	if err := l.writable(); err != nil {
		return err
	}
	old := l.active()
	sync := l.cfg.SyncSealedSegments
	if sync {
		if err := old.log.Sync(); err != nil {
			return l.syncFailed(err)
		}
	}
	if err := old.writeIndexes(sync); err != nil {
		return fmt.Errorf("seal segment: %w", err)
	}
	if err := l.producers.save(l.dir, old.next); err != nil {
		return fmt.Errorf("snapshot producer state: %w", err)
	}
	s, err := createSegment(l.dir, old.next, l.now())
	if err != nil {
		return err
	}
	l.segments = append(l.segments, s)
	if sync {
		syncDir(l.dir)
		l.markSynced(old.next)
	}
	return nil
}

// writable reports whether the partition may be written, first cutting off
// what an earlier failed append left behind, if that is still pending.
func (l *Log) writable() error {
	if l.readOnly != nil {
		return l.readOnly
	}
	if l.tailNotCut == nil {
		return nil
	}
	a := l.active()
	if err := a.log.Truncate(a.size); err != nil {
		return fmt.Errorf("partition %s takes no writes: a failed write left bytes at the end of its active segment that cannot be cut off (%v); free space on the disk or fix it", filepath.Base(l.dir), err)
	}
	l.logger.Info("cut off the partly written batch; the partition takes writes again", "file", a.log.Name())
	l.tailNotCut = nil
	return nil
}

// syncFailed makes the partition read-only after a failed fsync and returns
// the error to answer with. l.mu is held.
func (l *Log) syncFailed(err error) error {
	if l.readOnly == nil {
		l.readOnly = fmt.Errorf("partition %s is read-only since an fsync failed (%v): restart the broker once the disk is healthy; the restart checks the log", filepath.Base(l.dir), err)
		l.logger.Error("fsync failed; the partition takes no more writes until the broker restarts", "err", err)
	}
	return l.readOnly
}

// stopCleaning stops a cleaning pass under way and keeps others from
// starting; it returns with l.cleanMu held.
func (l *Log) stopCleaning() {
	l.mu.Lock()
	select {
	case <-l.cleanAbort:
	default:
		close(l.cleanAbort)
	}
	l.mu.Unlock()
	l.cleanMu.Lock()
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Close flushes and closes the log. A clean close, which writes the active
// segment's index and the producer state, lets the next Open skip most of
// the recovery scan.
func (l *Log) Close() error {
	l.stopCleaning()
	defer l.cleanMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	l.notifyAppended()
	a := l.active()
	errs := []error{l.writable()}
	if errs[0] == nil {
		errs = append(errs, a.log.Sync(), a.writeIndexes(true), l.producers.save(l.dir, a.next))
	}
	for _, s := range l.segments {
		errs = append(errs, s.close())
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(l.dir, cleanShutdownFile), nil)
}

// Remove closes the log and deletes its directory (topic deletion).
func (l *Log) Remove() error {
	l.stopCleaning()
	defer l.cleanMu.Unlock()
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		l.notifyAppended()
		for _, s := range l.segments {
			s.close()
		}
	}
	l.mu.Unlock()
	return os.RemoveAll(l.dir)
}
