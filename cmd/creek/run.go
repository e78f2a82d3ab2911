package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/creek-pipeline/creek/internal/config"
	"github.com/creek-pipeline/creek/internal/pipeline"
)

func newRunCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "run FILE.yaml",
		Short: "Run the pipelines described in a YAML file",
		Long: `Run pipelines from a YAML file, Logstash style: an input and an output section
for one pipeline, or a pipelines list for several. Every source and sink and
their options are listed by "creek produce --help" and "creek consume --help";
in YAML the options have the same names without the x- prefix.

  input:
    generate:
      rate: 5
  output:
    kafka:
      brokers: localhost:9092
      topic: tweets

An unknown key or a bad value stops creek at start with the file, line and
what is allowed.

Ctrl-C (or SIGTERM) stops the sources; each sink then has 10 s to write
what it was handed, and a Kafka sink 10 s more to deliver what its producer
buffered. What is not written by then is not acknowledged: a Kafka source
has not committed it and reads it again next time.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := config.ReadFile(args[0])
			if err != nil {
				return usageError{err}
			}
			specs, err := pipeline.SpecsFromFile(f)
			if err != nil {
				return usageError{err}
			}
			if len(specs) == 0 {
				return usageError{fmt.Errorf("%s has no pipeline: add input and output sections", args[0])}
			}
			return runSpecs(cmd, specs)
		},
	}
}

// runSpecs builds and runs pipelines until they end or SIGINT/SIGTERM,
// then lets them drain.
func runSpecs(cmd *cobra.Command, specs []*pipeline.Spec) error {
	ctx, stop := signalContext()
	defer stop()
	var pipes []*pipeline.Pipeline
	for _, s := range specs {
		p, err := s.Build(pipeline.Env{Logger: slog.Default()})
		if err != nil {
			for _, q := range pipes {
				q.Sink.Close()
			}
			return err
		}
		pipes = append(pipes, p)
	}
	boundMemory(pipes)
	return runPipelines(ctx, pipes)
}

// boundMemory sets Go's soft memory limit when every pipeline's records
// are held within a budget (the s3 sink's --s3-memory, which sizes the
// consumer's fetches too): twice the budgets and a little for the rest,
// so the garbage collector runs before garbage doubles the process, as it
// would with the default GOGC above a live heap of that size. GOMEMLIMIT,
// when set, wins.
func boundMemory(pipes []*pipeline.Pipeline) {
	if os.Getenv("GOMEMLIMIT") != "" || len(pipes) == 0 {
		return
	}
	var budgets int64
	for _, p := range pipes {
		b := p.MemoryBound()
		if b <= 0 {
			return // something holds records without a bound: leave the collector be
		}
		budgets += b
	}
	limit := max(2*budgets+memoryBeyondRecords, minMemoryLimit)
	debug.SetMemoryLimit(limit)
	slog.Debug("memory limit set from the sinks' budgets", "limit_mib", limit>>20)
}

// memoryBeyondRecords is what a consumer process takes besides its
// records: clients, compressors, buffers of the HTTP transport.
const memoryBeyondRecords = 16 << 20

// minMemoryLimit is the lowest limit set: with a small budget the objects
// are small and many are being uploaded at once, and their requests and
// connections take up to 60 MiB whatever the budget (measured with
// --s3-memory 1MiB and 100 partitions); a limit below twice that kept the
// collector running without end (twice the time, three times the CPU).
const minMemoryLimit = 128 << 20

// runPipelines runs pipelines concurrently, reporting progress every 30 s.
// When one fails the others are stopped too.
func runPipelines(ctx context.Context, pipes []*pipeline.Pipeline) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, p := range pipes {
					s := p.Stats.Snapshot()
					slog.Info("progress", "pipeline", p.Name, "in", s.In, "out", s.Out, "errors", s.Errors)
				}
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make([]error, len(pipes))
	for i, p := range pipes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Run(ctx); err != nil {
				errs[i] = fmt.Errorf("pipeline %s: %w", p.Name, err)
				cancel()
			}
		}()
	}
	wg.Wait()
	close(done)
	return errors.Join(errs...)
}
