// Package file is the source that tails files, as Logstash's file input
// does: it follows new lines of every file matching its globs, notices a
// file rotated away (renamed, with a new file at its path) and reads the
// old one to its end and the new one from its start, restarts a file that
// was truncated, and keeps a position file so a restart neither loses nor
// repeats lines. Positions move only when the sink has acknowledged the
// lines before them.
package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

func init() {
	pipeline.RegisterSource(pipeline.Plugin{
		Name: "file",
		Doc:  "Tails files matching globs, one record per line, following rotation and truncation.",
		Options: []pipeline.Option{
			{Name: "path", Flag: "path", Type: pipeline.TypeStrings, Doc: "File or glob to follow, such as /var/log/app/*.log (repeatable; required)."},
			{Name: "start", Flag: "start", Type: pipeline.TypeString, Default: "end", Enum: []string{"beginning", "end"},
				Doc: "Where to start in a file seen for the first time at start-up: end (new lines only) or beginning. Files that appear later are read from their beginning."},
			{Name: "position-file", Flag: "position-file", Type: pipeline.TypeString, Default: ".creek-file-positions.json",
				Doc: "Where the read positions are kept between runs."},
			{Name: "poll-interval", Flag: "poll-interval", Type: pipeline.TypeDuration, Default: "250ms", Doc: "How often files are checked for new lines."},
			{Name: "discover-interval", Flag: "discover-interval", Type: pipeline.TypeDuration, Default: "1s", Doc: "How often the globs are matched again for new files."},
		},
		NewSource: func(v *pipeline.Values, env pipeline.Env) (pipeline.Source, error) {
			if len(v.Strings("path")) == 0 {
				return nil, fmt.Errorf("no file given; use --path FILE_OR_GLOB (or path: in the input section)")
			}
			for _, g := range v.Strings("path") {
				if _, err := filepath.Match(g, ""); err != nil {
					return nil, fmt.Errorf("path %q is not a valid glob: %w", g, err)
				}
			}
			s := &Source{
				Globs: v.Strings("path"), StartAtEnd: v.String("start") == "end", PositionFile: v.String("position-file"),
				Poll: v.Duration("poll-interval"), Discover: v.Duration("discover-interval"), Logger: env.Logger,
			}
			if err := s.loadPositions(); err != nil {
				return nil, err
			}
			return s, nil
		},
	})
}

// Source tails files.
type Source struct {
	Globs        []string
	StartAtEnd   bool
	PositionFile string
	Poll         time.Duration
	Discover     time.Duration
	Logger       *slog.Logger

	tailed map[fileID]*tailed // files open for reading

	mu        sync.Mutex
	committed map[fileID]position // acknowledged positions, saved to PositionFile
	dirty     bool
}

type fileID struct{ Dev, Ino uint64 }

type position struct {
	Path   string `json:"path"`
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	Offset int64  `json:"offset"`
}

type tailed struct {
	id      fileID
	path    string
	f       *os.File
	offset  int64  // next byte to read
	partial []byte // a last line without its newline yet
	gone    bool   // the path no longer leads to this file: close at its end
	idle    int    // polls at the end of a gone file
}

// Limits of one batch.
const (
	maxBatchLines = 1000
	readChunk     = 256 << 10
	maxLine       = 16 << 20
)

func (s *Source) loadPositions() error {
	s.committed = map[fileID]position{}
	b, err := os.ReadFile(s.PositionFile)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("position file: %w", err)
	}
	var list []position
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("position file %s is not readable (%v); move it away to start over", s.PositionFile, err)
	}
	for _, p := range list {
		s.committed[fileID{p.Dev, p.Ino}] = p
	}
	return nil
}

func (s *Source) savePositions() error {
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	list := make([]position, 0, len(s.committed))
	for _, p := range s.committed {
		list = append(list, p)
	}
	s.dirty = false
	s.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].Path < list[j].Path })
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.PositionFile + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("save positions: %w", err)
	}
	return os.Rename(tmp, s.PositionFile)
}

// Run follows the files until ctx is done.
func (s *Source) Run(ctx context.Context, out chan<- *pipeline.Batch) error {
	s.tailed = map[fileID]*tailed{}
	defer func() {
		for _, t := range s.tailed {
			t.f.Close()
		}
	}()
	s.discover(true)
	poll := time.NewTicker(s.Poll)
	defer poll.Stop()
	discover := time.NewTicker(s.Discover)
	defer discover.Stop()
	save := time.NewTicker(time.Second)
	defer save.Stop()
	for {
		if b := s.read(); b != nil {
			if !pipeline.Send(ctx, out, b) {
				return nil
			}
			continue // there may be more already
		}
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
		case <-discover.C:
			s.discover(false)
		case <-save.C:
			if err := s.savePositions(); err != nil {
				s.Logger.Warn("could not save file positions", "err", err)
			}
		}
	}
}

// Close saves the positions of everything acknowledged.
func (s *Source) Close() error { return s.savePositions() }

func statID(fi os.FileInfo) fileID {
	st, _ := fi.Sys().(*syscall.Stat_t)
	if st == nil {
		return fileID{}
	}
	return fileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}
}

// discover matches the globs, opens new files and marks files whose path
// now leads elsewhere (rotated or deleted).
func (s *Source) discover(first bool) {
	current := map[fileID]string{}
	for _, g := range s.Globs {
		matches, _ := filepath.Glob(g)
		for _, path := range matches {
			fi, err := os.Stat(path)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			current[statID(fi)] = path
		}
	}
	for id, t := range s.tailed {
		if path, ok := current[id]; ok {
			t.path = path
		} else if !t.gone {
			t.gone = true
			s.Logger.Info("file rotated or removed; reading it to its end", "path", t.path)
		}
	}
	for id, path := range current {
		if _, ok := s.tailed[id]; ok {
			continue
		}
		f, err := os.Open(path)
		if err != nil {
			s.Logger.Warn("cannot open file", "path", path, "err", err)
			continue
		}
		fi, err := f.Stat()
		if err != nil || statID(fi) != id {
			f.Close() // replaced between the stat and the open; next round
			continue
		}
		t := &tailed{id: id, path: path, f: f}
		s.mu.Lock()
		p, known := s.committed[id]
		s.mu.Unlock()
		switch {
		case known && p.Offset <= fi.Size():
			t.offset = p.Offset
		case known:
			s.Logger.Info("file is shorter than its saved position (truncated); reading from the start", "path", path)
		case first && s.StartAtEnd:
			t.offset = fi.Size()
		}
		s.tailed[id] = t
		s.Logger.Info("following file", "path", path, "from", t.offset)
	}
}

// read collects new complete lines from the files into one batch; nil when
// there are none.
func (s *Source) read() *pipeline.Batch {
	b := &pipeline.Batch{}
	ends := map[fileID]position{} // where each file's lines in this batch end
	ids := make([]fileID, 0, len(s.tailed))
	for id := range s.tailed {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return s.tailed[ids[i]].path < s.tailed[ids[j]].path })
	for _, id := range ids {
		t := s.tailed[id]
		if len(b.Messages) >= maxBatchLines {
			break
		}
		n, err := s.readFile(t, b, maxBatchLines-len(b.Messages))
		if n > 0 {
			ends[id] = position{Path: t.path, Dev: id.Dev, Ino: id.Ino, Offset: t.offset - int64(len(t.partial))}
		}
		if err != nil {
			s.Logger.Warn("cannot read file; closing it", "path", t.path, "err", err)
			t.f.Close()
			delete(s.tailed, id)
			continue
		}
		if n == 0 && t.gone {
			if t.idle++; t.idle > 2 {
				t.f.Close()
				delete(s.tailed, id)
				s.forget(id)
			}
		}
	}
	if len(b.Messages) == 0 {
		return nil
	}
	b.Ack = func() {
		s.mu.Lock()
		for id, p := range ends {
			s.committed[id] = p
		}
		s.dirty = true
		s.mu.Unlock()
	}
	return b
}

func (s *Source) forget(id fileID) {
	s.mu.Lock()
	delete(s.committed, id)
	s.dirty = true
	s.mu.Unlock()
}

// readFile appends up to max complete lines of t to b.
func (s *Source) readFile(t *tailed, b *pipeline.Batch, max int) (int, error) {
	fi, err := t.f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Size() < t.offset-int64(len(t.partial)) {
		s.Logger.Info("file truncated; reading it from the start", "path", t.path)
		t.offset, t.partial = 0, nil
	}
	n := 0
	buf := make([]byte, readChunk)
	for n < max && t.offset < fi.Size() {
		k, err := t.f.ReadAt(buf, t.offset)
		if k == 0 && err != nil && !errors.Is(err, io.EOF) {
			return n, err
		}
		if k == 0 {
			break
		}
		t.offset += int64(k)
		data := append(t.partial, buf[:k]...)
		t.partial = nil
		for n < max {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			line := bytes.TrimSuffix(data[:i], []byte{'\r'})
			b.Messages = append(b.Messages, pipeline.Message{
				Value:     append([]byte(nil), line...),
				Timestamp: time.Now(),
				Headers:   []pipeline.Header{{Key: "path", Value: []byte(t.path)}},
			})
			n++
			data = data[i+1:]
		}
		if len(data) > maxLine {
			s.Logger.Warn("dropping a line over 16 MiB", "path", t.path)
			data = nil
		}
		if n >= max && len(data) > 0 {
			// Batch full: give the unread rest back to the file.
			t.offset -= int64(len(data))
			data = nil
		}
		t.partial = append([]byte(nil), data...)
	}
	return n, nil
}
