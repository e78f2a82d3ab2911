package share

import (
	"testing"
	"time"
)

func TestSharePartitionLifecycle(t *testing.T) {
	now := time.Now()
	sp := &sharePartition{start: 100}
	got := sp.acquire("a", 100, 109, 4, 2000, now.Add(time.Second))
	if len(got) != 1 || got[0] != (acquireRange{100, 103, 1}) {
		t.Fatalf("acquire: %+v", got)
	}
	// Another member gets the next ones, not the held ones.
	if got := sp.acquire("b", sp.firstAvailable(), 109, 100, 2000, now.Add(time.Second)); len(got) != 1 || got[0] != (acquireRange{104, 109, 1}) {
		t.Fatalf("second acquire: %+v", got)
	}
	if sp.acknowledge("b", 100, ackAccept, 3, now) {
		t.Fatal("b acknowledged a record a holds")
	}
	for off := int64(100); off <= 103; off++ {
		if !sp.acknowledge("a", off, ackAccept, 3, now) {
			t.Fatalf("a could not accept %d", off)
		}
	}
	if !sp.advance() || sp.start != 104 {
		t.Fatalf("start %d after accepting the first four, want 104", sp.start)
	}
	// b's lock expires: its records come back for a second delivery.
	if !sp.expire(now.Add(2*time.Second), 3) {
		t.Fatal("nothing expired")
	}
	if got := sp.acquire("a", sp.firstAvailable(), 109, 100, 2000, now.Add(3*time.Second)); len(got) != 1 || got[0] != (acquireRange{104, 109, 2}) {
		t.Fatalf("redelivery: %+v", got)
	}
	// Reject one, release the rest twice more: past the limit they are archived.
	sp.acknowledge("a", 104, ackReject, 3, now)
	for off := int64(105); off <= 109; off++ {
		sp.acknowledge("a", off, ackRelease, 3, now)
	}
	sp.acquire("a", sp.firstAvailable(), 109, 100, 2000, now.Add(time.Second))
	if !sp.releaseMember("a", 3) {
		t.Fatal("releaseMember released nothing")
	}
	sp.advance()
	if sp.start != 110 || len(sp.inflight) != 0 {
		t.Fatalf("start %d with %d in flight, want everything done at 110", sp.start, len(sp.inflight))
	}
}

func TestSharePartitionBoundsInflight(t *testing.T) {
	sp := &sharePartition{start: 0}
	got := sp.acquire("a", 0, 1_000_000, 1_000_000, 100, time.Now().Add(time.Second))
	if len(got) != 1 || got[0].last != 99 {
		t.Fatalf("acquired %+v, want at most 100 records in flight", got)
	}
	sp.skipTo(50) // retention removed the first 50
	if sp.start != 50 || sp.end() != 100 {
		t.Fatalf("after skipTo: start %d end %d", sp.start, sp.end())
	}
}
