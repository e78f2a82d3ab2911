package group

import (
	"bytes"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/clock"
	"github.com/creek-pipeline/creek/internal/guard"
)

// member is one member of a group.
type member struct {
	id               string
	instanceID       *string
	clientID         string
	clientHost       string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocols        []kmsg.JoinGroupRequestProtocol
	assignment       []byte

	deadline time.Time // the session expires then without a heartbeat
	timer    clock.Timer
	synced   bool // sent SyncGroup in the current generation

	join *waiter[*kmsg.JoinGroupResponse] // waiting for the join phase to end
	sync *waiter[*kmsg.SyncGroupResponse] // waiting for the leader's assignment
}

// waiter is a response another member's request will complete.
type waiter[R any] struct {
	resp R
	done chan struct{}
}

func newWaiter[R any](resp R) *waiter[R] { return &waiter[R]{resp: resp, done: make(chan struct{})} }

func (w *waiter[R]) wait() { <-w.done }

func (m *member) answerWaiters(e *kerr.Error) {
	if m.join != nil {
		m.join.resp.ErrorCode = e.Code
		close(m.join.done)
		m.join = nil
	}
	if m.sync != nil {
		m.sync.resp.ErrorCode = e.Code
		close(m.sync.done)
		m.sync = nil
	}
}

func (m *member) stopTimer() {
	if m.timer != nil {
		m.timer.Stop()
	}
}

func (g *group) stopTimers() {
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
	}
}

// ---- JoinGroup ----

// Join handles JoinGroup. The response is complete once wait returns.
func (c *Coordinator) Join(cl Client, req *kmsg.JoinGroupRequest) (resp *kmsg.JoinGroupResponse, wait func()) {
	resp = req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation = -1
	fail := func(e *kerr.Error) (*kmsg.JoinGroupResponse, func()) {
		resp.ErrorCode = e.Code
		return resp, nil
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	protocols := []string{req.ProtocolType, req.MemberID, optional(req.InstanceID)}
	for _, p := range req.Protocols {
		protocols = append(protocols, p.Name)
	}
	switch {
	case req.Group == "" || tooLong(req.Group):
		return fail(kerr.InvalidGroupID)
	case tooLong(protocols...):
		return fail(kerr.InvalidRequest)
	case session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout:
		return fail(kerr.InvalidSessionTimeout)
	case req.ProtocolType == "" || len(req.Protocols) == 0:
		return fail(kerr.InconsistentGroupProtocol)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fail(kerr.NotCoordinator)
	}
	created := c.groups[req.Group] == nil
	g := c.groupFor(req.Group, true)
	if g.cg != nil {
		if len(g.cg.members) > 0 {
			return fail(kerr.InconsistentGroupProtocol) // a consumer-protocol group with members
		}
		g.cg = nil // an empty consumer-protocol group becomes classic, offsets kept
	}
	if !g.acceptsProtocols(req) {
		c.forgetIfUnused(g)
		return fail(kerr.InconsistentGroupProtocol)
	}

	if req.MemberID == "" {
		if req.InstanceID != nil {
			if old, ok := g.static[*req.InstanceID]; ok {
				return g.rejoinStatic(cl, req, resp, old)
			}
		}
		if c.cfg.MaxSize > 0 && len(g.members)+len(g.pending) >= c.cfg.MaxSize {
			return fail(kerr.GroupMaxSizeReached)
		}
		if created { // as Kafka: a group made by an accepted join is logged at once
			g.recordMembership()
		}
		prefix := cl.ID
		if req.InstanceID != nil {
			prefix = *req.InstanceID
		}
		id := newMemberID(prefix)
		if req.Version >= 4 && req.InstanceID == nil {
			// KIP-394: hand out the id first; the member joins with it.
			g.pending[id] = c.now().Add(session)
			resp.MemberID = id
			return fail(kerr.MemberIDRequired)
		}
		return g.addMember(cl, req, resp, id)
	}

	if req.InstanceID != nil {
		if e := g.checkInstance(*req.InstanceID, req.MemberID); e != nil {
			return fail(e)
		}
	}
	if expiry, ok := g.pending[req.MemberID]; ok {
		delete(g.pending, req.MemberID)
		if c.now().After(expiry) {
			return fail(kerr.UnknownMemberID)
		}
		return g.addMember(cl, req, resp, req.MemberID)
	}
	m := g.members[req.MemberID]
	if m == nil {
		c.forgetIfUnused(g) // as Kafka: a refused join leaves no group behind
		return fail(kerr.UnknownMemberID)
	}
	unchanged := sameProtocols(m.protocols, req.Protocols)
	switch {
	case g.state == stateCompletingRebalance && unchanged,
		g.state == stateStable && unchanged && m.id != g.leader:
		// Nothing changed for this member: answer with the current generation.
		m.update(cl, req)
		g.fillJoin(m, resp)
		return resp, nil
	}
	m.update(cl, req)
	m.supersede()
	w := newWaiter(resp)
	m.join = w
	g.prepareRebalance()
	g.maybeCompleteJoin()
	return resp, w.wait
}

// supersede answers a member's earlier JoinGroup or SyncGroup that a new
// request from it replaces, so that no response is left hanging.
func (m *member) supersede() {
	m.answerWaiters(kerr.RebalanceInProgress)
}

// addMember adds a new member to the group and rebalances.
func (g *group) addMember(cl Client, req *kmsg.JoinGroupRequest, resp *kmsg.JoinGroupResponse, id string) (*kmsg.JoinGroupResponse, func()) {
	m := &member{id: id, instanceID: req.InstanceID}
	m.update(cl, req)
	if m.instanceID != nil {
		g.static[*m.instanceID] = id
	}
	if len(g.members) == 0 {
		g.protocolType = req.ProtocolType
	}
	g.members[id] = m
	if g.leader == "" {
		g.leader = id
	}
	g.watchSession(m)
	w := newWaiter(resp)
	m.join = w
	g.prepareRebalance()
	g.maybeCompleteJoin()
	return resp, w.wait
}

// rejoinStatic handles a static member coming back with an empty member id
// (it restarted). It gets a new member id; the old one is fenced. If the
// group is stable and would keep its protocol, the member takes its old
// assignment back without a rebalance (KIP-345).
func (g *group) rejoinStatic(cl Client, req *kmsg.JoinGroupRequest, resp *kmsg.JoinGroupResponse, oldID string) (*kmsg.JoinGroupResponse, func()) {
	id := newMemberID(*req.InstanceID)
	old := g.members[oldID]
	if old == nil {
		delete(g.static, *req.InstanceID)
		return g.addMember(cl, req, resp, id)
	}
	old.answerWaiters(kerr.FencedInstanceID)
	old.stopTimer()
	delete(g.members, oldID)

	m := &member{id: id, instanceID: req.InstanceID, assignment: old.assignment, synced: old.synced}
	m.update(cl, req)
	g.members[id] = m
	g.static[*req.InstanceID] = id
	if g.leader == oldID {
		g.leader = id
	}
	g.watchSession(m)
	g.c.logger.Info("static member rejoined", "group", g.name, "instance", *req.InstanceID, "member", id)

	// As in Kafka, only a change of the group's protocol forces a
	// rebalance; new metadata (such as no longer owned partitions) does not.
	if g.state == stateStable && g.chooseProtocol() == g.protocol {
		g.recordMembership() // the new member id, as Kafka logs it
		g.fillJoin(m, resp)
		resp.SkipAssignment = m.id == g.leader // KIP-814: the leader re-sends the current assignment
		return resp, nil
	}
	w := newWaiter(resp)
	m.join = w
	g.prepareRebalance()
	g.maybeCompleteJoin()
	return resp, w.wait
}

func (m *member) update(cl Client, req *kmsg.JoinGroupRequest) {
	m.clientID, m.clientHost = cl.ID, cl.Host
	m.sessionTimeout = time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	m.rebalanceTimeout = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if req.Version == 0 || m.rebalanceTimeout <= 0 { // v0 had only the session timeout
		m.rebalanceTimeout = m.sessionTimeout
	}
	m.protocols = req.Protocols
}

func sameProtocols(a, b []kmsg.JoinGroupRequestProtocol) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !bytes.Equal(a[i].Metadata, b[i].Metadata) {
			return false
		}
	}
	return true
}

// acceptsProtocols checks a joiner's protocol type and that it shares at
// least one protocol with every current member.
func (g *group) acceptsProtocols(req *kmsg.JoinGroupRequest) bool {
	if len(g.members) == 0 {
		return true // the group takes the protocol type of its first member (addMember)
	}
	if g.protocolType != req.ProtocolType {
		return false
	}
	for _, p := range req.Protocols {
		if g.supportedByAll(p.Name, req.MemberID) {
			return true
		}
	}
	return false
}

// supportedByAll reports whether every member except skip supports a protocol.
func (g *group) supportedByAll(name, skip string) bool {
	for _, m := range g.members {
		if m.id == skip {
			continue
		}
		found := false
		for _, p := range m.protocols {
			if p.Name == name {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func (g *group) checkInstance(instanceID, memberID string) *kerr.Error {
	known, ok := g.static[instanceID]
	switch {
	case !ok:
		return kerr.UnknownMemberID
	case known != memberID:
		return kerr.FencedInstanceID
	}
	return nil
}

// prepareRebalance starts (or continues) a rebalance: every member must
// send JoinGroup again before the new generation begins.
func (g *group) prepareRebalance() {
	now := g.c.now()
	if g.state == stateCompletingRebalance {
		for _, m := range g.members {
			if m.sync != nil {
				m.sync.resp.ErrorCode = kerr.RebalanceInProgress.Code
				close(m.sync.done)
				m.sync = nil
			}
		}
	}
	if g.state != statePreparingRebalance {
		if g.state == stateEmpty && g.c.cfg.InitialRebalanceDelay > 0 {
			g.joinNotBefore = now.Add(g.c.cfg.InitialRebalanceDelay)
		}
		g.state = statePreparingRebalance
		g.rebalanceDeadline = now.Add(g.maxRebalanceTimeout())
	} else if !g.joinNotBefore.IsZero() {
		// Kafka's initial delay: each new member of a forming group
		// extends the wait, within the rebalance timeout.
		g.joinNotBefore = minTime(now.Add(g.c.cfg.InitialRebalanceDelay), g.rebalanceDeadline)
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// maybeCompleteJoin ends the join phase when every member has rejoined
// (and the initial delay has passed), or arms a timer for when it must end.
func (g *group) maybeCompleteJoin() {
	if g.state != statePreparingRebalance {
		return
	}
	now := g.c.now()
	allJoined := true
	for _, m := range g.members {
		if m.join == nil {
			allJoined = false
			break
		}
	}
	switch {
	case allJoined && !now.Before(g.joinNotBefore):
		g.completeJoin()
	case !now.Before(g.rebalanceDeadline):
		g.completeJoin()
	default:
		next := g.rebalanceDeadline
		if allJoined {
			next = g.joinNotBefore
		}
		g.schedule(next.Sub(now), g.maybeCompleteJoin)
	}
}

// schedule runs fn under the coordinator lock after d, unless the group has
// been replaced or another schedule came first.
func (g *group) schedule(d time.Duration, fn func()) {
	g.stopTimers()
	var t clock.Timer
	t = g.c.clock.AfterFunc(d, guard.Func(g.c.logger, "group rebalance timer", func() {
		c := g.c
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || c.groups[g.name] != g || g.timer != t {
			return
		}
		g.timer = nil
		fn()
	}))
	g.timer = t
}

// completeJoin starts a new generation with the members that rejoined.
// Dynamic members that did not are dropped; static ones keep their place
// (KIP-345) and get their assignment when they come back.
func (g *group) completeJoin() {
	g.stopTimers()
	g.joinNotBefore = time.Time{}
	for _, m := range g.members {
		if m.join == nil && m.instanceID == nil {
			g.c.logger.Info("member did not rejoin in time; removed", "group", g.name, "member", m.id)
			g.removeMember(m)
		}
	}
	g.generation++
	joined := 0
	for _, m := range g.members {
		m.synced = false
		if m.join != nil {
			joined++
		}
	}
	if joined == 0 {
		g.becomeEmpty()
		return
	}
	g.protocol = g.chooseProtocol()
	if l := g.members[g.leader]; l == nil || l.join == nil {
		for _, m := range g.members {
			if m.join != nil {
				g.leader = m.id
				break
			}
		}
	}
	g.state = stateCompletingRebalance
	now := g.c.now()
	g.rebalancedAt = now
	for _, m := range g.members {
		if m.join != nil {
			// As Kafka: the session restarts with the answer, however
			// long the member waited for it.
			m.deadline = now.Add(m.sessionTimeout)
			g.fillJoin(m, m.join.resp)
			close(m.join.done)
			m.join = nil
		}
	}
	g.c.logger.Info("group rebalanced", "group", g.name, "generation", g.generation, "members", len(g.members), "protocol", g.protocol, "leader", g.leader)
	// Members that do not send SyncGroup in time are dropped.
	gen := g.generation
	g.schedule(g.maxRebalanceTimeout(), func() {
		if g.generation != gen || g.state != stateCompletingRebalance {
			return
		}
		for _, m := range g.members {
			if !m.synced {
				g.c.logger.Info("member did not sync in time; removed", "group", g.name, "member", m.id)
				g.removeMember(m)
			}
		}
		g.prepareRebalance()
		g.maybeCompleteJoin()
	})
}

func (g *group) becomeEmpty() {
	g.state = stateEmpty
	g.protocol, g.leader = "", ""
	g.emptySince = g.c.now()
	g.stopTimers()
	g.persistMeta()
	g.recordMembership()
}

// chooseProtocol picks the protocol every member supports that most
// members prefer, as Kafka does.
func (g *group) chooseProtocol() string {
	votes := map[string]int{}
	var order []string
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.supportedByAll(p.Name, "") {
				if votes[p.Name] == 0 {
					order = append(order, p.Name)
				}
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, name := range order {
		if best == "" || votes[name] > votes[best] || (votes[name] == votes[best] && name < best) {
			best = name
		}
	}
	return best
}

// fillJoin writes the current generation into a join response; the leader
// also gets every member's metadata for the chosen protocol.
func (g *group) fillJoin(m *member, resp *kmsg.JoinGroupResponse) {
	resp.ErrorCode = 0
	resp.Generation = g.generation
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.LeaderID = g.leader
	resp.MemberID = m.id
	resp.Members = nil
	if m.id != g.leader {
		return
	}
	for _, o := range g.members {
		rm := kmsg.NewJoinGroupResponseMember()
		rm.MemberID, rm.InstanceID = o.id, o.instanceID
		for _, p := range o.protocols {
			if p.Name == g.protocol {
				rm.ProtocolMetadata = p.Metadata
			}
		}
		resp.Members = append(resp.Members, rm)
	}
}

// removeMember drops a member, answering anything it waits for.
func (g *group) removeMember(m *member) {
	m.answerWaiters(kerr.UnknownMemberID)
	m.stopTimer()
	delete(g.members, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		for id := range g.members {
			g.leader = id
			break
		}
	}
}

// watchSession expires a member that stops heartbeating. Members waiting in
// JoinGroup or SyncGroup are alive: their wait is bounded by the rebalance.
func (g *group) watchSession(m *member) {
	m.deadline = g.c.now().Add(m.sessionTimeout)
	var check func()
	check = func() {
		c := g.c
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || c.groups[g.name] != g || g.members[m.id] != m {
			return
		}
		now := c.now()
		if m.join != nil || m.sync != nil || now.Before(m.deadline) {
			m.timer = c.clock.AfterFunc(max(m.deadline.Sub(now), m.sessionTimeout/4), guard.Func(c.logger, "group session timer", check))
			return
		}
		c.logger.Info("member session timed out; removed", "group", g.name, "member", m.id, "session_timeout", m.sessionTimeout)
		g.removeMember(m)
		g.memberLeft()
	}
	m.timer = g.c.clock.AfterFunc(m.sessionTimeout, guard.Func(g.c.logger, "group session timer", check))
}

// memberLeft rebalances the members that remain, or empties the group.
func (g *group) memberLeft() {
	if len(g.members) == 0 && g.state != statePreparingRebalance {
		g.generation++
		g.becomeEmpty()
		return
	}
	g.prepareRebalance()
	g.maybeCompleteJoin()
}

// ---- SyncGroup ----

// Sync handles SyncGroup. The response is complete once wait returns.
func (c *Coordinator) Sync(cl Client, req *kmsg.SyncGroupRequest) (resp *kmsg.SyncGroupResponse, wait func()) {
	resp = req.ResponseKind().(*kmsg.SyncGroupResponse)
	fail := func(e *kerr.Error) (*kmsg.SyncGroupResponse, func()) {
		resp.ErrorCode = e.Code
		return resp, nil
	}
	switch {
	case req.Group == "":
		return fail(kerr.InvalidGroupID)
	case req.Version >= 5 && (req.ProtocolType == nil || req.Protocol == nil):
		// As Kafka: from v5 the member names the protocol it was given.
		return fail(kerr.InconsistentGroupProtocol)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fail(kerr.NotCoordinator)
	}
	g := c.groups[req.Group]
	if g == nil {
		return fail(kerr.UnknownMemberID)
	}
	if req.InstanceID != nil {
		if e := g.checkInstance(*req.InstanceID, req.MemberID); e != nil {
			return fail(e)
		}
	}
	m := g.members[req.MemberID]
	switch {
	case m == nil:
		return fail(kerr.UnknownMemberID)
	case req.Generation != g.generation:
		return fail(kerr.IllegalGeneration)
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		return fail(kerr.InconsistentGroupProtocol)
	}
	m.deadline = c.now().Add(m.sessionTimeout)
	switch g.state {
	case statePreparingRebalance:
		return fail(kerr.RebalanceInProgress)
	case stateStable:
		g.fillSync(m, resp)
		return resp, nil
	case stateCompletingRebalance:
		m.synced = true
		m.supersede()
		m.sync = newWaiter(resp)
		w := m.sync
		if m.id == g.leader {
			g.completeSync(req.GroupAssignment)
		}
		return resp, w.wait
	}
	return fail(kerr.UnknownMemberID)
}

// completeSync stores the leader's assignment and answers every member
// waiting for it: the group is stable.
func (g *group) completeSync(assignments []kmsg.SyncGroupRequestGroupAssignment) {
	for _, m := range g.members {
		m.assignment = nil
	}
	for _, a := range assignments {
		if m := g.members[a.MemberID]; m != nil {
			m.assignment = a.MemberAssignment
		}
	}
	g.state = stateStable
	g.stopTimers()
	now := g.c.now()
	for _, m := range g.members {
		if m.sync != nil {
			m.deadline = now.Add(m.sessionTimeout)
			g.fillSync(m, m.sync.resp)
			close(m.sync.done)
			m.sync = nil
		}
	}
	g.persistMeta()
	g.recordMembership()
}

// emptyConsumerAssignment is a "consumer" protocol assignment of nothing,
// sent instead of zero bytes, which some clients cannot decode.
var emptyConsumerAssignment = func() []byte {
	a := kmsg.NewConsumerMemberAssignment()
	return a.AppendTo(nil)
}()

func (g *group) fillSync(m *member, resp *kmsg.SyncGroupResponse) {
	resp.ErrorCode = 0
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.MemberAssignment = m.assignment
	if len(m.assignment) == 0 && g.protocolType == "consumer" {
		resp.MemberAssignment = emptyConsumerAssignment
	}
}

// ---- Heartbeat ----

// Heartbeat handles Heartbeat: it keeps a member's session alive and tells
// it when to rejoin (REBALANCE_IN_PROGRESS).
func (c *Coordinator) Heartbeat(cl Client, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	resp.ErrorCode = c.heartbeat(req).Code
	return resp
}

var errNone = &kerr.Error{Message: "NONE", Code: 0}

func (c *Coordinator) heartbeat(req *kmsg.HeartbeatRequest) *kerr.Error {
	if req.Group == "" {
		return kerr.InvalidGroupID
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return kerr.NotCoordinator
	}
	g := c.groups[req.Group]
	if g == nil {
		return kerr.UnknownMemberID
	}
	if req.InstanceID != nil {
		if e := g.checkInstance(*req.InstanceID, req.MemberID); e != nil {
			return e
		}
	}
	m := g.members[req.MemberID]
	if m == nil {
		return kerr.UnknownMemberID
	}
	if req.Generation != g.generation {
		return kerr.IllegalGeneration
	}
	m.deadline = c.now().Add(m.sessionTimeout)
	if g.state == statePreparingRebalance {
		return kerr.RebalanceInProgress
	}
	return errNone
}

// ---- LeaveGroup ----

// Leave handles LeaveGroup (one member before v3, a batch by member id or
// static instance id from v3).
func (c *Coordinator) Leave(cl Client, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	g := c.groups[req.Group]
	left := false
	for _, lm := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = lm.MemberID, lm.InstanceID
		rm.ErrorCode = g.leave(lm, &left).Code
		resp.Members = append(resp.Members, rm)
	}
	if left {
		g.memberLeft()
	}
	if req.Version < 3 {
		resp.ErrorCode = resp.Members[0].ErrorCode
		resp.Members = nil
	}
	return resp
}

func (g *group) leave(lm kmsg.LeaveGroupRequestMember, left *bool) *kerr.Error {
	if g == nil {
		return kerr.UnknownMemberID
	}
	id := lm.MemberID
	if lm.InstanceID != nil {
		known, ok := g.static[*lm.InstanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID
		case id != "" && id != known:
			return kerr.FencedInstanceID
		}
		id = known
	}
	if _, ok := g.pending[id]; ok {
		delete(g.pending, id)
		return errNone
	}
	m := g.members[id]
	if m == nil {
		return kerr.UnknownMemberID
	}
	g.c.logger.Info("member left", "group", g.name, "member", id)
	g.removeMember(m)
	*left = true
	return errNone
}
