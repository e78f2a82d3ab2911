// Package dashboard is creek's web dashboard: an HTTP server with pages
// embedded in the binary (web/, with vendored npm libraries, nothing
// fetched at run time), the JSON API those pages use (documented in
// docs/dashboard.md, usable with curl), server-sent events of live
// records, and Prometheus /metrics.
//
// It reads the cluster only through the Kafka protocol (a clusterview
// refreshed on an interval, kgo consumers for live records, the browser and
// the tweet analytics), so `creek dashboard --brokers` serves it against any
// Kafka cluster; pipelines running in the same process are shown from
// their counters.
package dashboard

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/internal/clusterview"
	"github.com/creek-pipeline/creek/internal/metrics"
	"github.com/creek-pipeline/creek/internal/pipeline"
)

//go:embed web
var webFS embed.FS

// DefaultAddr is where `creek up` serves the dashboard: the port of
// Logstash's monitoring API, the piece it replaces.
const DefaultAddr = "localhost:9600"

// AnalyticsGroup is the consumer group of the dashboard's tweet analytics.
const AnalyticsGroup = "creek-dashboard"

// Config configures a dashboard.
type Config struct {
	// Brokers are the Kafka bootstrap servers; ClientOpts are added to
	// every client the dashboard makes (TLS, SASL).
	Brokers    []string
	ClientOpts []kgo.Opt

	// Registry receives the cluster metrics (kafka_*) and is served at
	// /metrics; nil makes one with the Go and process collectors.
	Registry *prometheus.Registry

	// Topic is the topic of the first page's live tweets and of the
	// analytics; empty: the first topic that has records.
	Topic string
	// Pipelines are the pipelines running in this process, shown on the
	// pipeline page with their counters.
	Pipelines []Pipeline

	// Auth guards every page and API call; zero: none (localhost only).
	Auth Auth
	// Admin allows the actions that change the cluster (create and delete
	// topics, reset a group's offsets); read-only otherwise.
	Admin bool

	// Interval between reads of the cluster; 2 s by default.
	Interval time.Duration
	// Window of the tweet analytics; 15 minutes by default.
	Window time.Duration
	// NoAnalytics turns the analytics consumer group off.
	NoAnalytics bool

	Logger *slog.Logger
}

// Pipeline is a pipeline of this process as the dashboard shows it.
type Pipeline struct {
	Name   string          `json:"name"`
	Source string          `json:"source"`          // plugin: generate, x, kafka...
	Sink   string          `json:"sink"`            // plugin: kafka, console, s3...
	Reads  string          `json:"reads,omitempty"` // topic it consumes, for a kafka source
	Group  string          `json:"group,omitempty"` // its consumer group, for a kafka source
	Writes string          `json:"writes,omitempty"`
	Stats  *pipeline.Stats `json:"-"`
}

// Server is a dashboard.
type Server struct {
	cfg       Config
	client    *kgo.Client
	adm       *kadm.Client
	view      *clusterview.View
	live      *liveHub
	analytics *analytics
	rates     *pipelineRates
	handler   http.Handler
	logger    *slog.Logger

	closeOnce sync.Once
	closing   chan struct{} // closed by Close: open event streams end
	stop      context.CancelFunc
	done      sync.WaitGroup
}

// New makes a dashboard; Start begins reading the cluster.
func New(cfg Config) (*Server, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("dashboard: no Kafka brokers given")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Window <= 0 {
		cfg.Window = 15 * time.Minute
	}
	if cfg.Registry == nil {
		cfg.Registry = metrics.NewRegistry()
	}
	cl, err := kgo.NewClient(cfg.clientOpts()...)
	if err != nil {
		return nil, fmt.Errorf("dashboard: Kafka client: %w", err)
	}
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(10_000)
	s := &Server{cfg: cfg, client: cl, adm: adm, logger: cfg.Logger.With("part", "dashboard"), closing: make(chan struct{})}
	s.view = clusterview.New(adm, clusterview.Options{Interval: cfg.Interval, Logger: s.logger})
	if err := cfg.Registry.Register(metrics.NewCluster(s.view)); err != nil {
		cl.Close()
		return nil, fmt.Errorf("dashboard: register the cluster metrics: %w", err)
	}
	s.live = newLiveHub(s)
	s.analytics = newAnalytics(s)
	s.rates = newPipelineRates(cfg.Pipelines)
	s.handler = s.routes()
	return s, nil
}

func (c Config) clientOpts(extra ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.DialTimeout(5 * time.Second), kgo.RequestRetries(2), kgo.RetryTimeout(10 * time.Second)}
	opts = append(opts, c.ClientOpts...)
	return append(opts, extra...)
}

// Start reads the cluster in the background until Close.
func (s *Server) Start() {
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.done.Add(2)
	go func() { defer s.done.Done(); s.view.Run(ctx) }()
	go func() { defer s.done.Done(); s.rates.run(ctx) }()
	if !s.cfg.NoAnalytics {
		s.done.Add(1)
		go func() { defer s.done.Done(); s.analytics.run(ctx) }()
	}
}

// Handler serves the pages, the API and /metrics.
func (s *Server) Handler() http.Handler { return s.handler }

// View is the cluster view the pages read.
func (s *Server) View() *clusterview.View { return s.view }

// Close stops the dashboard's readers and consumers.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		if s.stop != nil {
			s.stop()
		}
		s.live.close()
		s.done.Wait()
		s.client.Close()
	})
}

// Serve serves the dashboard on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn)}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(webFS, "web")
	mux.Handle("GET /", cacheStatic(static))
	mux.Handle("GET /metrics", metrics.Handler(s.cfg.Registry))
	mux.HandleFunc("GET /api/overview", s.getOverview)
	mux.HandleFunc("GET /api/cluster", s.getCluster)
	mux.HandleFunc("GET /api/topics", s.getTopics)
	mux.HandleFunc("GET /api/topics/{topic}", s.getTopic)
	mux.HandleFunc("GET /api/topics/{topic}/messages", s.getMessages)
	mux.HandleFunc("GET /api/groups", s.getGroups)
	mux.HandleFunc("GET /api/groups/{group}", s.getGroup)
	mux.HandleFunc("GET /api/pipeline", s.getPipeline)
	mux.HandleFunc("GET /api/analytics", s.getAnalytics)
	mux.HandleFunc("GET /api/live", s.getLive)
	mux.HandleFunc("POST /api/topics", s.action(s.createTopic))
	mux.HandleFunc("DELETE /api/topics/{topic}", s.action(s.deleteTopic))
	mux.HandleFunc("POST /api/groups/{group}/reset-offsets", s.action(s.resetOffsets))
	return s.cfg.Auth.guard(mux, s.logger)
}

// cacheStatic serves the embedded files with an ETag of their content
// (embedded files have no modification time), so a browser revalidates
// them with a 304 instead of downloading them again, and a new binary's
// pages show at once.
func cacheStatic(static fs.FS) http.Handler {
	files := http.FileServerFS(static)
	tags := map[string]string{}
	fs.WalkDir(static, ".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := fs.ReadFile(static, path); err == nil {
				sum := sha256.Sum256(b)
				tags["/"+path] = `"` + hex.EncodeToString(sum[:8]) + `"`
			}
		}
		return nil
	})
	tags["/"] = tags["/index.html"]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		if tag, ok := tags[r.URL.Path]; ok {
			w.Header().Set("ETag", tag)
		}
		files.ServeHTTP(w, r)
	})
}
