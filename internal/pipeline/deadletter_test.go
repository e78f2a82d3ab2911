package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// failOn fails on messages whose value contains "bad" and drops those
// containing "drop"; it upper-cases the rest.
type failOn struct{}

func (failOn) Process(m *Message) (bool, error) {
	switch {
	case bytes.Contains(m.Value, []byte("bad")):
		return false, classed{"test.BadValue", errors.New("bad value")}
	case bytes.Contains(m.Value, []byte("drop")):
		return false, nil
	}
	m.Value = bytes.ToUpper(m.Value)
	return true, nil
}
func (failOn) Stage() string { return "fail-on bad" }

type classed struct {
	class string
	error
}

func (c classed) ErrorClass() string { return c.class }

// recordSink keeps what it is given; reject names values it refuses alone.
type recordSink struct {
	mu      sync.Mutex
	got     []Message
	reject  map[string]bool
	fail    error
	batches int
}

func (s *recordSink) Write(_ context.Context, b *Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches++
	if s.fail != nil {
		return s.fail
	}
	var rej RejectedError
	for i, m := range b.Messages {
		if s.reject[string(m.Value)] {
			rej.Rejections = append(rej.Rejections, Rejection{Index: i, Class: "store_refused", Err: fmt.Errorf("refused %s", m.Value)})
			continue
		}
		s.got = append(s.got, m)
	}
	if len(rej.Rejections) > 0 {
		return &rej
	}
	return nil
}

func (s *recordSink) Close() error { return nil }

func (s *recordSink) values() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.got {
		out = append(out, string(m.Value))
	}
	return out
}

// kafkaBatch is one batch of messages with the given values, as read from
// partition 2 of topic "in" from offset 100.
type kafkaSource struct {
	values []string
	acked  chan bool // true for ack, false for nack
}

func (s *kafkaSource) Run(ctx context.Context, out chan<- *Batch) error {
	b := &Batch{Ack: func() { s.acked <- true }, Nack: func(error) { s.acked <- false }}
	for i, v := range s.values {
		b.Messages = append(b.Messages, Message{Value: []byte(v), Key: []byte("k" + v), Topic: "in", Partition: 2, Offset: int64(100 + i),
			Headers: []Header{{"origin", []byte("test")}}})
	}
	Send(ctx, out, b)
	return nil
}

func header(m Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return "(none)"
}

// A message a processor cannot process and one the store refuses go to
// the dead-letter topic as they were read, with Kafka Connect's headers;
// the rest is stored, and the batch is acknowledged once both have theirs.
func TestDeadLettersRouteFailures(t *testing.T) {
	src := &kafkaSource{values: []string{"a", "bad-1", "drop", "b", "c", "d"}, acked: make(chan bool, 1)}
	sink := &recordSink{reject: map[string]bool{"C": true}}
	dlq := &recordSink{}
	p := &Pipeline{Name: "test", Source: src, Processors: []Processor{failOn{}}, Sink: sink, SinkName: "store", DeadLetters: dlq, DeadLetterTopic: "in-dlq", Logger: quiet()}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !<-src.acked {
		t.Fatal("the batch was nacked")
	}
	if got := sink.values(); !slices.Equal(got, []string{"A", "B", "D"}) {
		t.Fatalf("the store has %v", got)
	}
	if len(dlq.got) != 2 {
		t.Fatalf("dead letters %v", dlq.values())
	}
	for i, want := range []struct{ value, offset, stage, connectStage, class, exception, msg string }{
		{"bad-1", "101", "processor fail-on bad", "TRANSFORMATION", "creek.processor.fail-on", "test.BadValue", "bad value"},
		{"c", "104", "sink store", "TASK_PUT", "creek.sink.store", "store_refused", "refused C"},
	} {
		m := dlq.got[i]
		if string(m.Value) != want.value || string(m.Key) != "k"+want.value {
			t.Errorf("dead letter %d is %s=%s, want the original %s", i, m.Key, m.Value, want.value)
		}
		for k, v := range map[string]string{
			"origin": "test", HeaderErrTopic: "in", HeaderErrPartition: "2", HeaderErrOffset: want.offset, HeaderErrConnector: "test",
			HeaderErrStage: want.connectStage, HeaderErrClass: want.class, HeaderErrExceptionClass: want.exception,
			HeaderErrMessage: want.msg, HeaderErrCreekStage: want.stage,
		} {
			if got := header(m, k); got != v {
				t.Errorf("dead letter %d: header %s = %q, want %q", i, k, got, v)
			}
		}
	}
	if s := p.Stats.Snapshot(); s.DeadLetters != 2 || s.Filtered != 1 || s.Out != 6 {
		t.Fatalf("stats %+v", s)
	}
}

// Without a dead-letter topic the pipeline stops at the record, names it,
// and does not acknowledge its batch.
func TestNoDeadLetterTopicStops(t *testing.T) {
	for _, c := range []struct {
		name   string
		values []string
		reject map[string]bool
		want   string
	}{
		{"processor", []string{"a", "bad-x"}, nil, "record in/2 offset 101: processor fail-on bad: bad value"},
		{"sink", []string{"a", "b"}, map[string]bool{"B": true}, "record in/2 offset 101: sink store: refused B"},
	} {
		src := &kafkaSource{values: c.values, acked: make(chan bool, 1)}
		sink := &recordSink{reject: c.reject}
		p := &Pipeline{Source: src, Processors: []Processor{failOn{}}, Sink: sink, SinkName: "store", Logger: quiet()}
		err := p.Run(context.Background())
		if c.name == "processor" && sink.batches != 0 {
			// A sink that commits by position would commit past the record.
			t.Errorf("the sink was given the batch of a record that failed with nowhere to go")
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "dead-letter") {
			t.Errorf("%s: Run = %v, want an error naming %q", c.name, err, c.want)
		}
		if <-src.acked {
			t.Errorf("%s: the batch was acknowledged", c.name)
		}
	}
}

// If the dead-letter topic cannot take the records, the batch is not
// acknowledged and the pipeline stops.
func TestDeadLetterFailureStops(t *testing.T) {
	src := &kafkaSource{values: []string{"bad"}, acked: make(chan bool, 1)}
	p := &Pipeline{Source: src, Processors: []Processor{failOn{}}, Sink: &recordSink{}, DeadLetters: &recordSink{fail: errors.New("broker down")},
		DeadLetterTopic: "dlq", Logger: quiet()}
	err := p.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "dead-letter topic dlq: broker down") {
		t.Fatalf("Run = %v", err)
	}
	if <-src.acked {
		t.Fatal("acknowledged although the dead letter was not written")
	}
}
