package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/creek-pipeline/creek/internal/admin"
	"github.com/twmb/franz-go/pkg/kgo"
)

// creek consume --share-group takes records as from a queue: what one run
// took is gone for the group, and the next run gets only what came after.
// creek groups shows the share group, and reset-offsets moves it back.
func TestConsumeShareGroup(t *testing.T) {
	b, member := groupsCLIBroker(t) // "events": 10 records over 2 partitions
	member.Close()
	brokers := "--brokers=" + b.Addr()
	run := 0
	take := func(n string, extra ...string) []string {
		t.Helper()
		run++
		path := filepath.Join(t.TempDir(), fmt.Sprintf("run%d.jsonl", run))
		args := append([]string{"consume", brokers, "--topic=events", "--share-group=workers", "--count=" + n, "--to=file", "--path=" + path}, extra...)
		if _, errOut, err := runCreek(t, args...); err != nil {
			t.Fatalf("consume: %v\n%s", err, errOut)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var rec struct {
				Partition int32
				Offset    int64
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("%v: %q", err, line)
			}
			got = append(got, fmt.Sprintf("%d/%d", rec.Partition, rec.Offset))
		}
		sort.Strings(got)
		return got
	}
	first := take("10", "--from-beginning")
	if len(first) != 10 || first[0] != "0/0" || first[9] != "1/4" {
		t.Fatalf("first run took %v, want all 10 records", first)
	}

	prod, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("events"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer prod.Close()
	if err := prod.ProduceSync(context.Background(), &kgo.Record{Value: []byte("a"), Partition: 1}, &kgo.Record{Value: []byte("b"), Partition: 1}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := take("2", "--from-beginning"); strings.Join(got, " ") != "1/5 1/6" {
		t.Fatalf("second run took %v, want only the two new records", got)
	}

	out, _, err := runCreek(t, "groups", "list", brokers, "--output=json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"group": "workers"`) || !strings.Contains(out, `"type": "share"`) {
		t.Fatalf("groups list:\n%s", out)
	}
	out, _, err = runCreek(t, "groups", "describe", "workers", brokers, "--output=json")
	if err != nil {
		t.Fatal(err)
	}
	var ds []admin.GroupDescription
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if d := ds[0]; d.State != "Empty" || len(d.Partitions) != 2 || d.Partitions[1].Committed != 7 || d.TotalLag != 0 {
		t.Fatalf("describe: %+v", d)
	}

	if out, errOut, err := runCreek(t, "groups", "reset-offsets", "workers", brokers, "--topic=events", "--to-earliest"); err != nil {
		t.Fatalf("reset: %v\n%s%s", err, out, errOut)
	}
	if got := take("12"); len(got) != 12 {
		t.Fatalf("after the reset took %v, want all 12 again", got)
	}

	// An empty share group can be deleted; it is gone from the list.
	if out, _, err := runCreek(t, "groups", "delete", "workers", brokers); err != nil || !strings.Contains(out, "deleted group workers") {
		t.Fatalf("delete: %v\n%s", err, out)
	}
	if out, _, _ := runCreek(t, "groups", "list", brokers); strings.Contains(out, "workers") {
		t.Fatalf("the deleted share group is still listed:\n%s", out)
	}
}
