package main

import (
	"github.com/spf13/cobra"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

func newProduceCommand() *cobra.Command {
	var from string
	var sources []*pipeline.Plugin
	for _, p := range pipeline.Sources() {
		if p.Name != "kafka" {
			sources = append(sources, p)
		}
	}
	sink, _ := pipeline.LookupSink("kafka")
	cmd := &cobra.Command{
		Use:   "produce --topic TOPIC [--from SOURCE] [options]",
		Short: "Collect records from a source into a Kafka topic",
		Long: `Collect records into a Kafka topic, as Logstash does: from the X (Twitter)
stream, synthetic tweets, files, standard input or HTTP. Each source's options
are below; an option of another source is refused. The producer is
idempotent and waits for acks=all by default, so nothing acknowledged is lost
or duplicated. Ctrl-C stops reading and delivers what was already read.`,
		Example: `  creek produce --topic tweets --from generate --rate 10
  X_BEARER_TOKEN=... creek produce --topic tweets --from x --x-rule 'kafka lang:ko'
  tail -f app.log | creek produce --topic logs
  creek produce --topic logs --from file --path '/var/log/app/*.log'`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().StringVar(&from, "from", "stdin", "source of the records")
	srcFlags := addPluginFlags(cmd.Flags(), sources, "from")
	pipeFlags := addPipelineFlags(cmd.Flags())
	sinkFlags := addPluginFlags(cmd.Flags(), []*pipeline.Plugin{sink}, "to")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		src, srcOpts, err := srcFlags.bind(cmd, from)
		if err != nil {
			return err
		}
		_, sinkOpts, err := sinkFlags.bind(cmd, "kafka")
		if err != nil {
			return err
		}
		spec := &pipeline.Spec{Name: "produce", Source: src, SourceOpts: srcOpts, Sink: sink, SinkOpts: sinkOpts}
		if err := pipeFlags.apply(spec); err != nil {
			return err
		}
		return runSpecs(cmd, []*pipeline.Spec{spec})
	}
	return cmd
}
