package file

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

func batchOf(from, to int) *pipeline.Batch {
	b := &pipeline.Batch{}
	for i := from; i < to; i++ {
		b.Messages = append(b.Messages, pipeline.Message{
			Topic: "tweets", Partition: int32(i % 3), Offset: int64(i), Key: fmt.Appendf(nil, "k%d", i),
			Value: fmt.Appendf(nil, `{"n":%d,"text":"줄 %d"}`, i, i), Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i)).UTC(),
			Headers: []pipeline.Header{{Key: "rule", Value: []byte("kafka")}},
		})
	}
	return b
}

func readLines(t *testing.T, paths ...string) []string {
	t.Helper()
	var out []string
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			out = append(out, sc.Text())
		}
		f.Close()
	}
	return out
}

// JSON lines parse back to the records; the data is in the file as soon as
// Write returns (it was fsynced), and a reopened sink appends.
func TestFileSinkJSONLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out", "tweets.jsonl")
	s, err := Open(path, "json", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), batchOf(0, 3)); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path) // before Close: Write made it durable
	if len(lines) != 3 {
		t.Fatalf("%d lines after Write", len(lines))
	}
	var r struct {
		Topic     string            `json:"topic"`
		Partition int32             `json:"partition"`
		Offset    int64             `json:"offset"`
		Key       string            `json:"key"`
		Value     map[string]any    `json:"value"`
		Headers   map[string]string `json:"headers"`
		Timestamp string            `json:"timestamp"`
	}
	if err := json.Unmarshal([]byte(lines[2]), &r); err != nil {
		t.Fatal(err)
	}
	if r.Topic != "tweets" || r.Partition != 2 || r.Offset != 2 || r.Key != "k2" || r.Value["text"] != "줄 2" || r.Headers["rule"] != "kafka" || r.Timestamp == "" {
		t.Fatalf("line decoded as %+v", r)
	}
	s.Close()
	s, err = Open(path, "json", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.Write(context.Background(), batchOf(3, 5))
	s.Close()
	if n := len(readLines(t, path)); n != 5 {
		t.Fatalf("%d lines after reopening and writing 2 more, want 5", n)
	}
}

func TestFileSinkRaw(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raw.txt")
	s, err := Open(path, "raw", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.Write(context.Background(), batchOf(0, 2))
	s.Close()
	if got := readLines(t, path); !slices.Equal(got, []string{`{"n":0,"text":"줄 0"}`, `{"n":1,"text":"줄 1"}`}) {
		t.Fatalf("raw lines %q", got)
	}
}

// Rotation by size: files are renamed with a time stamp, no line is split
// or lost, and together they hold every line once, in order.
func TestFileSinkRotatesBySize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.log")
	s, err := Open(path, "raw", 200, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i += 4 {
		if err := s.Write(context.Background(), batchOf(i, i+4)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "events-*.log"))
	if len(files) < 3 {
		t.Fatalf("%d rotated files for 40 lines of ~22 bytes with rotate-size 200", len(files))
	}
	sort.Strings(files) // time stamps sort in time order
	all := readLines(t, append(files, path)...)
	var want []string
	for _, m := range batchOf(0, 40).Messages {
		want = append(want, string(m.Value))
	}
	if !slices.Equal(all, want) {
		t.Fatalf("the files hold %d lines, want the 40 written once in order", len(all))
	}
}

// Rotation by age, with the sink's clock moved by the test.
func TestFileSinkRotatesByTime(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hourly.jsonl")
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	s, err := Open(path, "json", 0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return now }
	s.opened = now
	s.Write(context.Background(), batchOf(0, 2))
	now = now.Add(30 * time.Minute)
	s.Write(context.Background(), batchOf(2, 4))
	now = now.Add(31 * time.Minute)
	s.Write(context.Background(), batchOf(4, 6))
	s.Close()
	rotated := filepath.Join(dir, "hourly-20261124T110100.000Z.jsonl")
	if n := len(readLines(t, rotated)); n != 4 {
		t.Fatalf("the rotated file holds %d lines, want the 4 of the first hour", n)
	}
	if n := len(readLines(t, path)); n != 2 {
		t.Fatalf("the new file holds %d lines, want 2", n)
	}
}

// Two rotations in the same millisecond keep both files.
func TestFileSinkRotationNamesDoNotCollide(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fast.log")
	s, err := Open(path, "raw", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	frozen := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return frozen }
	for i := range 4 {
		s.Write(context.Background(), batchOf(i, i+1))
	}
	s.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "fast*.log"))
	if n := len(readLines(t, files...)); n != 4 {
		t.Fatalf("%d lines in %d files after 4 rotations in one millisecond, want 4", n, len(files))
	}
}

func TestFileSinkUnwritablePath(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "a-file")
	os.WriteFile(blocker, nil, 0o644)
	_, err := Open(filepath.Join(blocker, "out.log"), "json", 0, 0)
	if err == nil || !strings.Contains(err.Error(), "file sink") || !strings.Contains(err.Error(), blocker) {
		t.Fatalf("unwritable path: %v", err)
	}
}
