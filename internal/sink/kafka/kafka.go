// Package kafka is the sink that produces to a Kafka topic with franz-go's
// idempotent producer, so a batch the pipeline retries is not duplicated.
// Records that fail for a reason waiting can fix (a broker of a cluster
// died, leaders moving) are produced again until they are acknowledged, so
// a pipeline waits out a broker's failure instead of stopping.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/internal/kafkaopt"
	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/sink/retry"
)

func init() {
	pipeline.RegisterSink(pipeline.Plugin{
		Name: "kafka",
		Doc:  "Produces records to a Kafka topic (creek broker or any Kafka cluster).",
		Options: append([]pipeline.Option{
			kafkaopt.BrokersOption,
			{Name: "topic", Flag: "topic", Type: pipeline.TypeString, Doc: "Topic to produce to (required)."},
			{Name: "acks", Flag: "acks", Type: pipeline.TypeString, Default: "all", Enum: []string{"all", "1", "0"},
				Doc: "all: the broker stores the record durably before answering; 1: the leader has it; 0: no answer is awaited."},
			{Name: "compression", Flag: "compression", Type: pipeline.TypeString, Default: "none", Enum: []string{"none", "gzip", "snappy", "lz4", "zstd"},
				Doc: "Compression of record batches."},
			{Name: "linger", Flag: "linger", Type: pipeline.TypeDuration, Default: "5ms", Doc: "How long to wait for more records to fill a batch."},
			{Name: "partitioner", Flag: "partitioner", Type: pipeline.TypeString, Default: "key", Enum: []string{"key", "roundrobin", "sticky"},
				Doc: "key: records with the same key go to the same partition (Kafka's murmur2), keyless ones stick to a partition per batch; roundrobin: spread evenly; sticky: fill one partition's batch at a time."},
			{Name: "idempotent", Flag: "idempotent", Type: pipeline.TypeBool, Default: "true",
				Doc: "Idempotent producer: retries never duplicate records (needs acks=all)."},
		}, kafkaopt.SecurityOptions...),
		NewSink: New,
	})
}

// Sink produces to a topic.
type Sink struct {
	cl    *kgo.Client
	topic string
	log   *slog.Logger
}

// New builds the sink from its options.
func New(v *pipeline.Values, env pipeline.Env) (pipeline.Sink, error) {
	if v.String("topic") == "" {
		return nil, fmt.Errorf("no topic given; use --topic NAME (or topic: in the output section)")
	}
	opts, err := kafkaopt.ClientOpts(v, env.Logger)
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		kgo.DefaultProduceTopic(v.String("topic")),
		kgo.AllowAutoTopicCreation(),
		kgo.ProducerLinger(v.Duration("linger")),
	)
	switch v.String("acks") {
	case "all":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	}
	if !v.Bool("idempotent") || v.String("acks") != "all" {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	codec := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}[v.String("compression")]
	opts = append(opts, kgo.ProducerBatchCompression(codec))
	switch v.String("partitioner") {
	case "roundrobin":
		opts = append(opts, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	case "sticky":
		opts = append(opts, kgo.RecordPartitioner(kgo.StickyPartitioner()))
	default:
		opts = append(opts, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	return &Sink{cl: cl, topic: v.String("topic"), log: env.Logger}, nil
}

// Write produces every message of the batch and returns once Kafka has
// acknowledged all of them (or one failed).
func (s *Sink) Write(ctx context.Context, b *pipeline.Batch) error {
	done := make(chan error, 1)
	s.WriteAsync(ctx, b, func(err error) { done <- err })
	return <-done
}

// WriteAsync produces every message of the batch and calls done once Kafka
// has acknowledged all of them (or one failed). The client pipelines the
// batches, so the next one is produced while this one is being synced.
func (s *Sink) WriteAsync(ctx context.Context, b *pipeline.Batch, done func(error)) {
	if len(b.Messages) == 0 {
		done(nil)
		return
	}
	var (
		left   atomic.Int64
		mu     sync.Mutex
		first  error
		failed []*kgo.Record
	)
	left.Store(int64(len(b.Messages)))
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if first == nil {
				first = err
			}
			failed = append(failed, r)
			mu.Unlock()
		}
		if left.Add(-1) == 0 {
			if first == nil {
				done(nil)
				return
			}
			// Not on the client's promise goroutine, which the retries need.
			go func() { done(s.again(ctx, failed, first)) }()
		}
	}
	records := make([]kgo.Record, len(b.Messages))
	for i := range b.Messages {
		m, r := &b.Messages[i], &records[i]
		r.Key, r.Value, r.Timestamp = m.Key, m.Value, m.Timestamp
		if len(m.Headers) > 0 {
			r.Headers = make([]kgo.RecordHeader, len(m.Headers))
			for j, h := range m.Headers {
				r.Headers[j] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
			}
		}
		s.cl.Produce(ctx, r, promise)
	}
}

// again produces records that failed once more, after a growing pause, for
// as long as their error is one that waiting can fix. Records that were
// written but whose acknowledgement was lost are then written twice: at
// least once, never lost.
func (s *Sink) again(ctx context.Context, failed []*kgo.Record, err error) error {
	b := retry.Backoff{Policy: retry.Default}
	for {
		if !transient(err) || ctx.Err() != nil {
			return fmt.Errorf("produce to %s: %w", s.topic, err)
		}
		pause := b.Next()
		if s.log != nil {
			s.log.Warn("produce failed; producing the failed records again", "topic", s.topic, "records", len(failed), "err", err, "retry_in", pause.Round(time.Millisecond))
		}
		if retry.Sleep(ctx, pause) != nil {
			return fmt.Errorf("produce to %s: %w", s.topic, err)
		}
		fresh := make([]*kgo.Record, len(failed))
		for i, r := range failed {
			fresh[i] = &kgo.Record{Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp}
		}
		failed, err = failed[:0], nil
		for _, res := range s.cl.ProduceSync(ctx, fresh...) {
			if res.Err != nil {
				failed = append(failed, res.Record)
				if err == nil {
					err = res.Err
				}
			}
		}
		if err == nil {
			return nil
		}
	}
}

// transient reports whether producing again can succeed: yes for lost
// connections, brokers that died and the idempotent producer's sequence
// errors after leaders moved; no for records Kafka refuses (too large,
// not authorized, invalid) and for a sink being stopped.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed) {
		return false
	}
	switch {
	case errors.Is(err, kerr.OutOfOrderSequenceNumber), errors.Is(err, kerr.UnknownProducerID),
		errors.Is(err, kerr.InvalidProducerEpoch), errors.Is(err, kerr.InvalidProducerIDMapping):
		return true
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable
	}
	return true
}

// Close flushes what is buffered and closes the client.
func (s *Sink) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.cl.Flush(ctx)
	s.cl.Close()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("could not deliver buffered records to %s before closing", s.topic)
	}
	return err
}
