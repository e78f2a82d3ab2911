package broker

import (
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/group"
)

// The group APIs of every kind enter through group.Front, which decides
// what kind a name is; these handlers only pass requests through.

func init() {
	register(kmsg.FindCoordinator, 0, handleFindCoordinator)
	registerAsync(kmsg.JoinGroup, 0, func(b *Broker, r *request, req *kmsg.JoinGroupRequest) (kmsg.Response, func()) {
		return b.front.Join(r.client(), req)
	})
	registerAsync(kmsg.SyncGroup, 0, func(b *Broker, r *request, req *kmsg.SyncGroupRequest) (kmsg.Response, func()) {
		return b.front.Sync(r.client(), req)
	})
	register(kmsg.Heartbeat, 0, func(b *Broker, r *request, req *kmsg.HeartbeatRequest) kmsg.Response {
		return b.front.Heartbeat(r.client(), req)
	})
	register(kmsg.LeaveGroup, 0, func(b *Broker, r *request, req *kmsg.LeaveGroupRequest) kmsg.Response {
		return b.front.Leave(r.client(), req)
	})
	register(kmsg.OffsetCommit, 0, func(b *Broker, r *request, req *kmsg.OffsetCommitRequest) kmsg.Response {
		return b.front.Commit(r.client(), req)
	})
	register(kmsg.OffsetFetch, 0, func(b *Broker, r *request, req *kmsg.OffsetFetchRequest) kmsg.Response {
		resp := b.front.Fetch(r.client(), req)
		if req.RequireStable {
			b.markUnstableOffsets(req, resp)
		}
		return resp
	})
	register(kmsg.OffsetDelete, 0, func(b *Broker, r *request, req *kmsg.OffsetDeleteRequest) kmsg.Response {
		return b.front.DeleteOffsets(r.client(), req)
	})
	register(kmsg.ListGroups, 0, func(b *Broker, r *request, req *kmsg.ListGroupsRequest) kmsg.Response {
		return b.front.List(req)
	})
	register(kmsg.DescribeGroups, 0, func(b *Broker, r *request, req *kmsg.DescribeGroupsRequest) kmsg.Response {
		return b.front.Describe(req)
	})
	register(kmsg.DeleteGroups, 0, func(b *Broker, r *request, req *kmsg.DeleteGroupsRequest) kmsg.Response {
		return b.front.Delete(req)
	})
	// KIP-848: v1 only, where members choose their own ids; v0 was Kafka
	// 3.7's early access and no released client needs it.
	register(kmsg.ConsumerGroupHeartbeat, 1, func(b *Broker, r *request, req *kmsg.ConsumerGroupHeartbeatRequest) kmsg.Response {
		return b.front.ConsumerHeartbeat(r.client(), req)
	})
	register(kmsg.ConsumerGroupDescribe, 0, func(b *Broker, r *request, req *kmsg.ConsumerGroupDescribeRequest) kmsg.Response {
		return b.front.ConsumerDescribe(req)
	})
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
