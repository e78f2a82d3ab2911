package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/creek-pipeline/creek/internal/dashboard"
	"github.com/creek-pipeline/creek/internal/metrics"
	"github.com/creek-pipeline/creek/internal/pipeline"
)

// httpFlags are the dashboard's flags, shared by up, broker and dashboard.
type httpFlags struct {
	addr         string
	user         string
	passwordFile string
	tokenFile    string
	insecure     bool
	admin        bool
	noAnalytics  bool
}

func addHTTPFlags(f *pflag.FlagSet, def string) *httpFlags {
	h := &httpFlags{}
	f.StringVar(&h.addr, "http", def, `address of the dashboard and /metrics, host:port ("off" for none); other than localhost it needs credentials or --http-insecure`)
	f.StringVar(&h.user, "http-user", "", "user name the dashboard asks for (basic auth); the password comes from CREEK_HTTP_PASSWORD or --http-password-file")
	f.StringVar(&h.passwordFile, "http-password-file", "", "file holding the dashboard password of --http-user")
	f.StringVar(&h.tokenFile, "http-token-file", "", "file holding a token the dashboard accepts (Authorization: Bearer, or ?token= once)")
	f.BoolVar(&h.insecure, "http-insecure", false, "serve the dashboard on a non-local address without credentials")
	f.BoolVar(&h.admin, "http-admin", false, "allow the dashboard to change the cluster: create and delete topics, reset offsets")
	f.BoolVar(&h.noAnalytics, "http-no-analytics", false, "do not run the dashboard's tweet analytics consumer group ("+dashboard.AnalyticsGroup+")")
	return h
}

func (h *httpFlags) off() bool { return h.addr == "" || h.addr == "off" }

// auth reads the credentials the flags point to.
func (h *httpFlags) auth() (dashboard.Auth, error) {
	a := dashboard.Auth{User: h.user}
	read := func(flag, path string) (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", usageError{fmt.Errorf("--%s: %w", flag, err)}
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", usageError{fmt.Errorf("--%s %s is empty", flag, path)}
		}
		return s, nil
	}
	if h.user != "" {
		a.Password = os.Getenv("CREEK_HTTP_PASSWORD")
		if h.passwordFile != "" {
			p, err := read("http-password-file", h.passwordFile)
			if err != nil {
				return a, err
			}
			a.Password = p
		}
	} else if h.passwordFile != "" {
		return a, usageError{errors.New("--http-password-file needs --http-user")}
	}
	if h.tokenFile != "" {
		t, err := read("http-token-file", h.tokenFile)
		if err != nil {
			return a, err
		}
		a.Token = t
	}
	if err := dashboard.CheckExposure(h.addr, a, h.insecure); err != nil {
		return a, usageError{err}
	}
	return a, nil
}

// servedDashboard is a running dashboard; URL is what the banner prints.
type servedDashboard struct {
	URL  string
	srv  *dashboard.Server
	stop context.CancelFunc
	done chan error
}

// startDashboard checks the flags, listens and serves the dashboard (and
// /metrics from cfg.Registry) in the background.
func startDashboard(h *httpFlags, cfg dashboard.Config) (*servedDashboard, error) {
	a, err := h.auth()
	if err != nil {
		return nil, err
	}
	cfg.Auth, cfg.Admin, cfg.NoAnalytics = a, h.admin, h.noAnalytics
	ln, err := net.Listen("tcp", h.addr)
	if err != nil {
		return nil, fmt.Errorf("dashboard: listen on %s: %w (choose another address with --http, or --http off)", h.addr, err)
	}
	srv, err := dashboard.New(cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	srv.Start()
	ctx, stop := context.WithCancel(context.Background())
	d := &servedDashboard{URL: "http://" + clientAddr(ln.Addr().String()), srv: srv, stop: stop, done: make(chan error, 1)}
	go func() { d.done <- srv.Serve(ctx, ln) }()
	return d, nil
}

// Close stops serving and the dashboard's consumers.
func (d *servedDashboard) Close() error {
	if d == nil {
		return nil
	}
	d.stop()
	err := <-d.done
	d.srv.Close()
	return err
}

// dashboardPipelines describes pipelines for the pipeline page and
// registers their counters as creek_pipeline_* metrics.
func dashboardPipelines(specs []*pipeline.Spec, pipes []*pipeline.Pipeline, reg *metrics.Pipelines) []dashboard.Pipeline {
	var out []dashboard.Pipeline
	for i, s := range specs {
		p := pipes[i]
		reg.Add(p, s.Source.Name, s.Sink.Name)
		d := dashboard.Pipeline{Name: s.Name, Source: s.Source.Name, Sink: s.Sink.Name, Stats: p.Stats}
		if s.Source.Name == "kafka" {
			if topics := s.SourceOpts.Strings("topic"); len(topics) > 0 {
				d.Reads = topics[0]
			}
			d.Group = s.SourceOpts.String("group")
			if d.Group == "" {
				d.Group = s.SourceOpts.String("share-group")
			}
		}
		if s.Sink.Name == "kafka" {
			d.Writes = s.SinkOpts.String("topic")
		}
		out = append(out, d)
	}
	return out
}

func newDashboardCommand() *cobra.Command {
	var topic string
	var h *httpFlags
	var k *kafkaFlags
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve the web dashboard and Prometheus /metrics for any Kafka cluster",
		Long: `Serve creek's dashboard against a Kafka cluster (creek's broker, Apache Kafka,
Amazon MSK, Redpanda), read through the Kafka protocol alone: topics with
offsets, sizes and configs; consumer groups of every kind with lag; live
records; a message browser; tweet analytics; and /metrics with
kafka_exporter's metric names, so Grafana's kafka_exporter dashboards work.

The dashboard listens on localhost unless --http says otherwise; another
address needs credentials (--http-user with CREEK_HTTP_PASSWORD or
--http-password-file, or --http-token-file) or an explicit --http-insecure.
It is read-only unless --http-admin is given. See docs/dashboard.md.`,
		Example: `  creek dashboard --brokers localhost:9092
  creek dashboard --brokers b-1.msk.example.com:9098 --tls --sasl-mechanism AWS_MSK_IAM
  creek dashboard --brokers broker.example.com:9093 --tls-ca ca.crt --sasl-mechanism SCRAM-SHA-512 \
    --sasl-user dashboard --sasl-password-file dashboard.pass
  CREEK_HTTP_PASSWORD=... creek dashboard --brokers kafka:9092 --http :9600 --http-user admin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if h.off() {
				return usageError{errors.New("--http off leaves the dashboard nothing to do; give an address such as localhost:9600")}
			}
			list := k.brokerList(cmd)
			seeds, opts, err := k.clientOpts(cmd)
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			d, err := startDashboard(h, dashboard.Config{Brokers: seeds, ClientOpts: opts, Topic: topic, Logger: slog.Default()})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "creek dashboard for %s at %s (metrics at %s/metrics); stop with Ctrl-C\n", list, d.URL, d.URL)
			select {
			case <-ctx.Done():
			case err := <-d.done:
				d.done <- err
			}
			return d.Close()
		},
	}
	k = addKafkaFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&topic, "topic", "", "topic of the live tweets and analytics (default: the first topic with records)")
	h = addHTTPFlags(f, dashboard.DefaultAddr)
	return cmd
}
