package broker

import (
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/creek-pipeline/creek/internal/cluster"
	"github.com/creek-pipeline/creek/internal/config"
	"github.com/creek-pipeline/creek/internal/group"
	"github.com/creek-pipeline/creek/internal/share"
	"github.com/creek-pipeline/creek/internal/storage"
	"github.com/creek-pipeline/creek/internal/txn"
)

// The coordinators' setup, in one place: each one's settings from the
// broker's values, what they need of the cluster, and the order they start
// and stop in.

// coordinators are the broker's group, share and transaction coordinators
// and the front every group request enters by.
type coordinators struct {
	groups *group.Coordinator
	shares *share.Coordinator
	txns   *txn.Coordinator
	front  *group.Front
}

// startCoordinators loads the coordinators' state from the cluster.
func startCoordinators(values *config.BrokerValues, cl *cluster.Cluster, logger *slog.Logger) (*coordinators, error) {
	// The share coordinator keeps every group's configs; the group
	// coordinator reads consumer.* from it once it exists.
	var groupConfigs func(string) map[string]string
	gcfg := groupConfig(values)
	gcfg.GroupTimeouts = func(g string) (session, heartbeat time.Duration) {
		if groupConfigs == nil {
			return 0, 0
		}
		set := groupConfigs(g)
		ms := func(name string) time.Duration {
			n, _ := strconv.ParseInt(set[name], 10, 64)
			return time.Duration(n) * time.Millisecond
		}
		return ms("consumer.session.timeout.ms"), ms("consumer.heartbeat.interval.ms")
	}
	configureInternalTopics(cl, logger)
	fsync, _ := config.ParseFsync(values.String("fsync"))
	groups, err := group.New(gcfg, newOffsetsTopicStore(cl, fsync), topicDirectory{cl}, logger)
	if err != nil {
		return nil, err
	}
	txns, err := txn.New(txnConfig(values), cl.TxnStore(), txnEnv{cluster: cl, groups: groups, logger: logger}, logger)
	if err != nil {
		groups.Close()
		return nil, err
	}
	shares, err := share.New(shareConfig(values), topicDirectory{cl}, cl.ShareStore(), logger)
	if err != nil {
		txns.Close()
		groups.Close()
		return nil, err
	}
	groupConfigs = shares.GroupConfigs
	return &coordinators{groups: groups, shares: shares, txns: txns, front: group.NewFront(groups, shares)}, nil
}

// close stops the coordinators: members waiting in JoinGroup or SyncGroup
// and share fetches waiting for records are answered.
func (c *coordinators) close() {
	c.groups.Close()
	c.txns.Close()
	c.shares.Close()
}

// millis reads settings in milliseconds (Kafka's *.ms).
func millis(v *config.BrokerValues) func(name string) time.Duration {
	return func(name string) time.Duration { return time.Duration(v.Int64(name)) * time.Millisecond }
}

// groupConfig reads the coordinator's settings.
func groupConfig(v *config.BrokerValues) group.Config {
	ms := millis(v)
	var assignors []string
	for _, a := range strings.Split(v.String("group.consumer.assignors"), ",") {
		assignors = append(assignors, strings.TrimSpace(a))
	}
	return group.Config{
		MinSessionTimeout:     ms("group.min.session.timeout.ms"),
		MaxSessionTimeout:     ms("group.max.session.timeout.ms"),
		InitialRebalanceDelay: ms("group.initial.rebalance.delay.ms"),
		MaxSize:               int(v.Int64("group.max.size")),
		OffsetsRetention:      time.Duration(v.Int64("offsets.retention.minutes")) * time.Minute,
		RetentionCheck:        ms("offsets.retention.check.interval.ms"),
		MaxMetadataBytes:      int(v.Int64("offset.metadata.max.bytes")),

		ConsumerSessionTimeout:    ms("group.consumer.session.timeout.ms"),
		ConsumerHeartbeatInterval: ms("group.consumer.heartbeat.interval.ms"),
		ConsumerAssignors:         assignors,
	}
}

// topicDirectory answers the coordinator's questions about topics.
type topicDirectory struct{ c *cluster.Cluster }

func (d topicDirectory) TopicByName(name string) ([16]byte, int32, bool) {
	t, ok := d.c.Topic(name)
	if !ok {
		return [16]byte{}, 0, false
	}
	return t.ID(), t.NumPartitions(), true
}

func (d topicDirectory) TopicNames() []string {
	var names []string
	for _, t := range d.c.Topics() {
		names = append(names, t.Name())
	}
	return names
}

func (d topicDirectory) TopicByID(id [16]byte) (string, int32, bool) {
	t, ok := d.c.TopicByID(id)
	if !ok {
		return "", 0, false
	}
	return t.Name(), t.NumPartitions(), true
}

// Log gives the share coordinator a partition's log.
func (d topicDirectory) Log(topic string, partition int32) (*storage.Log, bool) {
	t, ok := d.c.Topic(topic)
	if !ok {
		return nil, false
	}
	l := t.Partition(partition)
	return l, l != nil
}

// shareConfig reads the share coordinator's settings.
func shareConfig(v *config.BrokerValues) share.Config {
	ms := millis(v)
	return share.Config{
		SessionTimeout:    ms("group.share.session.timeout.ms"),
		HeartbeatInterval: ms("group.share.heartbeat.interval.ms"),
		LockDuration:      ms("group.share.record.lock.duration.ms"),
		DeliveryLimit:     int16(v.Int64("group.share.delivery.count.limit")),
		MaxRecordLocks:    v.Int64("group.share.partition.max.record.locks"),
		MaxSize:           int(v.Int64("group.share.max.size")),
	}
}

// txnConfig reads the transaction coordinator's settings.
func txnConfig(v *config.BrokerValues) txn.Config {
	ms := millis(v)
	return txn.Config{
		MaxTimeout:      ms("transaction.max.timeout.ms"),
		AbortCheckEvery: ms("transaction.abort.timed.out.transaction.cleanup.interval.ms"),
	}
}
