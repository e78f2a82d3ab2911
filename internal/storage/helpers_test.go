package storage

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// batchSpec describes a test batch; zero values give a plain batch of one
// record without a producer id.
type batchSpec struct {
	values   []string
	firstTs  int64
	tsStep   int64 // added per record
	pid      int64
	epoch    int16
	seq      int32
	codec    kgo.CompressionCodec
	noCodec  bool
	padValue int      // extra bytes appended to each value
	txn      bool     // part of a transaction
	keys     []string // the records' keys (k0, k1... when nil); nullBytes for a null key
}

// nullBytes as a key or value in a batchSpec stands for null (a value: a tombstone).
const nullBytes = "\x00null"

// makeBatch encodes a v2 record batch the way a producer would.
func makeBatch(t testing.TB, sp batchSpec) []byte {
	t.Helper()
	if len(sp.values) == 0 {
		sp.values = []string{"v"}
	}
	if sp.firstTs == 0 {
		sp.firstTs = time.Now().UnixMilli()
	}
	var recs []byte
	for i, v := range sp.values {
		val := []byte(v)
		if sp.padValue > 0 {
			val = append(val, bytes.Repeat([]byte{'x'}, sp.padValue)...)
		}
		if v == nullBytes {
			val = nil
		}
		key := []byte(fmt.Sprintf("k%d", i))
		if sp.keys != nil {
			key = []byte(sp.keys[i])
			if sp.keys[i] == nullBytes {
				key = nil
			}
		}
		r := kmsg.Record{
			TimestampDelta64: int64(i) * sp.tsStep,
			OffsetDelta:      int32(i),
			Key:              key,
			Value:            val,
		}
		body := r.AppendTo(nil) // with a zero Length prefix; re-encode with the real one
		r.Length = int32(len(body) - 1)
		recs = r.AppendTo(recs)
	}
	attrs := int16(0)
	if !sp.noCodec && sp.codec != (kgo.CompressionCodec{}) {
		comp, err := testCompressor(sp.codec)
		if err != nil {
			t.Fatal(err)
		}
		out, codec := comp.Compress(new(bytes.Buffer), recs)
		recs = append([]byte(nil), out...)
		attrs = int16(codec)
	}
	if sp.txn {
		attrs |= attrTransactional
	}
	pid := sp.pid
	if pid == 0 {
		pid = -1
	}
	seq := sp.seq
	if pid < 0 {
		seq = -1
	}
	n := len(sp.values)
	rb := kmsg.RecordBatch{
		Length:          int32(batchHeaderSize - batchLengthEnd + len(recs)),
		Magic:           2,
		Attributes:      attrs,
		LastOffsetDelta: int32(n - 1),
		FirstTimestamp:  sp.firstTs,
		MaxTimestamp:    sp.firstTs + int64(n-1)*sp.tsStep,
		ProducerID:      pid,
		ProducerEpoch:   sp.epoch,
		FirstSequence:   seq,
		NumRecords:      int32(n),
		Records:         recs,
	}
	b := rb.AppendTo(nil)
	crc := crc32.Checksum(b[posAttributes:], castagnoli)
	rb.CRC = int32(crc)
	return rb.AppendTo(nil)
}

var testCompressors sync.Map // kgo.CompressionCodec -> kgo.Compressor: a zstd encoder is costly to make

func testCompressor(codec kgo.CompressionCodec) (kgo.Compressor, error) {
	if c, ok := testCompressors.Load(codec); ok {
		return c.(kgo.Compressor), nil
	}
	c, err := kgo.DefaultCompressor(codec)
	if err == nil {
		testCompressors.Store(codec, c)
	}
	return c, err
}

func quietOptions() Options {
	return Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func openTest(t *testing.T, dir string, cfg Config) *Log {
	t.Helper()
	l, err := Open(dir, cfg, quietOptions())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// recordsFrom decodes every record value from offset on.
func recordsFrom(t *testing.T, l *Log, offset int64) map[int64]string {
	t.Helper()
	raw, err := l.readAll(offset)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]string{}
	for len(raw) > 0 {
		n := batchLen(raw)
		if err := eachRecordValue(raw[:n], func(o int64, v []byte) { got[o] = string(v) }); err != nil {
			t.Fatal(err)
		}
		raw = raw[n:]
	}
	return got
}

func eachRecordValue(raw []byte, fn func(int64, []byte)) error {
	rb, err := decodeBatch(raw)
	if err != nil {
		return err
	}
	recs, err := decompressor.Decompress(rb.Records, kgo.CompressionCodecType(rb.Attributes&7))
	if err != nil {
		return err
	}
	for len(recs) > 0 {
		var r kmsg.Record
		n, size := kbin.Varint(recs)
		if err := r.ReadFrom(recs[:size+int(n)]); err != nil {
			return err
		}
		fn(rb.FirstOffset+int64(r.OffsetDelta), r.Value)
		recs = recs[size+int(n):]
	}
	return nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// closeFiles closes the log's files without writing anything more, as a
// kill -9 would leave them: no snapshot, no clean-shutdown marker.
func (l *Log) closeFiles() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.notifyAppended()
	for _, s := range l.segments {
		s.close()
	}
}

func castagnoliChecksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
