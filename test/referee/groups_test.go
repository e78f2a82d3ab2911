package referee

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// coordinatorReady waits until both brokers can coordinate a group or
// transactional id (Kafka creates its internal topics on first use).
func (p *pair) coordinatorReady(keyType int8, key string) {
	p.t.Helper()
	p.both(func(side string, c *conn) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.SetVersion(4)
			req.CoordinatorType, req.CoordinatorKeys = keyType, []string{key}
			resp := c.must(req).(*kmsg.FindCoordinatorResponse)
			if len(resp.Coordinators) == 1 && resp.Coordinators[0].ErrorCode == 0 && (keyType != 0 || groupsLoaded(c, key)) {
				return
			}
			if time.Now().After(deadline) {
				p.t.Fatalf("%s: no coordinator for %q after 30s", side, key)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// groupsLoaded reports whether the coordinator of a group answers for it
// (Kafka loads the partition of __consumer_offsets that holds it after it
// names the coordinator).
func groupsLoaded(c *conn, group string) bool {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.SetVersion(8)
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	req.Groups = append(req.Groups, rg)
	resp := c.must(req).(*kmsg.OffsetFetchResponse)
	if len(resp.Groups) != 1 {
		return false
	}
	code := resp.Groups[0].ErrorCode
	return code != 14 && code != 15 && code != 16
}

func findCoordinatorReq(keyType int8, key string) func(string) kmsg.Request {
	return func(string) kmsg.Request {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorType, req.CoordinatorKey, req.CoordinatorKeys = keyType, key, []string{key}
		return req
	}
}

func TestFindCoordinator(t *testing.T) {
	p := newPair(t)
	g := uniqueName(t, "group")
	p.coordinatorReady(0, g)
	p.coordinatorReady(1, g)
	for _, v := range versions(kmsg.FindCoordinator, 0) {
		p.same("FindCoordinator group", v, findCoordinatorReq(0, g))
		p.same("FindCoordinator transaction", v, findCoordinatorReq(1, g))
		p.same("FindCoordinator unknown key type", v, findCoordinatorReq(7, g))
		p.same("FindCoordinator empty group id", v, findCoordinatorReq(0, ""))
	}
}

func joinReq(group, member string, protocolType string) func(string) kmsg.Request {
	return func(string) kmsg.Request {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.MemberID, req.ProtocolType = group, member, protocolType
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 10000
		proto := kmsg.NewJoinGroupRequestProtocol()
		proto.Name, proto.Metadata = "range", []byte{0, 1, 0, 0, 0, 0, 0, 0}
		req.Protocols = append(req.Protocols, proto)
		return req
	}
}

func TestClassicGroupErrors(t *testing.T) {
	p := newPair(t)
	g := uniqueName(t, "classic")
	p.coordinatorReady(0, g)
	for _, v := range versions(kmsg.JoinGroup, 0) {
		p.same("JoinGroup empty group id", v, joinReq("", "", "consumer"))
		p.same("JoinGroup unknown member id", v, joinReq(g, "nobody-1234", "consumer"))
		p.same("JoinGroup no protocol type", v, joinReq(g+"-np", "", ""))
		if v >= 4 {
			p.same("JoinGroup without member id (v4+ asks for one)", v, joinReq(g+"-v4", "", "consumer"))
		}
	}
	for _, v := range versions(kmsg.Heartbeat, 0) {
		p.same("Heartbeat unknown group", v, func(string) kmsg.Request {
			req := kmsg.NewPtrHeartbeatRequest()
			req.Group, req.Generation, req.MemberID = g+"-none", 1, "m"
			return req
		})
	}
	for _, v := range versions(kmsg.SyncGroup, 0) {
		p.same("SyncGroup unknown group", v, func(string) kmsg.Request {
			req := kmsg.NewPtrSyncGroupRequest()
			req.Group, req.Generation, req.MemberID = g+"-none", 1, "m"
			return req
		})
	}
	for _, v := range versions(kmsg.LeaveGroup, 0) {
		p.same("LeaveGroup unknown group", v, func(string) kmsg.Request {
			req := kmsg.NewPtrLeaveGroupRequest()
			req.Group, req.MemberID = g+"-none", "m"
			req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "m"}}
			return req
		})
	}
	for _, v := range versions(kmsg.DescribeGroups, 0) {
		p.same("DescribeGroups unknown group", v, func(string) kmsg.Request {
			req := kmsg.NewPtrDescribeGroupsRequest()
			req.Groups = []string{g + "-none"}
			return req
		})
	}
	for _, v := range versions(kmsg.DeleteGroups, 0) {
		p.same("DeleteGroups unknown group", v, func(string) kmsg.Request {
			req := kmsg.NewPtrDeleteGroupsRequest()
			req.Groups = []string{g + "-none"}
			return req
		})
	}
}

func offsetCommitReq(group string, generation int32, member, topic string, partition int32, offset int64, metadata string) func(string) kmsg.Request {
	return func(string) kmsg.Request {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation, req.MemberID = group, generation, member
		req.RetentionTimeMillis = -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.Metadata, rp.LeaderEpoch = partition, offset, kmsg.StringPtr(metadata), -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}
}

func offsetFetchReq(group, topic string, partition int32) func(string) kmsg.Request {
	return func(string) kmsg.Request {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group = group
		req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: []int32{partition}}}
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group, rg.MemberEpoch = group, -1
		rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: []int32{partition}}}
		req.Groups = append(req.Groups, rg)
		return req
	}
}

func TestOffsets(t *testing.T) {
	p := newPair(t)
	g := uniqueName(t, "offsets")
	topic := uniqueName(t, "topic")
	p.createTopic(topic, 2, nil)
	p.coordinatorReady(0, g)
	for _, v := range versions(kmsg.OffsetCommit, 2) {
		if v >= 10 {
			continue // by topic id
		}
		p.same("OffsetCommit without membership", v, offsetCommitReq(g, -1, "", topic, 0, 5, "meta"))
		p.same("OffsetCommit unknown partition", v, offsetCommitReq(g, -1, "", topic, 7, 5, ""))
		p.same("OffsetCommit unknown topic", v, offsetCommitReq(g, -1, "", topic+"-none", 0, 5, ""))
		p.same("OffsetCommit with a generation to an empty group", v, offsetCommitReq(g, 3, "m-1", topic, 0, 5, ""))
		p.same("OffsetCommit empty group id", v, offsetCommitReq("", -1, "", topic, 0, 5, ""))
		p.same("OffsetCommit metadata too large", v, offsetCommitReq(g, -1, "", topic, 1, 9, strings.Repeat("m", 5000)))
	}
	for _, v := range versions(kmsg.OffsetFetch, 1) {
		if v >= 10 {
			continue // by topic id
		}
		p.same("OffsetFetch committed", v, offsetFetchReq(g, topic, 0))
		p.same("OffsetFetch not committed", v, offsetFetchReq(g, topic, 1))
		p.same("OffsetFetch unknown group", v, offsetFetchReq(g+"-none", topic, 0))
		p.same("OffsetFetch unknown topic", v, offsetFetchReq(g, topic+"-none", 0))
	}
	for _, v := range versions(kmsg.OffsetDelete, 0) {
		p.same("OffsetDelete", v, func(string) kmsg.Request {
			req := kmsg.NewPtrOffsetDeleteRequest()
			req.Group = g
			req.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 1}}}}
			return req
		})
		p.same("OffsetDelete unknown group", v, func(string) kmsg.Request {
			req := kmsg.NewPtrOffsetDeleteRequest()
			req.Group = g + "-none"
			req.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
			return req
		})
	}
	// ListGroups answers the whole cluster; only this test's groups are
	// compared (Kafka also shows a group a moment after it made it).
	ours := func(resp kmsg.Response) {
		l := resp.(*kmsg.ListGroupsResponse)
		kept := l.Groups[:0]
		for _, gr := range l.Groups {
			if strings.HasPrefix(gr.Group, g) {
				kept = append(kept, gr)
			}
		}
		l.Groups = kept
	}
	for _, v := range versions(kmsg.ListGroups, 0) {
		p.same("ListGroups", v, func(string) kmsg.Request { return kmsg.NewPtrListGroupsRequest() }, ours)
		p.same("ListGroups of a state nobody is in", v, func(string) kmsg.Request {
			req := kmsg.NewPtrListGroupsRequest()
			req.StatesFilter = []string{"PreparingRebalance"}
			return req
		}, ours)
	}
}

func heartbeat848(group, member string, epoch int32, topics []string, assignor string) func(string) kmsg.Request {
	return func(string) kmsg.Request {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Group, req.MemberID, req.MemberEpoch = group, member, epoch
		req.RebalanceTimeoutMillis = 10000
		req.SubscribedTopicNames = topics
		if assignor != "" {
			req.ServerAssignor = kmsg.StringPtr(assignor)
		}
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		return req
	}
}

func TestConsumerGroupHeartbeatErrors(t *testing.T) {
	p := newPair(t)
	g := uniqueName(t, "kip848")
	topic := uniqueName(t, "topic")
	p.createTopic(topic, 1, nil)
	p.coordinatorReady(0, g)
	member := "aaaaaaaaaaaaaaaaaaaaaa"
	for _, v := range versions(kmsg.ConsumerGroupHeartbeat, 0) {
		p.same("ConsumerGroupHeartbeat unknown assignor", v, heartbeat848(g+"-a", member, 0, []string{topic}, "nosuch"))
		p.same("ConsumerGroupHeartbeat empty group id", v, heartbeat848("", member, 0, []string{topic}, ""))
		p.same("ConsumerGroupHeartbeat unknown member", v, heartbeat848(g+"-u", member, 5, []string{topic}, ""))
		p.same("ConsumerGroupHeartbeat leave unknown member", v, heartbeat848(g+"-l", member, -1, nil, ""))
		p.same("ConsumerGroupHeartbeat join without subscription", v, heartbeat848(g+"-s", member, 0, nil, ""))
	}
	for _, v := range versions(kmsg.ConsumerGroupDescribe, 0) {
		p.same("ConsumerGroupDescribe unknown group", v, func(string) kmsg.Request {
			req := kmsg.NewPtrConsumerGroupDescribeRequest()
			req.Groups = []string{g + "-none"}
			return req
		})
	}
}

func shareHeartbeat(group, member string, epoch int32, topics []string) func(string) kmsg.Request {
	return func(string) kmsg.Request {
		req := kmsg.NewPtrShareGroupHeartbeatRequest()
		req.GroupID, req.MemberID, req.MemberEpoch = group, member, epoch
		req.SubscribedTopicNames = topics
		return req
	}
}

func TestShareGroupErrors(t *testing.T) {
	p := newPair(t)
	g := uniqueName(t, "share")
	topic := uniqueName(t, "topic")
	p.createTopic(topic, 1, nil)
	p.coordinatorReady(0, g)
	member := "bbbbbbbbbbbbbbbbbbbbbb"
	// Kafka's share coordinator loads its state a moment after the broker starts.
	p.both(func(side string, c *conn) {
		deadline := time.Now().Add(60 * time.Second)
		for {
			req := shareHeartbeat(g+"-warmup", member, 3, []string{topic})(side)
			req.SetVersion(1)
			code := c.must(req).(*kmsg.ShareGroupHeartbeatResponse).ErrorCode
			if code != 14 && code != 15 && code != 16 {
				return
			}
			if time.Now().After(deadline) {
				p.t.Fatalf("%s: share coordinator still answers %d after 60s", side, code)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	for _, v := range versions(kmsg.ShareGroupHeartbeat, 0) {
		p.same("ShareGroupHeartbeat empty group id", v, shareHeartbeat("", member, 0, []string{topic}))
		p.same("ShareGroupHeartbeat unknown member", v, shareHeartbeat(g+"-u", member, 3, []string{topic}))
		p.same("ShareGroupHeartbeat join without subscription", v, shareHeartbeat(g+"-s", member, 0, nil))
		p.same("ShareGroupHeartbeat leave unknown member", v, shareHeartbeat(g+"-l", member, -1, nil))
	}
	for _, v := range versions(kmsg.ShareGroupDescribe, 0) {
		p.same("ShareGroupDescribe unknown group", v, func(string) kmsg.Request {
			req := kmsg.NewPtrShareGroupDescribeRequest()
			req.GroupIDs = []string{g + "-none"}
			return req
		})
	}
	for _, v := range versions(kmsg.DescribeShareGroupOffsets, 0) {
		p.same("DescribeShareGroupOffsets unknown group", v, func(string) kmsg.Request {
			req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
			rg := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
			rg.GroupID = g + "-none"
			rg.Topics = []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{{Topic: topic, Partitions: []int32{0}}}
			req.Groups = append(req.Groups, rg)
			return req
		})
	}
}
