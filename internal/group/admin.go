package group

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Listed is a group as ListGroups reports it.
type Listed struct {
	Name, ProtocolType, State, Type string
}

// List handles ListGroups, with the state (v4+) and type (v5+) filters. The
// broker passes the groups other coordinators keep (share groups) as
// others, so that one answer lists every group, filtered and sorted alike.
func (c *Coordinator) List(req *kmsg.ListGroupsRequest, others ...Listed) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	all := slices.Clone(others)
	for _, g := range c.groups {
		l := Listed{Name: g.name, ProtocolType: g.protocolType, State: g.state.String(), Type: "classic"}
		if g.cg != nil {
			l.State, l.Type = g.cg.state(), "consumer"
		}
		all = append(all, l)
	}
	slices.SortFunc(all, func(a, b Listed) int { return strings.Compare(a.Name, b.Name) })
	for _, l := range all {
		if len(req.StatesFilter) > 0 && !containsFold(req.StatesFilter, l.State) {
			continue
		}
		if len(req.TypesFilter) > 0 && !containsFold(req.TypesFilter, l.Type) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = l.Name, l.ProtocolType, l.State, l.Type
		resp.Groups = append(resp.Groups, lg)
	}
	return resp
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// allGroupOperations: READ, DESCRIBE, DELETE (no ACLs: all allowed).
const allGroupOperations = 1<<3 | 1<<6 | 1<<8

// Describe handles DescribeGroups. As in Kafka, members' metadata and
// assignments are reported only while the group is stable.
func (c *Coordinator) Describe(req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, name := range req.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = name
		g := c.groups[name]
		switch {
		case c.closed:
			dg.ErrorCode = kerr.NotCoordinator.Code
		case g == nil || g.cg != nil:
			// As Kafka 4: a consumer-protocol group is described by
			// ConsumerGroupDescribe, not by this classic API.
			dg.State = "Dead"
			if req.Version >= 6 {
				dg.ErrorCode = kerr.GroupIDNotFound.Code
				msg := "group " + name + " does not exist"
				if g != nil {
					msg = "group " + name + " is not a classic group; use ConsumerGroupDescribe"
				}
				dg.ErrorMessage = kmsg.StringPtr(msg)
			}
		default:
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
		if req.IncludeAuthorizedOperations {
			dg.AuthorizedOperations = allGroupOperations
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

func (g *group) sortedMembers() []*member {
	out := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *member) int { return strings.Compare(a.id, b.id) })
	return out
}

// DeleteGroups handles DeleteGroups: a group without members is deleted
// with its committed offsets.
func (c *Coordinator) DeleteGroups(req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, name := range req.Groups {
		dg := kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = name
		g := c.groups[name]
		var err *kerr.Error
		switch {
		case c.closed:
			err = kerr.NotCoordinator
		case g == nil:
			err = kerr.GroupIDNotFound
		case g.hasMembers():
			err = kerr.NonEmptyGroup
		}
		if err == nil {
			if e := c.store.DeleteGroup(name); e != nil {
				c.logger.Error("could not delete group", "group", name, "err", e)
				err = kerr.KafkaStorageError
			} else {
				g.stopTimers()
				delete(c.groups, name)
				c.logger.Info("group deleted", "group", name)
			}
		}
		if err != nil {
			dg.ErrorCode = err.Code
			if req.Version >= 3 {
				dg.ErrorMessage = kmsg.StringPtr(err.Message + ": " + err.Description)
			}
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}
