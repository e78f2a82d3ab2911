// Package retry is how the store sinks wait for a store that is down,
// unreachable or throttling: the same write again after a doubling,
// jittered pause, for as long as it takes, with a warning each time, so a
// consumer waits (and commits nothing) rather than fails or drops. Errors
// that waiting cannot fix (refused credentials, a missing table) end the
// wait at once.
package retry

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Policy bounds the pause between attempts.
type Policy struct {
	Start time.Duration // the first pause
	Max   time.Duration // the longest
}

// Default pauses 200 ms at first and at most 30 s.
var Default = Policy{Start: 200 * time.Millisecond, Max: 30 * time.Second}

// Backoff counts failures and gives the pause after each.
type Backoff struct {
	Policy
	n int
}

// Next returns the pause after one more failure: Start doubled per
// failure up to Max, less up to a fifth at random so that many writers do
// not come back at the same moment.
func (b *Backoff) Next() time.Duration {
	d := b.Start
	for i := 0; i < b.n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	b.n++
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

// Reset starts counting afresh after a success.
func (b *Backoff) Reset() { b.n = 0 }

// Sleep pauses for d or until ctx is done, which it returns.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Do calls attempt until it succeeds, fails with an error that retryable
// refuses, or ctx is done. Each retried failure is logged as a warning
// naming what (such as "write to PostgreSQL at db:5432") and the pause.
func Do(ctx context.Context, p Policy, log *slog.Logger, what string, retryable func(error) bool, attempt func() error) error {
	b := Backoff{Policy: p}
	for {
		err := attempt()
		if err == nil || !retryable(err) {
			return err
		}
		if ctx.Err() != nil {
			return err
		}
		pause := b.Next()
		log.Warn(what+" failed; retrying, nothing is committed meanwhile", "err", err, "retry_in", pause.Round(time.Millisecond))
		if Sleep(ctx, pause) != nil {
			return err
		}
	}
}
