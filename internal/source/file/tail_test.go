package file

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

// tailRun is a file source running in the background; every batch is
// recorded and acknowledged unless ack says otherwise.
type tailRun struct {
	src    *Source
	cancel context.CancelFunc
	done   chan error

	mu    sync.Mutex
	lines []string
}

func startTail(t *testing.T, dir string, startAtEnd bool, globs ...string) *tailRun {
	t.Helper()
	s := &Source{Globs: globs, StartAtEnd: startAtEnd, PositionFile: filepath.Join(dir, "positions.json"),
		Poll: 10 * time.Millisecond, Discover: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := s.loadPositions(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &tailRun{src: s, cancel: cancel, done: make(chan error, 1)}
	out := make(chan *pipeline.Batch)
	go func() { r.done <- s.Run(ctx, out); close(out) }()
	go func() {
		for b := range out {
			r.mu.Lock()
			for _, m := range b.Messages {
				r.lines = append(r.lines, string(m.Value))
			}
			r.mu.Unlock()
			b.Ack()
		}
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends the source the way the pipeline does: cancel, then Close.
func (r *tailRun) stop(t *testing.T) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("source: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the file source did not stop")
	}
	if err := r.src.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

func (r *tailRun) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lines)
}

// waitLines waits until exactly want lines have arrived, then checks no
// more arrive shortly after.
func (r *tailRun) waitLines(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(r.got()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(60 * time.Millisecond) // several poll rounds: nothing extra may come
	if got := r.got(); !slices.Equal(got, want) {
		t.Fatalf("lines\n got %q\nwant %q", got, want)
	}
}

func appendTo(t *testing.T, path string, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

func numbered(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s %d", prefix, i))
	}
	return out
}

func TestTailFollowsNewLinesAndWaitsForWholeLines(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendTo(t, log, "old line\n")
	r := startTail(t, dir, true, log)
	time.Sleep(50 * time.Millisecond) // let it open the file at its end
	appendTo(t, log, "first\nsecond\npart")
	r.waitLines(t, "first", "second")
	appendTo(t, log, "ial\n한국어 줄\n")
	r.waitLines(t, "first", "second", "partial", "한국어 줄")
}

func TestTailStartBeginning(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendTo(t, log, "a\nb\n")
	r := startTail(t, dir, false, log)
	r.waitLines(t, "a", "b")
}

// Rotation as logrotate does it: rename, then a new file at the path. The
// rest of the old file and all of the new one arrive, each line once.
func TestTailRotation(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendTo(t, log, "")
	r := startTail(t, dir, true, log)
	time.Sleep(50 * time.Millisecond)
	appendTo(t, log, strings.Join(numbered("old", 0, 50), "\n")+"\n")
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, log+".1", strings.Join(numbered("old", 50, 60), "\n")+"\n") // written after the rename, before the writer reopened
	appendTo(t, log, strings.Join(numbered("new", 0, 40), "\n")+"\n")
	want := append(numbered("old", 0, 60), numbered("new", 0, 40)...)
	deadline := time.Now().Add(5 * time.Second)
	for len(r.got()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(60 * time.Millisecond)
	got := r.got()
	var old, fresh []string
	for _, l := range got {
		if strings.HasPrefix(l, "old") {
			old = append(old, l)
		} else {
			fresh = append(fresh, l)
		}
	}
	if !slices.Equal(old, numbered("old", 0, 60)) || !slices.Equal(fresh, numbered("new", 0, 40)) {
		t.Fatalf("after rotation got %d old and %d new lines (want 60 and 40, in order, once each):\n%q", len(old), len(fresh), got)
	}
}

// copytruncate: the file is cut to zero and written again from the start.
func TestTailTruncation(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendTo(t, log, "")
	r := startTail(t, dir, true, log)
	time.Sleep(50 * time.Millisecond)
	appendTo(t, log, "before 1\nbefore 2\nbefore 3\n")
	r.waitLines(t, "before 1", "before 2", "before 3")
	if err := os.Truncate(log, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	appendTo(t, log, "after\n")
	r.waitLines(t, "before 1", "before 2", "before 3", "after")
}

// The position file: a restart neither repeats acknowledged lines nor
// loses lines written while the source was stopped.
func TestTailRestartResumes(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendTo(t, log, "")
	r := startTail(t, dir, true, log)
	time.Sleep(50 * time.Millisecond)
	appendTo(t, log, "one\ntwo\n")
	r.waitLines(t, "one", "two")
	r.stop(t)

	appendTo(t, log, "three\nfour\n")
	r2 := startTail(t, dir, true, log) // start=end applies only to files never seen
	r2.waitLines(t, "three", "four")
}

// Lines handed over but never acknowledged (the sink failed, the process
// stopped) are read again after a restart.
func TestTailUnacknowledgedLinesComeBack(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendTo(t, log, "")
	s := &Source{Globs: []string{log}, StartAtEnd: true, PositionFile: filepath.Join(dir, "positions.json"),
		Poll: 10 * time.Millisecond, Discover: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := s.loadPositions(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan *pipeline.Batch, 10)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, out) }()
	time.Sleep(50 * time.Millisecond)
	appendTo(t, log, "acked\n")
	b := <-out
	b.Ack()
	appendTo(t, log, "lost in the sink\n")
	b = <-out
	if b.Nack != nil {
		b.Nack(fmt.Errorf("sink failed"))
	}
	cancel()
	<-done
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := startTail(t, dir, true, log)
	r.waitLines(t, "lost in the sink")
}

// A glob picks up files created after the start, from their beginning.
func TestTailGlobFindsNewFiles(t *testing.T) {
	dir := t.TempDir()
	appendTo(t, filepath.Join(dir, "a.log"), "")
	r := startTail(t, dir, true, filepath.Join(dir, "*.log"))
	time.Sleep(50 * time.Millisecond)
	appendTo(t, filepath.Join(dir, "a.log"), "from a\n")
	appendTo(t, filepath.Join(dir, "b.log"), "from b\n")
	deadline := time.Now().Add(5 * time.Second)
	for len(r.got()) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	got := r.got()
	slices.Sort(got)
	if !slices.Equal(got, []string{"from a", "from b"}) {
		t.Fatalf("got %q", got)
	}
}

// discardSink lets the bad-config test build a pipeline in this package.
type discardSink struct{}

func (discardSink) Write(context.Context, *pipeline.Batch) error { return nil }
func (discardSink) Close() error                                 { return nil }

func init() {
	pipeline.RegisterSink(pipeline.Plugin{Name: "tail-test-discard", Doc: "test sink",
		NewSink: func(*pipeline.Values, pipeline.Env) (pipeline.Sink, error) { return discardSink{}, nil }})
}

func TestTailBadConfig(t *testing.T) {
	p, err := pipeline.LookupSource("file")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		opts map[string][]string
		want string
	}{
		{map[string][]string{}, "--path"},
		{map[string][]string{"path": {"[bad"}}, "not a valid glob"},
	} {
		spec, err := pipeline.NewSpec("t", p.Name, tc.opts, "tail-test-discard", nil)
		if err == nil {
			_, err = spec.Build(pipeline.Env{})
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("options %v: %v, want an error mentioning %q", tc.opts, err, tc.want)
		}
	}
}
