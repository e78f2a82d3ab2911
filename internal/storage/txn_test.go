package storage

import (
	"errors"
	"reflect"
	"testing"
)

// Transactional batches hold the last stable offset back until their
// marker; aborted transactions are listed for read_committed fetches, and
// all of it survives a crash.
func TestTransactionsBoundTheLastStableOffset(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, DefaultConfig())
	mustAppend := func(sp batchSpec) int64 {
		t.Helper()
		r, err := l.Append(makeBatch(t, sp))
		if err != nil {
			t.Fatal(err)
		}
		return r.BaseOffset
	}
	marker := func(l *Log, pid int64, epoch int16, commit bool) int64 {
		t.Helper()
		o, err := l.AppendMarker(pid, epoch, commit, 0)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}

	mustAppend(batchSpec{values: []string{"plain"}})                                // 0
	txStart := mustAppend(batchSpec{values: []string{"a", "b"}, pid: 1, txn: true}) // 1-2
	mustAppend(batchSpec{values: []string{"idem"}, pid: 2})                         // 3
	if lso := l.LastStableOffset(); lso != txStart {
		t.Fatalf("LSO %d with a transaction open at %d", lso, txStart)
	}
	res, err := l.ReadUpTo(0, 1<<20, true, l.LastStableOffset())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := res.Chunk.Bytes()
	if got := len(raw); got != batchLen(raw) {
		t.Fatalf("read_committed read %d bytes: more than the batch below the LSO", got)
	}
	if res, _ := l.ReadUpTo(txStart, 1<<20, true, txStart); res.Chunk.Len != 0 {
		t.Fatal("a read at the LSO returned data")
	}

	commitAt := marker(l, 1, 0, true) // 4
	if lso, _ := l.Offsets(); l.LastStableOffset() != commitAt+1 {
		t.Fatalf("LSO %d after the commit marker at %d (start %d)", l.LastStableOffset(), commitAt, lso)
	}
	if a := l.AbortedTxns(0, 100); len(a) != 0 {
		t.Fatalf("aborted after a commit: %v", a)
	}

	abortStart := mustAppend(batchSpec{values: []string{"x"}, pid: 1, seq: 2, txn: true}) // 5
	abortAt := marker(l, 1, 0, false)                                                     // 6
	want := []AbortedTxn{{ProducerID: 1, FirstOffset: abortStart, LastOffset: abortAt}}
	if a := l.AbortedTxns(0, 100); !reflect.DeepEqual(a, want) {
		t.Fatalf("aborted %v, want %v", a, want)
	}
	if a := l.AbortedTxns(abortAt+1, 100); len(a) != 0 {
		t.Fatalf("aborted transactions ending before the fetch offset are listed: %v", a)
	}

	// An open transaction and the aborted list survive a crash (no Close).
	openAt := mustAppend(batchSpec{values: []string{"open"}, pid: 3, txn: true})
	l2 := openTest(t, dir, DefaultConfig())
	if lso := l2.LastStableOffset(); lso != openAt {
		t.Fatalf("after a crash LSO %d, want %d (the open transaction)", lso, openAt)
	}
	if a := l2.AbortedTxns(0, 100); !reflect.DeepEqual(a, want) {
		t.Fatalf("after a crash aborted %v, want %v", a, want)
	}
	// A marker with a newer epoch (a timed-out transaction aborted by the
	// coordinator) fences the producer's older epoch.
	marker(l2, 3, 1, false)
	if _, err := l2.Append(makeBatch(t, batchSpec{values: []string{"zombie"}, pid: 3, seq: 1, txn: true})); !errors.Is(err, ErrInvalidEpoch) {
		t.Fatalf("a write from the fenced epoch: %v", err)
	}
	if _, err := l2.AppendMarker(3, 0, true, 0); !errors.Is(err, ErrInvalidEpoch) {
		t.Fatalf("a marker from an older epoch: %v", err)
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	l3 := openTest(t, dir, DefaultConfig())
	if lso, end := l3.LastStableOffset(), l3.active().next; lso != end {
		t.Fatalf("after a clean restart LSO %d, end %d", lso, end)
	}
	if a := l3.AbortedTxns(0, 100); len(a) != 2 || a[1].ProducerID != 3 {
		t.Fatalf("after a clean restart aborted %v", a)
	}
	for _, p := range l3.Producers() {
		if p.TxnStart != -1 {
			t.Fatalf("producer %d still has an open transaction", p.ProducerID)
		}
	}

	// A transaction open at a clean close holds the LSO back once the log
	// is opened again from its snapshot.
	openAgain := func() int64 {
		r, err := l3.Append(makeBatch(t, batchSpec{values: []string{"open at close"}, pid: 4, txn: true}))
		if err != nil {
			t.Fatal(err)
		}
		return r.BaseOffset
	}()
	if err := l3.Close(); err != nil {
		t.Fatal(err)
	}
	l4 := openTest(t, dir, DefaultConfig())
	defer l4.Close()
	if lso := l4.LastStableOffset(); lso != openAgain {
		t.Fatalf("after a clean restart with a transaction open: LSO %d, want %d", lso, openAgain)
	}
}

// A partition that never saw a transaction has its end as LSO, whatever
// its idempotent producers.
func TestLastStableOffsetWithoutTransactions(t *testing.T) {
	l := openTest(t, t.TempDir(), DefaultConfig())
	defer l.Close()
	for pid := range int64(3) {
		if _, err := l.Append(makeBatch(t, batchSpec{values: []string{"a"}, pid: pid + 1})); err != nil {
			t.Fatal(err)
		}
	}
	if lso, end := l.LastStableOffset(), l.active().next; lso != end || l.txnsSeen {
		t.Fatalf("LSO %d, end %d, transactions seen %v", lso, end, l.txnsSeen)
	}
}

// Markers read back as control batches with the COMMIT/ABORT key.
func TestMarkerBatchDecodes(t *testing.T) {
	for _, commit := range []bool{true, false} {
		rb, err := decodeBatch(markerBatch(9, 2, commit, 5, 1000))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := markerCommits(&rb)
		if !ok || got != commit || !isControl(&rb) || !isTransactional(&rb) || rb.ProducerID != 9 || rb.ProducerEpoch != 2 {
			t.Fatalf("marker %v decoded as commit=%v ok=%v %+v", commit, got, ok, rb)
		}
	}
}
