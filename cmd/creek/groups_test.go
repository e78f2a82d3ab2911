package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/broker"
	"github.com/creek-pipeline/creek/internal/admin"
)

// runCreek runs the CLI in-process and returns stdout, stderr and the error.
func runCreek(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// groupsCLIBroker starts a broker with a topic of two partitions holding
// ten records, and a group "readers" that consumed and committed them.
func groupsCLIBroker(t *testing.T) (*broker.Broker, *kgo.Client) {
	t.Helper()
	b, err := broker.Start(context.Background(), broker.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Settings: map[string]string{"group.initial.rebalance.delay.ms": "0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx := context.Background()
	admin, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	t.Cleanup(admin.Close)
	if _, err := kadm.NewClient(admin).CreateTopic(ctx, 2, 1, nil, "events"); err != nil {
		t.Fatal(err)
	}
	prod, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("events"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	defer prod.Close()
	for i := 0; i < 10; i++ {
		prod.Produce(ctx, &kgo.Record{Value: []byte("v")}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	member, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumerGroup("readers"), kgo.ConsumeTopics("events"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.ClientID("reader-1"))
	readAndCommit(t, member, 10)
	return b, member
}

// readAndCommit has a group member read n records and commit them.
func readAndCommit(t *testing.T, member *kgo.Client, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for read := 0; read < n; {
		fs := member.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		read += fs.NumRecords()
	}
	if err := member.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestGroupsCLI(t *testing.T) {
	b, member := groupsCLIBroker(t)
	brokers := "--brokers=" + b.Addr()

	out, _, err := runCreek(t, "groups", "list", brokers)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "readers") || !strings.Contains(out, "Stable") || !strings.Contains(out, "consumer") {
		t.Fatalf("list:\n%s", out)
	}

	// Produce two more: the group lags by two.
	prod, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("events"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	prod.ProduceSync(context.Background(), &kgo.Record{Value: []byte("x"), Partition: 1}, &kgo.Record{Value: []byte("y"), Partition: 1})
	prod.Close()
	out, _, err = runCreek(t, "groups", "describe", "readers", brokers, "--output=json")
	if err != nil {
		t.Fatal(err)
	}
	var ds []admin.GroupDescription
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		t.Fatalf("json output: %v\n%s", err, out)
	}
	d := ds[0]
	if d.State != "Stable" || len(d.Members) != 1 || d.Members[0].ClientID != "reader-1" || len(d.Members[0].Assigned) != 2 {
		t.Fatalf("describe members: %+v", d)
	}
	if len(d.Partitions) != 2 || d.TotalLag != 2 || d.Partitions[1].Committed != 5 || d.Partitions[1].End != 7 || d.Partitions[1].Lag != 2 {
		t.Fatalf("describe partitions: %+v", d.Partitions)
	}
	out, _, _ = runCreek(t, "groups", "describe", "readers", brokers)
	for _, want := range []string{"Group readers: Stable", "total lag 2", "COMMITTED", "events  1          5          7    2"} {
		if !strings.Contains(out, want) {
			t.Fatalf("table output lacks %q:\n%s", want, out)
		}
	}

	// An active group can be neither reset nor deleted.
	if _, _, err := runCreek(t, "groups", "reset-offsets", "readers", brokers, "--topic=events", "--to-earliest"); err == nil || !strings.Contains(err.Error(), "active member") {
		t.Fatalf("reset of an active group: %v", err)
	}
	if _, _, err := runCreek(t, "groups", "delete", "readers", brokers); err == nil {
		t.Fatal("deleted a group with members")
	}

	member.Close() // leaves the group
	out, _, err = runCreek(t, "groups", "reset-offsets", "readers", brokers, "--topic=events", "--to-earliest", "--dry-run")
	if err != nil || !strings.Contains(out, "dry run") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	offs := fetchGroupOffsets(t, b, "readers")
	if offs["events"][1] != 5 {
		t.Fatalf("dry run changed offsets: %v", offs)
	}
	if _, _, err := runCreek(t, "groups", "reset-offsets", "readers", brokers, "--topic=events", "--to-offset=3"); err != nil {
		t.Fatal(err)
	}
	if offs := fetchGroupOffsets(t, b, "readers"); offs["events"][0] != 3 || offs["events"][1] != 3 {
		t.Fatalf("after --to-offset 3: %v", offs)
	}
	if _, _, err := runCreek(t, "groups", "reset-offsets", "readers", brokers, "--topic=events", "--to-latest"); err != nil {
		t.Fatal(err)
	}
	if offs := fetchGroupOffsets(t, b, "readers"); offs["events"][0] != 5 || offs["events"][1] != 7 {
		t.Fatalf("after --to-latest: %v", offs)
	}
	if _, _, err := runCreek(t, "groups", "reset-offsets", "readers", brokers, "--topic=events", "--to-datetime=2000-01-01T00:00:00Z"); err != nil {
		t.Fatal(err)
	}
	if offs := fetchGroupOffsets(t, b, "readers"); offs["events"][0] != 0 || offs["events"][1] != 0 {
		t.Fatalf("after --to-datetime in the past: %v", offs)
	}
	if _, _, err := runCreek(t, "groups", "reset-offsets", "readers", brokers, "--topic=events", "--to-offset=99"); err == nil || !strings.Contains(err.Error(), "past the end") {
		t.Fatalf("--to-offset past the end: %v", err)
	}
	if _, _, err := runCreek(t, "groups", "reset-offsets", "readers", brokers, "--topic=events"); err == nil {
		t.Fatal("reset without a target was accepted")
	}

	out, _, err = runCreek(t, "groups", "delete", "readers", brokers)
	if err != nil || !strings.Contains(out, "deleted group readers") {
		t.Fatalf("delete: %v %s", err, out)
	}
	out, _, _ = runCreek(t, "groups", "list", brokers)
	if !strings.Contains(out, "no consumer groups") {
		t.Fatalf("list after delete:\n%s", out)
	}
	if _, _, err := runCreek(t, "groups", "describe", "nothing", brokers); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("describe of a missing group: %v", err)
	}
}

func fetchGroupOffsets(t *testing.T, b *broker.Broker, group string) map[string]map[int32]int64 {
	t.Helper()
	cl, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.At
	})
	return out
}

// Groups of Kafka 4's consumer protocol (KIP-848) are listed with their type
// and described through ConsumerGroupDescribe.
func TestGroupsCLIConsumerProtocol(t *testing.T) {
	b, classic := groupsCLIBroker(t)
	defer classic.Close()
	brokers := "--brokers=" + b.Addr()
	member, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumerGroup("kafka4"), kgo.ConsumeTopics("events"),
		kgo.ServerSideBalancer(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.ClientID("next-gen"))
	defer member.Close()
	readAndCommit(t, member, 10)

	out, _, err := runCreek(t, "groups", "list", brokers, "--output=json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		Group, Type, State string
		Members            int
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	types := map[string]string{}
	for _, r := range rows {
		types[r.Group] = r.Type
		if r.Members != 1 {
			t.Fatalf("list: %+v", rows)
		}
	}
	if types["kafka4"] != "consumer" || types["readers"] != "classic" {
		t.Fatalf("list types: %v", types)
	}

	out, _, err = runCreek(t, "groups", "describe", "kafka4", brokers, "--output=json")
	if err != nil {
		t.Fatal(err)
	}
	var ds []admin.GroupDescription
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		t.Fatalf("json output: %v\n%s", err, out)
	}
	d := ds[0]
	if d.State != "Stable" || d.Protocol != "uniform" || len(d.Members) != 1 || d.Members[0].ClientID != "next-gen" || len(d.Members[0].Assigned) != 2 {
		t.Fatalf("describe: %+v", d)
	}
	if len(d.Partitions) != 2 || d.TotalLag != 0 || d.Partitions[0].Committed != 5 || d.Partitions[0].Member == "" {
		t.Fatalf("describe partitions: %+v", d.Partitions)
	}
	out, _, _ = runCreek(t, "groups", "describe", "kafka4", brokers)
	if !strings.Contains(out, "Group kafka4: Stable (assignor uniform), 1 member(s), total lag 0") {
		t.Fatalf("table:\n%s", out)
	}
}
