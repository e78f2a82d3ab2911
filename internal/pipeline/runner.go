package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
)

// Stats are a pipeline's counters, kept for status output and dashboards.
type Stats struct {
	In          atomic.Int64 // messages received from the source
	Out         atomic.Int64 // messages of acknowledged batches: written by the sink, filtered out, or dead-lettered
	Errors      atomic.Int64 // malformed input dropped, failed writes
	Lag         atomic.Int64 // messages the source knows it has yet to read (Kafka consumer lag), -1 if unknown
	Filtered    atomic.Int64 // messages a filter dropped
	DeadLetters atomic.Int64 // messages sent to the dead-letter topic
}

// Snapshot is a copy of the counters.
type Snapshot struct {
	In, Out, Errors, Lag, Filtered, DeadLetters int64
}

// Snapshot reads the counters.
func (s *Stats) Snapshot() Snapshot {
	return Snapshot{In: s.In.Load(), Out: s.Out.Load(), Errors: s.Errors.Load(), Lag: s.Lag.Load(),
		Filtered: s.Filtered.Load(), DeadLetters: s.DeadLetters.Load()}
}

// Pipeline is a source, optional processors and a sink.
type Pipeline struct {
	Name       string
	Source     Source
	Processors []Processor
	Sink       Sink
	SinkName   string // the sink's type, for errors and dead-letter headers
	Stats      *Stats
	Logger     *slog.Logger

	// DeadLetters receives the messages that a processor could not process
	// or the sink refused alone (see deadletter.go), produced to the topic
	// DeadLetterTopic; nil stops the pipeline at such a message instead.
	DeadLetters     Sink
	DeadLetterTopic string

	// DrainTimeout bounds how long the sink may take, after the pipeline
	// is asked to stop, to write what the source had already handed over.
	// What is not written by then is not acknowledged (and so is read
	// again next time).
	DrainTimeout time.Duration
	// QueueBatches is the number of batches between source and sink.
	QueueBatches int
	// InFlightBatches is how many batches a PipelinedSink may be writing at
	// once; other sinks write one at a time. Unset, the default window
	// also takes small batches beyond it (see smallBatchRecords).
	InFlightBatches int

	// SinkBatch, when set, is told how long the sink took with each batch,
	// from handing it over to its being durable (or failing).
	SinkBatch func(time.Duration)
}

// Default pipeline settings.
const (
	DefaultDrainTimeout    = 10 * time.Second
	DefaultQueueBatches    = 16
	DefaultInFlightBatches = 4
	// A PipelinedSink's window is full only once its batches also hold
	// smallBatchRecords records together, up to maxInFlightBatches
	// batches: a source that hands over a few records at a time (a
	// generator at 300 tweets/s sends 3 every 10 ms) would otherwise be
	// held to a few records per round trip to a replicated Kafka.
	smallBatchRecords  = 1000
	maxInFlightBatches = 256
)

// Send hands a batch to the pipeline, waiting while the queue is full. It
// returns false (and nacks the batch) if ctx is done first.
func Send(ctx context.Context, out chan<- *Batch, b *Batch) bool {
	select {
	case out <- b:
		return true
	case <-ctx.Done():
		b.nack(ctx.Err())
		return false
	}
}

func (b *Batch) ack() {
	if b.Ack != nil {
		b.Ack()
	}
}

func (b *Batch) nack(err error) {
	if b.Nack != nil {
		b.Nack(err)
	}
}

// Run moves batches until ctx is cancelled or the source ends, then drains:
// the source stops, and what it already handed over is written and
// acknowledged within DrainTimeout. It returns the first source or sink
// error.
func (p *Pipeline) Run(ctx context.Context) error {
	if p.Stats == nil {
		p.Stats = &Stats{}
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	drainTimeout := p.DrainTimeout
	if drainTimeout <= 0 {
		drainTimeout = DefaultDrainTimeout
	}
	queueLen := p.QueueBatches
	if queueLen <= 0 {
		queueLen = DefaultQueueBatches
	}

	positional, err := p.linkPositions()
	if err != nil {
		if c, ok := p.Source.(Closer); ok {
			c.Close()
		}
		return errors.Join(err, p.Sink.Close())
	}

	if positional && p.QueueBatches <= 0 {
		queueLen = 2 // the sink holds records itself, within its own memory budget
	}
	queue := make(chan *Batch, queueLen)
	srcCtx, stopSource := context.WithCancel(ctx)
	defer stopSource()
	srcErr := make(chan error, 1)
	go func() {
		defer close(queue)
		srcErr <- p.Source.Run(srcCtx, queue)
	}()

	// The sink keeps writing after ctx is cancelled, for at most drainTimeout.
	sinkCtx, cancelSink := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSink()
	stopDrain := context.AfterFunc(ctx, func() {
		time.AfterFunc(drainTimeout, cancelSink)
	})
	defer stopDrain()

	inFlight, growWindow := 1, false
	if _, ok := p.Sink.(PipelinedSink); ok {
		inFlight = p.InFlightBatches
		if inFlight <= 0 {
			inFlight, growWindow = DefaultInFlightBatches, true
		}
	}
	var (
		sinkErr        error
		pending        []*write // oldest first
		pendingRecords int
	)
	// settle waits for the oldest write and acknowledges its batch. Batches
	// are settled in the order the source sent them, and none after a
	// failed one is acknowledged, so a source that commits a position
	// never commits past a batch that was not written.
	// An acknowledgement goes out as soon as the oldest write is done, not
	// only when the window is full: a consumer commits its last batches
	// while it waits for more records.
	settle := func(err error) {
		w := pending[0]
		pending = pending[1:]
		n := int64(len(w.batch.Messages))
		pendingRecords -= len(w.batch.Messages)
		switch {
		case err != nil:
			p.Stats.Errors.Add(n)
			w.batch.nack(err)
			if sinkErr == nil && sinkCtx.Err() == nil {
				sinkErr = err
				stopSource()
			}
		case sinkErr != nil:
			w.batch.nack(sinkErr)
		default:
			p.Stats.Out.Add(n)
			w.batch.ack()
		}
	}
	for in := queue; in != nil || len(pending) > 0; {
		var oldest chan error
		if len(pending) > 0 {
			oldest = pending[0].done
		}
		next := in
		if len(pending) >= inFlight && (!growWindow || pendingRecords >= smallBatchRecords || len(pending) >= maxInFlightBatches) {
			next = nil // the window is full: wait for the oldest write
		}
		var drainOver <-chan struct{}
		if len(pending) > 0 {
			drainOver = sinkCtx.Done()
		}
		select {
		case err := <-oldest:
			settle(err)
		case <-drainOver:
			// The drain timeout is over and a sink that does not heed its
			// context (a producer whose broker is gone) still holds
			// batches: they are nacked, to be delivered again next time,
			// rather than holding the stop up for ever.
			for len(pending) > 0 {
				settle(sinkCtx.Err())
			}
		case b, ok := <-next:
			if !ok {
				in = nil
				continue
			}
			p.Stats.In.Add(int64(len(b.Messages)))
			if sinkErr != nil || sinkCtx.Err() != nil {
				b.nack(errors.Join(sinkErr, sinkCtx.Err()))
				continue
			}
			pending = append(pending, p.start(sinkCtx, b))
			pendingRecords += len(b.Messages)
		}
	}

	// Whether the sink wrote everything it was handed, before closing
	// (closing may take longer than the drain time: a final commit).
	drained := sinkCtx.Err() == nil
	err = <-srcErr
	closeSource := func() error {
		if c, ok := p.Source.(Closer); ok {
			return c.Close()
		}
		return nil
	}
	if positional {
		// What the sink stores while closing is committed by the source's Close.
		err = errors.Join(err, p.Sink.Close(), closeSource(), sinkErr)
	} else {
		err = errors.Join(err, closeSource(), p.Sink.Close(), sinkErr)
	}
	if p.DeadLetters != nil {
		err = errors.Join(err, p.DeadLetters.Close())
	}
	if !drained && ctx.Err() != nil {
		p.Logger.Warn("stopped before the sink wrote everything; what it had not written is not acknowledged (a Kafka source reads it again next time)", "drain_timeout", drainTimeout)
	}
	return err
}

// MemoryBound is the most memory the pipeline's records take: the sink's
// budget when the sink holds them within one (MemoryBoundedSink) and the
// source fetches within it; 0 when nothing bounds them.
func (p *Pipeline) MemoryBound() int64 {
	sink, ok := p.Sink.(MemoryBoundedSink)
	if !ok {
		return 0
	}
	if src, ok := p.Source.(PositionSource); !ok || !src.FetchesBySink() || len(p.Processors) > 0 {
		return 0 // processors make new values, outside the sink's count
	}
	return sink.MemoryBudget()
}

// linkPositions connects a PositionSink to its source.
func (p *Pipeline) linkPositions() (bool, error) {
	sink, ok := p.Sink.(PositionSink)
	if !ok {
		return false, nil
	}
	src, ok := p.Source.(PositionSource)
	if !ok {
		return false, fmt.Errorf("pipeline %s: this sink stores Kafka records by partition and offset; read them with the kafka source (creek consume, or input: kafka)", p.Name)
	}
	pos := &Positions{}
	sink.UsePositions(pos)
	if err := src.UsePositions(pos); err != nil {
		return false, fmt.Errorf("pipeline %s: %w", p.Name, err)
	}
	return true, nil
}

// write is a batch being written; done receives the outcome once.
type write struct {
	batch *Batch
	done  chan error
}

// start processes a batch and hands it to the sink: a PipelinedSink
// returns at once, another sink when the batch is written. The batch is
// done when every message is in the store, filtered out, or in the
// dead-letter topic.
func (p *Pipeline) start(ctx context.Context, b *Batch) *write {
	w := &write{batch: b, done: make(chan error, 1)}
	out, origin, failed := p.process(b)
	if len(failed) > 0 {
		// The processors' failures go to the dead-letter topic before the
		// rest goes to the sink, and without a dead-letter topic the rest
		// does not go at all: a sink that commits by position (S3) must
		// not store, and so commit, past a record that is nowhere.
		// Failures are rare, so the runner waits here.
		dead := make(chan error, 1)
		p.deadLetter(ctx, failed, func(err error) { dead <- err })
		if err := <-dead; err != nil {
			w.done <- err
			return w
		}
		failed = nil
	}
	handed := time.Now()
	finish := func(err error) {
		if p.SinkBatch != nil {
			p.SinkBatch(time.Since(handed))
		}
		var rejected *RejectedError
		if errors.As(err, &rejected) {
			err = nil
			for _, r := range rejected.Rejections {
				if r.Index < 0 || r.Index >= len(out.Messages) {
					err = fmt.Errorf("sink %s rejected message %d of a batch of %d", p.sinkName(), r.Index, len(out.Messages))
					break
				}
				i := r.Index
				if origin != nil {
					i = origin[i]
				}
				class := r.Class
				if class == "" {
					class = errorClass(r.Err)
				}
				failed = append(failed, failure{msg: &b.Messages[i], stage: "sink " + p.sinkName(), connectStage: "TASK_PUT",
					component: "creek.sink." + p.sinkName(), class: class, err: r.Err})
			}
		}
		if err != nil {
			w.done <- fmt.Errorf("write to sink: %w", err)
			return
		}
		if len(failed) == 0 {
			w.done <- nil
			return
		}
		p.deadLetter(ctx, failed, func(err error) { w.done <- err })
	}
	switch sink, pipelined := p.Sink.(PipelinedSink); {
	case len(out.Messages) == 0:
		finish(nil)
	case pipelined:
		sink.WriteAsync(ctx, out, finish)
	default:
		finish(p.Sink.Write(ctx, out))
	}
	return w
}

// process runs the processors over a batch. It returns the batch for the
// sink, where each of its messages came from in b (nil: b itself), and
// the messages that failed.
func (p *Pipeline) process(b *Batch) (out *Batch, origin []int, failed []failure) {
	if len(p.Processors) == 0 {
		return b, nil, nil
	}
	out = &Batch{Messages: make([]Message, 0, len(b.Messages))}
	origin = make([]int, 0, len(b.Messages))
	var filtered int64
next:
	for i := range b.Messages {
		m := b.Messages[i] // a copy: b keeps the original
		for _, proc := range p.Processors {
			keep, err := proc.Process(&m)
			if err != nil {
				failed = append(failed, failure{msg: &b.Messages[i], stage: "processor " + proc.Stage(), connectStage: "TRANSFORMATION",
					component: "creek.processor." + strings.Fields(proc.Stage() + " ?")[0], class: errorClass(err), err: err})
				continue next
			}
			if !keep {
				filtered++
				continue next
			}
		}
		out.Messages = append(out.Messages, m)
		origin = append(origin, i)
	}
	p.Stats.Filtered.Add(filtered)
	return out, origin, failed
}

func (p *Pipeline) sinkName() string {
	if p.SinkName == "" {
		return "sink"
	}
	return p.SinkName
}
