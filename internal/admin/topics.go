package admin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// CreateTopics creates topics with a partition count and replication
// factor (-1: the broker's defaults) and configs under Kafka's names. It
// returns a line for each topic it created or, with ifNotExists, found.
func CreateTopics(ctx context.Context, adm *kadm.Client, partitions int32, replication int16, configs map[string]string, ifNotExists bool, names ...string) ([]string, error) {
	cfg := map[string]*string{}
	for k, v := range configs {
		cfg[k] = kadm.StringPtr(v)
	}
	resp, err := adm.CreateTopics(ctx, partitions, replication, cfg, names...)
	if err != nil {
		return nil, fmt.Errorf("create topics: %w", err)
	}
	var lines []string
	var errs []error
	for _, name := range names {
		r, ok := resp[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("topic %q: the broker did not answer for it", name))
		case ifNotExists && errors.Is(r.Err, kerr.TopicAlreadyExists):
			lines = append(lines, fmt.Sprintf("topic %s already exists; left as it is", name))
		case errors.Is(r.Err, kerr.TopicAlreadyExists):
			errs = append(errs, fmt.Errorf("%w (--if-not-exists accepts that)", TopicError(name, r.Err, r.ErrMessage)))
		case r.Err != nil:
			errs = append(errs, TopicError(name, r.Err, r.ErrMessage))
		default:
			np, rf := r.NumPartitions, int32(r.ReplicationFactor)
			if np < 0 { // brokers before Kafka 2.4 do not say
				np = partitions
			}
			if rf < 0 {
				rf = int32(replication)
			}
			line := fmt.Sprintf("created topic %s: %s, replication factor %s", name, plural(np, "partition"), orDefault(rf))
			if len(configs) > 0 {
				line += ", configs " + joinKeyValues(configs)
			}
			lines = append(lines, line)
		}
	}
	return lines, errors.Join(errs...)
}

// DeleteTopics deletes topics with their records. It returns a line for
// each topic deleted or, with ifExists, found missing.
func DeleteTopics(ctx context.Context, adm *kadm.Client, ifExists bool, names ...string) ([]string, error) {
	resp, err := adm.DeleteTopics(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("delete topics: %w", err)
	}
	var lines []string
	var errs []error
	for _, name := range names {
		r, ok := resp[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("topic %q: the broker did not answer for it", name))
		case ifExists && errors.Is(r.Err, kerr.UnknownTopicOrPartition):
			lines = append(lines, fmt.Sprintf("topic %s does not exist; nothing to delete", name))
		case r.Err != nil:
			errs = append(errs, TopicError(name, r.Err, r.ErrMessage))
		default:
			lines = append(lines, fmt.Sprintf("deleted topic %s", name))
		}
	}
	return lines, errors.Join(errs...)
}

// TopicError explains an error code a broker returned for a topic, with
// the broker's own message when it sent one. errors.Is still sees the code.
func TopicError(topic string, err error, brokerMessage string) error {
	if err == nil {
		return nil
	}
	var msg string
	var ke *kerr.Error
	switch {
	case errors.Is(err, kerr.TopicAlreadyExists):
		msg = fmt.Sprintf("topic %q already exists", topic)
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		msg = fmt.Sprintf("topic %q does not exist (see creek topics list)", topic)
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed):
		msg = fmt.Sprintf("topic %q: not allowed by the cluster's ACLs (%s)", topic, err)
	case errors.As(err, &ke):
		detail := brokerMessage
		if detail == "" {
			detail = ke.Description
		}
		msg = fmt.Sprintf("topic %q: %s (%s)", topic, detail, ke.Message)
	default:
		msg = fmt.Sprintf("topic %q: %v", topic, err)
	}
	return explainedError{msg, err}
}

// explainedError is an error with a message written for people.
type explainedError struct {
	msg string
	err error
}

func (e explainedError) Error() string { return e.msg }
func (e explainedError) Unwrap() error { return e.err }

func plural(n int32, what string) string {
	if n < 0 {
		return "default " + what + "s"
	}
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func orDefault(n int32) string {
	if n < 0 {
		return "default"
	}
	return strconv.Itoa(int(n))
}

func joinKeyValues(kvs map[string]string) string {
	keys := make([]string, 0, len(kvs))
	for k := range kvs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + kvs[k]
	}
	return strings.Join(keys, " ")
}
