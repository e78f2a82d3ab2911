package dashboard

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestYieldWaitsWhileTheMachineIsBusy keeps every core spinning and checks
// that the analytics' pause outlasts its rest: it waits for spare CPU.
func TestYieldWaitsWhileTheMachineIsBusy(t *testing.T) {
	if _, _, ok := cpuTimes(); !ok {
		t.Skip("skip: /proc/stat cannot be read here, so the dashboard only rests")
	}
	if runtime.GOMAXPROCS(0) < machineCores() {
		t.Skipf("skip: this process may use %d of the machine's %d cores, so it cannot keep them all busy", runtime.GOMAXPROCS(0), machineCores())
	}
	var stop atomic.Bool
	defer stop.Store(true)
	for range machineCores() {
		go func() {
			for !stop.Load() {
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	began := time.Now()
	if !yieldToMachine(context.Background(), 10*time.Millisecond) {
		t.Fatal("yieldToMachine gave up without its context ending")
	}
	if took := time.Since(began); took < 3*spareSample {
		t.Fatalf("with every core busy the pause took %v; it should wait for spare CPU (up to %v)", took, maxYield)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if yieldToMachine(ctx, 0) {
		t.Fatal("yieldToMachine went on after its context ended")
	}
}
