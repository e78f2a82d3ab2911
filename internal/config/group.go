package config

import (
	"fmt"
	"regexp"
)

// GroupConfigs are Kafka 4's group configs (KIP-848, KIP-932, KIP-1071),
// set per group with IncrementalAlterConfigs on a GROUP resource; a group
// without its own value uses the broker setting named in BrokerName. The
// bounds are Kafka's defaults of its group.*.min/max settings. The ones
// creek keeps without acting on say so (Setting.Inert).
var GroupConfigs = newGroupRegistry([]TopicConfig{
	{Setting: Setting{Name: "consumer.session.timeout.ms", Type: Int, Min: minimum(45000), Max: maximum(60000),
		Doc: "Session timeout of this consumer-protocol group's members (KIP-848): a member without a heartbeat for this long is removed."}, BrokerName: "group.consumer.session.timeout.ms"},
	{Setting: Setting{Name: "consumer.heartbeat.interval.ms", Type: Int, Min: minimum(5000), Max: maximum(15000),
		Doc: "Heartbeat interval of this consumer-protocol group's members."}, BrokerName: "group.consumer.heartbeat.interval.ms"},
	{Setting: Setting{Name: "consumer.assignment.interval.ms", Type: Int, Min: minimum(0), Default: "1000",
		Doc: "How often Kafka recomputes the group's assignment.", Inert: "creek assigns at every change of membership or subscription"}},
	{Setting: Setting{Name: "share.auto.offset.reset", Type: String, Default: "latest", check: checkShareReset,
		Doc: "Where this share group starts reading a partition it has no state for: latest, earliest, or or by_duration:<ISO 8601 duration such as PT1H> (the first record not older than that)."}},
	{Setting: Setting{Name: "share.record.lock.duration.ms", Type: Int, Min: minimum(15000), Max: maximum(60000),
		Doc: "How long this share group's members hold the records they fetched before they are delivered again."}, BrokerName: "group.share.record.lock.duration.ms"},
	{Setting: Setting{Name: "share.session.timeout.ms", Type: Int, Min: minimum(45000), Max: maximum(60000),
		Doc: "Session timeout of this share group's members."}, BrokerName: "group.share.session.timeout.ms"},
	{Setting: Setting{Name: "share.heartbeat.interval.ms", Type: Int, Min: minimum(5000), Max: maximum(15000),
		Doc: "Heartbeat interval of this share group's members."}, BrokerName: "group.share.heartbeat.interval.ms"},
	{Setting: Setting{Name: "share.delivery.count.limit", Type: Int, Min: minimum(2), Max: maximum(10),
		Doc: "Deliveries of a record to this share group before it is archived."}, BrokerName: "group.share.delivery.count.limit"},
	{Setting: Setting{Name: "share.partition.max.record.locks", Type: Int, Min: minimum(100), Max: maximum(4000),
		Doc: "Most records of a partition this share group has in flight."}, BrokerName: "group.share.partition.max.record.locks"},
	{Setting: Setting{Name: "share.isolation.level", Type: String, Default: "read_uncommitted", Enum: []string{"read_committed", "read_uncommitted"},
		Doc: "read_committed: this share group is delivered only committed transactional records (up to the last stable offset; records of aborted transactions are archived undelivered); read_uncommitted: every record."}},
	{Setting: Setting{Name: "share.renew.acknowledge.enable", Type: Bool, Default: "true",
		Doc: "Whether members may renew their acquisition locks (KIP-1222).", Inert: "creek always accepts renew acknowledgements"}},
	{Setting: Setting{Name: "share.assignment.interval.ms", Type: Int, Min: minimum(0), Default: "1000",
		Doc: "How often Kafka recomputes the share group's assignment.", Inert: "creek assigns every partition of the subscribed topics to every member"}},
	{Setting: Setting{Name: "errors.deadletterqueue.topic.name", Type: String, Default: "",
		Doc: "Dead-letter topic of the share group (KIP-1191).", Inert: "creek's share groups archive records they give up on"}},
	{Setting: Setting{Name: "errors.deadletterqueue.copy.record.enable", Type: Bool, Default: "false",
		Doc: "Whether the dead-letter record copies the original.", Inert: "creek's share groups write no dead-letter records"}},
	{Setting: Setting{Name: "streams.session.timeout.ms", Type: Int, Min: minimum(45000), Max: maximum(60000), Default: "45000",
		Doc: "Session timeout of streams groups (KIP-1071).", Inert: "creek does not serve streams groups; Kafka Streams uses the classic protocol"}},
	{Setting: Setting{Name: "streams.heartbeat.interval.ms", Type: Int, Min: minimum(5000), Max: maximum(15000), Default: "5000",
		Doc: "Heartbeat interval of streams groups.", Inert: "creek does not serve streams groups"}},
	{Setting: Setting{Name: "streams.initial.rebalance.delay.ms", Type: Int, Min: minimum(0), Default: "3000",
		Doc: "First rebalance delay of streams groups.", Inert: "creek does not serve streams groups"}},
	{Setting: Setting{Name: "streams.num.standby.replicas", Type: Int, Min: minimum(0), Max: maximum(2), Default: "0",
		Doc: "Standby replicas of streams groups' tasks.", Inert: "creek does not serve streams groups"}},
	{Setting: Setting{Name: "streams.assignment.interval.ms", Type: Int, Min: minimum(0), Default: "1000",
		Doc: "How often streams groups' assignment is recomputed.", Inert: "creek does not serve streams groups"}},
	{Setting: Setting{Name: "streams.assignor.name", Type: String, Default: "sticky",
		Doc: "Task assignor of the streams group.", Inert: "creek does not serve streams groups"}},
	{Setting: Setting{Name: "streams.rack.aware.assignment.tags", Type: List, Default: "",
		Doc: "Rack tags of streams groups' assignment.", Inert: "creek does not serve streams groups"}},
})

// newGroupRegistry is a topic registry over group configs: the same shape,
// a config with the broker setting that gives its default.
func newGroupRegistry(list []TopicConfig) *TopicRegistry { return newTopicRegistry(list) }

var shareReset = regexp.MustCompile(`^(latest|earliest|by_duration:P(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?)$`)

func checkShareReset(v string) error {
	if !shareReset.MatchString(v) || v == "by_duration:P" || v == "by_duration:PT" {
		return fmt.Errorf("must be earliest, latest or by_duration:<ISO 8601 duration such as PT1H>, got %q", v)
	}
	return nil
}

// ValidateGroupConfig checks one group config and returns it normalised.
func ValidateGroupConfig(name, value string) (string, error) {
	gc, ok := GroupConfigs.Topic(name)
	if !ok {
		return "", fmt.Errorf("unknown group config name: %s", name)
	}
	return gc.Validate(value)
}

// ResolveGroup returns the effective value of every group config for a
// group with the given configs, in registry order.
func ResolveGroup(set map[string]string, broker *BrokerValues) []ResolvedTopicConfig {
	return resolve(GroupConfigs, set, broker, SourceDynamicGroup)
}
