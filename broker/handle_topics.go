package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/cluster"
	"github.com/creek-pipeline/creek/internal/config"
)

// listedTwice returns the keys of items that occur more than once. Kafka
// refuses every occurrence of a resource listed twice with INVALID_REQUEST,
// rather than doing the work (an fsync of the metadata store, say) once for
// each of 10,000 copies.
func listedTwice[T any, K comparable](items []T, key func(T) K) map[K]bool {
	seen := make(map[K]bool, len(items))
	twice := map[K]bool{}
	for _, it := range items {
		k := key(it)
		if seen[k] {
			twice[k] = true
		}
		seen[k] = true
	}
	return twice
}

// errListedTwice answers each occurrence of a resource listed twice.
func errListedTwice(what string) error {
	return fmt.Errorf("%w: %s is listed more than once", kerr.InvalidRequest, what)
}

func handleCreateTopics(b *Broker, r *request, req *kmsg.CreateTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	twice := listedTwice(req.Topics, func(rt kmsg.CreateTopicsRequestTopic) string { return rt.Topic })
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		var err error
		if twice[rt.Topic] {
			err = errListedTwice("topic " + rt.Topic)
		} else {
			err = b.createTopic(req, rt, &st)
		}
		st.ErrorCode, st.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func (b *Broker) createTopic(req *kmsg.CreateTopicsRequest, rt kmsg.CreateTopicsRequestTopic, st *kmsg.CreateTopicsResponseTopic) error {
	partitions, replication := rt.NumPartitions, rt.ReplicationFactor
	if len(rt.ReplicaAssignment) > 0 {
		if partitions != -1 || replication != -1 {
			return fmt.Errorf("%w: give either a replica assignment or partition count and replication factor", kerr.InvalidRequest)
		}
		for _, a := range rt.ReplicaAssignment {
			if len(a.Replicas) != 1 || a.Replicas[0] != b.nodeID {
				return fmt.Errorf("%w: partition %d is assigned to %v, but the only broker is %d", kerr.InvalidReplicaAssignment, a.Partition, a.Replicas, b.nodeID)
			}
		}
		partitions, replication = int32(len(rt.ReplicaAssignment)), 1
	}
	configs := map[string]string{}
	for _, c := range rt.Configs {
		if c.Value != nil {
			configs[c.Name] = *c.Value
		}
	}
	t, err := b.cluster.CreateTopic(rt.Topic, partitions, replication, configs, req.ValidateOnly)
	if err != nil {
		return err
	}
	if partitions == -1 {
		partitions = int32(b.cluster.Broker().Int64("num.partitions"))
	}
	st.NumPartitions, st.ReplicationFactor = partitions, 1
	overrides, _ := config.ValidateTopicConfigs(configs)
	if t != nil {
		st.TopicID = t.ID()
	}
	for _, c := range config.ResolveTopic(overrides, b.cluster.Broker()) {
		sc := kmsg.NewCreateTopicsResponseTopicConfig()
		sc.Name, sc.Value, sc.Source = c.Name, stringPtr(c.Value), int8(configSource(c.Source))
		st.Configs = append(st.Configs, sc)
	}
	return nil
}

func handleDeleteTopics(b *Broker, r *request, req *kmsg.DeleteTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	targets := req.Topics
	for _, name := range req.TopicNames { // v0-v5
		targets = append(targets, kmsg.DeleteTopicsRequestTopic{Topic: stringPtr(name)})
	}
	named := func(rt kmsg.DeleteTopicsRequestTopic) string {
		if rt.Topic != nil {
			return "topic " + *rt.Topic
		}
		return fmt.Sprintf("topic id %x", rt.TopicID)
	}
	twice := listedTwice(targets, named)
	for _, rt := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		var err error
		switch {
		case twice[named(rt)]:
			err = errListedTwice(named(rt))
		case rt.Topic != nil:
			if t, ok := b.cluster.Topic(*rt.Topic); ok {
				st.TopicID = t.ID()
			}
			err = b.deleteTopic(*rt.Topic)
		case rt.TopicID != [16]byte{}:
			if t, ok := b.cluster.TopicByID(rt.TopicID); ok {
				st.Topic = stringPtr(t.Name())
				err = b.deleteTopic(t.Name())
			} else {
				err = kerr.UnknownTopicID
			}
		default:
			err = fmt.Errorf("%w: neither a topic name nor a topic id", kerr.InvalidRequest)
		}
		st.ErrorCode, st.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// deleteTopic deletes a topic and the offsets groups committed for it.
func (b *Broker) deleteTopic(name string) error {
	if err := b.cluster.DeleteTopic(name); err != nil {
		return err
	}
	b.groups.ForgetTopic(name)
	return nil
}

func handleCreatePartitions(b *Broker, r *request, req *kmsg.CreatePartitionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	twice := listedTwice(req.Topics, func(rt kmsg.CreatePartitionsRequestTopic) string { return rt.Topic })
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		err := cluster.ValidateTopicName(rt.Topic)
		if err == nil && twice[rt.Topic] {
			err = errListedTwice("topic " + rt.Topic)
		}
		for _, a := range rt.Assignment {
			if err == nil && (len(a.Replicas) != 1 || a.Replicas[0] != b.nodeID) {
				err = fmt.Errorf("%w: new partitions can only be assigned to broker %d", kerr.InvalidReplicaAssignment, b.nodeID)
			}
		}
		if err == nil {
			err = b.cluster.AddPartitions(rt.Topic, rt.Count, req.ValidateOnly)
		}
		st.ErrorCode, st.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func stringPtr(s string) *string { return &s }

// configSource maps where a value came from to Kafka's ConfigSource.
func configSource(s config.Source) kmsg.ConfigSource {
	switch s {
	case config.SourceDynamicTopic:
		return kmsg.ConfigSourceDynamicTopicConfig
	case config.SourceStaticBroker:
		return kmsg.ConfigSourceStaticBrokerConfig
	case config.SourceDynamicGroup:
		return kmsg.ConfigSourceGroupConfig
	default:
		return kmsg.ConfigSourceDefaultConfig
	}
}
