package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/creek-pipeline/creek/internal/admin"
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

// ---- list ----

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
				rows, err := admin.ListTopics(ctx, c.Client)
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(cmd.OutOrStdout(), rows)
				}
				return printTopicList(cmd.OutOrStdout(), rows)
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
				printLines(cmd.OutOrStdout(), lines)
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
				ds, sizesErr, err := admin.DescribeTopics(ctx, c.Client, c.cl, args, allConfigs)
				if sizesErr != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "creek: sizes on disk unknown: %v\n", sizesErr)
				}
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(cmd.OutOrStdout(), ds)
				}
				printTopics(cmd.OutOrStdout(), ds, allConfigs)
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	cmd.Flags().BoolVar(&allConfigs, "all-configs", false, "show every config with its source, defaults included")
	return cmd
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
			alter, err := admin.PlanTopicAlter(name, partitions, set, deleteConfigs)
			if err != nil {
				return usageError{err}
			}
			return t.kafka.run(cmd, func(ctx context.Context, c *kafkaConn) error {
				lines, err := admin.AlterTopic(ctx, c.Client, alter)
				printLines(cmd.OutOrStdout(), lines)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.Int32Var(&partitions, "partitions", 0, "new total partition count (can only grow)")
	f.StringArrayVar(&configs, "config", nil, "set a topic config, key=value (repeatable)")
	f.StringArrayVar(&deleteConfigs, "delete-config", nil, "remove the topic's value of a config so the default applies (repeatable)")
	return cmd
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
				printLines(cmd.OutOrStdout(), lines)
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
				lines, err := admin.DeleteRecords(ctx, c.Client, args[0], partitions, before, all)
				printLines(cmd.OutOrStdout(), lines)
				return err
			})
		},
	}
	cmd.Flags().Int64Var(&before, "before", 0, "delete the records with offsets below this one")
	cmd.Flags().BoolVar(&all, "all", false, "delete every record up to the end of each partition")
	cmd.Flags().Int32SliceVar(&partitions, "partition", nil, "a partition to change (repeatable; default: all)")
	return cmd
}
