package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Broker settings. creek's own (listen, advertised-addr, data-dir, fsync)
// have flags; the Kafka-named ones are set with --override key=value, a
// CREEK_* variable or the broker section of the YAML file.
var BrokerSettings = newRegistry([]Setting{
	{Name: "listen", Flag: "listen", Type: String, Default: ":9092",
		Doc: "Address the broker listens on for Kafka clients (host:port; an empty host means every interface).", check: checkHostPort},
	{Name: "advertised-addr", Flag: "advertised-addr", Type: String, Default: "",
		Doc: "host:port that clients are told to connect to. Empty: the address each client used to reach the broker. Set it when clients reach the broker through NAT, e.g. an EC2 public DNS name.", check: checkOptionalHostPort},
	{Name: "data-dir", Flag: "data-dir", Type: String, Default: "./creek-data",
		Doc: "Folder that holds the partition logs and the metadata store."},
	{Name: "fsync", Flag: "fsync", Type: String, Default: "acks",
		Doc: "When data is fsynced. acks: before answering acks=all producers (concurrent producers share one fsync), and every log.flush.interval.ms for acks=0/1; always: before answering every producer; never: leave it to the operating system; a duration such as 200ms: in the background at that interval. Every acknowledged record survives kill -9 of the broker in every mode; fsync is what makes it survive a power loss.", check: checkFsync},
	{Name: "node.id", Type: Int, Default: "1", Min: minimum(0),
		Doc: "The broker's node id, as reported in metadata."},
	{Name: "num.partitions", Type: Int, Default: "1", Min: minimum(1),
		Doc: "Partitions of an automatically created topic, and of a created topic that does not say."},
	{Name: "auto.create.topics.enable", Type: Bool, Default: "true",
		Doc: "Create a topic when a client asks for its metadata or produces to it."},
	{Name: "delete.topic.enable", Type: Bool, Default: "true",
		Doc: "Allow DeleteTopics."},
	{Name: "log.retention.bytes", Type: Long, Default: "1073741824", Min: minimum(-1),
		Doc: "Default retention.bytes: bytes a partition keeps before its oldest segments are deleted (-1: no limit). The seed's 1 GB."},
	{Name: "log.retention.ms", Type: Long, Default: "604800000", Min: minimum(-1),
		Doc: "Default retention.ms: age after which a segment is deleted (-1: no limit). 7 days."},
	{Name: "log.segment.bytes", Type: Int, Default: "134217728", Min: minimum(100),
		Doc: "Default segment.bytes: size at which a partition starts a new segment file. Smaller than Kafka's 1 GiB so that 1 GiB retention deletes in steps."},
	{Name: "log.roll.ms", Type: Long, Default: "604800000", Min: minimum(1),
		Doc: "Default segment.ms: age at which a partition starts a new segment file."},
	{Name: "log.index.interval.bytes", Type: Int, Default: "4096", Min: minimum(0),
		Doc: "Default index.interval.bytes: bytes between offset index entries."},
	{Name: "log.retention.check.interval.ms", Type: Long, Default: "30000", Min: minimum(1),
		Doc: "How often retention is checked in the background (it is also checked after every segment roll)."},
	{Name: "log.flush.interval.ms", Type: Long, Default: "1000", Min: minimum(1),
		Doc: "With fsync=acks: the longest time data from acks=0/1 producers waits before it is fsynced."},
	{Name: "log.message.timestamp.type", Type: String, Default: "CreateTime", Enum: []string{"CreateTime", "LogAppendTime"},
		Doc: "Default message.timestamp.type."},
	{Name: "log.cleanup.policy", Type: List, Default: "delete", check: checkCleanupPolicy,
		Doc: "Default cleanup.policy: delete, compact, or compact,delete."},
	{Name: "log.cleaner.enable", Type: Bool, Default: "true",
		Doc: "Run the log cleaner, which compacts topics whose cleanup.policy includes compact. Off, compacted topics keep every record."},
	{Name: "log.cleaner.threads", Type: Int, Default: "1", Min: minimum(0),
		Doc: "Background threads that compact logs, each one partition at a time (0: none)."},
	{Name: "log.cleaner.dedupe.buffer.size", Type: Long, Default: "134217728", Min: minimum(1 << 20),
		Doc: "Memory for the cleaners' key maps, shared by the threads: 24 bytes per distinct key, so the default holds about 5 million keys per pass. A partition with more keys is compacted in several passes. Only what a pass needs is allocated, and it is given back after the pass."},
	{Name: "log.cleaner.io.max.bytes.per.second", Type: Double, Default: "104857600", Min: minimum(1),
		Doc: "Most bytes per second the cleaner threads read and write together: 100 MiB/s, so that cleaning a large log leaves the disk and the page cache to producers and consumers (Kafka's default, 1.7976931348623157e+308, means no limit). The cleaner also runs at the lowest CPU and I/O priority."},
	{Name: "log.cleaner.backoff.ms", Type: Long, Default: "15000", Min: minimum(0),
		Doc: "How long a cleaner thread sleeps when no log needs cleaning."},
	{Name: "log.cleaner.min.cleanable.ratio", Type: Double, Default: "0.5", Min: minimum(0), check: atMostOne,
		Doc: "Default min.cleanable.dirty.ratio."},
	{Name: "log.cleaner.min.compaction.lag.ms", Type: Long, Default: "0", Min: minimum(0),
		Doc: "Default min.compaction.lag.ms."},
	{Name: "log.cleaner.max.compaction.lag.ms", Type: Long, Default: "9223372036854775807", Min: minimum(1),
		Doc: "Default max.compaction.lag.ms."},
	{Name: "log.cleaner.delete.retention.ms", Type: Long, Default: "86400000", Min: minimum(0),
		Doc: "Default delete.retention.ms (1 day)."},
	{Name: "compression.type", Type: String, Default: "producer", Enum: compressionTypes,
		Doc: "Default compression.type: producer keeps batches as producers compressed them; a codec (uncompressed, gzip, snappy, lz4, zstd) makes the broker recompress every batch in it."},
	{Name: "compression.gzip.level", Type: Int, Default: "-1", Min: minimum(-1), Max: maximum(9), check: checkGzipLevel,
		Doc: "Default compression.gzip.level."},
	{Name: "compression.lz4.level", Type: Int, Default: "9", Min: minimum(1), Max: maximum(17),
		Doc: "Default compression.lz4.level."},
	{Name: "compression.zstd.level", Type: Int, Default: "3", Min: minimum(-131072), Max: maximum(22),
		Doc: "Default compression.zstd.level."},
	{Name: "log.message.timestamp.after.max.ms", Type: Long, Default: "3600000", Min: minimum(0),
		Doc: "Default message.timestamp.after.max.ms: how far in the future a CreateTime record's timestamp may be (1 hour, as in Kafka 4)."},
	{Name: "log.message.timestamp.before.max.ms", Type: Long, Default: "9223372036854775807", Min: minimum(0),
		Doc: "Default message.timestamp.before.max.ms: how far in the past a CreateTime record's timestamp may be (no limit)."},
	{Name: "message.max.bytes", Type: Int, Default: "1048588", Min: minimum(0),
		Doc: "Default max.message.bytes: the largest record batch a producer may send."},
	{Name: "min.insync.replicas", Type: Int, Default: "1", Min: minimum(1),
		Doc: "Default min.insync.replicas. One node has one replica, so acks=all produces to a topic that asks for more fail with NOT_ENOUGH_REPLICAS, as on Kafka."},
	{Name: "socket.request.max.bytes", Type: Int, Default: "104857600", Min: minimum(1024),
		Doc: "Largest request a client may send; a larger one closes that connection."},
	{Name: "request.max.bytes.non.produce", Type: Int, Default: "16777216", Min: minimum(1024),
		Doc: "Largest request of any API other than Produce (which only socket.request.max.bytes limits); a larger one closes that connection. Such requests are lists of small items, each taking many times its size in memory once decoded, and real clients send well under this."},
	{Name: "queued.max.request.bytes", Type: Long, Default: "-1", Min: minimum(-1), check: checkQueuedMaxRequestBytes,
		Doc: "Most bytes of requests the broker reads and handles at once, across all connections, counted by the size each request announces; while they are taken, connections wait before reading their next request (a request is let in while anything is left, so a larger one still passes). -1: no limit, as in Kafka."},
	{Name: "fetch.max.bytes", Type: Int, Default: "57671680", Min: minimum(1024),
		Doc: "Most record data one fetch answer carries, whatever the consumer asks for (its first batch is always whole, as in Kafka)."},
	{Name: "max.incremental.fetch.session.cache.slots", Type: Int, Default: "1000", Min: minimum(0),
		Doc: "Most incremental fetch sessions (KIP-227) kept at once: a consumer in a session sends and is answered only the partitions that changed. When all are taken, a new session takes the slot of one unused for two minutes, else of a smaller one, else the consumer fetches without a session. 0: no sessions."},
	{Name: "socket.write.timeout.ms", Type: Int, Default: "60000", Min: minimum(1),
		Doc: "How long the broker waits for a client to read its answers: when a write to a connection makes no progress for this long, that connection is closed and what it held is freed."},
	{Name: "producer.id.expiration.ms", Type: Int, Default: "86400000", Min: minimum(1),
		Doc: "How long an idempotent producer's state is kept after its last write."},
	{Name: "group.min.session.timeout.ms", Type: Int, Default: "6000", Min: minimum(1),
		Doc: "Shortest session timeout a consumer group member may ask for."},
	{Name: "group.max.session.timeout.ms", Type: Int, Default: "1800000", Min: minimum(1),
		Doc: "Longest session timeout a consumer group member may ask for."},
	{Name: "group.initial.rebalance.delay.ms", Type: Int, Default: "3000", Min: minimum(0),
		Doc: "How long a new consumer group waits for more members before its first assignment (each new member extends it, within the rebalance timeout)."},
	{Name: "group.max.size", Type: Int, Default: "2147483647", Min: minimum(1),
		Doc: "Most members a consumer group may have."},
	{Name: "group.consumer.session.timeout.ms", Type: Int, Default: "45000", Min: minimum(1),
		Doc: "Session timeout of members of consumer-protocol groups (KIP-848, Kafka 4 consumers): a member that sends no heartbeat for this long is removed and its partitions reassigned."},
	{Name: "group.consumer.heartbeat.interval.ms", Type: Int, Default: "5000", Min: minimum(1),
		Doc: "How often members of consumer-protocol groups heartbeat; partitions moved between members are handed over within a few intervals."},
	{Name: "group.consumer.assignors", Type: List, Default: "uniform,range", check: checkAssignors,
		Doc: "Server-side assignors of consumer-protocol groups; the first is used when members ask for none. uniform spreads partitions evenly and keeps them where they are; range gives each member contiguous partitions of every topic."},
	{Name: "group.share.session.timeout.ms", Type: Int, Default: "45000", Min: minimum(1),
		Doc: "Session timeout of share group members (KIP-932): a member silent this long is removed and the records it holds go to the others."},
	{Name: "group.share.heartbeat.interval.ms", Type: Int, Default: "5000", Min: minimum(1),
		Doc: "How often share group members heartbeat."},
	{Name: "group.share.record.lock.duration.ms", Type: Int, Default: "30000", Min: minimum(1),
		Doc: "How long a share group member holds the records it fetched (the acquisition lock); records not acknowledged by then are delivered again."},
	{Name: "group.share.delivery.count.limit", Type: Int, Default: "5", Min: minimum(2), check: atMost(10),
		Doc: "How many times a record is delivered to a share group before it is archived (given up on)."},
	{Name: "group.share.partition.max.record.locks", Type: Int, Default: "2000", Min: minimum(100),
		Doc: "Most records of a partition a share group has in flight (delivered, not yet acknowledged)."},
	{Name: "group.share.max.size", Type: Int, Default: "200", Min: minimum(1),
		Doc: "Most members a share group may have."},
	{Name: "offsets.retention.minutes", Type: Int, Default: "10080", Min: minimum(1),
		Doc: "How long a consumer group's committed offsets are kept after the group becomes empty (7 days); offsets committed without group membership are kept this long after their commit."},
	{Name: "offsets.retention.check.interval.ms", Type: Long, Default: "600000", Min: minimum(1),
		Doc: "How often expired committed offsets are looked for."},
	{Name: "offset.metadata.max.bytes", Type: Int, Default: "4096", Min: minimum(0),
		Doc: "Largest metadata string a consumer may commit with an offset."},
	{Name: "quota.window.num", Type: Int, Default: "11", Min: minimum(2),
		Doc: "Samples over which client byte rates are measured against their quotas (AlterClientQuotas: producer_byte_rate, consumer_byte_rate)."},
	{Name: "quota.window.size.seconds", Type: Int, Default: "1", Min: minimum(1),
		Doc: "Length of each of those samples; a client over its quota waits up to quota.window.num × this."},
	{Name: "offsets.topic.num.partitions", Type: Int, Default: "1", Min: minimum(1),
		Doc: "Partitions of the internal topic __consumer_offsets, made when a consumer first looks for its group coordinator (or first commits). Each group's commits and membership changes are written to one partition, chosen as Kafka chooses it, so tools that read the topic find them (Kafka's default is 50)."},
	{Name: "transaction.state.log.num.partitions", Type: Int, Default: "1", Min: minimum(1),
		Doc: "Partitions of the internal topic __transaction_state, made when a transactional producer first looks for its coordinator. creek keeps transaction state in its metadata store, so the topic holds no records (Kafka's default is 50)."},
	{Name: "transaction.max.timeout.ms", Type: Int, Default: "900000", Min: minimum(1),
		Doc: "Longest transaction timeout a transactional producer may ask for (transaction.timeout.ms); longer requests get INVALID_TRANSACTION_TIMEOUT."},
	{Name: "transaction.abort.timed.out.transaction.cleanup.interval.ms", Type: Int, Default: "10000", Min: minimum(1),
		Doc: "How often transactions open longer than their timeout are looked for; they are aborted and their producer fenced."},
})

// FixedBrokerConfigs are Kafka broker configs creek reports, read-only,
// with the value creek works with: DescribeConfigs on the broker answers
// them as a one-node Kafka would, and topic configs that Kafka defaults
// from them take their values. They cannot be set.
var FixedBrokerConfigs = newRegistry([]Setting{
	{Name: "broker.id", Type: Int, Default: "1", Doc: "The broker's id: node.id.", Inert: "set node.id"},
	{Name: "process.roles", Type: List, Default: "broker,controller", Doc: "The node is broker and controller at once.", Inert: "one node plays every role"},
	{Name: "default.replication.factor", Type: Int, Default: "1", Doc: "Replication factor of created topics that do not say.", Inert: "one node keeps one replica"},
	{Name: "offsets.topic.replication.factor", Type: Short, Default: "1", Doc: "Replication factor of __consumer_offsets.", Inert: "one node keeps one replica"},
	{Name: "transaction.state.log.replication.factor", Type: Short, Default: "1", Doc: "Replication factor of __transaction_state.", Inert: "one node keeps one replica"},
	{Name: "transaction.state.log.min.isr", Type: Int, Default: "1", Doc: "min.insync.replicas of __transaction_state.", Inert: "one node keeps one replica"},
	{Name: "log.retention.hours", Type: Int, Default: "168", Doc: "Kafka's coarser synonym of log.retention.ms.", Inert: "set log.retention.ms"},
	{Name: "log.segment.delete.delay.ms", Type: Long, Default: "60000", Doc: "Default file.delete.delay.ms.", Inert: "creek removes a retired segment file at once"},
	{Name: "log.flush.interval.messages", Type: Long, Default: "9223372036854775807", Doc: "Default flush.messages.", Inert: "the fsync setting decides when data is fsynced"},
	{Name: "log.index.size.max.bytes", Type: Int, Default: "10485760", Doc: "Default segment.index.bytes.", Inert: "creek's indexes grow with their segment"},
	{Name: "log.preallocate", Type: Bool, Default: "false", Doc: "Default preallocate.", Inert: "creek's segment files grow as they are written"},
	{Name: "max.decompressed.message.bytes", Type: Int, Default: "2147483639", Doc: "Default max.decompressed.message.bytes.", Inert: "creek refuses batches that decompress to more than 64 MiB"},
	{Name: "unclean.leader.election.enable", Type: Bool, Default: "false", Doc: "Default unclean.leader.election.enable.", Inert: "one node is always the leader"},
	{Name: "log.local.retention.bytes", Type: Long, Default: "-2", Doc: "Default local.retention.bytes.", Inert: "creek has no tiered storage"},
	{Name: "log.local.retention.ms", Type: Long, Default: "-2", Doc: "Default local.retention.ms.", Inert: "creek has no tiered storage"},
	{Name: "log.remote.copy.lag.bytes", Type: Long, Default: "-1", Doc: "Default remote.copy.lag.bytes.", Inert: "creek has no tiered storage"},
	{Name: "log.remote.copy.lag.ms", Type: Long, Default: "0", Doc: "Default remote.copy.lag.ms.", Inert: "creek has no tiered storage"},
	{Name: "remote.log.storage.system.enable", Type: Bool, Default: "false", Doc: "Tiered storage on the broker.", Inert: "creek has no tiered storage"},
	{Name: "group.coordinator.rebalance.protocols", Type: List, Default: "classic,consumer,share", Doc: "Group protocols the coordinator serves: classic, consumer (KIP-848) and share (KIP-932).", Inert: "creek serves all three"},
	{Name: "share.coordinator.state.topic.replication.factor", Type: Short, Default: "1", Doc: "Replication factor of share groups' state.", Inert: "creek keeps share state in its metadata store"},
})

// lookupBroker finds a broker setting or a fixed broker config.
func lookupBroker(name string) (*Setting, bool) {
	if s, ok := BrokerSettings.Lookup(name); ok {
		return s, true
	}
	return FixedBrokerConfigs.Lookup(name)
}

func checkHostPort(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("want host:port, such as :9092 or 0.0.0.0:9092: %v", err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

func checkOptionalHostPort(v string) error {
	if v == "" {
		return nil
	}
	if err := checkHostPort(v); err != nil {
		return err
	}
	if host, _, _ := net.SplitHostPort(v); host == "" || host == "0.0.0.0" || host == "::" {
		return fmt.Errorf("%q has no host clients could connect to; give a host name or IP address", v)
	}
	return nil
}

// FsyncPolicy is the parsed fsync setting.
type FsyncPolicy struct {
	Mode     string        // "acks", "always", "never" or "interval"
	Interval time.Duration // for "interval"
}

// ParseFsync parses the fsync setting.
func ParseFsync(v string) (FsyncPolicy, error) {
	switch v {
	case "acks", "always", "never":
		return FsyncPolicy{Mode: v}, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return FsyncPolicy{}, fmt.Errorf("want acks, always, never or a duration such as 200ms, got %q", v)
	}
	return FsyncPolicy{Mode: "interval", Interval: d}, nil
}

func checkFsync(v string) error {
	_, err := ParseFsync(v)
	return err
}

func checkCleanupPolicy(v string) error {
	for _, p := range strings.Split(v, ",") {
		switch strings.TrimSpace(p) {
		case "delete", "compact":
		default:
			return fmt.Errorf("%q is not a cleanup policy (delete, compact, or both: compact,delete)", p)
		}
	}
	return nil
}

// CleanupPolicy reads a cleanup.policy value: whether old segments are
// deleted by retention and whether the log is compacted.
func CleanupPolicy(v string) (deletes, compacts bool) {
	for _, p := range strings.Split(v, ",") {
		switch strings.TrimSpace(p) {
		case "delete":
			deletes = true
		case "compact":
			compacts = true
		}
	}
	return deletes, compacts
}

func atMostOne(v string) error {
	if f, _ := strconv.ParseFloat(v, 64); f > 1 {
		return fmt.Errorf("must be from 0 to 1, got %s", v)
	}
	return nil
}

func atMost(n int64) func(string) error {
	return func(v string) error {
		if i, _ := strconv.ParseInt(v, 10, 64); i > n {
			return fmt.Errorf("must be at most %d, got %s", n, v)
		}
		return nil
	}
}

func checkAssignors(v string) error {
	for _, a := range strings.Split(v, ",") {
		switch strings.TrimSpace(a) {
		case "uniform", "range":
		default:
			return fmt.Errorf("%q is not an assignor (uniform, range)", a)
		}
	}
	return nil
}

// Source says where a value came from, as DescribeConfigs reports it.
type Source int

// Value sources, from least to most specific.
const (
	SourceDefault      Source = iota // the built-in default
	SourceStaticBroker               // broker flags, CREEK_* variables or the YAML file
	SourceDynamicTopic               // a topic override (CreateTopics or AlterConfigs)
	SourceDynamicGroup               // a group's own config (IncrementalAlterConfigs)
)

// BrokerValues holds the broker settings given explicitly; the rest take
// their defaults.
type BrokerValues struct {
	set map[string]string
}

// NewBrokerValues validates explicitly given broker settings.
func NewBrokerValues(given map[string]string) (*BrokerValues, error) {
	b := &BrokerValues{set: map[string]string{}}
	for k, v := range given {
		s, ok := BrokerSettings.Lookup(k)
		if f, fixed := FixedBrokerConfigs.Lookup(k); fixed {
			return nil, fmt.Errorf("%s is fixed at %s in creek (%s)", k, f.Default, f.Inert)
		}
		if !ok {
			return nil, BrokerSettings.UnknownError("broker setting", k)
		}
		nv, err := s.Validate(v)
		if err != nil {
			return nil, err
		}
		b.set[k] = nv
	}
	return b, nil
}

// Get returns a setting's value and where it came from.
func (b *BrokerValues) Get(name string) (string, Source) {
	if v, ok := b.set[name]; ok {
		return v, SourceStaticBroker
	}
	s, ok := lookupBroker(name)
	if !ok {
		panic("config: unknown broker setting " + name)
	}
	return s.Default, SourceDefault
}

// String returns a setting's value.
func (b *BrokerValues) String(name string) string {
	v, _ := b.Get(name)
	return v
}

// Int64 returns a numeric setting.
func (b *BrokerValues) Int64(name string) int64 {
	n, _ := strconv.ParseInt(b.String(name), 10, 64)
	return n
}

// Float64 returns a setting of type double.
func (b *BrokerValues) Float64(name string) float64 {
	f, _ := strconv.ParseFloat(b.String(name), 64)
	return f
}

// Bool returns a boolean setting.
func (b *BrokerValues) Bool(name string) bool {
	v, _ := strconv.ParseBool(b.String(name))
	return v
}

func checkQueuedMaxRequestBytes(v string) error {
	if v == "0" {
		return fmt.Errorf("0 would let no request in; use -1 for no limit, or a number of bytes")
	}
	return nil
}
