package cluster

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/creek-pipeline/creek/internal/config"
	"github.com/creek-pipeline/creek/internal/storage"
)

// Errors of topic administration; package broker maps them to Kafka codes.
var (
	ErrTopicExists        = errors.New("topic already exists") // topicExistsError names the topic
	ErrUnknownTopic       = errors.New("unknown topic")
	ErrInvalidTopic       = errors.New("invalid topic name")
	ErrInvalidPartitions  = errors.New("invalid number of partitions")
	ErrInvalidReplication = errors.New("invalid replication factor")
	ErrInvalidConfig      = errors.New("invalid config")
	ErrDeleteDisabled     = errors.New("topic deletion is disabled (delete.topic.enable=false)")
)

// MaxPartitions bounds a topic's partition count: each partition holds open
// files, and one node serving more is a configuration mistake.
const MaxPartitions = 10000

// Topic is a topic and its partition logs.
type Topic struct {
	c       *Cluster
	name    string
	id      [16]byte
	created time.Time

	mu         sync.RWMutex
	partitions []*storage.Log
	configs    map[string]string // overrides only
}

// Name is the topic's name.
func (t *Topic) Name() string { return t.name }

// ID is the topic's id (KIP-516).
func (t *Topic) ID() [16]byte { return t.id }

// Partitions returns the partition logs.
func (t *Topic) Partitions() []*storage.Log {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return append([]*storage.Log(nil), t.partitions...)
}

// NumPartitions is the partition count.
func (t *Topic) NumPartitions() int32 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return int32(len(t.partitions))
}

// Partition returns one partition's log, or nil when p is out of range.
func (t *Topic) Partition(p int32) *storage.Log {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if p < 0 || int(p) >= len(t.partitions) {
		return nil
	}
	return t.partitions[p]
}

// Configs returns a copy of the topic's config overrides.
func (t *Topic) Configs() map[string]string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return maps.Clone(t.configs)
}

// MinInsyncReplicas is the topic's effective min.insync.replicas.
func (t *Topic) MinInsyncReplicas() int64 {
	return config.TopicInt64("min.insync.replicas", t.Configs(), t.c.opts.Broker)
}

func (t *Topic) record() topicRecord {
	return topicRecord{Name: t.name, ID: t.id, Partitions: int32(len(t.partitions)), Configs: t.configs, Created: t.created}
}

// validTopicName applies Kafka's rules: 1-249 characters of [a-zA-Z0-9._-],
// and not "." or "..".
func validTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the name is empty", ErrInvalidTopic)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q is not allowed", ErrInvalidTopic, name)
	case len(name) > 249:
		return fmt.Errorf("%w: %d characters, at most 249 are allowed", ErrInvalidTopic, len(name))
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%w: %q contains %q; use only ASCII letters, digits, '.', '_' and '-'", ErrInvalidTopic, name, r)
		}
	}
	return nil
}

// ValidateTopicName reports whether a topic name is legal.
func ValidateTopicName(name string) error { return validTopicName(name) }

// CreateTopic creates a topic. partitions -1 means num.partitions;
// replication must be -1 or 1 on one node. With validateOnly nothing changes.
func (c *Cluster) CreateTopic(name string, partitions int32, replication int16, configs map[string]string, validateOnly bool) (*Topic, error) {
	if err := validTopicName(name); err != nil {
		return nil, err
	}
	if partitions == -1 {
		partitions = int32(c.opts.Broker.Int64("num.partitions"))
	}
	if partitions <= 0 || partitions > MaxPartitions {
		return nil, fmt.Errorf("%w: %d (want 1 to %d)", ErrInvalidPartitions, partitions, MaxPartitions)
	}
	if replication != -1 && replication != 1 {
		return nil, fmt.Errorf("%w: %d is larger than the 1 broker available; creek is a single node, use 1", ErrInvalidReplication, replication)
	}
	configs, err := config.ValidateTopicConfigs(configs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if err := c.checkCompactionLags(configs); err != nil {
		return nil, err
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.topics[name]; ok {
		return nil, topicExistsError(name)
	}
	if clash := c.collidingTopic(name); clash != "" {
		return nil, fmt.Errorf("%w: %q collides with existing topic %q ('.' and '_' are interchangeable in metric names)", ErrInvalidTopic, name, clash)
	}
	if err := checkOpenFiles(int(partitions)); err != nil {
		return nil, err
	}
	if validateOnly {
		return nil, nil
	}
	t := &Topic{c: c, name: name, id: newTopicID(), configs: configs, created: time.Now()}
	for p := int32(0); p < partitions; p++ {
		dir := c.partitionDir(name, p)
		os.RemoveAll(dir) // leftovers of an earlier topic of the same name
		l, err := storage.Open(dir, c.logConfig(configs), storage.Options{Logger: c.logger, OnSync: c.opts.OnSync})
		if err != nil {
			for _, l := range t.partitions {
				l.Remove()
			}
			return nil, err
		}
		t.partitions = append(t.partitions, l)
	}
	if err := c.store.putTopic(t.record()); err != nil {
		for _, l := range t.partitions {
			l.Remove()
		}
		return nil, fmt.Errorf("persist topic %s: %w", name, err)
	}
	c.topics[name] = t
	c.byID[t.id] = t
	c.logger.Info("topic created", "topic", name, "partitions", partitions, "configs", configs)
	return t, nil
}

// collidingTopic returns an existing topic whose name equals name once '.'
// is read as '_' (Kafka refuses such pairs).
func (c *Cluster) collidingTopic(name string) string {
	norm := strings.ReplaceAll(name, ".", "_")
	for other := range c.topics {
		if other != name && strings.ReplaceAll(other, ".", "_") == norm {
			return other
		}
	}
	return ""
}

// DeleteTopic deletes a topic and its data.
func (c *Cluster) DeleteTopic(name string) error {
	if !c.opts.Broker.Bool("delete.topic.enable") {
		return ErrDeleteDisabled
	}
	c.mu.Lock()
	t, ok := c.topics[name]
	if !ok {
		c.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	delete(c.topics, name)
	delete(c.byID, t.id)
	c.mu.Unlock()

	// Rename first so that a crash midway leaves only *.deleted directories,
	// which the next start removes.
	t.mu.Lock()
	defer t.mu.Unlock()
	var dirs []string
	for p, l := range t.partitions {
		l.Close()
		dir := c.partitionDir(name, int32(p))
		gone := fmt.Sprintf("%s.%x%s", dir, t.id[:4], deletedSuffix)
		if err := os.Rename(dir, gone); err != nil && !os.IsNotExist(err) {
			c.logger.Warn("could not rename deleted partition", "dir", dir, "err", err)
			gone = dir
		}
		dirs = append(dirs, gone)
	}
	if err := c.store.deleteTopic(name); err != nil {
		return fmt.Errorf("persist topic deletion: %w", err)
	}
	for _, d := range dirs {
		os.RemoveAll(d)
	}
	c.logger.Info("topic deleted", "topic", name)
	return nil
}

// AddPartitions grows a topic to total partitions.
func (c *Cluster) AddPartitions(name string, total int32, validateOnly bool) error {
	t, ok := c.Topic(name)
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	have := int32(len(t.partitions))
	switch {
	case total < have:
		return fmt.Errorf("%w: topic %s has %d partitions; the count can only grow", ErrInvalidPartitions, name, have)
	case total == have:
		return fmt.Errorf("%w: topic %s already has %d partitions", ErrInvalidPartitions, name, have)
	case total > MaxPartitions:
		return fmt.Errorf("%w: %d is more than %d", ErrInvalidPartitions, total, MaxPartitions)
	}
	if err := checkOpenFiles(int(total - have)); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	added := t.partitions
	for p := have; p < total; p++ {
		dir := c.partitionDir(name, p)
		os.RemoveAll(dir)
		l, err := storage.Open(dir, c.logConfig(t.configs), storage.Options{Logger: c.logger, OnSync: c.opts.OnSync})
		if err != nil {
			for _, l := range added[have:] {
				l.Remove()
			}
			return err
		}
		added = append(added, l)
	}
	rec := t.record()
	rec.Partitions = total
	if err := c.store.putTopic(rec); err != nil {
		for _, l := range added[have:] {
			l.Remove()
		}
		return fmt.Errorf("persist partitions: %w", err)
	}
	t.partitions = added
	c.logger.Info("partitions added", "topic", name, "partitions", total)
	return nil
}

// SetTopicConfigs replaces a topic's config overrides and applies them to
// its partitions.
func (c *Cluster) SetTopicConfigs(name string, overrides map[string]string, validateOnly bool) error {
	t, ok := c.Topic(name)
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	overrides, err := config.ValidateTopicConfigs(overrides)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if err := c.checkCompactionLags(overrides); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	rec := t.record()
	rec.Configs = overrides
	if err := c.store.putTopic(rec); err != nil {
		return fmt.Errorf("persist configs: %w", err)
	}
	t.configs = overrides
	cfg := c.logConfig(overrides)
	for _, l := range t.partitions {
		l.SetConfig(cfg)
	}
	c.logger.Info("topic configs changed", "topic", name, "configs", overrides)
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// topicExistsError is ErrTopicExists for one topic, worded as Kafka words
// it (kafka-topics prints this message).
type topicExistsError string

func (e topicExistsError) Error() string        { return fmt.Sprintf("Topic '%s' already exists.", string(e)) }
func (e topicExistsError) Is(target error) bool { return target == ErrTopicExists }
