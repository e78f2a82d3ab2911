package group

import (
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/share"
	"github.com/creek-pipeline/creek/internal/storage"
)

// Log makes testTopics the share coordinator's topics too (no logs: the
// front tests only heartbeat and list).
func (tt testTopics) Log(string, int32) (*storage.Log, bool) { return nil, false }

type shareStore struct{}

func (shareStore) LoadShareGroups() ([]share.StoredGroup, error) { return nil, nil }
func (shareStore) SaveShareGroup(share.StoredGroup) error        { return nil }
func (shareStore) DeleteShareGroup(string) error                 { return nil }
func (shareStore) LoadGroupConfigs() (map[string]map[string]string, error) {
	return map[string]map[string]string{}, nil
}
func (shareStore) SaveGroupConfig(string, map[string]string) error { return nil }

func newTestFront(t *testing.T) (*Front, *Coordinator) {
	t.Helper()
	topics := testTopics{"t": 1}
	c, clk := newTestCoordinator(t, Config{}, topics)
	s, err := share.New(share.Config{SessionTimeout: 45e9, LockDuration: 30e9, DeliveryLimit: 5, MaxRecordLocks: 200, Clock: clk},
		topics, shareStore{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return NewFront(c, s), c
}

func shareJoin(f *Front, group, member string) *kmsg.ShareGroupHeartbeatResponse {
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.SetVersion(1)
	req.GroupID, req.MemberID, req.SubscribedTopicNames = group, member, []string{"t"}
	return f.ShareHeartbeat(cl, req)
}

func consumerJoin(f *Front, group, member string) *kmsg.ConsumerGroupHeartbeatResponse {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.SetVersion(1)
	req.Group, req.MemberID, req.RebalanceTimeoutMillis = group, member, 10_000
	req.SubscribedTopicNames, req.Topics = []string{"t"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	return f.ConsumerHeartbeat(cl, req)
}

// One name, one kind: each API answers a name another kind holds.
func TestFrontOneNameSpace(t *testing.T) {
	f, _ := newTestFront(t)
	code(t, "share join", shareJoin(f, "queue", "m1").ErrorCode, errNone)
	code(t, "consumer join", consumerJoin(f, "cg", "m2").ErrorCode, errNone)
	if f.KindOf("queue") != Share || f.KindOf("cg") != Consumer || f.KindOf("nothing") != NoGroup {
		t.Fatalf("kinds: queue %v, cg %v, nothing %v", f.KindOf("queue"), f.KindOf("cg"), f.KindOf("nothing"))
	}

	join, _ := f.Join(cl, joinRequest("queue", "", nil))
	code(t, "JoinGroup of a share group", join.ErrorCode, kerr.InconsistentGroupProtocol)
	code(t, "ConsumerGroupHeartbeat of a share group", consumerJoin(f, "queue", "m3").ErrorCode, kerr.GroupIDNotFound)
	code(t, "ShareGroupHeartbeat of a consumer group", shareJoin(f, "cg", "m4").ErrorCode, kerr.GroupIDNotFound)
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.SetVersion(8)
	commit.Group, commit.Generation = "queue", -1
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
	code(t, "OffsetCommit to a share group", f.Commit(cl, commit).Topics[0].Partitions[0].ErrorCode, kerr.GroupIDNotFound)
	if f.KindOf("queue") != Share {
		t.Fatalf("after a refused OffsetCommit the name is a %v group", f.KindOf("queue"))
	}
	alter := kmsg.NewPtrAlterShareGroupOffsetsRequest()
	alter.GroupID = "cg"
	code(t, "AlterShareGroupOffsets of a consumer group", f.AlterShareOffsets(alter).ErrorCode, kerr.GroupIDNotFound)

	cd := kmsg.NewPtrConsumerGroupDescribeRequest()
	cd.Groups = []string{"cg", "queue", ""}
	got := f.ConsumerDescribe(cd).Groups
	code(t, "ConsumerGroupDescribe of the consumer group", got[0].ErrorCode, errNone)
	code(t, "ConsumerGroupDescribe of a share group", got[1].ErrorCode, kerr.GroupIDNotFound)
	code(t, "ConsumerGroupDescribe of the empty name", got[2].ErrorCode, kerr.InvalidGroupID)
	sd := kmsg.NewPtrShareGroupDescribeRequest()
	sd.GroupIDs = []string{"queue", "cg"}
	sgot := f.ShareDescribe(sd).Groups
	code(t, "ShareGroupDescribe of the share group", sgot[0].ErrorCode, errNone)
	code(t, "ShareGroupDescribe of a consumer group", sgot[1].ErrorCode, kerr.GroupIDNotFound)
	if sgot[0].GroupState != "Stable" || len(sgot[0].Members) != 1 {
		t.Fatalf("share group described as %s with %d members", sgot[0].GroupState, len(sgot[0].Members))
	}

	list := kmsg.NewPtrListGroupsRequest()
	list.SetVersion(5)
	var names []string
	for _, g := range f.List(list).Groups {
		names = append(names, g.Group+"/"+g.GroupType)
	}
	if len(names) != 2 || names[0] != "cg/consumer" || names[1] != "queue/share" {
		t.Fatalf("ListGroups: %v", names)
	}
	list.TypesFilter = []string{"Share"}
	if gs := f.List(list).Groups; len(gs) != 1 || gs[0].Group != "queue" {
		t.Fatalf("ListGroups of type share: %+v", gs)
	}

	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"queue", "cg", "nothing"}
	for i, want := range []*kerr.Error{kerr.NonEmptyGroup, kerr.NonEmptyGroup, kerr.GroupIDNotFound} {
		code(t, "DeleteGroups "+del.Groups[i], f.Delete(del).Groups[i].ErrorCode, want)
	}
}

// Two kinds racing to create the same name: exactly one gets it.
func TestFrontCreatingRequestsCannotShareAName(t *testing.T) {
	for i := 0; i < 50; i++ {
		f, _ := newTestFront(t)
		var wg sync.WaitGroup
		var shareCode, consumerCode int16
		wg.Add(2)
		go func() { defer wg.Done(); shareCode = shareJoin(f, "contested", "s").ErrorCode }()
		go func() { defer wg.Done(); consumerCode = consumerJoin(f, "contested", "c").ErrorCode }()
		wg.Wait()
		if (shareCode == 0) == (consumerCode == 0) {
			t.Fatalf("round %d: share heartbeat %v, consumer heartbeat %v: want exactly one to win", i, kerr.ErrorForCode(shareCode), kerr.ErrorForCode(consumerCode))
		}
	}
}

// A closed coordinator answers NOT_COORDINATOR through the front, for
// every kind.
func TestFrontWhileShuttingDown(t *testing.T) {
	f, c := newTestFront(t)
	c.Close()
	f.shares.Close()
	d := kmsg.NewPtrDescribeGroupsRequest()
	d.Groups = []string{"g"}
	code(t, "DescribeGroups", f.Describe(d).Groups[0].ErrorCode, kerr.NotCoordinator)
	sd := kmsg.NewPtrShareGroupDescribeRequest()
	sd.GroupIDs = []string{"q"}
	code(t, "ShareGroupDescribe", f.ShareDescribe(sd).Groups[0].ErrorCode, kerr.NotCoordinator)
	del := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
	del.GroupID = "q"
	code(t, "DeleteShareGroupOffsets", f.DeleteShareOffsets(del).ErrorCode, kerr.NotCoordinator)
	code(t, "ListGroups", f.List(kmsg.NewPtrListGroupsRequest()).ErrorCode, kerr.NotCoordinator)
}
