package crash

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// latestAcks remembers, per key, the acknowledged record with the highest
// offset: its offset and its sequence number (in the value).
type latestAcks struct {
	mu     sync.Mutex
	latest map[string]keyAck
	n      int
	errs   map[string]int
}

type keyAck struct {
	partition int32
	offset    int64
	seq       int
}

func (a *latestAcks) promise(r *kgo.Record, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.errs[err.Error()]++
		return
	}
	a.n++
	k := string(r.Key)
	if prev, ok := a.latest[k]; !ok || r.Offset > prev.offset {
		a.latest[k] = keyAck{r.Partition, r.Offset, seqOf(r.Value)}
	}
}

func (a *latestAcks) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

func (a *latestAcks) snapshot() map[string]keyAck {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]keyAck, len(a.latest))
	for k, v := range a.latest {
		out[k] = v
	}
	return out
}

func (a *latestAcks) waitAcked(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for a.count() < n {
		if time.Now().After(deadline) {
			a.mu.Lock()
			t.Fatalf("only %d of %d records acknowledged within 30s (failures: %v)", a.n, n, a.errs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// tableValue is key|seq|padding: the sequence number tells which write of
// the key a record is.
func tableValue(key string, seq int) []byte {
	return []byte(fmt.Sprintf("%s|%08d|%s", key, seq, strings.Repeat("v", 80)))
}

func seqOf(v []byte) int {
	parts := strings.SplitN(string(v), "|", 3)
	if len(parts) < 2 {
		return -1
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		return -1
	}
	return n
}

// checkCompacted reads a compacted topic from the start while the cleaner
// may still be at work, until each key shows its latest acknowledged write
// or a later one: compaction removes a key's record only for a later one,
// which a reader going forward finds. Every record must be intact and a
// key's writes must come in the order they were made. It fails when a key
// lost its latest value, and returns the records read.
func checkCompacted(t *testing.T, addr, topic string, acked map[string]keyAck) int {
	t.Helper()
	cl := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	defer cl.Close()
	type seen struct {
		offset int64
		seq    int
	}
	last := map[string]seen{}
	waiting := len(acked)
	n := 0
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for waiting > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			missing := 0
			for k, a := range acked {
				if got, ok := last[k]; !ok || got.seq < a.seq {
					if missing++; missing <= 10 {
						t.Errorf("key %s: its latest acknowledged write %d (partition %d offset %d) is gone; the log has the key up to %+v", k, a.seq, a.partition, a.offset, got)
					}
				}
			}
			t.Fatalf("%d keys lost their latest acknowledged value (%d records read)", missing, n)
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("consuming %s partition %d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			n++
			k := string(r.Key)
			seq := seqOf(r.Value)
			if seq < 0 || string(r.Value) != string(tableValue(k, seq)) {
				t.Fatalf("partition %d offset %d: key %s holds %q", r.Partition, r.Offset, k, r.Value)
			}
			prev, ok := last[k]
			if ok && prev.seq >= seq {
				t.Fatalf("key %s: write %d at offset %d comes after write %d at offset %d", k, seq, r.Offset, prev.seq, prev.offset)
			}
			if a, want := acked[k]; want && seq >= a.seq && (!ok || prev.seq < a.seq) {
				waiting--
			}
			last[k] = seen{r.Offset, seq}
		})
	}
	return n
}

// TestKill9DuringCleaning kills the broker again and again while producers
// overwrite a few hundred keys of a compacted topic with small segments and
// the cleaner, which looks for work every 5 ms at any dirty ratio, keeps
// rewriting and swapping segments. After each restart every key must still
// have its latest acknowledged value (or a later one), intact and in order.
func TestKill9DuringCleaning(t *testing.T) {
	dir := t.TempDir()
	const topic = "table"
	args := []string{"--override", "log.cleaner.backoff.ms=5"}
	b := startBroker(t, dir, "127.0.0.1:0", args...)
	adm := kadm.NewClient(newClient(t, b.addr))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	resp, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{
		"cleanup.policy":            kadm.StringPtr("compact"),
		"segment.bytes":             kadm.StringPtr("16384"),
		"min.cleanable.dirty.ratio": kadm.StringPtr("0.01"),
	}, topic)
	cancel()
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}

	acks := &latestAcks{latest: map[string]keyAck{}, errs: map[string]int{}}
	// New writes pause from just before each kill until the log has been
	// checked: what the producers had buffered is still in flight at the
	// kill and retried after it, and a write made after the restart cannot
	// stand in for an acknowledged one that was lost.
	var stopping, paused atomic.Bool
	var wg sync.WaitGroup
	var clients []*kgo.Client
	for i := range 3 {
		cl := newClient(t, b.addr, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.MaxBufferedRecords(1000), kgo.ProducerLinger(time.Millisecond), kgo.AlwaysRetryEOF())
		clients = append(clients, cl)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; !stopping.Load(); j++ {
				for paused.Load() && !stopping.Load() {
					time.Sleep(time.Millisecond)
				}
				k := fmt.Sprintf("p%d-key%03d", i, j%300)
				cl.Produce(context.Background(), &kgo.Record{Key: []byte(k), Value: tableValue(k, j)}, acks.promise)
			}
		}()
	}
	t.Cleanup(func() {
		stopping.Store(true)
		for _, cl := range clients {
			cl.Close()
		}
		wg.Wait()
	})

	interrupted, passes := 0, 0
	const rounds = 8
	for round := 1; round <= rounds; round++ {
		acks.waitAcked(t, acks.count()+15000)
		time.Sleep(time.Duration(round*7) * time.Millisecond)
		paused.Store(true)
		b.kill9()
		before := acks.snapshot()
		cleanedBefore := strings.Count(b.logs.String(), "log cleaned")

		b = startBroker(t, dir, b.addr, args...)
		if strings.Contains(b.logs.String(), "completed a cleaning that a crash interrupted") {
			interrupted++
		}
		n := checkCompacted(t, b.addr, topic, before)
		paused.Store(false)
		passes += cleanedBefore
		t.Logf("round %d: killed after %d cleaning passes with %d writes acknowledged; read %d records to find the latest of %d keys",
			round, cleanedBefore, acks.count(), n, len(before))
	}
	t.Logf("%d cleaning passes in all; %d of %d restarts completed a swap the kill had interrupted", passes, interrupted, rounds)
	if passes == 0 {
		t.Fatal("the cleaner never finished a pass")
	}

	stopping.Store(true)
	wg.Wait()
	fctx, fcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer fcancel()
	for _, cl := range clients {
		if err := cl.Flush(fctx); err != nil {
			t.Fatal(err)
		}
	}
	acks.mu.Lock()
	if len(acks.errs) > 0 {
		t.Errorf("producers had records fail (they retry forever, so none should): %v", acks.errs)
	}
	acks.mu.Unlock()
	ends := endOffsets(t, b.addr, topic)
	n := checkCompacted(t, b.addr, topic, acks.snapshot())
	if int64(n) > total(ends)/3 {
		t.Errorf("%d records read of %d writes to 900 keys: the log was hardly compacted", n, total(ends))
	}
}
