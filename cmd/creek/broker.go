package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/creek-pipeline/creek/broker"
	"github.com/creek-pipeline/creek/internal/auth"
	"github.com/creek-pipeline/creek/internal/config"
	"github.com/creek-pipeline/creek/internal/dashboard"
	"github.com/creek-pipeline/creek/internal/metrics"
)

func newBrokerCommand() *cobra.Command {
	var (
		configFile string
		overrides  []string
		web        *httpFlags
	)
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the Kafka-compatible broker",
		Long: `Run creek's broker: a single-node Kafka cluster that keeps its data in a folder.
Every Kafka client and tool works against it unchanged.

Settings come from, highest precedence first: command-line flags, CREEK_*
environment variables (CREEK_DATA_DIR, CREEK_LOG_RETENTION_BYTES, ...), the
broker section of the --config YAML file, and the defaults below. Kafka's own
broker settings keep their Kafka names; set them with --override name=value.

` + brokerSettingsHelp(),
		Example: `  creek broker
  creek broker --data-dir /var/lib/creek --advertised-addr broker.example.com:9092
  creek broker --override log.retention.bytes=536870912 --override num.partitions=3
  creek broker --listeners PLAINTEXT://127.0.0.1:9092,SASL_SSL://:9093 \
    --advertised-listeners SASL_SSL://broker.example.com:9093 \
    --tls-cert broker.crt --tls-key broker.key --super-users 'User:admin;User:ANONYMOUS'
  CREEK_FSYNC=always creek broker --config creek.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := readConfigFile(configFile)
			if err != nil {
				return err
			}
			cfg, err := brokerConfig(cmd, file, overrides)
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			reg := metrics.NewRegistry()
			cfg.Metrics = reg
			b, err := broker.Start(ctx, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "creek broker listening on %s (data in %s); stop with Ctrl-C\n", listenersOf(b), dataDirOf(cfg))
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for range hup { // new TLS certificates, without dropping a connection
					if err := b.ReloadCertificates(); err != nil {
						slog.Error("SIGHUP: the TLS certificates were not reloaded; the old ones stay in use", "err", err)
					}
				}
			}()
			var d *servedDashboard
			if !web.off() {
				addr, ok := plaintextAddr(b)
				if !ok {
					b.Close()
					return usageError{errors.New("--http: the dashboard reads the broker through a PLAINTEXT listener and this broker has none; add one on localhost (--listeners ...,PLAINTEXT://127.0.0.1:9092) or run `creek dashboard` with --sasl-mechanism and --tls-ca")}
				}
				if d, err = startDashboard(web, dashboard.Config{Brokers: []string{addr}, Registry: reg, Logger: slog.Default()}); err != nil {
					b.Close()
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "dashboard at %s, Prometheus metrics at %s/metrics\n", d.URL, d.URL)
			}
			<-ctx.Done()
			slog.Info("shutting down")
			return errors.Join(d.Close(), b.Close())
		},
	}
	f := cmd.Flags()
	addBrokerFlags(f, nil)
	web = addHTTPFlags(f, "off")
	f.StringVar(&configFile, "config", "", "YAML file with a broker section of settings")
	f.StringArrayVar(&overrides, "override", nil, "set a Kafka-named broker setting, name=value (repeatable)")
	return cmd
}

// addBrokerFlags adds the flags of creek's own broker settings (all of
// them when only is nil).
func addBrokerFlags(f *pflag.FlagSet, only []string) {
	for _, s := range config.BrokerSettings.All() {
		if s.Flag != "" && (only == nil || slices.Contains(only, s.Flag)) {
			f.String(s.Flag, s.Default, s.Doc)
		}
	}
}

// readConfigFile parses --config, if given.
func readConfigFile(path string) (*config.File, error) {
	if path == "" {
		return nil, nil
	}
	f, err := config.ReadFile(path)
	if err != nil {
		return nil, usageError{err}
	}
	return f, nil
}

// brokerConfig merges flags, CREEK_* variables and the YAML file (may be nil).
func brokerConfig(cmd *cobra.Command, file *config.File, overrides []string) (broker.Config, error) {
	flags, err := parseKeyValues("override", overrides)
	if err != nil {
		return broker.Config{}, err
	}
	for _, s := range config.BrokerSettings.All() {
		if s.Flag != "" && cmd.Flags().Lookup(s.Flag) != nil && cmd.Flags().Changed(s.Flag) {
			flags[s.Name], _ = cmd.Flags().GetString(s.Flag)
		}
	}
	settings, err := config.MergeBroker(flags, os.Environ(), file)
	if err != nil {
		return broker.Config{}, usageError{err}
	}
	return broker.Config{Settings: settings, Logger: slog.Default()}, nil
}

// listenersOf names the broker's listeners for its banner: the address
// alone for the one PLAINTEXT listener of --listen, as before listeners.
func listenersOf(b *broker.Broker) string {
	if ls := b.Listeners(); len(ls) == 1 && ls[0].Name == "PLAINTEXT" && ls[0].Protocol == auth.Plaintext {
		return ls[0].Addr
	}
	var out []string
	for _, l := range b.Listeners() {
		out = append(out, l.Name+"://"+l.Addr)
	}
	return strings.Join(out, ", ")
}

// plaintextAddr is the address of the broker's first PLAINTEXT listener,
// which the in-process dashboard connects to.
func plaintextAddr(b *broker.Broker) (string, bool) {
	for _, l := range b.Listeners() {
		if l.Protocol == auth.Plaintext {
			return clientAddr(l.Addr), true
		}
	}
	return "", false
}

func dataDirOf(cfg broker.Config) string {
	if d := cfg.Settings["data-dir"]; d != "" {
		return d
	}
	s, _ := config.BrokerSettings.Lookup("data-dir")
	return s.Default
}

func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}

// brokerSettingsHelp lists the Kafka-named settings for --help.
func brokerSettingsHelp() string {
	var b strings.Builder
	b.WriteString("Kafka-named settings (--override, CREEK_* variable, or YAML key):\n")
	w := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	for _, s := range config.BrokerSettings.All() {
		if s.Flag != "" {
			continue
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\n", s.Name, s.Default, firstSentence(s.Doc))
	}
	w.Flush()
	return b.String()
}
