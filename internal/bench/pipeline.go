package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

// PipelineConfig configures the end-to-end pipeline benchmark.
type PipelineConfig struct {
	Brokers    []string
	Topic      string
	Events     int64
	Partitions int32
	OutDir     string // where the file sink writes
	FileFormat string // json or raw
}

// Pipeline runs creek's own pipelines end to end, generate → Kafka topic
// and Kafka topic → file, concurrently, and measures from the first event
// generated until the file sink has written them all.
func Pipeline(ctx context.Context, cfg PipelineConfig) (*Result, error) {
	if cfg.Partitions > 0 {
		if err := EnsureTopic(ctx, cfg.Brokers, cfg.Topic, cfg.Partitions); err != nil {
			return nil, err
		}
	}
	brokers := strings.Join(cfg.Brokers, ",")
	n := strconv.FormatInt(cfg.Events, 10)
	collect, err := pipeline.NewSpec("generate-to-kafka", "generate", map[string][]string{"rate": {"0"}, "count": {n}, "seed": {"1"}},
		"kafka", map[string][]string{"brokers": {brokers}, "topic": {cfg.Topic}, "partitioner": {"sticky"}})
	if err != nil {
		return nil, err
	}
	store, err := pipeline.NewSpec("kafka-to-file", "kafka", map[string][]string{"brokers": {brokers}, "topic": {cfg.Topic}, "from-beginning": {"true"}, "count": {n}},
		"file", map[string][]string{"path": {filepath.Join(cfg.OutDir, "events.out")}, "format": {cfg.FileFormat}})
	if err != nil {
		return nil, err
	}
	var pipes []*pipeline.Pipeline
	for _, s := range []*pipeline.Spec{collect, store} {
		p, err := s.Build(pipeline.Env{})
		if err != nil {
			return nil, err
		}
		pipes = append(pipes, p)
	}
	counted := &countingSink{Sink: pipes[1].Sink}
	pipes[1].Sink = counted

	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, p := range pipes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.Run(ctx)
		}()
	}
	wg.Wait()
	res := &Result{Records: pipes[1].Stats.Out.Load(), Bytes: counted.bytes.Load(), Errors: pipes[0].Stats.Errors.Load() + pipes[1].Stats.Errors.Load()}
	res.Finish(time.Since(start))
	if res.Records != cfg.Events {
		return res, errors.Join(fmt.Errorf("the file sink wrote %d of %d events", res.Records, cfg.Events), errors.Join(errs...))
	}
	return res, errors.Join(errs...)
}

// countingSink counts the bytes of the event values written.
type countingSink struct {
	pipeline.Sink
	bytes atomic.Int64
}

func (c *countingSink) Write(ctx context.Context, b *pipeline.Batch) error {
	if err := c.Sink.Write(ctx, b); err != nil {
		return err
	}
	var n int64
	for i := range b.Messages {
		n += int64(len(b.Messages[i].Value))
	}
	c.bytes.Add(n)
	return nil
}
