package txn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/creek-pipeline/creek/internal/clock"
)

// memStore keeps saved transactions as a crash would leave them: the last
// save of each id.
type memStore struct{ saved map[string]Txn }

func (s *memStore) LoadTxns() ([]Txn, error) {
	var out []Txn
	for _, t := range s.saved {
		out = append(out, t)
	}
	return out, nil
}

func (s *memStore) SaveTxn(t Txn) error {
	t.Partitions = slices.Clone(t.Partitions)
	s.saved[t.ID] = t
	return nil
}

// recordingEnv records markers and offset commits; failMarkers makes
// marker writes fail, like a crash in the middle of ending a transaction.
type recordingEnv struct {
	nextPID     int64
	markers     []string
	offsets     map[string][]Offset
	failMarkers bool
}

func (e *recordingEnv) NextProducerID() (int64, error) { e.nextPID++; return e.nextPID, nil }

func (e *recordingEnv) WriteMarker(p Partition, pid int64, epoch int16, commit bool) error {
	if e.failMarkers {
		return errors.New("disk gone")
	}
	e.markers = append(e.markers, fmt.Sprintf("%s/%d pid=%d epoch=%d commit=%v", p.Topic, p.Partition, pid, epoch, commit))
	return nil
}

func (e *recordingEnv) CommitOffsets(group string, offsets []Offset) error {
	if e.offsets == nil {
		e.offsets = map[string][]Offset{}
	}
	e.offsets[group] = append(e.offsets[group], offsets...)
	return nil
}

func newTest(t *testing.T, store *memStore, env *recordingEnv) *Coordinator {
	t.Helper()
	c, err := New(Config{MaxTimeout: time.Minute}, store, env, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A crash after a commit was prepared but before its markers were all
// written: the next start finishes the commit, markers and offsets.
func TestPreparedCommitIsCompletedOnStart(t *testing.T) {
	store, env := &memStore{saved: map[string]Txn{}}, &recordingEnv{}
	c := newTest(t, store, env)
	pid, epoch, err := c.InitProducerID("t1", 10*time.Second, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddPartitions("t1", pid, epoch, []Partition{{"a", 0}, {"b", 1}}, false); err != nil {
		t.Fatal(err)
	}
	if err := c.AddOffsets("t1", pid, epoch, "g"); err != nil {
		t.Fatal(err)
	}
	if err := c.CommitOffsets("t1", pid, epoch, "g", []Offset{{Partition: Partition{"in", 0}, Offset: 7}}); err != nil {
		t.Fatal(err)
	}
	env.failMarkers = true
	if err := c.End("t1", pid, epoch, true); err == nil {
		t.Fatal("End succeeded although no marker could be written")
	}
	if s := store.saved["t1"].State; s != PrepareCommit {
		t.Fatalf("persisted state %s, want PrepareCommit", s)
	}
	if _, err := c.AddPartitions("t1", pid, epoch, []Partition{{"a", 0}}, false); !errors.Is(err, kerr.ConcurrentTransactions) {
		t.Fatalf("adding to a transaction still completing: %v", err)
	}

	env2 := &recordingEnv{nextPID: 100}
	c2 := newTest(t, store, env2)
	want := []string{fmt.Sprintf("a/0 pid=%d epoch=%d commit=true", pid, epoch), fmt.Sprintf("b/1 pid=%d epoch=%d commit=true", pid, epoch)}
	if !slices.Equal(env2.markers, want) {
		t.Fatalf("markers written on start: %v, want %v", env2.markers, want)
	}
	if got := env2.offsets["g"]; len(got) != 1 || got[0].Offset != 7 {
		t.Fatalf("offsets committed on start: %v", env2.offsets)
	}
	if d := c2.Describe([]string{"t1"})[0]; d.State != CompleteCommit {
		t.Fatalf("state after start %s", d.State)
	}
}

// Fencing and state rules, with Kafka's error codes.
func TestEpochsAndStates(t *testing.T) {
	store, env := &memStore{saved: map[string]Txn{}}, &recordingEnv{}
	c := newTest(t, store, env)
	if _, _, err := c.InitProducerID("t", 2*time.Minute, -1, -1); !errors.Is(err, kerr.InvalidTransactionTimeout) {
		t.Fatalf("timeout over the maximum: %v", err)
	}
	pid, e0, _ := c.InitProducerID("t", time.Second, -1, -1)
	if _, err := c.AddPartitions("t", pid, e0, []Partition{{"x", 0}}, false); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckProduce("t", pid, e0, Partition{"x", 1}); !errors.Is(err, kerr.InvalidTxnState) {
		t.Fatalf("produce to a partition not added: %v", err)
	}
	// A second incarnation aborts the open transaction at a new epoch.
	pid2, e1, err := c.InitProducerID("t", time.Second, -1, -1)
	if err != nil || pid2 != pid || e1 != e0+2 {
		t.Fatalf("re-init: pid %d epoch %d err %v (first was pid %d epoch %d)", pid2, e1, err, pid, e0)
	}
	if len(env.markers) != 1 || env.markers[0] != fmt.Sprintf("x/0 pid=%d epoch=%d commit=false", pid, e0+1) {
		t.Fatalf("abort markers: %v", env.markers)
	}
	if err := c.End("t", pid, e0, true); !errors.Is(err, kerr.ProducerFenced) {
		t.Fatalf("the old incarnation's commit: %v", err)
	}
	if err := c.End("t", pid, e1, true); !errors.Is(err, kerr.InvalidTxnState) {
		t.Fatalf("commit with nothing in the transaction: %v", err)
	}
	if err := c.End("t", pid+1, e1, false); !errors.Is(err, kerr.InvalidProducerIDMapping) {
		t.Fatalf("another producer id: %v", err)
	}
	// A transaction past its timeout is aborted at a bumped epoch.
	if _, err := c.AddPartitions("t", pid, e1, []Partition{{"x", 0}}, false); err != nil {
		t.Fatal(err)
	}
	c.clock = clock.NewFake(time.Now().Add(2 * time.Second))
	c.AbortTimedOut()
	if d := c.Describe([]string{"t"})[0]; d.State != CompleteAbort || d.Epoch != e1+1 {
		t.Fatalf("after the timeout: %s epoch %d", d.State, d.Epoch)
	}
	if err := c.CheckProduce("t", pid, e1, Partition{"x", 0}); !errors.Is(err, kerr.ProducerFenced) {
		t.Fatalf("a write after the timeout abort: %v", err)
	}
}

// Run checks for timed-out transactions on the coordinator's clock: a fake
// one moves them past their timeout without waiting.
func TestRunAbortsTimedOutTransactionsOnTheClock(t *testing.T) {
	store, env := &memStore{saved: map[string]Txn{}}, &recordingEnv{}
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c, err := New(Config{MaxTimeout: time.Minute, AbortCheckEvery: 10 * time.Second, Clock: clk}, store, env, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := c.InitProducerID("slow", 30*time.Second, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddPartitions("slow", pid, epoch, []Partition{{"x", 0}}, false); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { c.Run(ctx); close(ran) }()
	defer func() { stop(); <-ran }()
	for clk.Pending() == 0 { // Run has set its first check
		runtime.Gosched()
	}
	clk.Advance(20 * time.Second)
	if d := c.Describe([]string{"slow"})[0]; d.State != Ongoing {
		t.Fatalf("within its timeout the transaction is %s", d.State)
	}
	clk.Advance(10 * time.Second) // the check at 30 s finds it at its timeout
	if d := c.Describe([]string{"slow"})[0]; d.State != CompleteAbort || d.Epoch != epoch+1 {
		t.Fatalf("after its timeout: %s at epoch %d", d.State, d.Epoch)
	}
	if len(env.markers) != 1 {
		t.Fatalf("abort markers: %v", env.markers)
	}
}
