package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/creek-pipeline/creek/internal/cluster"
)

// Kafka's internal topics. Kafka keeps committed offsets and transaction
// state in them and creates each the first time a client looks for a
// coordinator; clients see them in Metadata (is_internal), and regex
// subscriptions skip them. creek keeps that state in its metadata store,
// and also writes group changes to __consumer_offsets as Kafka does
// (offsets_topic.go), for the tools that read them there;
// __transaction_state holds no records. Clients cannot produce to them;
// deleting one (which Kafka allows too) loses no state, and the next look
// for a coordinator or commit makes it again.
const (
	offsetsTopic     = "__consumer_offsets"
	transactionTopic = "__transaction_state"
)

// internalTopics are the internal topic names and the broker setting of
// each one's partition count.
var internalTopics = map[string]string{
	offsetsTopic:     "offsets.topic.num.partitions",
	transactionTopic: "transaction.state.log.num.partitions",
}

func isInternalTopic(name string) bool {
	_, ok := internalTopics[name]
	return ok
}

// errInternalTopic refuses a client's produce to an internal topic, with
// Kafka's code.
func errInternalTopic(name string) error {
	return fmt.Errorf("%w: %s is an internal topic", kerr.InvalidTopicException, name)
}

// internalTopicConfigs are the configs Kafka gives each internal topic:
// committed offsets are compacted, keeping each partition's last commit.
var internalTopicConfigs = map[string]map[string]string{
	offsetsTopic:     {"cleanup.policy": "compact", "compression.type": "producer", "segment.bytes": "104857600"},
	transactionTopic: {"cleanup.policy": "compact", "compression.type": "uncompressed", "segment.bytes": "104857600"},
}

// ensureInternalTopic creates an internal topic if it does not exist yet,
// as Kafka does when a coordinator is first looked for.
func (b *Broker) ensureInternalTopic(name string) {
	if _, err := ensureInternalTopic(b.cluster, name); err != nil {
		b.logger.Warn("could not create internal topic", "topic", name, "err", err)
	}
}

func ensureInternalTopic(cl *cluster.Cluster, name string) (*cluster.Topic, error) {
	if t, ok := cl.Topic(name); ok {
		return t, nil
	}
	partitions := int32(cl.Broker().Int64(internalTopics[name]))
	t, err := cl.CreateTopic(name, partitions, -1, internalTopicConfigs[name], false)
	if errors.Is(err, cluster.ErrTopicExists) {
		if t, ok := cl.Topic(name); ok {
			return t, nil
		}
	}
	return t, err
}

// configureInternalTopics gives internal topics made by an older creek,
// which had no configs, Kafka's (now that __consumer_offsets holds
// commits, it must be compacted). A topic whose cleanup.policy was set is
// left as it is; other overrides are kept.
func configureInternalTopics(cl *cluster.Cluster, logger *slog.Logger) {
	for name, configs := range internalTopicConfigs {
		t, ok := cl.Topic(name)
		if !ok {
			continue
		}
		own := t.Configs()
		if _, ok := own["cleanup.policy"]; ok {
			continue
		}
		merged := maps.Clone(configs)
		maps.Copy(merged, own) // the topic's own overrides win
		if err := cl.SetTopicConfigs(name, merged, false); err != nil {
			logger.Warn("could not give an internal topic Kafka's configs", "topic", name, "err", err)
		}
	}
}
