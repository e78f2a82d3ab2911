package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A producer's batch is checked, as Kafka's log validator checks it,
// before it is stored: a batch whose CRC is right but whose contents are
// not would be acknowledged and then break every consumer of the
// partition. The checks:
//   - the compression codec is one Kafka has, and a compressed batch
//     decompresses (to at most MaxDecompressedBatch);
//   - the record count is positive and agrees with lastOffsetDelta, and the
//     records section holds exactly that many records, each decoding inside
//     its stated length, with offset deltas 0, 1, 2...;
//   - key, value and header lengths fit (-1 for null where Kafka allows it);
//   - an idempotent batch has a sequence, a transactional one a producer id.
// The batch's MaxTimestamp and timestamp type are then set from its
// records, as Kafka does for CreateTime topics, so that retention and
// lookups by time cannot be misled.

// ErrUnsupportedCompression is a codec Kafka does not have (5, 6, 7).
var ErrUnsupportedCompression = fmt.Errorf("unsupported compression type")

// validateClientBatch checks one producer batch and fixes its timestamp
// fields in raw (re-sealing the CRC) when they disagree with its records.
// logAppendTime is the topic's message.timestamp.type.
func validateClientBatch(raw []byte, rb *kmsg.RecordBatch, logAppendTime bool) error {
	codec := int(rb.Attributes & 0x07)
	if codec >= len(codecNames) {
		return fmt.Errorf("%w: codec %d (Kafka has none, gzip, snappy, lz4 and zstd: 0 to 4)", ErrUnsupportedCompression, codec)
	}
	if rb.NumRecords <= 0 {
		return fmt.Errorf("%w: the batch declares %d records", ErrInvalidRecord, rb.NumRecords)
	}
	if rb.LastOffsetDelta != rb.NumRecords-1 {
		return fmt.Errorf("%w: the batch declares %d records but a last offset delta of %d", ErrInvalidRecord, rb.NumRecords, rb.LastOffsetDelta)
	}
	if rb.ProducerID >= 0 && rb.FirstSequence < 0 {
		return fmt.Errorf("%w: producer id %d with sequence %d", ErrInvalidRecord, rb.ProducerID, rb.FirstSequence)
	}
	if isTransactional(rb) && rb.ProducerID < 0 {
		return fmt.Errorf("%w: a transactional batch without a producer id", ErrInvalidRecord)
	}

	recs := rb.Records
	if codec != codecNone {
		buf, err := decompress(codec, recs)
		if err != nil {
			return fmt.Errorf("%w: the %s data does not decompress: %v", ErrCorruptBatch, codecNames[codec], err)
		}
		defer putDecompressBuffer(buf)
		recs = buf.Bytes()
	}
	maxTs, err := checkRecords(recs, rb)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidRecord, err)
	}
	if !logAppendTime && (rb.MaxTimestamp != maxTs || rb.Attributes&attrTimestampLogAppend != 0) {
		rb.MaxTimestamp = maxTs
		rb.Attributes &^= attrTimestampLogAppend
		binary.BigEndian.PutUint16(raw[posAttributes:], uint16(rb.Attributes))
		binary.BigEndian.PutUint64(raw[posMaxTimestamp:], uint64(maxTs))
		binary.BigEndian.PutUint32(raw[posCRC:], crc32.Checksum(raw[posAttributes:], castagnoli))
	}
	return nil
}

// checkRecords walks an uncompressed records section and returns the
// largest record timestamp. It allocates nothing.
func checkRecords(recs []byte, rb *kmsg.RecordBatch) (maxTs int64, err error) {
	maxTs = -1
	var n int32
	for len(recs) > 0 {
		if n == rb.NumRecords {
			return 0, fmt.Errorf("%d bytes follow the %d records the batch declares", len(recs), n)
		}
		length, size := kbin.Varint(recs)
		if size <= 0 {
			return 0, fmt.Errorf("record %d: unreadable length", n)
		}
		recs = recs[size:]
		if length <= 0 || int64(length) > int64(len(recs)) {
			return 0, fmt.Errorf("record %d states %d bytes where %d are left", n, length, len(recs))
		}
		ts, err := checkRecord(recs[:length], n)
		if err != nil {
			return 0, fmt.Errorf("record %d: %v", n, err)
		}
		maxTs = max(maxTs, rb.FirstTimestamp+ts)
		recs = recs[length:]
		n++
	}
	if n != rb.NumRecords {
		return 0, fmt.Errorf("the batch declares %d records but holds %d", rb.NumRecords, n)
	}
	return maxTs, nil
}

// checkRecord checks one record's body (after its length) and returns its
// timestamp delta.
func checkRecord(p []byte, index int32) (tsDelta int64, err error) {
	p = p[1:] // attributes: unused in v2, any value is accepted, as by Kafka
	tsDelta, size := kbin.Varlong(p)
	if size <= 0 {
		return 0, fmt.Errorf("unreadable timestamp delta")
	}
	p = p[size:]
	offsetDelta, size := kbin.Varint(p)
	if size <= 0 {
		return 0, fmt.Errorf("unreadable offset delta")
	}
	if offsetDelta != index {
		return 0, fmt.Errorf("offset delta %d, expected %d", offsetDelta, index)
	}
	p = p[size:]
	if p, err = skipBytes(p, "key", true); err != nil {
		return 0, err
	}
	if p, err = skipBytes(p, "value", true); err != nil {
		return 0, err
	}
	headers, size := kbin.Varint(p)
	if size <= 0 || headers < 0 || int64(headers) > int64(len(p)) {
		return 0, fmt.Errorf("bad header count %d", headers)
	}
	p = p[size:]
	for range headers {
		if p, err = skipBytes(p, "header key", false); err != nil {
			return 0, err
		}
		if p, err = skipBytes(p, "header value", true); err != nil {
			return 0, err
		}
	}
	if len(p) != 0 {
		return 0, fmt.Errorf("%d bytes are left after its last header", len(p))
	}
	return tsDelta, nil
}

// skipBytes skips a varint-length-prefixed field: -1 is null where
// nullable, any other negative length or one past the end is an error.
func skipBytes(p []byte, what string, nullable bool) ([]byte, error) {
	n, size := kbin.Varint(p)
	switch {
	case size <= 0:
		return nil, fmt.Errorf("unreadable %s length", what)
	case n == -1 && nullable:
		return p[size:], nil
	case n < 0 || int64(n) > int64(len(p)-size):
		return nil, fmt.Errorf("%s length %d where %d bytes are left", what, n, len(p)-size)
	}
	return p[size+int(n):], nil
}
