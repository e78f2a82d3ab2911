// Package pipeline moves messages from a source to a sink with
// at-least-once delivery: a source hands out batches, the sink writes each
// one durably, and only then is the batch acknowledged back to the source
// (which commits a Kafka offset, saves a file position, or answers an HTTP
// client). A bounded queue between them gives backpressure: a slow sink
// slows the source down instead of filling memory.
//
// Sources and sinks register themselves by name with their options (see
// registry.go); the engine only sees these interfaces.
package pipeline

import (
	"context"
	"fmt"
	"time"
)

// Message is one record moving through a pipeline.
type Message struct {
	Key       []byte
	Value     []byte
	Headers   []Header
	Timestamp time.Time

	// Where a message read from Kafka came from (Topic is empty otherwise).
	Topic     string
	Partition int32
	Offset    int64
}

// Header is a record header.
type Header struct {
	Key   string
	Value []byte
}

// Batch is a group of messages acknowledged together.
type Batch struct {
	Messages []Message

	// Ack is called once, after the sink has durably accepted every
	// message of the batch; nil when the source needs no acknowledgement.
	Ack func()
	// Nack is called instead of Ack when the batch could not be delivered
	// (the pipeline is stopping or the sink failed); may be nil.
	Nack func(error)
}

// Source produces batches until its context is cancelled.
type Source interface {
	// Run sends batches to out until ctx is done or the input ends (a
	// file read to the end with nothing to follow, a --count reached).
	// It returns nil when it stopped because ctx was cancelled or the
	// input ended, and an error for a failure the pipeline cannot
	// recover from (such as a refused credential).
	Run(ctx context.Context, out chan<- *Batch) error
}

// Sink writes batches.
type Sink interface {
	// Write delivers a batch and returns once it is durable: acknowledged
	// by Kafka, written to a file, printed. An error stops the pipeline;
	// the batch is not acknowledged and will be delivered again.
	Write(ctx context.Context, b *Batch) error
	// Close flushes and releases the sink.
	Close() error
}

// PipelinedSink is a sink that takes the next batch before the previous
// one is durable, as Kafka's producer keeps several requests in flight.
// WriteAsync hands the batch over and calls done once, when the batch is
// durable or has failed, from any goroutine. The runner keeps a few
// batches in flight and acknowledges them to the source in order.
type PipelinedSink interface {
	Sink
	WriteAsync(ctx context.Context, b *Batch, done func(error))
}

// PositionSink is a sink that stores Kafka records in units of its own,
// many batches long (an S3 object holds one partition's records from a
// start offset on), and so acknowledges by position rather than by batch,
// as a Kafka Connect sink does in preCommit. Its Write returns once the
// sink has taken the batch (it may block while the sink's memory is full),
// not once it is stored: what is stored it reports through
// Positions.Commit, and only that is committed. Such a sink needs a
// PositionSource; the runner links the two before the first batch and
// closes the sink before the source, so that what the sink stores on the
// way out is still committed.
type PositionSink interface {
	Sink
	// UsePositions is called once, before the first Write; the sink sets
	// Revoked and calls Commit.
	UsePositions(p *Positions)
}

// MemoryBoundedSink is a PositionSink that holds the records it gathers
// within a budget of its own, which also covers the fetches of a source
// that sizes them by Positions.FetchMaxBytes.
type MemoryBoundedSink interface {
	PositionSink
	MemoryBudget() int64
}

// PositionSource is a source that commits by position: the Kafka source.
type PositionSource interface {
	Source
	// UsePositions is called once, before Run; the source sets Commit and
	// calls Revoked. It fails when the source cannot commit by position
	// (a share group acknowledges records one by one).
	UsePositions(p *Positions) error
	// FetchesBySink reports whether the source sizes its fetches as the
	// sink asks (Positions.FetchMaxBytes) rather than as it was told.
	FetchesBySink() bool
}

// Positions links a PositionSink to its PositionSource.
type Positions struct {
	// Commit (set by the source) reports that every record of
	// topic/partition before offset next is stored. Calls for one
	// partition come in increasing order.
	Commit func(topic string, partition int32, next int64)
	// Revoked (set by the sink) says the source no longer reads these
	// partitions (a rebalance gave them to another consumer): the sink
	// drops what it holds of them without storing it, and returns once
	// nothing of them will be stored or committed any more. The source
	// calls it after the sink has taken every batch sent before.
	Revoked func(topic string, partitions []int32)
	// FetchMaxBytes (set by the sink, 0 for no preference) is how much the
	// source should fetch at once. A sink that holds records itself, in a
	// memory budget of its own, wants small fetches: the source's fetches,
	// each alive until its last record is in the sink, add to that budget.
	// The source uses it unless it was told a size.
	FetchMaxBytes int64
}

// Processor shapes messages between source and sink, as Logstash's
// filters do: it keeps or drops a message and may change its key, value
// and headers. The runner calls it from one goroutine, message by message.
type Processor interface {
	// Process changes m in place and reports whether to keep it. It may
	// replace m's fields but must not change the bytes they point to: the
	// runner keeps the original message for the dead-letter topic. An
	// error means this message alone could not be processed (its value is
	// not the JSON the processor needs): it goes to the dead-letter topic,
	// or stops the pipeline when there is none, and the others go on.
	Process(m *Message) (keep bool, err error)
	// Stage names the processor in errors and dead-letter headers, such
	// as `map tweet` or `filter value.data.lang == "ko"`.
	Stage() string
}

// Reshaper is a processor that replaces the record's value (a map). Shape
// names the form it gives: "tweet" for the tweet mapping, "" for a form
// the sink cannot know. The sink learns the shape of the last one through
// Env.Shape.
type Reshaper interface {
	Shape() string
}

// ShapeTweet is the shape of records after the tweet mapping: a JSON
// object with id, created_at, lang, author_id, username, text, hashtags
// and raw (the whole post as the X API sent it), keyed by the post id.
const ShapeTweet = "tweet"

// RejectedError is what a sink's Write returns (or passes to done) when
// the store refused some messages of the batch for what they hold, alone,
// and stored all the others: a document its index mapping rejects, an item
// over the size limit. Those messages go to the dead-letter topic, or,
// without one, the pipeline stops. A refusal that is not about one message
// (wrong credentials, the store down) is an ordinary error, never this.
type RejectedError struct {
	Rejections []Rejection
}

// Rejection is one message that failed alone.
type Rejection struct {
	Index int    // in the Messages of the batch the sink was given
	Class string // the kind of failure, for the dead-letter headers: the store's error code, such as mapper_parsing_exception
	Err   error
}

func (e *RejectedError) Error() string {
	if len(e.Rejections) == 0 {
		return "no message rejected"
	}
	first := e.Rejections[0]
	if len(e.Rejections) == 1 {
		return fmt.Sprintf("message %d refused: %v", first.Index, first.Err)
	}
	return fmt.Sprintf("%d messages refused, the first (message %d): %v", len(e.Rejections), first.Index, first.Err)
}

// Closer is implemented by sources that hold resources to release after
// the pipeline has stopped (a position file to save, a consumer to close).
type Closer interface {
	Close() error
}
