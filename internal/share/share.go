// Package share is the coordinator of KIP-932 share groups, Kafka's queues:
// the members of a share group read the same partitions together, each
// record is handed to one member at a time under an acquisition lock, and a
// record the member accepts is gone for the group, as a job taken from a
// queue. Records it releases, or whose lock expires, go to the next member;
// rejected ones, and ones delivered group.share.delivery.count.limit times,
// are archived.
//
// share.go holds the groups (ShareGroupHeartbeat, ShareGroupDescribe and
// the offsets admin), partition.go the per-partition record states, and
// fetch.go the share sessions of ShareFetch and ShareAcknowledge.
package share

import (
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

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

	Clock clock.Clock // drives sessions, acquisition locks and fetch waits; nil: the wall clock
}

// Topics is what the coordinator needs of the broker's topics.
type Topics interface {
	TopicByName(name string) (id [16]byte, partitions int32, ok bool)
	TopicByID(id [16]byte) (name string, partitions int32, ok bool)
	Log(topic string, partition int32) (*storage.Log, bool)
}

// Store persists each share group and the start offsets of its partitions,
// and the group configs (share.auto.offset.reset), which may be set before
// the group exists. Records in flight past the start are not persisted:
// after a restart they are delivered again (at least once, never lost).
type Store interface {
	LoadShareGroups() ([]StoredGroup, error)
	SaveShareGroup(g StoredGroup) error
	DeleteShareGroup(name string) error
	LoadGroupConfigs() (map[string]map[string]string, error)
	SaveGroupConfig(group string, configs map[string]string) error
}

// StoredGroup is a share group as persisted.
type StoredGroup struct {
	Name   string        `json:"name"`
	Starts []StoredStart `json:"starts"`
}

// StoredStart is one partition's share-partition start offset.
type StoredStart struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Start     int64  `json:"start"`
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

	mu       sync.Mutex
	groups   map[string]*group
	configs  map[string]map[string]string // group configs by group
	sessions map[sessionKey]*session
	changed  chan struct{} // closed and replaced when records become available
	closed   bool

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

// expire releases expired acquisition locks and removes members whose
// session expired; it runs every tenth of the lock duration (10 to 100 ms).
func (c *Coordinator) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	wake := false
	for _, g := range c.groups {
		for _, m := range g.members {
			if now.After(m.deadline) {
				c.logger.Info("share group member removed", "group", g.name, "member", m.id, "why", "session timeout")
				wake = c.removeMember(g, m) || wake
			}
		}
		for _, sp := range g.partitions {
			if sp.expire(now, c.cfg.DeliveryLimit) {
				wake = true
				g.dirty = sp.advance() || g.dirty
			}
		}
		c.save(g)
	}
	if wake {
		c.notifyLocked()
	}
}

// removeMember drops a member, its sessions and its locks.
func (c *Coordinator) removeMember(g *group, m *member) bool {
	delete(g.members, m.id)
	g.epoch++
	delete(c.sessions, sessionKey{g.name, m.id})
	released := false
	for _, sp := range g.partitions {
		released = sp.releaseMember(m.id, c.cfg.DeliveryLimit) || released
	}
	return released
}

// save writes a group's start offsets if they changed; each request saves
// once at its end. A failure is logged: it costs records delivered again
// after a restart, never records lost.
func (c *Coordinator) save(g *group) {
	if !g.dirty {
		return
	}
	g.dirty = false
	sg := StoredGroup{Name: g.name}
	for _, sp := range g.sortedPartitions() {
		sg.Starts = append(sg.Starts, StoredStart{Topic: sp.topic, Partition: sp.partition, Start: sp.start})
	}
	if err := c.store.SaveShareGroup(sg); err != nil {
		c.logger.Warn("could not persist share group state", "group", g.name, "err", err)
	}
}

func (g *group) sortedPartitions() []*sharePartition {
	out := make([]*sharePartition, 0, len(g.partitions))
	for _, sp := range g.partitions {
		out = append(out, sp)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.topic < b.topic || a.topic == b.topic && a.partition < b.partition
	})
	return out
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
		if c.configs[g.name][AutoOffsetReset] == "earliest" {
			end = first
		}
		sp = &sharePartition{topic: topic, partition: partition, start: end}
		g.partitions[tp] = sp
		g.dirty = true
	}
	start, _ := l.Offsets()
	sp.skipTo(start)
	return sp, l
}

// ---- ShareGroupHeartbeat ----

// Heartbeat handles ShareGroupHeartbeat. Every member of a share group is
// assigned every partition of the topics it subscribes to: the records,
// not the partitions, are shared out.
func (c *Coordinator) Heartbeat(cl Client, req *kmsg.ShareGroupHeartbeatRequest) *kmsg.ShareGroupHeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
	fail := func(e *kerr.Error, msg string) *kmsg.ShareGroupHeartbeatResponse {
		resp.ErrorCode, resp.ErrorMessage = e.Code, kmsg.StringPtr(msg)
		return resp
	}
	switch {
	case req.GroupID == "":
		return fail(kerr.InvalidRequest, "the group id is empty")
	case len(req.GroupID) > MaxNameBytes:
		return fail(kerr.InvalidGroupID, fmt.Sprintf("the group id is %d bytes, at most %d are allowed", len(req.GroupID), MaxNameBytes))
	case len(req.MemberID) > MaxNameBytes || req.RackID != nil && len(*req.RackID) > MaxNameBytes:
		return fail(kerr.InvalidRequest, fmt.Sprintf("member and rack ids may be at most %d bytes", MaxNameBytes))
	case req.MemberID == "":
		return fail(kerr.InvalidRequest, "the member id is empty; a share group member chooses its own id")
	case req.MemberEpoch < -1:
		return fail(kerr.InvalidRequest, fmt.Sprintf("member epoch %d is not valid", req.MemberEpoch))
	case req.MemberEpoch == 0 && len(req.SubscribedTopicNames) == 0:
		return fail(kerr.InvalidRequest, "a joining member must subscribe to topics")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fail(kerr.NotCoordinator, "the broker is shutting down")
	}
	g := c.groups[req.GroupID]
	resp.MemberID = kmsg.StringPtr(req.MemberID)
	if req.MemberEpoch == -1 {
		if g == nil {
			return fail(kerr.GroupIDNotFound, "share group "+req.GroupID+" does not exist")
		}
		m := g.members[req.MemberID]
		if m == nil {
			return fail(kerr.UnknownMemberID, "member "+req.MemberID+" is not in share group "+req.GroupID)
		}
		resp.MemberEpoch = -1 // with an error it stays 0, as in Kafka's answer
		c.logger.Info("share group member left", "group", g.name, "member", m.id)
		if c.removeMember(g, m) {
			c.notifyLocked()
		}
		return resp
	}
	if g == nil {
		if req.MemberEpoch != 0 {
			return fail(kerr.GroupIDNotFound, "share group "+req.GroupID+" does not exist")
		}
		g = newGroup(req.GroupID)
		g.dirty = true
		c.groups[g.name] = g
	}
	m := g.members[req.MemberID]
	switch {
	case m == nil && req.MemberEpoch != 0:
		return fail(kerr.UnknownMemberID, "member "+req.MemberID+" is not in share group "+req.GroupID+"; join with epoch 0")
	case m == nil:
		if c.cfg.MaxSize > 0 && len(g.members) >= c.cfg.MaxSize {
			return fail(kerr.GroupMaxSizeReached, fmt.Sprintf("share group %s has its maximum of %d members", g.name, c.cfg.MaxSize))
		}
		m = &member{id: req.MemberID}
		g.members[m.id] = m
		g.epoch++
		c.logger.Info("share group member joined", "group", g.name, "member", m.id, "client", cl.ID)
	case req.MemberEpoch != 0 && req.MemberEpoch != m.epoch:
		return fail(kerr.FencedMemberEpoch, fmt.Sprintf("member epoch %d is not the current epoch %d", req.MemberEpoch, m.epoch))
	}
	m.clientID, m.clientHost = cl.ID, cl.Host
	if req.RackID != nil {
		m.rackID = req.RackID
	}
	if req.SubscribedTopicNames != nil {
		topics := slices.Clone(req.SubscribedTopicNames)
		slices.Sort(topics)
		topics = slices.Compact(topics)
		if !slices.Equal(topics, m.topics) {
			m.topics = topics
			g.epoch++
		}
	}
	m.deadline = c.now().Add(c.cfg.SessionTimeout)
	m.epoch = g.epoch

	assignment := c.assignment(m)
	for _, at := range assignment { // the share partitions start as they are first assigned
		name, _, _ := c.topics.TopicByID(at.TopicID)
		for _, p := range at.Partitions {
			c.partitionFor(g, name, p)
		}
	}
	c.save(g)
	key := assignmentKey(assignment)
	if req.MemberEpoch == 0 || key != m.sent {
		m.sent = key
		a := kmsg.NewShareGroupHeartbeatResponseAssignment()
		a.TopicPartitions = assignment
		resp.Assignment = &a
	}
	resp.MemberEpoch = m.epoch
	resp.HeartbeatIntervalMillis = int32(c.cfg.HeartbeatInterval.Milliseconds())
	return resp
}

// assignment is every partition of the member's existing topics.
func (c *Coordinator) assignment(m *member) []kmsg.ShareGroupHeartbeatResponseAssignmentTopicPartition {
	out := []kmsg.ShareGroupHeartbeatResponseAssignmentTopicPartition{}
	for _, t := range m.topics {
		id, n, ok := c.topics.TopicByName(t)
		if !ok {
			continue
		}
		tp := kmsg.NewShareGroupHeartbeatResponseAssignmentTopicPartition()
		tp.TopicID = id
		for p := int32(0); p < n; p++ {
			tp.Partitions = append(tp.Partitions, p)
		}
		out = append(out, tp)
	}
	return out
}

func assignmentKey(a []kmsg.ShareGroupHeartbeatResponseAssignmentTopicPartition) string {
	var b strings.Builder
	for _, t := range a {
		fmt.Fprintf(&b, "%x:%d;", t.TopicID, len(t.Partitions))
	}
	return b.String()
}

// ---- ShareGroupDescribe ----

// Describe fills ShareGroupDescribe's answer for a group that
// group.Front found to be a share group.
func (c *Coordinator) Describe(dg *kmsg.ShareGroupDescribeResponseGroup) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[dg.GroupID]
	if g == nil { // deleted since the Front looked
		dg.ErrorCode, dg.ErrorMessage = kerr.GroupIDNotFound.Code, kmsg.StringPtr("share group "+dg.GroupID+" does not exist")
		return
	}
	dg.GroupState, dg.GroupEpoch, dg.AssignmentEpoch, dg.Assignor = g.state(), g.epoch, g.epoch, "simple"
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := g.members[id]
		dm := kmsg.NewShareGroupDescribeResponseGroupMember()
		dm.MemberID, dm.RackID, dm.MemberEpoch, dm.ClientID, dm.ClientHost = m.id, m.rackID, m.epoch, m.clientID, m.clientHost
		dm.SubscribedTopicNames = m.topics
		for _, at := range c.assignment(m) {
			tp := kmsg.NewShareGroupDescribeResponseGroupMemberAssignmentTopicPartition()
			tp.TopicID, tp.Partitions = at.TopicID, at.Partitions
			tp.Topic, _, _ = c.topics.TopicByID(at.TopicID)
			dm.Assignment.TopicPartitions = append(dm.Assignment.TopicPartitions, tp)
		}
		dg.Members = append(dg.Members, dm)
	}
}

func (g *group) state() string {
	if len(g.members) == 0 {
		return "Empty"
	}
	return "Stable"
}

// ListedGroup is a share group as ListGroups reports it.
type ListedGroup struct {
	Name  string
	State string
}

// List returns every share group, sorted by name.
func (c *Coordinator) List() []ListedGroup {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ListedGroup, 0, len(c.groups))
	for _, g := range c.groups {
		out = append(out, ListedGroup{Name: g.name, State: g.state()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Delete deletes a share group without members, with its state.
func (c *Coordinator) Delete(name string) *kerr.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[name]
	switch {
	case g == nil:
		return kerr.GroupIDNotFound
	case len(g.members) > 0:
		return kerr.NonEmptyGroup
	}
	if err := c.store.DeleteShareGroup(name); err != nil {
		c.logger.Error("could not delete share group", "group", name, "err", err)
		return kerr.KafkaStorageError
	}
	delete(c.groups, name)
	c.logger.Info("share group deleted", "group", name)
	return nil
}

// ---- offsets admin ----

// DescribeOffsets handles DescribeShareGroupOffsets: each partition's start
// offset and lag (records not yet done).
func (c *Coordinator) DescribeOffsets(req *kmsg.DescribeShareGroupOffsetsRequest) *kmsg.DescribeShareGroupOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeShareGroupOffsetsResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rg := range req.Groups {
		sg := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
		sg.GroupID = rg.GroupID
		// As Kafka, a group that does not exist is described as one
		// without started partitions.
		g := c.groups[rg.GroupID]
		if g == nil {
			g = newGroup(rg.GroupID)
		}
		topics := rg.Topics
		if topics == nil { // every initialised partition
			byTopic := map[string][]int32{}
			for _, sp := range g.sortedPartitions() {
				byTopic[sp.topic] = append(byTopic[sp.topic], sp.partition)
			}
			for _, t := range slices.Sorted(maps.Keys(byTopic)) {
				topics = append(topics, kmsg.DescribeShareGroupOffsetsRequestGroupTopic{Topic: t, Partitions: byTopic[t]})
			}
		}
		for _, rt := range topics {
			st := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
			st.Topic = rt.Topic
			st.TopicID, _, _ = c.topics.TopicByName(rt.Topic)
			for _, p := range rt.Partitions {
				spr := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
				spr.Partition, spr.StartOffset, spr.LeaderEpoch = p, -1, 0
				if sp := g.partitions[topicPartition{rt.Topic, p}]; sp != nil {
					spr.StartOffset = sp.start
					if l, ok := c.topics.Log(rt.Topic, p); ok {
						_, end := l.Offsets()
						spr.Lag = max(end-sp.start-sp.done(), 0)
					}
				}
				st.Partitions = append(st.Partitions, spr)
			}
			sg.Topics = append(sg.Topics, st)
		}
		resp.Groups = append(resp.Groups, sg)
	}
	return resp
}

// AlterOffsets handles AlterShareGroupOffsets: it moves the start offset of
// partitions of a group without members (creating the group if needed).
func (c *Coordinator) AlterOffsets(req *kmsg.AlterShareGroupOffsetsRequest) *kmsg.AlterShareGroupOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[req.GroupID]
	var topErr *kerr.Error
	switch {
	case c.closed:
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	case req.GroupID == "" || len(req.GroupID) > MaxNameBytes:
		resp.ErrorCode = kerr.InvalidGroupID.Code // as Kafka: the topics are not answered
		return resp
	case g != nil && len(g.members) > 0:
		topErr = kerr.NonEmptyGroup
	}
	if topErr == nil && g == nil {
		g = newGroup(req.GroupID)
		c.groups[g.name] = g
	}
	for _, rt := range req.Topics {
		st := kmsg.NewAlterShareGroupOffsetsResponseTopic()
		st.Topic = rt.Topic
		st.TopicID, _, _ = c.topics.TopicByName(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterShareGroupOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			switch l, ok := c.topics.Log(rt.Topic, rp.Partition); {
			case topErr != nil:
				sp.ErrorCode = topErr.Code
			case !ok:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				start, end := l.Offsets()
				at := rp.StartOffset
				if at < 0 || at > end {
					at = end // -1: latest
				}
				at = max(at, start)
				g.partitions[topicPartition{rt.Topic, rp.Partition}] = &sharePartition{topic: rt.Topic, partition: rp.Partition, start: at}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if topErr != nil {
		resp.ErrorCode = topErr.Code
	} else {
		g.dirty = true
		c.save(g)
	}
	return resp
}

// DeleteOffsets handles DeleteShareGroupOffsets (after group.Front's
// lookup): the state of the given
// topics is forgotten; they start again at the log end when next assigned.
func (c *Coordinator) DeleteOffsets(req *kmsg.DeleteShareGroupOffsetsRequest) *kmsg.DeleteShareGroupOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteShareGroupOffsetsResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[req.GroupID]
	switch {
	case g == nil:
		resp.ErrorCode, resp.ErrorMessage = kerr.GroupIDNotFound.Code, kmsg.StringPtr("share group "+req.GroupID+" does not exist")
		return resp
	case len(g.members) > 0:
		resp.ErrorCode, resp.ErrorMessage = kerr.NonEmptyGroup.Code, kmsg.StringPtr("share group "+req.GroupID+" has members; stop them first")
		return resp
	}
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteShareGroupOffsetsResponseTopic()
		st.Topic = rt.Topic
		st.TopicID, _, _ = c.topics.TopicByName(rt.Topic)
		for tp := range g.partitions {
			if tp.topic == rt.Topic {
				delete(g.partitions, tp)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	g.dirty = true
	c.save(g)
	return resp
}

// ---- group configs ----

// AutoOffsetReset is the group config that says where a share group starts
// reading a partition it has no state for: latest (the default) or earliest.
const AutoOffsetReset = "share.auto.offset.reset"

// GroupConfig returns a group's value of a group config and whether it was
// set (otherwise the default is returned).
func (c *Coordinator) GroupConfig(group, name string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.configs[group][name]; ok {
		return v, true
	}
	return "latest", false
}

// SetGroupConfig sets (or, with value nil, deletes) a group config.
func (c *Coordinator) SetGroupConfig(group, name string, value *string, validateOnly bool) error {
	if name != AutoOffsetReset {
		return fmt.Errorf("%w: %s is not a group config here (only %s)", kerr.InvalidConfig, name, AutoOffsetReset)
	}
	if value != nil && *value != "latest" && *value != "earliest" {
		return fmt.Errorf("%w: %s must be latest or earliest, got %q", kerr.InvalidConfig, name, *value)
	}
	if group == "" || len(group) > MaxNameBytes {
		return fmt.Errorf("%w: the group name is empty or longer than %d bytes", kerr.InvalidGroupID, MaxNameBytes)
	}
	if validateOnly {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	next := map[string]string{}
	for k, v := range c.configs[group] {
		next[k] = v
	}
	if value == nil {
		delete(next, name)
	} else {
		next[name] = *value
	}
	if err := c.store.SaveGroupConfig(group, next); err != nil {
		return fmt.Errorf("%w: %v", kerr.KafkaStorageError, err)
	}
	c.configs[group] = next
	return nil
}
