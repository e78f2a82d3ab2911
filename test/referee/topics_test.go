package referee

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// createTopic creates a topic on both brokers and waits until both serve it.
func (p *pair) createTopic(name string, partitions int32, configs map[string]string) {
	p.t.Helper()
	p.both(func(side string, c *conn) {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 10000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, -1
		for k, v := range configs {
			cfg := kmsg.NewCreateTopicsRequestTopicConfig()
			cfg.Name, cfg.Value = k, kmsg.StringPtr(v)
			rt.Configs = append(rt.Configs, cfg)
		}
		req.Topics = append(req.Topics, rt)
		req.SetVersion(5)
		resp := c.must(req).(*kmsg.CreateTopicsResponse)
		if code := resp.Topics[0].ErrorCode; code != 0 {
			p.t.Fatalf("%s: create topic %s: error %d", side, name, code)
		}
		// Kafka serves a new topic's partitions a moment after answering.
		deadline := time.Now().Add(15 * time.Second)
		for {
			m := kmsg.NewPtrMetadataRequest()
			m.SetVersion(9)
			m.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(name)}}
			mr := c.must(m).(*kmsg.MetadataResponse)
			ready := len(mr.Topics) == 1 && mr.Topics[0].ErrorCode == 0 && len(mr.Topics[0].Partitions) == int(partitions)
			for _, pt := range mr.Topics[0].Partitions {
				ready = ready && pt.ErrorCode == 0 && pt.Leader >= 0
			}
			if ready {
				break
			}
			if time.Now().After(deadline) {
				p.t.Fatalf("%s: topic %s not served 15s after creation", side, name)
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Kafka's metadata names the leader a moment before its replica
		// serves (NOT_LEADER_OR_FOLLOWER on a busy machine): ask for the
		// partitions' offsets until they answer.
		for {
			lo := kmsg.NewPtrListOffsetsRequest()
			lo.SetVersion(4)
			lt := kmsg.NewListOffsetsRequestTopic()
			lt.Topic = name
			for i := range partitions {
				lp := kmsg.NewListOffsetsRequestTopicPartition()
				lp.Partition, lp.Timestamp, lp.CurrentLeaderEpoch = i, -1, -1
				lt.Partitions = append(lt.Partitions, lp)
			}
			lo.Topics = append(lo.Topics, lt)
			served := true
			for _, rt := range c.must(lo).(*kmsg.ListOffsetsResponse).Topics {
				for _, rp := range rt.Partitions {
					served = served && rp.ErrorCode == 0
				}
			}
			if served {
				return
			}
			if time.Now().After(deadline) {
				p.t.Fatalf("%s: topic %s's partitions do not answer ListOffsets 15s after creation", side, name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

func metadataReq(allowCreate bool, topics ...string) func(string) kmsg.Request {
	return func(string) kmsg.Request {
		req := kmsg.NewPtrMetadataRequest()
		req.AllowAutoTopicCreation = allowCreate
		for _, t := range topics {
			req.Topics = append(req.Topics, kmsg.MetadataRequestTopic{Topic: kmsg.StringPtr(t)})
		}
		return req
	}
}

// onlyTopics keeps a Metadata answer's topics (the brokers list has each
// broker's own address and is compared apart).
func onlyTopics(resp kmsg.Response) {
	m := resp.(*kmsg.MetadataResponse)
	for i := range m.Brokers {
		m.Brokers[i].Host, m.Brokers[i].Port = "", 0
	}
	m.ControllerID = 0
}

func TestMetadata(t *testing.T) {
	p := newPair(t)
	name := uniqueName(t, "meta")
	p.createTopic(name, 3, nil)
	for _, v := range versions(kmsg.Metadata, 0) {
		p.same("Metadata of a topic", v, metadataReq(false, name), onlyTopics)
		if v >= 4 {
			p.same("Metadata of an unknown topic, no auto-create", v, metadataReq(false, name+"-none"), onlyTopics)
		}
		for _, bad := range []string{"", "a b", "..", "ä", strings.Repeat("x", 250)} {
			p.same("Metadata of an invalid topic name", v, metadataReq(false, bad), onlyTopics)
		}
	}
}

func createTopicsReq(validateOnly bool, topics ...kmsg.CreateTopicsRequestTopic) func(string) kmsg.Request {
	return func(string) kmsg.Request {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 10000
		req.ValidateOnly = validateOnly
		req.Topics = topics
		return req
	}
}

func newTopic(name string, partitions int32, rf int16, configs ...string) kmsg.CreateTopicsRequestTopic {
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
	for i := 0; i+1 < len(configs); i += 2 {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = configs[i], kmsg.StringPtr(configs[i+1])
		rt.Configs = append(rt.Configs, c)
	}
	return rt
}

// createAnswer keeps what CreateTopics answers about errors and shape; the
// configs it returns (v5+) are compared by the DescribeConfigs tests.
func createAnswer(resp kmsg.Response) {
	for i := range resp.(*kmsg.CreateTopicsResponse).Topics {
		resp.(*kmsg.CreateTopicsResponse).Topics[i].Configs = nil
	}
}

func TestCreateTopicsErrors(t *testing.T) {
	p := newPair(t)
	exists := uniqueName(t, "exists")
	p.createTopic(exists, 1, nil)
	n := uniqueName(t, "new")
	cases := []struct {
		what  string
		topic kmsg.CreateTopicsRequestTopic
	}{
		{"already exists", newTopic(exists, 1, -1)},
		{"zero partitions", newTopic(n+"-0p", 0, -1)},
		{"negative partitions", newTopic(n+"-np", -5, -1)},
		{"replication factor 2", newTopic(n+"-rf2", 1, 2)},
		{"replication factor 0", newTopic(n+"-rf0", 1, 0)},
		{"invalid name", newTopic("bad name", 1, -1)},
		{"name too long", newTopic(strings.Repeat("y", 250), 1, -1)},
		{"dot name", newTopic(".", 1, -1)},
		{"bad config value", newTopic(n+"-badv", 1, -1, "retention.ms", "soon")},
		{"unknown config", newTopic(n+"-unk", 1, -1, "no.such.config", "1")},
		{"min.insync.replicas above replication", newTopic(n+"-isr", 1, -1, "min.insync.replicas", "2")},
		{"valid", newTopic(n+"-ok", 2, -1, "retention.ms", "60000")},
	}
	for _, v := range versions(kmsg.CreateTopics, 0) {
		for _, c := range cases {
			p.same("CreateTopics validate-only "+c.what, v, createTopicsReq(true, c.topic), createAnswer)
		}
	}
}

// TestApiVersions lists where the two brokers' version ranges differ; each
// is a known difference (creek keeps versions Kafka 4 dropped, for older
// clients; Kafka serves APIs creek does not).
func TestApiVersions(t *testing.T) {
	needKafka(t)
	for key := int16(0); key < 100; key++ {
		c, inCreek := creekVersions[key]
		k, inKafka := kafkaVersions[key]
		switch {
		case inCreek && inKafka && c != k:
			t.Logf("%s: creek v%d-v%d, kafka v%d-v%d", kmsg.NameForKey(key), c[0], c[1], k[0], k[1])
		case inCreek && !inKafka:
			t.Logf("%s: only creek serves it (v%d-v%d)", kmsg.NameForKey(key), c[0], c[1])
		case inKafka && !inCreek:
			t.Logf("%s: only kafka serves it (v%d-v%d)", kmsg.NameForKey(key), k[0], k[1])
		}
	}
}

func deleteTopicsReq(names ...string) func(string) kmsg.Request {
	return func(string) kmsg.Request {
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.TimeoutMillis = 10000
		req.TopicNames = names
		for _, n := range names {
			req.Topics = append(req.Topics, kmsg.DeleteTopicsRequestTopic{Topic: kmsg.StringPtr(n)})
		}
		return req
	}
}

func TestDeleteTopics(t *testing.T) {
	p := newPair(t)
	for _, v := range versions(kmsg.DeleteTopics, 0) {
		p.same("DeleteTopics unknown topic", v, deleteTopicsReq(uniqueName(t, "none")))
		p.same("DeleteTopics invalid name", v, deleteTopicsReq("bad name"))
	}
	// After DeleteTopics, a Metadata request that may auto-create the topic.
	gone := uniqueName(t, "gone")
	p.createTopic(gone, 2, nil)
	v := versions(kmsg.DeleteTopics, 0)
	p.same("DeleteTopics", v[len(v)-1], deleteTopicsReq(gone))
	time.Sleep(500 * time.Millisecond) // Kafka removes a topic from its metadata a moment later
	p.same("Metadata with auto-create of a topic just deleted", 12, metadataReq(true, gone), onlyTopics, func(resp kmsg.Response) {
		for i := range resp.(*kmsg.MetadataResponse).Topics {
			resp.(*kmsg.MetadataResponse).Topics[i].Partitions = nil // being created: how many are served yet varies
		}
	})
	p.same("Metadata with auto-create of a new topic", 12, metadataReq(true, uniqueName(t, "auto")), onlyTopics, func(resp kmsg.Response) {
		for i := range resp.(*kmsg.MetadataResponse).Topics {
			resp.(*kmsg.MetadataResponse).Topics[i].Partitions = nil
		}
	})
}

// TestInternalTopics: once a group has committed, Kafka lists
// __consumer_offsets (internal) in an all-topics Metadata answer.
func TestInternalTopics(t *testing.T) {
	p := newPair(t)
	g := uniqueName(t, "internal")
	topic := uniqueName(t, "topic")
	p.createTopic(topic, 1, nil)
	p.coordinatorReady(0, g)
	p.both(func(side string, c *conn) {
		req := offsetCommitReq(g, -1, "", topic, 0, 1, "")(side)
		req.SetVersion(8)
		c.must(req)
	})
	p.same("Metadata of __consumer_offsets", 12, metadataReq(false, "__consumer_offsets"), onlyTopics, func(resp kmsg.Response) {
		for i := range resp.(*kmsg.MetadataResponse).Topics {
			t := &resp.(*kmsg.MetadataResponse).Topics[i]
			t.Partitions = nil // Kafka has 50 by default; creek's are its own
		}
	})
	p.same("Produce to __consumer_offsets", 9, produceReq(-1, "__consumer_offsets", 0, batch(kgo.CompressionCodec{}, -1, 0, "x")), produceAnswer)
	// What a client may do to the internal topic, now that it holds records.
	p.same("CreateTopics __consumer_offsets", 5, createTopicsReq(true, newTopic("__consumer_offsets", 3, -1)))
	p.same("IncrementalAlterConfigs cleanup.policy=delete on __consumer_offsets", 1,
		incrementalAlterReq("__consumer_offsets", true, setOp("cleanup.policy", "delete")))
	p.same("CreatePartitions of __consumer_offsets", 3, func(string) kmsg.Request {
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.TimeoutMillis, req.ValidateOnly = 5000, true
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = "__consumer_offsets", 60
		req.Topics = append(req.Topics, rt)
		return req
	})
	p.same("DeleteRecords of __consumer_offsets", 2, deleteRecordsReq("__consumer_offsets", 0, 0))
}
