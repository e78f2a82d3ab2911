package storage

import (
	"bytes"
	"errors"
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// The cleaner's tools (see cleaner.go): one Cleaner per cleaning thread,
// its offset map, and the throttle the threads share.

// Throttle bounds the bytes per second the cleaners read and write
// together (log.cleaner.io.max.bytes.per.second).
type Throttle struct {
	rate float64 // bytes per second; <= 0 or +Inf for no limit
	mu   sync.Mutex
	due  time.Time // when the bytes counted so far may have been moved
}

// NewThrottle limits to rate bytes per second (no limit when rate is not
// finite and positive).
func NewThrottle(rate float64) *Throttle { return &Throttle{rate: rate} }

// wait blocks until n more bytes fit the rate, or abort is closed.
func (t *Throttle) wait(n int, abort, stop <-chan struct{}) {
	if t == nil || t.rate <= 0 || t.rate >= math.MaxFloat64/2 {
		return
	}
	t.mu.Lock()
	now := time.Now()
	if t.due.Before(now) {
		t.due = now
	}
	t.due = t.due.Add(time.Duration(float64(n) / t.rate * float64(time.Second)))
	sleep := time.Until(t.due) - 50*time.Millisecond // a small burst is fine
	t.mu.Unlock()
	if sleep <= 0 {
		return
	}
	timer := time.NewTimer(sleep)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-abort:
	case <-stop:
	}
}

// Cleaner holds what one cleaning thread needs: its share of the dedupe
// buffer and buffers for re-encoding batches.
type Cleaner struct {
	mapBytes int64
	throttle *Throttle
	stop     <-chan struct{}

	kept        []byte // records kept from the batch being filtered
	out         []byte // the rebuilt batch
	compressBuf bytes.Buffer
}

// NewCleaner makes a cleaner whose offset map may use up to mapBytes (its
// share of log.cleaner.dedupe.buffer.size). Closing stop aborts a pass.
func NewCleaner(mapBytes int64, throttle *Throttle, stop <-chan struct{}) *Cleaner {
	return &Cleaner{mapBytes: mapBytes, throttle: throttle, stop: stop}
}

// errCleaningAborted stops a pass that the log's close, the broker's
// shutdown, or retention deleting its segments overtook. Nothing of the
// log changed that is not complete.
var errCleaningAborted = errors.New("cleaning aborted")

// offsetMap maps 128-bit key hashes to the highest offset of each key, in
// memory fixed when it is made: once it holds its limit of keys, put
// refuses new ones. Two keys with the same 128-bit hash would be taken for
// one; the odds of that among billions of keys are below 1 in 10^18.
type offsetMap struct {
	seed1, seed2 maphash.Seed
	slots        []mapSlot
	count        int
	limit        int
}

type mapSlot struct {
	h1, h2 uint64
	offset int64 // offset+1: 0 marks an empty slot
}

// newOffsetMap makes a map of at most maxBytes, and no larger than maxKeys
// need.
func newOffsetMap(maxBytes int64, maxKeys int64) *offsetMap {
	n := max(min(maxBytes/mapSlotBytes, int64(float64(maxKeys)/mapLoadFactor)+1), 2)
	return &offsetMap{seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed(), slots: make([]mapSlot, n), limit: max(int(float64(n)*mapLoadFactor), 1)}
}

func (m *offsetMap) hash(key []byte) (uint64, uint64) {
	return maphash.Bytes(m.seed1, key), maphash.Bytes(m.seed2, key)
}

// put records offset for key; false when the key is new and the map full.
func (m *offsetMap) put(key []byte, offset int64) bool {
	h1, h2 := m.hash(key)
	n := uint64(len(m.slots))
	for i := h1 % n; ; i = (i + 1) % n {
		s := &m.slots[i]
		if s.offset == 0 {
			if m.count >= m.limit {
				return false
			}
			*s = mapSlot{h1: h1, h2: h2, offset: offset + 1}
			m.count++
			return true
		}
		if s.h1 == h1 && s.h2 == h2 {
			s.offset = max(s.offset, offset+1)
			return true
		}
	}
}

// get returns the highest offset of key, or -1.
func (m *offsetMap) get(key []byte) int64 {
	h1, h2 := m.hash(key)
	n := uint64(len(m.slots))
	for i := h1 % n; ; i = (i + 1) % n {
		s := &m.slots[i]
		if s.offset == 0 {
			return -1
		}
		if s.h1 == h1 && s.h2 == h2 {
			return s.offset - 1
		}
	}
}
