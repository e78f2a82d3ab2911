package broker

import (
	"encoding/binary"
	"hash/crc32"
	"os/exec"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// reseal recomputes a batch's CRC after a test changed it, so that only its
// contents are wrong, as a buggy or hostile producer would send it.
func reseal(b []byte) []byte {
	binary.BigEndian.PutUint32(b[17:21], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// TestPoisonedBatchesAreRefusedOverTheWire sends batches with a correct CRC
// and invalid contents between good ones. Each is answered with Kafka's
// error code and a message, and every consumer (franz-go, and kcat, which
// before this broke with "Decompression (codec 0x7) failed") reads the
// partition to its end and gets exactly the good records.
func TestPoisonedBatchesAreRefusedOverTheWire(t *testing.T) {
	b := protoBroker(t, nil)
	const topic = "poison"
	id := protoCreateTopic(t, b, topic, 1, nil)
	c := protoDial(t, b)
	var good []string
	produceGood := func(v string) {
		t.Helper()
		sp := protoProduceRaw(t, c, 9, -1, topic, id, 0, protoBatch(t, protoBatchSpec{values: []string{v}}))
		protoErr(t, "good batch "+v, sp.ErrorCode, nil)
		good = append(good, v)
	}
	poisons := []struct {
		name    string
		version int16
		batch   func() []byte
		want    *kerr.Error
	}{
		{"codec 7", 9, func() []byte {
			bb := protoBatch(t, protoBatchSpec{values: []string{"x"}})
			bb[22] |= 7
			return reseal(bb)
		}, kerr.UnsupportedCompressionType},
		{"codec 5, lz4 data", 9, func() []byte {
			bb := protoBatch(t, protoBatchSpec{values: []string{"x", "y"}, codec: kgo.Lz4Compression()})
			bb[22] = bb[22]&^7 | 5
			return reseal(bb)
		}, kerr.UnsupportedCompressionType},
		{"record count lies", 9, func() []byte {
			bb := protoBatch(t, protoBatchSpec{values: []string{"a", "b"}})
			binary.BigEndian.PutUint32(bb[57:61], 3)
			binary.BigEndian.PutUint32(bb[23:27], 2) // lastOffsetDelta agrees with the lie
			return reseal(bb)
		}, kerr.InvalidRecord},
		{"key length 2^31-1", 9, func() []byte {
			bb := protoBatch(t, protoBatchSpec{values: []string{"a"}})
			// The record: length, attributes, timestamp delta 0, offset delta 0, then the key length.
			bb = append(bb[:61+4], append([]byte{0xfe, 0xff, 0xff, 0xff, 0x0f}, bb[61+5:]...)...)
			binary.BigEndian.PutUint32(bb[8:12], uint32(len(bb)-12))
			return reseal(bb)
		}, kerr.InvalidRecord},
		{"garbage zstd", 9, func() []byte {
			bb := protoBatch(t, protoBatchSpec{values: []string{strings.Repeat("tweet ", 50)}, codec: kgo.ZstdCompression()})
			for i := 61 + 8; i < len(bb); i++ {
				bb[i] ^= 0x5a
			}
			return reseal(bb)
		}, kerr.CorruptMessage},
		{"zstd at produce v6", 6, func() []byte {
			return protoBatch(t, protoBatchSpec{values: []string{"z"}, codec: kgo.ZstdCompression()})
		}, kerr.UnsupportedCompressionType},
		{"transactional without producer id", 9, func() []byte {
			bb := protoBatch(t, protoBatchSpec{values: []string{"t"}})
			bb[22] |= 0x10
			return reseal(bb)
		}, kerr.InvalidRecord},
	}
	produceGood("first")
	for _, p := range poisons {
		sp := protoProduceRaw(t, c, p.version, -1, topic, id, 0, p.batch())
		protoErr(t, p.name, sp.ErrorCode, p.want)
		if protoStr(sp.ErrorMessage) == "" {
			t.Errorf("%s: answered without a message", p.name)
		}
		produceGood("after " + p.name)
	}

	recs := protoConsume(t, b, topic, len(good))
	for i, r := range recs {
		if r.Offset != int64(i) || string(r.Value) != good[i] {
			t.Errorf("record %d: offset %d value %q, want offset %d value %q", i, r.Offset, r.Value, i, good[i])
		}
	}
	if _, err := exec.LookPath("kcat"); err == nil {
		out := kcatRun(t, b, "", "-C", "-t", topic, "-o", "beginning", "-e", "-f", "%s\n")
		kcatCompare(t, "kcat reads the partition", kcatLines(out), good)
	} else {
		t.Log("kcat is not installed; the franz-go read above is the check")
	}
}
