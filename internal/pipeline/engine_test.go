package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ledger records what happened to each batch a test source sent.
type ledger struct {
	mu     sync.Mutex
	acked  []int
	nacked []int
	events chan string // "ack 3", "nack 4"
}

func newLedger() *ledger { return &ledger{events: make(chan string, 1000)} }

// batch makes batch number n with size messages whose values are "n.i".
func (l *ledger) batch(n, size int) *Batch {
	b := &Batch{}
	for i := range size {
		b.Messages = append(b.Messages, Message{Value: fmt.Appendf(nil, "%d.%d", n, i)})
	}
	b.Ack = func() {
		l.mu.Lock()
		l.acked = append(l.acked, n)
		l.mu.Unlock()
		l.events <- fmt.Sprint("ack ", n)
	}
	b.Nack = func(error) {
		l.mu.Lock()
		l.nacked = append(l.nacked, n)
		l.mu.Unlock()
		l.events <- fmt.Sprint("nack ", n)
	}
	return b
}

func (l *ledger) result() (acked, nacked []int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.acked), slices.Clone(l.nacked)
}

// listSource sends numbered batches, then waits for ctx if hold is set
// (a stream that has no end), else ends.
type listSource struct {
	l       *ledger
	batches int
	size    int
	hold    bool
	sent    chan int // each batch number once it was handed over
}

func (s *listSource) Run(ctx context.Context, out chan<- *Batch) error {
	for n := range s.batches {
		if !Send(ctx, out, s.l.batch(n, s.size)) {
			return nil
		}
		if s.sent != nil {
			s.sent <- n
		}
	}
	if s.hold {
		<-ctx.Done()
	}
	return nil
}

// gateSink writes a batch only when the test lets it through.
type gateSink struct {
	mu      sync.Mutex
	written []string
	gate    chan error // one value per Write: nil writes, an error fails
	started chan int   // the size of each batch as its Write begins
}

func (s *gateSink) Write(ctx context.Context, b *Batch) error {
	s.started <- len(b.Messages)
	select {
	case err := <-s.gate:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	for _, m := range b.Messages {
		s.written = append(s.written, string(m.Value))
	}
	s.mu.Unlock()
	return nil
}

func (s *gateSink) Close() error { return nil }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func runAsync(p *Pipeline, ctx context.Context) chan error {
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return done
}

func waitErr(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the pipeline did not stop within 10 s")
		return nil
	}
}

// Every batch is acknowledged exactly once, after the sink wrote it, in
// order; the counters add up.
func TestEngineAcksAfterWrite(t *testing.T) {
	l := newLedger()
	sink := &gateSink{gate: make(chan error), started: make(chan int, 100)}
	p := &Pipeline{Source: &listSource{l: l, batches: 5, size: 3}, Sink: sink, Logger: quiet()}
	done := runAsync(p, context.Background())
	for n := range 5 {
		<-sink.started
		select {
		case e := <-l.events:
			t.Fatalf("%q before batch %d was written", e, n)
		default:
		}
		sink.gate <- nil
		if e := <-l.events; e != fmt.Sprint("ack ", n) {
			t.Fatalf("after writing batch %d: %q", n, e)
		}
	}
	if err := waitErr(t, done); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats.Snapshot(); s.In != 15 || s.Out != 15 || s.Errors != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// A slow sink holds the source back: at most QueueBatches batches wait,
// plus the one being written and the one the source is trying to send.
func TestEngineBackpressure(t *testing.T) {
	l := newLedger()
	sink := &gateSink{gate: make(chan error), started: make(chan int, 100)}
	src := &listSource{l: l, batches: 50, size: 1, sent: make(chan int, 100)}
	p := &Pipeline{Source: src, Sink: sink, QueueBatches: 4, Logger: quiet()}
	done := runAsync(p, context.Background())
	<-sink.started // the first batch is being written; the sink is stuck
	deadline := time.After(300 * time.Millisecond)
	handed := 0
wait:
	for {
		select {
		case <-src.sent:
			handed++
		case <-deadline:
			break wait
		}
	}
	if handed > 1+4 {
		t.Fatalf("the source handed over %d batches while the sink wrote none (queue of 4)", handed)
	}
	for range 50 {
		sink.gate <- nil
	}
	if err := waitErr(t, done); err != nil {
		t.Fatal(err)
	}
	if acked, nacked := l.result(); len(acked) != 50 || len(nacked) != 0 {
		t.Fatalf("acked %d nacked %d", len(acked), len(nacked))
	}
}

// Ctrl-C while batches are queued: the source stops, the sink writes what
// was already handed over, and every one of those batches is acknowledged.
func TestEngineDrainsOnShutdown(t *testing.T) {
	l := newLedger()
	sink := &gateSink{gate: make(chan error, 100), started: make(chan int, 100)}
	src := &listSource{l: l, batches: 6, size: 2, hold: true, sent: make(chan int, 100)}
	p := &Pipeline{Source: src, Sink: sink, QueueBatches: 8, DrainTimeout: 5 * time.Second, Logger: quiet()}
	ctx, cancel := context.WithCancel(context.Background())
	done := runAsync(p, ctx)
	for range 6 {
		<-src.sent
	}
	<-sink.started
	cancel() // shutdown with five batches queued and one being written
	for range 6 {
		sink.gate <- nil
	}
	if err := waitErr(t, done); err != nil {
		t.Fatal(err)
	}
	acked, nacked := l.result()
	if !slices.Equal(acked, []int{0, 1, 2, 3, 4, 5}) || len(nacked) != 0 {
		t.Fatalf("after draining acked %v nacked %v", acked, nacked)
	}
	if len(sink.written) != 12 {
		t.Fatalf("the sink wrote %d messages, want 12", len(sink.written))
	}
}

// A sink that cannot finish within the drain timeout: the batches it did
// not write are nacked (they are delivered again next time), never acked.
func TestEngineDrainTimeout(t *testing.T) {
	l := newLedger()
	sink := &gateSink{gate: make(chan error), started: make(chan int, 100)}
	src := &listSource{l: l, batches: 3, size: 1, hold: true, sent: make(chan int, 100)}
	p := &Pipeline{Source: src, Sink: sink, DrainTimeout: 100 * time.Millisecond, Logger: quiet()}
	ctx, cancel := context.WithCancel(context.Background())
	done := runAsync(p, ctx)
	for range 3 {
		<-src.sent
	}
	<-sink.started
	cancel()
	start := time.Now()
	err := waitErr(t, done)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("stopping took %s with a 100 ms drain timeout", took)
	}
	if err == nil {
		t.Log("no error reported for the unwritten batches")
	}
	acked, nacked := l.result()
	if len(acked) != 0 || !slices.Equal(nacked, []int{0, 1, 2}) {
		t.Fatalf("acked %v nacked %v, want nothing acked and every batch nacked", acked, nacked)
	}
}

// A sink error nacks the batch, stops the source and is returned.
func TestEngineSinkErrorStops(t *testing.T) {
	l := newLedger()
	sink := &gateSink{gate: make(chan error, 10), started: make(chan int, 100)}
	sink.gate <- nil
	sink.gate <- errors.New("disk full")
	p := &Pipeline{Source: &listSource{l: l, batches: 100, size: 1, hold: true}, Sink: sink, Logger: quiet()}
	err := waitErr(t, runAsync(p, context.Background()))
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Run returned %v, want the sink's error", err)
	}
	acked, nacked := l.result()
	if !slices.Equal(acked, []int{0}) || len(nacked) == 0 || nacked[0] != 1 {
		t.Fatalf("acked %v nacked %v", acked, nacked)
	}
	if s := p.Stats.Snapshot(); s.Errors < 1 || s.Out != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// asyncSink completes batches in whatever order the test says.
type asyncSink struct {
	mu      sync.Mutex
	pending map[int]func(error) // by the first value's batch number
	started chan int
}

func (s *asyncSink) Write(context.Context, *Batch) error { panic("the runner must use WriteAsync") }
func (s *asyncSink) Close() error                        { return nil }
func (s *asyncSink) WriteAsync(_ context.Context, b *Batch, done func(error)) {
	var n int
	fmt.Sscanf(string(b.Messages[0].Value), "%d.", &n)
	s.mu.Lock()
	s.pending[n] = done
	s.mu.Unlock()
	s.started <- n
}

func (s *asyncSink) complete(n int, err error) {
	s.mu.Lock()
	done := s.pending[n]
	delete(s.pending, n)
	s.mu.Unlock()
	done(err)
}

// A pipelined sink has several batches in flight (at most
// InFlightBatches); acknowledgements follow the source's order even when
// the sink finishes out of order, and nothing after a failed batch is
// acknowledged.
func TestEnginePipelinedSinkOrder(t *testing.T) {
	l := newLedger()
	sink := &asyncSink{pending: map[int]func(error){}, started: make(chan int, 100)}
	p := &Pipeline{Source: &listSource{l: l, batches: 8, size: 1, hold: true}, Sink: sink, InFlightBatches: 3, Logger: quiet()}
	done := runAsync(p, context.Background())
	for want := range 3 {
		if n := <-sink.started; n != want {
			t.Fatalf("batch %d started, want %d", n, want)
		}
	}
	select {
	case n := <-sink.started:
		t.Fatalf("batch %d started with 3 already in flight", n)
	case <-time.After(100 * time.Millisecond):
	}
	sink.complete(2, nil)
	sink.complete(1, nil)
	select {
	case e := <-l.events:
		t.Fatalf("%q before batch 0 was written", e)
	case <-time.After(50 * time.Millisecond):
	}
	sink.complete(0, nil)
	for want := range 3 {
		if e := <-l.events; e != fmt.Sprint("ack ", want) {
			t.Fatalf("got %q, want ack %d", e, want)
		}
	}
	for range 3 {
		<-sink.started // 3, 4, 5 are now in flight
	}
	sink.complete(4, nil)
	sink.complete(3, errors.New("broker unreachable"))
	sink.complete(5, nil)
	err := waitErr(t, done)
	if err == nil || !strings.Contains(err.Error(), "broker unreachable") {
		t.Fatalf("Run returned %v", err)
	}
	acked, nacked := l.result()
	if !slices.Equal(acked, []int{0, 1, 2}) {
		t.Fatalf("acked %v: a batch after the failed one was acknowledged", acked)
	}
	for _, n := range []int{3, 4, 5} {
		if !slices.Contains(nacked, n) {
			t.Fatalf("batch %d not nacked (nacked %v)", n, nacked)
		}
	}
}

// With the default window, small batches (a few records each, as a slow
// source sends them) keep going to a pipelined sink past four in flight,
// and are still acknowledged in order.
func TestEnginePipelinedSmallBatchesFillWindowByRecords(t *testing.T) {
	l := newLedger()
	sink := &asyncSink{pending: map[int]func(error){}, started: make(chan int, 100)}
	p := &Pipeline{Source: &listSource{l: l, batches: 20, size: 3}, Sink: sink, Logger: quiet()}
	done := runAsync(p, context.Background())
	for want := range 20 {
		select {
		case n := <-sink.started:
			if n != want {
				t.Fatalf("batch %d started, want %d", n, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("batch %d of 3 records did not start with %d in flight: the window counts batches, not records", want, want)
		}
	}
	for n := 19; n >= 0; n-- {
		sink.complete(n, nil)
	}
	for want := range 20 {
		if e := <-l.events; e != fmt.Sprint("ack ", want) {
			t.Fatalf("got %q, want ack %d", e, want)
		}
	}
	if err := waitErr(t, done); err != nil {
		t.Fatal(err)
	}
}

// A pipelined sink's batch is acknowledged as soon as it is written, even
// when no other batch follows (a consumer that has caught up commits its
// last records at once, not when the next ones arrive).
func TestEnginePipelinedAckWithoutNextBatch(t *testing.T) {
	l := newLedger()
	sink := &asyncSink{pending: map[int]func(error){}, started: make(chan int, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &Pipeline{Source: &listSource{l: l, batches: 2, size: 1, hold: true}, Sink: sink, InFlightBatches: 4, Logger: quiet()}
	done := runAsync(p, ctx)
	<-sink.started
	<-sink.started
	sink.complete(0, nil)
	sink.complete(1, nil)
	for want := range 2 {
		select {
		case e := <-l.events:
			if e != fmt.Sprint("ack ", want) {
				t.Fatalf("got %q, want ack %d", e, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("batch %d was written but not acknowledged while the source waits for more", want)
		}
	}
	cancel()
	if err := waitErr(t, done); err != nil {
		t.Fatal(err)
	}
}

// A pipelined sink that never finishes its writes, as a producer whose
// broker has gone: once the drain timeout is over the stop goes on, and the
// batches it held are nacked, never acked.
func TestEngineDrainTimeoutPipelinedSink(t *testing.T) {
	l := newLedger()
	sink := &asyncSink{pending: map[int]func(error){}, started: make(chan int, 100)}
	p := &Pipeline{Source: &listSource{l: l, batches: 3, size: 1, hold: true}, Sink: sink, InFlightBatches: 3,
		DrainTimeout: 100 * time.Millisecond, Logger: quiet()}
	ctx, cancel := context.WithCancel(context.Background())
	done := runAsync(p, ctx)
	for range 3 {
		<-sink.started
	}
	cancel()
	start := time.Now()
	waitErr(t, done)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("stopping took %s with a 100 ms drain timeout", took)
	}
	acked, nacked := l.result()
	if len(acked) != 0 || !slices.Equal(nacked, []int{0, 1, 2}) {
		t.Fatalf("acked %v nacked %v, want nothing acked and every batch nacked", acked, nacked)
	}
}
