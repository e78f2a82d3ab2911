package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/internal/admin"
	"github.com/creek-pipeline/creek/internal/storage"
)

// CompactionConfig configures a compaction benchmark: a topic of Records
// keyed records over Keys keys is filled, then switched to
// cleanup.policy=compact, and the log cleaner's pass over it is timed
// while a producer and a consumer run on other topics, whose rates are
// compared with the same load before the cleaning.
type CompactionConfig struct {
	Brokers     []string
	Topic       string
	Records     int64
	RecordSize  int
	Keys        int64
	Partitions  int32
	SegmentMB   int64         // segment.bytes of the compacted topic, in MiB
	ProduceRate int64         // records/s of the producer beside the cleaner; 0 for as fast as it goes
	Baseline    time.Duration // how long the load runs alone
	Progress    func(string)
}

// CompactionResult is what the compaction benchmark measured.
type CompactionResult struct {
	LogBytesBefore int64                    `json:"log_bytes_before"`
	LogBytesAfter  int64                    `json:"log_bytes_after"`
	Cleaning       time.Duration            `json:"cleaning_ns"`      // from the switch to compact until the last partition was clean
	CleanerTime    time.Duration            `json:"cleaner_ns"`       // the cleaning passes' own time
	CleanMBPerSec  float64                  `json:"clean_mb_per_sec"` // MB (10^6 bytes) of log cleaned per second of cleaner time
	Passes         []*storage.CleaningStats `json:"passes"`           // the last pass over each partition

	ProduceAlone, ProduceDuring *Result
	ConsumeAlone, ConsumeDuring *Result
}

func (r *CompactionResult) String() string {
	var b strings.Builder
	var read, written, records int64
	for _, p := range r.Passes {
		read, written, records = read+p.BytesRead, written+p.BytesWritten, records+p.RecordsRead
	}
	fmt.Fprintf(&b, "cleaned %.1f MB of log to %.1f MB: %.2f s of cleaning (%.2f s after the switch to compact), %.1f MB/s of log, %.0f records/s; read %.1f MB, wrote %.1f MB\n",
		float64(r.LogBytesBefore)/1e6, float64(r.LogBytesAfter)/1e6, r.CleanerTime.Seconds(), r.Cleaning.Seconds(), r.CleanMBPerSec,
		float64(records)/r.CleanerTime.Seconds(), float64(read)/1e6, float64(written)/1e6)
	fmt.Fprintf(&b, "produce alone:          %s\nproduce while cleaning: %s\n", r.ProduceAlone, r.ProduceDuring)
	fmt.Fprintf(&b, "consume alone:          %s\nconsume while cleaning: %s", r.ConsumeAlone, r.ConsumeDuring)
	return b.String()
}

// Compaction runs the compaction benchmark. It needs a creek broker: the
// cleaner's progress is read from creek's DescribeLogDirs tag.
func Compaction(ctx context.Context, cfg CompactionConfig) (*CompactionResult, error) {
	say := func(format string, args ...any) {
		if cfg.Progress != nil {
			cfg.Progress(fmt.Sprintf(format, args...))
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	sideProduce, sideConsume := cfg.Topic+"-produce", cfg.Topic+"-consume"
	for _, t := range []string{cfg.Topic, sideProduce, sideConsume} {
		var configs map[string]*string
		if t == cfg.Topic {
			configs = map[string]*string{"segment.bytes": kadm.StringPtr(fmt.Sprint(cfg.SegmentMB << 20))}
		}
		resp, err := adm.CreateTopic(ctx, cfg.Partitions, -1, configs, t)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			return nil, fmt.Errorf("create topic %s: %w", t, err)
		}
	}
	say("filling %s with %d records of %d bytes over %d keys, and %s with as many without keys (not measured)", cfg.Topic, cfg.Records, cfg.RecordSize, cfg.Keys, sideConsume)
	fill := ProduceConfig{Brokers: cfg.Brokers, Topic: cfg.Topic, Records: cfg.Records, RecordSize: cfg.RecordSize,
		Acks: "1", Compression: "none", Producers: 1, BatchBytes: 1 << 20, Keys: cfg.Keys}
	if _, err := Produce(ctx, fill); err != nil {
		return nil, fmt.Errorf("filling %s: %w", cfg.Topic, err)
	}
	fill.Topic, fill.Keys = sideConsume, 0
	if _, err := Produce(ctx, fill); err != nil {
		return nil, fmt.Errorf("filling %s: %w", sideConsume, err)
	}

	res := &CompactionResult{}
	load := func(ctx context.Context) (produce, consume *Result, err error) {
		type out struct {
			r   *Result
			err error
		}
		pc, cc := make(chan out, 1), make(chan out, 1)
		go func() {
			r, err := Produce(ctx, ProduceConfig{Brokers: cfg.Brokers, Topic: sideProduce, Records: 1 << 40, RecordSize: cfg.RecordSize,
				Acks: "all", Compression: "none", Producers: 1, BatchBytes: 1 << 20, Idempotent: true, Throughput: cfg.ProduceRate})
			pc <- out{r, err}
		}()
		go func() {
			// Read the topic from its start again and again until stopped.
			total := &Result{}
			start := time.Now()
			for {
				r, err := Consume(ctx, ConsumeConfig{Brokers: cfg.Brokers, Topic: sideConsume, Records: cfg.Records})
				if r != nil {
					total.Records, total.Bytes, total.Errors = total.Records+r.Records, total.Bytes+r.Bytes, total.Errors+r.Errors
				}
				if err != nil || ctx.Err() != nil {
					total.Finish(time.Since(start))
					cc <- out{total, err}
					return
				}
			}
		}()
		p, c := <-pc, <-cc
		for _, e := range []error{p.err, c.err} {
			if e != nil && !errors.Is(e, context.Canceled) && !errors.Is(e, context.DeadlineExceeded) {
				return p.r, c.r, e
			}
		}
		return p.r, c.r, nil
	}

	say("producing to %s and consuming %s for %s without cleaning", sideProduce, sideConsume, cfg.Baseline)
	bctx, cancel := context.WithTimeout(ctx, cfg.Baseline)
	res.ProduceAlone, res.ConsumeAlone, err = load(bctx)
	cancel()
	if err != nil {
		return nil, err
	}

	before, err := cleanerStatuses(ctx, cl, cfg.Topic, cfg.Partitions, true)
	if err != nil {
		return nil, err
	}
	for _, st := range before {
		res.LogBytesBefore += st.size
	}
	say("switching %s to cleanup.policy=compact (%.1f MB); the same load runs until it is clean", cfg.Topic, float64(res.LogBytesBefore)/1e6)
	lctx, stopLoad := context.WithCancel(ctx)
	type loaded struct {
		p, c *Result
		err  error
	}
	loadDone := make(chan loaded, 1)
	go func() {
		p, c, err := load(lctx)
		loadDone <- loaded{p, c, err}
	}()
	start := time.Now()
	alter, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Name: "cleanup.policy", Value: kadm.StringPtr("compact")},
		{Name: "min.cleanable.dirty.ratio", Value: kadm.StringPtr("0.01")},
	}, cfg.Topic)
	if err == nil {
		err = alter[0].Err
	}
	if err != nil {
		stopLoad()
		<-loadDone
		return nil, fmt.Errorf("switch %s to compact: %w", cfg.Topic, err)
	}
	var after []partitionState
	for {
		after, err = cleanerStatuses(ctx, cl, cfg.Topic, cfg.Partitions, false)
		if err != nil {
			break
		}
		clean := true
		for _, st := range after {
			if st.LastCleaning == nil || st.LastCleaning.Start.Before(start) || st.DirtyBytes > 0 {
				clean = false
			}
		}
		if clean {
			break
		}
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if err != nil {
			break
		}
	}
	res.Cleaning = time.Since(start)
	stopLoad()
	l := <-loadDone
	if err != nil {
		return nil, err
	}
	if l.err != nil {
		return nil, l.err
	}
	res.ProduceDuring, res.ConsumeDuring = l.p, l.c
	for _, st := range after {
		res.LogBytesAfter += st.size
		res.Passes = append(res.Passes, st.LastCleaning)
		res.CleanerTime += time.Duration(st.LastCleaning.DurationMs) * time.Millisecond
	}
	res.CleanMBPerSec = float64(res.LogBytesBefore) / 1e6 / max(res.CleanerTime.Seconds(), 0.001)
	return res, nil
}

type partitionState struct {
	storage.CleanerStatus
	size int64
}

// cleanerStatuses reads each partition's size and, when compacted, its
// cleaner status from the partitions' leaders.
func cleanerStatuses(ctx context.Context, cl *kgo.Client, topic string, partitions int32, sizesOnly bool) ([]partitionState, error) {
	md, err := kadm.NewClient(cl).Metadata(ctx, topic)
	if err != nil {
		return nil, err
	}
	leaders := map[int32][]int32{}
	for _, p := range md.Topics[topic].Partitions {
		leaders[p.Leader] = append(leaders[p.Leader], p.Partition)
	}
	dirs := admin.CleanerStatuses(ctx, cl, topic, leaders)
	var out []partitionState
	for p := range partitions {
		d, ok := dirs[p]
		if !ok || (d.Cleaner == nil && !sizesOnly) {
			return nil, fmt.Errorf("partition %d of %s: the broker does not report its log cleaner's state: the compaction benchmark needs a creek broker", p, topic)
		}
		st := partitionState{size: d.Size}
		if d.Cleaner != nil {
			st.CleanerStatus = *d.Cleaner
		}
		out = append(out, st)
	}
	return out, nil
}
