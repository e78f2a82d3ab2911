package storage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzRecovery damages the active segment the way a crash or a bad disk can
// (cut at any byte, arbitrary bytes written after the cut, one byte flipped)
// and reopens the log uncleanly; or, with clean set, damages it the way a
// failed write could (cut, bytes after the cut) and leaves the
// clean-shutdown marker, which must not make the start trust the damage.
// Opening must never fail or panic, every batch that lies wholly before
// the damage must stay readable, the log must read back to its end, and
// appends must continue at the end offset.
func FuzzRecovery(f *testing.F) {
	f.Add(uint16(0), []byte{}, uint16(0), byte(0), false)
	f.Add(uint16(150), []byte("garbage!"), uint16(0), byte(0), false)
	f.Add(uint16(65535), []byte{0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 40}, uint16(0), byte(0), false)
	f.Add(uint16(65535), []byte{}, uint16(100), byte(0x40), false)
	f.Add(uint16(61), []byte{0xff, 0xff, 0xff, 0xff}, uint16(20), byte(1), false)
	f.Add(uint16(65535), []byte{0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 1, 0}, uint16(0), byte(0), true)
	f.Add(uint16(300), []byte{}, uint16(0), byte(0), true)

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

	f.Fuzz(func(t *testing.T, cut uint16, tail []byte, flipAt uint16, flip byte, clean bool) {
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
		if clean {
			flip = 0 // a failed write only ever adds bytes at the end, or leaves fewer
		} else {
			os.Remove(filepath.Join(dir, cleanShutdownFile)) // as after kill -9
		}

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

// FuzzValidateBatch builds a batch (with a correct CRC) around arbitrary
// record bytes, compressed or not. The validator must never panic, and a
// batch it accepts must be one that franz-go's consumer reads back whole:
// the stated number of records, at consecutive offsets, with no error.
func FuzzValidateBatch(f *testing.F) {
	f.Add(records(goodRecords(3)...), int32(3), uint8(0), false)
	f.Add(records(goodRecords(2)...), int32(2), uint8(1), true)
	f.Add(records(goodRecords(5)...), int32(5), uint8(4), true)
	f.Add(records(goodRecords(1)...), int32(1), uint8(3), true)
	f.Add([]byte{2, 0, 0, 0, 1, 1, 0}, int32(1), uint8(2), false)
	var compressors []kgo.Compressor // made once: a zstd encoder is costly to make
	for _, c := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		comp, err := kgo.DefaultCompressor(c)
		if err != nil {
			f.Fatal(err)
		}
		compressors = append(compressors, comp)
	}
	l, err := Open(f.TempDir(), DefaultConfig(), quietOptions())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { l.Close() })

	f.Fuzz(func(t *testing.T, recs []byte, n int32, codec uint8, compress bool) {
		b := batchOf(recs, n)
		b.Attributes = int16(codec & 7)
		if compress && int(codec&7) < len(compressors) && codec&7 != 0 {
			out, used := compressors[codec&7].Compress(new(bytes.Buffer), recs)
			b.Records, b.Attributes = append([]byte(nil), out...), int16(used)
		}
		_, end := l.Offsets()
		res, err := l.Append(sealed(b))
		if err != nil {
			if _, after := l.Offsets(); after != end {
				t.Fatalf("a refused batch (%v) moved the end offset from %d to %d", err, end, after)
			}
			return
		}
		rr, err := l.Read(res.BaseOffset, 100<<20, true)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := rr.Chunk.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Offset: res.BaseOffset, Topic: "fuzz"},
			&kmsg.FetchResponseTopicPartition{HighWatermark: rr.HighWatermark, RecordBatches: raw}, kgo.DefaultDecompressor(), nil)
		if fp.Err != nil {
			t.Fatalf("accepted batch does not decode in franz-go: %v", fp.Err)
		}
		if int32(len(fp.Records)) != n {
			t.Fatalf("accepted batch of %d records reads back as %d", n, len(fp.Records))
		}
		for i, r := range fp.Records {
			if r.Offset != res.BaseOffset+int64(i) {
				t.Fatalf("record %d has offset %d, want %d", i, r.Offset, res.BaseOffset+int64(i))
			}
		}
	})
}

// FuzzQuickRecord holds the validator's fast path to the careful one: a
// record quickRecord accepts, nextRecord and parseRecord accept too, with
// the same fields and the same rest.
func FuzzQuickRecord(f *testing.F) {
	for _, r := range goodRecords(3) {
		f.Add(r.encode())
	}
	f.Add(records(goodRecords(4)...))
	f.Add([]byte{2, 0, 0, 0, 1, 1, 0})
	f.Add([]byte{0x10, 0, 2, 0, 1, 1, 2, 'k', 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, recs []byte) {
		var quick recordView
		size := quickRecord(recs, &quick)
		if size == 0 {
			return
		}
		rest := recs[size:]
		body, slowRest, err := nextRecord(recs)
		if err != nil {
			t.Fatalf("quickRecord read a record that nextRecord refuses: %v", err)
		}
		slow, err := parseRecord(body)
		if err != nil {
			t.Fatalf("quickRecord read a record that parseRecord refuses: %v", err)
		}
		if quick.tsDelta != slow.tsDelta || quick.offsetDelta != slow.offsetDelta || (quick.key == nil) != (slow.key == nil) ||
			!bytes.Equal(quick.key, slow.key) || quick.nullValue != slow.nullValue || len(rest) != len(slowRest) {
			t.Fatalf("quickRecord read %+v (rest %d bytes), the careful way %+v (rest %d bytes)", quick, len(rest), slow, len(slowRest))
		}
	})
}
