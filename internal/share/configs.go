package share

import (
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/config"
	"github.com/creek-pipeline/creek/internal/storage"
)

// ---- group configs ----

// AutoOffsetReset is the group config that says where a share group starts
// reading a partition it has no state for: latest (the default), earliest,
// or by_duration:<ISO 8601 duration>.
const AutoOffsetReset = "share.auto.offset.reset"

// SetGroupConfig sets (or, with value nil, deletes) a group config of any
// group kind; the coordinator keeps them all (see GroupConfigs).
func (c *Coordinator) SetGroupConfig(group, name string, value *string, validateOnly bool) error {
	if value != nil {
		v, err := config.ValidateGroupConfig(name, *value)
		if err != nil {
			return fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
		}
		value = &v
	} else if _, ok := config.GroupConfigs.Topic(name); !ok {
		return fmt.Errorf("%w: unknown group config name: %s", kerr.InvalidConfig, name)
	}
	if group == "" || len(group) > MaxNameBytes {
		return fmt.Errorf("%w: the group name is empty or longer than %d bytes", kerr.InvalidGroupID, MaxNameBytes)
	}
	if validateOnly {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	next := map[string]string{}
	for k, v := range c.configs[group] {
		next[k] = v
	}
	if value == nil {
		delete(next, name)
	} else {
		next[name] = *value
	}
	if err := c.store.SaveGroupConfig(group, next); err != nil {
		return fmt.Errorf("%w: %v", kerr.KafkaStorageError, err)
	}
	c.configs[group] = next
	c.applyGroupConfigs(group)
	return nil
}

// A group's own configs (KIP-932's share.*, set with IncrementalAlterConfigs
// on a GROUP resource) take the place of the broker's settings for that
// group: its lock duration, session timeout, heartbeat interval, delivery
// count limit, in-flight record bound and isolation level. The coordinator
// also keeps the other groups' configs (consumer.*), which the group
// coordinator reads through GroupConfigs.

// groupCfg is the settings a group runs with; c.mu is held.
func (c *Coordinator) groupCfg(group string) *Config {
	if gc := c.effective[group]; gc != nil {
		return gc
	}
	return &c.cfg
}

// applyGroupConfigs recomputes a group's settings from its configs (already
// validated); c.mu is held or the coordinator is not yet shared.
func (c *Coordinator) applyGroupConfigs(group string) {
	if c.effective == nil {
		c.effective = map[string]*Config{}
	}
	set := c.configs[group]
	if len(set) == 0 {
		delete(c.effective, group)
		return
	}
	gc := c.cfg
	num := func(name string) (int64, bool) {
		v, ok := set[name]
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	if n, ok := num("share.record.lock.duration.ms"); ok {
		gc.LockDuration = time.Duration(n) * time.Millisecond
	}
	if n, ok := num("share.session.timeout.ms"); ok {
		gc.SessionTimeout = time.Duration(n) * time.Millisecond
	}
	if n, ok := num("share.heartbeat.interval.ms"); ok {
		gc.HeartbeatInterval = time.Duration(n) * time.Millisecond
	}
	if n, ok := num("share.delivery.count.limit"); ok {
		gc.DeliveryLimit = int16(n)
	}
	if n, ok := num("share.partition.max.record.locks"); ok {
		gc.MaxRecordLocks = n
	}
	gc.ReadCommitted = set["share.isolation.level"] == "read_committed"
	c.effective[group] = &gc
}

// resetOffset is where a share group starts a partition it has no state
// for, by its share.auto.offset.reset: the log start (earliest), the first
// record not older than a duration (by_duration:PT1H), or the end.
func (c *Coordinator) resetOffset(reset string, l *storage.Log, first, end int64) int64 {
	switch {
	case reset == "earliest":
		return first
	case strings.HasPrefix(reset, "by_duration:"):
		d, ok := isoDuration(strings.TrimPrefix(reset, "by_duration:"))
		if !ok {
			return end
		}
		if off, _, err := l.OffsetForTimestamp(c.clock.Now().Add(-d).UnixMilli()); err == nil && off >= 0 {
			return max(off, first)
		}
	}
	return end
}

// isoDuration reads the ISO 8601 durations share.auto.offset.reset takes
// (PnDTnHnMn.nS; validated by the config package).
func isoDuration(v string) (time.Duration, bool) {
	m := isoDurationRE.FindStringSubmatch(v)
	if m == nil {
		return 0, false
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second} {
		if m[i+1] == "" {
			continue
		}
		f, err := strconv.ParseFloat(m[i+1], 64)
		if err != nil {
			return 0, false
		}
		d += time.Duration(f * float64(unit))
	}
	return d, true
}

var isoDurationRE = regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// GroupConfigs returns the configs set on a group (of any kind).
func (c *Coordinator) GroupConfigs(group string) map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.configs[group])
}

// archiveAborted marks the records of aborted transactions in data (the
// batches a read_committed fetch is about to acquire from) as archived, so
// that they are never delivered, as Kafka does for read_committed share
// groups.
func (sp *sharePartition) archiveAborted(data []byte, aborted []storage.AbortedTxn, maxInflight int64) {
	if len(aborted) == 0 {
		return
	}
	for len(data) > 0 {
		size, last, ok := batchHeader(data)
		if !ok {
			return
		}
		var rb kmsg.RecordBatch
		if rb.ReadFrom(data[:size]) != nil {
			return
		}
		data = data[size:]
		if rb.Attributes&0x10 == 0 || rb.Attributes&0x20 != 0 { // not transactional data
			continue
		}
		for _, a := range aborted {
			if a.ProducerID == rb.ProducerID && a.FirstOffset <= rb.FirstOffset && rb.FirstOffset <= a.LastOffset {
				sp.archive(rb.FirstOffset, last, maxInflight)
				break
			}
		}
	}
}

// archive marks the available records in [first, last] archived, tracking
// offsets up to maxInflight records past the start.
func (sp *sharePartition) archive(first, last int64, maxInflight int64) {
	for sp.end() <= last && sp.end()-sp.start < maxInflight {
		sp.inflight = append(sp.inflight, record{})
	}
	for off := max(first, sp.start); off <= last && off < sp.end(); off++ {
		if r := sp.at(off); r.state == available {
			r.state = archived
		}
	}
}
