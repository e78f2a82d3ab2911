package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// maxVersions is the newest version of each API the broker advertises: the
// versions its handlers were written for and the referee (test/referee)
// and client suite (test/compat) exercise. It does not follow kmsg: a kmsg
// upgrade that knows newer versions changes nothing here until an entry is
// raised, together with the handler and its tests. The oldest version of
// each API is given where its handler registers (with the reason when it
// is not 0). TestAPIVersionTable lists the table and checks kmsg can still
// encode every version in it.
var maxVersions = map[kmsg.Key]int16{
	kmsg.Produce:                      13,
	kmsg.Fetch:                        18,
	kmsg.ListOffsets:                  11,
	kmsg.Metadata:                     13,
	kmsg.OffsetCommit:                 10,
	kmsg.OffsetFetch:                  10,
	kmsg.FindCoordinator:              6,
	kmsg.JoinGroup:                    9,
	kmsg.Heartbeat:                    4,
	kmsg.LeaveGroup:                   5,
	kmsg.SyncGroup:                    5,
	kmsg.DescribeGroups:               6,
	kmsg.ListGroups:                   5,
	kmsg.ApiVersions:                  5,
	kmsg.CreateTopics:                 7,
	kmsg.DeleteTopics:                 6,
	kmsg.DeleteRecords:                2,
	kmsg.InitProducerID:               5,
	kmsg.OffsetForLeaderEpoch:         4,
	kmsg.AddPartitionsToTxn:           5,
	kmsg.AddOffsetsToTxn:              4,
	kmsg.EndTxn:                       5,
	kmsg.TxnOffsetCommit:              6,
	kmsg.DescribeConfigs:              4,
	kmsg.AlterConfigs:                 2,
	kmsg.DescribeLogDirs:              5,
	kmsg.CreatePartitions:             3,
	kmsg.DeleteGroups:                 3,
	kmsg.ElectLeaders:                 2,
	kmsg.IncrementalAlterConfigs:      1,
	kmsg.AlterPartitionAssignments:    1,
	kmsg.ListPartitionReassignments:   0,
	kmsg.OffsetDelete:                 0,
	kmsg.DescribeClientQuotas:         1,
	kmsg.AlterClientQuotas:            1,
	kmsg.UpdateFeatures:               2,
	kmsg.DescribeCluster:              2,
	kmsg.DescribeProducers:            0,
	kmsg.DescribeTransactions:         0,
	kmsg.ListTransactions:             2,
	kmsg.ConsumerGroupHeartbeat:       1,
	kmsg.ConsumerGroupDescribe:        1,
	kmsg.ShareGroupHeartbeat:          1,
	kmsg.ShareGroupDescribe:           1,
	kmsg.ShareFetch:                   2,
	kmsg.ShareAcknowledge:             2,
	kmsg.DescribeShareGroupOffsets:    1,
	kmsg.AlterShareGroupOffsets:       0,
	kmsg.DeleteShareGroupOffsets:      0,
	kmsg.SASLHandshake:                1,
	kmsg.SASLAuthenticate:             2,
	kmsg.DescribeACLs:                 3,
	kmsg.CreateACLs:                   3,
	kmsg.DeleteACLs:                   3,
	kmsg.DescribeUserSCRAMCredentials: 0,
	kmsg.AlterUserSCRAMCredentials:    0,
}
