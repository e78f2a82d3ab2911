package clock

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestFakeRunsTimersInOrderAtTheirTime(t *testing.T) {
	start := time.Unix(1000, 0)
	c := NewFake(start)
	var got []string
	at := func(name string) func() {
		return func() { got = append(got, name+"@"+c.Now().Sub(start).String()) }
	}
	c.AfterFunc(3*time.Second, at("c"))
	c.AfterFunc(time.Second, at("a"))
	stopped := c.AfterFunc(2*time.Second, at("never"))
	c.AfterFunc(time.Second, func() {
		at("b")()
		c.AfterFunc(time.Second, at("set by b")) // due within the same Advance
	})
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop should report true once, then false")
	}
	c.Advance(2500 * time.Millisecond)
	want := []string{"a@1s", "b@1s", "set by b@2s"}
	if !slices.Equal(got, want) {
		t.Fatalf("ran %v, want %v", got, want)
	}
	if c.Now() != start.Add(2500*time.Millisecond) || c.Pending() != 1 {
		t.Fatalf("now %v, %d pending", c.Now(), c.Pending())
	}
	c.Advance(time.Second)
	if got[len(got)-1] != "c@3s" || c.Pending() != 0 {
		t.Fatalf("ran %v, %d pending", got, c.Pending())
	}
}

func TestEveryOnFakeAndReal(t *testing.T) {
	c := NewFake(time.Unix(0, 0))
	n := 0
	e := NewEvery(c, time.Second, func() { n++ })
	c.Advance(3500 * time.Millisecond)
	if n != 3 {
		t.Fatalf("%d calls in 3.5s, want 3", n)
	}
	e.Stop()
	c.Advance(10 * time.Second)
	if n != 3 || c.Pending() != 0 {
		t.Fatalf("%d calls and %d timers after Stop", n, c.Pending())
	}

	var calls atomic.Int32
	done := make(chan struct{})
	r := NewEvery(Or(nil), time.Millisecond, func() {
		if calls.Add(1) == 3 {
			close(done)
		}
	})
	<-done
	r.Stop()
	after := calls.Load()
	time.Sleep(5 * time.Millisecond) // no call may start after Stop returned
	if calls.Load() != after {
		t.Fatalf("calls went on after Stop: %d then %d", after, calls.Load())
	}
}
