package share

import (
	"maps"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The admin side of share groups: describing, listing and deleting them,
// and their offsets, once group.Front has looked the name up.

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
