package group

import (
	"slices"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/share"
)

// Kind is the protocol a group speaks. Classic, consumer-protocol (KIP-848)
// and share groups (KIP-932) share one name space: a name is one kind at a
// time.
type Kind int8

// The kinds of group, and NoGroup for a name no group holds.
const (
	NoGroup Kind = iota
	Classic
	Consumer
	Share
)

func (k Kind) String() string { return [...]string{"none", "classic", "consumer", "share"}[k] }

// Front is where every group request enters. It decides which kind a name
// is, answers a request for a name held by another kind, runs the checks
// every request naming an existing group starts with (lookup), and serves
// ListGroups, DescribeGroups and DeleteGroups across kinds; the rest it
// hands to the Coordinator (classic and consumer groups) or to the share
// coordinator.
type Front struct {
	// mu is held by requests that may create a group, from the check that
	// no group of another kind holds the name until the group exists: two
	// kinds cannot take one name at the same time.
	mu      sync.Mutex
	classic *Coordinator
	shares  *share.Coordinator
}

// NewFront puts one front before the two coordinators.
func NewFront(classic *Coordinator, shares *share.Coordinator) *Front {
	return &Front{classic: classic, shares: shares}
}

// KindOf says which kind of group holds a name.
func (f *Front) KindOf(name string) Kind {
	if k := f.classic.kindOf(name); k != NoGroup {
		return k
	}
	if f.shares.Has(name) {
		return Share
	}
	return NoGroup
}

func (c *Coordinator) kindOf(name string) Kind {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch g := c.groups[name]; {
	case g == nil:
		return NoGroup
	case g.cg != nil:
		return Consumer
	}
	return Classic
}

func (f *Front) closed() bool { return f.classic.isClosed() || f.shares.Closed() }

func (c *Coordinator) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// lookup is the preamble of a request naming an existing group of one of
// the kinds want: the coordinator is running, the name is not empty, a
// group holds it and is of a wanted kind.
func (f *Front) lookup(name string, want ...Kind) (*kerr.Error, string) {
	if name == "" && !f.closed() {
		return kerr.InvalidGroupID, "the group id is empty"
	}
	return f.lookupAny(name, want...)
}

// lookupAny is lookup for the APIs that, in Kafka, look the empty name up
// like any other (DescribeGroups, DeleteGroups): no group holds it.
func (f *Front) lookupAny(name string, want ...Kind) (*kerr.Error, string) {
	if f.closed() {
		return kerr.NotCoordinator, "the broker is shutting down"
	}
	switch k := f.KindOf(name); {
	case k == NoGroup:
		return kerr.GroupIDNotFound, "group " + name + " does not exist"
	case !slices.Contains(want, k):
		return kerr.GroupIDNotFound, "group " + name + " is a " + k.String() + " group, not a " + want[0].String() + " group"
	}
	return nil, ""
}

// otherKind answers a request that would make a group of kind want out of
// a name another kind holds; nil when the name is free or of that kind.
func (f *Front) otherKind(name string, want Kind) (*kerr.Error, string) {
	if name == "" {
		return nil, "" // each coordinator answers the empty name itself (classic ones keep offsets under it)
	}
	k := f.KindOf(name)
	if k == NoGroup || k == want || want != Share && k != Share {
		return nil, "" // classic and consumer groups turn into each other in the Coordinator
	}
	return kerr.GroupIDNotFound, "group " + name + " is a " + k.String() + " group, not a " + want.String() + " group"
}

// ---- classic groups ----

// Join handles JoinGroup; see Coordinator.Join.
func (f *Front) Join(cl Client, req *kmsg.JoinGroupRequest) (*kmsg.JoinGroupResponse, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, _ := f.otherKind(req.Group, Classic); e != nil {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation = kerr.InconsistentGroupProtocol.Code, -1
		return resp, nil
	}
	return f.classic.Join(cl, req)
}

// Sync handles SyncGroup.
func (f *Front) Sync(cl Client, req *kmsg.SyncGroupRequest) (*kmsg.SyncGroupResponse, func()) {
	return f.classic.Sync(cl, req)
}

// Heartbeat handles Heartbeat.
func (f *Front) Heartbeat(cl Client, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	return f.classic.Heartbeat(cl, req)
}

// Leave handles LeaveGroup.
func (f *Front) Leave(cl Client, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	return f.classic.Leave(cl, req)
}

// Commit handles OffsetCommit. A share group's name is refused, as in
// Kafka: committing to it must not make a classic group beside it.
func (f *Front) Commit(cl Client, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, _ := f.otherKind(req.Group, Classic); e != nil {
		resp := newCommitResponse(req)
		for i, rt := range req.Topics {
			code := e.Code
			if req.Version >= 10 { // topics by id: an unknown one is answered first, as Kafka does
				if _, _, ok := f.classic.topics.TopicByID(rt.TopicID); !ok {
					code = kerr.UnknownTopicID.Code
				}
			}
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = code
			}
		}
		return resp
	}
	return f.classic.Commit(cl, req)
}

// Fetch handles OffsetFetch.
func (f *Front) Fetch(cl Client, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	return f.classic.Fetch(cl, req)
}

// DeleteOffsets handles OffsetDelete, for classic and consumer groups.
func (f *Front) DeleteOffsets(cl Client, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	if e, _ := f.lookup(req.Group, Classic, Consumer); e != nil {
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = e.Code
		return resp
	}
	return f.classic.DeleteOffsets(cl, req)
}

// ---- consumer-protocol groups ----

// ConsumerHeartbeat handles ConsumerGroupHeartbeat.
func (f *Front) ConsumerHeartbeat(cl Client, req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, msg := f.otherKind(req.Group, Consumer); e != nil {
		resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode, resp.ErrorMessage = e.Code, kmsg.StringPtr(msg)
		return resp
	}
	return f.classic.ConsumerHeartbeat(cl, req)
}

// ConsumerDescribe handles ConsumerGroupDescribe.
func (f *Front) ConsumerDescribe(req *kmsg.ConsumerGroupDescribeRequest) *kmsg.ConsumerGroupDescribeResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	for _, name := range req.Groups {
		dg := kmsg.NewConsumerGroupDescribeResponseGroup()
		dg.Group = name
		if e, msg := f.lookup(name, Consumer); e != nil {
			dg.ErrorCode, dg.ErrorMessage = e.Code, kmsg.StringPtr(msg)
		} else {
			f.classic.describeConsumer(&dg)
		}
		if req.IncludeAuthorizedOperations {
			dg.AuthorizedOperations = allGroupOperations
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

// ---- share groups ----

// ShareHeartbeat handles ShareGroupHeartbeat.
func (f *Front) ShareHeartbeat(cl Client, req *kmsg.ShareGroupHeartbeatRequest) *kmsg.ShareGroupHeartbeatResponse {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, msg := f.otherKind(req.GroupID, Share); e != nil {
		resp := req.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
		resp.ErrorCode, resp.ErrorMessage = e.Code, kmsg.StringPtr(msg)
		return resp
	}
	return f.shares.Heartbeat(share.Client(cl), req)
}

// ShareDescribe handles ShareGroupDescribe.
func (f *Front) ShareDescribe(req *kmsg.ShareGroupDescribeRequest) *kmsg.ShareGroupDescribeResponse {
	resp := req.ResponseKind().(*kmsg.ShareGroupDescribeResponse)
	for _, name := range req.GroupIDs {
		dg := kmsg.NewShareGroupDescribeResponseGroup()
		dg.GroupID = name
		if e, msg := f.lookup(name, Share); e != nil {
			dg.ErrorCode, dg.ErrorMessage = e.Code, kmsg.StringPtr(msg)
		} else {
			f.shares.Describe(&dg)
		}
		if req.IncludeAuthorizedOperations {
			dg.AuthorizedOperations = allGroupOperations
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

// ShareFetch handles ShareFetch; conn is the client's connection.
func (f *Front) ShareFetch(conn any, req *kmsg.ShareFetchRequest) (*kmsg.ShareFetchResponse, func()) {
	return f.shares.Fetch(conn, req)
}

// ShareAcknowledge handles ShareAcknowledge.
func (f *Front) ShareAcknowledge(conn any, req *kmsg.ShareAcknowledgeRequest) *kmsg.ShareAcknowledgeResponse {
	return f.shares.Acknowledge(conn, req)
}

// DescribeShareOffsets handles DescribeShareGroupOffsets.
func (f *Front) DescribeShareOffsets(req *kmsg.DescribeShareGroupOffsetsRequest) *kmsg.DescribeShareGroupOffsetsResponse {
	return f.shares.DescribeOffsets(req)
}

// AlterShareOffsets handles AlterShareGroupOffsets.
func (f *Front) AlterShareOffsets(req *kmsg.AlterShareGroupOffsetsRequest) *kmsg.AlterShareGroupOffsetsResponse {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, msg := f.otherKind(req.GroupID, Share); e != nil {
		resp := req.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
		resp.ErrorCode, resp.ErrorMessage = e.Code, kmsg.StringPtr(msg)
		return resp
	}
	return f.shares.AlterOffsets(req)
}

// DeleteShareOffsets handles DeleteShareGroupOffsets.
func (f *Front) DeleteShareOffsets(req *kmsg.DeleteShareGroupOffsetsRequest) *kmsg.DeleteShareGroupOffsetsResponse {
	if e, msg := f.lookup(req.GroupID, Share); e != nil {
		resp := req.ResponseKind().(*kmsg.DeleteShareGroupOffsetsResponse)
		resp.ErrorCode, resp.ErrorMessage = e.Code, kmsg.StringPtr(msg)
		return resp
	}
	return f.shares.DeleteOffsets(req)
}

// ---- every kind ----

// Listed is a group as ListGroups reports it.
type Listed struct {
	Name, ProtocolType, State, Type string
}

// List handles ListGroups for every kind, with the state (v4+) and type
// (v5+) filters.
func (f *Front) List(req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	all, ok := f.classic.listed()
	if !ok {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	for _, sg := range f.shares.List() {
		all = append(all, Listed{Name: sg.Name, ProtocolType: "share", State: sg.State, Type: "share"})
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

// Describe handles DescribeGroups, the classic groups' describe: as in
// Kafka 4, a group of another kind is reported Dead (and, from v6, not
// found); its own describe API describes it.
func (f *Front) Describe(req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range req.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = name
		switch e, msg := f.lookupAny(name, Classic); {
		case e == kerr.NotCoordinator:
			dg.ErrorCode = e.Code
		case e != nil:
			dg.State = "Dead"
			if req.Version >= 6 {
				dg.ErrorCode, dg.ErrorMessage = e.Code, kmsg.StringPtr(msg)
			}
		default:
			f.classic.describeClassic(&dg)
		}
		if req.IncludeAuthorizedOperations {
			dg.AuthorizedOperations = allGroupOperations
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

// Delete handles DeleteGroups for every kind: a group without members is
// deleted with its offsets (or share state).
func (f *Front) Delete(req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, name := range req.Groups {
		dg := kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = name
		e, _ := f.lookupAny(name, Classic, Consumer, Share)
		if e == nil {
			if f.KindOf(name) == Share {
				e = f.shares.Delete(name)
			} else {
				e = f.classic.deleteGroup(name)
			}
		}
		if e != nil {
			dg.ErrorCode = e.Code
			if req.Version >= 3 {
				dg.ErrorMessage = kmsg.StringPtr(e.Message + ": " + e.Description)
			}
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}
