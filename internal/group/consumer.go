package group

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/clock"
	"github.com/creek-pipeline/creek/internal/guard"
)

// This file is the coordinator side of KIP-848, the consumer group protocol
// of Kafka 4: members send only ConsumerGroupHeartbeat, the coordinator
// computes the assignment itself (uniform or range assignor) and hands it
// over member by member. A partition moves in two steps: its owner is told
// to give it up, and only once the owner's heartbeat no longer lists it is
// it given to its new member. No partition is ever assigned to two members.
//
// Epochs: the group epoch grows with every change to members, subscriptions
// or the subscribed topics' partitions; the target assignment is computed
// for a group epoch (the assignment epoch); a member's epoch reaches the
// assignment epoch once it has revoked what it must give up.

// consumerGroup is the KIP-848 state of a group of type "consumer".
type consumerGroup struct {
	epoch           int32
	assignmentEpoch int32
	assignor        string // used for the current target assignment
	members         map[string]*consumerMember
	static          map[string]string // group.instance.id -> member id
	target          map[string]partitionSet
	topicsSeen      string // subscribed topics and partition counts at the last epoch
}

// consumerMember is one member of a consumer group.
type consumerMember struct {
	id         string
	instanceID *string
	rackID     *string
	clientID   string
	clientHost string

	epoch         int32
	previousEpoch int32
	left          bool // a static member that left with epoch -2 and may come back

	rebalanceTimeout time.Duration
	assignor         string // the server assignor it asked for, or ""
	topics           []string
	regex            string
	re               *regexp.Regexp

	assigned       partitionSet // what the member may consume
	revoking       partitionSet // what it must release before it gets more
	revokeDeadline time.Time

	deadline time.Time // the session expires then without a heartbeat
	timer    clock.Timer
}

func newConsumerGroup() *consumerGroup {
	return &consumerGroup{
		members: map[string]*consumerMember{},
		static:  map[string]string{},
		target:  map[string]partitionSet{},
	}
}

// state is the group state ConsumerGroupDescribe and ListGroups report.
func (cg *consumerGroup) state() string {
	switch {
	case len(cg.members) == 0:
		return "Empty"
	case cg.epoch != cg.assignmentEpoch:
		return "Assigning"
	}
	for _, m := range cg.members {
		if m.epoch != cg.assignmentEpoch || len(m.revoking) > 0 || !m.assigned.equal(cg.target[m.id]) {
			return "Reconciling"
		}
	}
	return "Stable"
}

// ---- ConsumerGroupHeartbeat ----

// ConsumerHeartbeat handles ConsumerGroupHeartbeat (v1: the member chooses
// its own id). It joins (epoch 0), keeps alive and reconciles (epoch > 0)
// and leaves (epoch -1, or -2 for a static member that will come back).
func (c *Coordinator) ConsumerHeartbeat(cl Client, req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	fail := func(e *kerr.Error, msg string) *kmsg.ConsumerGroupHeartbeatResponse {
		resp.ErrorCode = e.Code
		if msg != "" {
			resp.ErrorMessage = kmsg.StringPtr(msg)
		}
		return resp
	}
	if e, msg := c.checkConsumerHeartbeat(req); e != nil {
		return fail(e, msg)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fail(kerr.NotCoordinator, "")
	}
	g := c.groups[req.Group]
	if req.MemberEpoch < 0 {
		return c.consumerLeave(g, req, resp)
	}
	if g == nil && req.MemberEpoch > 0 {
		return fail(kerr.GroupIDNotFound, "group "+req.Group+" does not exist; join with epoch 0")
	}
	if g == nil {
		g = c.groupFor(req.Group, true)
	}
	if g.cg == nil {
		if g.hasMembers() {
			return fail(kerr.GroupIDNotFound, "group "+req.Group+" is a classic group with members; consumer-protocol members cannot join it until it is empty")
		}
		g.cg = newConsumerGroup()
		g.protocolType = "consumer"
		g.persistMeta() // the group's type outlives its members
	}
	cg := g.cg
	now := c.now()

	var m *consumerMember
	if req.MemberEpoch == 0 {
		var e *kerr.Error
		var msg string
		if m, e, msg = g.consumerJoin(cl, req); e != nil {
			c.forgetIfUnused(g)
			return fail(e, msg)
		}
	} else {
		m = cg.members[req.MemberID]
		if m == nil {
			return fail(kerr.UnknownMemberID, "member "+req.MemberID+" is not in group "+req.Group+"; join with epoch 0")
		}
		if e := m.checkEpoch(req); e != nil {
			return fail(e, fmt.Sprintf("member epoch %d is not the current epoch %d", req.MemberEpoch, m.epoch))
		}
	}
	m.clientID, m.clientHost = cl.ID, cl.Host
	m.left = false
	if g.updateSubscription(m, req) {
		cg.epoch++
	}
	if req.Topics != nil && len(m.revoking) > 0 {
		owned := ownedPartitions(req.Topics)
		if !m.revoking.intersects(owned) {
			m.revoking = nil // every partition it had to give up is released
		}
	}

	if seen := g.subscribedTopicsFingerprint(); seen != cg.topicsSeen {
		cg.topicsSeen = seen
		cg.epoch++
	}
	if cg.epoch != cg.assignmentEpoch {
		g.computeTargetAssignment()
	}
	before := m.assigned
	g.reconcile(m, now)

	session, heartbeat := c.consumerTimeouts(g.name)
	m.deadline = now.Add(session)
	g.watchConsumerSession(m)

	resp.MemberID = kmsg.StringPtr(m.id)
	resp.MemberEpoch = m.epoch
	resp.HeartbeatIntervalMillis = int32(heartbeat.Milliseconds())
	full := req.RebalanceTimeoutMillis != -1 && (req.SubscribedTopicNames != nil || req.SubscribedTopicRegex != nil) && req.Topics != nil
	if full || req.MemberEpoch == 0 || !before.equal(m.assigned) {
		resp.Assignment = m.assignmentResponse()
	}
	return resp
}

// checkConsumerHeartbeat rejects requests KIP-848 calls invalid.
func (c *Coordinator) checkConsumerHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) (*kerr.Error, string) {
	switch {
	case req.Group == "":
		return kerr.InvalidRequest, "the group id is empty"
	case tooLong(req.Group):
		return kerr.InvalidGroupID, fmt.Sprintf("the group id is %d bytes, at most %d are allowed", len(req.Group), MaxNameBytes)
	case tooLong(req.MemberID, optional(req.InstanceID), optional(req.RackID)):
		return kerr.InvalidRequest, fmt.Sprintf("member, instance and rack ids may be at most %d bytes", MaxNameBytes)
	case req.MemberID == "":
		return kerr.InvalidRequest, "the member id is empty; a consumer-protocol member chooses its own id"
	case req.InstanceID != nil && *req.InstanceID == "":
		return kerr.InvalidRequest, "the instance id is empty"
	case req.MemberEpoch < -2:
		return kerr.InvalidRequest, "member epoch " + strconv.Itoa(int(req.MemberEpoch)) + " is not valid"
	case req.MemberEpoch == -2 && req.InstanceID == nil:
		return kerr.InvalidRequest, "only a static member (with an instance id) may leave with epoch -2"
	case req.MemberEpoch == 0 && req.RebalanceTimeoutMillis < 0:
		return kerr.InvalidRequest, "a joining member must give its rebalance timeout"
	case req.MemberEpoch == 0 && req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil:
		return kerr.InvalidRequest, "a joining member must give its subscribed topics or regex"
	case req.MemberEpoch == 0 && len(req.Topics) > 0:
		return kerr.InvalidRequest, "a joining member cannot own partitions"
	case req.ServerAssignor != nil && !slices.Contains(c.cfg.ConsumerAssignors, *req.ServerAssignor):
		return kerr.UnsupportedAssignor, "assignor " + *req.ServerAssignor + " is not one of " + strings.Join(c.cfg.ConsumerAssignors, ", ")
	}
	if req.SubscribedTopicRegex != nil {
		if _, err := regexp.Compile(*req.SubscribedTopicRegex); err != nil {
			return kerr.InvalidRegularExpression, err.Error()
		}
	}
	return nil, ""
}

// consumerJoin admits a member joining with epoch 0: a new member, a member
// that lost a response and joins again with its id, or a static member
// taking back its place.
func (g *group) consumerJoin(cl Client, req *kmsg.ConsumerGroupHeartbeatRequest) (*consumerMember, *kerr.Error, string) {
	cg := g.cg
	if m := cg.members[req.MemberID]; m != nil {
		return m, nil, "" // it keeps its assignment, which the answer repeats
	}
	if req.InstanceID != nil {
		if oldID, ok := cg.static[*req.InstanceID]; ok {
			old := cg.members[oldID]
			if !old.left {
				return nil, kerr.UnreleasedInstanceID, "instance " + *req.InstanceID + " is used by member " + oldID
			}
			// A static member back within its session takes over its
			// old place: same assignment, same epoch, no rebalance.
			old.stopTimer()
			delete(cg.members, oldID)
			old.id = req.MemberID
			old.left = false
			cg.members[old.id] = old
			cg.static[*req.InstanceID] = old.id
			if t, ok := cg.target[oldID]; ok {
				delete(cg.target, oldID)
				cg.target[old.id] = t
			}
			g.c.logger.Info("static member rejoined", "group", g.name, "instance", *req.InstanceID, "member", old.id)
			return old, nil, ""
		}
	}
	if max := g.c.cfg.MaxSize; max > 0 && len(cg.members) >= max {
		return nil, kerr.GroupMaxSizeReached, fmt.Sprintf("group %s has its maximum of %d members", g.name, max)
	}
	m := &consumerMember{id: req.MemberID, instanceID: req.InstanceID, assigned: partitionSet{}}
	cg.members[m.id] = m
	if m.instanceID != nil {
		cg.static[*m.instanceID] = m.id
	}
	cg.epoch++
	g.c.logger.Info("member joined", "group", g.name, "member", m.id, "client", cl.ID, "protocol", "consumer")
	return m, nil, ""
}

// checkEpoch fences a member whose epoch is not its current one; a member
// one epoch behind that owns only what it was given lost a response and
// may go on.
func (m *consumerMember) checkEpoch(req *kmsg.ConsumerGroupHeartbeatRequest) *kerr.Error {
	switch {
	case req.MemberEpoch == m.epoch:
		return nil
	case req.MemberEpoch > m.epoch:
		return kerr.FencedMemberEpoch
	case req.MemberEpoch == m.previousEpoch && req.Topics != nil &&
		len(ownedPartitions(req.Topics).minus(m.assigned)) == 0:
		return nil
	}
	return kerr.FencedMemberEpoch
}

// updateSubscription applies the fields a heartbeat may change and reports
// whether the group must be assigned again.
func (g *group) updateSubscription(m *consumerMember, req *kmsg.ConsumerGroupHeartbeatRequest) bool {
	changed := false
	if req.RebalanceTimeoutMillis >= 0 {
		m.rebalanceTimeout = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	if req.RackID != nil && (m.rackID == nil || *m.rackID != *req.RackID) {
		m.rackID = req.RackID
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.assignor {
		m.assignor = *req.ServerAssignor
		changed = true
	}
	if req.SubscribedTopicNames != nil {
		topics := slices.Clone(req.SubscribedTopicNames)
		slices.Sort(topics)
		topics = slices.Compact(topics)
		if !slices.Equal(topics, m.topics) || m.regex != "" {
			m.topics, m.regex, m.re = topics, "", nil
			changed = true
		}
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != m.regex {
		m.regex = *req.SubscribedTopicRegex
		m.re = regexp.MustCompile("^(?:" + m.regex + ")$") // checked in checkConsumerHeartbeat
		m.topics = nil
		changed = true
	}
	return changed
}

// subscribes reports whether a member reads a topic.
func (m *consumerMember) subscribes(topic string) bool {
	if m.re != nil {
		return m.re.MatchString(topic)
	}
	_, found := slices.BinarySearch(m.topics, topic)
	return found
}

// subscribedTopics is every existing topic some member reads, sorted.
func (g *group) subscribedTopics848() []string {
	set := map[string]bool{}
	regex := false
	for _, m := range g.cg.members {
		for _, t := range m.topics {
			set[t] = true
		}
		regex = regex || m.re != nil
	}
	if regex {
		for _, t := range g.c.topics.TopicNames() {
			for _, m := range g.cg.members {
				if m.re != nil && m.re.MatchString(t) {
					set[t] = true
				}
			}
		}
	}
	out := make([]string, 0, len(set))
	for t := range set {
		if _, _, ok := g.c.topics.TopicByName(t); ok {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

// subscribedTopicsFingerprint names the subscribed topics with their ids
// and partition counts: a change (a topic created, deleted or grown) needs
// a new assignment.
func (g *group) subscribedTopicsFingerprint() string {
	var b strings.Builder
	for _, t := range g.subscribedTopics848() {
		id, n, _ := g.c.topics.TopicByName(t)
		fmt.Fprintf(&b, "%s/%x/%d;", t, id, n)
	}
	return b.String()
}

// computeTargetAssignment runs the group's assignor for its current epoch.
func (g *group) computeTargetAssignment() {
	cg := g.cg
	cg.assignor = g.chooseAssignor()
	var topics []assignTopic
	for _, name := range g.subscribedTopics848() {
		id, n, _ := g.c.topics.TopicByName(name)
		topics = append(topics, assignTopic{name: name, id: id, partitions: n})
	}
	members := make([]*consumerMember, 0, len(cg.members))
	for _, m := range cg.members {
		members = append(members, m)
	}
	sort.Slice(members, func(i, j int) bool { return members[i].id < members[j].id })
	if cg.assignor == "range" {
		cg.target = assignRange(members, topics)
	} else {
		cg.target = assignUniform(members, topics, cg.target)
	}
	cg.assignmentEpoch = cg.epoch
}

// chooseAssignor picks the assignor most members ask for, or the default.
func (g *group) chooseAssignor() string {
	votes := map[string]int{}
	for _, m := range g.cg.members {
		if m.assignor != "" {
			votes[m.assignor]++
		}
	}
	best := g.c.cfg.ConsumerAssignors[0]
	for _, a := range g.c.cfg.ConsumerAssignors {
		if votes[a] > votes[best] {
			best = a
		}
	}
	return best
}

// reconcile moves a member toward its target assignment. Partitions it must
// give up are revoked first, keeping its epoch; once none are left, it takes
// the assignment epoch and every target partition no other member still
// holds. Partitions still held elsewhere come in later heartbeats.
func (g *group) reconcile(m *consumerMember, now time.Time) {
	cg := g.cg
	if len(m.revoking) > 0 {
		return // waiting for the member to release them
	}
	target := cg.target[m.id]
	if target == nil {
		target = partitionSet{}
	}
	if m.epoch == cg.assignmentEpoch && m.assigned.equal(target) {
		return
	}
	if revoke := m.assigned.minus(target); len(revoke) > 0 {
		m.assigned = m.assigned.minus(revoke)
		m.revoking = revoke
		m.revokeDeadline = now.Add(m.rebalanceTimeout)
		return
	}
	held := partitionSet{}
	for _, o := range cg.members {
		if o == m {
			continue
		}
		for p := range o.assigned {
			held[p] = struct{}{}
		}
		for p := range o.revoking {
			held[p] = struct{}{}
		}
	}
	next := partitionSet{}
	for p := range m.assigned {
		next[p] = struct{}{}
	}
	for p := range target {
		if !held.has(p) {
			next[p] = struct{}{}
		}
	}
	m.assigned = next
	if m.epoch != cg.assignmentEpoch {
		m.previousEpoch, m.epoch = m.epoch, cg.assignmentEpoch
	}
}

func (m *consumerMember) assignmentResponse() *kmsg.ConsumerGroupHeartbeatResponseAssignment {
	a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
	a.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
	ids, parts := m.assigned.byTopic()
	for _, id := range ids {
		t := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		t.TopicID, t.Partitions = id, parts[id]
		a.Topics = append(a.Topics, t)
	}
	return &a
}

// consumerLeave handles epoch -1 (leave) and -2 (a static member leaving
// for a moment: it keeps its place and partitions for its session).
func (c *Coordinator) consumerLeave(g *group, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) *kmsg.ConsumerGroupHeartbeatResponse {
	resp.MemberID = kmsg.StringPtr(req.MemberID)
	if g == nil || g.cg == nil {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp
	}
	// Like Kafka, a member that names an instance id is looked up by it
	// alone: the instance must be known and held by that member id.
	var m *consumerMember
	if req.InstanceID != nil {
		m = g.cg.members[g.cg.static[*req.InstanceID]]
		switch {
		case m == nil:
			resp.ErrorCode = kerr.UnknownMemberID.Code
			resp.ErrorMessage = kmsg.StringPtr("instance id " + *req.InstanceID + " is unknown in group " + g.name)
			return resp
		case m.id != req.MemberID:
			resp.ErrorCode = kerr.FencedInstanceID.Code
			resp.ErrorMessage = kmsg.StringPtr("instance id " + *req.InstanceID + " is held by another member")
			return resp
		}
	} else if m = g.cg.members[req.MemberID]; m == nil {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp
	}
	// Only a leave that succeeds carries the epoch; with an error it is 0, as in Kafka.
	resp.MemberEpoch = req.MemberEpoch
	if req.MemberEpoch == -2 { // checkConsumerHeartbeat made sure it names an instance
		m.left = true
		c.logger.Info("static member left for now", "group", g.name, "member", m.id, "instance", *req.InstanceID)
		return resp
	}
	g.removeConsumerMember(m, "left")
	return resp
}

// removeConsumerMember drops a member; its partitions go to the others.
func (g *group) removeConsumerMember(m *consumerMember, why string) {
	cg := g.cg
	m.stopTimer()
	delete(cg.members, m.id)
	delete(cg.target, m.id)
	if m.instanceID != nil && cg.static[*m.instanceID] == m.id {
		delete(cg.static, *m.instanceID)
	}
	cg.epoch++
	g.c.logger.Info("member removed", "group", g.name, "member", m.id, "why", why)
	if len(cg.members) == 0 {
		g.emptySince = g.c.now()
		g.persistMeta()
	}
}

func (m *consumerMember) stopTimer() {
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
}

// watchConsumerSession removes a member whose session expires, or that
// holds partitions it was told to revoke past its rebalance timeout.
func (g *group) watchConsumerSession(m *consumerMember) {
	due := m.deadline
	if len(m.revoking) > 0 && m.revokeDeadline.Before(due) {
		due = m.revokeDeadline
	}
	m.stopTimer()
	c := g.c
	m.timer = c.clock.AfterFunc(due.Sub(c.now()), guard.Func(c.logger, "consumer group session timer", func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || c.groups[g.name] != g || g.cg == nil || g.cg.members[m.id] != m {
			return
		}
		now := c.now()
		switch {
		case !now.Before(m.deadline):
			g.removeConsumerMember(m, "session timeout")
		case len(m.revoking) > 0 && !now.Before(m.revokeDeadline):
			g.removeConsumerMember(m, "did not revoke its partitions within its rebalance timeout")
		default:
			g.watchConsumerSession(m)
		}
	}))
}

// checkConsumerCommit applies KIP-848's rules to OffsetCommit: a member
// commits with its current epoch; anyone may commit to an empty group.
func (g *group) checkConsumerCommit(version int16, memberID string, epoch int32) *kerr.Error {
	if epoch < 0 && len(g.cg.members) == 0 {
		return nil
	}
	m := g.cg.members[memberID]
	switch {
	case m == nil:
		return kerr.UnknownMemberID
	case version < 9:
		return kerr.UnsupportedVersion // consumer-protocol members commit with v9+
	case epoch > m.epoch:
		return kerr.FencedMemberEpoch
	case epoch < m.epoch:
		return kerr.StaleMemberEpoch
	}
	return nil
}

// checkConsumerFetch applies KIP-848's rules to OffsetFetch v9+ from a
// member: its epoch must be current.
func (g *group) checkConsumerFetch(memberID *string, epoch int32) *kerr.Error {
	if memberID == nil || epoch < 0 {
		return nil
	}
	m := g.cg.members[*memberID]
	switch {
	case m == nil:
		return kerr.UnknownMemberID
	case epoch != m.epoch:
		return kerr.StaleMemberEpoch
	}
	return nil
}
