package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/internal/kafkaopt"
)

// Admin commands talk to creek's broker or any Kafka cluster over the wire
// (franz-go's kadm), never to creek's internals.

const (
	// kafkaDialTimeout bounds connecting to one broker.
	kafkaDialTimeout = 5 * time.Second
	// kafkaCommandTimeout bounds a whole admin command, retries included.
	kafkaCommandTimeout = 30 * time.Second
)

// kafkaFlags are the connection flags of an admin command and its
// subcommands: --brokers (else CREEK_BROKERS, else localhost:9092) and --tls.
type kafkaFlags struct {
	brokers string
	tls     bool
}

// addKafkaFlags adds --brokers and --tls to cmd and its subcommands.
func addKafkaFlags(cmd *cobra.Command) *kafkaFlags {
	k := &kafkaFlags{}
	pf := cmd.PersistentFlags()
	pf.StringVar(&k.brokers, "brokers", kafkaopt.DefaultBrokers, "Kafka bootstrap servers, comma-separated host:port (env CREEK_BROKERS when the flag is not given)")
	pf.BoolVar(&k.tls, "tls", false, "connect to the brokers with TLS (e.g. Amazon MSK on port 9094)")
	return k
}

// brokerList is --brokers when given, else $CREEK_BROKERS, else the default.
func (k *kafkaFlags) brokerList(cmd *cobra.Command) string {
	if f := cmd.Flags().Lookup("brokers"); f != nil && f.Changed {
		return k.brokers
	}
	if v := os.Getenv("CREEK_BROKERS"); v != "" {
		return v
	}
	return k.brokers
}

// kafkaConn is a connected admin client.
type kafkaConn struct {
	*kadm.Client
	cl      *kgo.Client
	brokers string // as the user gave them, for messages
}

// connect builds a kgo and a kadm client and checks that a broker answers,
// so that a wrong address fails at once with a message saying what to do.
func (k *kafkaFlags) connect(ctx context.Context, cmd *cobra.Command) (*kafkaConn, error) {
	list := k.brokerList(cmd)
	seeds, err := kafkaopt.SplitBrokers(list)
	if err != nil {
		return nil, usageError{err}
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.DialTimeout(kafkaDialTimeout),
		kgo.RequestRetries(2),
		kgo.RetryTimeout(10 * time.Second),
	}
	if k.tls {
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, usageError{fmt.Errorf("--brokers %q: %w", list, err)}
	}
	pctx, cancel := context.WithTimeout(ctx, kafkaDialTimeout+time.Second)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("cannot reach Kafka at %s: %v — is `creek broker` running? use --brokers HOST:PORT", list, err)
	}
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32((kafkaCommandTimeout / 2).Milliseconds()))
	return &kafkaConn{Client: adm, cl: cl, brokers: list}, nil
}

// run connects and calls fn with a context bounded by kafkaCommandTimeout.
func (k *kafkaFlags) run(cmd *cobra.Command, fn func(ctx context.Context, c *kafkaConn) error) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), kafkaCommandTimeout)
	defer cancel()
	c, err := k.connect(ctx, cmd)
	if err != nil {
		return err
	}
	defer c.cl.Close()
	err = fn(ctx, c)
	if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return fmt.Errorf("Kafka at %s did not answer within %s: %w", c.brokers, kafkaCommandTimeout, err)
	}
	return err
}
