package config

import "strconv"

// TopicConfig is a per-topic setting whose default comes from a broker
// setting (Kafka calls the pair synonyms).
type TopicConfig struct {
	Setting
	BrokerName string // the broker setting that supplies the default
}

// TopicConfigs are the topic configs creek understands, under Kafka's names.
var TopicConfigs = newTopicRegistry([]TopicConfig{
	{Setting: Setting{Name: "cleanup.policy", Type: List, check: checkCleanupPolicy,
		Doc: "delete: old segments are deleted by retention.bytes and retention.ms. compact: the log cleaner keeps only the latest record of each key (see min.cleanable.dirty.ratio); producers must then give every record a key. compact,delete: both."}, BrokerName: "log.cleanup.policy"},
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
		Doc: "Size at which a partition starts a new segment file."}, BrokerName: "log.segment.bytes"},
	{Setting: Setting{Name: "segment.ms", Type: Long, Min: minimum(1),
		Doc: "Age at which a partition starts a new segment file."}, BrokerName: "log.roll.ms"},
	{Setting: Setting{Name: "index.interval.bytes", Type: Int, Min: minimum(0),
		Doc: "Bytes between entries of the offset index."}, BrokerName: "log.index.interval.bytes"},
	{Setting: Setting{Name: "max.message.bytes", Type: Int, Min: minimum(0),
		Doc: "The largest record batch a producer may send."}, BrokerName: "message.max.bytes"},
	{Setting: Setting{Name: "message.timestamp.type", Type: String, Enum: []string{"CreateTime", "LogAppendTime"},
		Doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches with the broker's clock."}, BrokerName: "log.message.timestamp.type"},
	{Setting: Setting{Name: "min.insync.replicas", Type: Int, Min: minimum(1),
		Doc: "Replicas that must have an acks=all write. One node has one, so more makes acks=all produces fail with NOT_ENOUGH_REPLICAS."}, BrokerName: "min.insync.replicas"},
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
		if bs, ok := BrokerSettings.Lookup(tc.BrokerName); ok {
			settings[i].Default = bs.Default
		}
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

// ValidateTopicConfigs checks topic overrides and returns them normalised.
func ValidateTopicConfigs(given map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(given))
	for k, v := range given {
		tc, ok := TopicConfigs.Topic(k)
		if !ok {
			return nil, TopicConfigs.UnknownError("topic config", k)
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
	var out []ResolvedTopicConfig
	for _, s := range TopicConfigs.All() {
		tc, _ := TopicConfigs.Topic(s.Name)
		r := ResolvedTopicConfig{TopicConfig: tc}
		if v, ok := overrides[s.Name]; ok {
			r.Value, r.Source = v, SourceDynamicTopic
		} else {
			r.Value, r.Source = broker.Get(tc.BrokerName)
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
	return broker.String(tc.BrokerName)
}
