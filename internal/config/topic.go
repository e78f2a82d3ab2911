package config

import (
	"fmt"
	"strconv"
	"strings"
)

// TopicConfig is a per-topic setting whose default comes from a broker
// setting (Kafka calls the pair synonyms).
type TopicConfig struct {
	Setting
	BrokerName string // the broker setting that supplies the default; "" when Kafka has none with a default
}

var compressionTypes = []string{"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"}

func checkGzipLevel(v string) error {
	if v == "0" {
		return fmt.Errorf("must be 1 to 9, or -1 for the codec's default, got 0")
	}
	return nil
}

// checkThrottledReplicas accepts what Kafka accepts: empty, *, or
// partition:broker pairs separated by commas.
func checkThrottledReplicas(v string) error {
	if v == "" || strings.TrimSpace(v) == "*" {
		return nil
	}
	for _, pair := range strings.Split(v, ",") {
		p, b, ok := strings.Cut(strings.TrimSpace(pair), ":")
		if _, err := strconv.ParseUint(p, 10, 31); !ok || err != nil {
			return fmt.Errorf("%q is not partition:broker (e.g. 0:1,1:1, or *)", pair)
		}
		if _, err := strconv.ParseUint(b, 10, 31); err != nil {
			return fmt.Errorf("%q is not partition:broker (e.g. 0:1,1:1, or *)", pair)
		}
	}
	return nil
}

func noTieredStorage(v string) error {
	if v == "true" {
		return fmt.Errorf("tiered storage is not enabled on this broker (creek has none)")
	}
	return nil
}

// TopicConfigs are Kafka 4's topic configs, under Kafka's names. Every one
// is accepted and reported; the ones creek keeps without acting on say so
// (Setting.Inert), in DescribeConfigs' documentation and the reference.
var TopicConfigs = newTopicRegistry([]TopicConfig{
	{Setting: Setting{Name: "cleanup.policy", Type: List, check: checkCleanupPolicy,
		Doc: "delete: old segments are deleted by retention.bytes and retention.ms. compact: the log cleaner keeps only the latest record of each key (see min.cleanable.dirty.ratio); producers must then give every record a key. compact,delete: both."}, BrokerName: "log.cleanup.policy"},
	{Setting: Setting{Name: "compression.type", Type: String, Enum: compressionTypes,
		Doc: "How the partition stores batches: producer keeps each batch as the producer compressed it; uncompressed, gzip, snappy, lz4 or zstd make the broker recompress every batch in another codec before it is written (costing CPU on the broker, as in Kafka)."}, BrokerName: "compression.type"},
	{Setting: Setting{Name: "compression.gzip.level", Type: Int, Min: minimum(-1), Max: maximum(9), check: checkGzipLevel,
		Doc: "gzip level of batches the broker recompresses (compression.type=gzip): 1 to 9, or -1 for the codec's default."}, BrokerName: "compression.gzip.level"},
	{Setting: Setting{Name: "compression.lz4.level", Type: Int, Min: minimum(1), Max: maximum(17),
		Doc: "lz4 level of batches the broker recompresses (compression.type=lz4): 1 to 17."}, BrokerName: "compression.lz4.level"},
	{Setting: Setting{Name: "compression.zstd.level", Type: Int, Min: minimum(-131072), Max: maximum(22),
		Doc: "zstd level of batches the broker recompresses (compression.type=zstd): -131072 to 22."}, BrokerName: "compression.zstd.level"},
	{Setting: Setting{Name: "min.cleanable.dirty.ratio", Type: Double, Min: minimum(0), check: atMostOne,
		Doc: "A compacted partition is cleaned when the bytes written since its last cleaning are at least this share of its closed segments (0 to 1)."}, BrokerName: "log.cleaner.min.cleanable.ratio"},
	{Setting: Setting{Name: "min.compaction.lag.ms", Type: Long, Min: minimum(0),
		Doc: "Shortest time a record stays uncompacted: segments holding records younger than this are left for a later cleaning."}, BrokerName: "log.cleaner.min.compaction.lag.ms"},
	{Setting: Setting{Name: "max.compaction.lag.ms", Type: Long, Min: minimum(1),
		Doc: "Longest time a record may stay uncompacted: a partition whose oldest uncleaned segment is older is cleaned whatever its dirty ratio, and the active segment of a compacted topic is closed at this age (like segment.ms)."}, BrokerName: "log.cleaner.max.compaction.lag.ms"},
	{Setting: Setting{Name: "delete.retention.ms", Type: Long, Min: minimum(0),
		Doc: "How long a tombstone (a record with a null value) and a transaction marker are kept after the cleaning that made them the latest of their key; a consumer reading a compacted topic from the start must reach its end within this time to see every deletion."}, BrokerName: "log.cleaner.delete.retention.ms"},
	{Setting: Setting{Name: "retention.bytes", Type: Long, Min: minimum(-1),
		Doc: "Bytes a partition keeps; the oldest segments past it are deleted (-1: no limit)."}, BrokerName: "log.retention.bytes"},
	{Setting: Setting{Name: "retention.ms", Type: Long, Min: minimum(-1),
		Doc: "Age after which a segment is deleted (-1: no limit)."}, BrokerName: "log.retention.ms"},
	{Setting: Setting{Name: "segment.bytes", Type: Int, Min: minimum(100),
		Doc: "Size at which a partition starts a new segment file (Kafka's minimum is 1 MiB; creek allows smaller ones for tests)."}, BrokerName: "log.segment.bytes"},
	{Setting: Setting{Name: "segment.ms", Type: Long, Min: minimum(1),
		Doc: "Age at which a partition starts a new segment file."}, BrokerName: "log.roll.ms"},
	{Setting: Setting{Name: "index.interval.bytes", Type: Int, Min: minimum(0),
		Doc: "Bytes between entries of the offset index."}, BrokerName: "log.index.interval.bytes"},
	{Setting: Setting{Name: "max.message.bytes", Type: Int, Min: minimum(0),
		Doc: "The largest record batch a producer may send."}, BrokerName: "message.max.bytes"},
	{Setting: Setting{Name: "message.timestamp.type", Type: String, Enum: []string{"CreateTime", "LogAppendTime"},
		Doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches with the broker's clock."}, BrokerName: "log.message.timestamp.type"},
	{Setting: Setting{Name: "message.timestamp.after.max.ms", Type: Long, Min: minimum(0),
		Doc: "With message.timestamp.type=CreateTime: how far in the future (by the broker's clock) a record's timestamp may be; a batch holding a later one is refused with INVALID_TIMESTAMP."}, BrokerName: "log.message.timestamp.after.max.ms"},
	{Setting: Setting{Name: "message.timestamp.before.max.ms", Type: Long, Min: minimum(0),
		Doc: "With message.timestamp.type=CreateTime: how far in the past a record's timestamp may be; a batch holding an older one is refused with INVALID_TIMESTAMP."}, BrokerName: "log.message.timestamp.before.max.ms"},
	{Setting: Setting{Name: "min.insync.replicas", Type: Int, Min: minimum(1),
		Doc: "Replicas that must have an acks=all write. One node has one, so more makes acks=all produces fail with NOT_ENOUGH_REPLICAS."}, BrokerName: "min.insync.replicas"},

	// Kept and reported, not acted on.
	{Setting: Setting{Name: "file.delete.delay.ms", Type: Long, Min: minimum(0),
		Doc: "How long Kafka waits before deleting a segment file it retired.", Inert: "creek removes a retired segment file at once; reads that already opened it finish from the open file"}, BrokerName: "log.segment.delete.delay.ms"},
	{Setting: Setting{Name: "flush.messages", Type: Long, Min: minimum(1),
		Doc: "Records after which Kafka forces an fsync of the partition.", Inert: "the broker's fsync setting decides when data is fsynced (by default before acks=all producers are answered)"}, BrokerName: "log.flush.interval.messages"},
	{Setting: Setting{Name: "flush.ms", Type: Long, Min: minimum(0), Default: "9223372036854775807",
		Doc: "Time after which Kafka forces an fsync of the partition.", Inert: "the broker's fsync setting and log.flush.interval.ms decide when data is fsynced"}},
	{Setting: Setting{Name: "segment.index.bytes", Type: Int, Min: minimum(4),
		Doc: "Size Kafka preallocates for a segment's offset and time indexes.", Inert: "creek's indexes grow with their segment"}, BrokerName: "log.index.size.max.bytes"},
	{Setting: Setting{Name: "segment.jitter.ms", Type: Long, Min: minimum(0), Default: "0",
		Doc: "Random time Kafka subtracts from segment.ms so that partitions do not roll together.", Inert: "creek rolls at segment.ms exactly"}},
	{Setting: Setting{Name: "preallocate", Type: Bool,
		Doc: "Whether Kafka preallocates a new segment file.", Inert: "creek's segment files grow as they are written"}, BrokerName: "log.preallocate"},
	{Setting: Setting{Name: "max.decompressed.message.bytes", Type: Int, Min: minimum(1), Max: maximum(2147483639),
		Doc: "Largest size a compressed batch may decompress to.", Inert: "creek refuses any batch that decompresses to more than 64 MiB, whatever this says"}, BrokerName: "max.decompressed.message.bytes"},
	{Setting: Setting{Name: "unclean.leader.election.enable", Type: Bool,
		Doc: "Whether a replica that is not in sync may become leader.", Inert: "one node is always the leader of every partition"}, BrokerName: "unclean.leader.election.enable"},
	{Setting: Setting{Name: "leader.replication.throttled.replicas", Type: List, Default: "", check: checkThrottledReplicas,
		Doc: "Replicas (partition:broker, or *) whose replication traffic Kafka throttles on the leader side.", Inert: "one node replicates nothing"}},
	{Setting: Setting{Name: "follower.replication.throttled.replicas", Type: List, Default: "", check: checkThrottledReplicas,
		Doc: "Replicas (partition:broker, or *) whose replication traffic Kafka throttles on the follower side.", Inert: "one node replicates nothing"}},
	{Setting: Setting{Name: "remote.storage.enable", Type: Bool, Default: "false", check: noTieredStorage,
		Doc: "Tiered storage (KIP-405) for the topic. Like Kafka without a remote log manager, creek refuses true."}},
	{Setting: Setting{Name: "local.retention.bytes", Type: Long, Min: minimum(-2),
		Doc: "With tiered storage, bytes kept on local disk (-2: retention.bytes).", Inert: "creek has no tiered storage"}, BrokerName: "log.local.retention.bytes"},
	{Setting: Setting{Name: "local.retention.ms", Type: Long, Min: minimum(-2),
		Doc: "With tiered storage, time data stays on local disk (-2: retention.ms).", Inert: "creek has no tiered storage"}, BrokerName: "log.local.retention.ms"},
	{Setting: Setting{Name: "remote.copy.lag.bytes", Type: Long, Min: minimum(-1),
		Doc: "With tiered storage, bytes a closed segment may wait before it is copied to remote storage.", Inert: "creek has no tiered storage"}, BrokerName: "log.remote.copy.lag.bytes"},
	{Setting: Setting{Name: "remote.copy.lag.ms", Type: Long, Min: minimum(-1),
		Doc: "With tiered storage, time a closed segment may wait before it is copied to remote storage.", Inert: "creek has no tiered storage"}, BrokerName: "log.remote.copy.lag.ms"},
	{Setting: Setting{Name: "remote.log.copy.disable", Type: Bool, Default: "false",
		Doc: "With tiered storage, stop copying segments to remote storage.", Inert: "creek has no tiered storage"}},
	{Setting: Setting{Name: "remote.log.delete.on.disable", Type: Bool, Default: "false",
		Doc: "With tiered storage, delete remote data when it is disabled.", Inert: "creek has no tiered storage"}},
	{Setting: Setting{Name: "errors.deadletterqueue.group.enable", Type: Bool, Default: "false",
		Doc: "Whether share groups (KIP-1191) may write records they give up on to this topic as their dead-letter queue.", Inert: "creek's share groups archive such records and write no dead-letter queue"}},
})

// TopicRegistry indexes topic configs by name.
type TopicRegistry struct {
	*Registry
	topics map[string]*TopicConfig
}

func newTopicRegistry(list []TopicConfig) *TopicRegistry {
	settings := make([]Setting, len(list))
	for i, tc := range list {
		settings[i] = tc.Setting
		if tc.BrokerName == "" {
			continue // no broker setting: the topic config's own default
		}
		bs, ok := lookupBroker(tc.BrokerName)
		if !ok {
			panic("config: topic config " + tc.Name + " defaults to unknown broker setting " + tc.BrokerName)
		}
		settings[i].Default = bs.Default
	}
	r := &TopicRegistry{Registry: newRegistry(settings), topics: map[string]*TopicConfig{}}
	for i := range list {
		list[i].Setting = *r.byName[list[i].Name]
		r.topics[list[i].Name] = &list[i]
	}
	return r
}

// Topic finds a topic config by name.
func (r *TopicRegistry) Topic(name string) (*TopicConfig, bool) {
	tc, ok := r.topics[name]
	return tc, ok
}

// UnknownTopicConfig is the error for a topic config Kafka does not have
// either.
func UnknownTopicConfig(name string) error { return unknownTopicConfig(name) }

type unknownTopicConfig string

// Error words it as Kafka does, which tools such as kafka-configs print.
func (e unknownTopicConfig) Error() string { return "Unknown topic config name: " + string(e) }

// ValidateTopicConfigs checks topic overrides and returns them normalised.
func ValidateTopicConfigs(given map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(given))
	for k, v := range given {
		tc, ok := TopicConfigs.Topic(k)
		if !ok {
			return nil, UnknownTopicConfig(k)
		}
		nv, err := tc.Validate(v)
		if err != nil {
			return nil, err
		}
		out[k] = nv
	}
	return out, nil
}

// ResolvedTopicConfig is a topic config's effective value.
type ResolvedTopicConfig struct {
	*TopicConfig
	Value  string
	Source Source
}

// ResolveTopic returns the effective value of every topic config for a topic
// with the given overrides, in registry order.
func ResolveTopic(overrides map[string]string, broker *BrokerValues) []ResolvedTopicConfig {
	return resolve(TopicConfigs, overrides, broker, SourceDynamicTopic)
}

func resolve(r *TopicRegistry, overrides map[string]string, broker *BrokerValues, own Source) []ResolvedTopicConfig {
	var out []ResolvedTopicConfig
	for _, s := range r.All() {
		tc, _ := r.Topic(s.Name)
		r := ResolvedTopicConfig{TopicConfig: tc}
		if v, ok := overrides[s.Name]; ok {
			r.Value, r.Source = v, own
		} else if tc.BrokerName != "" {
			r.Value, r.Source = broker.Get(tc.BrokerName)
		} else {
			r.Value, r.Source = tc.Default, SourceDefault
		}
		out = append(out, r)
	}
	return out
}

// TopicInt64 returns the effective numeric value of one topic config.
func TopicInt64(name string, overrides map[string]string, broker *BrokerValues) int64 {
	v := TopicString(name, overrides, broker)
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

// TopicFloat64 returns the effective value of a topic config of type double.
func TopicFloat64(name string, overrides map[string]string, broker *BrokerValues) float64 {
	f, _ := strconv.ParseFloat(TopicString(name, overrides, broker), 64)
	return f
}

// TopicString returns the effective value of one topic config.
func TopicString(name string, overrides map[string]string, broker *BrokerValues) string {
	if v, ok := overrides[name]; ok {
		return v
	}
	tc, ok := TopicConfigs.Topic(name)
	if !ok {
		panic("config: unknown topic config " + name)
	}
	if tc.BrokerName == "" {
		return tc.Default
	}
	return broker.String(tc.BrokerName)
}
