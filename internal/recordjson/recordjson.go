// Package recordjson is the one JSON form of a record that creek writes
// wherever it writes records as JSON: the console's json format, the file
// sink and the S3 sink. A line holds topic, partition, offset, timestamp
// (RFC 3339 in UTC, milliseconds), key, value and headers; a value that is
// JSON stays JSON (a tweet stays a tweet), anything else becomes a string.
// Text that is not UTF-8 is shown with Go's escapes (\xff), so a line is
// always valid JSON and always one line.
package recordjson

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

// TimeLayout is how timestamps are written: RFC 3339, UTC, milliseconds
// (Kafka's precision), so that lines sort by time as text.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Append appends m as one JSON object and a newline. Fields that a record
// does not have are left out: partition and offset when it did not come
// from Kafka, the timestamp when it has none, key and headers when absent.
func Append(dst []byte, m *pipeline.Message) []byte {
	dst = append(dst, '{')
	if m.Topic != "" {
		dst = append(dst, `"topic":`...)
		dst = AppendString(dst, m.Topic)
		dst = append(dst, `,"partition":`...)
		dst = strconv.AppendInt(dst, int64(m.Partition), 10)
		dst = append(dst, `,"offset":`...)
		dst = strconv.AppendInt(dst, m.Offset, 10)
		dst = append(dst, ',')
	}
	if !m.Timestamp.IsZero() {
		dst = append(dst, `"timestamp":"`...)
		dst = appendTime(dst, m.Timestamp)
		dst = append(dst, `",`...)
	}
	if m.Key != nil {
		dst = append(dst, `"key":`...)
		dst = appendText(dst, m.Key)
		dst = append(dst, ',')
	}
	dst = append(dst, `"value":`...)
	dst = AppendValue(dst, m.Value)
	if len(m.Headers) > 0 {
		dst = append(dst, `,"headers":{`...)
		for i, h := range m.Headers {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, h.Key)
			dst = append(dst, ':')
			dst = appendText(dst, h.Value)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}', '\n')
}

// AppendValue appends a record value as JSON: the value itself when it is
// JSON (on one line), else the value as a string.
func AppendValue(dst, v []byte) []byte {
	// gjson validates as strictly as encoding/json, three times faster;
	// JSON text must also be UTF-8 to be copied as it is.
	if !gjson.ValidBytes(v) || !utf8.Valid(v) {
		return appendText(dst, v)
	}
	if bytes.IndexByte(v, '\n') < 0 && bytes.IndexByte(v, '\r') < 0 {
		return append(dst, bytes.TrimSpace(v)...)
	}
	// Line breaks can only be white space between tokens (inside strings
	// JSON escapes them): compact to keep one record on one line.
	var buf bytes.Buffer
	buf.Grow(len(v))
	json.Compact(&buf, v) // cannot fail: v is valid
	return append(dst, buf.Bytes()...)
}

// Printable is text as it is when it is UTF-8, and otherwise with Go's
// escapes for the bytes that are not (as strconv.QuoteToASCII writes them,
// without the quotes).
func Printable(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	q := strconv.QuoteToASCII(string(b))
	return q[1 : len(q)-1]
}

func appendText(dst, b []byte) []byte {
	if utf8.Valid(b) {
		return appendJSONString(dst, b)
	}
	return AppendString(dst, Printable(b))
}

// AppendString appends s as a JSON string; s must be UTF-8.
func AppendString(dst []byte, s string) []byte {
	// The string's bytes, read and not kept: no copy.
	return appendJSONString(dst, unsafe.Slice(unsafe.StringData(s), len(s)))
}

// appendTime writes t as TimeLayout does, without time.Format's parsing
// of the layout, which cost a quarter of a line's encoding.
func appendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, TimeLayout)
	}
	two := func(dst []byte, n int) []byte { return append(dst, byte('0'+n/10), byte('0'+n%10)) }
	dst = two(dst, year/100)
	dst = two(dst, year%100)
	dst = two(append(dst, '-'), int(month))
	dst = two(append(dst, '-'), day)
	dst = two(append(dst, 'T'), hour)
	dst = two(append(dst, ':'), minute)
	dst = two(append(dst, ':'), sec)
	ms := t.Nanosecond() / 1e6
	return append(dst, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

const hex = "0123456789abcdef"

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// needsLook reports whether any of the eight bytes in x is a control
// character, a quote, a backslash or 0xE2 (the first byte of U+2028 and
// U+2029): the bytes appendJSONString does not copy as they are. It uses
// the classic "has a zero byte" test, (v - 0x01..) & ^v & 0x80.., which is
// exact about whether one exists.
func needsLook(x uint64) bool {
	hasZero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	below20 := (x - 0x20*ones) & ^x & highs
	return below20|hasZero(x^('"'*ones))|hasZero(x^('\\'*ones))|hasZero(x^(0xe2*ones)) != 0
}

// appendJSONString escapes what JSON requires (quote, backslash, control
// characters) and U+2028/U+2029, which JavaScript does not allow in a
// string literal; everything else is copied as UTF-8.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while none of them needs a look (most
		// text): a fifth of the S3 sink's CPU went to this loop byte by byte.
		if i+8 <= len(s) && !needsLook(binary.LittleEndian.Uint64(s[i:])) {
			i += 8
			continue
		}
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c != 0xe2 {
			i++
			continue
		}
		if c == 0xe2 { // U+2028 and U+2029 are E2 80 A8 / E2 80 A9
			if i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xa8 || s[i+2] == 0xa9) {
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\u202`...)
				dst = append(dst, hex[s[i+2]&0xf])
				i += 3
				start = i
				continue
			}
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
