package group

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The admin side of classic and consumer groups, which the Front serves
// across kinds once it has looked the name up.

// listed is every classic and consumer group as ListGroups reports them;
// ok is false once the coordinator is closed.
func (c *Coordinator) listed() (all []Listed, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, false
	}
	for _, g := range c.groups {
		l := Listed{Name: g.name, ProtocolType: g.protocolType, State: g.state.String(), Type: "classic"}
		if g.cg != nil {
			l.State, l.Type = g.cg.state(), "consumer"
		}
		all = append(all, l)
	}
	return all, true
}

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

// deleteGroup deletes a group without members with its committed offsets.
func (c *Coordinator) deleteGroup(name string) *kerr.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[name]
	switch {
	case g == nil:
		return kerr.GroupIDNotFound
	case g.hasMembers():
		return kerr.NonEmptyGroup
	}
	if err := c.store.DeleteGroup(name); err != nil {
		c.logger.Error("could not delete group", "group", name, "err", err)
		return kerr.KafkaStorageError
	}
	g.stopTimers()
	delete(c.groups, name)
	c.logger.Info("group deleted", "group", name)
	return nil
}
