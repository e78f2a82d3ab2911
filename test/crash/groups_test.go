package crash

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupOffsetsSurviveKill9: offsets a consumer group committed (and the
// broker acknowledged) are still there after kill -9, and a consumer of the
// group that starts afterwards resumes exactly where the group left off.
func TestGroupOffsetsSurviveKill9(t *testing.T) {
	dir := t.TempDir()
	const topic, group = "orders", "billing"
	b := startBroker(t, dir, "127.0.0.1:0")
	createTopic(t, b.addr, topic, 3)
	pr := newClient(t, b.addr, kgo.DefaultProduceTopic(topic))
	var recs []*kgo.Record
	for i := 0; i < 300; i++ {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i % 17)), Value: []byte(fmt.Sprintf("order-%03d", i))})
	}
	if err := pr.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	pr.Close()

	// A member of the group reads part of the topic and commits what it read.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := newClient(t, b.addr, kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(2000))
	seen := map[string]bool{}
	for len(seen) < 120 {
		fs := cl.PollRecords(ctx, 120-len(seen))
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	committed := map[int32]int64{}
	for _, ps := range cl.CommittedOffsets() {
		for p, o := range ps {
			committed[p] = o.Offset
		}
	}
	// An admin commit with metadata, the way tools reset offsets.
	adm := kadm.NewClient(newClient(t, b.addr))
	var extra kadm.Offsets
	extra.Add(kadm.Offset{Topic: topic, Partition: 2, At: 77, Metadata: "set by hand"})
	if _, err := adm.CommitOffsets(ctx, "ops", extra); err != nil {
		t.Fatalf("admin commit: %v", err)
	}
	adm.Close()

	b.kill9()
	cl.Close() // after the kill: its leave request cannot reach the broker
	b = startBroker(t, dir, b.addr)

	adm = kadm.NewClient(newClient(t, b.addr))
	defer adm.Close()
	got, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets after restart: %v", err)
	}
	for p, at := range committed {
		o, ok := got.Lookup(topic, p)
		if !ok || o.At != at {
			t.Errorf("partition %d: committed offset after kill -9 is %+v, want %d", p, o, at)
		}
	}
	ops, err := adm.FetchOffsets(ctx, "ops")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ops.Lookup(topic, 2); o.At != 77 || o.Metadata != "set by hand" {
		t.Errorf("admin-committed offset after kill -9: %+v, want 77 with its metadata", o)
	}

	// A new member of the group reads exactly what the group had not read.
	cl = newClient(t, b.addr, kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group), kgo.DisableAutoCommit())
	defer cl.Close()
	rest := 0
	for rest < 300-len(seen) {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll after restart: %v (read %d of %d)", err, rest, 300-len(seen))
		}
		fs.EachRecord(func(r *kgo.Record) {
			if seen[string(r.Value)] {
				t.Errorf("record %q at %d/%d read again after the restart, though its offset was committed", r.Value, r.Partition, r.Offset)
			}
			if r.Offset < committed[r.Partition] {
				t.Errorf("partition %d: read offset %d, below the committed %d", r.Partition, r.Offset, committed[r.Partition])
			}
			rest++
		})
	}
	if rest != 300-len(seen) {
		t.Errorf("read %d records after the restart, want %d", rest, 300-len(seen))
	}
	t.Logf("committed %v before kill -9; %s", committed, fmt.Sprintf("%d records read before, %d after", len(seen), rest))
}
