package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/internal/bench"
	"github.com/creek-pipeline/creek/internal/s3client"
)

// benchCmd holds what every bench subcommand shares.
type benchCmd struct {
	kafka     *kafkaFlags
	self      bool
	brokerPID int
	output    string
	quiet     bool
	profile   string
	selfArgs  []string // more arguments of the --self broker
}

func newBenchCommand() *cobra.Command {
	b := &benchCmd{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput and latency of a broker or a pipeline",
		Long: `Load generators in the spirit of Kafka's kafka-producer-perf-test and
kafka-consumer-perf-test. They speak only the Kafka protocol, so they measure
creek's broker or any Kafka cluster (--brokers), and they print figures:
records/s, MB/s (10^6 bytes of record values a second) and latency
percentiles.

With --self the benchmark starts its own creek broker as a child process, on
a free port and a temporary data folder that is removed afterwards, and
reports the CPU time that broker used per GB moved. For a broker you started
yourself on this machine, --broker-pid PID does the same.

Progress is printed to stderr every 5 s; the result goes to stdout, as one
line of text or, with --output json, as a JSON object.`,
		Example: `  creek bench produce --self --records 2000000 --record-size 1024 --acks all
  creek bench consume --self --records 2000000
  creek bench pipeline --self --events 2000000
  creek bench s3 --self --partitions 100 --s3-bucket bench --s3-endpoint http://127.0.0.1:7070
  creek bench compaction --self --records 1000000 --keys 100000
  creek bench produce --brokers kafka-1:9092 --topic perf --acks 1 --compression lz4`,
	}
	b.kafka = addKafkaFlags(cmd)
	pf := cmd.PersistentFlags()
	pf.BoolVar(&b.self, "self", false, "start a creek broker as a child process for the benchmark (ignores --brokers)")
	pf.IntVar(&b.brokerPID, "broker-pid", 0, "process id of a broker on this machine whose CPU time to report")
	pf.StringVar(&b.output, "output", "text", "text or json")
	pf.BoolVar(&b.quiet, "quiet", false, "no progress lines on stderr")
	pf.StringVar(&b.profile, "cpuprofile", "", "write a CPU profile of the benchmark's own process (the clients, and for pipeline the whole engine) to this file, for go tool pprof")
	cmd.AddCommand(b.produceCommand(), b.consumeCommand(), b.pipelineCommand(), b.s3Command(), b.compactionCommand())
	return cmd
}

// target is the cluster a benchmark runs against.
type target struct {
	brokers []string
	opts    []kgo.Opt    // TLS and SASL for --brokers
	pid     int          // broker process to measure, 0 for none
	stop    func() error // stops a broker started with --self
}

// connect resolves --self, --brokers and --broker-pid.
func (b *benchCmd) connect(cmd *cobra.Command) (*target, error) {
	if b.output != "text" && b.output != "json" {
		return nil, usageError{fmt.Errorf("--output %q: want text or json", b.output)}
	}
	if !b.self {
		brokers, opts, err := b.kafka.clientOpts(cmd)
		if err != nil {
			return nil, err
		}
		return &target{brokers: brokers, opts: opts, pid: b.brokerPID, stop: func() error { return nil }}, nil
	}
	return startSelfBroker(cmd.Context(), cmd.ErrOrStderr(), b.quiet, b.selfArgs...)
}

// startSelfBroker runs `creek broker` from this executable on a free
// loopback port with a temporary data folder, and waits until it answers.
func startSelfBroker(ctx context.Context, stderr io.Writer, quiet bool, extra ...string) (*target, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("--self: cannot find the creek executable: %w", err)
	}
	dir, err := os.MkdirTemp("", "creek-bench-")
	if err != nil {
		return nil, fmt.Errorf("--self: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("--self: no free port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()

	child := exec.Command(exe, append([]string{"broker", "--listen", addr, "--data-dir", dir, "--log-level", "warn"}, extra...)...)
	child.Stderr = stderr // warnings and errors only; its banner is not wanted here
	if err := child.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("--self: start creek broker: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	stop := func() error {
		defer os.RemoveAll(dir)
		child.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			return err
		case <-time.After(10 * time.Second):
			child.Process.Kill()
			return errors.New("the benchmark's broker did not stop within 10 s; killed it")
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("--self: the benchmark's broker exited at start: %v", err)
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, errors.New("--self: the benchmark's broker did not listen within 15 s")
		}
	}
	if !quiet {
		fmt.Fprintf(stderr, "bench: started creek broker (pid %d) on %s with data in %s\n", child.Process.Pid, addr, dir)
	}
	return &target{brokers: []string{addr}, pid: child.Process.Pid, stop: stop}, nil
}

// progress prints a progress line on stderr unless --quiet.
func (b *benchCmd) progress(cmd *cobra.Command) func(bench.Progress) {
	if b.quiet {
		return nil
	}
	w := cmd.ErrOrStderr()
	return func(p bench.Progress) {
		line := fmt.Sprintf("bench: %d records, %.0f records/s, %.1f MB/s", p.Records, p.Rate, p.MBPerS)
		if p.AvgMs > 0 {
			line += fmt.Sprintf(", latency avg %.1f ms max %.1f ms", p.AvgMs, p.MaxMs)
		}
		fmt.Fprintln(w, line)
	}
}

// run connects, runs fn with the broker's CPU measured, prints the result.
func (b *benchCmd) run(cmd *cobra.Command, fn func(ctx context.Context, t *target) (*bench.Result, error)) (err error) {
	t, err := b.connect(cmd)
	if err != nil {
		return err
	}
	defer func() {
		if serr := t.stop(); err == nil && serr != nil && cmd.Context().Err() == nil {
			err = serr
		}
	}()
	ctx, cancel := signalContext()
	defer cancel()
	if b.profile != "" {
		f, err := os.Create(b.profile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	cpu := bench.StartCPU(t.pid)
	res, err := fn(ctx, t)
	if res == nil {
		return err
	}
	cpu.Stop(res)
	if b.output == "json" {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(res); jerr != nil {
			return jerr
		}
	} else {
		fmt.Fprintln(cmd.OutOrStdout(), res)
	}
	if errors.Is(err, context.Canceled) {
		return errors.New("interrupted; the figures above cover what ran")
	}
	return err
}

func (b *benchCmd) produceCommand() *cobra.Command {
	cfg := bench.ProduceConfig{}
	var acks, compression string
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Produce records as fast as acknowledged, like kafka-producer-perf-test",
		Long: `Produce --records records of --record-size bytes (random text from a small
pool) and report records/s, MB/s and the latency from send to
acknowledgement (p50, p95, p99, p99.9). The topic is created with
--partitions when it does not exist.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.Acks, cfg.Compression = acks, compression
			return b.run(cmd, func(ctx context.Context, t *target) (*bench.Result, error) {
				cfg.Brokers, cfg.ClientOpts, cfg.Progress = t.brokers, t.opts, b.progress(cmd)
				return bench.Produce(ctx, cfg)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Topic, "topic", "creek-bench", "topic to produce to")
	f.Int64Var(&cfg.Records, "records", 1_000_000, "records to produce")
	f.IntVar(&cfg.RecordSize, "record-size", 1024, "bytes in each record's value")
	f.StringVar(&acks, "acks", "all", "all, 1 or 0")
	f.StringVar(&compression, "compression", "none", "none, gzip, snappy, lz4 or zstd")
	f.IntVar(&cfg.Producers, "producers", 1, "concurrent producer clients")
	f.Int32Var(&cfg.Partitions, "partitions", 3, "partitions of the topic when it is created")
	f.DurationVar(&cfg.Linger, "linger", 0, "how long a producer waits to fill a batch")
	f.Int32Var(&cfg.BatchBytes, "batch-bytes", 1<<20, "largest batch a producer sends to one partition")
	f.Int64Var(&cfg.Throughput, "throughput", 0, "most records a second; 0 for no limit")
	f.BoolVar(&cfg.Idempotent, "idempotent", true, "idempotent producer (with --acks all)")
	return cmd
}

func (b *benchCmd) consumeCommand() *cobra.Command {
	cfg := bench.ConsumeConfig{}
	var fill int64
	var fillSize int
	cmd := &cobra.Command{
		Use:   "consume",
		Short: "Read a topic from its start as fast as possible, like kafka-consumer-perf-test",
		Long: `Read --records records from the start of --topic (all it holds with 0) and
report records/s, MB/s and the wait for the first record. Without --group
the partitions are read directly; with --group through a consumer group.

With --self the benchmark's new broker is empty, so the topic is first
filled with --records records of --fill-record-size bytes; filling is not
measured.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return b.run(cmd, func(ctx context.Context, t *target) (*bench.Result, error) {
				if b.self {
					if fill = cfg.Records; fill <= 0 {
						fill = 1_000_000
					}
					if !b.quiet {
						fmt.Fprintf(cmd.ErrOrStderr(), "bench: filling %s with %d records of %d bytes (not measured)\n", cfg.Topic, fill, fillSize)
					}
					_, err := bench.Produce(ctx, bench.ProduceConfig{Brokers: t.brokers, ClientOpts: t.opts, Topic: cfg.Topic, Records: fill,
						RecordSize: fillSize, Acks: "1", Compression: "none", Producers: 1, Partitions: 3, BatchBytes: 1 << 20})
					if err != nil {
						return nil, fmt.Errorf("filling the topic: %w", err)
					}
				}
				cfg.Brokers, cfg.ClientOpts, cfg.Progress = t.brokers, t.opts, b.progress(cmd)
				return bench.Consume(ctx, cfg)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Topic, "topic", "creek-bench", "topic to read")
	f.Int64Var(&cfg.Records, "records", 0, "records to read; 0 for all the topic holds")
	f.StringVar(&cfg.Group, "group", "", "read through this consumer group")
	f.Int32Var(&cfg.FetchMaxBytes, "fetch-max-bytes", 50<<20, "most bytes in one fetch answer")
	f.Int32Var(&cfg.PartitionMaxBytes, "partition-max-bytes", 10<<20, "most bytes from one partition in a fetch answer")
	f.BoolVar(&cfg.EndToEnd, "end-to-end", false, "report latency from each record's timestamp to its arrival (run beside bench produce)")
	f.IntVar(&fillSize, "fill-record-size", 1024, "with --self: bytes in each record written before measuring")
	return cmd
}

func (b *benchCmd) pipelineCommand() *cobra.Command {
	cfg := bench.PipelineConfig{}
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "Run generate → Kafka → file end to end and measure events/s",
		Long: `Run two of creek's own pipelines at once: the tweet generator producing to
--topic, and a Kafka consumer of that topic writing every event to a file.
Reports events/s and MB/s from the first event generated until the file sink
has written the last one. The file goes to --out-dir (a temporary folder,
removed afterwards, when not given).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfg.OutDir == "" {
				dir, err := os.MkdirTemp("", "creek-bench-out-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				cfg.OutDir = dir
			}
			return b.run(cmd, func(ctx context.Context, t *target) (*bench.Result, error) {
				cfg.Brokers = t.brokers
				return bench.Pipeline(ctx, cfg)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Topic, "topic", "creek-bench-pipeline", "topic between the two pipelines")
	f.Int64Var(&cfg.Events, "events", 1_000_000, "events to generate")
	f.Int32Var(&cfg.Partitions, "partitions", 3, "partitions of the topic when it is created")
	f.StringVar(&cfg.OutDir, "out-dir", "", "folder of the file sink's output")
	f.StringVar(&cfg.FileFormat, "file-format", "raw", "json or raw")
	return cmd
}

func (b *benchCmd) s3Command() *cobra.Command {
	var (
		topic               string
		records             int64
		size                int
		partitions          int32
		fill                bool
		sinkArgs            []string
		bucket, endpoint    string
		prefix              string
		format, compression string
		memory, flushBytes  string
		flushRecords        int64
	)
	cmd := &cobra.Command{
		Use:   "s3",
		Short: "Archive a topic to S3 with creek consume --to s3 and measure records/s, MB/s and its peak memory",
		Long: `Fill --topic with --records records of --record-size bytes over --partitions
partitions (not measured; skip with --fill=false), then run
"creek consume --to s3 --count RECORDS" as a child process reading every
partition from the start, and report records/s and MB/s (10^6 bytes of record
values a second) from its start until it exits with everything stored, and
its peak memory (resident set). The bucket must exist; credentials and
endpoint as for creek consume --to s3.`,
		Example: `  creek s3 mb s3://bench --endpoint-url http://127.0.0.1:7070
  creek bench s3 --self --partitions 100 --records 1000000 --s3-bucket bench --s3-endpoint http://127.0.0.1:7070
  creek bench s3 --self --partitions 100 --s3-format parquet --s3-bucket bench --s3-endpoint http://127.0.0.1:7070`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if bucket == "" {
				return usageError{errors.New("--s3-bucket: the bucket to archive to (create it with creek s3 mb)")}
			}
			return b.run(cmd, func(ctx context.Context, t *target) (*bench.Result, error) {
				if fill {
					if !b.quiet {
						fmt.Fprintf(cmd.ErrOrStderr(), "bench: filling %s (%d partitions) with %d records of %d bytes (not measured)\n", topic, partitions, records, size)
					}
					_, err := bench.Produce(ctx, bench.ProduceConfig{Brokers: t.brokers, Topic: topic, Records: records,
						RecordSize: size, Acks: "1", Compression: "none", Producers: 1, Partitions: partitions, BatchBytes: 1 << 20})
					if err != nil {
						return nil, fmt.Errorf("filling the topic: %w", err)
					}
				}
				exe, err := os.Executable()
				if err != nil {
					return nil, err
				}
				// A run of its own writes where nothing is stored yet: objects
				// of an earlier run at the same names would be taken for
				// its own and rewritten to end where they end.
				runPrefix := prefix
				if runPrefix == "" {
					runPrefix = fmt.Sprintf("creek-bench/%d/", time.Now().UnixNano())
					defer removeBenchObjects(cmd, bucket, endpoint, runPrefix, b.quiet)
				}
				child := exec.CommandContext(ctx, exe, append([]string{"consume", "--brokers", strings.Join(t.brokers, ","), "--topic", topic,
					"--from-beginning", "--count", strconv.FormatInt(records, 10), "--log-level", "warn", "--to", "s3", "--s3-bucket", bucket,
					"--s3-endpoint", endpoint, "--s3-prefix", runPrefix, "--s3-format", format, "--s3-compression", compression, "--s3-memory", memory,
					"--s3-flush-bytes", flushBytes, "--s3-flush-records", strconv.FormatInt(flushRecords, 10)}, sinkArgs...)...)
				child.Stdout, child.Stderr = cmd.ErrOrStderr(), cmd.ErrOrStderr()
				if !b.quiet {
					fmt.Fprintf(cmd.ErrOrStderr(), "bench: archiving %d records to s3://%s as %s/%s\n", records, bucket, format, compression)
				}
				start := time.Now()
				err = child.Run()
				res := &bench.Result{Records: records, Bytes: records * int64(size)}
				res.Finish(time.Since(start))
				if child.ProcessState != nil {
					if ru, ok := child.ProcessState.SysUsage().(*syscall.Rusage); ok {
						res.PeakMemory = ru.Maxrss << 10 // kilobytes on Linux
					}
					res.ConsumerCPU = child.ProcessState.UserTime() + child.ProcessState.SystemTime()
					if res.Bytes > 0 {
						res.ConsumerCPUPerGB = res.ConsumerCPU.Seconds() / (float64(res.Bytes) / 1e9)
					}
				}
				if err != nil {
					return res, fmt.Errorf("creek consume --to s3: %w", err)
				}
				return res, nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&topic, "topic", "creek-bench-s3", "topic to archive")
	f.Int64Var(&records, "records", 1_000_000, "records to archive")
	f.IntVar(&size, "record-size", 1024, "bytes in each record's value")
	f.Int32Var(&partitions, "partitions", 100, "partitions of the topic when it is created")
	f.BoolVar(&fill, "fill", true, "fill the topic first (turn off to archive a topic that already holds --records records)")
	f.StringVar(&bucket, "s3-bucket", "", "bucket to archive to (required)")
	f.StringVar(&endpoint, "s3-endpoint", "", "URL of an S3-compatible store; empty for AWS")
	f.StringVar(&prefix, "s3-prefix", "", "folder to archive into and keep; default: a new creek-bench/NANOS/ for each run, removed after it")
	f.StringVar(&format, "s3-format", "json", "json or parquet")
	f.StringVar(&compression, "s3-compression", "gzip", "gzip, zstd or none")
	f.StringVar(&memory, "s3-memory", "64MiB", "the consumer's memory budget for records (open objects and the fetches feeding them)")
	f.StringVar(&flushBytes, "s3-flush-bytes", "64MiB", "object size before compression")
	f.Int64Var(&flushRecords, "s3-flush-records", 10000, "records an object")
	f.StringArrayVar(&sinkArgs, "consume-arg", nil, "more arguments for creek consume, such as --consume-arg=--s3-prefix=bench/ (repeatable)")
	return cmd
}

// removeBenchObjects deletes what a run of creek bench s3 stored under
// prefix, so repeated runs do not fill the store.
func removeBenchObjects(cmd *cobra.Command, bucket, endpoint, prefix string, quiet bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cl, err := s3client.New(ctx, s3client.Options{Endpoint: endpoint})
	if err == nil {
		var n int
		n, err = cl.DeletePrefix(ctx, bucket, prefix)
		if err == nil && !quiet {
			fmt.Fprintf(cmd.ErrOrStderr(), "bench: removed the run's %d objects under s3://%s/%s\n", n, bucket, prefix)
		}
	}
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "bench: could not remove s3://%s/%s: %v\n", bucket, prefix, err)
	}
}

func (b *benchCmd) compactionCommand() *cobra.Command {
	cfg := bench.CompactionConfig{}
	cmd := &cobra.Command{
		Use:   "compaction",
		Short: "Time the log cleaner over a filled topic, and producing and consuming beside it",
		Long: `Fill --topic with --records records of --record-size bytes over --keys keys
(not measured), then run a producer (acks=all, --produce-rate records/s) to
TOPIC-produce and a consumer reading TOPIC-consume (filled as well) as fast
as it can for --baseline, alone; then switch
--topic to cleanup.policy=compact and run the same load until the log cleaner
has cleaned every partition. Reports the cleaner's rate (MB of log cleaned
per second of its own time, records/s, sizes before and after) and the
producer's and the consumer's rates alone and while the cleaner runs.

It needs a creek broker: the cleaner's progress is read from creek's
DescribeLogDirs tag. With --self the broker's cleaner looks for work every
100 ms instead of Kafka's 15 s, so the timing starts at once.`,
		Example: `  creek bench compaction --self --records 1000000 --keys 100000
  creek bench compaction --brokers localhost:9092 --topic table-bench --partitions 4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b.selfArgs = []string{"--override", "log.cleaner.backoff.ms=100"}
			t, err := b.connect(cmd)
			if err != nil {
				return err
			}
			defer t.stop()
			ctx, cancel := signalContext()
			defer cancel()
			cfg.Brokers = t.brokers
			if !b.quiet {
				cfg.Progress = func(s string) { fmt.Fprintln(cmd.ErrOrStderr(), "bench:", s) }
			}
			cpu := bench.StartCPU(t.pid)
			res, err := bench.Compaction(ctx, cfg)
			if err != nil {
				return err
			}
			var brokerCPU bench.Result
			cpu.Stop(&brokerCPU)
			if b.output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintln(cmd.OutOrStdout(), res)
			if brokerCPU.BrokerCPU > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "broker CPU over the whole run: %.2f s\n", brokerCPU.BrokerCPU.Seconds())
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Topic, "topic", "creek-bench-table", "topic to fill and compact (TOPIC-produce and TOPIC-consume carry the load)")
	f.Int64Var(&cfg.Records, "records", 1_000_000, "records to fill the topic with")
	f.IntVar(&cfg.RecordSize, "record-size", 1024, "bytes in each record's value")
	f.Int64Var(&cfg.Keys, "keys", 100_000, "distinct keys of the records")
	f.Int32Var(&cfg.Partitions, "partitions", 1, "partitions of the topics")
	f.Int64Var(&cfg.SegmentMB, "segment-mb", 32, "segment.bytes of the compacted topic, in MiB (the active segment is never cleaned)")
	f.DurationVar(&cfg.Baseline, "baseline", 10*time.Second, "how long the load runs before the cleaning, alone")
	f.Int64Var(&cfg.ProduceRate, "produce-rate", 20000, "records/s of the producer beside the cleaner (its latency shows what the cleaner costs); 0 for as fast as it goes")
	return cmd
}
