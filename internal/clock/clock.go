// Package clock is the time the coordinators (groups, share groups,
// transactions) read and set their timers on. Real is the wall clock; Fake
// only moves when a test advances it, and runs the timers that fall due in
// the goroutine that advanced it, so a state machine's timeouts can be
// tested without sleeping.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time and runs functions later.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine (Real) or in Advance's (Fake)
	// once d has passed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop prevents the call if it has not started; it reports whether it did.
	Stop() bool
}

// Real is the wall clock.
type Real struct{}

// Now is time.Now.
func (Real) Now() time.Time { return time.Now() }

// AfterFunc is time.AfterFunc.
func (Real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Or returns c, or the wall clock when c is nil.
func Or(c Clock) Clock {
	if c == nil {
		return Real{}
	}
	return c
}

// Every calls f every d on c until Stop. Unlike a ticker it needs no
// goroutine of its own, so it runs on a Fake clock too.
type Every struct {
	mu      sync.Mutex
	stopped bool
	timer   Timer
	running sync.WaitGroup
}

// NewEvery starts calling f every d.
func NewEvery(c Clock, d time.Duration, f func()) *Every {
	e := &Every{}
	var tick func()
	tick = func() {
		e.mu.Lock()
		if e.stopped {
			e.mu.Unlock()
			return
		}
		e.running.Add(1)
		e.mu.Unlock()
		f()
		e.running.Done()
		e.mu.Lock()
		if !e.stopped {
			e.timer = c.AfterFunc(d, tick)
		}
		e.mu.Unlock()
	}
	e.mu.Lock()
	e.timer = c.AfterFunc(d, tick)
	e.mu.Unlock()
	return e
}

// Stop ends the calls and waits for one that is running.
func (e *Every) Stop() {
	e.mu.Lock()
	e.stopped = true
	e.timer.Stop()
	e.mu.Unlock()
	e.running.Wait()
}
