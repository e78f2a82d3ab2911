// Package kafkaopt holds what every Kafka-speaking part of creek shares:
// the --brokers option, TLS and SASL (security.go), and building a
// franz-go client for them.
package kafkaopt

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

// DefaultBrokers is where creek looks for Kafka unless told otherwise.
const DefaultBrokers = "localhost:9092"

// BrokersOption is the brokers option of the Kafka source and sink.
var BrokersOption = pipeline.Option{
	Name: "brokers", Flag: "brokers", Env: []string{"CREEK_BROKERS"}, Type: pipeline.TypeString, Default: DefaultBrokers,
	Doc: "Kafka bootstrap servers, comma-separated host:port (creek broker or any Kafka cluster).",
}

// ClientOpts returns the connection options shared by the Kafka source and
// sink: seed brokers, TLS, SASL and logging.
func ClientOpts(v *pipeline.Values, logger *slog.Logger) ([]kgo.Opt, error) {
	brokers, err := SplitBrokers(v.String("brokers"))
	if err != nil {
		return nil, err
	}
	sec, err := SecurityFrom(v).Opts()
	if err != nil {
		return nil, err
	}
	return append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.WithLogger(Logger(logger))}, sec...), nil
}

// SplitBrokers parses a comma-separated broker list.
func SplitBrokers(s string) ([]string, error) {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no Kafka brokers given; use --brokers host:port")
	}
	return out, nil
}

// Logger adapts slog to franz-go's logger, keeping its warnings and errors.
func Logger(l *slog.Logger) kgo.Logger {
	return kgo.BasicLogger(slogWriter{l}, kgo.LogLevelWarn, nil)
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn("kafka client: " + strings.TrimSpace(string(p)))
	return len(p), nil
}
