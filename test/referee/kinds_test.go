package referee

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Classic, consumer-protocol and share groups share one name space: each
// API answers a name held by another kind of group, and the empty name, as
// Kafka does.
func TestGroupKindsShareOneNameSpace(t *testing.T) {
	p := newPair(t)
	topic := uniqueName(t, "topic")
	p.createTopic(topic, 1, nil)
	shared := uniqueName(t, "share")   // a share group with a member
	classic := uniqueName(t, "simple") // a classic group holding only offsets
	p.coordinatorReady(0, shared)
	p.coordinatorReady(0, classic)
	member := "cccccccccccccccccccccc"
	p.both(func(side string, c *conn) {
		deadline := time.Now().Add(60 * time.Second)
		for { // Kafka's share coordinator loads its state a moment after the broker starts
			req := shareHeartbeat(shared, member, 0, []string{topic})(side)
			req.SetVersion(1)
			code := c.must(req).(*kmsg.ShareGroupHeartbeatResponse).ErrorCode
			if code == 0 {
				break
			}
			if code != 14 && code != 15 && code != 16 || time.Now().After(deadline) {
				p.t.Fatalf("%s: the share group's first heartbeat answers %d", side, code)
			}
			time.Sleep(200 * time.Millisecond)
		}
		commit := offsetCommitReq(classic, -1, "", topic, 0, 1, "")(side)
		commit.SetVersion(8)
		if code := c.must(commit).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
			p.t.Fatalf("%s: committing to the classic group answers %d", side, code)
		}
	})

	for _, v := range versions(kmsg.DescribeGroups, 0) {
		for _, g := range []string{"", shared} {
			p.same("DescribeGroups "+g, v, func(string) kmsg.Request {
				req := kmsg.NewPtrDescribeGroupsRequest()
				req.Groups = []string{g}
				return req
			})
		}
	}
	for _, v := range versions(kmsg.ConsumerGroupDescribe, 0) {
		for _, g := range []string{"", shared, classic} {
			p.same("ConsumerGroupDescribe "+g, v, func(string) kmsg.Request {
				req := kmsg.NewPtrConsumerGroupDescribeRequest()
				req.Groups = []string{g}
				return req
			})
		}
	}
	for _, v := range versions(kmsg.ShareGroupDescribe, 0) {
		for _, g := range []string{"", classic} {
			p.same("ShareGroupDescribe "+g, v, func(string) kmsg.Request {
				req := kmsg.NewPtrShareGroupDescribeRequest()
				req.GroupIDs = []string{g}
				return req
			})
		}
	}
	for _, v := range versions(kmsg.DeleteGroups, 0) {
		p.same("DeleteGroups empty name and a share group with a member", v, func(string) kmsg.Request {
			req := kmsg.NewPtrDeleteGroupsRequest()
			req.Groups = []string{"", shared}
			return req
		})
	}
	for _, v := range versions(kmsg.JoinGroup, 0) {
		p.same("JoinGroup a share group", v, joinReq(shared, "", "consumer"))
	}
	for _, v := range versions(kmsg.ConsumerGroupHeartbeat, 0) {
		p.same("ConsumerGroupHeartbeat a share group", v, heartbeat848(shared, member, 0, []string{topic}, ""))
	}
	for _, v := range versions(kmsg.ShareGroupHeartbeat, 0) {
		p.same("ShareGroupHeartbeat a classic group", v, shareHeartbeat(classic, member, 0, []string{topic}))
	}
	for _, v := range versions(kmsg.OffsetDelete, 0) {
		for _, g := range []string{"", shared} {
			p.same("OffsetDelete "+g, v, func(string) kmsg.Request {
				req := kmsg.NewPtrOffsetDeleteRequest()
				req.Group = g
				req.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
				return req
			})
		}
	}
	for _, v := range versions(kmsg.DeleteShareGroupOffsets, 0) {
		for _, g := range []string{"", classic} {
			p.same("DeleteShareGroupOffsets "+g, v, func(string) kmsg.Request {
				req := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
				req.GroupID = g
				req.Topics = []kmsg.DeleteShareGroupOffsetsRequestTopic{{Topic: topic}}
				return req
			})
		}
	}
	for _, v := range versions(kmsg.AlterShareGroupOffsets, 0) {
		for _, g := range []string{"", classic} {
			p.same("AlterShareGroupOffsets "+g, v, func(string) kmsg.Request {
				req := kmsg.NewPtrAlterShareGroupOffsetsRequest()
				req.GroupID = g
				req.Topics = []kmsg.AlterShareGroupOffsetsRequestTopic{{Topic: topic, Partitions: []kmsg.AlterShareGroupOffsetsRequestTopicPartition{{Partition: 0, StartOffset: 0}}}}
				return req
			})
		}
	}
	for _, v := range versions(kmsg.OffsetCommit, 0) {
		p.same("OffsetCommit to a share group", v, offsetCommitReq(shared, -1, "", topic, 0, 1, ""))
	}
	for _, v := range versions(kmsg.OffsetFetch, 0) {
		p.same("OffsetFetch of a share group", v, func(string) kmsg.Request {
			req := kmsg.NewPtrOffsetFetchRequest()
			req.Group = shared
			req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: []int32{0}}}
			if v >= 8 {
				g := kmsg.NewOffsetFetchRequestGroup()
				g.Group = shared
				g.Topics = []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: []int32{0}}}
				req.Groups = []kmsg.OffsetFetchRequestGroup{g}
			}
			return req
		})
	}
	// Not compared: DescribeShareGroupOffsets of a classic group, which
	// Kafka 4.4 does not answer (it closes the connection).
}
