package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/broker"
)

func topicsBroker(t *testing.T) (*broker.Broker, *kadm.Client) {
	t.Helper()
	b, err := broker.Start(context.Background(), broker.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Settings: map[string]string{"log.segment.bytes": "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return b, kadm.NewClient(cl)
}

// mustCreek runs the CLI and fails the test on an error.
func mustCreek(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := runCreek(t, args...)
	if err != nil {
		t.Fatalf("creek %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func describeJSON(t *testing.T, brokers string, topics ...string) []topicDescription {
	t.Helper()
	out := mustCreek(t, append([]string{"topics", "describe", brokers, "--output=json"}, topics...)...)
	var ds []topicDescription
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		t.Fatalf("describe --output json: %v\n%s", err, out)
	}
	return ds
}

func findConfig(d topicDescription, name string) (topicConfig, bool) {
	for _, c := range d.Configs {
		if c.Name == name {
			return c, true
		}
	}
	return topicConfig{}, false
}

// tableRow finds the line of a table whose first field is first and returns
// its fields.
func tableRow(t *testing.T, out, first string) []string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == first {
			return f
		}
	}
	t.Fatalf("no row %q in:\n%s", first, out)
	return nil
}

func TestTopicsCLI(t *testing.T) {
	b, adm := topicsBroker(t)
	ctx := context.Background()
	brokers := "--brokers=" + b.Addr()

	if out := mustCreek(t, "topics", "list", brokers); !strings.Contains(out, "no topics") {
		t.Fatalf("list of an empty broker:\n%s", out)
	}

	// Create with configs; describe shows them with their source.
	out := mustCreek(t, "topics", "create", "events", brokers, "--partitions=2", "--config", "retention.ms=60000", "--config=cleanup.policy=delete")
	if want := "created topic events: 2 partitions, replication factor 1, configs cleanup.policy=delete retention.ms=60000\n"; out != want {
		t.Fatalf("create printed %q, want %q", out, want)
	}
	out = mustCreek(t, "topics", "describe", "events", brokers)
	for _, want := range []string{"Topic: events", "Partitions: 2   Replication factor: 1   Records: 0", "Configs (not defaults"} {
		if !strings.Contains(out, want) {
			t.Fatalf("describe lacks %q:\n%s", want, out)
		}
	}
	if f := tableRow(t, out, "retention.ms"); strings.Join(f[1:], " ") != "60000 DYNAMIC_TOPIC_CONFIG" {
		t.Fatalf("retention.ms row %v:\n%s", f, out)
	}
	if f := tableRow(t, out, "segment.bytes"); strings.Join(f[1:], " ") != "1000 STATIC_BROKER_CONFIG (log.segment.bytes)" {
		t.Fatalf("segment.bytes row %v:\n%s", f, out)
	}
	if strings.Contains(out, "segment.ms") || strings.Contains(out, "DEFAULT_CONFIG") {
		t.Fatalf("describe shows defaults without --all-configs:\n%s", out)
	}
	out = mustCreek(t, "topics", "describe", "events", brokers, "--all-configs")
	if f := tableRow(t, out, "segment.ms"); f[2] != "DEFAULT_CONFIG" {
		t.Fatalf("--all-configs segment.ms row %v:\n%s", f, out)
	}
	ds := describeJSON(t, brokers, "events")
	if len(ds) != 1 || ds[0].Topic != "events" || ds[0].PartitionCount != 2 || len(ds[0].Partitions) != 2 || ds[0].ReplicationFactor != 1 {
		t.Fatalf("describe json: %+v", ds)
	}
	td, err := adm.ListTopics(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}
	if id := td["events"].ID; ds[0].ID != topicID(id) || ds[0].ID == "-" {
		t.Fatalf("id %q, want %q", ds[0].ID, topicID(id))
	}
	if c, _ := findConfig(ds[0], "retention.ms"); c.Value != "60000" || c.Source != "DYNAMIC_TOPIC_CONFIG" {
		t.Fatalf("json retention.ms: %+v", c)
	}

	// A second topic with the broker's default partition count; list.
	mustCreek(t, "topics", "create", "audit", brokers)
	out = mustCreek(t, "topics", "list", brokers)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[1]), " ") != "audit 1 1" || strings.Join(strings.Fields(lines[2]), " ") != "events 2 1" {
		t.Fatalf("list:\n%s", out)
	}
	var rows []topicListRow
	if err := json.Unmarshal([]byte(mustCreek(t, "topics", "list", brokers, "-o", "json")), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[1] != (topicListRow{Topic: "events", Partitions: 2, ReplicationFactor: 1}) {
		t.Fatalf("list json: %+v", rows)
	}

	// Records: 10 in partition 0, 4 in partition 1.
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("events"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := 0; i < 14; i++ {
		p := int32(0)
		if i >= 10 {
			p = 1
		}
		// One batch per record, so that the log spans several 1000-byte segments.
		if err := prod.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte(strings.Repeat("x", 200))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ds = describeJSON(t, brokers, "events")
	p0, p1 := ds[0].Partitions[0], ds[0].Partitions[1]
	if p0.Earliest != 0 || p0.Latest != 10 || p0.Records != 10 || p1.Earliest != 0 || p1.Latest != 4 || p1.Records != 4 || ds[0].Records != 14 {
		t.Fatalf("offsets after producing: %+v", ds[0].Partitions)
	}
	if p0.Leader != 1 || len(p0.Replicas) != 1 || len(p0.ISR) != 1 {
		t.Fatalf("leader and replicas: %+v", p0)
	}
	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ds[0].Partitions {
		var want int64 = -1
		dirs.Each(func(d kadm.DescribedLogDir) {
			if dp, ok := d.Topics["events"][p.Partition]; ok {
				want = dp.Size
			}
		})
		if p.SizeBytes < 200*p.Records || p.SizeBytes != want {
			t.Fatalf("partition %d size %d, DescribeLogDirs says %d", p.Partition, p.SizeBytes, want)
		}
	}
	if ds[0].SizeBytes != p0.SizeBytes+p1.SizeBytes {
		t.Fatalf("topic size %d, partitions %d + %d", ds[0].SizeBytes, p0.SizeBytes, p1.SizeBytes)
	}

	// DeleteRecords moves the earliest offset of partition 0.
	var before kadm.Offsets
	before.AddOffset("events", 0, 6, -1)
	dr, err := adm.DeleteRecords(ctx, before)
	if err == nil {
		err = dr.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	out = mustCreek(t, "topics", "describe", "events", brokers)
	if f := tableRow(t, out, "0"); strings.Join(f[:7], " ") != "0 1 1 1 6 10 4" {
		t.Fatalf("partition 0 after DeleteRecords: %v\n%s", f, out)
	}
	if !strings.Contains(out, "Records: 8") {
		t.Fatalf("topic records after DeleteRecords:\n%s", out)
	}
	if ds := describeJSON(t, brokers, "events"); ds[0].Partitions[0].SizeBytes >= p0.SizeBytes {
		t.Fatalf("size of partition 0 did not shrink: %d, before %d", ds[0].Partitions[0].SizeBytes, p0.SizeBytes)
	}

	// Alter partitions.
	if out := mustCreek(t, "topics", "alter", "events", brokers, "--partitions=4"); out != "topic events: partitions 2 -> 4\n" {
		t.Fatalf("alter --partitions printed %q", out)
	}
	ds = describeJSON(t, brokers, "events")
	if ds[0].PartitionCount != 4 || len(ds[0].Partitions) != 4 || ds[0].Partitions[3].Latest != 0 || ds[0].Partitions[3].Leader != 1 {
		t.Fatalf("after alter --partitions 4: %+v", ds[0])
	}
	if !strings.Contains(mustCreek(t, "topics", "describe", "events", brokers), "Partitions: 4") {
		t.Fatal("table describe does not show 4 partitions")
	}
	if out := mustCreek(t, "topics", "list", brokers); strings.Join(tableRow(t, out, "events"), " ") != "events 4 1" {
		t.Fatalf("list after alter:\n%s", out)
	}

	// Alter configs: set one, remove another (the default applies again),
	// leave the rest.
	out = mustCreek(t, "topics", "alter", "events", brokers, "--config", "retention.bytes=123456", "--delete-config", "retention.ms")
	if out != "topic events: set retention.bytes=123456\ntopic events: removed retention.ms (the default applies)\n" {
		t.Fatalf("alter configs printed %q", out)
	}
	ds = describeJSON(t, brokers, "events")
	if c, _ := findConfig(ds[0], "retention.bytes"); c.Value != "123456" || c.Source != "DYNAMIC_TOPIC_CONFIG" {
		t.Fatalf("retention.bytes after alter: %+v", c)
	}
	if c, ok := findConfig(ds[0], "retention.ms"); ok {
		t.Fatalf("retention.ms still overridden: %+v", c)
	}
	if c, _ := findConfig(ds[0], "cleanup.policy"); c.Value != "delete" || c.Source != "DYNAMIC_TOPIC_CONFIG" {
		t.Fatalf("cleanup.policy lost by an incremental alter: %+v", c)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rc[0].Configs {
		if c.Key == "retention.ms" && (c.Source != kmsg.ConfigSourceDefaultConfig || c.MaybeValue() != "604800000") {
			t.Fatalf("retention.ms on the broker: %s from %s", c.MaybeValue(), c.Source)
		}
	}

	// A refused config changes nothing, not even the valid partition count.
	_, _, err = runCreek(t, "topics", "alter", "events", brokers, "--partitions=6", "--config=retention.bytes=lots")
	if err == nil || !strings.Contains(err.Error(), `topic "events": invalid config: retention.bytes must be a whole number`) || !strings.Contains(err.Error(), "INVALID_CONFIG") {
		t.Fatalf("alter with a bad config: %v", err)
	}
	if ds := describeJSON(t, brokers, "events"); ds[0].PartitionCount != 4 {
		t.Fatalf("a refused alter changed the partition count to %d", ds[0].PartitionCount)
	}

	// describe without names: every topic, sorted.
	if ds := describeJSON(t, brokers); len(ds) != 2 || ds[0].Topic != "audit" || ds[1].Topic != "events" {
		t.Fatalf("describe of all topics: %+v", ds)
	}

	// Delete, then list.
	if out := mustCreek(t, "topics", "delete", "events", brokers); out != "deleted topic events\n" {
		t.Fatalf("delete printed %q", out)
	}
	out = mustCreek(t, "topics", "list", brokers)
	if strings.Contains(out, "events") || !strings.Contains(out, "audit") {
		t.Fatalf("list after delete:\n%s", out)
	}
}

func TestTopicsCLIErrors(t *testing.T) {
	b, _ := topicsBroker(t)
	brokers := "--brokers=" + b.Addr()
	mustCreek(t, "topics", "create", "logs", brokers)

	kafkaErrors := []struct {
		args []string
		want string
	}{
		{[]string{"create", "logs"}, `topic "logs" already exists (--if-not-exists accepts that)`},
		{[]string{"create", "fresh", "logs"}, `topic "logs" already exists`}, // fresh is still created
		{[]string{"create", "bad", "--config=retention.ms=soon"}, `topic "bad": invalid config: retention.ms must be a whole number, got "soon" (INVALID_CONFIG)`},
		{[]string{"create", "bad", "--config=colour=blue"}, `unknown topic config "colour"`},
		{[]string{"create", "bad", "--replication-factor=3"}, `(INVALID_REPLICATION_FACTOR)`},
		{[]string{"create", "bad name"}, `(INVALID_TOPIC_EXCEPTION)`},
		{[]string{"delete", "nope"}, `topic "nope" does not exist (see creek topics list)`},
		{[]string{"delete", "logs", "nope"}, `topic "nope" does not exist`},
		{[]string{"describe", "nope", "nada"}, `topic "nope" does not exist (see creek topics list)` + "\n" + `topic "nada" does not exist`},
		{[]string{"alter", "nope", "--partitions=3"}, `topic "nope" does not exist`},
		{[]string{"alter", "fresh", "--partitions=1"}, `topic "fresh": invalid number of partitions`},
		{[]string{"alter", "fresh", "--config=retention.bytes=-7"}, `retention.bytes must be at least -1`},
	}
	for _, tc := range kafkaErrors {
		_, _, err := runCreek(t, append([]string{"topics", brokers}, tc.args...)...)
		var ue usageError
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, &ue) {
			t.Errorf("creek topics %s: error %v, want one containing %q (exit status 1)", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	// The partial create and delete above did what they could.
	out := mustCreek(t, "topics", "list", brokers)
	if strings.Join(tableRow(t, out, "fresh"), " ") != "fresh 1 1" || strings.Contains(out, "logs") {
		t.Fatalf("after create fresh logs and delete logs nope:\n%s", out)
	}

	// --if-not-exists and --if-exists.
	if out := mustCreek(t, "topics", "create", "fresh", brokers, "--if-not-exists"); !strings.Contains(out, "already exists; left as it is") {
		t.Fatalf("--if-not-exists printed %q", out)
	}
	if out := mustCreek(t, "topics", "delete", "nope", brokers, "--if-exists"); !strings.Contains(out, "nothing to delete") {
		t.Fatalf("--if-exists printed %q", out)
	}

	// Bad usage: exit status 2, with what to do, before any connection.
	usage := []struct {
		args []string
		want string
	}{
		{[]string{"create"}, "give the topic name, e.g. creek topics create"},
		{[]string{"create", ""}, "a topic name is empty"},
		{[]string{"create", "x", "--partitions=0"}, "--partitions 0: want 1 or more"},
		{[]string{"create", "x", "--partitions=many"}, `invalid argument "many" for "--partitions"`},
		{[]string{"create", "x", "--replication-factor=0"}, "--replication-factor 0"},
		{[]string{"create", "x", "--config=retention.ms"}, `--config "retention.ms": want key=value`},
		{[]string{"create", "x", "--bogus"}, "unknown flag: --bogus (see creek topics create --help)"},
		{[]string{"delete"}, "give the topic name"},
		{[]string{"alter", "x"}, "nothing to change: give --partitions N, --config key=value or --delete-config key"},
		{[]string{"alter"}, "give the topic name"},
		{[]string{"alter", "x", "y", "--partitions=2"}, "alter takes one topic, got 2 (x, y)"},
		{[]string{"alter", "x", "--partitions=0"}, "--partitions 0"},
		{[]string{"alter", "x", "--delete-config=retention.ms=5"}, `--delete-config "retention.ms=5": want a config name`},
		{[]string{"alter", "x", "--config=retention.ms=5", "--delete-config=retention.ms"}, "retention.ms is both set"},
		{[]string{"describe", "--output=yaml"}, `--output "yaml": want table or json`},
		{[]string{"list", "extra"}, "list takes no arguments"},
	}
	closed := closedPort(t)
	for _, tc := range usage {
		_, _, err := runCreek(t, append([]string{"topics", "--brokers=" + closed}, tc.args...)...)
		var ue usageError
		if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("creek topics %s: error %v, want a usage error containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}

	// An unreachable broker: a readable message, at once.
	start := time.Now()
	_, _, err := runCreek(t, "topics", "list", "--brokers", closed)
	want := "cannot reach Kafka at " + closed + ": "
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "— is `creek broker` running? use --brokers HOST:PORT") {
		t.Fatalf("unreachable broker: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("unreachable broker took %v", d)
	}
}

// closedPort is an address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestTopicsBrokersFromEnv(t *testing.T) {
	b, _ := topicsBroker(t)
	mustCreek(t, "topics", "create", "from-env", "--brokers", b.Addr())

	t.Setenv("CREEK_BROKERS", b.Addr())
	if out := mustCreek(t, "topics", "list"); !strings.Contains(out, "from-env") {
		t.Fatalf("list with CREEK_BROKERS:\n%s", out)
	}
	// The flag wins over the environment.
	closed := closedPort(t)
	t.Setenv("CREEK_BROKERS", closed)
	if out := mustCreek(t, "topics", "list", "--brokers", b.Addr()); !strings.Contains(out, "from-env") {
		t.Fatalf("list with --brokers over CREEK_BROKERS:\n%s", out)
	}
	if _, _, err := runCreek(t, "topics", "list"); err == nil || !strings.Contains(err.Error(), "cannot reach Kafka at "+closed) {
		t.Fatalf("CREEK_BROKERS ignored: %v", err)
	}
}

func TestTopicsHelp(t *testing.T) {
	for _, sub := range []string{"list", "create", "describe", "alter", "delete"} {
		out := mustCreek(t, "topics", sub, "--help")
		if !strings.Contains(out, "Examples:\n  creek topics "+sub) || !strings.Contains(out, "--brokers") {
			t.Errorf("creek topics %s --help:\n%s", sub, out)
		}
	}
}

// TestTopicsDeleteRecords: the CLI's DeleteRecords, for one partition, for
// all, clamped at a partition's end, and --all; and its usage errors.
func TestTopicsDeleteRecords(t *testing.T) {
	b, adm := topicsBroker(t)
	brokers := "--brokers=" + b.Addr()
	ctx := context.Background()
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "old"); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("old"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 30 {
		p := int32(0)
		if i >= 20 {
			p = 1 // partition 0 gets 20 records, partition 1 gets 10
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strings.Repeat("x", 300)), Partition: p}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	starts := func() [2]int64 {
		t.Helper()
		s, err := adm.ListStartOffsets(ctx, "old")
		if err != nil {
			t.Fatal(err)
		}
		var out [2]int64
		s.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
		return out
	}
	out := mustCreek(t, "topics", "delete-records", "old", brokers, "--partition=0", "--before=5")
	if out != "topic old partition 0: records before 5 deleted; it holds 5 to 20\n" || starts() != [2]int64{5, 0} {
		t.Fatalf("--partition 0 --before 5: %q, starts %v", out, starts())
	}
	out = mustCreek(t, "topics", "delete-records", "old", brokers, "--before=15")
	if !strings.Contains(out, "partition 1: records before 10 deleted") || starts() != [2]int64{15, 10} {
		t.Fatalf("--before 15 on every partition: %q, starts %v", out, starts())
	}
	mustCreek(t, "topics", "delete-records", "old", brokers, "--all")
	if starts() != [2]int64{20, 10} {
		t.Fatalf("--all: starts %v", starts())
	}
	for _, bad := range [][]string{{"--all", "--before=3"}, {}, {"--before=-2"}, {"--partition=7", "--before=1"}} {
		if _, _, err := runCreek(t, append([]string{"topics", "delete-records", "old", brokers}, bad...)...); err == nil {
			t.Errorf("delete-records %v: no error", bad)
		}
	}
}

// TestTopicsDescribeCompacted: describe shows a compacted topic's dirty
// ratio and last cleaning, in the table and in JSON.
func TestTopicsDescribeCompacted(t *testing.T) {
	b, err := broker.Start(context.Background(), broker.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Settings: map[string]string{"log.cleaner.backoff.ms": "20"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	brokers := "--brokers=" + b.Addr()
	mustCreek(t, "topics", "create", "table", brokers, "--config=cleanup.policy=compact", "--config=segment.bytes=1000", "--config=min.cleanable.dirty.ratio=0.01")
	mustCreek(t, "topics", "create", "plain", brokers)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("table"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 200 {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Key: []byte{byte('a' + i%3)}, Value: []byte(strings.Repeat("v", 50))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	var d topicDescription
	for {
		d = describeJSON(t, brokers, "table")[0]
		if c := d.Partitions[0].Cleaner; c != nil && c.LastCleaning != nil && c.DirtyBytes == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cleaning reported within 30s: %+v", d.Partitions[0].Cleaner)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !d.Compacted || d.Partitions[0].Cleaner.FirstDirtyOffset == 0 {
		t.Fatalf("describe --output json of a cleaned compacted topic: %+v", d)
	}
	out := mustCreek(t, "topics", "describe", "table", brokers)
	_, compaction, _ := strings.Cut(out, "Compaction:")
	if row := tableRow(t, compaction, "0"); row[1] != "0%" || !strings.Contains(out, " ago: offsets ") || !strings.Contains(out, "records kept") {
		t.Fatalf("describe of a cleaned compacted topic:\n%s", out)
	}
	if plain := mustCreek(t, "topics", "describe", "plain", brokers); strings.Contains(plain, "Compaction") {
		t.Fatalf("describe of a topic that is not compacted shows compaction:\n%s", plain)
	}
	if d := describeJSON(t, brokers, "plain")[0]; d.Compacted || d.Partitions[0].Cleaner != nil {
		t.Fatalf("a topic that is not compacted: %+v", d)
	}
}
