package console

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-runewidth"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite the console sink's golden files in testdata/")

// goldenTweet is a post in the X API v2 stream's JSON.
func goldenTweet(id, user, lang, text, created string) []byte {
	return []byte(`{"data":{"id":"` + id + `","text":"` + text + `","created_at":"` + created + `","lang":"` + lang +
		`","author_id":"5001"},"includes":{"users":[{"id":"5001","name":"N","username":"` + user + `"}]},"matching_rules":[{"id":"1","tag":"kafka"}]}`)
}

// goldenMessages covers what a console shows: tweets in Korean, English,
// Japanese and with emoji, a tweet whose author is not expanded, other
// JSON, plain text with a newline, bytes that are not UTF-8, headers, a
// nil key, and a record that did not come from Kafka.
func goldenMessages() []pipeline.Message {
	ts := time.Date(2026, 11, 24, 14, 3, 12, 345_000_000, time.UTC)
	kafka := func(off int64, key string, value []byte) pipeline.Message {
		m := pipeline.Message{Topic: "tweets", Partition: int32(off % 3), Offset: off, Timestamp: ts, Value: value}
		if key != "" {
			m.Key = []byte(key)
		}
		return m
	}
	msgs := []pipeline.Message{
		kafka(0, "1860000000000000001", goldenTweet("1860000000000000001", "user5001", "ko", "카프카로 트윗을 모읍니다 #kafka", "2026-11-24T14:03:12.000Z")),
		kafka(1, "1860000000000000002", goldenTweet("1860000000000000002", "datadave", "en", "Consumer groups remember their offsets #streaming", "2026-11-24T14:03:13.000Z")),
		kafka(2, "1860000000000000003", goldenTweet("1860000000000000003", "minji_data", "ja", "カフカでツイートを集めています 🚀", "2026-11-24T14:03:14.000Z")),
		kafka(3, "1860000000000000004", []byte(`{"data":{"id":"1860000000000000004","text":"no author expansion\nsecond line","created_at":"2026-11-24T14:03:15.000Z","author_id":"42"}}`)),
		kafka(4, "order-7", []byte(`{"order":7,"items":["커피","빵"]}`)),
		kafka(5, "", []byte("plain text\nwith a newline")),
		kafka(6, "bin\xff", []byte("\x00\x01 not utf-8 \xfe")),
	}
	withHeaders := kafka(7, "h", []byte("with headers"))
	withHeaders.Headers = []pipeline.Header{{Key: "rule", Value: []byte("kafka")}, {Key: "source", Value: []byte("x")}}
	msgs = append(msgs, withHeaders, pipeline.Message{Value: []byte("from stdin, not Kafka")})
	return msgs
}

func render(t *testing.T, format, color string, width int) string {
	t.Helper()
	var out bytes.Buffer
	s, err := New(&out, format, color)
	if err != nil {
		t.Fatal(err)
	}
	s.Location = time.UTC
	s.width = width
	if err := s.Write(context.Background(), &pipeline.Batch{Messages: goldenMessages()}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestConsoleGolden(t *testing.T) {
	for _, tc := range []struct {
		name, format, color string
		width               int
	}{
		{"pretty", "pretty", "never", 0},
		{"pretty-color", "pretty", "always", 0},
		{"pretty-80-columns", "pretty", "never", 80},
		{"json", "json", "never", 0},
		{"raw", "raw", "never", 0},
		{"kcat", `%t %p %o %k %s\n`, "never", 0},
		{"lengths-headers", `%t[%p]@%o key=%K value=%S ts=%T headers=%h\t100%%\n`, "never", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := render(t, tc.format, tc.color, tc.width)
			path := filepath.Join("testdata", tc.name+".golden")
			if *updateGolden {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/sink/console -update-golden to create it)", err)
			}
			if got != string(want) {
				t.Fatalf("%s differs from %s:\n%s", tc.name, path, got)
			}
		})
	}
}

// In pretty mode the texts start in the same screen column whatever the
// width of the handle's characters, and on a terminal a line never wraps.
func TestConsolePrettyAlignment(t *testing.T) {
	lines := strings.Split(strings.TrimSpace(render(t, "pretty", "never", 0)), "\n")
	col := -1
	for _, l := range lines[:3] { // the three expanded tweets
		i := strings.Index(l, "] ")
		w := runewidth.StringWidth(l[:i+2])
		if col >= 0 && w != col {
			t.Fatalf("text starts at column %d, earlier %d:\n%s", w, col, strings.Join(lines[:3], "\n"))
		}
		col = w
	}
	for _, l := range strings.Split(strings.TrimSpace(render(t, "pretty", "never", 80)), "\n") {
		if w := runewidth.StringWidth(l); w > 80 {
			t.Fatalf("a line of %d columns on an 80-column terminal: %q", w, l)
		}
	}
}

func TestConsoleBadFormat(t *testing.T) {
	_, err := New(&bytes.Buffer{}, "%t %q", "never")
	if err == nil || !strings.Contains(err.Error(), "%q") || !strings.Contains(err.Error(), "%t %p %o") {
		t.Fatalf("bad format: %v", err)
	}
}
