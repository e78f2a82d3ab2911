package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ProduceConfig configures a produce benchmark.
type ProduceConfig struct {
	Brokers     []string
	ClientOpts  []kgo.Opt // TLS and SASL
	Topic       string
	Records     int64
	RecordSize  int
	Acks        string // all, 1, 0
	Compression string // none, gzip, snappy, lz4, zstd
	Producers   int
	Partitions  int32 // create the topic with this many partitions if missing
	Linger      time.Duration
	BatchBytes  int32
	Throughput  int64 // records/s cap, <= 0 for none
	Idempotent  bool
	Keys        int64 // > 0: records get one of this many keys, spread evenly (for compacted topics)
	Progress    func(Progress)
}

// Progress is a periodic report of a running benchmark.
type Progress struct {
	Records int64
	Window  time.Duration
	Rate    float64 // records/s in the window
	MBPerS  float64
	AvgMs   float64
	MaxMs   float64
}

var codecs = map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}

// EnsureTopic creates the topic with the given partitions if it is missing.
func EnsureTopic(ctx context.Context, brokers []string, topic string, partitions int32, opts ...kgo.Opt) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	_, err = kadm.NewClient(cl).CreateTopic(ctx, partitions, -1, nil, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

// Produce sends Records records of RecordSize bytes and measures throughput
// and the latency from Produce to acknowledgement. Each record's timestamp
// is its send time, so a concurrent consume benchmark can measure
// end-to-end latency.
func Produce(ctx context.Context, cfg ProduceConfig) (*Result, error) {
	codec, ok := codecs[cfg.Compression]
	if !ok {
		return nil, fmt.Errorf("unknown compression %q (none, gzip, snappy, lz4, zstd)", cfg.Compression)
	}
	acks := map[string]kgo.Acks{"all": kgo.AllISRAcks(), "-1": kgo.AllISRAcks(), "1": kgo.LeaderAck(), "0": kgo.NoAck()}
	ack, ok := acks[cfg.Acks]
	if !ok {
		return nil, fmt.Errorf("unknown acks %q (all, 1, 0)", cfg.Acks)
	}
	if cfg.Producers <= 0 {
		cfg.Producers = 1
	}
	if cfg.Partitions > 0 {
		if err := EnsureTopic(ctx, cfg.Brokers, cfg.Topic, cfg.Partitions, cfg.ClientOpts...); err != nil {
			return nil, err
		}
	}
	values := payloads(cfg.RecordSize)
	lat := newRecorder(int(cfg.Records))
	res := &Result{}
	var sent, done, doneBytes, errs atomic.Int64
	var winNs, winMax atomic.Int64 // latency sum and max in the progress window

	var clients []*kgo.Client
	for i := 0; i < cfg.Producers; i++ {
		opts := []kgo.Opt{
			kgo.SeedBrokers(cfg.Brokers...), kgo.DefaultProduceTopic(cfg.Topic), kgo.AllowAutoTopicCreation(),
			kgo.ProducerBatchCompression(codec), kgo.RequiredAcks(ack), kgo.ProducerLinger(cfg.Linger),
			kgo.MaxBufferedRecords(100_000), kgo.RecordPartitioner(kgo.StickyPartitioner()),
		}
		if cfg.Keys > 0 {
			opts = append(opts, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
		}
		opts = append(opts, cfg.ClientOpts...)
		if cfg.BatchBytes > 0 {
			opts = append(opts, kgo.ProducerBatchMaxBytes(cfg.BatchBytes))
		}
		if !cfg.Idempotent || cfg.Acks != "all" {
			opts = append(opts, kgo.DisableIdempotentWrite())
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		clients = append(clients, cl)
	}

	stopProgress := progressLoop(cfg.Progress, &done, &doneBytes, &winNs, &winMax)
	defer stopProgress()
	var limiter <-chan time.Time
	var perTick int64
	if cfg.Throughput > 0 {
		tick := 10 * time.Millisecond
		perTick = max(1, cfg.Throughput*int64(tick)/int64(time.Second))
		t := time.NewTicker(tick)
		defer t.Stop()
		limiter = t.C
	}

	start := time.Now()
	var wg sync.WaitGroup
	per := cfg.Records / int64(cfg.Producers)
	for i, cl := range clients {
		n := per
		if i == 0 {
			n += cfg.Records % int64(cfg.Producers)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var pending sync.WaitGroup
			for j := int64(0); j < n && ctx.Err() == nil; j++ {
				if limiter != nil && sent.Add(1)%perTick == 0 {
					<-limiter
				}
				t0 := time.Now()
				pending.Add(1)
				r := &kgo.Record{Value: values[j%int64(len(values))], Timestamp: t0}
				if cfg.Keys > 0 {
					// Knuth's multiplicative hash walks every key, in no simple order.
					r.Key = fmt.Appendf(nil, "key-%010d", (uint64(j)*2654435761)%uint64(cfg.Keys))
				}
				cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
					defer pending.Done()
					if err != nil {
						if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) { // in flight when the benchmark was stopped
							errs.Add(1)
						}
						return
					}
					d := time.Since(t0)
					lat.add(d)
					winNs.Add(int64(d))
					for m := winMax.Load(); int64(d) > m && !winMax.CompareAndSwap(m, int64(d)); m = winMax.Load() {
					}
					done.Add(1)
					doneBytes.Add(int64(cfg.RecordSize))
				})
			}
			pending.Wait()
		}()
	}
	wg.Wait()
	res.Records = done.Load()
	res.Errors = errs.Load()
	res.Bytes = res.Records * int64(cfg.RecordSize)
	res.Finish(time.Since(start))
	res.Latency = lat.summary()
	return res, ctx.Err()
}

// progressLoop calls report every 5 s with the window's figures.
func progressLoop(report func(Progress), done, doneBytes, winNs, winMax *atomic.Int64) func() {
	if report == nil {
		return func() {}
	}
	stop := make(chan struct{})
	go func() {
		const every = 5 * time.Second
		t := time.NewTicker(every)
		defer t.Stop()
		last, lastBytes, lastAt := int64(0), int64(0), time.Now()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				n, nb := done.Load(), doneBytes.Load()
				w := now.Sub(lastAt)
				p := Progress{Records: n, Window: w, Rate: float64(n-last) / w.Seconds(), MBPerS: float64(nb-lastBytes) / 1e6 / w.Seconds()}
				if n > last {
					p.AvgMs = float64(winNs.Swap(0)) / float64(n-last) / 1e6
				}
				p.MaxMs = float64(winMax.Swap(0)) / 1e6
				report(p)
				last, lastBytes, lastAt = n, nb, now
			}
		}
	}()
	return func() { close(stop) }
}
