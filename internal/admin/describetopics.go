package admin

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/config"
	"github.com/creek-pipeline/creek/internal/storage"
)

// TopicListing is a topic as creek topics list shows it.
type TopicListing struct {
	Topic             string `json:"topic"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
}

// ListTopics lists the topics that are not internal, sorted by name.
func ListTopics(ctx context.Context, adm *kadm.Client) ([]TopicListing, error) {
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	rows := []TopicListing{}
	for _, td := range topics.Sorted() {
		rows = append(rows, TopicListing{Topic: td.Topic, Partitions: len(td.Partitions), ReplicationFactor: td.Partitions.NumReplicas()})
	}
	return rows, nil
}

// TopicDescription is a topic as creek topics describe shows it: its
// configs, and per partition the offsets, size on disk and, when the topic
// is compacted, the log cleaner's state.
type TopicDescription struct {
	Topic             string                 `json:"topic"`
	ID                string                 `json:"id"`
	PartitionCount    int                    `json:"partition_count"`
	ReplicationFactor int                    `json:"replication_factor"`
	Records           int64                  `json:"records"`
	SizeBytes         int64                  `json:"size_bytes"`          // -1: unknown
	Compacted         bool                   `json:"compacted,omitempty"` // cleanup.policy includes compact
	Configs           []TopicConfig          `json:"configs"`
	Partitions        []PartitionDescription `json:"partitions"`
}

// TopicConfig is one config of a topic and where its value comes from.
type TopicConfig struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Source    string `json:"source"`               // Kafka's ConfigSource name
	SourceKey string `json:"source_key,omitempty"` // the broker setting it comes from, if not the topic config itself
	Sensitive bool   `json:"sensitive,omitempty"`
}

// PartitionDescription is one partition of a described topic.
type PartitionDescription struct {
	Partition int32   `json:"partition"`
	Leader    int32   `json:"leader"` // -1: none
	Replicas  []int32 `json:"replicas"`
	ISR       []int32 `json:"isr"`
	Earliest  int64   `json:"earliest"` // -1: unknown
	Latest    int64   `json:"latest"`   // -1: unknown
	Records   int64   `json:"records"`
	SizeBytes int64   `json:"size_bytes"` // -1: unknown
	Error     string  `json:"error,omitempty"`
	// Cleaner is the log cleaner's view of a compacted topic's partition,
	// when the cluster reports it (creek does).
	Cleaner *storage.CleanerStatus `json:"cleaner,omitempty"`
}

// DescribeTopics gathers metadata, configs, offsets and log dir sizes of the
// named topics (all topics when none are named); with allConfigs the
// configs left at their defaults too. cl is adm's client, which asks each
// leader of a compacted topic for its cleaner's state.
//
// Sizes are a nicety: a cluster may refuse DescribeLogDirs (it needs the
// DESCRIBE permission on the cluster), and the rest still stands. Then
// sizesErr says why the sizes are unknown (-1), whether or not err is set.
func DescribeTopics(ctx context.Context, adm *kadm.Client, cl *kgo.Client, names []string, allConfigs bool) (out []TopicDescription, sizesErr, err error) {
	meta, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return nil, nil, fmt.Errorf("describe topics: %w", err)
	}
	var errs []error
	for _, name := range names {
		if td := meta[name]; td.Err != nil {
			errs = append(errs, TopicError(name, td.Err, ""))
		}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	topics := meta.Names()
	if len(topics) == 0 {
		return []TopicDescription{}, nil, nil
	}

	configs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return nil, nil, fmt.Errorf("describe topic configs: %w", err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, nil, fmt.Errorf("list earliest offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, nil, fmt.Errorf("list latest offsets: %w", err)
	}
	dirs, dirsErr := adm.DescribeAllLogDirs(ctx, meta.TopicsSet())

	out = []TopicDescription{}
	for _, name := range topics {
		td := meta[name]
		d := TopicDescription{
			Topic: name, ID: TopicID(td.ID), PartitionCount: len(td.Partitions), ReplicationFactor: td.Partitions.NumReplicas(),
			Configs: []TopicConfig{}, Partitions: []PartitionDescription{},
		}
		rc, err := configs.On(name, nil)
		if err == nil {
			err = rc.Err
		}
		if err != nil {
			return nil, dirsErr, TopicError(name, err, rc.ErrMessage)
		}
		for _, cfg := range rc.Configs {
			if cfg.Key == "cleanup.policy" {
				_, d.Compacted = config.CleanupPolicy(cfg.MaybeValue())
			}
			if !allConfigs && cfg.Source == kmsg.ConfigSourceDefaultConfig {
				continue
			}
			d.Configs = append(d.Configs, newTopicConfig(cfg))
		}
		sort.Slice(d.Configs, func(i, j int) bool { return d.Configs[i].Name < d.Configs[j].Name })

		sized := dirsErr == nil
		for _, pd := range td.Partitions.Sorted() {
			p := PartitionDescription{Partition: pd.Partition, Leader: pd.Leader, Replicas: nonNil(pd.Replicas), ISR: nonNil(pd.ISR), Earliest: -1, Latest: -1, SizeBytes: -1}
			var perr []string
			if pd.Err != nil {
				perr = append(perr, pd.Err.Error())
			}
			if o, ok := starts.Lookup(name, pd.Partition); ok && o.Err == nil {
				p.Earliest = o.Offset
			} else if ok {
				perr = append(perr, "earliest offset: "+o.Err.Error())
			}
			if o, ok := ends.Lookup(name, pd.Partition); ok && o.Err == nil {
				p.Latest = o.Offset
			} else if ok {
				perr = append(perr, "latest offset: "+o.Err.Error())
			}
			if p.Earliest >= 0 && p.Latest >= p.Earliest {
				p.Records = p.Latest - p.Earliest
			}
			if size, ok := partitionSize(dirs, name, pd); ok {
				p.SizeBytes = size
			} else {
				sized = false
			}
			p.Error = strings.Join(perr, "; ")
			d.Records += p.Records
			d.SizeBytes += max(p.SizeBytes, 0)
			d.Partitions = append(d.Partitions, p)
		}
		if !sized {
			d.SizeBytes = -1
		}
		if d.Compacted {
			addCleanerStatus(ctx, cl, &d)
		}
		out = append(out, d)
	}
	return out, dirsErr, nil
}

// addCleanerStatus asks each partition's leader for its cleaner's state
// (creek's DescribeLogDirs tag); a cluster that does not report it leaves
// the partitions without.
func addCleanerStatus(ctx context.Context, cl *kgo.Client, d *TopicDescription) {
	leaders := map[int32][]int32{}
	for _, p := range d.Partitions {
		if p.Leader >= 0 {
			leaders[p.Leader] = append(leaders[p.Leader], p.Partition)
		}
	}
	dirs := CleanerStatuses(ctx, cl, d.Topic, leaders)
	for i := range d.Partitions {
		d.Partitions[i].Cleaner = dirs[d.Partitions[i].Partition].Cleaner
	}
}

func newTopicConfig(cfg kadm.Config) TopicConfig {
	tc := TopicConfig{Name: cfg.Key, Value: cfg.MaybeValue(), Source: cfg.Source.String(), Sensitive: cfg.Sensitive}
	if cfg.Sensitive && cfg.Value == nil {
		tc.Value = "(sensitive)"
	}
	for _, syn := range cfg.Synonyms {
		if syn.Source == cfg.Source {
			if syn.Key != cfg.Key {
				tc.SourceKey = syn.Key
			}
			break
		}
	}
	return tc
}

// partitionSize is the size of the leader's replica of a partition, or of
// any replica when the leader did not report it.
func partitionSize(dirs kadm.DescribedAllLogDirs, topic string, pd kadm.PartitionDetail) (int64, bool) {
	var size int64
	found := false
	for broker, bd := range dirs {
		for _, dir := range bd {
			dp, ok := dir.Topics[topic][pd.Partition]
			if !ok || dp.IsFuture {
				continue
			}
			if broker == pd.Leader {
				return dp.Size, true
			}
			size, found = dp.Size, true
		}
	}
	return size, found
}

// TopicID is a topic id as Kafka's tools print it: URL-safe base64 without
// padding, "-" for none.
func TopicID(id kadm.TopicID) string {
	if id == (kadm.TopicID{}) {
		return "-"
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

func nonNil(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}
