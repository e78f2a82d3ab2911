// Package group is the coordinator of Kafka's consumer groups and keeps
// each group's committed offsets. It speaks both group protocols:
//
//   - the classic protocol (membership.go): members join, one of them (the
//     leader) assigns partitions, the coordinator relays the assignment and
//     watches heartbeats. It relays the members' own assignment protocols
//     without reading them, so every client assignor works (range,
//     roundrobin, sticky, cooperative-sticky);
//   - KIP-848, the consumer protocol of Kafka 4 (consumer.go): members only
//     heartbeat and the coordinator assigns partitions itself (assignors.go).
//
// front.go is where every group request enters, share groups (internal/share)
// included: one name space for every kind. group.go holds the group
// record, membership.go the classic protocol, consumer.go KIP-848,
// partitions.go the partition sets it assigns, describe.go and admin.go the
// describe, list and delete side, offsets.go committed offsets.
//
// Requests and responses are kmsg structs. JoinGroup and SyncGroup answers
// wait for other members, so those calls return the response together with
// a wait function that blocks until the response is complete.
package group

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/creek-pipeline/creek/internal/clock"
	"github.com/creek-pipeline/creek/internal/guard"
)

// Config holds the coordinator's settings (Kafka's names in comments).
type Config struct {
	MinSessionTimeout     time.Duration // group.min.session.timeout.ms
	MaxSessionTimeout     time.Duration // group.max.session.timeout.ms
	InitialRebalanceDelay time.Duration // group.initial.rebalance.delay.ms
	MaxSize               int           // group.max.size
	OffsetsRetention      time.Duration // offsets.retention.minutes
	RetentionCheck        time.Duration // offsets.retention.check.interval.ms
	MaxMetadataBytes      int           // offset.metadata.max.bytes

	ConsumerSessionTimeout    time.Duration // group.consumer.session.timeout.ms
	ConsumerHeartbeatInterval time.Duration // group.consumer.heartbeat.interval.ms
	ConsumerAssignors         []string      // group.consumer.assignors, the default first
	// GroupTimeouts, when set, gives a group's own consumer.session.timeout.ms
	// and consumer.heartbeat.interval.ms (0 where it has none).
	GroupTimeouts func(group string) (session, heartbeat time.Duration)

	Clock clock.Clock // drives sessions, rebalances and offset expiry; nil: the wall clock
}

// Topics is what the coordinator needs to know about topics.
type Topics interface {
	TopicByName(name string) (id [16]byte, partitions int32, ok bool)
	TopicByID(id [16]byte) (name string, partitions int32, ok bool)
	TopicNames() []string
}

// Client identifies who sent a request.
type Client struct {
	ID   string // client.id
	Host string // remote address
}

// Coordinator coordinates every group of the broker.
type Coordinator struct {
	cfg    Config
	store  Store
	topics Topics
	logger *slog.Logger
	clock  clock.Clock

	mu     sync.Mutex
	groups map[string]*group
	closed bool

	storeMu sync.Mutex // orders offset writes and deletions; taken while mu is held

	expiry *clock.Every // offset expiry, nil when off
}

// ErrClosed is returned by a coordinator that is shutting down.
var ErrClosed = errors.New("group coordinator is shutting down")

// New loads the groups persisted in store and starts offset expiry.
func New(cfg Config, store Store, topics Topics, logger *slog.Logger) (*Coordinator, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if cfg.ConsumerSessionTimeout <= 0 {
		cfg.ConsumerSessionTimeout = 45 * time.Second
	}
	if cfg.ConsumerHeartbeatInterval <= 0 {
		cfg.ConsumerHeartbeatInterval = 5 * time.Second
	}
	if len(cfg.ConsumerAssignors) == 0 {
		cfg.ConsumerAssignors = []string{"uniform", "range"}
	}
	c := &Coordinator{
		cfg: cfg, store: store, topics: topics, logger: logger, clock: clock.Or(cfg.Clock),
		groups: map[string]*group{},
	}
	saved, err := store.LoadGroups()
	if err != nil {
		return nil, err
	}
	for _, sg := range saved {
		g := c.newGroup(sg.Name)
		g.protocolType = sg.ProtocolType
		if sg.Type == "consumer" {
			g.cg = newConsumerGroup()
		}
		g.emptySince = sg.EmptySince
		if g.emptySince.IsZero() {
			g.emptySince = c.now()
		}
		for _, o := range sg.Offsets {
			g.offsets[TopicPartition{o.Topic, o.Partition}] = o.committed()
		}
		c.groups[g.name] = g
	}
	if cfg.RetentionCheck > 0 {
		c.expiry = clock.NewEvery(c.clock, cfg.RetentionCheck, guard.Func(c.logger, "offset expiry", c.ExpireOffsets))
	}
	return c, nil
}

// Close stops the coordinator. Members waiting in JoinGroup or SyncGroup
// are answered NOT_COORDINATOR, which makes clients look the coordinator up
// again and rejoin once the broker is back.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	for _, g := range c.groups {
		for _, m := range g.members {
			m.answerWaiters(kerr.NotCoordinator)
			m.stopTimer()
		}
		g.stopTimers()
		if g.cg != nil {
			for _, m := range g.cg.members {
				m.stopTimer()
			}
		}
	}
	c.mu.Unlock()
	if c.expiry != nil {
		c.expiry.Stop()
	}
}

func (c *Coordinator) now() time.Time { return c.clock.Now() }

func (c *Coordinator) newGroup(name string) *group {
	return &group{
		c:       c,
		name:    name,
		members: map[string]*member{},
		static:  map[string]string{},
		pending: map[string]time.Time{},
		offsets: map[TopicPartition]committed{},
	}
}

// groupFor returns a group, creating an empty one in memory if create.
func (c *Coordinator) groupFor(name string, create bool) *group {
	g := c.groups[name]
	if g == nil && create {
		g = c.newGroup(name)
		g.emptySince = c.now()
		c.groups[name] = g
	}
	return g
}

// forgetIfUnused drops a group that has nothing worth keeping (a failed
// first join).
func (c *Coordinator) forgetIfUnused(g *group) {
	if !g.hasMembers() && len(g.offsets) == 0 && g.generation == 0 && (g.cg == nil || g.cg.epoch == 0) {
		delete(c.groups, g.name)
	}
}

// MaxNameBytes is the longest group id, member id, instance id or protocol
// name the coordinator takes from a client: what the int16 length of every
// non-flexible answer can carry. A longer one, which flexible requests can
// send, would make ListGroups or DescribeGroups unencodable for everyone.
const MaxNameBytes = math.MaxInt16

// tooLong reports whether any of names is longer than MaxNameBytes.
func tooLong(names ...string) bool {
	for _, n := range names {
		if len(n) > MaxNameBytes {
			return true
		}
	}
	return false
}

// optional is *s, or "" for nil.
func optional(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// newMemberID makes a member id the way Kafka does: the client id (or the
// static instance id) and a random suffix, the prefix cut so the id fits
// MaxNameBytes.
func newMemberID(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	suffix := "-" + id[:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:]
	return prefix[:min(len(prefix), MaxNameBytes-len(suffix))] + suffix
}

func (c *Coordinator) sortedGroups() []*group {
	out := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// Has reports whether a group of that name exists (with members or with
// committed offsets).
func (c *Coordinator) Has(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.groups[name] != nil
}
