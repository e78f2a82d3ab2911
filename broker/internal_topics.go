package broker

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/creek-pipeline/creek/internal/cluster"
)

// Kafka's internal topics. Kafka keeps committed offsets and transaction
// state in them and creates each the first time a client looks for a
// coordinator; clients see them in Metadata (is_internal), and regex
// subscriptions skip them. creek keeps that state in its metadata store,
// so its internal topics exist to be listed and read as Kafka's are, and
// hold no records. Clients cannot produce to them; deleting one (which
// Kafka allows too) loses nothing, and the next look for a coordinator
// makes it again.
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

// ensureInternalTopic creates an internal topic if it does not exist yet,
// as Kafka does when a coordinator is first looked for.
func (b *Broker) ensureInternalTopic(name string) {
	if _, ok := b.cluster.Topic(name); ok {
		return
	}
	partitions := int32(b.cluster.Broker().Int64(internalTopics[name]))
	if _, err := b.cluster.CreateTopic(name, partitions, -1, nil, false); err != nil && !errors.Is(err, cluster.ErrTopicExists) {
		b.logger.Warn("could not create internal topic", "topic", name, "err", err)
	}
}
