package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/internal/kafkaopt"
	"github.com/creek-pipeline/creek/internal/pipeline"
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
// subcommands: --brokers (else CREEK_BROKERS, else localhost:9092), TLS and
// SASL (kafkaopt.SecurityOptions, each also from its CREEK_* variable).
type kafkaFlags struct {
	brokers string
}

// addKafkaFlags adds --brokers and the security flags to cmd and its subcommands.
func addKafkaFlags(cmd *cobra.Command) *kafkaFlags {
	k := &kafkaFlags{}
	pf := cmd.PersistentFlags()
	pf.StringVar(&k.brokers, "brokers", kafkaopt.DefaultBrokers, "Kafka bootstrap servers, comma-separated host:port (env CREEK_BROKERS when the flag is not given)")
	for _, o := range kafkaopt.SecurityOptions {
		switch {
		case o.Flag == "":
		case o.Type == pipeline.TypeBool:
			pf.Bool(o.Flag, false, o.Doc)
		default:
			pf.String(o.Flag, "", o.Doc)
		}
	}
	return k
}

// security reads the security flags, each else its environment variable.
func (k *kafkaFlags) security(cmd *cobra.Command) kafkaopt.Security {
	get := func(name string) string {
		for _, o := range kafkaopt.SecurityOptions {
			if o.Name != name {
				continue
			}
			if f := cmd.Flags().Lookup(o.Flag); o.Flag != "" && f != nil && f.Changed {
				return f.Value.String()
			}
			for _, env := range o.Env {
				if v := os.Getenv(env); v != "" {
					return v
				}
			}
		}
		return ""
	}
	return kafkaopt.Security{
		TLS: get("tls") == "true", TLSCA: get("tls-ca"), TLSCert: get("tls-cert"), TLSKey: get("tls-key"),
		Mechanism: get("sasl-mechanism"), User: get("sasl-user"), Password: get("sasl-password"), PasswordFile: get("sasl-password-file"),
	}
}

// clientOpts are the franz-go options for --brokers and the security flags.
func (k *kafkaFlags) clientOpts(cmd *cobra.Command) ([]string, []kgo.Opt, error) {
	list := k.brokerList(cmd)
	seeds, err := kafkaopt.SplitBrokers(list)
	if err != nil {
		return nil, nil, usageError{err}
	}
	sec, err := k.security(cmd).Opts()
	if err != nil {
		return nil, nil, usageError{err}
	}
	return seeds, sec, nil
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
	seeds, sec, err := k.clientOpts(cmd)
	if err != nil {
		return nil, err
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.DialTimeout(kafkaDialTimeout),
		kgo.RequestRetries(2),
		kgo.RetryTimeout(10 * time.Second),
	}, sec...)
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
		if errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.IllegalSaslState) || errors.Is(err, kerr.UnsupportedSaslMechanism) {
			return nil, fmt.Errorf("Kafka at %s refused the login: %v — check --sasl-mechanism, --sasl-user and the password (CREEK_SASL_PASSWORD or --sasl-password-file)", list, err)
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
