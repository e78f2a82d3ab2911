package broker

import (
	"net"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/cluster"
	"github.com/creek-pipeline/creek/internal/config"
	"github.com/creek-pipeline/creek/internal/group"
)

// The consumer group APIs are served by internal/group; these handlers
// only pass requests through.

func init() {
	register(kmsg.FindCoordinator, 0, handleFindCoordinator)
	registerAsync(kmsg.JoinGroup, 0, func(b *Broker, r *request, req *kmsg.JoinGroupRequest) (kmsg.Response, func()) {
		if b.shares.Has(req.Group) {
			resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
			resp.ErrorCode, resp.Generation = kerr.InconsistentGroupProtocol.Code, -1
			return resp, nil
		}
		return b.groups.Join(r.client(), req)
	})
	registerAsync(kmsg.SyncGroup, 0, func(b *Broker, r *request, req *kmsg.SyncGroupRequest) (kmsg.Response, func()) {
		return b.groups.Sync(r.client(), req)
	})
	register(kmsg.Heartbeat, 0, func(b *Broker, r *request, req *kmsg.HeartbeatRequest) kmsg.Response {
		return b.groups.Heartbeat(r.client(), req)
	})
	register(kmsg.LeaveGroup, 0, func(b *Broker, r *request, req *kmsg.LeaveGroupRequest) kmsg.Response {
		return b.groups.Leave(r.client(), req)
	})
	register(kmsg.OffsetCommit, 0, func(b *Broker, r *request, req *kmsg.OffsetCommitRequest) kmsg.Response {
		return b.groups.Commit(r.client(), req)
	})
	register(kmsg.OffsetFetch, 0, func(b *Broker, r *request, req *kmsg.OffsetFetchRequest) kmsg.Response {
		resp := b.groups.Fetch(r.client(), req)
		if req.RequireStable {
			b.markUnstableOffsets(req, resp)
		}
		return resp
	})
	register(kmsg.OffsetDelete, 0, func(b *Broker, r *request, req *kmsg.OffsetDeleteRequest) kmsg.Response {
		return b.groups.DeleteOffsets(r.client(), req)
	})
	register(kmsg.ListGroups, 0, func(b *Broker, r *request, req *kmsg.ListGroupsRequest) kmsg.Response {
		return b.listGroups(req)
	})
	register(kmsg.DescribeGroups, 0, func(b *Broker, r *request, req *kmsg.DescribeGroupsRequest) kmsg.Response {
		return b.groups.Describe(req)
	})
	register(kmsg.DeleteGroups, 0, func(b *Broker, r *request, req *kmsg.DeleteGroupsRequest) kmsg.Response {
		return b.deleteGroups(req)
	})
	// KIP-848: v1 only, where members choose their own ids; v0 was Kafka
	// 3.7's early access and no released client needs it.
	register(kmsg.ConsumerGroupHeartbeat, 1, func(b *Broker, r *request, req *kmsg.ConsumerGroupHeartbeatRequest) kmsg.Response {
		if b.shares.Has(req.Group) {
			resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
			resp.ErrorCode = kerr.GroupIDNotFound.Code
			resp.ErrorMessage = kmsg.StringPtr("group " + req.Group + " is a share group")
			return resp
		}
		return b.groups.ConsumerHeartbeat(r.client(), req)
	})
	register(kmsg.ConsumerGroupDescribe, 0, func(b *Broker, r *request, req *kmsg.ConsumerGroupDescribeRequest) kmsg.Response {
		return b.groups.ConsumerDescribe(req)
	})
}

// listGroups lists consumer groups (classic and KIP-848) and share groups.
func (b *Broker) listGroups(req *kmsg.ListGroupsRequest) kmsg.Response {
	var shares []group.Listed
	for _, sg := range b.shares.List() {
		shares = append(shares, group.Listed{Name: sg.Name, ProtocolType: "share", State: sg.State, Type: "share"})
	}
	return b.groups.List(req, shares...)
}

// deleteGroups deletes share groups itself and passes the rest to the
// group coordinator.
func (b *Broker) deleteGroups(req *kmsg.DeleteGroupsRequest) kmsg.Response {
	others := *req
	others.Groups = nil
	shareAnswers := map[string]kmsg.DeleteGroupsResponseGroup{}
	for _, name := range req.Groups {
		if !b.shares.Has(name) {
			others.Groups = append(others.Groups, name)
			continue
		}
		dg := kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = name
		if e := b.shares.Delete(name); e != nil {
			dg.ErrorCode = e.Code
		}
		shareAnswers[name] = dg
	}
	resp := b.groups.DeleteGroups(&others)
	for _, dg := range shareAnswers {
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

// client describes the requester as Kafka does in DescribeGroups.
func (r *request) client() group.Client {
	host, _, _ := net.SplitHostPort(r.conn.nc.RemoteAddr().String())
	return group.Client{ID: r.clientID, Host: "/" + host}
}

// handleFindCoordinator answers that this broker coordinates every group
// (and every transactional id): it is the only one. As in Kafka, the empty
// group id has a coordinator too (OffsetCommit and OffsetFetch take it).
func handleFindCoordinator(b *Broker, r *request, req *kmsg.FindCoordinatorRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	host, port := b.advertisedAddr(r.conn)
	answer := func(key string) (int16, *string) {
		switch {
		case b.isClosing():
			return kerr.CoordinatorNotAvailable.Code, stringPtr("the broker is shutting down")
		case req.CoordinatorType != 0 && req.CoordinatorType != 1:
			return kerr.InvalidRequest.Code, stringPtr("unknown coordinator type")
		}
		return 0, nil
	}
	switch req.CoordinatorType {
	case 0:
		b.ensureInternalTopic(offsetsTopic)
	case 1:
		b.ensureInternalTopic(transactionTopic)
	}
	if req.Version < 4 {
		resp.ErrorCode, resp.ErrorMessage = answer(req.CoordinatorKey)
		if resp.ErrorCode == 0 {
			resp.NodeID, resp.Host, resp.Port = b.nodeID, host, port
		} else {
			resp.NodeID, resp.Port = -1, -1
		}
		return resp
	}
	for _, key := range req.CoordinatorKeys {
		rc := kmsg.NewFindCoordinatorResponseCoordinator()
		rc.Key = key
		rc.ErrorCode, rc.ErrorMessage = answer(key)
		if rc.ErrorCode == 0 {
			rc.NodeID, rc.Host, rc.Port = b.nodeID, host, port
		} else {
			rc.NodeID, rc.Port = -1, -1
		}
		resp.Coordinators = append(resp.Coordinators, rc)
	}
	return resp
}

// groupConfig reads the coordinator's settings.
func groupConfig(v *config.BrokerValues) group.Config {
	ms := func(name string) time.Duration { return time.Duration(v.Int64(name)) * time.Millisecond }
	var assignors []string
	for _, a := range strings.Split(v.String("group.consumer.assignors"), ",") {
		assignors = append(assignors, strings.TrimSpace(a))
	}
	return group.Config{
		MinSessionTimeout:     ms("group.min.session.timeout.ms"),
		MaxSessionTimeout:     ms("group.max.session.timeout.ms"),
		InitialRebalanceDelay: ms("group.initial.rebalance.delay.ms"),
		MaxSize:               int(v.Int64("group.max.size")),
		OffsetsRetention:      time.Duration(v.Int64("offsets.retention.minutes")) * time.Minute,
		RetentionCheck:        ms("offsets.retention.check.interval.ms"),
		MaxMetadataBytes:      int(v.Int64("offset.metadata.max.bytes")),

		ConsumerSessionTimeout:    ms("group.consumer.session.timeout.ms"),
		ConsumerHeartbeatInterval: ms("group.consumer.heartbeat.interval.ms"),
		ConsumerAssignors:         assignors,
	}
}

// topicDirectory answers the coordinator's questions about topics.
type topicDirectory struct{ c *cluster.Cluster }

func (d topicDirectory) TopicByName(name string) ([16]byte, int32, bool) {
	t, ok := d.c.Topic(name)
	if !ok {
		return [16]byte{}, 0, false
	}
	return t.ID(), t.NumPartitions(), true
}

func (d topicDirectory) TopicNames() []string {
	var names []string
	for _, t := range d.c.Topics() {
		names = append(names, t.Name())
	}
	return names
}

func (d topicDirectory) TopicByID(id [16]byte) (string, int32, bool) {
	t, ok := d.c.TopicByID(id)
	if !ok {
		return "", 0, false
	}
	return t.Name(), t.NumPartitions(), true
}
