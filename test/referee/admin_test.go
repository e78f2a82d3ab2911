package referee

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The admin APIs a single node has little to do for, answered as Kafka
// answers them on a single-node cluster.

func TestElectLeaders(t *testing.T) {
	p := newPair(t)
	topic := uniqueName(t, "elect")
	p.createTopic(topic, 2, nil)
	for _, v := range versions(kmsg.ElectLeaders, 0) {
		for _, electionType := range []int8{0, 1} { // preferred, unclean
			if electionType == 1 && v == 0 {
				continue
			}
			p.same("ElectLeaders of a topic's partitions", v, func(string) kmsg.Request {
				req := kmsg.NewPtrElectLeadersRequest()
				req.ElectionType, req.TimeoutMillis = electionType, 5000
				req.Topics = []kmsg.ElectLeadersRequestTopic{{Topic: topic, Partitions: []int32{0, 1}}}
				return req
			})
			p.same("ElectLeaders of an unknown partition", v, func(string) kmsg.Request {
				req := kmsg.NewPtrElectLeadersRequest()
				req.ElectionType, req.TimeoutMillis = electionType, 5000
				req.Topics = []kmsg.ElectLeadersRequestTopic{{Topic: topic, Partitions: []int32{9}}, {Topic: topic + "-none", Partitions: []int32{0}}}
				return req
			})
		}
	}
}

func TestPartitionReassignments(t *testing.T) {
	p := newPair(t)
	topic := uniqueName(t, "reassign")
	p.createTopic(topic, 1, nil)
	alter := func(replicas []int32) func(string) kmsg.Request {
		return func(string) kmsg.Request {
			req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
			req.TimeoutMillis = 5000
			req.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{{Topic: topic, Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Partition: 0, Replicas: replicas}}}}
			return req
		}
	}
	for _, v := range versions(kmsg.AlterPartitionAssignments, 0) {
		p.same("AlterPartitionReassignments to the replica it has", v, alter([]int32{1}))
		p.same("AlterPartitionReassignments to a broker that does not exist", v, alter([]int32{7}))
		p.same("AlterPartitionReassignments cancel with none under way", v, alter(nil))
	}
	for _, v := range versions(kmsg.ListPartitionReassignments, 0) {
		p.same("ListPartitionReassignments", v, func(string) kmsg.Request {
			req := kmsg.NewPtrListPartitionReassignmentsRequest()
			req.TimeoutMillis = 5000
			req.Topics = []kmsg.ListPartitionReassignmentsRequestTopic{{Topic: topic, Partitions: []int32{0}}}
			return req
		})
	}
}

func TestClientQuotas(t *testing.T) {
	p := newPair(t)
	client := uniqueName(t, "client")
	quota := func(key string, value float64, remove, validate bool) func(string) kmsg.Request {
		return func(string) kmsg.Request {
			req := kmsg.NewPtrAlterClientQuotasRequest()
			req.ValidateOnly = validate
			e := kmsg.NewAlterClientQuotasRequestEntry()
			e.Entity = []kmsg.AlterClientQuotasRequestEntryEntity{{Type: "client-id", Name: kmsg.StringPtr(client)}}
			e.Ops = []kmsg.AlterClientQuotasRequestEntryOp{{Key: key, Value: value, Remove: remove}}
			req.Entries = append(req.Entries, e)
			return req
		}
	}
	describe := func(strict bool) func(string) kmsg.Request {
		return func(string) kmsg.Request {
			req := kmsg.NewPtrDescribeClientQuotasRequest()
			req.Strict = strict
			req.Components = []kmsg.DescribeClientQuotasRequestComponent{{EntityType: "client-id", MatchType: 0, Match: kmsg.StringPtr(client)}}
			return req
		}
	}
	va := versions(kmsg.AlterClientQuotas, 0)
	vd := versions(kmsg.DescribeClientQuotas, 0)
	for _, v := range va {
		p.same("AlterClientQuotas validate an unknown key", v, quota("no_such_rate", 5, false, true))
		p.same("AlterClientQuotas validate a negative rate", v, quota("producer_byte_rate", -5, false, true))
	}
	p.same("AlterClientQuotas set", va[len(va)-1], quota("producer_byte_rate", 1048576, false, false))
	p.same("AlterClientQuotas set another", va[len(va)-1], quota("consumer_byte_rate", 2097152, false, false))
	for _, v := range vd {
		p.same("DescribeClientQuotas", v, describe(false))
	}
	p.same("AlterClientQuotas remove", va[len(va)-1], quota("consumer_byte_rate", 0, true, false))
	p.same("DescribeClientQuotas after a removal", vd[len(vd)-1], describe(true))
	p.same("AlterClientQuotas remove the last", va[len(va)-1], quota("producer_byte_rate", 0, true, false))
	p.same("DescribeClientQuotas after removing all", vd[len(vd)-1], describe(true))
}

func TestUpdateFeatures(t *testing.T) {
	p := newPair(t)
	for _, v := range versions(kmsg.UpdateFeatures, 0) {
		p.same("UpdateFeatures of an unknown feature", v, func(string) kmsg.Request {
			req := kmsg.NewPtrUpdateFeaturesRequest()
			req.TimeoutMillis, req.ValidateOnly = 5000, true
			req.FeatureUpdates = []kmsg.UpdateFeaturesRequestFeatureUpdate{{Feature: "no.such.feature", MaxVersionLevel: 1, UpgradeType: 1}}
			return req
		})
	}
}
