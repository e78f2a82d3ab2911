package storage

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// compactConfig is a compacted log with small segments, cleaned at any
// dirty ratio.
func compactConfig() Config {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 2048
	cfg.Compact, cfg.Delete = true, false
	cfg.MinCleanableRatio = 0
	return cfg
}

// written remembers every record appended to a test log.
type written struct {
	at     map[int64]kv // offset -> record
	latest map[string]int64
}

type kv struct {
	key, value string // value nullBytes for a tombstone
	txn        bool
}

func newWritten() *written { return &written{at: map[int64]kv{}, latest: map[string]int64{}} }

// add appends one batch of records with the given keys and values.
func (w *written) add(t *testing.T, l *Log, sp batchSpec) AppendResult {
	t.Helper()
	res, err := l.Append(makeBatch(t, sp))
	if err != nil {
		t.Fatal(err)
	}
	w.note(sp, res.BaseOffset)
	return res
}

func (w *written) note(sp batchSpec, base int64) {
	for i, k := range sp.keys {
		w.at[base+int64(i)] = kv{key: k, value: sp.values[i], txn: sp.txn}
		w.latest[k] = base + int64(i)
	}
}

// fetchAll reads the log from its start as franz-go's consumer reads a
// fetch response, and returns the records by offset.
func fetchAll(t *testing.T, l *Log) []*kgo.Record {
	t.Helper()
	start, end := l.Offsets()
	var out []*kgo.Record
	for offset := start; offset < end; {
		res, err := l.Read(offset, 1<<20, true)
		if err != nil {
			t.Fatal(err)
		}
		if res.Chunk.Len == 0 {
			break
		}
		raw, err := res.Chunk.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Offset: offset, Topic: "t", KeepControlRecords: true},
			&kmsg.FetchResponseTopicPartition{HighWatermark: end, RecordBatches: raw}, kgo.DefaultDecompressor(), nil)
		if fp.Err != nil {
			t.Fatalf("franz-go cannot read the log at %d: %v", offset, fp.Err)
		}
		next := offset
		for _, r := range fp.Records {
			out = append(out, r)
			next = r.Offset + 1
		}
		// A batch whose records were all filtered (markers, below offset)
		// still moves the reader on: its last offset is in its header.
		for p := raw; len(p) >= batchHeaderSize; p = p[batchLen(p):] {
			var rb kmsg.RecordBatch
			if rb.ReadFrom(p[:batchLen(p)]) == nil {
				next = max(next, rb.FirstOffset+int64(rb.LastOffsetDelta)+1)
			}
		}
		offset = next
	}
	for i := 1; i < len(out); i++ {
		if out[i].Offset <= out[i-1].Offset {
			t.Fatalf("offsets go back: %d after %d", out[i].Offset, out[i-1].Offset)
		}
	}
	return out
}

// check verifies a cleaned log against what was written: each record read
// back is the one written at its offset, every key's latest record is
// there, and (when deduped is set) keys whose latest record is below
// cleanedTo appear once. It returns the records read by key.
func (w *written) check(t *testing.T, l *Log, cleanedTo int64) map[string][]int64 {
	t.Helper()
	byKey := map[string][]int64{}
	for _, r := range fetchAll(t, l) {
		if r.Attrs.IsControl() {
			continue
		}
		want, ok := w.at[r.Offset]
		value := string(r.Value)
		if r.Value == nil {
			value = nullBytes
		}
		if !ok || want.key != string(r.Key) || want.value != value {
			t.Fatalf("offset %d holds %q=%q, but %q=%q was written there", r.Offset, r.Key, value, want.key, want.value)
		}
		byKey[want.key] = append(byKey[want.key], r.Offset)
	}
	start, _ := l.Offsets()
	for k, latest := range w.latest {
		offs := byKey[k]
		if latest >= start && w.at[latest].value != nullBytes && (len(offs) == 0 || offs[len(offs)-1] != latest) {
			t.Fatalf("key %s: its latest record (offset %d) is missing; offsets %v are there", k, latest, offs)
		}
		if latest < cleanedTo && len(offs) > 1 {
			t.Fatalf("key %s appears at %v after cleaning up to %d", k, offs, cleanedTo)
		}
	}
	return byKey
}

// cleanAll runs passes until none is due.
func cleanAll(t *testing.T, l *Log, c *Cleaner) []*CleaningStats {
	t.Helper()
	var all []*CleaningStats
	for range 100 {
		st, err := l.Clean(c)
		if err != nil {
			t.Fatal(err)
		}
		if st == nil {
			return all
		}
		all = append(all, st)
	}
	t.Fatal("cleaning never finishes")
	return nil
}

func testCleaner() *Cleaner { return NewCleaner(16<<20, nil, nil) }

// keyed is a batch of records key=value.
func keyed(pairs ...string) batchSpec {
	sp := batchSpec{}
	for i := 0; i+1 < len(pairs); i += 2 {
		sp.keys = append(sp.keys, pairs[i])
		sp.values = append(sp.values, pairs[i+1])
	}
	return sp
}

func TestCleanKeepsLatestValuePerKey(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, compactConfig())
	w := newWritten()
	rng := rand.New(rand.NewSource(1))
	for i := range 400 {
		var pairs []string
		for j := range 1 + rng.Intn(3) {
			pairs = append(pairs, fmt.Sprintf("key-%02d", rng.Intn(30)), fmt.Sprintf("value-%d-%d", i, j))
		}
		w.add(t, l, keyed(pairs...))
	}
	sizeBefore := l.Size()
	_, endBefore := l.Offsets()
	stats := cleanAll(t, l, testCleaner())
	if len(stats) == 0 {
		t.Fatal("no cleaning pass ran")
	}
	st := l.CleanerStatus()
	t.Logf("%d passes; %d bytes -> %d; last pass %+v", len(stats), sizeBefore, l.Size(), *stats[len(stats)-1])
	if st.DirtyRatio != 0 || st.Cleanable {
		t.Fatalf("after cleaning the status is %+v", st)
	}
	if l.Size() >= sizeBefore/2 {
		t.Fatalf("cleaning 30 keys written 800 times left %d of %d bytes", l.Size(), sizeBefore)
	}
	active := l.active().base
	w.check(t, l, active)
	if _, end := l.Offsets(); end != endBefore {
		t.Fatalf("cleaning moved the end offset from %d to %d", endBefore, end)
	}
	res := w.add(t, l, keyed("key-00", "after"))
	if res.BaseOffset != endBefore {
		t.Fatalf("append after cleaning got offset %d, want %d", res.BaseOffset, endBefore)
	}

	// Reopened cleanly and after a kill, the log reads the same.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, compactConfig())
	w.check(t, l, active)
	l.closeFiles()
	l = openTest(t, dir, compactConfig())
	defer l.Close()
	w.check(t, l, active)
	if st := l.CleanerStatus(); st.FirstDirtyOffset != stats[len(stats)-1].End || st.LastCleaning == nil {
		t.Fatalf("the cleaner checkpoint was not kept: %+v", st)
	}
}

// TestCleanRebuildsCompressedBatches keeps some records of batches in
// every codec: the rebuilt batch keeps its codec, base offset and last
// offset delta, and franz-go reads it back.
func TestCleanRebuildsCompressedBatches(t *testing.T) {
	codecs := []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()}
	ids := []int{codecNone, codecGzip, codecSnappy, codecLz4, codecZstd}
	l := openTest(t, t.TempDir(), compactConfig())
	defer l.Close()
	w := newWritten()
	codecAt := map[int64]int{}
	for round := range 3 {
		for i, codec := range codecs {
			v := fmt.Sprintf("r%d-", round) + strings.Repeat("y", 150)
			sp := keyed(fmt.Sprintf("a%d", i), v, fmt.Sprintf("b%d", i), v, fmt.Sprintf("only-%d-%d", round, i), "x")
			if round == 2 {
				sp.keys[1] = fmt.Sprintf("gone%d", i) // b survives from round 1 only
			}
			sp.codec = codec
			codecAt[w.add(t, l, sp).BaseOffset] = ids[i]
		}
	}
	l.mu.Lock()
	if err := l.roll(); err != nil {
		t.Fatal(err)
	}
	l.mu.Unlock()
	cleanAll(t, l, testCleaner())
	w.check(t, l, l.active().base)

	raw, err := l.readAll(0)
	if err != nil {
		t.Fatal(err)
	}
	var rebuilt int
	for p := raw; len(p) > 0; p = p[batchLen(p):] {
		rb, err := decodeBatch(p[:batchLen(p)])
		if err != nil {
			t.Fatal(err)
		}
		if rb.LastOffsetDelta != 2 {
			t.Fatalf("batch at %d has last offset delta %d; cleaning must keep the original 2", rb.FirstOffset, rb.LastOffsetDelta)
		}
		if rb.NumRecords < 3 {
			rebuilt++
			if codec := int(rb.Attributes & 7); codec != codecAt[rb.FirstOffset] {
				t.Fatalf("rebuilt batch at %d has codec %d, want %d", rb.FirstOffset, codec, codecAt[rb.FirstOffset])
			}
		}
	}
	if rebuilt == 0 {
		t.Fatal("no batch was rebuilt")
	}
}

// testClock is a settable clock for Options.Now.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func openClocked(t *testing.T, dir string, cfg Config, clock *testClock) *Log {
	t.Helper()
	opts := quietOptions()
	opts.Now = clock.Now
	l, err := Open(dir, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func rollTest(t *testing.T, l *Log) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.roll(); err != nil {
		t.Fatal(err)
	}
}

func TestTombstonesGoAfterDeleteRetention(t *testing.T) {
	dir := t.TempDir()
	clock := &testClock{now: time.Now()}
	cfg := compactConfig()
	cfg.DeleteRetentionMs = 1000
	l := openClocked(t, dir, cfg, clock)
	w := newWritten()
	w.add(t, l, keyed("a", "1", "b", "1"))
	w.add(t, l, keyed("a", nullBytes))
	rollTest(t, l)
	cleanAll(t, l, testCleaner())
	byKey := w.check(t, l, l.active().base)
	if len(byKey["a"]) != 1 || byKey["a"][0] != 2 {
		t.Fatalf("after the first cleaning key a is at %v, want only its tombstone at 2", byKey["a"])
	}
	if st := l.CleanerStatus(); st.Cleanable {
		t.Fatalf("cleanable again before delete.retention.ms: %+v", st)
	}

	// The tombstone's age survives a restart.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openClocked(t, dir, cfg, clock)
	defer l.Close()
	clock.advance(999 * time.Millisecond)
	if st := l.CleanerStatus(); st.Cleanable {
		t.Fatalf("cleanable before delete.retention.ms: %+v", st)
	}
	clock.advance(2 * time.Millisecond)
	if st := l.CleanerStatus(); !st.Cleanable || !st.Due {
		t.Fatalf("a tombstone past delete.retention.ms does not make the log due: %+v", st)
	}
	stats := cleanAll(t, l, testCleaner())
	if len(stats) != 1 || stats[0].TombstonesRemoved != 1 {
		t.Fatalf("passes after delete.retention.ms: %+v", stats)
	}
	byKey = w.check(t, l, l.active().base)
	if len(byKey["a"]) != 0 || len(byKey["b"]) != 1 {
		t.Fatalf("after delete.retention.ms: %v", byKey)
	}
	if st := l.CleanerStatus(); st.Cleanable {
		t.Fatalf("still due after the tombstone went: %+v", st)
	}
}

// markers returns the offsets of the transaction markers in the log.
func markers(t *testing.T, l *Log) []int64 {
	var out []int64
	for _, r := range fetchAll(t, l) {
		if r.Attrs.IsControl() {
			out = append(out, r.Offset)
		}
	}
	return out
}

func TestCleanTransactions(t *testing.T) {
	clock := &testClock{now: time.Now()}
	cfg := compactConfig()
	cfg.DeleteRetentionMs = 1000
	l := openClocked(t, t.TempDir(), cfg, clock)
	defer l.Close()
	w := newWritten()
	txn := func(pid int64, seq int32, pairs ...string) {
		sp := keyed(pairs...)
		sp.pid, sp.seq, sp.txn = pid, seq, true
		w.add(t, l, sp)
	}
	marker := func(pid int64, commit bool) int64 {
		o, err := l.AppendMarker(pid, 0, commit, 0)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	txn(1, 0, "k0", "aborted", "k1", "aborted") // 0, 1
	abortAt := marker(1, false)                 // 2
	delete(w.latest, "k0")                      // never readable
	txn(2, 0, "k2", "committed")                // 3
	commitAt := marker(2, true)                 // 4
	w.add(t, l, keyed("k1", "plain"))           // 5
	txn(3, 0, "k3", "open")                     // 6: its transaction stays open for now
	w.add(t, l, keyed("k3", "later"))           // 7
	rollTest(t, l)
	if len(l.AbortedTxns(0, 100)) != 1 {
		t.Fatal("the abort is not listed")
	}

	cleanAll(t, l, testCleaner())
	byKey := w.check(t, l, 6)
	if len(byKey["k0"]) != 0 || fmt.Sprint(byKey["k1"]) != "[5]" {
		t.Fatalf("k0 at %v, k1 at %v: the aborted records must go, the plain one stay", byKey["k0"], byKey["k1"])
	}
	if fmt.Sprint(byKey["k3"]) != "[6 7]" {
		t.Fatalf("k3 at %v: records after the last stable offset must not be cleaned", byKey["k3"])
	}
	if got := fmt.Sprint(markers(t, l)); got != fmt.Sprint([]int64{abortAt, commitAt}) {
		t.Fatalf("markers %s right after the first cleaning; both stay for delete.retention.ms", got)
	}

	// Past delete.retention.ms the abort marker, whose records are gone,
	// goes; the commit marker stays while its record does.
	marker(3, true) // k3's transaction ends
	rollTest(t, l)
	clock.advance(1001 * time.Millisecond)
	cleanAll(t, l, testCleaner())
	byKey = w.check(t, l, l.active().base)
	if fmt.Sprint(byKey["k3"]) != "[7]" {
		t.Fatalf("k3 at %v once its transaction ended", byKey["k3"])
	}
	ms := markers(t, l)
	if len(ms) != 2 || ms[0] != commitAt {
		t.Fatalf("markers %v after delete.retention.ms; want the commit at %d and k3's", ms, commitAt)
	}
	if a := l.AbortedTxns(0, 100); len(a) != 0 {
		t.Fatalf("the aborted transaction is still listed after its marker went: %v", a)
	}

	// Once k2's record is superseded, its commit marker goes too.
	w.add(t, l, keyed("k2", "plain"))
	rollTest(t, l)
	cleanAll(t, l, testCleaner())
	clock.advance(1001 * time.Millisecond)
	cleanAll(t, l, testCleaner())
	w.check(t, l, l.active().base)
	if ms := markers(t, l); len(ms) != 0 {
		t.Fatalf("markers %v remain although their transactions have no records left", ms)
	}
}

// TestCleanWithAFullKeyMap gives the cleaner room for 30 keys and writes
// 200: each pass cleans the part of the dirty section whose keys fit, and
// no pass loses a latest value.
func TestCleanWithAFullKeyMap(t *testing.T) {
	l := openTest(t, t.TempDir(), compactConfig())
	defer l.Close()
	w := newWritten()
	for round := range 2 {
		for k := range 200 {
			w.add(t, l, keyed(fmt.Sprintf("key-%03d", k), fmt.Sprintf("round-%d", round)))
		}
	}
	rollTest(t, l)
	c := NewCleaner(40*mapSlotBytes, nil, nil) // 40 slots, 30 keys at the load factor
	passes := 0
	for ; passes < 100; passes++ {
		st, err := l.Clean(c)
		if err != nil {
			t.Fatal(err)
		}
		if st == nil {
			break
		}
		if st.End-st.FirstDirty > 30 || st.End <= st.FirstDirty {
			t.Fatalf("pass %d covered offsets %d to %d with room for 30 keys", passes, st.FirstDirty, st.End)
		}
		w.check(t, l, 0)
	}
	if passes < 400/30 {
		t.Fatalf("%d passes over 400 records with room for 30 keys", passes)
	}
	byKey := w.check(t, l, l.active().base)
	if len(byKey) != 200 {
		t.Fatalf("%d keys left of 200", len(byKey))
	}
}

// TestCleaningCrashesAtEveryStep stops a pass dead at each step of writing
// and swapping a cleaned segment, as kill -9 would, and reopens the log:
// every latest value is there, every record read is one that was written
// at its offset, and no file of the cleaning is left behind.
func TestCleaningCrashesAtEveryStep(t *testing.T) {
	steps := []struct {
		name string
		nth  int
	}{{"written", 1}, {"committed", 1}, {"removed", 1}, {"removed", 2}, {"indexed", 1}, {"indexed", 2}, {"written", 2}, {"committed", 3}}
	for _, step := range steps {
		t.Run(fmt.Sprintf("%s-%d", step.name, step.nth), func(t *testing.T) {
			dir := t.TempDir()
			cfg := compactConfig()
			cfg.SegmentBytes = 1024
			l := openTest(t, dir, cfg)
			w := newWritten()
			for i := range 120 {
				// Keys written once, in every segment, are what a segment
				// lost in the swap would take with it.
				w.add(t, l, keyed(fmt.Sprintf("key-%d", i%7), fmt.Sprintf("v%d", i), fmt.Sprintf("key-%d", i%11), fmt.Sprintf("w%d", i), fmt.Sprintf("once-%d", i), "x"))
			}
			cfg.SegmentBytes = 4096 // groups of several segments
			l.SetConfig(cfg)
			seen := 0
			crashAt = func(s string) bool {
				if s == step.name {
					seen++
				}
				return s == step.name && seen == step.nth
			}
			_, err := l.Clean(testCleaner())
			crashAt = func(string) bool { return false }
			if !errors.Is(err, errSimulatedCrash) {
				t.Fatalf("the pass did not reach step %s %d: %v", step.name, step.nth, err)
			}
			l.closeFiles()

			l = openTest(t, dir, cfg)
			defer l.Close()
			w.check(t, l, 0)
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), cleanedSuffix) || strings.HasSuffix(e.Name(), swapSuffix) || strings.HasSuffix(e.Name(), ".tmp") {
					t.Errorf("%s is left after recovery", e.Name())
				}
			}
			cleanAll(t, l, testCleaner())
			w.check(t, l, l.active().base)
			w.add(t, l, keyed("key-0", "after"))
		})
	}
}

// TestReadersDuringCleaning: a chunk of a segment that a cleaning replaced
// says ErrSegmentGone, and reading again finds the cleaned data.
func TestReadersDuringCleaning(t *testing.T) {
	l := openTest(t, t.TempDir(), compactConfig())
	defer l.Close()
	w := newWritten()
	for i := range 100 {
		w.add(t, l, keyed("k", fmt.Sprint(i)))
	}
	old, err := l.Read(0, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	cleanAll(t, l, testCleaner())
	if _, err := old.Chunk.Bytes(); !errors.Is(err, ErrSegmentGone) {
		t.Fatalf("a chunk of a replaced segment: %v, want ErrSegmentGone", err)
	}
	w.check(t, l, l.active().base)
}

// TestCleaningWhileProducing appends and cleans at once (run with -race).
func TestCleaningWhileProducing(t *testing.T) {
	l := openTest(t, t.TempDir(), compactConfig())
	defer l.Close()
	w := newWritten()
	done := make(chan struct{})
	var cleanErr error
	go func() {
		defer close(done)
		c := testCleaner()
		for range 200 {
			if _, err := l.Clean(c); err != nil {
				cleanErr = err
				return
			}
		}
	}()
	for i := range 1500 {
		w.add(t, l, keyed(fmt.Sprintf("k%d", i%50), fmt.Sprint(i)))
		if i%300 == 0 {
			if _, err := l.DeleteRecordsBefore(int64(i / 10)); err != nil {
				t.Fatal(err)
			}
		}
	}
	<-done
	if cleanErr != nil {
		t.Fatal(cleanErr)
	}
	cleanAll(t, l, testCleaner())
	w.check(t, l, l.active().base)
}

func TestCompactedTopicRefusesRecordsWithoutKey(t *testing.T) {
	l := openTest(t, t.TempDir(), compactConfig())
	defer l.Close()
	if _, err := l.Append(makeBatch(t, keyed("k", "v", nullBytes, "v"))); !errors.Is(err, ErrInvalidRecord) || !strings.Contains(err.Error(), "no key") {
		t.Fatalf("a record without a key on a compacted topic: %v", err)
	}
	if _, err := l.Append(makeBatch(t, keyed("", "empty keys are keys"))); err != nil {
		t.Fatalf("an empty key: %v", err)
	}
	cfg := compactConfig()
	cfg.Compact, cfg.Delete = false, true
	l.SetConfig(cfg)
	if _, err := l.Append(makeBatch(t, keyed(nullBytes, "v"))); err != nil {
		t.Fatalf("a record without a key on a topic that is not compacted: %v", err)
	}
}

// TestCompactOnlyKeepsRetention: without delete in cleanup.policy,
// retention.bytes and retention.ms delete nothing; with it, both apply.
func TestCompactOnlyKeepsRetention(t *testing.T) {
	cfg := compactConfig()
	cfg.RetentionBytes, cfg.RetentionMs = 100, 1
	l := openTest(t, t.TempDir(), cfg)
	defer l.Close()
	for i := range 50 {
		if _, err := l.Append(makeBatch(t, batchSpec{keys: []string{fmt.Sprint(i)}, values: []string{"v"}, padValue: 100, firstTs: 1000})); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := l.EnforceRetention(); err != nil || n != 0 {
		t.Fatalf("retention deleted %d segments of a compact-only log (%v)", n, err)
	}
	cfg.Delete = true
	l.SetConfig(cfg)
	if n, err := l.EnforceRetention(); err != nil || n == 0 {
		t.Fatalf("retention deleted %d segments of a compact,delete log (%v)", n, err)
	}
}

// TestCleanedAwaySegmentKeepsTheLogStart: a first segment whose records
// are all superseded stays as an empty file, so the log still starts at 0
// and a reader from 0 gets the records after it.
func TestCleanedAwaySegmentKeepsTheLogStart(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, compactConfig())
	w := newWritten()
	for i := range 20 {
		w.add(t, l, batchSpec{keys: []string{"a"}, values: []string{fmt.Sprint(i) + strings.Repeat("x", 300)}})
	}
	rollTest(t, l)
	w.add(t, l, keyed("b", "1"))
	rollTest(t, l)
	cleanAll(t, l, testCleaner())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, compactConfig())
	defer l.Close()
	if start, _ := l.Offsets(); start != 0 {
		t.Fatalf("the log starts at %d after its first records were cleaned away", start)
	}
	byKey := w.check(t, l, l.active().base)
	if fmt.Sprint(byKey["a"], byKey["b"]) != "[19] [20]" {
		t.Fatalf("a at %v, b at %v", byKey["a"], byKey["b"])
	}
}

// TestCleanRandomWorkloads mixes keyed records, tombstones, committed and
// aborted transactions, compressed batches, key maps of every size, clock
// jumps past delete.retention.ms and restarts, and checks after every pass
// that each key's latest record (committed, or outside transactions) is
// what a reader finds last, and that a deleted key reads as deleted.
func TestCleanRandomWorkloads(t *testing.T) {
	codecs := []kgo.CompressionCodec{{}, kgo.GzipCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()}
	for seed := int64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			dir := t.TempDir()
			clock := &testClock{now: time.Now()}
			cfg := compactConfig()
			cfg.SegmentBytes = int64(600 + rng.Intn(3000))
			cfg.DeleteRetentionMs = 1000
			l := openClocked(t, dir, cfg, clock)
			defer func() { l.Close() }()
			latest := map[string]string{} // what a reader must find last; nullBytes: deleted
			pid := int64(100)
			for step := range 300 {
				var pairs []string
				for range 1 + rng.Intn(4) {
					k, v := fmt.Sprintf("k%d", rng.Intn(40)), fmt.Sprintf("v%d-%d", step, rng.Intn(1000))
					if rng.Intn(6) == 0 {
						v = nullBytes
					}
					pairs = append(pairs, k, v)
				}
				sp := keyed(pairs...)
				sp.codec = codecs[rng.Intn(len(codecs))]
				switch rng.Intn(8) {
				case 0, 1: // a transaction, committed or aborted
					pid++
					sp.pid, sp.txn = pid, true
					if _, err := l.Append(makeBatch(t, sp)); err != nil {
						t.Fatal(err)
					}
					commit := rng.Intn(2) == 0
					if _, err := l.AppendMarker(pid, 0, commit, 0); err != nil {
						t.Fatal(err)
					}
					if commit {
						for i := 0; i < len(pairs); i += 2 {
							latest[pairs[i]] = pairs[i+1]
						}
					}
				default:
					if _, err := l.Append(makeBatch(t, sp)); err != nil {
						t.Fatal(err)
					}
					for i := 0; i < len(pairs); i += 2 {
						latest[pairs[i]] = pairs[i+1]
					}
				}
				switch rng.Intn(12) {
				case 0:
					clock.advance(time.Duration(rng.Intn(2000)) * time.Millisecond)
				case 1:
					if _, err := l.Clean(NewCleaner(int64(rng.Intn(60)+2)*mapSlotBytes, nil, nil)); err != nil {
						t.Fatal(err)
					}
					checkLatest(t, l, latest)
				case 2:
					if rng.Intn(2) == 0 {
						l.closeFiles()
					} else if err := l.Close(); err != nil {
						t.Fatal(err)
					}
					l = openClocked(t, dir, cfg, clock)
				}
			}
			clock.advance(2 * time.Second)
			rollTest(t, l)
			cleanAll(t, l, testCleaner())
			clock.advance(2 * time.Second)
			cleanAll(t, l, testCleaner())
			checkLatest(t, l, latest)
			// Every closed segment is clean now: a key appears at most once
			// in it, and deleted keys not at all.
			seen := map[string]int{}
			for _, r := range fetchAll(t, l) {
				if !r.Attrs.IsControl() && r.Offset < l.active().base {
					seen[string(r.Key)]++
					if r.Value == nil {
						t.Errorf("key %s: tombstone at %d still there after delete.retention.ms", r.Key, r.Offset)
					}
				}
			}
			for k, n := range seen {
				if n > 1 {
					t.Errorf("key %s appears %d times in the cleaned segments", k, n)
				}
			}
		})
	}
}

// checkLatest reads the log as a read_committed consumer would (records of
// aborted transactions dropped) and checks each key's last record.
func checkLatest(t *testing.T, l *Log, latest map[string]string) {
	t.Helper()
	aborted := l.AbortedTxns(0, 1<<62)
	last := map[string]string{}
	for _, r := range fetchAll(t, l) {
		if r.Attrs.IsControl() {
			continue
		}
		skip := false
		for _, a := range aborted {
			if a.ProducerID == r.ProducerID && a.FirstOffset <= r.Offset && r.Offset < a.LastOffset {
				skip = true
			}
		}
		if skip {
			continue
		}
		v := string(r.Value)
		if r.Value == nil {
			v = nullBytes
		}
		last[string(r.Key)] = v
	}
	for k, want := range latest {
		got, ok := last[k]
		switch {
		case want == nullBytes && ok && got != nullBytes:
			t.Fatalf("deleted key %s reads %q", k, got)
		case want != nullBytes && got != want:
			t.Fatalf("key %s reads %q last, want %q", k, got, want)
		}
	}
	for k := range last {
		if _, ok := latest[k]; !ok {
			t.Fatalf("key %s, which only aborted transactions wrote, reads %q", k, last[k])
		}
	}
}
