package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"

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

// ErrInvalidTimestamp is a CreateTime record whose timestamp is further
// from the broker's clock than message.timestamp.before.max.ms or
// message.timestamp.after.max.ms allow.
var ErrInvalidTimestamp = errors.New("record timestamp out of range")

// batchRules are the topic configs a producer's batch is checked and
// rewritten by.
type batchRules struct {
	logAppendTime bool      // message.timestamp.type=LogAppendTime
	requireKeys   bool      // compacted topics refuse records without a key, as Kafka does
	now           time.Time // the broker's clock, for the timestamp bounds
	beforeMaxMs   int64     // message.timestamp.before.max.ms
	afterMaxMs    int64     // message.timestamp.after.max.ms
	codec         int       // compression.type: -1 (producer) keeps the producer's codec
	level         int       // the target codec's level
}

func rulesOf(cfg Config, now time.Time) batchRules {
	return batchRules{logAppendTime: cfg.LogAppendTime, requireKeys: cfg.Compact, now: now,
		beforeMaxMs: cfg.TimestampBeforeMaxMs, afterMaxMs: cfg.TimestampAfterMaxMs,
		codec: codecByName(cfg.Compression), level: cfg.CompressionLevel}
}

// validateClientBatch checks one producer batch and fixes its timestamp
// fields in raw (re-sealing the CRC) when they disagree with its records.
// When the topic's compression.type names a codec other than the batch's,
// it returns the batch recompressed in new memory; otherwise raw itself.
func validateClientBatch(raw []byte, rb *kmsg.RecordBatch, rules batchRules) ([]byte, error) {
	codec := int(rb.Attributes & 0x07)
	if codec >= len(codecNames) {
		return nil, fmt.Errorf("%w: codec %d (Kafka has none, gzip, snappy, lz4 and zstd: 0 to 4)", ErrUnsupportedCompression, codec)
	}
	if rb.NumRecords <= 0 {
		return nil, fmt.Errorf("%w: the batch declares %d records", ErrInvalidRecord, rb.NumRecords)
	}
	if rb.LastOffsetDelta != rb.NumRecords-1 {
		return nil, fmt.Errorf("%w: the batch declares %d records but a last offset delta of %d", ErrInvalidRecord, rb.NumRecords, rb.LastOffsetDelta)
	}
	if rb.ProducerID >= 0 && rb.FirstSequence < 0 {
		return nil, fmt.Errorf("%w: producer id %d with sequence %d", ErrInvalidRecord, rb.ProducerID, rb.FirstSequence)
	}
	if isTransactional(rb) && rb.ProducerID < 0 {
		return nil, fmt.Errorf("%w: a transactional batch without a producer id", ErrInvalidRecord)
	}

	recs := rb.Records
	if codec != codecNone {
		buf, err := decompress(codec, recs)
		if err != nil {
			return nil, fmt.Errorf("%w: the %s data does not decompress: %v", ErrCorruptBatch, codecNames[codec], err)
		}
		defer putDecompressBuffer(buf)
		recs = buf.Bytes()
	}
	maxTs, minTs, err := checkRecords(recs, rb, rules.requireKeys)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRecord, err)
	}
	if !rules.logAppendTime {
		if err := rules.checkTimestamps(minTs, maxTs); err != nil {
			return nil, err
		}
	}
	if rules.codec >= 0 && rules.codec != codec {
		if raw, err = recompress(raw, rb, recs, rules.codec, rules.level); err != nil {
			return nil, err
		}
	}
	if !rules.logAppendTime && (rb.MaxTimestamp != maxTs || rb.Attributes&attrTimestampLogAppend != 0) {
		rb.MaxTimestamp = maxTs
		rb.Attributes &^= attrTimestampLogAppend
		binary.BigEndian.PutUint16(raw[posAttributes:], uint16(rb.Attributes))
		binary.BigEndian.PutUint64(raw[posMaxTimestamp:], uint64(maxTs))
		binary.BigEndian.PutUint32(raw[posCRC:], crc32.Checksum(raw[posAttributes:], castagnoli))
	}
	return raw, nil
}

// checkTimestamps refuses a CreateTime batch holding a record timestamp
// outside [now - before.max, now + after.max], as Kafka 4 does (records
// without a timestamp, -1, are let through).
func (r batchRules) checkTimestamps(minTs, maxTs int64) error {
	now := r.now.UnixMilli()
	lo, hi := now-r.beforeMaxMs, int64(math.MaxInt64) // both are at least 0: lo cannot overflow
	if r.afterMaxMs < math.MaxInt64-now {
		hi = now + r.afterMaxMs
	}
	for _, ts := range []int64{minTs, maxTs} {
		if ts != -1 && (ts < lo || ts > hi) {
			return fmt.Errorf("%w: timestamp %d is not within [%d, %d] (message.timestamp.before.max.ms %d and message.timestamp.after.max.ms %d around the broker's clock %d)",
				ErrInvalidTimestamp, ts, lo, hi, r.beforeMaxMs, r.afterMaxMs, now)
		}
	}
	return nil
}

// checkRecords walks an uncompressed records section and returns the
// largest and smallest record timestamps. It allocates nothing.
func checkRecords(recs []byte, rb *kmsg.RecordBatch, requireKeys bool) (maxTs, minTs int64, err error) {
	maxTs, minTs = -1, math.MaxInt64
	var n int32
	var r recordView
	for len(recs) > 0 {
		if n == rb.NumRecords {
			return 0, 0, fmt.Errorf("%d bytes follow the %d records the batch declares", len(recs), n)
		}
		if size := quickRecord(recs, &r); size > 0 {
			recs = recs[size:]
		} else { // the careful way, which says what is wrong
			body, rest, err := nextRecord(recs)
			if err == nil {
				r, err = parseRecord(body)
			}
			if err != nil {
				return 0, 0, fmt.Errorf("record %d: %v", n, err)
			}
			recs = rest
		}
		switch {
		case r.offsetDelta != n:
			return 0, 0, fmt.Errorf("record %d: offset delta %d, expected %d", n, r.offsetDelta, n)
		case requireKeys && r.key == nil:
			return 0, 0, fmt.Errorf("record %d: no key, and the topic is compacted (cleanup.policy=compact keeps the latest record of each key, so every record needs one)", n)
		}
		ts := rb.FirstTimestamp + r.tsDelta
		maxTs, minTs = max(maxTs, ts), min(minTs, ts)
		n++
	}
	if n != rb.NumRecords {
		return 0, 0, fmt.Errorf("the batch declares %d records but holds %d", rb.NumRecords, n)
	}
	if minTs > maxTs { // no record without a timestamp: the batch is empty
		minTs = maxTs
	}
	return maxTs, minTs, nil
}

// quickRecord reads the first record of a records section into r as
// nextRecord and parseRecord do, when every varint in it is one or two
// bytes long (records up to 8 KiB, small deltas: most records), inline and
// in one pass, and returns the bytes it took. It returns 0 for anything
// else, valid or not, which the caller then reads the careful way, for the
// exact error. It fills the caller's view rather than returning one:
// copying a returned view out cost as much as reading the record.
// FuzzQuickRecord holds it to the careful way.
func quickRecord(recs []byte, r *recordView) int {
	length, i, ok := varint2(recs, 0)
	if !ok || length <= 0 || int(length) > len(recs)-i {
		return 0
	}
	body := recs[:i+int(length)]
	j := i + 1 // attributes
	var tsDelta, offsetDelta, keyLen, valueLen, headers int32
	if tsDelta, j, ok = varint2(body, j); !ok {
		return 0
	}
	if offsetDelta, j, ok = varint2(body, j); !ok {
		return 0
	}
	// The key, value and header fields each read a length and skip it, in
	// line: a helper for that is too large to be inlined, and costs a
	// quarter more time (BenchmarkValidateSmallRecords).
	if keyLen, j, ok = varint2(body, j); !ok || keyLen < -1 || int(keyLen) > len(body)-j {
		return 0
	}
	var key []byte
	if keyLen >= 0 {
		key = body[j : j+int(keyLen) : j+int(keyLen)]
		j += int(keyLen)
	}
	if valueLen, j, ok = varint2(body, j); !ok || valueLen < -1 || int(valueLen) > len(body)-j {
		return 0
	}
	j += int(max(valueLen, 0))
	if headers, j, ok = varint2(body, j); !ok || headers < 0 {
		return 0
	}
	for range headers {
		var kl, vl int32
		if kl, j, ok = varint2(body, j); !ok || kl < 0 || int(kl) > len(body)-j {
			return 0
		}
		j += int(kl)
		if vl, j, ok = varint2(body, j); !ok || vl < -1 || int(vl) > len(body)-j {
			return 0
		}
		j += int(max(vl, 0))
	}
	if j != len(body) {
		return 0
	}
	// Field by field: a composite literal is built on the stack and copied
	// in 16-byte moves that stall on the 8-byte stores just made.
	r.tsDelta, r.offsetDelta, r.key, r.nullValue = int64(tsDelta), offsetDelta, key, valueLen == -1
	return j
}

// varint2 reads a zigzag varint of one or two bytes at p[i]. It is small
// enough to be inlined, which is most of quickRecord's speed.
func varint2(p []byte, i int) (int32, int, bool) {
	if uint(i) >= uint(len(p)) {
		return 0, i, false
	}
	u := uint32(p[i])
	if u >= 0x80 {
		if uint(i+1) >= uint(len(p)) || p[i+1] >= 0x80 {
			return 0, i, false
		}
		i++
		u = u&0x7f | uint32(p[i])<<7
	}
	return int32(u>>1) ^ -int32(u&1), i + 1, true
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
