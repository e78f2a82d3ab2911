// Package broker is creek's Kafka-compatible broker: a TCP server that
// speaks the Kafka wire protocol (encoded and decoded with franz-go's kmsg)
// over the durable partition log of internal/storage.
//
// It is embeddable, so Go programs can run a real, persistent broker inside
// their tests:
//
//	b, err := broker.Start(ctx, broker.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
//	if err != nil { ... }
//	defer b.Close()
//	client, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/creek-pipeline/creek/internal/cluster"
	"github.com/creek-pipeline/creek/internal/config"
	"github.com/creek-pipeline/creek/internal/metrics"
	"github.com/creek-pipeline/creek/internal/quota"
)

// Config configures a broker. Zero values take the defaults of `creek broker`.
type Config struct {
	Listen         string // host:port; ":9092" by default, "127.0.0.1:0" picks a free port
	AdvertisedAddr string // host:port clients are told to use; default: the address they connected to
	DataDir        string // "./creek-data" by default
	Fsync          string // acks (default), always, never, or an interval such as "200ms"

	// Settings holds Kafka-named broker settings such as
	// "log.retention.bytes" or "num.partitions" (see `creek broker --help`).
	Settings map[string]string

	// Logger receives the broker's logs; nil discards them.
	Logger *slog.Logger

	// Metrics, when set, receives the broker's Prometheus metrics
	// (creek_broker_*, creek_log_*; see internal/metrics).
	Metrics prometheus.Registerer
}

// Broker is a running broker.
type Broker struct {
	cluster       *cluster.Cluster
	*coordinators // groups, shares, txns and the front of every group request
	quotas        *quota.Manager
	logger        *slog.Logger

	listeners []*listener
	sec       *security

	nodeID         int32
	maxRequestSize int32
	// maxOtherRequestSize bounds requests of APIs other than Produce.
	maxOtherRequestSize int32
	writeTimeout        time.Duration
	requestBudget       *requestBudget // queued.max.request.bytes
	fetchMaxBytes       int64
	fetchSessions       *fetchSessions // KIP-227
	fsync               config.FsyncPolicy
	autoCreate          bool
	metrics             *metrics.Broker // nil: not measured

	mu         sync.Mutex
	conns      map[*conn]struct{}
	connsPerIP map[string]int
	connsWG    sync.WaitGroup

	closing   chan struct{} // closed when shutdown starts
	done      chan struct{} // closed when shutdown has finished
	closeOnce sync.Once
	closeErr  error
}

// Start opens the data dir (recovering it after a crash), listens, and
// serves until Close is called or ctx is cancelled.
func Start(ctx context.Context, cfg Config) (*Broker, error) {
	settings, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	values, err := config.NewBrokerValues(settings)
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = discardLogger()
	}
	fsync, _ := config.ParseFsync(values.String("fsync"))

	listeners, err := openListeners(values)
	if err != nil {
		return nil, err
	}
	closeListeners := func() {
		for _, l := range listeners {
			l.ln.Close()
		}
	}
	var m *metrics.Broker
	var onSync func(time.Duration)
	if cfg.Metrics != nil {
		m = newMetrics()
		onSync = m.Fsync
	}
	cl, err := cluster.Open(cluster.Options{DataDir: values.String("data-dir"), Broker: values, Fsync: fsync, Logger: logger, OnSync: onSync})
	if err != nil {
		closeListeners()
		return nil, err
	}
	sec, err := newSecurity(values, listeners, cl, logger)
	if err != nil {
		closeListeners()
		cl.Close()
		return nil, err
	}
	budget := newRequestBudget(values.Int64("queued.max.request.bytes"))
	sessions := newFetchSessions(int(values.Int64("max.incremental.fetch.session.cache.slots")))
	if m != nil {
		m.LogSizes = logSizes(cl)
		m.QueuedRequestBytes = budget.inUse
		m.FetchSessions = sessions.report
		if err := cfg.Metrics.Register(m); err != nil {
			closeListeners()
			cl.Close()
			return nil, fmt.Errorf("register the broker's metrics: %w", err)
		}
	}
	co, err := startCoordinators(values, cl, logger)
	if err != nil {
		closeListeners()
		cl.Close()
		return nil, err
	}
	quotas, err := quota.New(cl.QuotaStore(), quota.Config{
		Samples: int(values.Int64("quota.window.num")),
		Sample:  time.Duration(values.Int64("quota.window.size.seconds")) * time.Second,
	}, nil)
	if err != nil {
		closeListeners()
		co.close()
		cl.Close()
		return nil, err
	}
	b := &Broker{
		cluster:             cl,
		coordinators:        co,
		quotas:              quotas,
		logger:              logger,
		listeners:           listeners,
		sec:                 sec,
		nodeID:              int32(values.Int64("node.id")),
		maxRequestSize:      int32(values.Int64("socket.request.max.bytes")),
		maxOtherRequestSize: int32(min(values.Int64("request.max.bytes.non.produce"), values.Int64("socket.request.max.bytes"))),
		writeTimeout:        time.Duration(values.Int64("socket.write.timeout.ms")) * time.Millisecond,
		requestBudget:       budget,
		fetchMaxBytes:       values.Int64("fetch.max.bytes"),
		fetchSessions:       sessions,
		fsync:               fsync,
		autoCreate:          values.Bool("auto.create.topics.enable"),
		metrics:             m,
		conns:               map[*conn]struct{}{},
		connsPerIP:          map[string]int{},
		closing:             make(chan struct{}),
		done:                make(chan struct{}),
	}
	for _, l := range listeners {
		go b.acceptLoop(l)
	}
	txnCtx, stopTxns := context.WithCancel(context.Background())
	go func() { <-b.closing; stopTxns() }()
	go co.txns.Run(txnCtx)
	go func() {
		select {
		case <-ctx.Done():
			b.Close()
		case <-b.done:
		}
	}()
	for _, l := range listeners {
		logger.Info("broker listening", "listener", l.Name, "protocol", string(l.Protocol), "addr", l.ln.Addr().String())
	}
	logger.Info("broker started", "data_dir", values.String("data-dir"), "cluster_id", cl.ID(), "fsync", values.String("fsync"))
	return b, nil
}

// newMetrics makes the metrics of every API and version the broker serves.
func newMetrics() *metrics.Broker {
	var maxKey, maxVersion int16
	for k, a := range apis {
		maxKey, maxVersion = max(maxKey, k), max(maxVersion, a.max)
	}
	return metrics.NewBroker(maxKey, maxVersion)
}

// logSizes lists every partition's size on disk, for creek_log_size_bytes.
func logSizes(cl *cluster.Cluster) func(func(string, int32, int64)) {
	return func(yield func(string, int32, int64)) {
		for _, t := range cl.Topics() {
			for p, l := range t.Partitions() {
				yield(t.Name(), int32(p), l.Size())
			}
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (cfg Config) settings() (map[string]string, error) {
	out := map[string]string{}
	for k, v := range cfg.Settings {
		out[k] = v
	}
	for k, v := range map[string]string{"listen": cfg.Listen, "advertised-addr": cfg.AdvertisedAddr, "data-dir": cfg.DataDir, "fsync": cfg.Fsync} {
		if v != "" {
			out[k] = v
		}
	}
	return out, nil
}

func (b *Broker) isClosing() bool {
	select {
	case <-b.closing:
		return true
	default:
		return false
	}
}

// Addr is the address the broker listens on, such as "127.0.0.1:9092"
// (its first listener's, with several; see ListenerAddr).
func (b *Broker) Addr() string { return b.listeners[0].ln.Addr().String() }

// ClusterID is the id of this single-node cluster.
func (b *Broker) ClusterID() string { return b.cluster.ID() }

// Done is closed once the broker has shut down.
func (b *Broker) Done() <-chan struct{} { return b.done }

// shutdownGrace bounds how long in-flight requests may take to finish.
const shutdownGrace = 10 * time.Second

// Close shuts down gracefully: it stops accepting connections and reading
// requests, lets in-flight requests finish and their responses go out,
// then flushes and closes every partition log.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		close(b.closing)
		for _, l := range b.listeners {
			l.ln.Close()
		}
		b.mu.Lock()
		for c := range b.conns {
			c.stopReading()
		}
		b.mu.Unlock()
		b.coordinators.close()
		finished := make(chan struct{})
		go func() { b.connsWG.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-time.After(shutdownGrace):
			b.logger.Warn("in-flight requests did not finish in time; closing their connections")
			b.mu.Lock()
			for c := range b.conns {
				c.nc.Close()
			}
			b.mu.Unlock()
			<-finished
		}
		b.closeErr = b.cluster.Close()
		b.logger.Info("broker stopped")
		close(b.done)
	})
	return b.closeErr
}

func (b *Broker) acceptLoop(l *listener) {
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			b.logger.Warn("accept failed", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if l.Protocol.TLS() {
			nc = tls.Server(nc, b.sec.tls.Config())
		}
		c := newConn(b, nc, l)
		b.mu.Lock()
		select {
		case <-b.closing:
			b.mu.Unlock()
			nc.Close()
			continue
		default:
		}
		if err := b.admit(c); err != nil {
			b.mu.Unlock()
			b.logger.Warn("connection refused", "client", nc.RemoteAddr().String(), "listener", l.Name, "reason", err)
			nc.Close()
			continue
		}
		b.conns[c] = struct{}{}
		b.connsWG.Add(1)
		b.mu.Unlock()
		if b.metrics != nil {
			b.metrics.Connected()
		}
		go c.serve()
	}
}

func (b *Broker) forget(c *conn) {
	b.shares.ConnectionClosed(c) // its share sessions' records go back to their groups
	b.mu.Lock()
	delete(b.conns, c)
	if b.connsPerIP[c.host]--; b.connsPerIP[c.host] <= 0 {
		delete(b.connsPerIP, c.host)
	}
	b.mu.Unlock()
	if b.metrics != nil {
		b.metrics.Disconnected()
	}
	b.connsWG.Done()
}
