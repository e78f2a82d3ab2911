package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// FuzzRecovery damages the active segment the way a crash or a bad disk can
// (cut at any byte, arbitrary bytes written after the cut, one byte flipped)
// and reopens the log uncleanly. Recovery must never fail or panic, every
// batch that lies wholly before the damage must stay readable, the log must
// read back to its end, and appends must continue at the end offset.
func FuzzRecovery(f *testing.F) {
	f.Add(uint16(0), []byte{}, uint16(0), byte(0))
	f.Add(uint16(150), []byte("garbage!"), uint16(0), byte(0))
	f.Add(uint16(65535), []byte{0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 40}, uint16(0), byte(0))
	f.Add(uint16(65535), []byte{}, uint16(100), byte(0x40))
	f.Add(uint16(61), []byte{0xff, 0xff, 0xff, 0xff}, uint16(20), byte(1))

	// One pristine log, built once; each input works on a copy.
	pristine := f.TempDir()
	cfg := DefaultConfig()
	l, err := Open(pristine, cfg, quietOptions())
	if err != nil {
		f.Fatal(err)
	}
	var ends []int64 // byte offset in the segment where each batch ends
	var size int64
	for i := 0; i < 8; i++ {
		b := makeBatch(f, batchSpec{values: []string{fmt.Sprintf("r%d-a", i), fmt.Sprintf("r%d-b", i)}, firstTs: 1_000_000})
		if _, err := l.Append(b); err != nil {
			f.Fatal(err)
		}
		size += int64(len(b))
		ends = append(ends, size)
	}
	if err := l.Close(); err != nil {
		f.Fatal(err)
	}
	files, err := os.ReadDir(pristine)
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, cut uint16, tail []byte, flipAt uint16, flip byte) {
		dir := t.TempDir()
		for _, e := range files {
			data, err := os.ReadFile(filepath.Join(pristine, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		os.Remove(filepath.Join(dir, cleanShutdownFile)) // as after kill -9

		seg := segmentName(dir, 0, logSuffix)
		data, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		damage := int64(len(data)) // first byte that may differ from what was appended
		if c := int64(cut); c < int64(len(data)) {
			data, damage = data[:c], c
		}
		if len(tail) > 0 {
			damage = min(damage, int64(len(data)))
			data = append(data, tail...)
		}
		if flip != 0 && int(flipAt) < len(data) {
			data[flipAt] ^= flip
			damage = min(damage, int64(flipAt))
		}
		if err := os.WriteFile(seg, data, 0o644); err != nil {
			t.Fatal(err)
		}

		l, err := Open(dir, cfg, quietOptions())
		if err != nil {
			t.Fatalf("recovery failed: %v", err)
		}
		defer l.Close()

		intact := int64(0) // records in batches wholly before the damage
		for _, e := range ends {
			if e > damage {
				break
			}
			intact += 2
		}
		_, end := l.Offsets()
		if end < intact {
			t.Fatalf("end offset %d after recovery, but %d records were undamaged", end, intact)
		}
		got := recordsFrom(t, l, 0)
		for o := int64(0); o < intact; o++ {
			want := fmt.Sprintf("r%d-%c", o/2, "ab"[o%2])
			if got[o] != want {
				t.Fatalf("record %d is %q after recovery, want %q", o, got[o], want)
			}
		}
		res, err := l.Append(makeBatch(t, batchSpec{values: []string{"after"}}))
		if err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
		if res.BaseOffset != end {
			t.Fatalf("append after recovery got offset %d, want the end offset %d", res.BaseOffset, end)
		}
	})
}
