package broker

import (
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnProducer is a franz-go transactional producer of b.
func txnProducer(t *testing.T, b *Broker, id string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return protoClient(t, b, append([]kgo.Opt{kgo.TransactionalID(id), kgo.TransactionTimeout(10 * time.Second)}, opts...)...)
}

// produceTxn produces values in one transaction and commits or aborts it.
func produceTxn(t *testing.T, cl *kgo.Client, topic string, commit bool, values ...string) {
	t.Helper()
	ctx := protoCtx(t)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i, v := range values {
		r := &kgo.Record{Topic: topic, Value: []byte(v), Partition: int32(i % 3)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %q: %v", v, err)
		}
	}
	end := kgo.TryAbort
	if commit {
		end = kgo.TryCommit
	}
	if err := cl.EndTransaction(ctx, end); err != nil {
		t.Fatalf("end transaction (commit=%v): %v", commit, err)
	}
}

// fence produces a committed "fence" record to every partition, after
// which a reader knows it has seen everything decided before it.
func fence(t *testing.T, b *Broker, topic string, partitions int32) {
	t.Helper()
	cl := txnProducer(t, b, "fence-"+topic, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for p := range partitions {
		if err := cl.ProduceSync(protoCtx(t), &kgo.Record{Topic: topic, Partition: p, Value: []byte("fence")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.EndTransaction(protoCtx(t), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
}

// readUntilFence reads a topic from the start until the fence record of
// every partition, and returns the other values, sorted.
func readUntilFence(t *testing.T, b *Broker, topic string, partitions int32, committed bool) []string {
	t.Helper()
	ctx := protoCtx(t)
	level := kgo.ReadUncommitted()
	if committed {
		level = kgo.ReadCommitted()
	}
	cl := protoClient(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(level), kgo.FetchMaxWait(100*time.Millisecond))
	fenced := map[int32]bool{}
	var values []string
	for int32(len(fenced)) < partitions {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s (read_committed=%v): reached the fence of %d of %d partitions; values so far %v", topic, committed, len(fenced), partitions, values)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("fetch %s[%d]: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == "fence" {
				fenced[r.Partition] = true
			} else if !fenced[r.Partition] {
				values = append(values, string(r.Value))
			}
		})
	}
	sort.Strings(values)
	return values
}

func TestTransactionsCommittedOnceAbortedNeverVisible(t *testing.T) {
	b := protoBroker(t, nil)
	protoCreateTopic(t, b, "txn", 3, nil)
	cl := txnProducer(t, b, "writer", kgo.RecordPartitioner(kgo.ManualPartitioner()))

	produceTxn(t, cl, "txn", true, "c1", "c2", "c3")
	produceTxn(t, cl, "txn", false, "a1", "a2", "a3", "a4")
	produceTxn(t, cl, "txn", true, "c4", "c5")

	// An open transaction holds read_committed consumers back at its start.
	open := txnProducer(t, b, "open", kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := open.ProduceSync(protoCtx(t), &kgo.Record{Topic: "txn", Partition: 0, Value: []byte("pending")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := protoAdmin(t, b)
	lso, err := adm.ListCommittedOffsets(protoCtx(t), "txn")
	if err != nil {
		t.Fatal(err)
	}
	hw, err := adm.ListEndOffsets(protoCtx(t), "txn")
	if err != nil {
		t.Fatal(err)
	}
	l0, _ := lso.Lookup("txn", 0)
	h0, _ := hw.Lookup("txn", 0)
	if l0.Offset >= h0.Offset {
		t.Fatalf("with a transaction open on partition 0, the last stable offset %d is not below the end %d", l0.Offset, h0.Offset)
	}

	fence(t, b, "txn", 3)
	uncommitted := readUntilFence(t, b, "txn", 3, false)
	if want := []string{"a1", "a2", "a3", "a4", "c1", "c2", "c3", "c4", "c5", "pending"}; !slices.Equal(uncommitted, want) {
		t.Fatalf("read_uncommitted saw %v, want %v", uncommitted, want)
	}
	// read_committed stops at the open transaction on partition 0, so
	// commit it first; then every committed value appears once.
	if err := open.EndTransaction(protoCtx(t), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	committed := readUntilFence(t, b, "txn", 3, true)
	if want := []string{"c1", "c2", "c3", "c4", "c5", "pending"}; !slices.Equal(committed, want) {
		t.Fatalf("read_committed saw %v, want %v", committed, want)
	}

	// DescribeTransactions, ListTransactions and DescribeProducers.
	desc, err := adm.DescribeTransactions(protoCtx(t), "writer")
	if err != nil {
		t.Fatal(err)
	}
	d, ok := desc["writer"]
	if !ok || d.Err != nil || d.State != "CompleteCommit" || d.ProducerID < 0 {
		t.Fatalf("describe transaction: %+v", desc)
	}
	listed, err := adm.ListTransactions(protoCtx(t), nil, []string{"CompleteCommit"})
	if err != nil {
		t.Fatal(err)
	}
	if ids := listed.TransactionalIDs(); !slices.Contains(ids, "writer") || !slices.Contains(ids, "open") {
		t.Fatalf("list transactions: %v", ids)
	}
	producers, err := adm.DescribeProducers(protoCtx(t), kadm.TopicsSet{"txn": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	producers.EachProducer(func(p kadm.DescribedProducer) {
		if p.ProducerID == d.ProducerID {
			found = p.CurrentTxnStartOffset == -1
		}
	})
	if !found {
		t.Fatalf("describe producers of txn/0 lacks the writer (pid %d) with no open transaction", d.ProducerID)
	}
}

// A consume-transform-produce loop with franz-go's GroupTransactSession:
// every input record is transformed exactly once in the output, and the
// group's offsets move only with committed transactions.
func TestTransactionsConsumeTransformProduce(t *testing.T) {
	b := protoBroker(t, map[string]string{"group.initial.rebalance.delay.ms": "0"})
	protoCreateTopic(t, b, "in", 3, nil)
	protoCreateTopic(t, b, "out", 3, nil)
	in := protoClient(t, b)
	const n = 300
	for i := range n {
		if err := in.ProduceSync(protoCtx(t), &kgo.Record{Topic: "in", Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("v%03d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	transform := func(stopAfter int, abortFirst bool) int {
		sess, err := kgo.NewGroupTransactSession(
			kgo.SeedBrokers(b.Addr()), kgo.TransactionalID("ctp"), kgo.TransactionTimeout(10*time.Second),
			kgo.ConsumerGroup("ctp-group"), kgo.ConsumeTopics("in"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond),
		)
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		ctx := protoCtx(t)
		done := 0
		aborted := false
		for done < stopAfter {
			fs := sess.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("transformed %d of %d before the timeout", done, stopAfter)
			}
			if err := sess.Begin(); err != nil {
				t.Fatal(err)
			}
			count := 0
			fs.EachRecord(func(r *kgo.Record) {
				sess.Produce(ctx, &kgo.Record{Topic: "out", Key: r.Key, Value: append([]byte("T-"), r.Value...)}, nil)
				count++
			})
			// Flush so that the records reach the log even when the
			// transaction is then aborted.
			if err := sess.Client().Flush(ctx); err != nil {
				t.Fatal(err)
			}
			commit := kgo.TryCommit
			if abortFirst && !aborted && count > 0 {
				commit, aborted = kgo.TryAbort, true // this batch is read again and redone
			}
			committed, err := sess.End(ctx, commit)
			if err != nil {
				t.Fatal(err)
			}
			if committed {
				done += count
			}
		}
		return done
	}
	first := transform(100, true)
	rest := transform(n-first, false)
	if first+rest != n {
		t.Fatalf("transformed %d + %d records, want %d", first, rest, n)
	}

	fence(t, b, "out", 3)
	got := readUntilFence(t, b, "out", 3, true)
	if len(got) != n {
		t.Fatalf("read_committed output has %d records, want exactly %d", len(got), n)
	}
	for i, v := range got {
		if want := fmt.Sprintf("T-v%03d", i); v != want {
			t.Fatalf("output record %d is %q, want %q (duplicates or gaps)", i, v, want)
		}
	}
	offsets, err := protoAdmin(t, b).FetchOffsets(protoCtx(t), "ctp-group")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	offsets.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != n {
		t.Fatalf("the group's committed offsets add up to %d, want %d", total, n)
	}
}

// A transactional producer that stops mid-transaction (a crash) has its
// transaction aborted after the timeout and is fenced; a new producer with
// the same id fences the old one at once.
func TestTransactionsTimeoutAbortsAndFences(t *testing.T) {
	b := protoBroker(t, map[string]string{"transaction.abort.timed.out.transaction.cleanup.interval.ms": "100"})
	protoCreateTopic(t, b, "tt", 3, nil)
	zombie := txnProducer(t, b, "crashy", kgo.TransactionTimeout(time.Second), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := zombie.ProduceSync(protoCtx(t), &kgo.Record{Topic: "tt", Partition: 1, Value: []byte("lost")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := protoAdmin(t, b)
	protoWait(t, "the timed-out transaction to be aborted", func() bool {
		d, err := adm.DescribeTransactions(protoCtx(t), "crashy")
		return err == nil && d["crashy"].State == "CompleteAbort"
	})
	// The zombie wakes up: its writes and its commit are refused.
	err := zombie.ProduceSync(protoCtx(t), &kgo.Record{Topic: "tt", Partition: 1, Value: []byte("late")}).FirstErr()
	if err == nil {
		if err = zombie.EndTransaction(protoCtx(t), kgo.TryCommit); err == nil {
			t.Fatal("a producer whose transaction timed out committed afterwards")
		}
	}
	if !errors.Is(err, kerr.InvalidProducerEpoch) && !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidTxnState) {
		t.Logf("fenced with %v", err)
	}

	// A new incarnation fences an old one that is still mid-transaction.
	old := txnProducer(t, b, "app", kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := old.ProduceSync(protoCtx(t), &kgo.Record{Topic: "tt", Partition: 2, Value: []byte("old")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fresh := txnProducer(t, b, "app", kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceTxn(t, fresh, "tt", true, "new")
	if err := old.EndTransaction(protoCtx(t), kgo.TryCommit); err == nil {
		t.Fatal("the fenced producer committed")
	} else if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("fenced producer got %v, want PRODUCER_FENCED", err)
	}

	fence(t, b, "tt", 3)
	if got := readUntilFence(t, b, "tt", 3, true); !slices.Equal(got, []string{"new"}) {
		t.Fatalf("read_committed saw %v, want only the new incarnation's record", got)
	}
}

// Transaction state and markers survive a restart: a committed
// transaction stays visible, and one left open is aborted (never half
// visible) once its timeout passes after the restart.
func TestTransactionsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	settings := map[string]string{"transaction.abort.timed.out.transaction.cleanup.interval.ms": "100"}
	b := protoBrokerAt(t, dir, settings)
	protoCreateTopic(t, b, "tr", 3, nil)
	done := txnProducer(t, b, "done", kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceTxn(t, done, "tr", true, "kept1", "kept2")
	produceTxn(t, done, "tr", false, "dropped")
	open := txnProducer(t, b, "open", kgo.TransactionTimeout(2*time.Second), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := open.ProduceSync(protoCtx(t), &kgo.Record{Topic: "tr", Partition: 0, Value: []byte("half")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	done.Close()
	open.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = protoBrokerAt(t, dir, settings)
	protoWait(t, "the open transaction to be aborted after the restart", func() bool {
		d, err := protoAdmin(t, b).DescribeTransactions(protoCtx(t), "open")
		return err == nil && d["open"].State == "CompleteAbort"
	})
	fence(t, b, "tr", 3)
	if got := readUntilFence(t, b, "tr", 3, true); !slices.Equal(got, []string{"kept1", "kept2"}) {
		t.Fatalf("after a restart read_committed saw %v", got)
	}
}

// Protocol errors: an unknown transactional id, a bad timeout, and a
// transactional produce to a partition not added to the transaction.
func TestTransactionErrors(t *testing.T) {
	b := protoBroker(t, nil)
	protoCreateTopic(t, b, "te", 1, nil)
	c := protoDial(t, b)

	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID = kmsg.StringPtr("te-txn")
	init.TransactionTimeoutMillis = 24 * 60 * 60 * 1000
	resp := c.roundTrip(init, 4).(*kmsg.InitProducerIDResponse)
	protoErr(t, "a one-day transaction timeout", resp.ErrorCode, kerr.InvalidTransactionTimeout)

	init.TransactionTimeoutMillis = 10000
	resp = c.roundTrip(init, 4).(*kmsg.InitProducerIDResponse)
	protoErr(t, "init", resp.ErrorCode, nil)

	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = "no-such-txn", resp.ProducerID, resp.ProducerEpoch, true
	protoErr(t, "EndTxn of an unknown id", c.roundTrip(end, 3).(*kmsg.EndTxnResponse).ErrorCode, kerr.InvalidProducerIDMapping)

	batch := protoBatch(t, protoBatchSpec{values: []string{"x"}, idempotent: true, producerID: resp.ProducerID, epoch: resp.ProducerEpoch})
	batch = markTransactional(t, batch)
	prod := kmsg.NewPtrProduceRequest()
	prod.TransactionID, prod.Acks, prod.TimeoutMillis = kmsg.StringPtr("te-txn"), -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "te"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = batch
	pt.Partitions = append(pt.Partitions, pp)
	prod.Topics = append(prod.Topics, pt)
	pr := c.roundTrip(prod, 9).(*kmsg.ProduceResponse)
	protoErr(t, "a transactional produce to a partition not in the transaction", pr.Topics[0].Partitions[0].ErrorCode, kerr.InvalidTxnState)
}

// markTransactional sets the transactional attribute of a hand-built batch
// and re-seals its CRC.
func markTransactional(t *testing.T, b []byte) []byte {
	t.Helper()
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	rb.Attributes |= 0x10
	raw := rb.AppendTo(nil)
	rb.CRC = int32(crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return rb.AppendTo(nil)
}

// Offsets a transaction commits stay invisible until it commits; a
// consumer asking for stable offsets meanwhile gets UNSTABLE_OFFSET_COMMIT.
func TestTransactionalOffsetCommit(t *testing.T) {
	b := protoBroker(t, nil)
	protoCreateTopic(t, b, "tx-in", 1, nil)
	c := protoDial(t, b)
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = kmsg.StringPtr("offsets-txn"), 10000
	ir := c.roundTrip(init, 4).(*kmsg.InitProducerIDResponse)
	protoErr(t, "init", ir.ErrorCode, nil)

	commit := kmsg.NewPtrTxnOffsetCommitRequest()
	commit.TransactionalID, commit.Group, commit.ProducerID, commit.ProducerEpoch = "offsets-txn", "g", ir.ProducerID, ir.ProducerEpoch
	ct := kmsg.NewTxnOffsetCommitRequestTopic()
	ct.Topic = "tx-in"
	cp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	cp.Partition, cp.Offset = 0, 42
	ct.Partitions = append(ct.Partitions, cp)
	commit.Topics = append(commit.Topics, ct)
	cr := c.roundTrip(commit, 3).(*kmsg.TxnOffsetCommitResponse)
	protoErr(t, "TxnOffsetCommit before AddOffsetsToTxn", cr.Topics[0].Partitions[0].ErrorCode, kerr.InvalidTxnState)

	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = "offsets-txn", ir.ProducerID, ir.ProducerEpoch, "g"
	protoErr(t, "AddOffsetsToTxn", c.roundTrip(add, 3).(*kmsg.AddOffsetsToTxnResponse).ErrorCode, nil)
	cr = c.roundTrip(commit, 3).(*kmsg.TxnOffsetCommitResponse)
	protoErr(t, "TxnOffsetCommit", cr.Topics[0].Partitions[0].ErrorCode, nil)

	// KIP-447: a commit naming a group member is fenced unless the member
	// and its generation (member epoch) are current.
	m := newHB(t, b, "live", "live-member")
	m.join("tx-in")
	add.Group = "live"
	protoErr(t, "AddOffsetsToTxn live", c.roundTrip(add, 3).(*kmsg.AddOffsetsToTxnResponse).ErrorCode, nil)
	live := *commit
	live.Group = "live"
	for _, tc := range []struct {
		member     string
		generation int32
		want       *kerr.Error
	}{
		{"ghost", m.epoch, kerr.UnknownMemberID},
		{"live-member", m.epoch + 1, kerr.IllegalGeneration},
		{"live-member", m.epoch, nil},
	} {
		live.MemberID, live.Generation = tc.member, tc.generation
		cr := c.roundTrip(&live, 3).(*kmsg.TxnOffsetCommitResponse)
		protoErr(t, fmt.Sprintf("TxnOffsetCommit by %s at generation %d", tc.member, tc.generation), cr.Topics[0].Partitions[0].ErrorCode, tc.want)
	}

	fetch := func(stable bool) kmsg.OffsetFetchResponseGroupTopicPartition {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.RequireStable = stable
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = "g"
		gt := kmsg.NewOffsetFetchRequestGroupTopic()
		gt.Topic, gt.Partitions = "tx-in", []int32{0}
		g.Topics = append(g.Topics, gt)
		req.Groups = append(req.Groups, g)
		resp := c.roundTrip(req, 8).(*kmsg.OffsetFetchResponse)
		return resp.Groups[0].Topics[0].Partitions[0]
	}
	protoErr(t, "a stable offset fetch during the transaction", fetch(true).ErrorCode, kerr.UnstableOffsetCommit)
	if p := fetch(false); p.ErrorCode != 0 || p.Offset != -1 {
		t.Fatalf("before the commit the group's offset is %d (error %d), want none", p.Offset, p.ErrorCode)
	}

	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = "offsets-txn", ir.ProducerID, ir.ProducerEpoch, true
	protoErr(t, "EndTxn", c.roundTrip(end, 3).(*kmsg.EndTxnResponse).ErrorCode, nil)
	protoErr(t, "a retried EndTxn", c.roundTrip(end, 3).(*kmsg.EndTxnResponse).ErrorCode, nil)
	if p := fetch(true); p.ErrorCode != 0 || p.Offset != 42 {
		t.Fatalf("after the commit the group's offset is %d (error %d), want 42", p.Offset, p.ErrorCode)
	}
}
