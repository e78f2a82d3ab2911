package crash

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTransactionsSurviveKill9: after kill -9, a committed transaction is
// visible to read_committed consumers exactly once, an aborted one never,
// and one that was open at the crash is aborted once its timeout passes:
// never left half visible, never blocking consumers for good.
func TestTransactionsSurviveKill9(t *testing.T) {
	dir := t.TempDir()
	const topic = "payments"
	interval := "--override=transaction.abort.timed.out.transaction.cleanup.interval.ms=100"
	b := startBroker(t, dir, "127.0.0.1:0", interval)
	createTopic(t, b.addr, topic, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	txnClient := func(id string) *kgo.Client {
		return newClient(t, b.addr, kgo.TransactionalID(id), kgo.TransactionTimeout(2*time.Second),
			kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	}
	run := func(cl *kgo.Client, commit bool, prefix string, n int) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("%s-%02d", prefix, i))}).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
		}
		end := kgo.TryAbort
		if commit {
			end = kgo.TryCommit
		}
		if err := cl.EndTransaction(ctx, end); err != nil {
			t.Fatalf("end transaction: %v", err)
		}
	}
	done := txnClient("ledger")
	run(done, true, "committed", 12)
	run(done, false, "aborted", 9)
	done.Close()

	open := txnClient("in-flight")
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if err := open.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("open-%02d", i))}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	b.kill9()
	open.Close()

	b = startBroker(t, dir, b.addr, interval)
	adm := kadm.NewClient(newClient(t, b.addr))
	defer adm.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, err := adm.DescribeTransactions(ctx, "in-flight")
		if err == nil && d["in-flight"].State == "CompleteAbort" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the transaction open at the crash was not aborted after the restart: %+v %v", d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d, err := adm.DescribeTransactions(ctx, "ledger"); err != nil || d["ledger"].State != "CompleteAbort" {
		t.Fatalf("the ledger transaction's last state: %+v %v", d, err)
	}

	// A committed sentinel after everything; read_committed reads up to it.
	sentinel := txnClient("sentinel")
	if err := sentinel.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for p := range int32(3) {
		if err := sentinel.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("end")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := sentinel.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	sentinel.Close()

	cl := newClient(t, b.addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	defer cl.Close()
	ends := 0
	var got []string
	for ends < 3 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_committed did not reach the end of every partition; got %v", got)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == "end" {
				ends++
			} else {
				got = append(got, string(r.Value))
			}
		})
	}
	sort.Strings(got)
	var want []string
	for i := range 12 {
		want = append(want, fmt.Sprintf("committed-%02d", i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("read_committed after kill -9 saw %v, want exactly %v", got, want)
	}
}
