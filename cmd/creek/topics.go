package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/admin"
	"github.com/creek-pipeline/creek/internal/config"
	"github.com/creek-pipeline/creek/internal/storage"
)

// topicsCmd holds what every topics subcommand shares.
type topicsCmd struct {
	kafka *kafkaFlags
}

func newTopicsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topics",
		Short: "List, create, describe, alter and delete topics, and delete old records",
		Long: `Manage the topics of creek's broker or of any Kafka cluster (Apache Kafka,
Amazon MSK, Redpanda...), as kafka-topics.sh does: list them, create them with
partitions and configs, describe their configs, offsets and size on disk, add
partitions, change configs, delete their oldest records, and delete them.

Every subcommand connects to --brokers (default localhost:9092, or the
CREEK_BROKERS environment variable when the flag is not given).`,
		Example: `  creek topics list
  creek topics create tweets --partitions 3 --config retention.ms=86400000
  creek topics describe tweets
  creek topics alter tweets --partitions 6
  creek topics delete-records tweets --before 100000
  creek topics delete tweets
  CREEK_BROKERS=b-1.msk.example:9094 creek topics list --tls`,
	}
	t := &topicsCmd{kafka: addKafkaFlags(cmd)}
	cmd.AddCommand(t.listCommand(), t.createCommand(), t.describeCommand(), t.alterCommand(), t.deleteRecordsCommand(), t.deleteCommand())
	return cmd
}

// topicNames is a cobra.PositionalArgs: at least one non-empty topic name
// (at most one when single), or a usage error showing an example.
func topicNames(single bool, example string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageError{fmt.Errorf("give the topic name, e.g. %s", example)}
		}
		if single && len(args) > 1 {
			return usageError{fmt.Errorf("%s takes one topic, got %d (%s); run it once per topic", cmd.Name(), len(args), strings.Join(args, ", "))}
		}
		for _, a := range args {
			if strings.TrimSpace(a) == "" {
				return usageError{errors.New("a topic name is empty")}
			}
		}
		return nil
	}
}

func checkOutput(output string) error {
	if output != "table" && output != "json" {
		return usageError{fmt.Errorf("--output %q: want table or json", output)}
	}
	return nil
}

// ---- list ----

type topicListRow struct {
	Topic             string `json:"topic"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
}

func (t *topicsCmd) listCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List topics with their partition count and replication factor",
		Long: `List the topics of the cluster, sorted by name, with their partition count
and replication factor. Internal topics (such as Kafka's __consumer_offsets)
are left out.`,
		Example: "  creek topics list\n  creek topics list --brokers kafka-1:9092 --output json",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("list takes no arguments, got %q (creek topics describe NAME shows one topic)", strings.Join(args, " "))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			return t.kafka.run(cmd, func(ctx context.Context, c *kafkaConn) error {
				topics, err := c.ListTopics(ctx)
				if err != nil {
					return fmt.Errorf("list topics: %w", err)
				}
				rows := []topicListRow{}
				for _, td := range topics.Sorted() {
					rows = append(rows, topicListRow{Topic: td.Topic, Partitions: len(td.Partitions), ReplicationFactor: td.Partitions.NumReplicas()})
				}
				if output == "json" {
					return writeJSON(cmd.OutOrStdout(), rows)
				}
				if len(rows) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "no topics (create one with creek topics create NAME)")
					return nil
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "TOPIC\tPARTITIONS\tREPLICATION FACTOR")
				for _, r := range rows {
					fmt.Fprintf(w, "%s\t%d\t%d\n", r.Topic, r.Partitions, r.ReplicationFactor)
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

// ---- create ----

func (t *topicsCmd) createCommand() *cobra.Command {
	var (
		partitions  int32
		replication int16
		configs     []string
		ifNotExists bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME... [--partitions N] [--replication-factor N] [--config key=value]...",
		Short: "Create topics with a partition count, replication factor and configs",
		Long: `Create one or more topics. Without --partitions and --replication-factor
the broker's defaults apply (num.partitions and default.replication.factor).
Each --config sets a topic config under Kafka's name; the broker checks them
and refuses the topic if one is unknown or out of range.

To see which configs a topic has, with their values and defaults, run
creek topics describe NAME --all-configs on an existing topic.`,
		Example: `  creek topics create tweets
  creek topics create tweets --partitions 3 --config retention.ms=86400000 --config retention.bytes=1073741824
  creek topics create logs --if-not-exists`,
		Args: topicNames(false, "creek topics create tweets --partitions 3"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if partitions == 0 || partitions < -1 {
				return usageError{fmt.Errorf("--partitions %d: want 1 or more (leave it out for the broker's default)", partitions)}
			}
			if replication == 0 || replication < -1 {
				return usageError{fmt.Errorf("--replication-factor %d: want 1 or more (leave it out for the broker's default)", replication)}
			}
			kvs, err := parseKeyValues("config", configs)
			if err != nil {
				return err
			}
			return t.kafka.run(cmd, func(ctx context.Context, c *kafkaConn) error {
				lines, err := admin.CreateTopics(ctx, c.Client, partitions, replication, kvs, ifNotExists, args...)
				for _, l := range lines {
					fmt.Fprintln(cmd.OutOrStdout(), l)
				}
				return err
			})
		},
	}
	f := cmd.Flags()
	f.Int32Var(&partitions, "partitions", -1, "number of partitions (-1: the broker's num.partitions)")
	f.Int16Var(&replication, "replication-factor", -1, "copies of each partition (-1: the broker's default.replication.factor; creek's broker has one node, so 1)")
	f.StringArrayVar(&configs, "config", nil, "topic config as key=value, e.g. retention.ms=86400000 (repeatable)")
	f.BoolVar(&ifNotExists, "if-not-exists", false, "succeed without changes when the topic already exists")
	return cmd
}

// ---- describe ----

type topicDescription struct {
	Topic             string                 `json:"topic"`
	ID                string                 `json:"id"`
	PartitionCount    int                    `json:"partition_count"`
	ReplicationFactor int                    `json:"replication_factor"`
	Records           int64                  `json:"records"`
	SizeBytes         int64                  `json:"size_bytes"`          // -1: unknown
	Compacted         bool                   `json:"compacted,omitempty"` // cleanup.policy includes compact
	Configs           []topicConfig          `json:"configs"`
	Partitions        []partitionDescription `json:"partitions"`
}

type topicConfig struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Source    string `json:"source"`               // Kafka's ConfigSource name
	SourceKey string `json:"source_key,omitempty"` // the broker setting it comes from, if not the topic config itself
	Sensitive bool   `json:"sensitive,omitempty"`
}

type partitionDescription struct {
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

func (t *topicsCmd) describeCommand() *cobra.Command {
	var (
		output     string
		allConfigs bool
	)
	cmd := &cobra.Command{
		Use:   "describe [NAME...]",
		Short: "Show topics' id, configs, and per partition the leader, offsets, record count and size",
		Long: `Describe topics (all of them when no name is given): the topic id, the
partition count and replication factor, the configs that are not defaults
(with --all-configs every config) with where each value comes from, and for
every partition its leader, replicas and in-sync replicas, the earliest and
latest offset, the records between them, and its size on disk. For a
compacted topic (cleanup.policy=compact), the log cleaner's state of each
partition: the dirty ratio (bytes written since the last cleaning, as a
share of the closed segments; the cleaner starts at
min.cleanable.dirty.ratio), and what the last cleaning did.

Config sources are Kafka's: DYNAMIC_TOPIC_CONFIG is set on the topic,
STATIC_BROKER_CONFIG comes from the broker's settings (the setting is named
in brackets), DEFAULT_CONFIG is the built-in default.`,
		Example: `  creek topics describe tweets
  creek topics describe tweets --all-configs
  creek topics describe --output json | jq '.[] | {topic, records}'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			return t.kafka.run(cmd, func(ctx context.Context, c *kafkaConn) error {
				ds, err := describeTopics(ctx, c, args, allConfigs, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(cmd.OutOrStdout(), ds)
				}
				if len(ds) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "no topics (create one with creek topics create NAME)")
				}
				for i, d := range ds {
					if i > 0 {
						fmt.Fprintln(cmd.OutOrStdout())
					}
					printTopic(cmd.OutOrStdout(), d, allConfigs)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	cmd.Flags().BoolVar(&allConfigs, "all-configs", false, "show every config with its source, defaults included")
	return cmd
}

// describeTopics gathers metadata, configs, offsets and log dir sizes of the
// named topics (all topics when none are named).
func describeTopics(ctx context.Context, c *kafkaConn, names []string, allConfigs bool, warn io.Writer) ([]topicDescription, error) {
	meta, err := c.ListTopics(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("describe topics: %w", err)
	}
	var errs []error
	for _, name := range names {
		if td := meta[name]; td.Err != nil {
			errs = append(errs, admin.TopicError(name, td.Err, ""))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	topics := meta.Names()
	if len(topics) == 0 {
		return []topicDescription{}, nil
	}

	configs, err := c.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("describe topic configs: %w", err)
	}
	starts, err := c.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list earliest offsets: %w", err)
	}
	ends, err := c.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list latest offsets: %w", err)
	}
	// Sizes are a nicety: a cluster may refuse DescribeLogDirs (it needs
	// the DESCRIBE permission on the cluster), and the rest still stands.
	dirs, dirsErr := c.DescribeAllLogDirs(ctx, meta.TopicsSet())
	if dirsErr != nil {
		fmt.Fprintf(warn, "creek: sizes on disk unknown: %v\n", dirsErr)
	}

	out := []topicDescription{}
	for _, name := range topics {
		td := meta[name]
		d := topicDescription{
			Topic: name, ID: topicID(td.ID), PartitionCount: len(td.Partitions), ReplicationFactor: td.Partitions.NumReplicas(),
			Configs: []topicConfig{}, Partitions: []partitionDescription{},
		}
		rc, err := configs.On(name, nil)
		if err == nil {
			err = rc.Err
		}
		if err != nil {
			return nil, admin.TopicError(name, err, rc.ErrMessage)
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
			p := partitionDescription{Partition: pd.Partition, Leader: pd.Leader, Replicas: nonNil(pd.Replicas), ISR: nonNil(pd.ISR), Earliest: -1, Latest: -1, SizeBytes: -1}
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
			addCleanerStatus(ctx, c, &d)
		}
		out = append(out, d)
	}
	return out, nil
}

// addCleanerStatus asks each partition's leader for its cleaner's state
// (creek's DescribeLogDirs tag); a cluster that does not report it leaves
// the partitions without.
func addCleanerStatus(ctx context.Context, c *kafkaConn, d *topicDescription) {
	leaders := map[int32][]int32{}
	for _, p := range d.Partitions {
		if p.Leader >= 0 {
			leaders[p.Leader] = append(leaders[p.Leader], p.Partition)
		}
	}
	dirs := admin.CleanerStatuses(ctx, c.cl, d.Topic, leaders)
	for i := range d.Partitions {
		d.Partitions[i].Cleaner = dirs[d.Partitions[i].Partition].Cleaner
	}
}

func newTopicConfig(cfg kadm.Config) topicConfig {
	tc := topicConfig{Name: cfg.Key, Value: cfg.MaybeValue(), Source: cfg.Source.String(), Sensitive: cfg.Sensitive}
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

// topicID is printed as Kafka's tools print it: URL-safe base64 without padding.
func topicID(id kadm.TopicID) string {
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

func printTopic(w io.Writer, d topicDescription, allConfigs bool) {
	size := "unknown"
	if d.SizeBytes >= 0 {
		size = humanBytes(d.SizeBytes)
	}
	fmt.Fprintf(w, "Topic: %s\nID: %s\nPartitions: %d   Replication factor: %d   Records: %d   Size: %s\n",
		d.Topic, d.ID, d.PartitionCount, d.ReplicationFactor, d.Records, size)
	switch {
	case len(d.Configs) == 0:
		fmt.Fprintln(w, "Configs: all defaults (--all-configs shows them)")
	case allConfigs:
		fmt.Fprintln(w, "Configs:")
	default:
		fmt.Fprintln(w, "Configs (not defaults; --all-configs shows all):")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(d.Configs) > 0 {
		fmt.Fprintln(tw, "  NAME\tVALUE\tSOURCE")
		for _, c := range d.Configs {
			src := c.Source
			if c.SourceKey != "" {
				src += " (" + c.SourceKey + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Name, c.Value, src)
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	withErrors := slices.ContainsFunc(d.Partitions, func(p partitionDescription) bool { return p.Error != "" })
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "PARTITION\tLEADER\tREPLICAS\tISR\tEARLIEST\tLATEST\tRECORDS\tSIZE")
	if withErrors {
		fmt.Fprint(tw, "\tERROR")
	}
	fmt.Fprintln(tw)
	for _, p := range d.Partitions {
		leader := "none"
		if p.Leader >= 0 {
			leader = strconv.Itoa(int(p.Leader))
		}
		size := "-"
		if p.SizeBytes >= 0 {
			size = humanBytes(p.SizeBytes)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s", p.Partition, leader, int32List(p.Replicas), int32List(p.ISR),
			offsetString(p.Earliest), offsetString(p.Latest), p.Records, size)
		if withErrors {
			fmt.Fprintf(tw, "\t%s", dash(p.Error))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	if d.Compacted {
		printCompaction(w, d, time.Now())
	}
}

// printCompaction shows, per partition of a compacted topic, the dirty
// ratio (bytes written since the last cleaning, over the closed segments)
// and the last cleaning pass.
func printCompaction(w io.Writer, d topicDescription, now time.Time) {
	fmt.Fprintln(w)
	if !slices.ContainsFunc(d.Partitions, func(p partitionDescription) bool { return p.Cleaner != nil }) {
		fmt.Fprintln(w, "Compaction: the cluster does not report its log cleaner's state (creek brokers do)")
		return
	}
	fmt.Fprintln(w, "Compaction:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tDIRTY RATIO\tCLEAN\tDIRTY\tFIRST DIRTY\tLAST CLEANING")
	for _, p := range d.Partitions {
		st := p.Cleaner
		if st == nil {
			fmt.Fprintf(tw, "%d\t-\t-\t-\t-\t-\n", p.Partition)
			continue
		}
		fmt.Fprintf(tw, "%d\t%.0f%%\t%s\t%s\t%d\t%s\n", p.Partition, 100*st.DirtyRatio, humanBytes(st.CleanBytes), humanBytes(st.DirtyBytes),
			st.FirstDirtyOffset, lastCleaning(st.LastCleaning, now))
	}
	tw.Flush()
}

func lastCleaning(c *storage.CleaningStats, now time.Time) string {
	if c == nil {
		return "never"
	}
	ago := now.Sub(c.Start.Add(time.Duration(c.DurationMs) * time.Millisecond)).Round(time.Second)
	s := fmt.Sprintf("%s ago: offsets %d-%d, %s read, %s written, %d of %d records kept, %d tombstones removed, in %s",
		ago, c.FirstDirty, c.End-1, humanBytes(c.BytesRead), humanBytes(c.BytesWritten), c.RecordsKept, c.RecordsRead,
		c.TombstonesRemoved, (time.Duration(c.DurationMs) * time.Millisecond).String())
	if c.Error != "" {
		s += "; failed: " + c.Error
	}
	return s
}

func offsetString(o int64) string {
	if o < 0 {
		return "-"
	}
	return strconv.FormatInt(o, 10)
}

func int32List(s []int32) string {
	if len(s) == 0 {
		return "-"
	}
	parts := make([]string, len(s))
	for i, n := range s {
		parts[i] = strconv.Itoa(int(n))
	}
	return strings.Join(parts, ",")
}

// humanBytes prints a size in B, KiB, MiB, GiB or TiB.
func humanBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	f, unit := float64(n)/1024, "KiB"
	for _, u := range []string{"MiB", "GiB", "TiB"} {
		if f < 1024 {
			break
		}
		f, unit = f/1024, u
	}
	return fmt.Sprintf("%.1f %s", f, unit)
}

// ---- alter ----

func (t *topicsCmd) alterCommand() *cobra.Command {
	var (
		partitions    int32
		configs       []string
		deleteConfigs []string
	)
	cmd := &cobra.Command{
		Use:   "alter NAME [--partitions N] [--config key=value]... [--delete-config key]...",
		Short: "Add partitions to a topic or change its configs",
		Long: `Change a topic: --partitions grows it to N partitions (Kafka cannot shrink
a topic; records already written stay where they are, so keyed records may
land in other partitions from now on). --config sets a config on the topic;
--delete-config removes the topic's own value so the broker's default applies
again. Other configs are left as they are (IncrementalAlterConfigs).

Everything is checked by the broker first (validate only) and applied only
when all of it is accepted.`,
		Example: `  creek topics alter tweets --partitions 6
  creek topics alter tweets --config retention.ms=3600000 --delete-config retention.bytes`,
		Args: topicNames(true, "creek topics alter tweets --partitions 6"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			growing := cmd.Flags().Changed("partitions")
			if growing && partitions < 1 {
				return usageError{fmt.Errorf("--partitions %d: want the new total partition count, 1 or more", partitions)}
			}
			set, err := parseKeyValues("config", configs)
			if err != nil {
				return err
			}
			var alters []kadm.AlterConfig
			for _, k := range sortedKeys(set) {
				alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(set[k])})
			}
			for _, k := range deleteConfigs {
				k = strings.TrimSpace(k)
				if k == "" || strings.Contains(k, "=") {
					return usageError{fmt.Errorf("--delete-config %q: want a config name such as retention.ms", k)}
				}
				if _, ok := set[k]; ok {
					return usageError{fmt.Errorf("%s is both set with --config and removed with --delete-config; choose one", k)}
				}
				alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
			}
			if !growing && len(alters) == 0 {
				return usageError{errors.New("nothing to change: give --partitions N, --config key=value or --delete-config key")}
			}
			return t.kafka.run(cmd, func(ctx context.Context, c *kafkaConn) error {
				return alterTopic(ctx, c, cmd.OutOrStdout(), name, growing, partitions, alters)
			})
		},
	}
	f := cmd.Flags()
	f.Int32Var(&partitions, "partitions", 0, "new total partition count (can only grow)")
	f.StringArrayVar(&configs, "config", nil, "set a topic config, key=value (repeatable)")
	f.StringArrayVar(&deleteConfigs, "delete-config", nil, "remove the topic's value of a config so the default applies (repeatable)")
	return cmd
}

func alterTopic(ctx context.Context, c *kafkaConn, out io.Writer, name string, growing bool, partitions int32, alters []kadm.AlterConfig) error {
	meta, err := c.ListTopics(ctx, name)
	if err != nil {
		return fmt.Errorf("alter topic %s: %w", name, err)
	}
	td := meta[name]
	if td.Err != nil {
		return admin.TopicError(name, td.Err, "")
	}
	before := len(td.Partitions)

	// Validate everything, then apply: a refused config leaves the
	// partition count alone and the other way round.
	for _, validate := range []bool{true, false} {
		if len(alters) > 0 {
			alter := c.AlterTopicConfigs
			if validate {
				alter = c.ValidateAlterTopicConfigs
			}
			resp, err := alter(ctx, alters, name)
			if err != nil {
				return fmt.Errorf("alter configs of topic %s: %w", name, err)
			}
			r, err := resp.On(name, nil)
			if err == nil {
				err = admin.TopicError(name, r.Err, r.ErrMessage)
			}
			if err != nil {
				return err
			}
		}
		if growing {
			update := c.UpdatePartitions
			if validate {
				update = c.ValidateUpdatePartitions
			}
			resp, err := update(ctx, int(partitions), name)
			if err != nil {
				return fmt.Errorf("add partitions to topic %s: %w", name, err)
			}
			r, err := resp.On(name, nil)
			if err == nil {
				err = admin.TopicError(name, r.Err, r.ErrMessage)
			}
			if err != nil {
				return err
			}
		}
	}
	if growing {
		fmt.Fprintf(out, "topic %s: partitions %d -> %d\n", name, before, partitions)
	}
	for _, a := range alters {
		if a.Op == kadm.DeleteConfig {
			fmt.Fprintf(out, "topic %s: removed %s (the default applies)\n", name, a.Name)
		} else {
			fmt.Fprintf(out, "topic %s: set %s=%s\n", name, a.Name, *a.Value)
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ---- delete ----

func (t *topicsCmd) deleteCommand() *cobra.Command {
	var ifExists bool
	cmd := &cobra.Command{
		Use:   "delete NAME... [--if-exists]",
		Short: "Delete topics with all their records",
		Long: `Delete topics, their records and the offsets consumer groups committed for
them. This cannot be undone. Deleting a topic that does not exist is an error
unless --if-exists is given.`,
		Example: "  creek topics delete tweets\n  creek topics delete old-logs older-logs --if-exists",
		Args:    topicNames(false, "creek topics delete tweets"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return t.kafka.run(cmd, func(ctx context.Context, c *kafkaConn) error {
				lines, err := admin.DeleteTopics(ctx, c.Client, ifExists, args...)
				for _, l := range lines {
					fmt.Fprintln(cmd.OutOrStdout(), l)
				}
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&ifExists, "if-exists", false, "succeed when a topic does not exist")
	return cmd
}

// ---- delete-records ----

func (t *topicsCmd) deleteRecordsCommand() *cobra.Command {
	var partitions []int32
	var before int64
	var all bool
	cmd := &cobra.Command{
		Use:   "delete-records NAME (--before OFFSET | --all) [--partition N]...",
		Short: "Delete a topic's records before an offset (DeleteRecords), freeing their disk space",
		Long: `Delete the records of a topic before an offset, as kafka-delete-records.sh
does: the log start offset of each partition moves to --before (or, with --all,
to the end of the partition), consumers can no longer read what is before it,
and whole segment files below it are deleted at once. On a full disk this is
how to make room without losing what comes after.

Every partition is changed unless --partition is given (repeatable). A
partition that ends before --before has all its records deleted.`,
		Example: `  creek topics delete-records tweets --before 100000
  creek topics delete-records tweets --partition 0 --partition 2 --before 5000
  creek topics delete-records tweets --all`,
		Args: topicNames(true, "creek topics delete-records tweets --before 100000"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == cmd.Flags().Changed("before") {
				return usageError{errors.New("give either --before OFFSET or --all")}
			}
			if !all && before < 0 {
				return usageError{fmt.Errorf("--before %d: want an offset, 0 or more", before)}
			}
			return t.kafka.run(cmd, func(ctx context.Context, c *kafkaConn) error {
				return deleteRecords(ctx, c, cmd.OutOrStdout(), args[0], partitions, before, all)
			})
		},
	}
	cmd.Flags().Int64Var(&before, "before", 0, "delete the records with offsets below this one")
	cmd.Flags().BoolVar(&all, "all", false, "delete every record up to the end of each partition")
	cmd.Flags().Int32SliceVar(&partitions, "partition", nil, "a partition to change (repeatable; default: all)")
	return cmd
}

// deleteRecords moves the log start offset of the chosen partitions of
// topic and reports each partition's new start.
func deleteRecords(ctx context.Context, c *kafkaConn, out io.Writer, topic string, partitions []int32, before int64, all bool) error {
	ends, err := c.ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("list the end offsets of %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return admin.TopicError(topic, err, "")
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
			return fmt.Errorf("topic %s has no partition %d (it has %d)", topic, p, len(end))
		}
		at := min(before, e)
		if all {
			at = e
		}
		to.AddOffset(topic, p, at, -1)
	}
	resp, err := c.DeleteRecords(ctx, to)
	if err != nil {
		return fmt.Errorf("delete records of %s: %w", topic, err)
	}
	var errs []error
	for _, p := range partitions {
		r, ok := resp.Lookup(topic, p)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("partition %d: the broker did not answer for it", p))
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("partition %d: %w", p, r.Err))
		default:
			fmt.Fprintf(out, "topic %s partition %d: records before %d deleted; it holds %d to %d\n", topic, p, r.LowWatermark, r.LowWatermark, end[p])
		}
	}
	return errors.Join(errs...)
}
