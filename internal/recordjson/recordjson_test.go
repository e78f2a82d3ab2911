package recordjson

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

// Every line parses back with encoding/json to the record's fields, stays
// one line whatever the value holds, and keeps JSON values as JSON.
func TestAppendParsesBack(t *testing.T) {
	ts := time.Date(2026, 11, 24, 14, 3, 12, 345_000_000, time.FixedZone("KST", 9*3600))
	cases := []struct {
		name  string
		m     pipeline.Message
		value any // what "value" decodes to
		key   any
	}{
		{"tweet", pipeline.Message{Topic: "tweets", Partition: 2, Offset: 7, Timestamp: ts, Key: []byte("k"),
			Value: []byte(`{"data":{"id":"1","text":"카프카 <b>&"}}`)}, map[string]any{"data": map[string]any{"id": "1", "text": "카프카 <b>&"}}, "k"},
		{"pretty-printed JSON", pipeline.Message{Topic: "t", Value: []byte("{\n  \"a\": [1,\r\n 2]\n}\n")}, map[string]any{"a": []any{1.0, 2.0}}, nil},
		{"text with controls", pipeline.Message{Topic: "t", Value: []byte("line\nbreak\t\"q\" \\ \x01 \u2028")}, "line\nbreak\t\"q\" \\ \x01 \u2028", nil},
		{"not UTF-8", pipeline.Message{Topic: "t", Key: []byte("k\xff"), Value: []byte("\x00\xfe")}, `\x00\xfe`, `k\xff`},
		{"empty value", pipeline.Message{Topic: "t", Key: []byte{}, Value: nil}, "", ""},
		{"number", pipeline.Message{Value: []byte(" 42 ")}, 42.0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			line := Append(nil, &c.m)
			if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
				t.Fatalf("not one line: %q", line)
			}
			var got map[string]any
			if err := json.Unmarshal(line, &got); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			if !jsonEqual(got["value"], c.value) {
				t.Fatalf("value %#v, want %#v (line %s)", got["value"], c.value, line)
			}
			if !jsonEqual(got["key"], c.key) {
				t.Fatalf("key %#v, want %#v", got["key"], c.key)
			}
			if c.m.Topic != "" && (got["topic"] != c.m.Topic || got["partition"] != float64(c.m.Partition) || got["offset"] != float64(c.m.Offset)) {
				t.Fatalf("origin fields %v", got)
			}
			if c.m.Topic == "" && (got["partition"] != nil || got["offset"] != nil) {
				t.Fatalf("a record not from Kafka has no partition or offset: %s", line)
			}
		})
	}
	line := string(Append(nil, &cases[0].m))
	if !strings.Contains(line, `"timestamp":"2026-11-24T05:03:12.345Z"`) {
		t.Fatalf("timestamp not RFC 3339 UTC with milliseconds: %s", line)
	}
	for _, ts := range []time.Time{time.UnixMilli(0), time.Date(999, 1, 2, 3, 4, 5, 6_000_000, time.UTC), time.Date(2026, 12, 31, 23, 59, 59, 999_999_999, time.UTC)} {
		got := string(appendTime(nil, ts))
		if want := ts.UTC().Format(TimeLayout); got != want {
			t.Fatalf("appendTime %s, want %s", got, want)
		}
	}
}

func TestHeadersInOrder(t *testing.T) {
	m := pipeline.Message{Topic: "t", Value: []byte("v"), Headers: []pipeline.Header{{Key: "b", Value: []byte("2")}, {Key: "a\"", Value: []byte("\xff")}}}
	if got, want := string(Append(nil, &m)), `{"topic":"t","partition":0,"offset":0,"value":"v","headers":{"b":"2","a\"":"\\xff"}}`+"\n"; got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func BenchmarkAppendTweet(b *testing.B) {
	v := []byte(`{"data":{"id":"1860000000000000001","text":"카프카로 트윗을 모읍니다 #kafka and some more English text to make it longer","created_at":"2026-11-24T14:03:12.000Z","lang":"ko","author_id":"5001"},"includes":{"users":[{"id":"5001","name":"N","username":"user5001"}]},"matching_rules":[{"id":"1","tag":"kafka"}]}`)
	m := pipeline.Message{Topic: "tweets", Partition: 3, Offset: 123456, Timestamp: time.Now(), Key: []byte("1860000000000000001"), Value: v}
	var buf []byte
	b.SetBytes(int64(len(v)))
	for b.Loop() {
		buf = Append(buf[:0], &m)
	}
}

// Whatever the bytes, a line is valid JSON on one line; a value that
// encoding/json takes for JSON (and is UTF-8) is kept as that JSON, and any
// other value becomes a string.
func FuzzAppend(f *testing.F) {
	for _, s := range []string{`{"a":1}`, "{\n\"a\":\r\n1}", `[1,2,]`, `{"a":01}`, "\xff", `"\u12"`, "\u2028", ` 1 `, `1 2`, `{"a":"\x01"}`, "{\"a\":\"\xff\"}"} {
		f.Add([]byte(s), []byte("k"))
	}
	f.Fuzz(func(t *testing.T, value, key []byte) {
		m := pipeline.Message{Topic: "t", Key: key, Value: value, Headers: []pipeline.Header{{Key: string(key), Value: value}}}
		line := Append(nil, &m)
		if !json.Valid(line) || bytes.IndexByte(line, '\n') != len(line)-1 {
			t.Fatalf("invalid line for %q: %q", value, line)
		}
		var got struct{ Value json.RawMessage }
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatal(err)
		}
		if json.Valid(value) && utf8.Valid(value) {
			var want bytes.Buffer
			json.Compact(&want, value)
			if !bytes.Equal(got.Value, want.Bytes()) {
				t.Fatalf("JSON value %q written as %s", value, got.Value)
			}
		} else if got.Value[0] != '"' {
			t.Fatalf("value %q is not JSON but was written as %s", value, got.Value)
		}
	})
}

// needsLook finds every byte that must be looked at, in every position of
// a word of bytes that need none, and nothing in such a word.
func TestNeedsLookEveryByte(t *testing.T) {
	look := func(c byte) bool { return c < 0x20 || c == '"' || c == '\\' || c == 0xe2 }
	for _, fill := range []byte{'a', ' ', 0x7f, 0x80, 0xe1, 0xe3, 0xff, '!', '#', '[', ']'} {
		base := uint64(0)
		for i := range 8 {
			base |= uint64(fill) << (8 * i)
		}
		if needsLook(base) {
			t.Fatalf("eight bytes %#x: needsLook is true", fill)
		}
		for c := range 256 {
			for pos := range 8 {
				x := base&^(0xff<<(8*pos)) | uint64(c)<<(8*pos)
				if got := needsLook(x); got != look(byte(c)) {
					t.Fatalf("byte %#x at %d among %#x: needsLook %v, want %v", c, pos, fill, got, look(byte(c)))
				}
			}
		}
	}
}

// A value of plain text, as creek bench writes: the eight-byte path.
func BenchmarkAppendText(b *testing.B) {
	v := bytes.Repeat([]byte("abcdefghij KLMNOPQRST 0123456789 "), 31)
	m := &pipeline.Message{Topic: "t", Value: v, Timestamp: time.Now()}
	b.SetBytes(int64(len(v)))
	var dst []byte
	for range b.N {
		dst = Append(dst[:0], m)
	}
}
