package kafka_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/broker"
	"github.com/creek-pipeline/creek/internal/pipeline"
	_ "github.com/creek-pipeline/creek/internal/sink/kafka"
	_ "github.com/creek-pipeline/creek/internal/source/generate"
	_ "github.com/creek-pipeline/creek/internal/source/kafka"
)

// collectSink records what it is given and fails from batch failAt on.
type collectSink struct {
	mu      sync.Mutex
	batches int
	failAt  int // 0: never
	values  []string
}

func (c *collectSink) Write(_ context.Context, b *pipeline.Batch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches++
	if c.failAt > 0 && c.batches >= c.failAt {
		return errors.New("the sink's disk is full")
	}
	for _, m := range b.Messages {
		c.values = append(c.values, string(m.Value))
	}
	return nil
}

func (c *collectSink) Close() error { return nil }

var sinks sync.Map // name -> *collectSink, for the registered test sink

func init() {
	pipeline.RegisterSink(pipeline.Plugin{Name: "group-test-collect", Doc: "test sink",
		Options: []pipeline.Option{{Name: "name", Type: pipeline.TypeString}},
		NewSink: func(v *pipeline.Values, env pipeline.Env) (pipeline.Sink, error) {
			s, _ := sinks.Load(v.String("name"))
			return s.(*collectSink), nil
		}})
}

func startBroker(t *testing.T) string {
	t.Helper()
	b, err := broker.Start(context.Background(), broker.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Settings: map[string]string{"group.initial.rebalance.delay.ms": "0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b.Addr()
}

func runPipeline(t *testing.T, name, source string, sourceOpts map[string][]string, sink string, sinkOpts map[string][]string) error {
	t.Helper()
	spec, err := pipeline.NewSpec(name, source, sourceOpts, sink, sinkOpts)
	if err != nil {
		t.Fatal(err)
	}
	p, err := spec.Build(pipeline.Env{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = p.Run(ctx)
	if ctx.Err() != nil {
		t.Fatalf("pipeline %s did not finish within 30 s", name)
	}
	return err
}

// The Kafka sink writes keys, values, headers and timestamps; the Kafka
// source in a group hands them to a sink and commits only what the sink
// accepted: after the sink fails, a new run of the group gets exactly the
// records that were not accepted, none twice.
func TestKafkaSourceCommitsOnlyWhatTheSinkAccepted(t *testing.T) {
	addr := startBroker(t)
	adm := kadm.NewClient(mustClient(t, addr))
	if _, err := adm.CreateTopic(context.Background(), 3, 1, nil, "events"); err != nil {
		t.Fatal(err)
	}

	// generate → kafka sink: 100 records.
	err := runPipeline(t, "produce", "generate", map[string][]string{"rate": {"0"}, "count": {"100"}, "seed": {"3"}},
		"kafka", map[string][]string{"brokers": {addr}, "topic": {"events"}, "compression": {"zstd"}})
	if err != nil {
		t.Fatal(err)
	}
	cl := mustClient(t, addr, kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var all []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(all) < 100 && ctx.Err() == nil {
		all = append(all, cl.PollFetches(ctx).Records()...)
	}
	if len(all) != 100 {
		t.Fatalf("a plain consumer read %d records, want 100", len(all))
	}
	for _, r := range all {
		if len(r.Key) == 0 || len(r.Headers) != 1 || r.Headers[0].Key != "rule" || r.Timestamp.IsZero() {
			t.Fatalf("record as written by the kafka sink: key %q headers %v timestamp %v", r.Key, r.Headers, r.Timestamp)
		}
	}

	// kafka source (group) → a sink that accepts two batches, then fails.
	first := &collectSink{failAt: 3}
	sinks.Store("first", first)
	src := map[string][]string{"brokers": {addr}, "topic": {"events"}, "group": {"archive"}, "from-beginning": {"true"}, "max-batch": {"10"}}
	err = runPipeline(t, "archive-1", "kafka", src, "group-test-collect", map[string][]string{"name": {"first"}})
	if err == nil {
		t.Fatal("the pipeline did not report the sink's failure")
	}
	accepted := len(first.values) // two batches of at most 10
	if accepted == 0 || accepted > 20 {
		t.Fatalf("the first run's sink accepted %d records", accepted)
	}
	if committed := committedTotal(t, adm, "archive"); committed != int64(accepted) {
		t.Fatalf("the group committed %d records' worth of offsets, want exactly the %d accepted", committed, accepted)
	}

	// The next run of the group gets the others, exactly.
	second := &collectSink{}
	sinks.Store("second", second)
	src["count"] = []string{strconv.Itoa(100 - accepted)}
	if err := runPipeline(t, "archive-2", "kafka", src, "group-test-collect", map[string][]string{"name": {"second"}}); err != nil {
		t.Fatal(err)
	}
	got := append(slices.Clone(first.values), second.values...)
	sort.Strings(got)
	var want []string
	for _, r := range all {
		want = append(want, string(r.Value))
	}
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("the two runs saw %d records (%d distinct); want each of the 100 once", len(got), len(slices.Compact(slices.Clone(got))))
	}
	if c := committedTotal(t, adm, "archive"); c != 100 {
		t.Fatalf("after the second run the group committed %d, want 100", c)
	}
}

// In a share group the source accepts a record only once the sink has it:
// after the sink fails, the records it did not take go back to the group
// and the next run gets exactly them.
func TestKafkaSourceShareGroupAcceptsOnlyWhatTheSinkTook(t *testing.T) {
	addr := startBroker(t)
	adm := kadm.NewClient(mustClient(t, addr))
	if _, err := adm.CreateTopic(context.Background(), 2, 1, nil, "jobs"); err != nil {
		t.Fatal(err)
	}
	err := runPipeline(t, "produce", "generate", map[string][]string{"rate": {"0"}, "count": {"100"}, "seed": {"5"}},
		"kafka", map[string][]string{"brokers": {addr}, "topic": {"jobs"}})
	if err != nil {
		t.Fatal(err)
	}

	first := &collectSink{failAt: 3}
	sinks.Store("share-first", first)
	src := map[string][]string{"brokers": {addr}, "topic": {"jobs"}, "share-group": {"workers"}, "from-beginning": {"true"}, "max-batch": {"10"}}
	if err := runPipeline(t, "work-1", "kafka", src, "group-test-collect", map[string][]string{"name": {"share-first"}}); err == nil {
		t.Fatal("the pipeline did not report the sink's failure")
	}
	accepted := len(first.values)
	if accepted == 0 || accepted > 20 {
		t.Fatalf("the first run's sink took %d records", accepted)
	}

	second := &collectSink{}
	sinks.Store("share-second", second)
	src["count"] = []string{strconv.Itoa(100 - accepted)}
	if err := runPipeline(t, "work-2", "kafka", src, "group-test-collect", map[string][]string{"name": {"share-second"}}); err != nil {
		t.Fatal(err)
	}
	got := append(slices.Clone(first.values), second.values...)
	sort.Strings(got)
	if len(got) != 100 || len(slices.Compact(slices.Clone(got))) != 100 {
		t.Fatalf("the two runs took %d records (%d distinct); want each of the 100 once", len(got), len(slices.Compact(slices.Clone(got))))
	}
}

// Same keys go to the same partition with the default key partitioner.
func TestKafkaSinkPartitionsByKey(t *testing.T) {
	addr := startBroker(t)
	adm := kadm.NewClient(mustClient(t, addr))
	if _, err := adm.CreateTopic(context.Background(), 4, 1, nil, "keyed"); err != nil {
		t.Fatal(err)
	}
	err := runPipeline(t, "keyed", "generate", map[string][]string{"rate": {"0"}, "count": {"200"}, "seed": {"9"}},
		"kafka", map[string][]string{"brokers": {addr}, "topic": {"keyed"}})
	if err != nil {
		t.Fatal(err)
	}
	// The generator's keys are tweet ids, all distinct: check the
	// partitioner against franz-go's own murmur2 choice instead.
	cl := mustClient(t, addr, kgo.ConsumeTopics("keyed"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := 0
	part := kgo.StickyKeyPartitioner(nil).ForTopic("keyed")
	for n < 200 && ctx.Err() == nil {
		for _, r := range cl.PollFetches(ctx).Records() {
			if want := int32(part.Partition(&kgo.Record{Key: r.Key}, 4)); want != r.Partition {
				t.Fatalf("key %s in partition %d, murmur2 says %d", r.Key, r.Partition, want)
			}
			n++
		}
	}
	if n != 200 {
		t.Fatalf("read %d of 200", n)
	}
}

func mustClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func committedTotal(t *testing.T, adm *kadm.Client, group string) int64 {
	t.Helper()
	offsets, err := adm.FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	offsets.Each(func(o kadm.OffsetResponse) { total += o.At })
	return total
}
