package storetest

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/processor"
	"github.com/creek-pipeline/creek/internal/source/generate"
)

// Tweets makes n generated posts as the Kafka source hands them over
// (topic "tweets", offsets from 0, one every step from start), and the
// same after `map tweet`.
func Tweets(t testing.TB, seed uint64, n int, start time.Time, step time.Duration) (orig, mapped []pipeline.Message) {
	t.Helper()
	g := generate.New(seed)
	for i := range n {
		m := g.Next(start.Add(time.Duration(i) * step))
		m.Topic, m.Offset = "tweets", int64(i)
		orig = append(orig, m)
		if _, err := (processor.TweetMap{}).Process(&m); err != nil {
			t.Fatal(err)
		}
		mapped = append(mapped, m)
	}
	return orig, mapped
}

// SyncBuffer collects what several goroutines write (a process's two
// pipes, a logger).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *SyncBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written.
func (l *SyncBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// CheckWriteWaits stops the server, starts write, checks that it waits
// instead of returning, starts the server again and checks that write
// then succeeds.
func CheckWriteWaits(t testing.TB, s *Server, write func() error) {
	t.Helper()
	s.Stop()
	done := make(chan error, 1)
	go func() { done <- write() }()
	select {
	case err := <-done:
		t.Fatalf("the write returned %v while %s was down", err, s.Name)
	case <-time.After(1500 * time.Millisecond):
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the write did not finish within 60 s of %s's return", s.Name)
	}
}
