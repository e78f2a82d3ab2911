package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// Dead letters. A message that a processor cannot process, or that the
// store refuses for what it holds, must neither stop the pipeline for good
// nor disappear. With a dead-letter topic it is produced there, as it was
// read, with Kafka Connect's error headers, and the batch is acknowledged
// only once the dead-letter topic has it (acks=all) and the store has the
// rest. Without one the pipeline stops at it, naming the record, and the
// batch is not acknowledged, so nothing from that record on is committed.

// Dead-letter headers. The names are Kafka Connect's (its
// DeadLetterQueueReporter), so tools written for Connect's dead-letter
// topics read creek's; __creek.errors.stage names the processor or sink.
const (
	HeaderErrTopic          = "__connect.errors.topic"
	HeaderErrPartition      = "__connect.errors.partition"
	HeaderErrOffset         = "__connect.errors.offset"
	HeaderErrConnector      = "__connect.errors.connector.name"
	HeaderErrStage          = "__connect.errors.stage"
	HeaderErrClass          = "__connect.errors.class.name"
	HeaderErrExceptionClass = "__connect.errors.exception.class.name"
	HeaderErrMessage        = "__connect.errors.exception.message"
	HeaderErrCreekStage     = "__creek.errors.stage"
)

// failure is a message that failed alone, at a stage.
type failure struct {
	msg          *Message // the message as the source read it
	stage        string   // creek's name: "processor map tweet", "sink postgres"
	connectStage string   // Kafka Connect's: TRANSFORMATION, TASK_PUT
	component    string   // what failed, as Connect's class name: creek.processor.map, creek.sink.postgres
	class        string
	err          error
}

// where names the record: its topic, partition and offset when it came
// from Kafka.
func (f *failure) where() string {
	if f.msg.Topic == "" {
		return "a record"
	}
	return fmt.Sprintf("record %s/%d offset %d", f.msg.Topic, f.msg.Partition, f.msg.Offset)
}

// ErrorClasser is an error that names its kind for the dead-letter
// headers (__connect.errors.exception.class.name).
type ErrorClasser interface {
	ErrorClass() string
}

func errorClass(err error) string {
	var c ErrorClasser
	if errors.As(err, &c) {
		return c.ErrorClass()
	}
	return fmt.Sprintf("%T", err)
}

// deadLetter sends failed messages to the dead-letter topic and calls done
// once it has them, or with the error that stops the pipeline.
func (p *Pipeline) deadLetter(ctx context.Context, failed []failure, done func(error)) {
	if p.DeadLetters == nil {
		f := failed[0]
		more := ""
		if len(failed) > 1 {
			more = fmt.Sprintf(" (and %d more in the same batch)", len(failed)-1)
		}
		done(fmt.Errorf("%s: %s: %v%s; no dead-letter topic is set, so the pipeline stops here and commits nothing from this record on (set --dead-letter-topic NAME, or dead-letter-topic: in YAML, to set such records aside and go on)",
			f.where(), f.stage, f.err, more))
		return
	}
	b := &Batch{Messages: make([]Message, len(failed))}
	for i := range failed {
		f := &failed[i]
		b.Messages[i] = p.deadLetterMessage(f)
		p.Logger.Warn("record sent to the dead-letter topic", "record", f.where(), "stage", f.stage, "err", f.err, "dead_letter_topic", p.DeadLetterTopic)
	}
	finish := func(err error) {
		if err != nil {
			done(fmt.Errorf("dead-letter topic %s: %w", p.DeadLetterTopic, err))
			return
		}
		p.Stats.DeadLetters.Add(int64(len(failed)))
		done(nil)
	}
	if s, ok := p.DeadLetters.(PipelinedSink); ok {
		s.WriteAsync(ctx, b, finish)
		return
	}
	finish(p.DeadLetters.Write(ctx, b))
}

// deadLetterMessage is the original message with the error headers added
// after its own.
func (p *Pipeline) deadLetterMessage(f *failure) Message {
	m := *f.msg
	h := make([]Header, 0, len(m.Headers)+9)
	h = append(h, m.Headers...)
	if m.Topic != "" {
		h = append(h,
			Header{HeaderErrTopic, []byte(m.Topic)},
			Header{HeaderErrPartition, strconv.AppendInt(nil, int64(m.Partition), 10)},
			Header{HeaderErrOffset, strconv.AppendInt(nil, m.Offset, 10)})
	}
	h = append(h,
		Header{HeaderErrConnector, []byte(p.Name)},
		Header{HeaderErrStage, []byte(f.connectStage)},
		Header{HeaderErrClass, []byte(f.component)},
		Header{HeaderErrExceptionClass, []byte(f.class)},
		Header{HeaderErrMessage, []byte(f.err.Error())},
		Header{HeaderErrCreekStage, []byte(f.stage)})
	m.Headers = h
	return m
}
