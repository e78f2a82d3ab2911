package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Swapping a cleaning pass's segments in, and completing or forgetting an
// interrupted one at start (see cleaner.go for the file names).

func swapName(dir string, base, next int64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d-%020d%s", base, next, swapSuffix))
}

// swapIn replaces the segments of g, which must still be in the log, by
// out, whose files are written and durable under their .cleaned names. The
// rename to .swap commits the change; what follows it, recovery can finish.
func (l *Log) swapIn(g []*segment, out *segment) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errCleaningAborted
	}
	i := sort.Search(len(l.segments), func(i int) bool { return l.segments[i].base >= g[0].base })
	if i+len(g) > len(l.segments)-1 {
		return errCleaningAborted
	}
	for k, s := range g {
		if l.segments[i+k] != s {
			return errCleaningAborted // retention or DeleteRecords deleted some
		}
	}
	base, next := out.base, out.next
	swap := swapName(l.dir, base, next)
	if err := os.Rename(segmentName(l.dir, base, logSuffix)+cleanedSuffix, swap); err != nil {
		return fmt.Errorf("commit cleaned segment: %w", err)
	}
	sync := l.cfg.SyncSealedSegments
	if sync {
		syncDir(l.dir)
	}
	if crashAt("committed") {
		return errSimulatedCrash
	}
	bases := make([]int64, len(g))
	for k, s := range g {
		bases[k] = s.base
	}
	err := finishSwap(l.dir, base, bases, swap)
	if errors.Is(err, errSimulatedCrash) {
		return err
	}
	for _, s := range g {
		s.close()
	}
	// The renames after the commit need no fsync of their own: lost in a
	// crash, recovery does them again from the swap file.
	l.segments = append(append(append([]*segment(nil), l.segments[:i]...), out), l.segments[i+len(g):]...)
	if err != nil {
		// The swap is committed: the next start completes it. Until then
		// the files do not match the log, so it takes no more changes.
		l.readOnly = fmt.Errorf("partition %s is read-only: a cleaning could not finish replacing its segment files (%v); restart the broker, which completes it", filepath.Base(l.dir), err)
		l.logger.Error("cleaning could not finish swapping segment files; the partition takes no writes until the broker restarts", "err", err)
	}
	return nil
}

// finishSwap completes a committed swap: it deletes the segments it
// replaces (bases, data files first), puts the cleaned index files in
// place, and renames the swap file to the segment's data file.
func finishSwap(dir string, base int64, bases []int64, swap string) error {
	for _, b := range bases {
		if err := os.Remove(segmentName(dir, b, logSuffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if b != base {
			os.Remove(segmentName(dir, b, indexSuffix))
			os.Remove(segmentName(dir, b, timeIndexSuffix))
		}
		if crashAt("removed") {
			return errSimulatedCrash
		}
	}
	for _, suf := range []string{indexSuffix, timeIndexSuffix} {
		name := segmentName(dir, base, suf)
		if err := os.Rename(name+cleanedSuffix, name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if crashAt("indexed") {
			return errSimulatedCrash
		}
	}
	return os.Rename(swap, segmentName(dir, base, logSuffix))
}

// recoverCleaning, run before the segments are listed at open, completes
// swaps that a crash interrupted after their commit and deletes the files
// of cleanings that had not committed.
func recoverCleaning(dir string, logger *slog.Logger) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var logs []int64
	for _, e := range entries {
		if stem, ok := strings.CutSuffix(e.Name(), logSuffix); ok {
			if b, err := strconv.ParseInt(stem, 10, 64); err == nil {
				logs = append(logs, b)
			}
		}
	}
	completed := false
	for _, e := range entries {
		stem, ok := strings.CutSuffix(e.Name(), swapSuffix)
		if !ok {
			continue
		}
		from, to, ok := strings.Cut(stem, "-")
		base, err1 := strconv.ParseInt(from, 10, 64)
		next, err2 := strconv.ParseInt(to, 10, 64)
		if !ok || err1 != nil || err2 != nil || next <= base {
			continue
		}
		var replaced []int64
		for _, b := range logs {
			if b >= base && b < next {
				replaced = append(replaced, b)
			}
		}
		if err := finishSwap(dir, base, replaced, filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("complete the cleaning of offsets %d to %d that a crash interrupted: %w", base, next-1, err)
		}
		logger.Warn("completed a cleaning that a crash interrupted", "offsets_from", base, "offsets_to", next-1, "old_segments_removed", len(replaced))
		completed = true
	}
	if completed {
		syncDir(dir)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), cleanedSuffix) {
			os.Remove(filepath.Join(dir, e.Name())) // already renamed, if its swap was completed
		}
	}
	return nil
}
