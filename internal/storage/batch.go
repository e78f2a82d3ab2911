package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A record batch (Kafka's message format v2) is the unit of storage: the
// broker writes the bytes a producer sent, with only the fields the broker
// owns rewritten in place. Decoding goes through kmsg.RecordBatch; the
// positions below are those of its fixed-size header and are used only to
// patch broker-owned fields without copying the batch.
const (
	batchHeaderSize  = 61 // kmsg.RecordBatch fields before Records
	batchLengthEnd   = 12 // FirstOffset (8) + Length (4): bytes not counted by Length
	posLeaderEpoch   = 12
	posMagic         = 16
	posCRC           = 17
	posAttributes    = 21 // the CRC covers everything from here on
	posMaxTimestamp  = 35
	posProducerID    = 43
	posProducerEpoch = 51

	attrTimestampLogAppend = 0x08
	attrTransactional      = 0x10
	attrControl            = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors a produce can fail with; the protocol layer maps them to Kafka codes.
var (
	ErrCorruptBatch       = errors.New("corrupt record batch")
	ErrUnsupportedFormat  = errors.New("unsupported message format")
	ErrBatchTooLarge      = errors.New("record batch larger than max.message.bytes")
	ErrInvalidRecord      = errors.New("invalid record batch")
	ErrOutOfOrderSequence = errors.New("out of order sequence number")
	ErrInvalidEpoch       = errors.New("producer epoch is older than the current one")
	ErrOffsetOutOfRange   = errors.New("offset out of range")
	ErrClosed             = errors.New("partition log is closed")
)

// NewBatch encodes records written at nowMs as one record batch without a
// producer, as a client's produce request carries it: Append gives it its
// offsets. Each record's offset delta and length are set here.
func NewBatch(records []kmsg.Record, nowMs int64) []byte {
	var body []byte
	for i := range records {
		r := &records[i]
		r.OffsetDelta, r.Length = int32(i), 0
		r.Length = int32(len(r.AppendTo(nil)) - 1) // everything after the (now one-byte) length
		body = r.AppendTo(body)
	}
	return sealBatch(kmsg.RecordBatch{
		Magic:           2,
		LastOffsetDelta: int32(len(records) - 1),
		FirstTimestamp:  nowMs,
		MaxTimestamp:    nowMs,
		ProducerID:      -1,
		ProducerEpoch:   -1,
		FirstSequence:   -1,
		NumRecords:      int32(len(records)),
		Records:         body,
	})
}

// sealBatch encodes a batch the broker writes, with its length and CRC.
func sealBatch(rb kmsg.RecordBatch) []byte {
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:12], uint32(len(b)-batchLengthEnd))
	binary.BigEndian.PutUint32(b[posCRC:], crc32.Checksum(b[posAttributes:], castagnoli))
	return b
}

// batchLen returns the total size of the batch starting at b, or -1 when b
// is too short to hold the length field.
func batchLen(b []byte) int {
	if len(b) < batchLengthEnd {
		return -1
	}
	return batchLengthEnd + int(int32(binary.BigEndian.Uint32(b[8:12])))
}

// decodeBatch decodes and validates one complete batch: magic 2, a length
// that covers the fixed header, and a matching CRC-32C.
func decodeBatch(b []byte) (kmsg.RecordBatch, error) {
	var rb kmsg.RecordBatch
	if len(b) > posMagic && b[posMagic] != 2 {
		return rb, fmt.Errorf("%w: magic %d (only v2 record batches, Kafka 0.11+, are stored)", ErrUnsupportedFormat, int8(b[posMagic]))
	}
	if len(b) < batchHeaderSize {
		return rb, fmt.Errorf("%w: %d bytes is shorter than a batch header", ErrCorruptBatch, len(b))
	}
	if err := rb.ReadFrom(b); err != nil {
		return rb, fmt.Errorf("%w: %v", ErrCorruptBatch, err)
	}
	if got := crc32.Checksum(b[posAttributes:], castagnoli); got != uint32(rb.CRC) {
		return rb, fmt.Errorf("%w: CRC mismatch (batch says %08x, data has %08x)", ErrCorruptBatch, uint32(rb.CRC), got)
	}
	if rb.LastOffsetDelta < 0 || rb.NumRecords < 0 {
		return rb, fmt.Errorf("%w: negative record count", ErrInvalidRecord)
	}
	return rb, nil
}

// splitBatches cuts a produce payload into its batches, decoding each.
func splitBatches(data []byte) ([][]byte, []kmsg.RecordBatch, error) {
	var raws [][]byte
	var hdrs []kmsg.RecordBatch
	for len(data) > 0 {
		n := batchLen(data)
		if n < batchHeaderSize || n > len(data) {
			if len(data) > posMagic && data[posMagic] != 2 {
				return nil, nil, fmt.Errorf("%w: magic %d (only v2 record batches, Kafka 0.11+, are stored)", ErrUnsupportedFormat, int8(data[posMagic]))
			}
			// As Kafka: a length below a batch header is corrupt; one
			// beyond the bytes sent leaves no whole batch to store.
			if n < batchHeaderSize {
				return nil, nil, fmt.Errorf("%w: batch length %d is shorter than a batch header", ErrCorruptBatch, n)
			}
			return nil, nil, fmt.Errorf("%w: batch length %d does not fit the %d bytes sent", ErrInvalidRecord, n, len(data))
		}
		rb, err := decodeBatch(data[:n])
		if err != nil {
			return nil, nil, err
		}
		raws = append(raws, data[:n])
		hdrs = append(hdrs, rb)
		data = data[n:]
	}
	if len(raws) == 0 {
		return nil, nil, fmt.Errorf("%w: no record batch in the request", ErrInvalidRecord)
	}
	return raws, hdrs, nil
}

// assignOffset rewrites the broker-owned header fields of a stored batch:
// its first offset and the partition leader epoch (neither covered by the CRC).
func assignOffset(b []byte, baseOffset int64, leaderEpoch int32) {
	binary.BigEndian.PutUint64(b[0:8], uint64(baseOffset))
	binary.BigEndian.PutUint32(b[posLeaderEpoch:posLeaderEpoch+4], uint32(leaderEpoch))
}

// setLogAppendTime marks a batch as timestamped by the broker (topic config
// message.timestamp.type=LogAppendTime) and re-seals its CRC.
func setLogAppendTime(b []byte, now int64) {
	attrs := binary.BigEndian.Uint16(b[posAttributes:])
	binary.BigEndian.PutUint16(b[posAttributes:], attrs|attrTimestampLogAppend)
	binary.BigEndian.PutUint64(b[posMaxTimestamp:], uint64(now))
	binary.BigEndian.PutUint32(b[posCRC:], crc32.Checksum(b[posAttributes:], castagnoli))
}

func isControl(rb *kmsg.RecordBatch) bool       { return rb.Attributes&attrControl != 0 }
func isTransactional(rb *kmsg.RecordBatch) bool { return rb.Attributes&attrTransactional != 0 }

// IsTransactional reports whether a raw batch has the transactional bit set.
func IsTransactional(b []byte) bool {
	return len(b) >= batchHeaderSize && binary.BigEndian.Uint16(b[posAttributes:])&attrTransactional != 0
}

// BatchProducer returns the producer id and epoch of the first batch in b.
func BatchProducer(b []byte) (producerID int64, epoch int16, ok bool) {
	if len(b) < batchHeaderSize {
		return -1, -1, false
	}
	return int64(binary.BigEndian.Uint64(b[posProducerID:])), int16(binary.BigEndian.Uint16(b[posProducerEpoch:])), true
}

// Compression names the compression codec of the first batch in b ("none",
// "gzip", "snappy", "lz4", "zstd"), or "" when b holds no batch header or
// an unknown codec.
func Compression(b []byte) string {
	if len(b) < batchHeaderSize {
		return ""
	}
	if c := int(binary.BigEndian.Uint16(b[posAttributes:]) & 0x07); c < len(codecNames) {
		return codecNames[c]
	}
	return ""
}
