package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestAppendReadAndCleanReopen(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, DefaultConfig())
	for i := 0; i < 10; i++ {
		res, err := l.Append(makeBatch(t, batchSpec{values: []string{fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)}, firstTs: 1000}))
		if err != nil {
			t.Fatal(err)
		}
		if res.BaseOffset != int64(2*i) {
			t.Fatalf("batch %d got base offset %d", i, res.BaseOffset)
		}
	}
	if got := recordsFrom(t, l, 5); len(got) != 16 || got[5] != "b2" || got[19] != "b9" {
		t.Fatalf("read from 5: %v", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, DefaultConfig())
	defer l.Close()
	if start, end := l.Offsets(); start != 0 || end != 20 {
		t.Fatalf("offsets after reopen: %d %d", start, end)
	}
	if res, _ := l.Append(makeBatch(t, batchSpec{values: []string{"c"}})); res.BaseOffset != 20 {
		t.Fatalf("append after reopen got %d", res.BaseOffset)
	}
	if got := recordsFrom(t, l, 0); len(got) != 21 || got[0] != "a0" || got[20] != "c" {
		t.Fatalf("all records after reopen: %v", got)
	}
}

func TestRejectsBadBatches(t *testing.T) {
	l := openTest(t, t.TempDir(), DefaultConfig())
	defer l.Close()
	b := makeBatch(t, batchSpec{values: []string{"x"}})
	b[len(b)-1] ^= 0xff
	if _, err := l.Append(b); !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("flipped byte: %v", err)
	}
	b = makeBatch(t, batchSpec{values: []string{"x"}})
	b[posMagic] = 1
	if _, err := l.Append(b); !errors.Is(err, ErrUnsupportedFormat) {
		t.Fatalf("magic 1: %v", err)
	}
	if _, err := l.Append(b[:30]); err == nil {
		t.Fatal("short batch accepted")
	}
	cfg := DefaultConfig()
	cfg.MaxMessageBytes = 100
	l.SetConfig(cfg)
	if _, err := l.Append(makeBatch(t, batchSpec{padValue: 200})); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("large batch: %v", err)
	}
	if _, end := l.Offsets(); end != 0 {
		t.Fatalf("rejected batches moved the end offset to %d", end)
	}
}

func TestUncleanReopenTruncatesTornTail(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.SegmentBytes = 4096
	l := openTest(t, dir, cfg)
	for i := 0; i < 50; i++ {
		if _, err := l.Append(makeBatch(t, batchSpec{values: []string{fmt.Sprint(i)}, padValue: 300})); err != nil {
			t.Fatal(err)
		}
	}
	// Simulate a crash: no Close, then cut the last segment in the middle of its last batch.
	bases, _ := listSegments(dir)
	if len(bases) < 3 {
		t.Fatalf("expected several segments, got %v", bases)
	}
	last := segmentName(dir, bases[len(bases)-1], logSuffix)
	st, _ := os.Stat(last)
	if err := os.Truncate(last, st.Size()-100); err != nil {
		t.Fatal(err)
	}
	l2 := openTest(t, dir, cfg)
	defer l2.Close()
	_, end := l2.Offsets()
	if end != 49 {
		t.Fatalf("after torn tail the end offset is %d, want 49", end)
	}
	got := recordsFrom(t, l2, 0)
	for i := 0; i < 49; i++ {
		if !strings.HasPrefix(got[int64(i)], fmt.Sprint(i)+"x") {
			t.Fatalf("record %d lost after recovery: %q", i, got[int64(i)])
		}
	}
	if res, err := l2.Append(makeBatch(t, batchSpec{values: []string{"after"}})); err != nil || res.BaseOffset != 49 {
		t.Fatalf("append after recovery: %v %v", res, err)
	}
	l.Close() // the abandoned handle: closing it must not disturb the reopened log's files
}

func TestGarbageTailIsTruncated(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, DefaultConfig())
	for i := 0; i < 3; i++ {
		l.Append(makeBatch(t, batchSpec{values: []string{"ok"}}))
	}
	f, _ := os.OpenFile(segmentName(dir, 0, logSuffix), os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte(strings.Repeat("garbage!", 20)))
	f.Close()
	l2 := openTest(t, dir, DefaultConfig())
	defer l2.Close()
	if _, end := l2.Offsets(); end != 3 {
		t.Fatalf("end offset %d", end)
	}
	if len(recordsFrom(t, l2, 0)) != 3 {
		t.Fatal("records lost")
	}
}

func TestCorruptSealedSegmentIsSetAside(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.SegmentBytes = 2000
	l := openTest(t, dir, cfg)
	for i := 0; i < 30; i++ {
		l.Append(makeBatch(t, batchSpec{values: []string{fmt.Sprint(i)}, padValue: 400}))
	}
	l.Close()
	bases, _ := listSegments(dir)
	victim := bases[1]
	name := segmentName(dir, victim, logSuffix)
	b, _ := os.ReadFile(name)
	copy(b, []byte("this is not a record batch at all, it is garbage"))
	os.WriteFile(name, b, 0o644)

	l2 := openTest(t, dir, cfg)
	defer l2.Close()
	if _, err := os.Stat(name + corruptSuffix); err != nil {
		t.Fatalf("corrupt segment not moved aside: %v", err)
	}
	got := recordsFrom(t, l2, 0)
	if got[0] != "0"+strings.Repeat("x", 400) {
		t.Fatalf("records before the corrupt segment unreadable: %q", got[0])
	}
	if _, ok := got[victim]; ok {
		t.Fatal("records of the corrupt segment still served")
	}
	if got[29] == "" {
		t.Fatal("records after the corrupt segment unreadable")
	}
}

func TestRetentionBySize(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.SegmentBytes = 10_000
	cfg.RetentionBytes = 30_000
	l := openTest(t, dir, cfg)
	defer l.Close()
	for i := 0; i < 300; i++ {
		if _, err := l.Append(makeBatch(t, batchSpec{values: []string{fmt.Sprint(i)}, padValue: 900})); err != nil {
			t.Fatal(err)
		}
	}
	start, end := l.Offsets()
	if start == 0 || end != 300 {
		t.Fatalf("retention did not move the start offset: %d..%d", start, end)
	}
	if size := l.Size(); size > cfg.RetentionBytes+cfg.SegmentBytes {
		t.Fatalf("log holds %d bytes, more than retention.bytes + one segment", size)
	}
	if _, err := l.Read(0, 1000, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	if got := recordsFrom(t, l, start); len(got) != int(end-start) {
		t.Fatalf("kept %d records, want %d", len(got), end-start)
	}
}

func TestRetentionByTime(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.SegmentBytes = 500 // one batch per segment, so retention can cut exactly
	cfg.RetentionMs = time.Hour.Milliseconds()
	cfg.RetentionCheckOnRolls = false // let the explicit check below do the work
	now := time.Now()
	opts := quietOptions()
	opts.Now = func() time.Time { return now }
	l, _ := Open(dir, cfg, opts)
	defer l.Close()
	old := ms(now.Add(-2 * time.Hour))
	for i := 0; i < 10; i++ {
		l.Append(makeBatch(t, batchSpec{firstTs: old, padValue: 500}))
	}
	for i := 0; i < 3; i++ {
		l.Append(makeBatch(t, batchSpec{firstTs: ms(now), padValue: 500}))
	}
	if n, err := l.EnforceRetention(); err != nil || n == 0 {
		t.Fatalf("nothing deleted: %d %v", n, err)
	}
	if start, _ := l.Offsets(); start != 10 {
		t.Fatalf("start offset %d, want 10", start)
	}
	// Everything expired: the log empties but keeps its end offset.
	now = now.Add(3 * time.Hour)
	l.EnforceRetention()
	if start, end := l.Offsets(); start != 13 || end != 13 {
		t.Fatalf("offsets after full expiry: %d %d", start, end)
	}
	if res, _ := l.Append(makeBatch(t, batchSpec{firstTs: ms(now)})); res.BaseOffset != 13 {
		t.Fatalf("append after expiry at %d", res.BaseOffset)
	}
}

func TestDeleteRecordsPersists(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, DefaultConfig())
	for i := 0; i < 10; i++ {
		l.Append(makeBatch(t, batchSpec{values: []string{fmt.Sprint(i)}}))
	}
	if start, err := l.DeleteRecordsBefore(4); err != nil || start != 4 {
		t.Fatalf("delete records: %d %v", start, err)
	}
	if _, err := l.DeleteRecordsBefore(11); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("delete beyond end: %v", err)
	}
	l.Close()
	l = openTest(t, dir, DefaultConfig())
	defer l.Close()
	if start, _ := l.Offsets(); start != 4 {
		t.Fatalf("log start offset after reopen: %d", start)
	}
	got := recordsFrom(t, l, 4)
	if got[4] != "4" || len(got) != 6 {
		t.Fatalf("records after delete: %v", got)
	}
}

func TestIdempotentProducer(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, DefaultConfig())
	b := func(seq int32, n int) []byte {
		vals := make([]string, n)
		for i := range vals {
			vals[i] = fmt.Sprint(seq + int32(i))
		}
		return makeBatch(t, batchSpec{values: vals, pid: 7, epoch: 0, seq: seq})
	}
	r1, _ := l.Append(b(0, 3))
	r2, _ := l.Append(b(3, 2))
	dup, err := l.Append(b(0, 3))
	if err != nil || !dup.Duplicate || dup.BaseOffset != r1.BaseOffset {
		t.Fatalf("retry of first batch: %+v %v", dup, err)
	}
	if _, err := l.Append(b(9, 1)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap in sequence: %v", err)
	}
	if _, end := l.Offsets(); end != 5 {
		t.Fatalf("end offset %d after a duplicate and a refused batch", end)
	}
	// The state survives a crash (no Close): the retry is still recognised.
	l2 := openTest(t, dir, DefaultConfig())
	dup, err = l2.Append(b(3, 2))
	if err != nil || !dup.Duplicate || dup.BaseOffset != r2.BaseOffset {
		t.Fatalf("retry after crash: %+v %v", dup, err)
	}
	if r, err := l2.Append(b(5, 1)); err != nil || r.BaseOffset != 5 {
		t.Fatalf("next batch after crash: %+v %v", r, err)
	}
	// A new epoch starts at sequence 0; an older epoch is fenced.
	if _, err := l2.Append(makeBatch(t, batchSpec{pid: 7, epoch: 1, seq: 4})); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("new epoch not at 0: %v", err)
	}
	l2.Append(makeBatch(t, batchSpec{pid: 7, epoch: 1, seq: 0}))
	if _, err := l2.Append(makeBatch(t, batchSpec{pid: 7, epoch: 0, seq: 6})); !errors.Is(err, ErrInvalidEpoch) {
		t.Fatalf("old epoch: %v", err)
	}
	l2.Close()
	l.Close()
}

func TestOffsetForTimestampAndMax(t *testing.T) {
	for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		l := openTest(t, t.TempDir(), DefaultConfig())
		// Batches of 5 records at ts 1000,1010,...; batch i starts at 1000+100*i.
		for i := 0; i < 20; i++ {
			l.Append(makeBatch(t, batchSpec{values: []string{"a", "b", "c", "d", "e"}, firstTs: 1000 + 100*int64(i), tsStep: 10, codec: codec}))
		}
		for _, c := range []struct{ ts, off, found int64 }{
			{0, 0, 1000}, {1000, 0, 1000}, {1015, 2, 1020}, {1041, 5, 1100}, {2940, 99, 2940}, {2941, -1, -1},
		} {
			off, found, err := l.OffsetForTimestamp(c.ts)
			if err != nil || off != c.off || found != c.found {
				t.Fatalf("%v: timestamp %d -> %d@%d (%v), want %d@%d", codec, c.ts, off, found, err, c.off, c.found)
			}
		}
		if off, ts, err := l.MaxTimestamp(); err != nil || off != 99 || ts != 2940 {
			t.Fatalf("max timestamp: %d %d %v", off, ts, err)
		}
		l.Close()
	}
}

func TestReadLimits(t *testing.T) {
	l := openTest(t, t.TempDir(), DefaultConfig())
	defer l.Close()
	for i := 0; i < 20; i++ {
		l.Append(makeBatch(t, batchSpec{values: []string{fmt.Sprint(i)}, padValue: 1000}))
	}
	one := int64(len(makeBatch(t, batchSpec{values: []string{"0"}, padValue: 1000})))
	res, _ := l.Read(0, 10, true)
	if res.Chunk.Len != one {
		t.Fatalf("minOne read returned %d bytes, want one batch of %d", res.Chunk.Len, one)
	}
	if res, _ := l.Read(0, 10, false); res.Chunk.Len != 0 {
		t.Fatalf("read without minOne returned %d bytes", res.Chunk.Len)
	}
	res, _ = l.Read(3, 5*one+10, true)
	b, _ := res.Chunk.Bytes()
	for p := b; len(p) > 0; p = p[batchLen(p):] {
		if batchLen(p) > len(p) {
			t.Fatal("read cut a batch in half")
		}
	}
	if res.HighWatermark != 20 {
		t.Fatalf("high watermark %d", res.HighWatermark)
	}
	if res, err := l.Read(20, 100, true); err != nil || res.Chunk.Len != 0 {
		t.Fatalf("read at end: %v %v", res, err)
	}
	if _, err := l.Read(21, 100, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read past end: %v", err)
	}
}

func TestLogAppendTime(t *testing.T) {
	cfg := DefaultConfig()
	cfg.LogAppendTime = true
	l := openTest(t, t.TempDir(), cfg)
	defer l.Close()
	before := time.Now().UnixMilli()
	res, err := l.Append(makeBatch(t, batchSpec{firstTs: 5}))
	if err != nil || res.LogAppendTime < before {
		t.Fatalf("log append time %d (%v)", res.LogAppendTime, err)
	}
	r, _ := l.Read(0, 1000, true)
	b, _ := r.Chunk.Bytes()
	if _, err := decodeBatch(b); err != nil {
		t.Fatalf("stored batch no longer valid after timestamp rewrite: %v", err)
	}
}

func TestSyncGroupCommit(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, DefaultConfig())
	defer l.Close()
	done := make(chan error, 20)
	for i := 0; i < 20; i++ {
		go func() {
			res, err := l.Append(makeBatch(t, batchSpec{}))
			if err == nil {
				err = l.Sync(res.BaseOffset + 1)
			}
			done <- err
		}()
	}
	for i := 0; i < 20; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if l.Unsynced() {
		t.Fatal("data left unsynced after every Sync returned")
	}
	if _, err := os.Stat(filepath.Join(dir, cleanShutdownFile)); err == nil {
		t.Fatal("clean-shutdown marker present while the log is open")
	}
}

// Idempotent producers idle past producer.id.expiration.ms are forgotten
// by the retention pass (any sequence is then accepted, as for a new
// producer); an open transaction keeps its producer.
func TestProducerExpiration(t *testing.T) {
	now := time.Now()
	opts := quietOptions()
	opts.Now = func() time.Time { return now }
	cfg := DefaultConfig()
	cfg.ProducerExpirationMs = 60_000
	l, err := Open(t.TempDir(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(makeBatch(t, batchSpec{pid: 5, seq: 0})); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(makeBatch(t, batchSpec{pid: 6, seq: 0, txn: true})); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(makeBatch(t, batchSpec{pid: 5, seq: 7})); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("a gap before expiry: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(makeBatch(t, batchSpec{pid: 5, seq: 7})); err != nil {
		t.Fatalf("after expiry the producer should be new: %v", err)
	}
	if lso, end := l.LastStableOffset(), l.active().next; lso == end {
		t.Fatal("expiry dropped a producer with an open transaction")
	}
}

// WatchAppends signals at appends and at close, once per channel however
// often it is watched, and not after UnwatchAppends.
func TestWatchAppends(t *testing.T) {
	l := openTest(t, t.TempDir(), DefaultConfig())
	wake := make(chan struct{}, 1)
	l.WatchAppends(wake)
	l.WatchAppends(wake)
	if len(l.watchers) != 1 {
		t.Fatalf("%d watchers after watching one channel twice", len(l.watchers))
	}
	if _, err := l.Append(makeBatch(t, batchSpec{values: []string{"a"}})); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	default:
		t.Fatal("no signal at an append")
	}
	l.UnwatchAppends(wake)
	if _, err := l.Append(makeBatch(t, batchSpec{values: []string{"b"}})); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
		t.Fatal("a signal after UnwatchAppends")
	default:
	}
	l.WatchAppends(wake)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	default:
		t.Fatal("no signal at close")
	}
	late := make(chan struct{}, 1)
	l.WatchAppends(late)
	select {
	case <-late:
	default:
		t.Fatal("watching a closed log does not signal at once")
	}
}
