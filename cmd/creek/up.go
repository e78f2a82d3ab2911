package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/broker"
	"github.com/creek-pipeline/creek/internal/config"
	"github.com/creek-pipeline/creek/internal/dashboard"
	"github.com/creek-pipeline/creek/internal/metrics"
	"github.com/creek-pipeline/creek/internal/pipeline"
)

// consoleGroup is the consumer group of the console in creek up.
const consoleGroup = "creek-console"

// defaultXRule is what creek up collects from X when no rule is given.
const defaultXRule = "(kafka OR 카프카 OR dataengineering OR 데이터엔지니어링) -is:retweet"

func newUpCommand() *cobra.Command {
	var (
		configFile string
		topic      string
		rate       int
		xRules     []string
		overrides  []string
		web        *httpFlags
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the whole pipeline: broker, tweet collector and console",
		Long: `Run everything on one machine: the Kafka-compatible broker (data kept in
--data-dir), a collector that sends tweets to a topic, and a console consumer
(group "creek-console") that shows them as they arrive.

The collector reads the X (Twitter) API v2 filtered stream when X_BEARER_TOKEN
is set, and otherwise generates synthetic tweets, so the pipeline works
offline. Other Kafka clients can use the broker meanwhile, for example
kcat -b localhost:9092 -t tweets -C.

Ctrl-C stops every part cleanly; the next start continues: the topic keeps its
data and the console resumes from its committed position.

With --config, the YAML file's broker section configures the broker, and its
input/output or pipelines sections, if any, replace the collector and console.`,
		Example: `  creek up
  creek up --rate 10 --topic demo
  X_BEARER_TOKEN=... creek up --x-rule 'kafka lang:ko'
  creek up --config creek.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("log-level") {
				// The screen belongs to the tweets; say only what goes wrong.
				slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
			}
			file, err := readConfigFile(configFile)
			if err != nil {
				return err
			}
			cfg, err := brokerConfig(cmd, file, overrides)
			if err != nil {
				return err
			}
			if _, ok := cfg.Settings["group.initial.rebalance.delay.ms"]; !ok {
				cfg.Settings["group.initial.rebalance.delay.ms"] = "0" // the console should start at once
			}
			if rate < 0 {
				return usageError{fmt.Errorf("--rate %d: want 0 or more tweets per second", rate)}
			}
			if _, err := web.auth(); err != nil && !web.off() {
				return err // before the broker starts
			}
			return up(cmd, cfg, file, upOptions{topic: topic, rate: rate, xRules: xRules, web: web})
		},
	}
	f := cmd.Flags()
	addBrokerFlags(f, []string{"listen", "data-dir"})
	f.StringVar(&topic, "topic", "tweets", "topic the tweets go to")
	f.IntVar(&rate, "rate", 3, "synthetic tweets per second (when no X token is set)")
	f.StringArrayVar(&xRules, "x-rule", nil, "X filter rule when X_BEARER_TOKEN is set (repeatable; default: "+strconv.Quote(defaultXRule)+")")
	f.StringVar(&configFile, "config", "", "YAML file: a broker section, and optionally pipelines replacing the defaults")
	f.StringArrayVar(&overrides, "override", nil, "set a Kafka-named broker setting, name=value (repeatable)")
	web = addHTTPFlags(f, dashboard.DefaultAddr)
	return cmd
}

type upOptions struct {
	topic  string
	rate   int
	xRules []string
	web    *httpFlags
}

func up(cmd *cobra.Command, cfg broker.Config, file *config.File, opts upOptions) error {
	ctx, stop := signalContext()
	defer stop()
	reg := metrics.NewRegistry()
	cfg.Metrics = reg
	b, err := broker.Start(context.Background(), cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	addr := clientAddr(b.Addr())

	var specs []*pipeline.Spec
	if file != nil {
		if specs, err = pipeline.SpecsFromFile(file); err != nil {
			return usageError{err}
		}
	}
	collector := "configured pipelines"
	if len(specs) == 0 {
		if err := ensureTopic(ctx, addr, opts.topic); err != nil {
			return err
		}
		var collect *pipeline.Spec
		collect, collector, err = collectorSpec(addr, opts)
		if err != nil {
			return err
		}
		show, err := pipeline.NewSpec("console", "kafka", map[string][]string{
			"brokers": {addr}, "topic": {opts.topic}, "group": {consoleGroup}, "from-beginning": {"true"},
		}, "console", nil)
		if err != nil {
			return err
		}
		specs = []*pipeline.Spec{collect, show}
	}

	var pipes []*pipeline.Pipeline
	for _, s := range specs {
		p, err := s.Build(pipeline.Env{Logger: slog.Default()})
		if err != nil {
			for _, q := range pipes {
				q.Sink.Close()
			}
			return err
		}
		pipes = append(pipes, p)
	}
	pipeMetrics := metrics.NewPipelines()
	if err := reg.Register(pipeMetrics); err != nil {
		return err
	}
	shown := dashboardPipelines(specs, pipes, pipeMetrics)
	web := "off (--http)"
	if !opts.web.off() {
		topic := opts.topic
		if file != nil && len(shown) > 0 {
			topic = "" // configured pipelines: the dashboard picks the busiest topic
		}
		d, err := startDashboard(opts.web, dashboard.Config{Brokers: []string{addr}, Registry: reg, Topic: topic, Pipelines: shown, Logger: slog.Default()})
		if err != nil {
			for _, q := range pipes {
				q.Sink.Close()
			}
			return err
		}
		defer d.Close()
		web = d.URL + "   pipeline, topics, groups, live tweets; Prometheus metrics at " + d.URL + "/metrics"
	}
	printBanner(cmd.ErrOrStderr(), addr, dataDirOf(cfg), opts.topic, collector, web)
	err = runPipelines(ctx, pipes)
	if ctx.Err() != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "\ncreek stopped; start it again to continue where it left off.")
	}
	return errors.Join(err, b.Close())
}

// collectorSpec picks the X stream when a token is set, else the generator.
func collectorSpec(addr string, opts upOptions) (*pipeline.Spec, string, error) {
	sink := map[string][]string{"brokers": {addr}, "topic": {opts.topic}}
	if os.Getenv("X_BEARER_TOKEN") != "" || os.Getenv("TWITTER_BEARER_TOKEN") != "" {
		rules := opts.xRules
		if len(rules) == 0 {
			rules = []string{defaultXRule}
		}
		spec, err := pipeline.NewSpec("collector", "x", map[string][]string{"rules": rules}, "kafka", sink)
		return spec, fmt.Sprintf("the X API filtered stream (rules: %q)", rules), err
	}
	spec, err := pipeline.NewSpec("collector", "generate", map[string][]string{"rate": {strconv.Itoa(opts.rate)}}, "kafka", sink)
	what := fmt.Sprintf("synthetic tweets, %d a second; set X_BEARER_TOKEN to collect real posts from the X API", opts.rate)
	return spec, what, err
}

// ensureTopic creates the topic if it does not exist yet, so the console
// can subscribe before the first tweet arrives.
func ensureTopic(ctx context.Context, addr, topic string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = kadm.NewClient(cl).CreateTopic(ctx, -1, -1, nil, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

// clientAddr turns a listen address into one a local client can dial.
func clientAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func printBanner(w io.Writer, addr, dataDir, topic, collector, web string) {
	fmt.Fprintf(w, `creek is running: collector → Kafka topic %q → this screen

  broker     %s   any Kafka client works, e.g. kcat -b %s -t %s -C
  data       %s   kept between runs
  collector  %s
  console    consumer group %q, continues where it stopped
  dashboard  %s

Stop with Ctrl-C.

`, topic, addr, addr, topic, dataDir, collector, consoleGroup, web)
}
