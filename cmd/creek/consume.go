package main

import (
	"github.com/spf13/cobra"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

func newConsumeCommand() *cobra.Command {
	var to string
	source, _ := pipeline.LookupSource("kafka")
	var sinks []*pipeline.Plugin
	for _, p := range pipeline.Sinks() {
		if p.Name != "kafka" {
			sinks = append(sinks, p)
		}
	}
	cmd := &cobra.Command{
		Use:   "consume --topic TOPIC [--group GROUP | --share-group GROUP] [options]",
		Short: "Read a Kafka topic and show or store its records",
		Long: `Read records from a Kafka topic and show them on screen (the default),
write them to a file, or archive them to S3 (--to s3, see docs/s3.md: objects
in Kafka Connect's layout, offsets committed only once an object is stored).

With --group the consumer joins a consumer group: members share the topic's
partitions, and the group remembers where it stopped (offsets are committed
only after records are shown or written), so the next run continues from
there. Without --group every partition is read directly, from the end (new
records only) or with --from-beginning from the start, and nothing is
remembered: each run starts afresh, like kcat -C.

With --share-group the consumer joins a share group (Kafka's queues,
KIP-932): every member reads every partition, but each record goes to one
member at a time and, once shown or written, is gone for the group, like a
job taken from a queue. Records a member fetched but did not finish go back
to the others when it stops or its lock (30 s) runs out. A new share group
starts at the end; --from-beginning starts it at the earliest records.`,
		Example: `  creek consume --topic tweets --from-beginning
  creek consume --topic tweets --group dashboard
  creek consume --topic tweets --format '%t %p %o %k %s\n' --count 10
  creek consume --topic tweets --group archive --to file --path tweets.jsonl
  creek consume --topic tweets --group archive --to s3 --s3-bucket hg-myclass --s3-format parquet
  creek consume --topic jobs --share-group workers --from-beginning`,
		Args: cobra.NoArgs,
	}
	srcFlags := addPluginFlags(cmd.Flags(), []*pipeline.Plugin{source}, "from")
	cmd.Flags().StringVar(&to, "to", "console", "where records go")
	pipeFlags := addPipelineFlags(cmd.Flags())
	sinkFlags := addPluginFlags(cmd.Flags(), sinks, "to")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		_, srcOpts, err := srcFlags.bind(cmd, "kafka")
		if err != nil {
			return err
		}
		sink, sinkOpts, err := sinkFlags.bind(cmd, to)
		if err != nil {
			return err
		}
		spec := &pipeline.Spec{Name: "consume", Source: source, SourceOpts: srcOpts, Sink: sink, SinkOpts: sinkOpts}
		if err := pipeFlags.apply(spec); err != nil {
			return err
		}
		return runSpecs(cmd, []*pipeline.Spec{spec})
	}
	return cmd
}
