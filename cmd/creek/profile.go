package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"
)

// startProfiles writes profiles of the whole process for go tool pprof
// when the environment asks for them: CREEK_CPUPROFILE=FILE (the CPU from
// start to exit) and CREEK_HEAPPROFILE=FILE (the heap at its largest, taken
// each time the live heap reaches a new high, checked every 250 ms). They
// are for measuring creek, as docs/benchmarks.md does, not for production.
// The returned function ends them; it is called on a normal exit.
func startProfiles() func() {
	var stops []func()
	if path := os.Getenv("CREEK_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "creek: CREEK_CPUPROFILE:", err)
		} else {
			stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
		}
	}
	if path := os.Getenv("CREEK_HEAPPROFILE"); path != "" {
		done := make(chan struct{})
		finished := make(chan struct{})
		go func() {
			defer close(finished)
			var high uint64
			tick := time.NewTicker(250 * time.Millisecond)
			defer tick.Stop()
			for {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > high {
					high = ms.HeapAlloc
					if err := writeHeapProfile(path); err != nil {
						fmt.Fprintln(os.Stderr, "creek: CREEK_HEAPPROFILE:", err)
						return
					}
				}
				select {
				case <-done:
					return
				case <-tick.C:
				}
			}
		}()
		stops = append(stops, func() { close(done); <-finished })
	}
	return func() {
		for _, stop := range stops {
			stop()
		}
	}
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
