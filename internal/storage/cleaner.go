package storage

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"
)

// Log compaction (cleanup.policy=compact), as Kafka's log cleaner does it.
//
// A compacted partition is a clean section, already compacted, followed by
// a dirty section written since; the active segment and what follows the
// last stable offset, or is younger than min.compaction.lag.ms, cannot be
// cleaned yet. A pass (Log.Clean) reads the dirty section into a map of key
// hashes to the highest offset of each key, then rewrites the closed
// segments from the log start up to where the map reaches, keeping a
// record only when no later record has its key. Offsets never change: a
// rewritten batch keeps its base offset and its last offset delta, so the
// next batch's offsets stay continuous, and a batch that keeps nothing
// disappears, leaving a gap that consumers skip.
//
// Tombstones (records with a null value) and transaction markers stay
// delete.retention.ms after the pass that made them clean, so that a
// consumer reading from the start sees every deletion; a marker goes only
// once its transaction has no records left. Records of aborted transactions
// go at the first pass; records without a key go too (a topic may have been
// switched from delete to compact).
//
// Segments are rewritten in groups that fit segment.bytes, so repeated
// passes merge small segments. Each group is written beside the old files
// as NNN.log.cleaned (and its indexes as NNN.index.cleaned and
// NNN.timeindex.cleaned), fsynced, then committed by one rename to
// NNN-MMM.swap, which names the range of offsets it replaces. Recovery
// (recoverCleaning) deletes uncommitted .cleaned files and completes a
// committed swap: the old segments of the range are deleted and the swap
// becomes NNN.log. A kill -9 at any moment therefore leaves either the old
// segments or the new one, never neither. Readers holding chunks of the old
// files get ErrSegmentGone and fetch again.
//
// The pass's progress and the tombstones' ages are kept in
// cleaner-checkpoint.json. Losing it costs work, never records: the whole
// log is dirty again and every tombstone starts its delete.retention.ms anew.

const (
	cleanerCheckpointFile = "cleaner-checkpoint.json"
	cleanedSuffix         = ".cleaned"
	swapSuffix            = ".swap"

	// mapSlotBytes is the memory one key takes in the offset map.
	mapSlotBytes = 24
	// mapLoadFactor is how full the open-addressing map is allowed to get.
	mapLoadFactor = 0.75
)

// CleaningStats describe one cleaning pass over a partition.
type CleaningStats struct {
	Start             time.Time `json:"start"`
	DurationMs        int64     `json:"duration_ms"`
	FirstDirty        int64     `json:"first_dirty_offset"` // the dirty section read was [FirstDirty, End)
	End               int64     `json:"end_offset"`
	Partial           bool      `json:"partial,omitempty"` // the key map was full: the rest of the dirty section waits for the next pass
	BytesRead         int64     `json:"bytes_read"`
	BytesWritten      int64     `json:"bytes_written"`
	RecordsRead       int64     `json:"records_read"`
	RecordsKept       int64     `json:"records_kept"`
	TombstonesRemoved int64     `json:"tombstones_removed"`
	SegmentsRewritten int       `json:"segments_rewritten"`
	Error             string    `json:"error,omitempty"`
}

// CleanerStatus is a compacted partition as the cleaner sees it.
type CleanerStatus struct {
	FirstDirtyOffset int64          `json:"first_dirty_offset"`
	CleanBytes       int64          `json:"clean_bytes"`
	DirtyBytes       int64          `json:"dirty_bytes"` // in the dirty section and cleanable now
	DirtyRatio       float64        `json:"dirty_ratio"` // DirtyBytes / (CleanBytes + DirtyBytes)
	Due              bool           `json:"due,omitempty"`
	Cleanable        bool           `json:"cleanable"`
	LastCleaning     *CleaningStats `json:"last_cleaning,omitempty"`
}

// tombstoneRange is a range of offsets whose tombstones and markers a pass
// found in its dirty section and kept: they may go delete.retention.ms
// after CleanedAt. Tombstones outside every range are past their time.
type tombstoneRange struct {
	From      int64 `json:"from"`
	To        int64 `json:"to"`
	CleanedAt int64 `json:"cleaned_at_ms"`
}

type cleanerCheckpoint struct {
	FirstDirty int64            `json:"first_dirty_offset"`
	Tombstones []tombstoneRange `json:"tombstone_ranges,omitempty"`
	Last       *CleaningStats   `json:"last_cleaning,omitempty"`
}

// cleanState is the Log's part of compaction, guarded by the Log's lock.
type cleanState struct {
	firstDirty int64
	tombstones []tombstoneRange
	last       *CleaningStats
	dirtyTs    int64 // first timestamp at firstDirty, for max.compaction.lag.ms; -1 unknown
	dirtyTsAt  int64 // the firstDirty dirtyTs was read for
}

func (l *Log) loadCleanState() {
	l.clean = cleanState{firstDirty: -1, dirtyTsAt: -1}
	b, err := os.ReadFile(filepath.Join(l.dir, cleanerCheckpointFile))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	var cp cleanerCheckpoint
	if err == nil {
		err = json.Unmarshal(b, &cp)
	}
	if err != nil {
		l.logger.Warn("cleaner checkpoint unreadable; the whole log is compacted again and tombstones are kept another delete.retention.ms", "file", cleanerCheckpointFile, "err", err)
		return
	}
	l.clean.firstDirty, l.clean.tombstones, l.clean.last = cp.FirstDirty, cp.Tombstones, cp.Last
}

func (l *Log) saveCleanState() error {
	l.mu.RLock()
	cp := cleanerCheckpoint{FirstDirty: l.clean.firstDirty, Tombstones: l.clean.tombstones, Last: l.clean.last}
	l.mu.RUnlock()
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(l.dir, cleanerCheckpointFile), b); err != nil {
		return fmt.Errorf("save cleaner checkpoint: %w", err)
	}
	return nil
}

// firstDirtyLocked is where the dirty section starts: the checkpoint,
// moved to the log start when retention or DeleteRecords passed it.
func (l *Log) firstDirtyLocked() int64 {
	return min(max(l.clean.firstDirty, l.start, l.segments[0].base), l.active().base)
}

// firstUncleanableLocked is the first offset a pass may not clean: the
// active segment, the last stable offset (so every transaction seen is
// decided), and the first segment with records younger than
// min.compaction.lag.ms.
func (l *Log) firstUncleanableLocked(firstDirty, nowMs int64) int64 {
	u := min(l.active().base, l.lastStableLocked())
	if lag := l.cfg.MinCompactionLagMs; lag > 0 {
		for _, s := range l.segments[:len(l.segments)-1] {
			if s.next > firstDirty && s.size > 0 && s.newestTimestamp() > nowMs-lag {
				u = min(u, max(s.base, firstDirty))
				break
			}
		}
	}
	return max(u, firstDirty)
}

// CleanerStatus reports the partition's dirty ratio, whether a pass is
// due, and the last pass.
func (l *Log) CleanerStatus() CleanerStatus {
	l.mu.Lock() // the first dirty timestamp is cached
	defer l.mu.Unlock()
	if l.closed {
		return CleanerStatus{}
	}
	nowMs := l.now().UnixMilli()
	first := l.firstDirtyLocked()
	unclean := l.firstUncleanableLocked(first, nowMs)
	st := CleanerStatus{FirstDirtyOffset: first, LastCleaning: l.clean.last}
	for _, s := range l.segments[:len(l.segments)-1] {
		switch {
		case s.next <= first:
			st.CleanBytes += s.size
		case s.base < unclean && first < unclean:
			st.DirtyBytes += s.size
		}
	}
	if total := st.CleanBytes + st.DirtyBytes; total > 0 {
		st.DirtyRatio = float64(st.DirtyBytes) / float64(total)
	}
	if st.DirtyBytes > 0 && l.cfg.MaxCompactionLagMs < math.MaxInt64 {
		if ts := l.dirtyTimestampLocked(first); ts >= 0 && nowMs-ts > l.cfg.MaxCompactionLagMs {
			st.Due = true
		}
	}
	for _, r := range l.clean.tombstones {
		if r.CleanedAt+l.cfg.DeleteRetentionMs <= nowMs && r.To > l.start {
			st.Due = true
		}
	}
	st.Cleanable = l.cfg.Compact && (st.Due || (st.DirtyBytes > 0 && st.DirtyRatio >= l.cfg.MinCleanableRatio))
	return st
}

// dirtyTimestampLocked is the first timestamp of the batch holding the
// first dirty offset (Kafka measures max.compaction.lag.ms from it).
func (l *Log) dirtyTimestampLocked(first int64) int64 {
	if l.clean.dirtyTsAt == first {
		return l.clean.dirtyTs
	}
	s := l.segments[l.segmentFor(first)]
	ts := int64(-1)
	if ref, found, err := s.locate(first, s.size); err == nil && found {
		var b [8]byte
		if _, err := s.log.ReadAt(b[:], ref.pos+posFirstTimestamp); err == nil {
			ts = int64(binary.BigEndian.Uint64(b[:]))
		}
	}
	l.clean.dirtyTs, l.clean.dirtyTsAt = ts, first
	return ts
}

// posFirstTimestamp is where a batch header holds its first timestamp.
const posFirstTimestamp = 27
