package referee

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func describeConfigsReq(resourceType kmsg.ConfigResourceType, name string, keys ...string) func(string) kmsg.Request {
	return func(string) kmsg.Request {
		req := kmsg.NewPtrDescribeConfigsRequest()
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName = resourceType, name
		if keys != nil {
			r.ConfigNames = keys
		}
		req.Resources = append(req.Resources, r)
		return req
	}
}

// configAnswer keeps the errors of a DescribeConfigs answer and, for the
// configs that both brokers report, their values and sources; documentation
// strings are left out.
func configAnswer(resp kmsg.Response) {
	for i := range resp.(*kmsg.DescribeConfigsResponse).Resources {
		r := &resp.(*kmsg.DescribeConfigsResponse).Resources[i]
		for j := range r.Configs {
			r.Configs[j].Documentation = nil
			r.Configs[j].ConfigSynonyms = nil
		}
	}
}

func incrementalAlterReq(topic string, validate bool, ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) func(string) kmsg.Request {
	return incrementalAlterOn(kmsg.ConfigResourceTypeTopic, topic, validate, ops...)
}

func incrementalAlterOn(kind kmsg.ConfigResourceType, name string, validate bool, ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) func(string) kmsg.Request {
	return func(string) kmsg.Request {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		req.ValidateOnly = validate
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName, r.Configs = kind, name, ops
		req.Resources = append(req.Resources, r)
		return req
	}
}

func setOp(name, value string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Value, c.Op = name, kmsg.StringPtr(value), kmsg.IncrementalAlterConfigOpSet
	return c
}

// configDefaultsDiffer leaves out the values (and where they come from)
// of configs whose defaults differ deliberately (docs/broker.md): creek
// keeps 1 GiB per partition by default (the seed's figure; Kafka: no limit)
// in 128 MiB segments (Kafka: 1 GiB), and the referee Kafka's
// server.properties sets min.insync.replicas, num.partitions and the
// replication factors (to the values creek has), which Kafka then reports
// as broker-level values.
func configDefaultsDiffer(resp kmsg.Response) {
	configAnswer(resp)
	for i := range resp.(*kmsg.DescribeConfigsResponse).Resources {
		r := &resp.(*kmsg.DescribeConfigsResponse).Resources[i]
		for j := range r.Configs {
			c := &r.Configs[j]
			switch c.Name {
			case "retention.bytes", "segment.bytes", "log.retention.bytes", "log.segment.bytes":
				c.Value, c.Source, c.IsDefault = nil, 0, false
			case "min.insync.replicas", "num.partitions", "default.replication.factor", "offsets.topic.replication.factor":
				c.Source, c.IsDefault = 0, false // set in the referee's server.properties, to creek's values
			}
			if r.ResourceType == kmsg.ConfigResourceTypeBroker {
				// Kafka changes many broker configs at run time
				// (read-only false); creek's are fixed until a restart.
				c.ReadOnly = false
			}
		}
	}
}

// kafkaTopicConfigs are the topic configs Apache Kafka 4.4 reports.
var kafkaTopicConfigs = []string{
	"cleanup.policy", "compression.gzip.level", "compression.lz4.level", "compression.type", "compression.zstd.level",
	"delete.retention.ms", "errors.deadletterqueue.group.enable", "file.delete.delay.ms", "flush.messages", "flush.ms",
	"follower.replication.throttled.replicas", "index.interval.bytes", "leader.replication.throttled.replicas",
	"local.retention.bytes", "local.retention.ms", "max.compaction.lag.ms", "max.decompressed.message.bytes",
	"max.message.bytes", "message.timestamp.after.max.ms", "message.timestamp.before.max.ms", "message.timestamp.type",
	"min.cleanable.dirty.ratio", "min.compaction.lag.ms", "min.insync.replicas", "preallocate", "remote.copy.lag.bytes",
	"remote.copy.lag.ms", "remote.log.copy.disable", "remote.log.delete.on.disable", "remote.storage.enable",
	"retention.bytes", "retention.ms", "segment.bytes", "segment.index.bytes", "segment.jitter.ms", "segment.ms",
	"unclean.leader.election.enable",
}

func TestConfigs(t *testing.T) {
	p := newPair(t)
	topic := uniqueName(t, "configs")
	p.createTopic(topic, 1, map[string]string{"retention.ms": "3600000", "compression.type": "lz4", "flush.messages": "100"})
	keys := []string{"retention.ms", "retention.bytes", "cleanup.policy", "segment.bytes", "max.message.bytes", "min.insync.replicas", "message.timestamp.type", "compression.type", "flush.messages"}
	for _, v := range versions(kmsg.DescribeConfigs, 1) {
		p.same("DescribeConfigs of every topic config", v, describeConfigsReq(kmsg.ConfigResourceTypeTopic, topic), configDefaultsDiffer)
		p.same("DescribeConfigs of a topic's common configs", v, describeConfigsReq(kmsg.ConfigResourceTypeTopic, topic, keys...), configDefaultsDiffer)
		p.same("DescribeConfigs of Kafka's topic configs", v, describeConfigsReq(kmsg.ConfigResourceTypeTopic, topic, kafkaTopicConfigs...), configDefaultsDiffer)
		p.same("DescribeConfigs of an unknown topic", v, describeConfigsReq(kmsg.ConfigResourceTypeTopic, topic+"-none"), configAnswer)
		p.same("DescribeConfigs of an invalid topic name", v, describeConfigsReq(kmsg.ConfigResourceTypeTopic, "bad name"), configAnswer)
		p.same("DescribeConfigs of an unknown broker", v, describeConfigsReq(kmsg.ConfigResourceTypeBroker, "7"), configAnswer)
		p.same("DescribeConfigs of a broker's named configs", v, describeConfigsReq(kmsg.ConfigResourceTypeBroker, "1",
			"log.retention.bytes", "num.partitions", "log.cleaner.backoff.ms", "log.cleaner.threads", "compression.type",
			"log.segment.delete.delay.ms", "default.replication.factor", "unclean.leader.election.enable", "message.max.bytes",
			"log.message.timestamp.after.max.ms", "auto.create.topics.enable", "log.flush.interval.messages", "offsets.topic.replication.factor"), configDefaultsDiffer)
	}
	for _, v := range versions(kmsg.IncrementalAlterConfigs, 0) {
		for _, op := range []struct{ what, name, value string }{
			{"a valid value", "retention.ms", "7200000"},
			{"an invalid value", "retention.ms", "later"},
			{"an unknown config", "no.such.config", "1"},
			{"compression.type", "compression.type", "zstd"},
			{"an unknown codec", "compression.type", "brotli"},
			{"a gzip level", "compression.gzip.level", "9"},
			{"gzip level 0", "compression.gzip.level", "0"},
			{"an lz4 level past 17", "compression.lz4.level", "18"},
			{"a zstd level", "compression.zstd.level", "-5"},
			{"flush.messages", "flush.messages", "1"},
			{"flush.messages 0", "flush.messages", "0"},
			{"throttled replicas", "leader.replication.throttled.replicas", "0:1,1:1"},
			{"throttled replicas *", "follower.replication.throttled.replicas", "*"},
			{"bad throttled replicas", "leader.replication.throttled.replicas", "one"},
			{"remote storage", "remote.storage.enable", "true"},
			{"local retention", "local.retention.ms", "-2"},
			{"a timestamp bound", "message.timestamp.after.max.ms", "60000"},
			{"a negative timestamp bound", "message.timestamp.before.max.ms", "-1"},
			{"preallocate", "preallocate", "true"},
			{"unclean election", "unclean.leader.election.enable", "yes"},
			{"a decompressed size", "max.decompressed.message.bytes", "1048576"},
		} {
			p.same("IncrementalAlterConfigs "+op.what, v, incrementalAlterReq(topic, true, setOp(op.name, op.value)))
		}
		p.same("IncrementalAlterConfigs an unknown topic", v, incrementalAlterReq(topic+"-none", true, setOp("retention.ms", "1")))
	}
	for _, v := range versions(kmsg.CreateTopics, 2) {
		p.same("CreateTopics with Kafka's configs", v, createTopicsReq(true, newTopic(topic+"-new", 1, -1,
			"compression.type", "gzip", "compression.gzip.level", "5", "segment.jitter.ms", "1000", "file.delete.delay.ms", "1",
			"message.timestamp.before.max.ms", "86400000", "segment.index.bytes", "4096", "errors.deadletterqueue.group.enable", "true")), createAnswer)
		p.same("CreateTopics with remote storage", v, createTopicsReq(true, newTopic(topic+"-new", 1, -1, "remote.storage.enable", "true")), createAnswer)
	}
	for _, v := range versions(kmsg.AlterConfigs, 0) {
		alter := func(name, value string) func(string) kmsg.Request {
			return func(string) kmsg.Request {
				req := kmsg.NewPtrAlterConfigsRequest()
				req.ValidateOnly = true
				r := kmsg.NewAlterConfigsRequestResource()
				r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, topic
				r.Configs = []kmsg.AlterConfigsRequestResourceConfig{{Name: name, Value: kmsg.StringPtr(value)}}
				req.Resources = append(req.Resources, r)
				return req
			}
		}
		p.same("AlterConfigs compression.type", v, alter("compression.type", "snappy"))
		p.same("AlterConfigs an unknown config", v, alter("no.such.config", "1"))
		p.same("AlterConfigs segment.jitter.ms", v, alter("segment.jitter.ms", "-1"))
	}

	// compression.type=lz4: an uncompressed batch is stored (and fetched) as lz4.
	p.produce(topic, 0, "a", "b", "c")
	codecs := map[string]int16{}
	p.both(func(side string, c *conn) {
		req := fetchReq(topic, 0, 0, 0, -1)(side)
		req.SetVersion(11)
		resp := c.must(req).(*kmsg.FetchResponse)
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(resp.Topics[0].Partitions[0].RecordBatches); err != nil {
			t.Fatalf("%s: fetched records: %v", side, err)
		}
		codecs[side] = rb.Attributes & 7
	})
	if codecs["creek"] != codecs["kafka"] || codecs["creek"] != 3 {
		t.Errorf("an uncompressed batch on a compression.type=lz4 topic is stored with codec %d by creek, %d by Kafka (lz4: 3)", codecs["creek"], codecs["kafka"])
	}

	// message.timestamp.after.max.ms (1 hour by default in Kafka 4):
	// a record two hours ahead is refused; a minute ahead is stored.
	for _, v := range versions(kmsg.Produce, 3) {
		if v >= 13 {
			continue // by topic id
		}
		now := time.Now()
		p.same("Produce a record two hours ahead", v, produceReq(-1, topic, 0, batchAt(now.Add(2*time.Hour).UnixMilli(), kgo.CompressionCodec{}, -1, 0, "later")), produceAnswer)
		p.same("Produce a record a minute ahead", v, produceReq(-1, topic, 0, batchAt(now.Add(time.Minute).UnixMilli(), kgo.CompressionCodec{}, -1, 0, "soon")), produceAnswer)
	}

	group := uniqueName(t, "group")
	for _, v := range versions(kmsg.IncrementalAlterConfigs, 0) {
		for _, op := range []struct{ what, name, value string }{
			{"a lock duration", "share.record.lock.duration.ms", "20000"},
			{"a lock duration below Kafka's bound", "share.record.lock.duration.ms", "1000"},
			{"a share session timeout", "share.session.timeout.ms", "50000"},
			{"a share session timeout above the bound", "share.session.timeout.ms", "60001"},
			{"a share heartbeat interval", "share.heartbeat.interval.ms", "6000"},
			{"a delivery count limit", "share.delivery.count.limit", "3"},
			{"a delivery count limit of 11", "share.delivery.count.limit", "11"},
			{"read_committed", "share.isolation.level", "read_committed"},
			{"an isolation level", "share.isolation.level", "serializable"},
			{"auto offset reset earliest", "share.auto.offset.reset", "earliest"},
			{"auto offset reset by duration", "share.auto.offset.reset", "by_duration:PT1H"},
			{"auto offset reset nonsense", "share.auto.offset.reset", "sometimes"},
			{"record locks", "share.partition.max.record.locks", "4001"},
			{"a consumer session timeout", "consumer.session.timeout.ms", "50000"},
			{"a consumer session timeout below the bound", "consumer.session.timeout.ms", "6000"},
			{"a consumer heartbeat interval", "consumer.heartbeat.interval.ms", "7000"},
			{"standby replicas", "streams.num.standby.replicas", "3"},
			{"an unknown group config", "share.no.such.config", "1"},
		} {
			p.same("IncrementalAlterConfigs of a group: "+op.what, v, incrementalAlterOn(kmsg.ConfigResourceTypeGroupConfig, group, true, setOp(op.name, op.value)))
		}
	}
	p.both(func(side string, c *conn) {
		req := incrementalAlterOn(kmsg.ConfigResourceTypeGroupConfig, group, false,
			setOp("share.record.lock.duration.ms", "20000"), setOp("share.isolation.level", "read_committed"), setOp("consumer.heartbeat.interval.ms", "7000"))(side)
		req.SetVersion(1)
		if code := c.must(req).(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode; code != 0 {
			t.Fatalf("%s: setting a group's configs: error %d", side, code)
		}
	})
	// Kafka applies them through its metadata log, a moment after it answers.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		req := describeConfigsReq(kmsg.ConfigResourceTypeGroupConfig, group, "share.isolation.level")("kafka")
		req.SetVersion(4)
		if cs := p.kafka.must(req).(*kmsg.DescribeConfigsResponse).Resources[0].Configs; len(cs) == 1 && cs[0].Value != nil && *cs[0].Value == "read_committed" {
			break
		}
	}
	for _, v := range versions(kmsg.DescribeConfigs, 1) {
		p.same("DescribeConfigs of a group", v, describeConfigsReq(kmsg.ConfigResourceTypeGroupConfig, group), configAnswer)
		p.same("DescribeConfigs of a group's named configs", v, describeConfigsReq(kmsg.ConfigResourceTypeGroupConfig, group, "share.isolation.level", "share.delivery.count.limit"), configAnswer)
		p.same("DescribeConfigs of an unknown group", v, describeConfigsReq(kmsg.ConfigResourceTypeGroupConfig, group+"-none"), configAnswer)
	}

	for _, v := range versions(kmsg.CreatePartitions, 0) {
		cp := func(name string, count int32) func(string) kmsg.Request {
			return func(string) kmsg.Request {
				req := kmsg.NewPtrCreatePartitionsRequest()
				req.TimeoutMillis, req.ValidateOnly = 5000, true
				req.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: name, Count: count}}
				return req
			}
		}
		p.same("CreatePartitions fewer", v, cp(topic, 0))
		p.same("CreatePartitions the same count", v, cp(topic, 1))
		p.same("CreatePartitions more", v, cp(topic, 4))
		p.same("CreatePartitions an unknown topic", v, cp(topic+"-none", 4))
	}
	for _, v := range versions(kmsg.DescribeCluster, 0) {
		p.same("DescribeCluster", v, func(string) kmsg.Request { return kmsg.NewPtrDescribeClusterRequest() }, func(resp kmsg.Response) {
			d := resp.(*kmsg.DescribeClusterResponse)
			d.ControllerID = 0
			d.ClusterAuthorizedOperations = 0
		})
	}
}
