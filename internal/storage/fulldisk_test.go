package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/creek-pipeline/creek/internal/testfs"
)

// fullDiskConfig rolls small segments so that filling a small disk crosses
// several rolls.
func fullDiskConfig() Config {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 64 << 10
	cfg.RetentionBytes = -1
	return cfg
}

// fillLog appends batches of about 3 KiB until the disk refuses one, and
// returns the value written at each acknowledged offset.
func fillLog(t *testing.T, l *Log, acked map[int64]string, tag string) error {
	t.Helper()
	for i := 0; ; i++ {
		v := fmt.Sprintf("%s-%d", tag, i)
		res, err := l.Append(makeBatch(t, batchSpec{values: []string{v}, padValue: 3000}))
		if err != nil {
			return err
		}
		acked[res.BaseOffset] = v
		if i > 100000 {
			t.Fatal("the disk never filled")
		}
	}
}

// checkLogMatches checks that the log holds exactly the acknowledged
// records from its start offset on, and that no segment file holds bytes
// beyond what the log counts.
func checkLogMatches(t *testing.T, l *Log, acked map[int64]string) {
	t.Helper()
	start, end := l.Offsets()
	got := recordsFrom(t, l, start)
	for o, v := range got {
		got[o] = strings.TrimRight(v, "x") // the padding of makeBatch
	}
	for o, v := range acked {
		if o < start {
			continue
		}
		if got[o] != v {
			t.Errorf("acknowledged offset %d holds %q, want %q", o, got[o], v)
		}
	}
	for o := range got {
		if _, ok := acked[o]; !ok {
			t.Errorf("offset %d was never acknowledged but is in the log", o)
		}
	}
	if want := int64(len(got)) + start; end != want {
		t.Errorf("end offset %d, want %d (start %d + %d records)", end, want, start, len(got))
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, s := range l.segments {
		st, err := os.Stat(s.log.Name())
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != s.size {
			t.Errorf("%s holds %d bytes but the log counts %d: a failed write left bytes behind", s.log.Name(), st.Size(), s.size)
		}
	}
}

// TestFullDiskWriteLeavesLogAsItWas fills a real (tmpfs) disk: every
// refused append must leave the segment exactly as before, reads go on
// while full, appends resume once the disk grows, and a clean or unclean
// restart shows exactly the acknowledged records.
func TestFullDiskWriteLeavesLogAsItWas(t *testing.T) {
	for _, clean := range []bool{true, false} {
		t.Run(fmt.Sprintf("clean=%v", clean), func(t *testing.T) {
			fs := testfs.Mount(t, 512<<10)
			dir := filepath.Join(fs.Dir, "tweets-0")
			cfg := fullDiskConfig()
			l := openTest(t, dir, cfg)
			acked := map[int64]string{}
			err := fillLog(t, l, acked, "first")
			if err == nil || errors.Is(err, ErrCorruptBatch) || errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("full disk: %v", err)
			}
			if strings.Count(err.Error(), filepath.Base(dir)) > 1 {
				t.Errorf("the error names the file more than once: %v", err)
			}
			// More attempts, of several sizes: the refused ones change nothing
			// (a small one may fit in what is left).
			for i, pad := range []int{20000, 5000, 100, 10} {
				v := fmt.Sprintf("small-%d", i)
				if res, err := l.Append(makeBatch(t, batchSpec{values: []string{v}, padValue: pad})); err == nil {
					acked[res.BaseOffset] = v
				}
			}
			checkLogMatches(t, l, acked)

			fs.Resize(1 << 20)
			if err := fillLog(t, l, acked, "grown"); err == nil {
				t.Fatal("appends never failed again")
			}
			checkLogMatches(t, l, acked)
			if clean {
				l.Close() // may fail to write its snapshot on the full disk
			} else {
				l.closeFiles() // as kill -9: nothing more is written
			}
			l = openTest(t, dir, cfg)
			defer l.Close()
			checkLogMatches(t, l, acked)
			fs.Resize(2 << 20)
			res, err := l.Append(makeBatch(t, batchSpec{values: []string{"after"}}))
			if err != nil {
				t.Fatalf("append after restart: %v", err)
			}
			acked[res.BaseOffset] = "after"
			checkLogMatches(t, l, acked)
		})
	}
}

// TestGarbageAfterCleanShutdownIsChecked writes bytes past the end of the
// active segment after a clean shutdown, as a failed write of an older
// creek did: the next start must not read them as batches.
func TestGarbageAfterCleanShutdownIsChecked(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	l := openTest(t, dir, cfg)
	acked := map[int64]string{}
	for i := 0; i < 20; i++ {
		v := fmt.Sprint(i)
		res, err := l.Append(makeBatch(t, batchSpec{values: []string{v}, padValue: 500}))
		if err != nil {
			t.Fatal(err)
		}
		acked[res.BaseOffset] = v
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Part of a batch: a header whose length and offsets are whatever the
	// refused producer sent.
	tail := makeBatch(t, batchSpec{values: []string{"torn"}, padValue: 4000})[:2000]
	f, err := os.OpenFile(segmentName(dir, 0, logSuffix), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(tail)
	f.Close()

	l = openTest(t, dir, cfg)
	defer l.Close()
	checkLogMatches(t, l, acked)
	res, err := l.Append(makeBatch(t, batchSpec{values: []string{"next"}}))
	if err != nil || res.BaseOffset != 20 {
		t.Fatalf("append after restart: offset %d, %v", res.BaseOffset, err)
	}
}

// TestDeleteRecordsOnFullDisk: DeleteRecords past whole segments frees them
// at once, even on a full disk, and what it answers holds after a crash.
func TestDeleteRecordsOnFullDisk(t *testing.T) {
	fs := testfs.Mount(t, 512<<10)
	dir := filepath.Join(fs.Dir, "tweets-0")
	cfg := fullDiskConfig()
	l := openTest(t, dir, cfg)
	acked := map[int64]string{}
	if err := fillLog(t, l, acked, "fill"); err == nil {
		t.Fatal("the disk never filled")
	}
	_, end := l.Offsets()
	before := l.Size()
	target := end / 2
	start, err := l.DeleteRecordsBefore(target)
	if err != nil {
		// Refused: nothing may have moved.
		if s, _ := l.Offsets(); s != 0 || start != 0 {
			t.Fatalf("DeleteRecords failed (%v) but moved the log start to %d (answered %d)", err, s, start)
		}
		t.Fatalf("DeleteRecords on a full disk failed: %v", err)
	}
	if start != target {
		t.Fatalf("DeleteRecords answered %d, want %d", start, target)
	}
	if after := l.Size(); after >= before {
		t.Errorf("DeleteRecords past whole segments freed nothing (%d bytes before, %d after)", before, after)
	}
	l.closeFiles() // kill -9
	l = openTest(t, dir, cfg)
	defer l.Close()
	if s, _ := l.Offsets(); s != target {
		t.Fatalf("after a crash the log start is %d, DeleteRecords answered %d", s, target)
	}
	checkLogMatches(t, l, acked)
	res, err := l.Append(makeBatch(t, batchSpec{values: []string{"after"}}))
	if err != nil {
		t.Fatalf("append after DeleteRecords freed space: %v", err)
	}
	acked[res.BaseOffset] = "after"
	checkLogMatches(t, l, acked)
}
