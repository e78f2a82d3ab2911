package cluster

import (
	"runtime"
	"syscall"
	"testing"
)

// The cleaner's thread gets nice 19 and its priority back at the end, so
// the thread can return to Go instead of ending (which would kill a child
// process started from it with Pdeathsig).
func TestThreadPriorityRestored(t *testing.T) {
	done := make(chan struct{})
	var restoreErr error
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid := syscall.Gettid()
		nice := func() int {
			raw, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
			if err != nil {
				t.Error(err)
			}
			return 20 - raw
		}
		before := nice()
		restore, err := lowerThreadPriority()
		if err != nil {
			t.Errorf("lowering: %v", err)
			return
		}
		if got := nice(); got != 19 {
			t.Errorf("nice %d after lowering, want 19", got)
		}
		if restoreErr = restore(); restoreErr != nil {
			return
		}
		if got := nice(); got != before {
			t.Errorf("nice %d after restoring, want %d", got, before)
		}
	}()
	<-done
	if restoreErr != nil {
		t.Skipf("restoring the priority is not allowed here (%v); the cleaner's thread then ends with it", restoreErr)
	}
}
