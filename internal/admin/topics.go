package admin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
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

// TopicAlter is a change to one topic: more partitions, configs set or
// removed.
type TopicAlter struct {
	Topic      string
	Partitions int32 // the new total partition count; 0: unchanged
	Configs    []kadm.AlterConfig
}

// PlanTopicAlter turns creek topics alter's flags into a TopicAlter:
// partitions (0: unchanged), configs to set (applied in name order) and
// configs to remove. Its errors are the user's: a bad name, a config both
// set and removed, nothing to change.
func PlanTopicAlter(topic string, partitions int32, set map[string]string, remove []string) (TopicAlter, error) {
	a := TopicAlter{Topic: topic, Partitions: partitions}
	for _, k := range slices.Sorted(maps.Keys(set)) {
		a.Configs = append(a.Configs, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(set[k])})
	}
	for _, k := range remove {
		k = strings.TrimSpace(k)
		if k == "" || strings.Contains(k, "=") {
			return a, fmt.Errorf("--delete-config %q: want a config name such as retention.ms", k)
		}
		if _, ok := set[k]; ok {
			return a, fmt.Errorf("%s is both set with --config and removed with --delete-config; choose one", k)
		}
		a.Configs = append(a.Configs, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	if partitions == 0 && len(a.Configs) == 0 {
		return a, errors.New("nothing to change: give --partitions N, --config key=value or --delete-config key")
	}
	return a, nil
}

// AlterTopic validates the whole of a, then applies it, so a refused config
// leaves the partition count alone and the other way round. It returns a
// line for each change made.
func AlterTopic(ctx context.Context, adm *kadm.Client, a TopicAlter) ([]string, error) {
	name, growing := a.Topic, a.Partitions > 0
	meta, err := adm.ListTopics(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("alter topic %s: %w", name, err)
	}
	td := meta[name]
	if td.Err != nil {
		return nil, TopicError(name, td.Err, "")
	}
	before := len(td.Partitions)

	for _, validate := range []bool{true, false} {
		if len(a.Configs) > 0 {
			alter := adm.AlterTopicConfigs
			if validate {
				alter = adm.ValidateAlterTopicConfigs
			}
			resp, err := alter(ctx, a.Configs, name)
			if err != nil {
				return nil, fmt.Errorf("alter configs of topic %s: %w", name, err)
			}
			r, err := resp.On(name, nil)
			if err == nil {
				err = TopicError(name, r.Err, r.ErrMessage)
			}
			if err != nil {
				return nil, err
			}
		}
		if growing {
			update := adm.UpdatePartitions
			if validate {
				update = adm.ValidateUpdatePartitions
			}
			resp, err := update(ctx, int(a.Partitions), name)
			if err != nil {
				return nil, fmt.Errorf("add partitions to topic %s: %w", name, err)
			}
			r, err := resp.On(name, nil)
			if err == nil {
				err = TopicError(name, r.Err, r.ErrMessage)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	var lines []string
	if growing {
		lines = append(lines, fmt.Sprintf("topic %s: partitions %d -> %d", name, before, a.Partitions))
	}
	for _, c := range a.Configs {
		if c.Op == kadm.DeleteConfig {
			lines = append(lines, fmt.Sprintf("topic %s: removed %s (the default applies)", name, c.Name))
		} else {
			lines = append(lines, fmt.Sprintf("topic %s: set %s=%s", name, c.Name, *c.Value))
		}
	}
	return lines, nil
}

// DeleteRecords moves the log start offset of the chosen partitions of
// topic (all when none are chosen) to before, or with all to their end,
// clamped at each partition's end. It returns a line with the new start of
// each partition changed, and an error for each one that was not.
func DeleteRecords(ctx context.Context, adm *kadm.Client, topic string, partitions []int32, before int64, all bool) ([]string, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list the end offsets of %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return nil, TopicError(topic, err, "")
	}
	end := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { end[o.Partition] = o.Offset })
	if len(partitions) == 0 {
		partitions = slices.Sorted(maps.Keys(end))
	}
	var to kadm.Offsets
	for _, p := range partitions {
		e, ok := end[p]
		if !ok {
			return nil, fmt.Errorf("topic %s has no partition %d (it has %d)", topic, p, len(end))
		}
		at := min(before, e)
		if all {
			at = e
		}
		to.AddOffset(topic, p, at, -1)
	}
	resp, err := adm.DeleteRecords(ctx, to)
	if err != nil {
		return nil, fmt.Errorf("delete records of %s: %w", topic, err)
	}
	var lines []string
	var errs []error
	for _, p := range partitions {
		r, ok := resp.Lookup(topic, p)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("partition %d: the broker did not answer for it", p))
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("partition %d: %w", p, r.Err))
		default:
			lines = append(lines, fmt.Sprintf("topic %s partition %d: records before %d deleted; it holds %d to %d", topic, p, r.LowWatermark, r.LowWatermark, end[p]))
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
