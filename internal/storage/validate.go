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
// logAppendTime is the topic's message.timestamp.type; requireKeys is set
// for compacted topics, which refuse records without a key as Kafka does.
func validateClientBatch(raw []byte, rb *kmsg.RecordBatch, logAppendTime, requireKeys bool) error {
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
	maxTs, err := checkRecords(recs, rb, requireKeys)
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
func checkRecords(recs []byte, rb *kmsg.RecordBatch, requireKeys bool) (maxTs int64, err error) {
	maxTs = -1
	var n int32
	for len(recs) > 0 {
		if n == rb.NumRecords {
			return 0, fmt.Errorf("%d bytes follow the %d records the batch declares", len(recs), n)
		}
		body, rest, err := nextRecord(recs)
		if err != nil {
			return 0, fmt.Errorf("record %d: %v", n, err)
		}
		r, err := parseRecord(body)
		if err == nil && r.offsetDelta != n {
			err = fmt.Errorf("offset delta %d, expected %d", r.offsetDelta, n)
		}
		if err == nil && requireKeys && r.key == nil {
			err = fmt.Errorf("no key, and the topic is compacted (cleanup.policy=compact keeps the latest record of each key, so every record needs one)")
		}
		if err != nil {
			return 0, fmt.Errorf("record %d: %v", n, err)
		}
		maxTs = max(maxTs, rb.FirstTimestamp+r.tsDelta)
		recs = rest
		n++
	}
	if n != rb.NumRecords {
		return 0, fmt.Errorf("the batch declares %d records but holds %d", rb.NumRecords, n)
	}
	return maxTs, nil
}

// nextRecord cuts the first record off a records section: body is the
// record after its length prefix, rest what follows it.
func nextRecord(recs []byte) (body, rest []byte, err error) {
	length, size := kbin.Varint(recs)
	if size <= 0 {
		return nil, nil, fmt.Errorf("unreadable length")
	}
	recs = recs[size:]
	if length <= 0 || int64(length) > int64(len(recs)) {
		return nil, nil, fmt.Errorf("states %d bytes where %d are left", length, len(recs))
	}
	return recs[:length], recs[length:], nil
}

// recordView is what the validator and the cleaner read of one record.
type recordView struct {
	tsDelta     int64
	offsetDelta int32
	key         []byte // nil for a null key
	nullValue   bool   // a tombstone
}

// parseRecord checks one record's body (after its length) and returns its
// fields; key points into p.
func parseRecord(p []byte) (r recordView, err error) {
	p = p[1:] // attributes: unused in v2, any value is accepted, as by Kafka
	var size int
	r.tsDelta, size = kbin.Varlong(p)
	if size <= 0 {
		return r, fmt.Errorf("unreadable timestamp delta")
	}
	p = p[size:]
	r.offsetDelta, size = kbin.Varint(p)
	if size <= 0 {
		return r, fmt.Errorf("unreadable offset delta")
	}
	p = p[size:]
	var value []byte
	if r.key, p, err = readBytes(p, "key", true); err != nil {
		return r, err
	}
	if value, p, err = readBytes(p, "value", true); err != nil {
		return r, err
	}
	r.nullValue = value == nil
	headers, size := kbin.Varint(p)
	if size <= 0 || headers < 0 || int64(headers) > int64(len(p)) {
		return r, fmt.Errorf("bad header count %d", headers)
	}
	p = p[size:]
	for range headers {
		if _, p, err = readBytes(p, "header key", false); err != nil {
			return r, err
		}
		if _, p, err = readBytes(p, "header value", true); err != nil {
			return r, err
		}
	}
	if len(p) != 0 {
		return r, fmt.Errorf("%d bytes are left after its last header", len(p))
	}
	return r, nil
}

// readBytes reads a varint-length-prefixed field and returns it (nil for
// null, an empty non-nil slice for zero bytes) and what follows: -1 is null
// where nullable, any other negative length or one past the end an error.
func readBytes(p []byte, what string, nullable bool) (field, rest []byte, err error) {
	n, size := kbin.Varint(p)
	switch {
	case size <= 0:
		return nil, nil, fmt.Errorf("unreadable %s length", what)
	case n == -1 && nullable:
		return nil, p[size:], nil
	case n < 0 || int64(n) > int64(len(p)-size):
		return nil, nil, fmt.Errorf("%s length %d where %d bytes are left", what, n, len(p)-size)
	}
	return p[size : size+int(n) : size+int(n)], p[size+int(n):], nil
}
