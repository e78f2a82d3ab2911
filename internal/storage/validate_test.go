package storage

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sealed encodes rb with a correct length and CRC: whatever is wrong with
// it, only the contents are.
func sealed(rb kmsg.RecordBatch) []byte {
	rb.Magic = 2
	rb.Length = int32(batchHeaderSize - batchLengthEnd + len(rb.Records))
	b := rb.AppendTo(nil)
	rb.CRC = int32(castagnoliChecksum(b[posAttributes:]))
	return rb.AppendTo(nil)
}

// rawRecord encodes one record field by field, so that any field can lie.
type rawRecord struct {
	length      *int32 // nil: the true length
	offsetDelta int32
	tsDelta     int64
	keyLen      *int32 // nil: the length of key
	key         []byte
	valueLen    *int32
	value       []byte
	headerCount *int32
	headers     [][2][]byte
	headerKeyLn *int32 // for the first header
	trailing    []byte // bytes after the last header, inside the record
}

func i32(v int32) *int32 { return &v }

func (r rawRecord) encode() []byte {
	body := []byte{0}
	body = kbin.AppendVarlong(body, r.tsDelta)
	body = kbin.AppendVarint(body, r.offsetDelta)
	field := func(n *int32, b []byte) {
		if n != nil {
			body = kbin.AppendVarint(body, *n)
		} else {
			body = kbin.AppendVarint(body, int32(len(b)))
		}
		body = append(body, b...)
	}
	field(r.keyLen, r.key)
	field(r.valueLen, r.value)
	hc := int32(len(r.headers))
	if r.headerCount != nil {
		hc = *r.headerCount
	}
	body = kbin.AppendVarint(body, hc)
	for i, h := range r.headers {
		if i == 0 && r.headerKeyLn != nil {
			field(r.headerKeyLn, h[0])
		} else {
			field(nil, h[0])
		}
		field(nil, h[1])
	}
	body = append(body, r.trailing...)
	n := int32(len(body))
	if r.length != nil {
		n = *r.length
	}
	return append(kbin.AppendVarint(nil, n), body...)
}

func records(rs ...rawRecord) []byte {
	var out []byte
	for _, r := range rs {
		out = append(out, r.encode()...)
	}
	return out
}

func goodRecords(n int) []rawRecord {
	rs := make([]rawRecord, n)
	for i := range rs {
		rs[i] = rawRecord{offsetDelta: int32(i), tsDelta: int64(i), key: []byte("k"), value: []byte("tweet"), headers: [][2][]byte{{[]byte("h"), []byte("v")}}}
	}
	return rs
}

func batchOf(recs []byte, n int32) kmsg.RecordBatch {
	return kmsg.RecordBatch{NumRecords: n, LastOffsetDelta: n - 1, FirstTimestamp: 1000, MaxTimestamp: 1000 + int64(n-1), ProducerID: -1, FirstSequence: -1, Records: recs}
}

func compressed(t *testing.T, codec kgo.CompressionCodec, data []byte) ([]byte, int16) {
	t.Helper()
	c, err := kgo.DefaultCompressor(codec)
	if err != nil {
		t.Fatal(err)
	}
	out, used := c.Compress(new(bytes.Buffer), data)
	return append([]byte(nil), out...), int16(used)
}

// TestPoisonedBatchesAreRefused sends batches whose CRC is right but whose
// contents would break consumers: each is refused with Kafka's error, and
// the log is unchanged.
func TestPoisonedBatchesAreRefused(t *testing.T) {
	good := records(goodRecords(3)...)
	withRecord := func(bad rawRecord) []byte {
		rs := goodRecords(3)
		bad.offsetDelta = 1
		if bad.key == nil && bad.keyLen == nil {
			bad.key = []byte("k")
		}
		rs[1] = bad
		return records(rs...)
	}
	bombZstd := func() []byte {
		enc, _ := zstd.NewWriter(nil)
		return enc.EncodeAll(make([]byte, MaxDecompressedBatch+1), nil)
	}
	gz, gzCodec := compressed(t, kgo.GzipCompression(), good)
	cases := []struct {
		name  string
		batch func() kmsg.RecordBatch
		want  error
		text  string
	}{
		{"codec 5", func() kmsg.RecordBatch { b := batchOf(good, 3); b.Attributes = 5; return b }, ErrUnsupportedCompression, "codec 5"},
		{"codec 7", func() kmsg.RecordBatch { b := batchOf(good, 3); b.Attributes = 7; return b }, ErrUnsupportedCompression, "codec 7"},
		{"zero records", func() kmsg.RecordBatch { b := batchOf(nil, 0); b.LastOffsetDelta = 0; return b }, ErrInvalidRecord, "declares 0 records"},
		{"count lies up", func() kmsg.RecordBatch { return batchOf(good, 5) }, ErrInvalidRecord, "declares 5 records but holds 3"},
		{"count lies down", func() kmsg.RecordBatch { return batchOf(good, 2) }, ErrInvalidRecord, "follow the 2 records"},
		{"last offset delta lies", func() kmsg.RecordBatch { b := batchOf(good, 3); b.LastOffsetDelta = 1000; return b }, ErrInvalidRecord, "last offset delta of 1000"},
		{"negative last offset delta", func() kmsg.RecordBatch { b := batchOf(good, 3); b.LastOffsetDelta = -7; return b }, ErrInvalidRecord, "negative record count"},
		{"offset deltas out of order", func() kmsg.RecordBatch {
			rs := goodRecords(3)
			rs[2].offsetDelta = 7
			return batchOf(records(rs...), 3)
		}, ErrInvalidRecord, "offset delta 7, expected 2"},
		{"record length 2^31-1", func() kmsg.RecordBatch { return batchOf(withRecord(rawRecord{length: i32(math.MaxInt32)}), 3) }, ErrInvalidRecord, "states 2147483647 bytes"},
		{"record length negative", func() kmsg.RecordBatch { return batchOf(withRecord(rawRecord{length: i32(-5)}), 3) }, ErrInvalidRecord, "states -5 bytes"},
		{"record length short", func() kmsg.RecordBatch { return batchOf(withRecord(rawRecord{length: i32(3)}), 3) }, ErrInvalidRecord, "record 1"},
		{"key length 2^31-1", func() kmsg.RecordBatch { return batchOf(withRecord(rawRecord{keyLen: i32(math.MaxInt32)}), 3) }, ErrInvalidRecord, "key length 2147483647"},
		{"key length -2", func() kmsg.RecordBatch { return batchOf(withRecord(rawRecord{keyLen: i32(-2)}), 3) }, ErrInvalidRecord, "key length -2"},
		{"value length 2^31-1", func() kmsg.RecordBatch { return batchOf(withRecord(rawRecord{valueLen: i32(math.MaxInt32)}), 3) }, ErrInvalidRecord, "value length 2147483647"},
		{"header count 2^31-1", func() kmsg.RecordBatch { return batchOf(withRecord(rawRecord{headerCount: i32(math.MaxInt32)}), 3) }, ErrInvalidRecord, "header count"},
		{"header count negative", func() kmsg.RecordBatch { return batchOf(withRecord(rawRecord{headerCount: i32(-1)}), 3) }, ErrInvalidRecord, "header count"},
		{"header key null", func() kmsg.RecordBatch {
			return batchOf(withRecord(rawRecord{headers: [][2][]byte{{[]byte("h"), nil}}, headerKeyLn: i32(-1)}), 3)
		}, ErrInvalidRecord, "header key length -1"},
		{"header key length 2^31-1", func() kmsg.RecordBatch {
			return batchOf(withRecord(rawRecord{headers: [][2][]byte{{[]byte("h"), nil}}, headerKeyLn: i32(math.MaxInt32)}), 3)
		}, ErrInvalidRecord, "header key length"},
		{"bytes after the headers", func() kmsg.RecordBatch { return batchOf(withRecord(rawRecord{trailing: []byte{1, 2, 3}}), 3) }, ErrInvalidRecord, "3 bytes are left"},
		{"transactional without producer id", func() kmsg.RecordBatch { b := batchOf(good, 3); b.Attributes = attrTransactional; return b }, ErrInvalidRecord, "without a producer id"},
		{"producer id without sequence", func() kmsg.RecordBatch { b := batchOf(good, 3); b.ProducerID = 7; return b }, ErrInvalidRecord, "sequence -1"},
		{"garbage gzip", func() kmsg.RecordBatch { b := batchOf([]byte("not gzip at all"), 3); b.Attributes = 1; return b }, ErrCorruptBatch, "gzip data does not decompress"},
		{"garbage snappy", func() kmsg.RecordBatch {
			b := batchOf([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2}, 3)
			b.Attributes = 2
			return b
		}, ErrCorruptBatch, "snappy data does not decompress"},
		{"garbage xerial snappy", func() kmsg.RecordBatch {
			b := batchOf(append(append([]byte{}, xerialMagic...), 0, 0, 0, 1, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff), 3)
			b.Attributes = 2
			return b
		}, ErrCorruptBatch, "snappy data does not decompress"},
		{"garbage lz4", func() kmsg.RecordBatch { b := batchOf([]byte("no lz4 frame here"), 3); b.Attributes = 3; return b }, ErrCorruptBatch, "lz4 data does not decompress"},
		{"garbage zstd", func() kmsg.RecordBatch { b := batchOf([]byte("no zstd frame here"), 3); b.Attributes = 4; return b }, ErrCorruptBatch, "zstd data does not decompress"},
		{"gzip cut short", func() kmsg.RecordBatch { b := batchOf(gz[:len(gz)/2], 3); b.Attributes = gzCodec; return b }, ErrCorruptBatch, "gzip data does not decompress"},
		{"gzip of bad records", func() kmsg.RecordBatch {
			z, c := compressed(t, kgo.GzipCompression(), withRecord(rawRecord{keyLen: i32(math.MaxInt32)}))
			b := batchOf(z, 3)
			b.Attributes = c
			return b
		}, ErrInvalidRecord, "key length"},
		{"zstd bomb", func() kmsg.RecordBatch { b := batchOf(bombZstd(), 3); b.Attributes = 4; return b }, ErrCorruptBatch, "more than 64 MiB"},
		{"gzip bomb", func() kmsg.RecordBatch {
			z, c := compressed(t, kgo.GzipCompression(), make([]byte, MaxDecompressedBatch+1))
			b := batchOf(z, 3)
			b.Attributes = c
			return b
		}, ErrCorruptBatch, "more than 64 MiB"},
		{"snappy bomb", func() kmsg.RecordBatch {
			// A raw snappy block whose header claims 2^31 bytes.
			b := batchOf(append(kbin.AppendUvarint(nil, 1<<31-1), 0), 3)
			b.Attributes = 2
			return b
		}, ErrCorruptBatch, "snappy data does not decompress"},
	}
	l := openTest(t, t.TempDir(), DefaultConfig())
	defer l.Close()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := l.Append(sealed(c.batch()))
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("got %v, want %v mentioning %q", err, c.want, c.text)
			}
			if _, end := l.Offsets(); end != 0 {
				t.Fatalf("a refused batch moved the end offset to %d", end)
			}
		})
	}
}

// TestValidBatchesOfEveryCodecAreStored: the same records, uncompressed
// and in each codec (snappy both raw and as the Java client frames it),
// with null keys and values and headers, are stored and read back.
func TestValidBatchesOfEveryCodecAreStored(t *testing.T) {
	rs := goodRecords(4)
	rs[1].keyLen, rs[1].key = i32(-1), nil
	rs[2].valueLen, rs[2].value = i32(-1), nil
	rs[3].headers = nil
	recs := records(rs...)
	l := openTest(t, t.TempDir(), DefaultConfig())
	defer l.Close()
	var want int64
	store := func(name string, data []byte, codec int16) {
		b := batchOf(data, 4)
		b.Attributes = codec
		res, err := l.Append(sealed(b))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.BaseOffset != want {
			t.Fatalf("%s: stored at %d, want %d", name, res.BaseOffset, want)
		}
		want += 4
	}
	store("none", recs, 0)
	for _, codec := range []kgo.CompressionCodec{kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		data, used := compressed(t, codec, recs)
		store(codecNames[used], data, used)
	}
	// Java's framing of snappy: the xerial header, then length-prefixed blocks.
	xerial := append(append([]byte{}, xerialMagic...), 0, 0, 0, 1, 0, 0, 0, 1)
	half := len(recs) / 2
	for _, part := range [][]byte{recs[:half], recs[half:]} {
		blk, _ := compressed(t, kgo.SnappyCompression(), part)
		xerial = kbin.AppendInt32(xerial, int32(len(blk)))
		xerial = append(xerial, blk...)
	}
	store("xerial snappy", xerial, codecSnappy)
	if got := recordsFrom(t, l, 0); len(got) != int(want) {
		t.Fatalf("read back %d records, want %d", len(got), want)
	}
}

// TestMaxTimestampComesFromTheRecords: a batch whose header lies about its
// largest timestamp (here: a year ahead) is stored with the real one, as
// Kafka does, so retention.ms and lookups by time see the truth.
func TestMaxTimestampComesFromTheRecords(t *testing.T) {
	l := openTest(t, t.TempDir(), DefaultConfig())
	defer l.Close()
	b := batchOf(records(goodRecords(3)...), 3)
	b.MaxTimestamp = 1000 + 365*24*3600*1000
	b.Attributes = attrTimestampLogAppend // and claims the broker set it
	if _, err := l.Append(sealed(b)); err != nil {
		t.Fatal(err)
	}
	raw, err := l.readAll(0)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := decodeBatch(raw)
	if err != nil {
		t.Fatalf("stored batch does not decode (CRC not re-sealed?): %v", err)
	}
	if rb.MaxTimestamp != 1002 || rb.Attributes&attrTimestampLogAppend != 0 {
		t.Fatalf("stored max timestamp %d, attributes %#x; want 1002 and CreateTime", rb.MaxTimestamp, rb.Attributes)
	}
}

// TestOneBatchPerPartition: Kafka refuses a produce that carries more than
// one batch for a partition (produce v3+); so does creek, which keeps a
// refused request's write all or nothing.
func TestOneBatchPerPartition(t *testing.T) {
	l := openTest(t, t.TempDir(), DefaultConfig())
	defer l.Close()
	one := sealed(batchOf(records(goodRecords(1)...), 1))
	if _, err := l.Append(append(append([]byte{}, one...), one...)); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("two batches: %v", err)
	}
}

// TestCompressionTypeRecompresses: a topic whose compression.type names a
// codec stores every batch in that codec, whatever the producer used, with
// a valid CRC, the producer's id, epoch and sequence kept and the same
// records; compression.type=producer keeps the producer's codec.
func TestCompressionTypeRecompresses(t *testing.T) {
	targets := map[string]int{"producer": -1, "uncompressed": codecNone, "gzip": codecGzip, "snappy": codecSnappy, "lz4": codecLz4, "zstd": codecZstd}
	sources := []kgo.CompressionCodec{kgo.NoCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()}
	sourceCodecs := []int{codecNone, codecLz4, codecZstd}
	for name, want := range targets {
		cfg := DefaultConfig()
		cfg.Compression = name
		if name == "zstd" {
			cfg.CompressionLevel = 19
		}
		l := openTest(t, t.TempDir(), cfg)
		values := []string{"a", "bb", "ccc", "한국어"}
		for i, src := range sources {
			raw := makeBatch(t, batchSpec{values: values, pid: 7, epoch: 2, seq: int32(i * len(values)), codec: src, padValue: 200})
			if _, err := l.Append(raw); err != nil {
				t.Fatalf("compression.type=%s, producer codec %d: %v", name, i, err)
			}
		}
		raw, err := l.readAll(0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range sources {
			n := batchLen(raw)
			rb, err := decodeBatch(raw[:n])
			if err != nil {
				t.Fatalf("compression.type=%s: stored batch %d does not decode: %v", name, i, err)
			}
			codec := want
			if want < 0 {
				codec = sourceCodecs[i]
			}
			if got := int(rb.Attributes & 7); got != codec || rb.ProducerID != 7 || rb.ProducerEpoch != 2 || rb.FirstSequence != int32(i*len(values)) {
				t.Errorf("compression.type=%s: batch %d stored with codec %d, producer %d/%d/%d; want codec %d, 7/2/%d",
					name, i, got, rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence, codec, i*len(values))
			}
			raw = raw[n:]
		}
		got := recordsFrom(t, l, 0)
		for o := range int64(len(sources) * len(values)) {
			if v := values[o%int64(len(values))] + strings.Repeat("x", 200); got[o] != v {
				t.Errorf("compression.type=%s: offset %d reads %q", name, o, got[o])
			}
		}
		l.Close()
	}
}

// TestTimestampBounds: with CreateTime, a batch holding a record further
// in the future than message.timestamp.after.max.ms (or further in the past
// than message.timestamp.before.max.ms) is refused and nothing is written.
func TestTimestampBounds(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TimestampBeforeMaxMs = time.Hour.Milliseconds()
	l := openTest(t, t.TempDir(), cfg)
	defer l.Close()
	now := time.Now()
	for _, ts := range []time.Time{now.Add(2 * time.Hour), now.Add(-2 * time.Hour)} {
		_, err := l.Append(makeBatch(t, batchSpec{values: []string{"a", "b"}, firstTs: ms(now), tsStep: ts.Sub(now).Milliseconds()}))
		if !errors.Is(err, ErrInvalidTimestamp) {
			t.Errorf("a record at %s: %v, want ErrInvalidTimestamp", ts.Sub(now), err)
		}
	}
	if _, err := l.Append(makeBatch(t, batchSpec{values: []string{"a", "b"}, firstTs: ms(now), tsStep: 30 * 60 * 1000})); err != nil {
		t.Fatalf("a record half an hour ahead: %v", err)
	}
	if got := recordsFrom(t, l, 0); len(got) != 2 {
		t.Fatalf("%d records stored, want the 2 within bounds", len(got))
	}
	cfg.LogAppendTime = true // the broker's clock stamps them: no bound applies
	l2 := openTest(t, t.TempDir(), cfg)
	defer l2.Close()
	if _, err := l2.Append(makeBatch(t, batchSpec{values: []string{"a", "b"}, firstTs: ms(now), tsStep: 3 * 3600 * 1000})); err != nil {
		t.Fatalf("LogAppendTime: %v", err)
	}
}

// TestRecompressedBatchOverMaxMessageBytes: a small zstd batch that
// compression.type=uncompressed would store larger than max.message.bytes
// is refused, and nothing is written.
func TestRecompressedBatchOverMaxMessageBytes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Compression, cfg.MaxMessageBytes = "uncompressed", 2000
	l := openTest(t, t.TempDir(), cfg)
	defer l.Close()
	raw := makeBatch(t, batchSpec{values: []string{"a", "b", "c"}, codec: kgo.ZstdCompression(), padValue: 1000})
	if len(raw) > 2000 {
		t.Fatalf("the compressed batch is %d bytes: the test needs it under max.message.bytes", len(raw))
	}
	if _, err := l.Append(raw); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("recompressed to %s: %v, want ErrBatchTooLarge", "uncompressed", err)
	}
	if _, end := l.Offsets(); end != 0 {
		t.Fatalf("log end %d after a refused batch, want 0", end)
	}
}
