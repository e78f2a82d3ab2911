package cluster

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/creek-pipeline/creek/internal/config"
	"github.com/creek-pipeline/creek/internal/storage"
)

// The log cleaner: log.cleaner.threads goroutines, each cleaning the
// dirtiest compacted partition that is due (storage.Log.Clean), or
// sleeping log.cleaner.backoff.ms when none is. They share
// log.cleaner.dedupe.buffer.size and one log.cleaner.io.max.bytes.per.second
// throttle, and run at the lowest CPU and I/O priority the system offers,
// so that producers and consumers come first.

// cleanerRetryAfterFailure is how long a partition whose cleaning failed
// (a corrupt batch, a full disk) is left alone before it is tried again.
const cleanerRetryAfterFailure = 10 * time.Minute

type cleaning struct {
	mu     sync.Mutex
	busy   map[*storage.Log]bool
	failed map[*storage.Log]time.Time
}

func (c *Cluster) startCleaners() {
	b := c.opts.Broker
	threads := int(b.Int64("log.cleaner.threads"))
	if !b.Bool("log.cleaner.enable") || threads == 0 {
		return
	}
	c.cleaning = cleaning{busy: map[*storage.Log]bool{}, failed: map[*storage.Log]time.Time{}}
	throttle := storage.NewThrottle(b.Float64("log.cleaner.io.max.bytes.per.second"))
	mapBytes := b.Int64("log.cleaner.dedupe.buffer.size") / int64(threads)
	backoff := time.Duration(b.Int64("log.cleaner.backoff.ms")) * time.Millisecond
	for range threads {
		c.wg.Add(1)
		go c.cleanerThread(storage.NewCleaner(mapBytes, throttle, c.stop), backoff)
	}
}

func (c *Cluster) cleanerThread(cl *storage.Cleaner, backoff time.Duration) {
	defer c.wg.Done()
	// The thread stays locked to this goroutine while its priority is
	// lowered, so it never passes to other work. At the end the priority is
	// put back and the thread returned to Go; only where that is not
	// allowed does the thread end with the goroutine. An ended thread
	// would take with it any child process started from it with
	// Pdeathsig (a test's servers, in a program that embeds the broker).
	runtime.LockOSThread()
	restore, err := lowerThreadPriority()
	if err != nil {
		c.logger.Debug("log cleaner runs at normal priority", "err", err)
	}
	defer func() {
		if restore() == nil {
			runtime.UnlockOSThread()
		}
	}()
	for {
		var stats *storage.CleaningStats
		if l := c.grabDirtiest(); l != nil {
			var err error
			stats, err = l.Clean(cl)
			c.doneCleaning(l, stats, err)
		}
		if stats != nil {
			continue // there may be more to do at once
		}
		select { // nothing was due, or the pass found nothing to do
		case <-c.stop:
			return
		case <-time.After(backoff):
		}
	}
}

// grabDirtiest picks the compacted partition most in need of cleaning:
// first those past max.compaction.lag.ms or with tombstones due, then the
// highest dirty ratio at or above min.cleanable.dirty.ratio.
func (c *Cluster) grabDirtiest() *storage.Log {
	select {
	case <-c.stop:
		return nil
	default:
	}
	var best *storage.Log
	var bestSt storage.CleanerStatus
	c.cleaning.mu.Lock()
	defer c.cleaning.mu.Unlock()
	for _, l := range c.allLogs() {
		if !l.Compacted() || c.cleaning.busy[l] || time.Since(c.cleaning.failed[l]) < cleanerRetryAfterFailure {
			continue
		}
		st := l.CleanerStatus()
		if !st.Cleanable {
			continue
		}
		if best == nil || (st.Due && !bestSt.Due) || (st.Due == bestSt.Due && st.DirtyRatio > bestSt.DirtyRatio) {
			best, bestSt = l, st
		}
	}
	if best != nil {
		c.cleaning.busy[best] = true
	}
	return best
}

func (c *Cluster) doneCleaning(l *storage.Log, stats *storage.CleaningStats, err error) {
	c.cleaning.mu.Lock()
	delete(c.cleaning.busy, l)
	if err != nil {
		c.cleaning.failed[l] = time.Now()
	} else {
		delete(c.cleaning.failed, l)
	}
	c.cleaning.mu.Unlock()
	name := filepath.Base(l.Dir())
	if err != nil {
		if !errors.Is(err, storage.ErrClosed) {
			c.logger.Error("log cleaning failed; the partition is tried again later", "partition", name, "retry_in", cleanerRetryAfterFailure, "err", err)
		}
		return
	}
	if stats == nil {
		return
	}
	secs := math.Max(float64(stats.DurationMs)/1000, 0.001)
	c.logger.Info("log cleaned", "partition", name,
		"dirty_section", fmt.Sprintf("[%d, %d)", stats.FirstDirty, stats.End),
		"read_mb", mb(stats.BytesRead), "written_mb", mb(stats.BytesWritten),
		"records_read", stats.RecordsRead, "records_kept", stats.RecordsKept, "tombstones_removed", stats.TombstonesRemoved,
		"segments", stats.SegmentsRewritten, "took", time.Duration(stats.DurationMs)*time.Millisecond,
		"mb_per_s", fmt.Sprintf("%.1f", float64(stats.BytesRead)/(1<<20)/secs))
}

func mb(n int64) string { return fmt.Sprintf("%.2f", float64(n)/(1<<20)) }

// checkCompactionLags refuses a min.compaction.lag.ms above
// max.compaction.lag.ms, as Kafka does.
func (c *Cluster) checkCompactionLags(overrides map[string]string) error {
	b := c.opts.Broker
	minLag := config.TopicInt64("min.compaction.lag.ms", overrides, b)
	maxLag := config.TopicInt64("max.compaction.lag.ms", overrides, b)
	if minLag > maxLag {
		return fmt.Errorf("%w: min.compaction.lag.ms (%d) is greater than max.compaction.lag.ms (%d)", ErrInvalidConfig, minLag, maxLag)
	}
	return nil
}
