// Package txn is the transaction coordinator: it keeps, per transactional
// id, the producer id and epoch, the partitions and consumer groups a
// transaction touched, and the offsets it will commit; and it ends a
// transaction by writing COMMIT or ABORT markers to each partition (and
// applying or discarding its offsets). Transactions that outlive their
// timeout are aborted and their producer fenced. Every state change is
// persisted before it is answered, and a transaction caught between
// "prepare" and "complete" by a crash is completed on start, so a
// transaction is never left half visible.
package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/creek-pipeline/creek/internal/clock"
	"github.com/creek-pipeline/creek/internal/guard"
)

// State is a transaction's state, named as Kafka names it.
type State string

const (
	Empty          State = "Empty"
	Ongoing        State = "Ongoing"
	PrepareCommit  State = "PrepareCommit"
	PrepareAbort   State = "PrepareAbort"
	CompleteCommit State = "CompleteCommit"
	CompleteAbort  State = "CompleteAbort"
)

// Partition is a topic partition.
type Partition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// Offset is an offset a transaction commits for a group.
type Offset struct {
	Partition
	Offset      int64  `json:"offset"`
	LeaderEpoch int32  `json:"leader_epoch"`
	Metadata    string `json:"metadata,omitempty"`
}

// Txn is the persisted state of one transactional id.
type Txn struct {
	ID         string              `json:"id"`
	ProducerID int64               `json:"producer_id"`
	Epoch      int16               `json:"epoch"`
	TimeoutMs  int32               `json:"timeout_ms"`
	State      State               `json:"state"`
	Partitions []Partition         `json:"partitions,omitempty"`
	Groups     []string            `json:"groups,omitempty"`
	Offsets    map[string][]Offset `json:"offsets,omitempty"` // group -> pending offsets
	Started    time.Time           `json:"started"`           // when the open transaction began
	Updated    time.Time           `json:"updated"`
}

func (t *Txn) open() bool { return t.State == Ongoing }

// preparing reports a transaction whose end was decided but not completed
// (its markers could not all be written); it is completed on the next
// EndTxn, InitProducerId or start.
func (t *Txn) preparing() bool { return t.State == PrepareCommit || t.State == PrepareAbort }

func (t *Txn) hasPartition(p Partition) bool {
	for _, q := range t.Partitions {
		if q == p {
			return true
		}
	}
	return false
}

// Store persists transactions (the broker's metadata store).
type Store interface {
	LoadTxns() ([]Txn, error)
	SaveTxn(Txn) error
}

// Env is what the coordinator needs from the rest of the broker.
type Env interface {
	NextProducerID() (int64, error)
	// WriteMarker appends a COMMIT or ABORT marker for the producer to a
	// partition and returns once it is on disk. A partition that no
	// longer exists is not an error.
	WriteMarker(p Partition, producerID int64, epoch int16, commit bool) error
	// CommitOffsets applies a committed transaction's offsets to a group.
	CommitOffsets(group string, offsets []Offset) error
}

// Config holds the coordinator's settings.
type Config struct {
	MaxTimeout      time.Duration // transaction.max.timeout.ms
	AbortCheckEvery time.Duration // transaction.abort.timed.out.transaction.cleanup.interval.ms

	Clock clock.Clock // drives transaction timeouts; nil: the wall clock
}

// Coordinator is the transaction coordinator of the node.
type Coordinator struct {
	cfg    Config
	store  Store
	env    Env
	logger *slog.Logger
	clock  clock.Clock

	mu     sync.Mutex // held while a transaction ends, markers included
	txns   map[string]*Txn
	closed bool
}

// New loads the persisted transactions and completes those a crash left
// between prepare and complete.
func New(cfg Config, store Store, env Env, logger *slog.Logger) (*Coordinator, error) {
	c := &Coordinator{cfg: cfg, store: store, env: env, logger: logger, clock: clock.Or(cfg.Clock), txns: map[string]*Txn{}}
	loaded, err := store.LoadTxns()
	if err != nil {
		return nil, fmt.Errorf("load transactions: %w", err)
	}
	for i := range loaded {
		t := &loaded[i]
		c.txns[t.ID] = t
		if t.State == PrepareCommit || t.State == PrepareAbort {
			c.logger.Info("completing a transaction interrupted by a restart", "transactional_id", t.ID, "state", t.State)
			if err := c.complete(t, t.State == PrepareCommit); err != nil {
				return nil, fmt.Errorf("complete transaction %q: %w", t.ID, err)
			}
		}
	}
	return c, nil
}

// Run aborts timed-out transactions until ctx ends.
func (c *Coordinator) Run(ctx context.Context) {
	every := c.cfg.AbortCheckEvery
	if every <= 0 {
		every = 10 * time.Second
	}
	checks := clock.NewEvery(c.clock, every, guard.Func(c.logger, "transaction timeout check", c.AbortTimedOut))
	<-ctx.Done()
	checks.Stop()
}

func (c *Coordinator) now() time.Time { return c.clock.Now() }

// Close makes later requests fail with NOT_COORDINATOR.
func (c *Coordinator) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}

// MaxIDBytes is the longest transactional (or group) id a client may give:
// what the int16 length of a non-flexible answer can carry.
const MaxIDBytes = math.MaxInt16

// ErrNotCoordinator is returned once the coordinator is closed.
var errClosed = fmt.Errorf("%w: the broker is shutting down", kerr.NotCoordinator)

// InitProducerID gives a transactional id its producer id and a new epoch,
// aborting the transaction a previous incarnation left open (fencing it).
// producerID and epoch are the caller's current ones (KIP-360), or -1.
func (c *Coordinator) InitProducerID(id string, timeout time.Duration, producerID int64, epoch int16) (int64, int16, error) {
	if len(id) > MaxIDBytes {
		return -1, -1, fmt.Errorf("%w: the transactional id is %d bytes, at most %d are allowed", kerr.InvalidRequest, len(id), MaxIDBytes)
	}
	if timeout <= 0 || timeout > c.cfg.MaxTimeout {
		return -1, -1, fmt.Errorf("%w: %s is outside (0, transaction.max.timeout.ms = %s]", kerr.InvalidTransactionTimeout, timeout, c.cfg.MaxTimeout)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return -1, -1, errClosed
	}
	t := c.txns[id]
	if t == nil {
		pid, err := c.env.NextProducerID()
		if err != nil {
			return -1, -1, err
		}
		t = &Txn{ID: id, ProducerID: pid, Epoch: 0, State: Empty}
	} else {
		if producerID >= 0 && (producerID != t.ProducerID || epoch != t.Epoch) {
			return -1, -1, fmt.Errorf("%w: producer %d epoch %d is not the current incarnation of %q", kerr.ProducerFenced, producerID, epoch, id)
		}
		if t.preparing() {
			if err := c.complete(t, t.State == PrepareCommit); err != nil {
				return -1, -1, err
			}
		}
		if t.open() {
			// The previous producer crashed or was replaced mid-transaction:
			// abort at a new epoch so its late writes are refused.
			t.Epoch++
			if err := c.end(t, false); err != nil {
				return -1, -1, err
			}
		}
		if t.Epoch == 32767 { // epochs are exhausted: a new producer id starts again at 0
			pid, err := c.env.NextProducerID()
			if err != nil {
				return -1, -1, err
			}
			t.ProducerID, t.Epoch = pid, -1
		}
		t.Epoch++
		t.State = Empty
	}
	t.TimeoutMs = int32(timeout.Milliseconds())
	t.Partitions, t.Groups, t.Offsets = nil, nil, nil
	if err := c.save(t); err != nil {
		return -1, -1, err
	}
	c.txns[id] = t
	return t.ProducerID, t.Epoch, nil
}

// check finds the transaction of a producer and checks its epoch.
func (c *Coordinator) check(id string, producerID int64, epoch int16) (*Txn, error) {
	if c.closed {
		return nil, errClosed
	}
	t := c.txns[id]
	switch {
	case t == nil || t.ProducerID != producerID:
		return nil, fmt.Errorf("%w: %q has no producer %d", kerr.InvalidProducerIDMapping, id, producerID)
	case epoch < t.Epoch:
		return nil, fmt.Errorf("%w: epoch %d of %q was fenced by epoch %d", kerr.ProducerFenced, epoch, id, t.Epoch)
	case epoch > t.Epoch:
		return nil, fmt.Errorf("%w: epoch %d of %q is newer than the coordinator's %d", kerr.InvalidProducerEpoch, epoch, id, t.Epoch)
	}
	return t, nil
}

// checkOpenable is check for the requests that add to a transaction: they
// wait (a retriable error) while the previous one is still completing.
func (c *Coordinator) checkOpenable(id string, producerID int64, epoch int16) (*Txn, error) {
	t, err := c.check(id, producerID, epoch)
	if err == nil && t.preparing() {
		return nil, fmt.Errorf("%w: the previous transaction of %q is still completing", kerr.ConcurrentTransactions, id)
	}
	return t, err
}

// begin moves a transaction to Ongoing on its first partition or group.
func (c *Coordinator) begin(t *Txn) {
	if !t.open() {
		t.State, t.Started = Ongoing, c.now()
		t.Partitions, t.Groups, t.Offsets = nil, nil, nil
	}
}

// AddPartitions adds partitions to a producer's transaction; with
// verifyOnly (AddPartitionsToTxn v4+ from a broker) it only reports
// whether they are already part of it.
func (c *Coordinator) AddPartitions(id string, producerID int64, epoch int16, parts []Partition, verifyOnly bool) (map[Partition]error, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, err := c.checkOpenable(id, producerID, epoch)
	if err != nil {
		return nil, err
	}
	out := map[Partition]error{}
	if verifyOnly {
		for _, p := range parts {
			if !t.open() || !t.hasPartition(p) {
				out[p] = kerr.InvalidTxnState
			} else {
				out[p] = nil
			}
		}
		return out, nil
	}
	c.begin(t)
	for _, p := range parts {
		if !t.hasPartition(p) {
			t.Partitions = append(t.Partitions, p)
		}
		out[p] = nil
	}
	return out, c.save(t)
}

// AddOffsets adds a consumer group to a producer's transaction, so that
// TxnOffsetCommit may commit its offsets.
func (c *Coordinator) AddOffsets(id string, producerID int64, epoch int16, group string) error {
	if len(group) > MaxIDBytes {
		return fmt.Errorf("%w: the group id is %d bytes, at most %d are allowed", kerr.InvalidGroupID, len(group), MaxIDBytes)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t, err := c.checkOpenable(id, producerID, epoch)
	if err != nil {
		return err
	}
	c.begin(t)
	for _, g := range t.Groups {
		if g == group {
			return nil
		}
	}
	t.Groups = append(t.Groups, group)
	return c.save(t)
}

// CommitOffsets records offsets a transaction commits for a group when
// (and only if) it commits.
func (c *Coordinator) CommitOffsets(id string, producerID int64, epoch int16, group string, offsets []Offset) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, err := c.checkOpenable(id, producerID, epoch)
	if err != nil {
		return err
	}
	added := false
	for _, g := range t.Groups {
		added = added || g == group
	}
	if !t.open() || !added {
		return fmt.Errorf("%w: group %q was not added to the transaction of %q (AddOffsetsToTxn)", kerr.InvalidTxnState, group, id)
	}
	if t.Offsets == nil {
		t.Offsets = map[string][]Offset{}
	}
	pending := t.Offsets[group]
	for _, o := range offsets {
		replaced := false
		for i := range pending {
			if pending[i].Partition == o.Partition {
				pending[i], replaced = o, true
			}
		}
		if !replaced {
			pending = append(pending, o)
		}
	}
	t.Offsets[group] = pending
	return c.save(t)
}

// CheckProduce allows a transactional produce only to partitions added to
// the producer's open transaction (which also keeps a fenced producer out).
func (c *Coordinator) CheckProduce(id string, producerID int64, epoch int16, p Partition) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, err := c.checkOpenable(id, producerID, epoch)
	if err != nil {
		return err
	}
	if !t.open() || !t.hasPartition(p) {
		return fmt.Errorf("%w: %s/%d was not added to the transaction of %q (AddPartitionsToTxn)", kerr.InvalidTxnState, p.Topic, p.Partition, id)
	}
	return nil
}

// End commits or aborts a producer's transaction. Ending a transaction
// that has just ended the same way succeeds (a retried EndTxn).
func (c *Coordinator) End(id string, producerID int64, epoch int16, commit bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, err := c.check(id, producerID, epoch)
	if err != nil {
		return err
	}
	switch {
	case t.open():
		return c.end(t, commit)
	case commit && t.State == PrepareCommit, !commit && t.State == PrepareAbort:
		return c.complete(t, commit) // a retry after markers failed
	case commit && t.State == CompleteCommit, !commit && t.State == CompleteAbort:
		return nil
	case !commit && t.State == Empty:
		return nil // nothing was added: nothing to abort
	}
	return fmt.Errorf("%w: %q is %s, cannot %s", kerr.InvalidTxnState, id, t.State, map[bool]string{true: "commit", false: "abort"}[commit])
}

// end prepares, persists, then completes a transaction.
func (c *Coordinator) end(t *Txn, commit bool) error {
	t.State = PrepareAbort
	if commit {
		t.State = PrepareCommit
	}
	if err := c.save(t); err != nil {
		return err
	}
	return c.complete(t, commit)
}

// complete writes the markers, applies or drops the offsets and records
// the outcome. It is repeated from the start after a crash: a marker
// written twice is harmless (the second finds no open transaction).
func (c *Coordinator) complete(t *Txn, commit bool) error {
	for _, p := range t.Partitions {
		if err := c.env.WriteMarker(p, t.ProducerID, t.Epoch, commit); err != nil {
			return fmt.Errorf("write %s marker to %s/%d: %w", map[bool]string{true: "commit", false: "abort"}[commit], p.Topic, p.Partition, err)
		}
	}
	if commit {
		groups := make([]string, 0, len(t.Offsets))
		for g := range t.Offsets {
			groups = append(groups, g)
		}
		sort.Strings(groups)
		for _, g := range groups {
			if err := c.env.CommitOffsets(g, t.Offsets[g]); err != nil {
				return fmt.Errorf("commit offsets of group %q: %w", g, err)
			}
		}
		t.State = CompleteCommit
	} else {
		t.State = CompleteAbort
	}
	t.Offsets = nil
	return c.save(t)
}

// AbortTimedOut aborts every transaction open for longer than its timeout,
// bumping the epoch so that the producer, if it is still alive, is fenced.
func (c *Coordinator) AbortTimedOut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	now := c.now()
	for _, t := range c.sortedLocked() {
		if t.preparing() { // markers failed earlier: try again
			if err := c.complete(t, t.State == PrepareCommit); err != nil {
				c.logger.Error("could not complete a transaction; will retry", "transactional_id", t.ID, "err", err)
			}
			continue
		}
		if !t.open() || now.Sub(t.Started) < time.Duration(t.TimeoutMs)*time.Millisecond {
			continue
		}
		c.logger.Info("aborting a transaction that exceeded its timeout", "transactional_id", t.ID, "producer_id", t.ProducerID, "timeout_ms", t.TimeoutMs)
		t.Epoch++
		if err := c.end(t, false); err != nil {
			c.logger.Error("could not abort a timed-out transaction; will retry", "transactional_id", t.ID, "err", err)
		}
	}
}

// HasPendingOffsets reports whether an open transaction will commit an
// offset for the group's partition (OffsetFetch's require_stable).
func (c *Coordinator) HasPendingOffsets(group string, p Partition) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.txns {
		if !t.open() {
			continue
		}
		for _, o := range t.Offsets[group] {
			if o.Partition == p {
				return true
			}
		}
	}
	return false
}

// Describe returns copies of the named transactions; missing ones are nil.
func (c *Coordinator) Describe(ids []string) []*Txn {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Txn, len(ids))
	for i, id := range ids {
		if t := c.txns[id]; t != nil {
			cp := *t
			out[i] = &cp
		}
	}
	return out
}

// List returns copies of every transaction, sorted by id.
func (c *Coordinator) List() []Txn {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Txn
	for _, t := range c.sortedLocked() {
		out = append(out, *t)
	}
	return out
}

func (c *Coordinator) sortedLocked() []*Txn {
	out := make([]*Txn, 0, len(c.txns))
	for _, t := range c.txns {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (c *Coordinator) save(t *Txn) error {
	t.Updated = c.now()
	if err := c.store.SaveTxn(*t); err != nil {
		return errors.Join(kerr.KafkaStorageError, fmt.Errorf("persist transaction %q: %w", t.ID, err))
	}
	return nil
}
