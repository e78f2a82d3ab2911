package broker

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/cluster"
)

// leaderEpoch is the partition leader epoch: one node leads every partition
// forever, so it never changes.
const leaderEpoch = 0

// allTopicOperations is the authorized-operations bit set of a topic when a
// client asks (creek has no ACLs: everything is allowed): READ, WRITE,
// CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
const allTopicOperations = 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11

// advertisedAddr is the host and port a client should use to reach us:
// its listener's advertised address, else the one it connected to.
func (b *Broker) advertisedAddr(c *conn) (string, int32) {
	addr := c.listener.advertised
	if addr == "" {
		addr = c.local
	}
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return host, int32(p)
}

// errJustCreated answers a Metadata request for a topic that the request
// itself created, as Kafka 4 does (UNKNOWN_TOPIC_OR_PARTITION: the client
// asks again, and then gets the partitions).
var errJustCreated = fmt.Errorf("%w: the topic is being created; ask again", kerr.UnknownTopicOrPartition)

// topicOrCreate finds a topic, creating it when auto.create.topics.enable
// allows and the client asked for it; a topic it creates is errJustCreated.
func (b *Broker) topicOrCreate(name string, allowCreate bool) (*cluster.Topic, error) {
	if t, ok := b.cluster.Topic(name); ok {
		return t, nil
	}
	if err := cluster.ValidateTopicName(name); err != nil {
		return nil, err
	}
	if !b.autoCreate || !allowCreate {
		return nil, cluster.ErrUnknownTopic
	}
	_, err := b.cluster.CreateTopic(name, -1, -1, nil, false)
	if errors.Is(err, cluster.ErrTopicExists) {
		if t, ok := b.cluster.Topic(name); ok {
			return t, nil
		}
	}
	if err == nil {
		err = errJustCreated
	}
	return nil, err
}

func handleMetadata(b *Broker, r *request, req *kmsg.MetadataRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	host, port := b.advertisedAddr(r.conn)
	br := kmsg.NewMetadataResponseBroker()
	br.NodeID, br.Host, br.Port = b.nodeID, host, port
	resp.Brokers = []kmsg.MetadataResponseBroker{br}
	id := b.cluster.ID()
	resp.ClusterID = &id
	resp.ControllerID = b.nodeID

	allowCreate := req.Version < 4 || req.AllowAutoTopicCreation
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		for _, t := range b.cluster.Topics() {
			resp.Topics = append(resp.Topics, b.topicMetadata(t, req))
		}
		return resp
	}
	// Each topic is answered once however often it is asked for, as in
	// Kafka: a topic of 10,000 partitions listed 10,000 times must not
	// become 10^8 partition entries.
	seenNames, seenIDs := map[string]bool{}, map[[16]byte]bool{}
	for _, rt := range req.Topics {
		if rt.Topic != nil {
			if seenNames[*rt.Topic] {
				continue
			}
			seenNames[*rt.Topic] = true
		} else if rt.TopicID != [16]byte{} {
			if seenIDs[rt.TopicID] {
				continue
			}
			seenIDs[rt.TopicID] = true
		}
		var t *cluster.Topic
		var err error
		switch {
		case rt.Topic != nil:
			t, err = b.topicOrCreate(*rt.Topic, allowCreate)
		case rt.TopicID != [16]byte{}:
			var ok bool
			if t, ok = b.cluster.TopicByID(rt.TopicID); !ok {
				err = kerr.UnknownTopicID
			}
		default:
			err = kerr.InvalidRequest
		}
		if err != nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.TopicID = rt.Topic, rt.TopicID
			mt.ErrorCode = errorCode(err)
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, b.topicMetadata(t, req))
	}
	return resp
}

func (b *Broker) topicMetadata(t *cluster.Topic, req *kmsg.MetadataRequest) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name()
	mt.Topic = &name
	mt.TopicID = t.ID()
	mt.IsInternal = isInternalTopic(name)
	if req.IncludeTopicAuthorizedOperations {
		mt.AuthorizedOperations = allTopicOperations
	}
	n := t.NumPartitions()
	for p := int32(0); p < n; p++ {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p
		mp.Leader = b.nodeID
		mp.LeaderEpoch = leaderEpoch
		mp.Replicas = []int32{b.nodeID}
		mp.ISR = []int32{b.nodeID}
		mp.OfflineReplicas = []int32{}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}
