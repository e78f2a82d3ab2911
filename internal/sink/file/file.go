// Package file is the sink that appends records to a file, as JSON lines
// (one object per record, with topic, partition, offset, key, headers: the
// record JSON shared with the console and S3 sinks) or
// as raw lines, rotating it by size or age. A batch is fsynced before it is
// acknowledged, so a Kafka consumer commits only what is on disk.
package file

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/recordjson"
)

func init() {
	pipeline.RegisterSink(pipeline.Plugin{
		Name: "file",
		Doc:  "Appends records to a file as JSON lines or raw lines, rotated by size or age.",
		Options: []pipeline.Option{
			{Name: "path", Flag: "path", Type: pipeline.TypeString, Doc: "File to write (required). Rotated files get a time stamp before the extension."},
			{Name: "format", Flag: "file-format", Type: pipeline.TypeString, Default: "json", Enum: []string{"json", "raw"},
				Doc: "json: one object per record with topic, partition, offset, timestamp, key, value and headers; raw: the value alone."},
			{Name: "rotate-size", Flag: "rotate-size", Type: pipeline.TypeString, Default: "0", Doc: "Start a new file after this size, such as 100MB or 1GiB; 0 never."},
			{Name: "rotate-every", Flag: "rotate-every", Type: pipeline.TypeDuration, Default: "0s", Doc: "Start a new file after this long, such as 1h; 0 never."},
		},
		NewSink: func(v *pipeline.Values, env pipeline.Env) (pipeline.Sink, error) {
			size, err := pipeline.ParseSize(v.String("rotate-size"))
			if err != nil {
				return nil, fmt.Errorf("rotate-size: %w", err)
			}
			if v.String("path") == "" {
				return nil, fmt.Errorf("no file given; use --path FILE (or path: in the output section)")
			}
			return Open(v.String("path"), v.String("format"), size, v.Duration("rotate-every"))
		},
	})
}

// Sink writes records to a file.
type Sink struct {
	path        string
	raw         bool
	rotateSize  int64
	rotateEvery time.Duration
	now         func() time.Time

	f      *os.File
	w      *bufio.Writer
	size   int64
	opened time.Time
	buf    []byte // the json format's line
}

// Open opens (appending to) the file at path.
func Open(path, format string, rotateSize int64, rotateEvery time.Duration) (*Sink, error) {
	s := &Sink{path: path, raw: format == "raw", rotateSize: rotateSize, rotateEvery: rotateEvery, now: time.Now}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Sink) open() error {
	if dir := filepath.Dir(s.path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("file sink: %w", err)
		}
	}
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	s.f, s.w, s.size, s.opened = f, bufio.NewWriterSize(f, 256<<10), st.Size(), s.now()
	return nil
}

// Write appends a batch and fsyncs it.
func (s *Sink) Write(ctx context.Context, b *pipeline.Batch) error {
	if s.due() {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	for i := range b.Messages {
		if err := s.writeLine(&b.Messages[i]); err != nil {
			return err
		}
	}
	if err := s.w.Flush(); err != nil {
		return err
	}
	return s.f.Sync()
}

func (s *Sink) due() bool {
	return (s.rotateSize > 0 && s.size >= s.rotateSize) ||
		(s.rotateEvery > 0 && s.size > 0 && s.now().Sub(s.opened) >= s.rotateEvery)
}

// rotate renames the current file to name-TIMESTAMP.ext and starts a new one.
func (s *Sink) rotate() error {
	if err := s.w.Flush(); err != nil {
		return err
	}
	if err := s.f.Close(); err != nil {
		return err
	}
	ext := filepath.Ext(s.path)
	// Two rotations within a millisecond: the later one takes the next
	// free millisecond, so names stay unique and sort in rotation order.
	at := s.now().UTC()
	rotated := strings.TrimSuffix(s.path, ext) + "-" + at.Format("20060102T150405.000Z") + ext
	for fileExists(rotated) {
		at = at.Add(time.Millisecond)
		rotated = strings.TrimSuffix(s.path, ext) + "-" + at.Format("20060102T150405.000Z") + ext
	}
	if err := os.Rename(s.path, rotated); err != nil {
		return fmt.Errorf("rotate %s: %w", s.path, err)
	}
	return s.open()
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// writeLine writes one message as a line; raw values go straight to the
// buffer, without an intermediate copy.
func (s *Sink) writeLine(m *pipeline.Message) error {
	var line []byte
	if s.raw {
		line = m.Value
	} else {
		line = s.encode(m)
	}
	n, err := s.w.Write(line)
	s.size += int64(n)
	if err != nil {
		return err
	}
	if !s.raw {
		return nil // encode ends the line
	}
	s.size++
	return s.w.WriteByte('\n')
}

func (s *Sink) encode(m *pipeline.Message) []byte {
	s.buf = recordjson.Append(s.buf[:0], m)
	return s.buf
}

// Close flushes, fsyncs and closes the file.
func (s *Sink) Close() error {
	if err := s.w.Flush(); err != nil {
		return err
	}
	if err := s.f.Sync(); err != nil {
		return err
	}
	return s.f.Close()
}
