// Package cluster owns the broker's state: the topics with their configs and
// partition logs, the metadata store, producer ids, and the background work
// (retention, background fsync, the log cleaner's threads). The protocol handlers in package broker
// ask it questions; it knows nothing of the wire format.
package cluster

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/creek-pipeline/creek/internal/config"
	"github.com/creek-pipeline/creek/internal/guard"
	"github.com/creek-pipeline/creek/internal/storage"
)

// Options configure a Cluster.
type Options struct {
	DataDir string
	Broker  *config.BrokerValues
	Fsync   config.FsyncPolicy
	Logger  *slog.Logger
	OnSync  func(time.Duration) // told the duration of every partition fsync; may be nil
}

// Cluster is the state of a single-node Kafka cluster.
type Cluster struct {
	opts     Options
	logger   *slog.Logger
	store    *store
	id       string
	security *Security

	mu     sync.RWMutex
	topics map[string]*Topic
	byID   map[[16]byte]*Topic

	stop chan struct{}
	wg   sync.WaitGroup

	cleaning cleaning // the log cleaner's threads (cleaner.go)
}

// Open opens the data dir, loads every topic and recovers its partitions,
// and starts the retention and flush loops.
func Open(opts Options) (*Cluster, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create data dir %s: %w (choose a folder you can write with --data-dir)", opts.DataDir, err)
	}
	if err := checkWritable(opts.DataDir); err != nil {
		return nil, err
	}
	st, created, err := openStore(opts.DataDir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		opts:   opts,
		logger: opts.Logger,
		store:  st,
		id:     st.clusterID(),
		topics: map[string]*Topic{},
		byID:   map[[16]byte]*Topic{},
		stop:   make(chan struct{}),
	}
	if c.security, err = newSecurity(st.db); err != nil {
		st.close()
		return nil, err
	}
	if err := c.load(created); err != nil {
		c.closeLogs()
		st.close()
		return nil, err
	}
	c.wg.Add(1)
	go c.backgroundLoop()
	c.startCleaners()
	return c, nil
}

func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("data dir %s is not writable: %w (choose a folder you can write with --data-dir)", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// partitionDirPattern matches Kafka-style partition directory names.
var partitionDirPattern = regexp.MustCompile(`^(.+)-(\d+)$`)

const deletedSuffix = ".deleted"

func (c *Cluster) load(storeCreated bool) error {
	entries, err := os.ReadDir(c.opts.DataDir)
	if err != nil {
		return err
	}
	onDisk := map[string]int32{} // topic -> partition dirs found
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if strings.HasSuffix(e.Name(), deletedSuffix) { // a topic deletion that a crash interrupted
			os.RemoveAll(filepath.Join(c.opts.DataDir, e.Name()))
			continue
		}
		if m := partitionDirPattern.FindStringSubmatch(e.Name()); m != nil && validTopicName(m[1]) == nil {
			p, _ := strconv.Atoi(m[2])
			onDisk[m[1]] = max(onDisk[m[1]], int32(p)+1)
		}
	}
	records, err := c.store.topics()
	if err != nil {
		return err
	}
	if storeCreated && len(records) == 0 && len(onDisk) > 0 {
		// The metadata store is new but partition data exists (meta.db was
		// removed): adopt the data rather than ignore it.
		for name, n := range onDisk {
			c.logger.Warn("metadata store was missing; re-registering topic found on disk with default configs", "topic", name, "partitions", n)
			r := topicRecord{Name: name, ID: newTopicID(), Partitions: n, Created: time.Now()}
			if err := c.store.putTopic(r); err != nil {
				return err
			}
			records = append(records, r)
		}
	}
	start := time.Now()
	for _, r := range records {
		t := &Topic{c: c, name: r.Name, id: r.ID, configs: r.Configs, created: r.Created}
		if t.configs == nil {
			t.configs = map[string]string{}
		}
		for p := int32(0); p < r.Partitions; p++ {
			l, err := storage.Open(c.partitionDir(r.Name, p), c.logConfig(t.configs), storage.Options{Logger: c.logger, OnSync: c.opts.OnSync})
			if err != nil {
				return err
			}
			t.partitions = append(t.partitions, l)
		}
		c.topics[t.name] = t
		c.byID[t.id] = t
		delete(onDisk, r.Name)
	}
	for name := range onDisk {
		c.logger.Warn("ignoring partition directories of a topic the metadata store does not know", "topic", name, "dir", c.opts.DataDir)
	}
	c.logger.Info("data dir loaded", "dir", c.opts.DataDir, "topics", len(records), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (c *Cluster) partitionDir(topic string, p int32) string {
	return filepath.Join(c.opts.DataDir, fmt.Sprintf("%s-%d", topic, p))
}

func newTopicID() [16]byte {
	var id [16]byte
	for id == ([16]byte{}) {
		rand.Read(id[:])
	}
	return id
}

// ID is the cluster id, generated when the data dir was first used.
func (c *Cluster) ID() string { return c.id }

// Broker returns the broker settings.
func (c *Cluster) Broker() *config.BrokerValues { return c.opts.Broker }

// DataDir is the data directory.
func (c *Cluster) DataDir() string { return c.opts.DataDir }

// Fsync is the fsync policy.
func (c *Cluster) Fsync() config.FsyncPolicy { return c.opts.Fsync }

// logConfig resolves a topic's effective storage configuration.
func (c *Cluster) logConfig(overrides map[string]string) storage.Config {
	b := c.opts.Broker
	get := func(name string) int64 { return config.TopicInt64(name, overrides, b) }
	cfg := storage.DefaultConfig()
	cfg.SegmentBytes = get("segment.bytes")
	cfg.SegmentMs = get("segment.ms")
	cfg.RetentionBytes = get("retention.bytes")
	cfg.RetentionMs = get("retention.ms")
	cfg.IndexIntervalBytes = get("index.interval.bytes")
	cfg.MaxMessageBytes = get("max.message.bytes")
	cfg.LogAppendTime = config.TopicString("message.timestamp.type", overrides, b) == "LogAppendTime"
	cfg.Delete, cfg.Compact = config.CleanupPolicy(config.TopicString("cleanup.policy", overrides, b))
	cfg.MinCleanableRatio = config.TopicFloat64("min.cleanable.dirty.ratio", overrides, b)
	cfg.MinCompactionLagMs = get("min.compaction.lag.ms")
	cfg.MaxCompactionLagMs = get("max.compaction.lag.ms")
	cfg.DeleteRetentionMs = get("delete.retention.ms")
	cfg.Compression = config.TopicString("compression.type", overrides, b)
	switch cfg.Compression {
	case "gzip":
		cfg.CompressionLevel = int(get("compression.gzip.level"))
	case "lz4":
		cfg.CompressionLevel = int(get("compression.lz4.level"))
	case "zstd":
		cfg.CompressionLevel = int(get("compression.zstd.level"))
	}
	if cfg.CompressionLevel == -1 {
		cfg.CompressionLevel = 0 // gzip's -1: the codec's default
	}
	cfg.TimestampBeforeMaxMs = get("message.timestamp.before.max.ms")
	cfg.TimestampAfterMaxMs = get("message.timestamp.after.max.ms")
	cfg.ProducerExpirationMs = b.Int64("producer.id.expiration.ms")
	cfg.SyncSealedSegments = c.opts.Fsync.Mode != "never"
	return cfg
}

// backgroundLoop enforces retention every log.retention.check.interval.ms
// and fsyncs data that producers did not wait for.
func (c *Cluster) backgroundLoop() {
	defer c.wg.Done()
	retention := time.NewTicker(time.Duration(c.opts.Broker.Int64("log.retention.check.interval.ms")) * time.Millisecond)
	defer retention.Stop()
	var flushC <-chan time.Time
	switch c.opts.Fsync.Mode {
	case "acks", "always":
		t := time.NewTicker(time.Duration(c.opts.Broker.Int64("log.flush.interval.ms")) * time.Millisecond)
		defer t.Stop()
		flushC = t.C
	case "interval":
		t := time.NewTicker(c.opts.Fsync.Interval)
		defer t.Stop()
		flushC = t.C
	}
	for {
		select {
		case <-c.stop:
			return
		case <-retention.C:
			guard.Run(c.logger, "retention", c.enforceRetention)
		case <-flushC:
			guard.Run(c.logger, "background fsync", c.syncUnsynced)
		}
	}
}

// enforceRetention deletes what retention.bytes and retention.ms allow.
func (c *Cluster) enforceRetention() {
	for _, l := range c.allLogs() {
		if _, err := l.EnforceRetention(); err != nil {
			c.logger.Warn("retention failed", "partition", filepath.Base(l.Dir()), "err", err)
		}
	}
}

// syncUnsynced fsyncs every partition with unsynced appends.
func (c *Cluster) syncUnsynced() {
	for _, l := range c.allLogs() {
		if l.Unsynced() {
			_, end := l.Offsets()
			if err := l.Sync(end); err != nil && !errors.Is(err, storage.ErrClosed) {
				c.logger.Error("background fsync failed", "partition", filepath.Base(l.Dir()), "err", err)
			}
		}
	}
}

func (c *Cluster) allLogs() []*storage.Log {
	var out []*storage.Log
	for _, t := range c.Topics() {
		out = append(out, t.Partitions()...)
	}
	return out
}

// Close stops background work and closes every log cleanly.
func (c *Cluster) Close() error {
	close(c.stop)
	c.wg.Wait()
	err := c.closeLogs()
	return errors.Join(err, c.store.close())
}

func (c *Cluster) closeLogs() error {
	var errs []error
	for _, l := range c.allLogs() {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}

// NextProducerID hands out a new producer id (InitProducerId).
func (c *Cluster) NextProducerID() (int64, error) {
	return c.store.nextProducerIDs(1)
}

// Topics returns every topic, sorted by name.
func (c *Cluster) Topics() []*Topic {
	c.mu.RLock()
	out := make([]*Topic, 0, len(c.topics))
	for _, t := range c.topics {
		out = append(out, t)
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// Topic looks a topic up by name.
func (c *Cluster) Topic(name string) (*Topic, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.topics[name]
	return t, ok
}

// TopicByID looks a topic up by its id.
func (c *Cluster) TopicByID(id [16]byte) (*Topic, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.byID[id]
	return t, ok
}
