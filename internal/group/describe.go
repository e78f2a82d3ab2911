package group

import (
	"slices"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Describing groups: DescribeGroups for classic groups and
// ConsumerGroupDescribe for consumer groups, once the Front has looked the
// name up.

// ---- ConsumerGroupDescribe ----

// describeConsumer fills ConsumerGroupDescribe's answer for a group the
// Front found to be a consumer group.
func (c *Coordinator) describeConsumer(dg *kmsg.ConsumerGroupDescribeResponseGroup) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[dg.Group]
	if g == nil || g.cg == nil { // gone (or changed kind) since the Front looked
		dg.ErrorCode, dg.ErrorMessage = kerr.GroupIDNotFound.Code, kmsg.StringPtr("group "+dg.Group+" does not exist")
		return
	}
	g.describeConsumer(dg)
}

func (g *group) describeConsumer(dg *kmsg.ConsumerGroupDescribeResponseGroup) {
	cg := g.cg
	dg.State, dg.Epoch, dg.AssignmentEpoch = cg.state(), cg.epoch, cg.assignmentEpoch
	dg.AssignorName = cg.assignor
	if dg.AssignorName == "" {
		dg.AssignorName = g.c.cfg.ConsumerAssignors[0]
	}
	ids := make([]string, 0, len(cg.members))
	for id := range cg.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := cg.members[id]
		dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.RackID, dm.MemberEpoch = m.id, m.instanceID, m.rackID, m.epoch
		dm.ClientID, dm.ClientHost = m.clientID, m.clientHost
		dm.SubscribedTopics = m.topics
		if dm.SubscribedTopics == nil {
			dm.SubscribedTopics = []string{}
		}
		if m.regex != "" {
			dm.SubscribedTopicRegex = kmsg.StringPtr(m.regex)
		}
		dm.Assignment = g.describeAssignment(m.assigned)
		dm.TargetAssignment = g.describeAssignment(cg.target[m.id])
		dm.MemberType = 1 // a consumer-protocol member
		dg.Members = append(dg.Members, dm)
	}
}

func (g *group) describeAssignment(s partitionSet) kmsg.Assignment {
	a := kmsg.NewAssignment()
	ids, parts := s.byTopic()
	for _, id := range ids {
		tp := kmsg.NewAssignmentTopicPartition()
		tp.TopicID, tp.Partitions = id, parts[id]
		tp.Topic, _, _ = g.c.topics.TopicByID(id)
		a.TopicPartitions = append(a.TopicPartitions, tp)
	}
	return a
}

// ---- DescribeGroups ----

// describeClassic fills DescribeGroups' answer for a classic group. As in
// Kafka, members' metadata and assignments are reported only while the
// group is stable.
func (c *Coordinator) describeClassic(dg *kmsg.DescribeGroupsResponseGroup) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[dg.Group]
	if g == nil || g.cg != nil { // gone (or changed kind) since the Front looked
		dg.State = "Dead"
		return
	}
	dg.State, dg.ProtocolType = g.state.String(), g.protocolType
	stable := g.state == stateStable
	if stable {
		dg.Protocol = g.protocol
	}
	for _, m := range g.sortedMembers() {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.ClientID, dm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
		if stable {
			for _, p := range m.protocols {
				if p.Name == g.protocol {
					dm.ProtocolMetadata = p.Metadata
				}
			}
			dm.MemberAssignment = m.assignment
		}
		dg.Members = append(dg.Members, dm)
	}
}

func (g *group) sortedMembers() []*member {
	out := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *member) int { return strings.Compare(a.id, b.id) })
	return out
}
