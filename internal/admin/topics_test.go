package admin_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/broker"
	"github.com/creek-pipeline/creek/internal/admin"
)

// startBroker starts creek's broker on a free port and returns its address,
// a client of it and its admin client.
func startBroker(t *testing.T) (string, *kgo.Client, *kadm.Client) {
	t.Helper()
	b, err := broker.Start(context.Background(), broker.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	cl, adm := connect(t, b.Addr())
	return b.Addr(), cl, adm
}

// connect returns a new client of the broker at addr (kgo caches the
// metadata it was given for a while) and its admin client.
func connect(t *testing.T, addr string) (*kgo.Client, *kadm.Client) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl, kadm.NewClient(cl)
}

// produce writes n records to a partition of topic.
func produce(t *testing.T, cl *kgo.Client, topic string, partition int32, n int) {
	t.Helper()
	for range n {
		r := &kgo.Record{Topic: topic, Partition: partition, Key: []byte("k"), Value: []byte(strings.Repeat("v", 100))}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func create(t *testing.T, adm *kadm.Client, topic string, partitions int32, configs map[string]string) {
	t.Helper()
	if _, err := admin.CreateTopics(context.Background(), adm, partitions, 1, configs, false, topic); err != nil {
		t.Fatal(err)
	}
}

func TestListTopics(t *testing.T) {
	addr, _, adm := startBroker(t)
	ctx := context.Background()
	rows, err := admin.ListTopics(ctx, adm)
	if err != nil || rows == nil || len(rows) != 0 {
		t.Fatalf("no topics: %v, %v (want an empty list, not nil, for JSON's [])", rows, err)
	}
	create(t, adm, "zebra", 1, nil)
	create(t, adm, "apple", 3, nil)
	_, adm = connect(t, addr)
	rows, err = admin.ListTopics(ctx, adm)
	want := []admin.TopicListing{{Topic: "apple", Partitions: 3, ReplicationFactor: 1}, {Topic: "zebra", Partitions: 1, ReplicationFactor: 1}}
	if err != nil || len(rows) != 2 || rows[0] != want[0] || rows[1] != want[1] {
		t.Fatalf("list: %+v, %v; want %+v", rows, err, want)
	}
}

func TestDescribeTopics(t *testing.T) {
	_, cl, adm := startBroker(t)
	ctx := context.Background()
	create(t, adm, "events", 2, map[string]string{"retention.ms": "86400000"})
	produce(t, cl, "events", 1, 7)

	ds, sizesErr, err := admin.DescribeTopics(ctx, adm, cl, []string{"events"}, false)
	if err != nil || sizesErr != nil || len(ds) != 1 {
		t.Fatalf("describe: %+v, sizes: %v, %v", ds, sizesErr, err)
	}
	d := ds[0]
	if d.Topic != "events" || d.ID == "-" || d.PartitionCount != 2 || d.ReplicationFactor != 1 || d.Records != 7 || d.Compacted {
		t.Fatalf("topic: %+v", d)
	}
	if len(d.Configs) != 1 || d.Configs[0].Name != "retention.ms" || d.Configs[0].Value != "86400000" || d.Configs[0].Source != "DYNAMIC_TOPIC_CONFIG" {
		t.Fatalf("configs without --all-configs: %+v, want retention.ms only", d.Configs)
	}
	p0, p1 := d.Partitions[0], d.Partitions[1]
	if p0.Partition != 0 || p0.Earliest != 0 || p0.Latest != 0 || p0.Records != 0 || p0.SizeBytes != 0 || p0.Leader < 0 || len(p0.Replicas) != 1 {
		t.Fatalf("empty partition 0: %+v", p0)
	}
	if p1.Partition != 1 || p1.Earliest != 0 || p1.Latest != 7 || p1.Records != 7 || p1.SizeBytes <= 0 || p1.Cleaner != nil || p1.Error != "" {
		t.Fatalf("partition 1 with 7 records: %+v", p1)
	}
	if d.SizeBytes != p1.SizeBytes {
		t.Fatalf("topic size %d, want the sum of its partitions, %d", d.SizeBytes, p1.SizeBytes)
	}

	all, _, err := admin.DescribeTopics(ctx, adm, cl, []string{"events"}, true)
	if err != nil || len(all[0].Configs) <= len(d.Configs) {
		t.Fatalf("--all-configs: %d configs, %v; want more than %d", len(all[0].Configs), err, len(d.Configs))
	}
	for i := 1; i < len(all[0].Configs); i++ {
		if all[0].Configs[i-1].Name >= all[0].Configs[i].Name {
			t.Fatalf("configs not sorted by name: %s before %s", all[0].Configs[i-1].Name, all[0].Configs[i].Name)
		}
	}

	// Every topic when none is named; a missing one is an error saying so.
	create(t, adm, "other", 1, nil)
	if ds, _, err := admin.DescribeTopics(ctx, adm, cl, nil, false); err != nil || len(ds) != 2 || ds[0].Topic != "events" || ds[1].Topic != "other" {
		t.Fatalf("describe all: %+v, %v", ds, err)
	}
	_, _, err = admin.DescribeTopics(ctx, adm, cl, []string{"events", "missing"}, false)
	if !errors.Is(err, kerr.UnknownTopicOrPartition) || !strings.Contains(err.Error(), `topic "missing" does not exist`) {
		t.Fatalf("describe of a missing topic: %v", err)
	}
}

// TestDescribeCompactedTopic: a compacted topic's partitions carry the
// leader's cleaner state, asked for with creek's DescribeLogDirs tag.
func TestDescribeCompactedTopic(t *testing.T) {
	_, cl, adm := startBroker(t)
	ctx := context.Background()
	create(t, adm, "table", 2, map[string]string{"cleanup.policy": "compact"})
	produce(t, cl, "table", 0, 3)
	ds, _, err := admin.DescribeTopics(ctx, adm, cl, []string{"table"}, false)
	if err != nil {
		t.Fatal(err)
	}
	d := ds[0]
	if !d.Compacted {
		t.Fatalf("cleanup.policy=compact not seen as compacted: %+v", d)
	}
	for _, p := range d.Partitions {
		if p.Cleaner == nil {
			t.Fatalf("partition %d of a compacted topic without cleaner state: %+v", p.Partition, p)
		}
	}
}

func TestPlanTopicAlter(t *testing.T) {
	a, err := admin.PlanTopicAlter("t", 0, map[string]string{"segment.ms": "1", "retention.ms": "2"}, []string{" retention.bytes "})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range a.Configs {
		s := c.Name
		if c.Op == kadm.SetConfig {
			s += "=" + *c.Value
		} else {
			s = "-" + s
		}
		got = append(got, s)
	}
	if a.Topic != "t" || a.Partitions != 0 || strings.Join(got, " ") != "retention.ms=2 segment.ms=1 -retention.bytes" {
		t.Fatalf("plan: %+v %v; want sets in name order, then removals", a, got)
	}
	if a, err := admin.PlanTopicAlter("t", 6, nil, nil); err != nil || a.Partitions != 6 || len(a.Configs) != 0 {
		t.Fatalf("partitions only: %+v, %v", a, err)
	}
	for _, bad := range []struct {
		set    map[string]string
		remove []string
		want   string
	}{
		{nil, nil, "nothing to change"},
		{nil, []string{""}, "want a config name"},
		{nil, []string{"a=b"}, "want a config name"},
		{map[string]string{"a": "1"}, []string{"a"}, "both set"},
	} {
		if _, err := admin.PlanTopicAlter("t", 0, bad.set, bad.remove); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("plan %v %v: %v, want %q", bad.set, bad.remove, err, bad.want)
		}
	}
}

// TestAlterTopic: the changes are all validated before any is applied.
func TestAlterTopic(t *testing.T) {
	_, _, adm := startBroker(t)
	ctx := context.Background()
	create(t, adm, "t", 2, map[string]string{"retention.bytes": "100000"})
	partitions := func() int {
		t.Helper()
		td, err := adm.ListTopics(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		return len(td["t"].Partitions)
	}

	refused := admin.TopicAlter{Topic: "t", Partitions: 4, Configs: []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("abc")}}}
	if _, err := admin.AlterTopic(ctx, adm, refused); !errors.Is(err, kerr.InvalidConfig) || partitions() != 2 {
		t.Fatalf("a refused config: %v, %d partitions; want INVALID_CONFIG and still 2", err, partitions())
	}

	retentionMs := func() string {
		t.Helper()
		rc, err := adm.DescribeTopicConfigs(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range rc[0].Configs {
			if c.Key == "retention.ms" {
				return c.MaybeValue()
			}
		}
		return ""
	}
	before := retentionMs()
	shrink := admin.TopicAlter{Topic: "t", Partitions: 1, Configs: []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("3600000")}}}
	if _, err := admin.AlterTopic(ctx, adm, shrink); !errors.Is(err, kerr.InvalidPartitions) || retentionMs() != before {
		t.Fatalf("a refused partition count: %v, retention.ms %s; want INVALID_PARTITIONS and still %s", err, retentionMs(), before)
	}

	a, err := admin.PlanTopicAlter("t", 4, map[string]string{"retention.ms": "3600000"}, []string{"retention.bytes"})
	if err != nil {
		t.Fatal(err)
	}
	lines, err := admin.AlterTopic(ctx, adm, a)
	want := "topic t: partitions 2 -> 4\ntopic t: set retention.ms=3600000\ntopic t: removed retention.bytes (the default applies)"
	if err != nil || strings.Join(lines, "\n") != want || partitions() != 4 {
		t.Fatalf("alter: %q, %v, %d partitions; want %q", lines, err, partitions(), want)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rc[0].Configs {
		if c.Key == "retention.ms" && c.MaybeValue() != "3600000" || c.Key == "retention.bytes" && c.Source.String() == "DYNAMIC_TOPIC_CONFIG" {
			t.Fatalf("after alter: %s=%s (%s)", c.Key, c.MaybeValue(), c.Source)
		}
	}

	if _, err := admin.AlterTopic(ctx, adm, admin.TopicAlter{Topic: "t", Partitions: 3}); !errors.Is(err, kerr.InvalidPartitions) {
		t.Fatalf("shrinking: %v, want INVALID_PARTITIONS", err)
	}
	if _, err := admin.AlterTopic(ctx, adm, admin.TopicAlter{Topic: "missing", Partitions: 3}); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("a missing topic: %v", err)
	}
}

func TestDeleteRecords(t *testing.T) {
	_, cl, adm := startBroker(t)
	ctx := context.Background()
	create(t, adm, "old", 2, nil)
	produce(t, cl, "old", 0, 20)
	produce(t, cl, "old", 1, 10)
	// starts is the log start offset of the two partitions.
	starts := func() (at [2]int64) {
		t.Helper()
		listed, err := adm.ListStartOffsets(ctx, "old")
		for p := range at {
			o, ok := listed.Lookup("old", int32(p))
			if err != nil || !ok || o.Err != nil {
				t.Fatalf("start offset of partition %d: %v, %v", p, err, o.Err)
			}
			at[p] = o.Offset
		}
		return at
	}

	lines, err := admin.DeleteRecords(ctx, adm, "old", []int32{0}, 5, false)
	if err != nil || strings.Join(lines, "\n") != "topic old partition 0: records before 5 deleted; it holds 5 to 20" || starts() != [2]int64{5, 0} {
		t.Fatalf("partition 0 before 5: %q, %v, starts %v", lines, err, starts())
	}
	// Every partition, clamped at each one's end.
	lines, err = admin.DeleteRecords(ctx, adm, "old", nil, 15, false)
	if err != nil || len(lines) != 2 || !strings.Contains(lines[1], "partition 1: records before 10 deleted") || starts() != [2]int64{15, 10} {
		t.Fatalf("every partition before 15: %q, %v, starts %v", lines, err, starts())
	}
	if _, err := admin.DeleteRecords(ctx, adm, "old", nil, 0, true); err != nil || starts() != [2]int64{20, 10} {
		t.Fatalf("all: %v, starts %v", err, starts())
	}
	if _, err := admin.DeleteRecords(ctx, adm, "old", []int32{7}, 1, false); err == nil || !strings.Contains(err.Error(), "no partition 7 (it has 2)") {
		t.Fatalf("a missing partition: %v", err)
	}
	if _, err := admin.DeleteRecords(ctx, adm, "missing", nil, 1, false); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("a missing topic: %v", err)
	}
}
