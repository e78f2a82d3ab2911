// Package guard runs the broker's background work (timers and loops that
// requests set going: group sessions, rebalances, share locks, transaction
// timeouts, retention) so that a panic in it is logged with its stack
// instead of ending the process. A bug that one client's requests reach
// must not take the broker away from every other client.
package guard

import (
	"fmt"
	"log/slog"
	"runtime/debug"
)

// Run calls fn. A panic in it is logged at error level, naming what (to
// the default logger if logger is nil).
func Run(logger *slog.Logger, what string, fn func()) {
	defer func() {
		if v := recover(); v != nil {
			if logger == nil {
				logger = slog.Default()
			}
			logger.Error("panic in background work; the broker goes on without it", "work", what,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
	}()
	fn()
}

// Func is fn wrapped in Run, for time.AfterFunc.
func Func(logger *slog.Logger, what string, fn func()) func() {
	return func() { Run(logger, what, fn) }
}
