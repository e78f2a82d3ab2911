package s3

import (
	"bytes"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// A JSON object is written as a run of independently compressed chunks:
// gzip members or zstd frames, which every reader (gzip, zcat, Python,
// DuckDB, Athena, Spark) reads as one stream. Chunks need no compressor
// that lives as long as the object, so memory does not grow with the
// number of open objects, and chunks of several objects compress in
// parallel.
type compressor interface {
	compress(dst, src []byte) []byte
	ext() string
}

type noCompression struct{}

func (noCompression) compress(dst, src []byte) []byte { return append(dst, src...) }
func (noCompression) ext() string                     { return "" }

type gzipCompression struct{ pool sync.Pool }

func newGzip() *gzipCompression {
	g := &gzipCompression{}
	g.pool.New = func() any {
		w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
		return w
	}
	return g
}

func (g *gzipCompression) compress(dst, src []byte) []byte {
	w := g.pool.Get().(*gzip.Writer)
	defer g.pool.Put(w)
	buf := bytes.NewBuffer(dst)
	w.Reset(buf)
	w.Write(src) // writes to a bytes.Buffer cannot fail
	w.Close()
	return buf.Bytes()
}

func (g *gzipCompression) ext() string { return ".gz" }

type zstdCompression struct{ enc *zstd.Encoder }

func newZstd() *zstdCompression {
	// EncodeAll is safe for concurrent use; a lower-memory encoder keeps
	// the sink's memory bounded.
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithLowerEncoderMem(true), zstd.WithEncoderConcurrency(2))
	return &zstdCompression{enc: enc}
}

func (z *zstdCompression) compress(dst, src []byte) []byte { return z.enc.EncodeAll(src, dst) }
func (z *zstdCompression) ext() string                     { return ".zst" }
