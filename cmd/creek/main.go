// Command creek is a streaming data pipeline in one binary: a
// Kafka-compatible broker with a durable log, collectors that produce to it,
// and consumers that show or store what it holds.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	stopProfiles := startProfiles()
	err := newRootCommand().Execute()
	stopProfiles()
	if err != nil {
		fmt.Fprintln(os.Stderr, "creek:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a mistake in how creek was called (exit status 2).
type usageError struct{ error }

func newRootCommand() *cobra.Command {
	var logLevel string
	root := &cobra.Command{
		Use:   "creek",
		Short: "A streaming data pipeline in one binary",
		Long: `creek is a streaming data pipeline in one binary: a Kafka-compatible broker
with a durable on-disk log, collectors that bring data into it, and consumers
that show it on screen or store it elsewhere. Every Kafka client and tool
(kcat, kafka-python, librdkafka, franz-go, sarama, KafkaJS...) works against
creek's broker unchanged.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			level, err := parseLogLevel(logLevel)
			if err != nil {
				return usageError{err}
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
			return nil
		},
	}
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info", "log detail: debug, info, warn or error")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath())}
	})
	root.AddCommand(newBrokerCommand(), newTopicsCommand(), newGroupsCommand(), newProduceCommand(), newConsumeCommand(), newRunCommand(), newUpCommand(), newBenchCommand(), newTransactionsCommand(), newUsersCommand(), newACLsCommand(), newCertsCommand(), newS3Command(), newDashboardCommand(), newVersionCommand())
	return root
}

func parseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// signalContext is cancelled on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// parseKeyValues parses repeated key=value flags.
func parseKeyValues(flag string, kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Errorf("--%s %q: want key=value", flag, kv)}
		}
		out[strings.TrimSpace(k)] = v
	}
	return out, nil
}
