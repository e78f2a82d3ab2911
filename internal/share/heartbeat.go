package share

import (
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

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
	m.deadline = c.now().Add(c.groupCfg(g.name).SessionTimeout)
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
	resp.HeartbeatIntervalMillis = int32(c.groupCfg(g.name).HeartbeatInterval.Milliseconds())
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
