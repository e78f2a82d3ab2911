// Package bench holds creek's load generators, in the spirit of Kafka's
// kafka-producer-perf-test and kafka-consumer-perf-test: they use only the
// Kafka protocol (franz-go), so they measure creek's broker or any Kafka
// cluster, and they print figures; nothing in them fails on speed.
package bench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Result is what a benchmark measured.
type Result struct {
	Records  int64         `json:"records"`
	Bytes    int64         `json:"bytes"`
	Errors   int64         `json:"errors"`
	Duration time.Duration `json:"duration_ns"`

	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"` // 10^6 bytes of record values per second

	Latency Latency `json:"latency_ms"`

	// FirstRecord is how long a consumer waited for its first record.
	FirstRecord time.Duration `json:"first_record_ns,omitempty"`

	// PeakMemory is the most memory (resident set) the measured process
	// used: the sink benchmark's consumer.
	PeakMemory int64 `json:"peak_memory_bytes,omitempty"`
	// ConsumerCPU is the CPU time (user and system) the measured process
	// used, and per GB of record values: a figure that other load on the
	// machine changes less than the rates.
	ConsumerCPU      time.Duration `json:"consumer_cpu_ns,omitempty"`
	ConsumerCPUPerGB float64       `json:"consumer_cpu_seconds_per_gb,omitempty"`

	// BrokerCPU is CPU time the broker process used, when known.
	BrokerCPU      time.Duration `json:"broker_cpu_ns,omitempty"`
	BrokerCPUPerGB float64       `json:"broker_cpu_seconds_per_gb,omitempty"`
}

// Finish sets the duration and the rates from it.
func (r *Result) Finish(d time.Duration) {
	r.Duration = d
	if s := d.Seconds(); s > 0 {
		r.RecordsPerSec = float64(r.Records) / s
		r.MBPerSec = float64(r.Bytes) / 1e6 / s
	}
}

// String is the one-line summary the CLI prints.
func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d records in %.2f s: %.0f records/s, %.1f MB/s", r.Records, r.Duration.Seconds(), r.RecordsPerSec, r.MBPerSec)
	if r.Latency.Count > 0 {
		fmt.Fprintf(&b, "; latency ms avg %.2f p50 %.2f p95 %.2f p99 %.2f p99.9 %.2f max %.2f",
			r.Latency.Avg, r.Latency.P50, r.Latency.P95, r.Latency.P99, r.Latency.P999, r.Latency.Max)
	}
	if r.FirstRecord > 0 {
		fmt.Fprintf(&b, "; first record after %.0f ms", float64(r.FirstRecord)/1e6)
	}
	if r.PeakMemory > 0 {
		fmt.Fprintf(&b, "; consumer peak memory %.0f MiB", float64(r.PeakMemory)/(1<<20))
	}
	if r.ConsumerCPU > 0 {
		fmt.Fprintf(&b, ", CPU %.2f s (%.2f s per GB)", r.ConsumerCPU.Seconds(), r.ConsumerCPUPerGB)
	}
	if r.Errors > 0 {
		fmt.Fprintf(&b, "; %d errors", r.Errors)
	}
	if r.BrokerCPU > 0 {
		fmt.Fprintf(&b, "; broker CPU %.2f s (%.2f s per GB)", r.BrokerCPU.Seconds(), r.BrokerCPUPerGB)
	}
	return b.String()
}

// Latency summarises recorded latencies, in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	Avg   float64 `json:"avg"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

// recorder keeps every latency (8 bytes each) to report exact percentiles.
type recorder struct {
	mu sync.Mutex
	d  []time.Duration
}

func newRecorder(capacity int) *recorder {
	return &recorder{d: make([]time.Duration, 0, min(capacity, 50_000_000))}
}

func (r *recorder) add(d time.Duration) {
	r.mu.Lock()
	r.d = append(r.d, d)
	r.mu.Unlock()
}

func (r *recorder) summary() Latency {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.d) == 0 {
		return Latency{}
	}
	sort.Slice(r.d, func(i, j int) bool { return r.d[i] < r.d[j] })
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	at := func(q float64) float64 { return ms(r.d[min(len(r.d)-1, int(q*float64(len(r.d))))]) }
	var sum time.Duration
	for _, d := range r.d {
		sum += d
	}
	return Latency{Count: len(r.d), Avg: ms(sum / time.Duration(len(r.d))), P50: at(0.50), P95: at(0.95), P99: at(0.99), P999: at(0.999), Max: ms(r.d[len(r.d)-1])}
}

// payloads returns a small pool of random-text values, so compression
// sees realistic, not trivially repetitive, data.
func payloads(size int) [][]byte {
	rnd := rand.New(rand.NewPCG(1, 2))
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "
	out := make([][]byte, 64)
	for i := range out {
		b := make([]byte, size)
		for j := range b {
			b[j] = letters[rnd.IntN(len(letters))]
		}
		out[i] = b
	}
	return out
}

// ProcessCPU reads a process's user+system CPU time from /proc (Linux).
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks, nil
}

// CPUMeter measures a process's CPU over a benchmark.
type CPUMeter struct {
	pid   int
	start time.Duration
}

// StartCPU begins measuring pid (0: no measurement).
func StartCPU(pid int) *CPUMeter {
	m := &CPUMeter{pid: pid}
	if pid > 0 {
		m.start, _ = ProcessCPU(pid)
	}
	return m
}

// Stop fills the result's broker CPU fields.
func (m *CPUMeter) Stop(r *Result) {
	if m.pid <= 0 {
		return
	}
	end, err := ProcessCPU(m.pid)
	if err != nil {
		return
	}
	r.BrokerCPU = end - m.start
	if r.Bytes > 0 {
		r.BrokerCPUPerGB = r.BrokerCPU.Seconds() / (float64(r.Bytes) / 1e9)
	}
}
