package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/broker"
)

// creek transactions list|describe|producers show one committed and one
// open transaction, in tables and JSON.
func TestTransactionsCLI(t *testing.T) {
	b, err := broker.Start(context.Background(), broker.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	admin, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	defer admin.Close()
	if _, err := kadm.NewClient(admin).CreateTopic(ctx, 2, 1, nil, "ledger"); err != nil {
		t.Fatal(err)
	}
	txn := func(id string, commit bool) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.TransactionalID(id), kgo.DefaultProduceTopic("ledger"),
			kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if commit {
			if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatal(err)
			}
		}
		return cl
	}
	txn("settled", true)
	txn("pending", false)

	out := mustCreek(t, "transactions", "list", "--brokers", b.Addr())
	if row := tableRow(t, out, "settled"); row[2] != "CompleteCommit" {
		t.Fatalf("settled row %v", row)
	}
	if row := tableRow(t, out, "pending"); row[2] != "Ongoing" {
		t.Fatalf("pending row %v", row)
	}
	out = mustCreek(t, "transactions", "list", "--brokers", b.Addr(), "--state", "Ongoing")
	if strings.Contains(out, "settled") || !strings.Contains(out, "pending") {
		t.Fatalf("--state Ongoing:\n%s", out)
	}

	out = mustCreek(t, "transactions", "describe", "pending", "--brokers", b.Addr(), "--output", "json")
	var described []struct {
		State      string   `json:"state"`
		Partitions []string `json:"partitions"`
		Started    string   `json:"started"`
	}
	if err := json.Unmarshal([]byte(out), &described); err != nil || len(described) != 1 {
		t.Fatalf("describe json: %v\n%s", err, out)
	}
	if d := described[0]; d.State != "Ongoing" || len(d.Partitions) != 1 || d.Partitions[0] != "ledger/1" || d.Started == "" {
		t.Fatalf("describe pending: %+v", d)
	}

	out = mustCreek(t, "transactions", "producers", "ledger", "--brokers", b.Addr())
	open := 0
	for _, line := range strings.Split(out, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) == 6 && f[0] == "1" && f[5] != "-" {
			open++
		}
	}
	if open != 1 {
		t.Fatalf("producers of ledger should show one open transaction on partition 1:\n%s", out)
	}
	if _, _, err := runCreek(t, "transactions", "producers", "missing", "--brokers", b.Addr()); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("producers of a missing topic: %v", err)
	}
}
