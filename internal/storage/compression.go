package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's compression codecs, the low three bits of a batch's attributes.
const (
	codecNone   = 0
	codecGzip   = 1
	codecSnappy = 2
	codecLz4    = 3
	codecZstd   = 4
)

var codecNames = [...]string{"none", "gzip", "snappy", "lz4", "zstd"}

// MaxDecompressedBatch bounds what one compressed batch may expand to when
// the broker checks it: 64 MiB, far above what producers send (their
// batch.size counts uncompressed bytes and defaults to 16 KiB to 1 MiB),
// and far below what a decompression bomb would take.
const MaxDecompressedBatch = 64 << 20

// errTooLarge is returned when a batch expands beyond MaxDecompressedBatch.
var errTooLarge = fmt.Errorf("decompresses to more than %d MiB", MaxDecompressedBatch>>20)

// decompress expands the records of a compressed batch into a buffer from
// the pool, never past MaxDecompressedBatch. The caller gives the buffer
// back with putDecompressBuffer.
func decompress(codec int, src []byte) (*bytes.Buffer, error) {
	out := decompressBuffers.Get().(*bytes.Buffer)
	out.Reset()
	var err error
	switch codec {
	case codecGzip:
		err = decompressStream(out, src, gzipReaders.Get().(*gzipReader))
	case codecLz4:
		err = decompressStream(out, src, lz4Readers.Get().(*lz4Reader))
	case codecSnappy:
		err = decompressSnappy(out, src)
	case codecZstd:
		err = decompressZstd(out, src)
	default:
		err = fmt.Errorf("compression codec %d", codec)
	}
	if err != nil {
		putDecompressBuffer(out)
		return nil, err
	}
	return out, nil
}

var decompressBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putDecompressBuffer returns a buffer to the pool unless it grew large:
// the pool should not pin one big batch's memory.
func putDecompressBuffer(b *bytes.Buffer) {
	if b.Cap() <= 4<<20 {
		decompressBuffers.Put(b)
	}
}

// streamReader is a pooled decompressing reader that can start on new input.
type streamReader interface {
	io.Reader
	reset(src []byte) error
	put()
}

// decompressStream reads r to its end into out, failing past the bound.
func decompressStream(out *bytes.Buffer, src []byte, r streamReader) error {
	defer r.put()
	if err := r.reset(src); err != nil {
		return err
	}
	n, err := out.ReadFrom(io.LimitReader(r, MaxDecompressedBatch+1))
	if err != nil {
		return err
	}
	if n > MaxDecompressedBatch {
		return errTooLarge
	}
	return nil
}

type gzipReader struct {
	src bytes.Reader
	gzip.Reader
}

var gzipReaders = sync.Pool{New: func() any { return new(gzipReader) }}

func (r *gzipReader) reset(src []byte) error {
	r.src.Reset(src)
	return r.Reader.Reset(&r.src)
}

func (r *gzipReader) put() { gzipReaders.Put(r) }

type lz4Reader struct {
	src bytes.Reader
	*lz4.Reader
}

var lz4Readers = sync.Pool{New: func() any { return &lz4Reader{Reader: lz4.NewReader(nil)} }}

func (r *lz4Reader) reset(src []byte) error {
	r.src.Reset(src)
	r.Reader.Reset(&r.src)
	return nil
}

func (r *lz4Reader) put() { lz4Readers.Put(r) }

// zstdDecoder decodes whole frames; the decoder refuses a frame that
// declares or grows past the bound before it allocates for it.
var zstdDecoder, _ = zstd.NewReader(nil,
	zstd.WithDecoderConcurrency(0),
	zstd.WithDecoderMaxMemory(MaxDecompressedBatch),
	zstd.WithDecoderMaxWindow(MaxDecompressedBatch))

func decompressZstd(out *bytes.Buffer, src []byte) error {
	b, err := zstdDecoder.DecodeAll(src, out.AvailableBuffer())
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
		return errTooLarge
	}
	if err != nil {
		return err
	}
	out.Write(b) // b is out's own spare capacity when it fit, so this only moves the length
	return nil
}

// xerialMagic starts snappy data framed as the Java client frames it: a
// 16-byte header, then blocks each with a big-endian length. Without it
// the data is one raw snappy block (librdkafka's and franz-go's default).
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

func decompressSnappy(out *bytes.Buffer, src []byte) error {
	if !bytes.HasPrefix(src, xerialMagic) {
		return snappyBlock(out, src)
	}
	if len(src) < 16 {
		return errors.New("xerial snappy header is cut short")
	}
	for src = src[16:]; len(src) > 0; {
		if len(src) < 4 {
			return errors.New("xerial snappy block length is cut short")
		}
		n := binary.BigEndian.Uint32(src)
		src = src[4:]
		if uint64(n) > uint64(len(src)) {
			return fmt.Errorf("xerial snappy block of %d bytes runs past the %d left", n, len(src))
		}
		if err := snappyBlock(out, src[:n]); err != nil {
			return err
		}
		src = src[n:]
	}
	return nil
}

// snappyBlock appends one decoded snappy block to out; a block states its
// decoded length up front, which is checked before anything is allocated.
func snappyBlock(out *bytes.Buffer, block []byte) error {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return err
	}
	if out.Len()+n > MaxDecompressedBatch {
		return errTooLarge
	}
	out.Grow(n)
	b, err := s2.Decode(out.AvailableBuffer()[:n], block)
	if err != nil {
		return err
	}
	out.Write(b)
	return nil
}

// codecByName maps compression.type's values to codecs: -1 for producer
// (keep the producer's), codecNone for uncompressed.
func codecByName(name string) int {
	switch name {
	case "uncompressed":
		return codecNone
	case "gzip":
		return codecGzip
	case "snappy":
		return codecSnappy
	case "lz4":
		return codecLz4
	case "zstd":
		return codecZstd
	}
	return -1
}

// compressors are kgo's, one per codec and level, shared by every log
// (they pool their own state and are safe for concurrent use).
var compressors sync.Map // compressorKey -> kgo.Compressor

type compressorKey struct{ codec, level int }

// codecDefaultLevel asks compressorFor for the codec library's own default
// level (the log cleaner re-encodes batches so, as they came).
const codecDefaultLevel = math.MinInt

func compressorFor(codec, level int) (kgo.Compressor, error) {
	key := compressorKey{codec, level}
	if c, ok := compressors.Load(key); ok {
		return c.(kgo.Compressor), nil
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
	if level != codecDefaultLevel {
		if l := libraryLevel(codec, level); l != 0 {
			cc = cc.WithLevel(l)
		}
	}
	c, err := kgo.DefaultCompressor(cc)
	if err != nil {
		return nil, fmt.Errorf("%s compressor at level %d: %w", codecNames[codec], level, err)
	}
	actual, _ := compressors.LoadOrStore(key, c)
	return actual.(kgo.Compressor), nil
}

// libraryLevel turns a Kafka compression level (compression.*.level) into
// the level of the Go library kgo compresses with.
func libraryLevel(codec, level int) int {
	switch codec {
	case codecLz4: // Kafka: 1 (fast) to 17; pierrec/lz4: Fast, then Level1 to Level9
		if level <= 1 {
			return 0
		}
		return int(lz4.Level1) << (min(level, 9) - 1)
	case codecZstd: // Kafka: zstd's own levels; klauspost/zstd: four speeds
		return int(zstd.EncoderLevelFromZstd(level))
	case codecGzip: // the same levels; -1 is the default
		return max(level, 0)
	}
	return 0
}

// recompress rebuilds a batch with its records (recs, uncompressed) in
// another codec, as Kafka's broker does for a topic whose compression.type
// is not producer. The header is kept but for the codec bits, the length
// and the CRC; rb is updated to match. The batch goes to new memory.
func recompress(raw []byte, rb *kmsg.RecordBatch, recs []byte, codec, level int) ([]byte, error) {
	body := recs
	if codec != codecNone {
		comp, err := compressorFor(codec, level)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		var got kgo.CompressionCodecType
		if body, got = comp.Compress(&buf, recs); int(got) != codec || body == nil {
			return nil, fmt.Errorf("recompressing a batch with %s failed", codecNames[codec])
		}
	}
	out := make([]byte, batchHeaderSize+len(body))
	copy(out, raw[:batchHeaderSize])
	copy(out[batchHeaderSize:], body)
	rb.Attributes = rb.Attributes&^0x07 | int16(codec)
	rb.Length = int32(len(out) - batchLengthEnd)
	rb.Records = out[batchHeaderSize:]
	binary.BigEndian.PutUint32(out[batchLengthEnd-4:], uint32(rb.Length))
	binary.BigEndian.PutUint16(out[posAttributes:], uint16(rb.Attributes))
	binary.BigEndian.PutUint32(out[posCRC:], crc32.Checksum(out[posAttributes:], castagnoli))
	return out, nil
}
