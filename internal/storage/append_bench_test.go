package storage

import (
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// benchValues are 64 text-like values of 1 KB, so that compression has
// work to do.
func benchValues() []string {
	words := []string{"kafka", "tweet", "stream", "데이터", "파이프라인", "retention", "consumer", "#bigdata", "segment", "broker"}
	rng := rand.New(rand.NewSource(1))
	values := make([]string, 64)
	for i := range values {
		v := make([]byte, 0, 1024)
		for len(v) < 1024 {
			v = append(v, words[rng.Intn(len(words))]...)
			v = append(v, ' ')
		}
		values[i] = string(v[:1024])
	}
	return values
}

var benchCodecs = []struct {
	name  string
	codec kgo.CompressionCodec
}{{"none", kgo.CompressionCodec{}}, {"lz4", kgo.Lz4Compression()}, {"zstd", kgo.ZstdCompression()}}

// BenchmarkValidate measures the checks alone (decompression included).
func BenchmarkValidate(b *testing.B) {
	for _, codec := range benchCodecs {
		b.Run(codec.name, func(b *testing.B) {
			batch := makeBatch(b, batchSpec{values: benchValues(), firstTs: 1_000_000, codec: codec.codec})
			rb, err := decodeBatch(batch)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(64 * 1024))
			b.ReportAllocs()
			for range b.N {
				if _, err := validateClientBatch(batch, &rb, rulesOf(DefaultConfig(), time.Now())); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppend measures Log.Append, with its checks of the records, for
// batches of 64 records of 1 KB (text-like, so compression has work to do)
// in each codec. Bytes/s is of uncompressed record values.
func BenchmarkAppend(b *testing.B) {
	values := benchValues()
	for _, codec := range benchCodecs {
		b.Run(codec.name, func(b *testing.B) {
			batch := makeBatch(b, batchSpec{values: values, firstTs: 1_000_000, codec: codec.codec})
			cfg := DefaultConfig()
			cfg.RetentionBytes = 64 << 20
			l, err := Open(b.TempDir(), cfg, quietOptions())
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			buf := make([]byte, len(batch))
			b.SetBytes(int64(64 * 1024))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				copy(buf, batch)
				if _, err := l.Append(buf); err != nil {
					b.Fatal(fmt.Errorf("append: %w", err))
				}
			}
		})
	}
}

// BenchmarkValidateSmallRecords checks batches of 1,000 records of 100 B
// (creek bench produce --record-size 100): the walk over the records
// weighs more than the bytes. Bytes/s is of record values.
func BenchmarkValidateSmallRecords(b *testing.B) {
	long := benchValues()
	values := make([]string, 1000)
	for i := range values {
		values[i] = long[i%64][:100]
	}
	batch := makeBatch(b, batchSpec{values: values, firstTs: 1_000_000, tsStep: 1, codec: kgo.NoCompression()})
	rb, err := decodeBatch(batch)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(100 * 1000)
	b.ReportAllocs()
	for range b.N {
		if _, err := validateClientBatch(batch, &rb, rulesOf(DefaultConfig(), time.Now())); err != nil {
			b.Fatal(err)
		}
	}
}
