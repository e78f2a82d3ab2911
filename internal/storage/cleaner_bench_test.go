package storage

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkClean measures one cleaning pass over a log of 64 MiB (as
// stored) of 1 KB text records, in batches of 64, over 10000 keys,
// uncompressed, lz4 and zstd (a rebuilt batch is compressed again). MB/s is
// log as stored cleaned per second, records/s the records it held. Each
// pass runs on a fresh copy of the dirty log, with the fsyncs a broker does.
func BenchmarkClean(b *testing.B) {
	for _, codec := range benchCodecs {
		b.Run(codec.name, func(b *testing.B) {
			template := b.TempDir()
			cfg := DefaultConfig()
			cfg.SegmentBytes = 8 << 20
			cfg.Compact, cfg.Delete, cfg.MinCleanableRatio = true, false, 0
			l, err := Open(template, cfg, quietOptions())
			if err != nil {
				b.Fatal(err)
			}
			values := benchValues()
			for i := 0; l.Size() < 64<<20; i++ {
				sp := batchSpec{values: values, codec: codec.codec}
				for j := range values {
					sp.keys = append(sp.keys, fmt.Sprintf("key-%05d", (i*len(values)+j)*7919%10000))
				}
				if _, err := l.Append(makeBatch(b, sp)); err != nil {
					b.Fatal(err)
				}
			}
			size := l.Size()
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
			c := testCleaner()
			b.SetBytes(size)
			var records int64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				dir := filepath.Join(b.TempDir(), "p")
				if out, err := exec.Command("cp", "-r", template, dir).CombinedOutput(); err != nil {
					b.Fatalf("copy the log: %v %s", err, out)
				}
				l, err := Open(dir, cfg, quietOptions())
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				st, err := l.Clean(c)
				if err != nil || st == nil {
					b.Fatalf("clean: %v %v", st, err)
				}
				b.StopTimer()
				records += st.RecordsRead
				if i == 0 {
					b.ReportMetric(float64(l.Size())/float64(size), "kept/log")
				}
				l.Close()
				os.RemoveAll(dir)
				b.StartTimer()
			}
			b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
