package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ConsumeConfig configures a consume benchmark.
type ConsumeConfig struct {
	Brokers           []string
	ClientOpts        []kgo.Opt // TLS and SASL
	Topic             string
	Records           int64  // <= 0: everything the topic holds when the benchmark starts
	Group             string // "" reads the partitions directly from the start
	FetchMaxBytes     int32
	PartitionMaxBytes int32
	EndToEnd          bool // record now - record timestamp (with a concurrent produce benchmark)
	Progress          func(Progress)
}

// Consume reads Records records from the start of the topic and measures
// throughput, the wait for the first record and, with EndToEnd, the
// latency from each record's timestamp to its arrival.
func Consume(ctx context.Context, cfg ConsumeConfig) (*Result, error) {
	if cfg.Records <= 0 {
		n, err := TopicRecords(ctx, cfg.Brokers, cfg.Topic, cfg.ClientOpts...)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("topic %s holds no records: fill it first, e.g. with creek bench produce --topic %s", cfg.Topic, cfg.Topic)
		}
		cfg.Records = n
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...), kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, cfg.ClientOpts...)
	if cfg.FetchMaxBytes > 0 {
		opts = append(opts, kgo.FetchMaxBytes(cfg.FetchMaxBytes))
	}
	if cfg.PartitionMaxBytes > 0 {
		opts = append(opts, kgo.FetchMaxPartitionBytes(cfg.PartitionMaxBytes))
	}
	if cfg.Group != "" {
		opts = append(opts, kgo.ConsumerGroup(cfg.Group))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()

	res := &Result{}
	lat := newRecorder(int(cfg.Records))
	var done, doneBytes, winNs, winMax atomic.Int64
	stop := progressLoop(cfg.Progress, &done, &doneBytes, &winNs, &winMax)
	defer stop()
	start := time.Now()
	for res.Records < cfg.Records {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.Canceled) {
				res.Errors++
			}
		})
		now := time.Now()
		fs.EachRecord(func(r *kgo.Record) {
			if res.Records == 0 {
				res.FirstRecord = now.Sub(start)
			}
			res.Records++
			res.Bytes += int64(len(r.Value))
			if cfg.EndToEnd {
				lat.add(now.Sub(r.Timestamp))
			}
		})
		done.Store(res.Records)
		doneBytes.Store(res.Bytes)
	}
	res.Finish(time.Since(start))
	res.Latency = lat.summary()
	return res, ctx.Err()
}

// TopicRecords counts the records a topic holds (end minus start offsets).
func TopicRecords(ctx context.Context, brokers []string, topic string, opts ...kgo.Opt) (int64, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("topic %s: %w", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("topic %s: %w", topic, err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		s, _ := starts.Lookup(o.Topic, o.Partition)
		n += o.Offset - s.Offset
	})
	return n, nil
}
