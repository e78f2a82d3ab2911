package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Leadership and placement of partitions: on a single node every partition
// is led by the node that has its only replica, so there is never a leader
// to elect or a replica to move. These APIs answer as Kafka answers them on
// a one-broker cluster, so that tools (kafka-leader-election,
// kafka-reassign-partitions, Cruise Control's probes) run unchanged.

func init() {
	register(kmsg.ElectLeaders, 0, handleElectLeaders)
	register(kmsg.AlterPartitionAssignments, 0, handleAlterPartitionAssignments)
	register(kmsg.ListPartitionReassignments, 0, handleListPartitionReassignments)
	register(kmsg.UpdateFeatures, 0, handleUpdateFeatures)
}

// handleElectLeaders: every partition already has its preferred (and only)
// leader: ELECTION_NOT_NEEDED. With no topics named, Kafka lists every
// topic without partitions (none needed an election).
func handleElectLeaders(b *Broker, r *request, req *kmsg.ElectLeadersRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	if req.Topics == nil {
		for _, t := range b.cluster.Topics() {
			rt := kmsg.NewElectLeadersResponseTopic()
			rt.Topic = t.Name()
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	for _, rt := range req.Topics {
		st := kmsg.NewElectLeadersResponseTopic()
		st.Topic = rt.Topic
		t, ok := b.cluster.Topic(rt.Topic)
		for _, p := range rt.Partitions {
			sp := kmsg.NewElectLeadersResponseTopicPartition()
			sp.Partition = p
			switch {
			case !ok:
				sp.ErrorCode, sp.ErrorMessage = kerr.UnknownTopicOrPartition.Code, stringPtr("no such topic as "+rt.Topic)
			case t.Partition(p) == nil:
				sp.ErrorCode, sp.ErrorMessage = kerr.UnknownTopicOrPartition.Code, stringPtr(fmt.Sprintf("no such partition as %s-%d", rt.Topic, p))
			default:
				sp.ErrorCode, sp.ErrorMessage = kerr.ElectionNotNeeded.Code, stringPtr("leader election not needed for topic partition: a single node leads it")
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// handleAlterPartitionAssignments: a partition may be "moved" to the replica
// it has (a no-op); another broker does not exist; a cancel finds nothing
// under way.
func handleAlterPartitionAssignments(b *Broker, r *request, req *kmsg.AlterPartitionAssignmentsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		t, ok := b.cluster.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case !ok || t.Partition(rp.Partition) == nil:
				sp.ErrorCode, sp.ErrorMessage = kerr.UnknownTopicOrPartition.Code, stringPtr(fmt.Sprintf("unable to find a topic named %s or its partition %d", rt.Topic, rp.Partition))
			case rp.Replicas == nil:
				sp.ErrorCode = kerr.NoReassignmentInProgress.Code
			default:
				for _, id := range rp.Replicas {
					if id != b.nodeID {
						sp.ErrorCode, sp.ErrorMessage = kerr.InvalidReplicaAssignment.Code, stringPtr(fmt.Sprintf("the assignment includes broker %d, but the only broker is %d", id, b.nodeID))
						break
					}
				}
				if sp.ErrorCode == 0 && len(rp.Replicas) != 1 {
					sp.ErrorCode, sp.ErrorMessage = kerr.InvalidReplicaAssignment.Code, stringPtr(fmt.Sprintf("%d replicas on one broker", len(rp.Replicas)))
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// handleListPartitionReassignments: nothing is ever being moved.
func handleListPartitionReassignments(b *Broker, r *request, req *kmsg.ListPartitionReassignmentsRequest) kmsg.Response {
	return req.ResponseKind()
}

// handleUpdateFeatures: creek has no KRaft feature flags to change (its
// ApiVersions answer finalizes none), so every update is refused as Kafka
// refuses a feature its controller does not support.
func handleUpdateFeatures(b *Broker, r *request, req *kmsg.UpdateFeaturesRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.UpdateFeaturesResponse)
	if len(req.FeatureUpdates) == 0 {
		return resp
	}
	f := req.FeatureUpdates[0].Feature
	resp.ErrorCode = kerr.InvalidUpdateVersion.Code
	resp.ErrorMessage = stringPtr(fmt.Sprintf("the update failed for all features since the following feature had an error: creek does not support feature %s", f))
	return resp
}
