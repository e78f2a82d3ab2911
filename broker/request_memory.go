package broker

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// The memory that requests take, across every connection.
//
// queued.max.request.bytes is a budget for the bytes of requests being read
// or handled. A connection's reader takes its request's size from the
// budget before it reads the body and gives it back once the handler's
// immediate part is done. While the budget is spent, readers wait before
// reading their next body, and their clients' bytes stay in the kernel's
// socket buffers: this is how Kafka mutes connections when its memory pool
// is empty. As in Kafka, a request is let in whenever anything at all is
// left, so it may overdraw the budget, and one request larger than the
// whole budget still gets through.
//
// Produce bodies, the large ones, go back to a pool shared by every
// connection once their records are in the log. The next request of any
// connection reuses them, and the garbage collector empties the pool. An
// idle connection therefore holds no request buffer.

// requestBudget is queued.max.request.bytes. With no limit (-1, the
// default, as in Kafka: sizes are only announced, so a bounded budget lets
// a few clients that announce large requests and send them slowly stall
// every other client) it still counts what is taken, for the metrics.
type requestBudget struct {
	limit int64 // <= 0: no limit
	used  atomic.Int64

	mu    sync.Mutex    // with a limit: taking, and waking the waiters
	freed chan struct{} // closed when bytes are given back; nil while no reader waits
}

func newRequestBudget(limit int64) *requestBudget { return &requestBudget{limit: limit} }

// take waits until anything is left in the budget, then takes n bytes. It
// returns false if stop is closed first.
func (rb *requestBudget) take(n int64, stop <-chan struct{}) bool {
	if rb.limit <= 0 {
		rb.used.Add(n)
		return true
	}
	for {
		rb.mu.Lock()
		if rb.used.Load() < rb.limit {
			rb.used.Add(n)
			rb.mu.Unlock()
			return true
		}
		if rb.freed == nil {
			rb.freed = make(chan struct{})
		}
		freed := rb.freed
		rb.mu.Unlock()
		select {
		case <-freed:
		case <-stop:
			return false
		}
	}
}

// give returns n bytes to the budget and wakes the readers waiting for it.
func (rb *requestBudget) give(n int64) {
	rb.used.Add(-n)
	if rb.limit <= 0 {
		return
	}
	rb.mu.Lock()
	if rb.freed != nil {
		close(rb.freed)
		rb.freed = nil
	}
	rb.mu.Unlock()
}

// inUse is the bytes taken now (for the metrics).
func (rb *requestBudget) inUse() int64 { return rb.used.Load() }

// Pooled request bodies have capacities of powers of two, from
// 1<<minBodyShift (64 KiB) to 1<<maxBodyShift (16 MiB).
const (
	minBodyShift  = 16
	maxBodyShift  = 24
	minPooledBody = 1 << minBodyShift
	maxPooledBody = 1 << maxBodyShift
)

var bodyPools [maxBodyShift - minBodyShift + 1]sync.Pool

// bodyClass is the pool of bodies with room for size bytes, or -1 for a
// body too small to pool (most requests but Produce: they would take a
// pooled buffer each and never give it back) or too large.
func bodyClass(size int) int {
	if size < minPooledBody || size > maxPooledBody {
		return -1
	}
	return bits.Len(uint(size-1)) - minBodyShift
}

// pooledCapacity is the capacity to give a new body of size bytes: that of
// its pool's class, or size itself for one that is not pooled.
func pooledCapacity(size int) int {
	if class := bodyClass(size); class >= 0 {
		return minPooledBody << class
	}
	return size
}

// pooledBody returns a buffer with room for size bytes if the pool has one
// (empty, with the capacity of its class), or nil.
func pooledBody(size int) []byte {
	class := bodyClass(size)
	if class < 0 {
		return nil
	}
	if p, ok := bodyPools[class].Get().(*[]byte); ok {
		return *p
	}
	return nil
}

// recycleBody gives a body whose request is done to the pool of the largest
// class it has room for. (A body grown to a class's capacity may have been
// given more by append's rounding.)
func recycleBody(b []byte) {
	if cap(b) < minPooledBody || cap(b) >= 2*maxPooledBody {
		return
	}
	class := min(bits.Len(uint(cap(b)))-1-minBodyShift, len(bodyPools)-1)
	b = b[: 0 : minPooledBody<<class]
	bodyPools[class].Put(&b)
}
