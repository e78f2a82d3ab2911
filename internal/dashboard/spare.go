package dashboard

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The dashboard's own consumers (the analytics) run on the CPU the rest of
// the machine leaves over, as a thread at the lowest priority would: Go
// cannot lower the priority of a goroutine, and the broker or pipeline it
// watches may be another process, so they look at the whole machine's idle
// time in /proc/stat and wait while less than spareCoresWanted of a core is
// idle. maxYield bounds the wait, so on a machine that is busy for ever the
// figures still move, slowly.
const (
	spareCoresWanted = 0.5
	spareSample      = 200 * time.Millisecond
	maxYield         = 5 * time.Second
)

// yieldToMachine sleeps rest, then until the machine has spare CPU or
// maxYield has passed since the call; it returns false when ctx ends.
// Where /proc/stat cannot be read, only rest is slept.
func yieldToMachine(ctx context.Context, rest time.Duration) bool {
	deadline := time.Now().Add(maxYield)
	if !sleepCtx(ctx, rest) {
		return false
	}
	idle, total, ok := cpuTimes()
	for ok && time.Now().Before(deadline) {
		if !sleepCtx(ctx, spareSample) {
			return false
		}
		idle2, total2, ok2 := cpuTimes()
		if !ok2 || total2 <= total {
			return true
		}
		// idle/total is the idle share of all cores; times the number of
		// cores it is how many cores stood idle.
		spare := float64(idle2-idle) / float64(total2-total) * float64(machineCores())
		if spare >= spareCoresWanted {
			return true
		}
		idle, total = idle2, total2
	}
	return true
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// cpuTimes reads the machine's idle (idle and iowait) and total CPU time,
// in clock ticks summed over all cores, from /proc/stat's first line.
func cpuTimes() (idle, total uint64, ok bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return 0, 0, false
	}
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0, false
	}
	for i, s := range fields[1:] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		// user nice system idle iowait irq softirq steal; guest and
		// guest_nice are already counted in user and nice.
		if i >= 8 {
			break
		}
		total += n
		if i == 3 || i == 4 {
			idle += n
		}
	}
	return idle, total, true
}

// machineCores is the number of cores /proc/stat's totals are summed over.
var machineCores = sync.OnceValue(func() int {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 1
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "cpu") && len(l) > 3 && l[3] >= '0' && l[3] <= '9' {
			n++
		}
	}
	return max(n, 1)
})
