// Package share is the coordinator of KIP-932 share groups, Kafka's queues:
// the members of a share group read the same partitions together, each
// record is handed to one member at a time under an acquisition lock, and a
// record the member accepts is gone for the group, as a job taken from a
// queue. Records it releases, or whose lock expires, go to the next member;
// rejected ones, and ones delivered group.share.delivery.count.limit times,
// are archived.
//
// share.go holds the coordinator and its groups, heartbeat.go
// ShareGroupHeartbeat, admin.go describing, listing and deleting groups and
// their offsets, configs.go the group configs, store.go what is persisted,
// expiry.go sessions and locks that run out, partition.go the
// per-partition record states, and fetch.go the share sessions of
// ShareFetch and ShareAcknowledge. group.Front puts share groups in one
// name space with the other kinds.
package share

import (
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/creek-pipeline/creek/internal/clock"
	"github.com/creek-pipeline/creek/internal/guard"
	"github.com/creek-pipeline/creek/internal/storage"
)

// MaxNameBytes is the longest group or member id a client may give: what
// the int16 length of a non-flexible answer (ListGroups, DescribeConfigs)
// can carry.
const MaxNameBytes = math.MaxInt16

// Config holds the share coordinator's settings (Kafka's names).
type Config struct {
	SessionTimeout    time.Duration // group.share.session.timeout.ms
	HeartbeatInterval time.Duration // group.share.heartbeat.interval.ms
	LockDuration      time.Duration // group.share.record.lock.duration.ms
	DeliveryLimit     int16         // group.share.delivery.count.limit
	MaxRecordLocks    int64         // group.share.partition.max.record.locks
	MaxSize           int           // group.share.max.size
	ReadCommitted     bool          // share.isolation.level=read_committed (a group config only)

	Clock clock.Clock // drives sessions, acquisition locks and fetch waits; nil: the wall clock
}

// Topics is what the coordinator needs of the broker's topics.
type Topics interface {
	TopicByName(name string) (id [16]byte, partitions int32, ok bool)
	TopicByID(id [16]byte) (name string, partitions int32, ok bool)
	Log(topic string, partition int32) (*storage.Log, bool)
}

// Client identifies who sent a request.
type Client struct {
	ID   string
	Host string
}

type topicPartition struct {
	topic     string
	partition int32
}

// Coordinator coordinates every share group of the broker.
type Coordinator struct {
	cfg    Config
	topics Topics
	store  Store
	logger *slog.Logger
	clock  clock.Clock

	mu        sync.Mutex
	groups    map[string]*group
	configs   map[string]map[string]string // group configs by group
	effective map[string]*Config           // the settings of groups with configs of their own (configs.go)
	sessions  map[sessionKey]*session
	changed   chan struct{} // closed and replaced when records become available
	closed    bool

	expiry *clock.Every // lock and session expiry
}

// group is one share group.
type group struct {
	name       string
	epoch      int32
	members    map[string]*member
	partitions map[topicPartition]*sharePartition
	dirty      bool // partitions or start offsets changed since the last save
}

// member is one member of a share group.
type member struct {
	id         string
	clientID   string
	clientHost string
	rackID     *string
	topics     []string
	epoch      int32
	sent       string // the assignment last sent, to send it again only when it changes
	deadline   time.Time
}

// New loads the persisted share groups and starts lock and session expiry.
func New(cfg Config, topics Topics, store Store, logger *slog.Logger) (*Coordinator, error) {
	if logger == nil {
		logger = slog.Default()
	}
	c := &Coordinator{
		cfg: cfg, topics: topics, store: store, logger: logger, clock: clock.Or(cfg.Clock),
		groups:   map[string]*group{},
		sessions: map[sessionKey]*session{},
		changed:  make(chan struct{}),
	}
	saved, err := store.LoadShareGroups()
	if err != nil {
		return nil, err
	}
	if c.configs, err = store.LoadGroupConfigs(); err != nil {
		return nil, err
	}
	for g := range c.configs {
		c.applyGroupConfigs(g)
	}
	for _, sg := range saved {
		g := newGroup(sg.Name)
		for _, s := range sg.Starts {
			g.partitions[topicPartition{s.Topic, s.Partition}] = &sharePartition{topic: s.Topic, partition: s.Partition, start: s.Start}
		}
		c.groups[g.name] = g
	}
	every := max(min(c.cfg.LockDuration/10, 100*time.Millisecond), 10*time.Millisecond)
	c.expiry = clock.NewEvery(c.clock, every, guard.Func(c.logger, "share group expiry", c.expire))
	return c, nil
}

func newGroup(name string) *group {
	return &group{name: name, members: map[string]*member{}, partitions: map[topicPartition]*sharePartition{}}
}

// Close stops the coordinator; waiting fetches return.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.notifyLocked()
	c.mu.Unlock()
	c.expiry.Stop()
}

func (c *Coordinator) now() time.Time { return c.clock.Now() }

// Closed reports whether Close was called.
func (c *Coordinator) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Has reports whether a share group of that name exists.
func (c *Coordinator) Has(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.groups[name] != nil
}

// notifyLocked wakes fetches waiting for records.
func (c *Coordinator) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// partitionFor returns a group's share partition, initialising it the first
// time at the log end offset, or at the log start offset when the group's
// share.auto.offset.reset is earliest.
func (c *Coordinator) partitionFor(g *group, topic string, partition int32) (*sharePartition, *storage.Log) {
	l, ok := c.topics.Log(topic, partition)
	if !ok {
		return nil, nil
	}
	tp := topicPartition{topic, partition}
	sp := g.partitions[tp]
	if sp == nil {
		first, end := l.Offsets()
		sp = &sharePartition{topic: topic, partition: partition, start: c.resetOffset(c.configs[g.name][AutoOffsetReset], l, first, end)}
		g.partitions[tp] = sp
		g.dirty = true
	}
	start, _ := l.Offsets()
	sp.skipTo(start)
	return sp, l
}
