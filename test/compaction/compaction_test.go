// Package compaction tests compacted topics (cleanup.policy=compact)
// end to end: real clients (franz-go, kcat, kafka-python) produce to a
// running broker, its log cleaner compacts, and the clients read back the
// latest value of every key; Kafka Connect's distributed worker and a
// Kafka Streams application keep their state in compacted topics across a
// broker restart.
package compaction

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/broker"
	"github.com/creek-pipeline/creek/internal/admin"
	"github.com/creek-pipeline/creek/internal/storage"
)

// cleanerSettings make the cleaner look for work often, so tests do not
// wait for Kafka's 15 s back-off.
var cleanerSettings = map[string]string{"log.cleaner.backoff.ms": "50"}

func startBroker(t *testing.T, dir, listen string) *broker.Broker {
	t.Helper()
	b, err := broker.Start(context.Background(), broker.Config{
		Listen: listen, DataDir: dir, Settings: cleanerSettings,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.MetadataMinAge(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// compactedConfigs are the topic configs of the tests' compacted topics:
// small segments, so that segments close after a few records, cleaned at
// any dirty ratio, tombstones kept 1 s.
func compactedConfigs(extra ...string) map[string]*string {
	c := map[string]*string{
		"cleanup.policy":            kadm.StringPtr("compact"),
		"segment.bytes":             kadm.StringPtr("2048"),
		"min.cleanable.dirty.ratio": kadm.StringPtr("0.01"),
		"delete.retention.ms":       kadm.StringPtr("1000"),
	}
	for i := 0; i+1 < len(extra); i += 2 {
		c[extra[i]] = kadm.StringPtr(extra[i+1])
	}
	return c
}

func createTopic(t *testing.T, cl *kgo.Client, topic string, configs map[string]*string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// cleanerStatus asks the broker for partition 0's cleaner state, as
// `creek topics describe` does (DescribeLogDirs with creek's tag).
func cleanerStatus(t *testing.T, cl *kgo.Client, topic string) storage.CleanerStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := admin.CleanerStatuses(ctx, cl, topic, map[int32][]int32{1: {0}})[0].Cleaner
	if st == nil {
		t.Fatalf("DescribeLogDirs has no cleaner status for %s", topic)
	}
	return *st
}

// waitCleaned waits until a cleaning pass has covered the partition up to
// at least offset.
func waitCleaned(t *testing.T, cl *kgo.Client, topic string, offset int64) storage.CleanerStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := cleanerStatus(t, cl, topic)
		if st.LastCleaning != nil && st.LastCleaning.Error != "" {
			t.Fatalf("cleaning %s failed: %s", topic, st.LastCleaning.Error)
		}
		if st.FirstDirtyOffset >= offset && st.LastCleaning != nil {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not cleaned up to offset %d within 30s: %+v", topic, offset, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitSettled waits until the cleaner has nothing left to do on the
// topic: a pass ran and no cleanable bytes are left.
func waitSettled(t *testing.T, cl *kgo.Client, topic string) storage.CleanerStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := cleanerStatus(t, cl, topic)
		if st.LastCleaning != nil && st.LastCleaning.Error != "" {
			t.Fatalf("cleaning %s failed: %s", topic, st.LastCleaning.Error)
		}
		if st.LastCleaning != nil && !st.Cleanable && st.DirtyBytes == 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still has cleaning to do after 30s: %+v", topic, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// record is what a client read back.
type record struct {
	offset     int64
	key, value string
	tombstone  bool
}

// consumeAll reads partition 0 of topic from the start to its end with
// franz-go.
func consumeAll(t *testing.T, addr, topic string) []record {
	t.Helper()
	adm := kadm.NewClient(newClient(t, addr))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	cl := newClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}), kgo.FetchMaxWait(50*time.Millisecond))
	var out []record
	for len(out) == 0 || out[len(out)-1].offset < end.Offset-1 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consuming %s: %v after %d records, end offset %d", topic, ctx.Err(), len(out), end.Offset)
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("consuming %s: %v", topic, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, record{offset: r.Offset, key: string(r.Key), value: string(r.Value), tombstone: r.Value == nil})
		})
	}
	return out
}

// byKey groups records by key, in offset order.
func byKey(recs []record) map[string][]record {
	out := map[string][]record{}
	for _, r := range recs {
		out[r.key] = append(out[r.key], r)
	}
	return out
}

// TestFranzGoCompactedTopic: franz-go writes 3000 records over 60 keys
// and deletes 10 keys with tombstones; after cleaning every key whose
// records are in closed segments appears once, with its latest value; the
// tombstones go after delete.retention.ms; a record without a key is
// refused with INVALID_RECORD; and all of it holds across a restart.
func TestFranzGoCompactedTopic(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir, "127.0.0.1:0")
	const topic = "profiles"
	admin := newClient(t, b.Addr())
	createTopic(t, admin, topic, compactedConfigs())

	prod := newClient(t, b.Addr(), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond), kgo.ProducerBatchMaxBytes(1000))
	latest := map[string]string{}
	ctx := context.Background()
	for i := range 3000 {
		k, v := fmt.Sprintf("user-%02d", i%60), fmt.Sprintf("profile %d of user %d", i, i%60)
		prod.Produce(ctx, &kgo.Record{Key: []byte(k), Value: []byte(v)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
		latest[k] = v
	}
	for i := range 10 {
		k := fmt.Sprintf("user-%02d", i)
		if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: nil}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		delete(latest, k)
	}
	// Close the segment holding the tombstones.
	var last *kgo.Record
	for i := range 30 {
		k := fmt.Sprintf("user-%02d", 10+i%50)
		last = &kgo.Record{Key: []byte(k), Value: []byte(fmt.Sprintf("late %d", i))}
		if err := prod.ProduceSync(ctx, last).FirstErr(); err != nil {
			t.Fatal(err)
		}
		latest[k] = string(last.Value)
	}

	err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("no key")}).FirstErr()
	if !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("a record without a key on a compacted topic: %v, want INVALID_RECORD", err)
	}

	tombstonesAt := last.Offset - 30
	st := waitCleaned(t, admin, topic, tombstonesAt+1)
	t.Logf("cleaned: %+v, last pass %+v", st, *st.LastCleaning)
	recs := consumeAll(t, b.Addr(), topic)
	keys := byKey(recs)
	for k, v := range latest {
		rs := keys[k]
		if len(rs) == 0 || rs[len(rs)-1].value != v {
			t.Fatalf("key %s: latest value %q is not what the consumer reads last: %v", k, v, rs)
		}
	}
	for k, rs := range keys {
		cleaned := 0
		for _, r := range rs {
			if r.offset < st.FirstDirtyOffset {
				cleaned++
			}
		}
		if cleaned > 1 {
			t.Fatalf("key %s appears %d times in the cleaned part of the log: %v", k, cleaned, rs)
		}
	}
	for i := range 10 {
		if rs := keys[fmt.Sprintf("user-%02d", i)]; len(rs) != 1 || !rs[0].tombstone {
			t.Fatalf("deleted key user-%02d right after cleaning: %v, want just its tombstone", i, rs)
		}
	}
	if len(recs) >= 3040/2 {
		t.Fatalf("%d records are left of 3040 over 60 keys", len(recs))
	}

	// delete.retention.ms later the tombstones are gone too, also after a
	// restart.
	deadline := time.Now().Add(30 * time.Second)
	for {
		keys = byKey(consumeAll(t, b.Addr(), topic))
		var left []record
		for i := range 10 {
			left = append(left, keys[fmt.Sprintf("user-%02d", i)]...)
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tombstones still there 30s after delete.retention.ms (1s): %v", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
	addr := b.Addr()
	b.Close()
	b = startBroker(t, dir, addr)
	after := byKey(consumeAll(t, b.Addr(), topic))
	if len(after) != len(latest) {
		t.Fatalf("after a restart %d keys, want %d", len(after), len(latest))
	}
	for k, v := range latest {
		if rs := after[k]; len(rs) == 0 || rs[len(rs)-1].value != v {
			t.Fatalf("after a restart key %s reads %v, want %q last", k, rs, v)
		}
	}
}

// TestCompactionSwitchedOnAtRunTime: a topic created with
// cleanup.policy=delete is switched to compact with
// IncrementalAlterConfigs and compacted; configs that Kafka refuses are
// refused.
func TestCompactionSwitchedOnAtRunTime(t *testing.T) {
	b := startBroker(t, t.TempDir(), "127.0.0.1:0")
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("events"))
	createTopic(t, cl, "events", map[string]*string{"segment.bytes": kadm.StringPtr("2048")})
	ctx := context.Background()
	for i := range 500 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 5)), Value: []byte(fmt.Sprintf("value %d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	before := len(consumeAll(t, b.Addr(), "events"))
	adm := kadm.NewClient(cl)
	alter := func(ops ...kadm.AlterConfig) error {
		resp, err := adm.AlterTopicConfigs(ctx, ops, "events")
		if err == nil {
			err = resp[0].Err
		}
		return err
	}
	if err := alter(kadm.AlterConfig{Name: "min.compaction.lag.ms", Value: kadm.StringPtr("10")}, kadm.AlterConfig{Name: "max.compaction.lag.ms", Value: kadm.StringPtr("5")}); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("min.compaction.lag.ms above max.compaction.lag.ms: %v, want INVALID_CONFIG", err)
	}
	if err := alter(kadm.AlterConfig{Name: "cleanup.policy", Value: kadm.StringPtr("compacted")}); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("cleanup.policy=compacted: %v, want INVALID_CONFIG", err)
	}
	if err := alter(kadm.AlterConfig{Name: "cleanup.policy", Op: kadm.AppendConfig, Value: kadm.StringPtr("compact")},
		kadm.AlterConfig{Name: "min.cleanable.dirty.ratio", Value: kadm.StringPtr("0.1")}); err != nil {
		t.Fatal(err)
	}
	described, err := adm.DescribeTopicConfigs(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := described.On("events", nil)
	got := map[string]string{}
	for _, c := range rc.Configs {
		got[c.Key] = c.MaybeValue()
	}
	if got["cleanup.policy"] != "delete,compact" || got["min.cleanable.dirty.ratio"] != "0.1" || got["delete.retention.ms"] != "86400000" {
		t.Fatalf("described configs: cleanup.policy=%q min.cleanable.dirty.ratio=%q delete.retention.ms=%q", got["cleanup.policy"], got["min.cleanable.dirty.ratio"], got["delete.retention.ms"])
	}
	waitCleaned(t, cl, "events", 400)
	after := consumeAll(t, b.Addr(), "events")
	if len(after) >= before/4 {
		t.Fatalf("%d records before compaction was switched on, %d after", before, len(after))
	}
	values := map[string]string{}
	for _, r := range after {
		values[r.key] = r.value
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if want := fmt.Sprintf("value %d", 495+i); values[k] != want {
			t.Fatalf("key %s ends with %q, want %q", k, values[k], want)
		}
	}
	if !strings.Contains(fmt.Sprint(keys), "0 1 2 3 4") {
		t.Fatalf("keys after compaction: %v", keys)
	}
}
