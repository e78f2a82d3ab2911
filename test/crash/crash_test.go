// Package crash holds tests that run the real creek binary as a separate
// process and kill it: kill -9 while producers are producing, torn and
// corrupt segment files on disk, idempotent retries across a crash, and
// graceful shutdown on SIGTERM. Every acknowledged record must survive.
package crash

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// creekBin is the creek binary built once by TestMain.
var creekBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "creek-crash-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash tests:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	creekBin = filepath.Join(dir, "creek")
	gobin := "go"
	if goroot := os.Getenv("GOROOT"); goroot != "" {
		if p := filepath.Join(goroot, "bin", "go"); fileExists(p) {
			gobin = p
		}
	}
	build := exec.Command(gobin, "build", "-o", creekBin, "github.com/creek-pipeline/creek/cmd/creek")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "crash tests: go build ./cmd/creek: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// ---------------------------------------------------------------------------
// The broker process.

// brokerProc is one run of `creek broker` as a child process.
type brokerProc struct {
	t       *testing.T
	addr    string
	cmd     *exec.Cmd
	logs    *procLog
	exited  chan struct{}
	waitErr error
}

// procLog collects the process's stdout and stderr and spots the line that
// says the broker is listening.
type procLog struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	listening chan string
	found     bool
}

var listeningLine = regexp.MustCompile(`creek broker listening on (\S+) \(`)

func (l *procLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if !l.found {
		if m := listeningLine.FindSubmatch(l.buf.Bytes()); m != nil {
			l.found = true
			l.listening <- string(m[1])
		}
	}
	return len(p), nil
}

func (l *procLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// startBroker runs `creek broker` on listen ("127.0.0.1:0" for a free port,
// or the address of an earlier run to come back on the same port) over the
// data dir, and waits until it accepts connections.
func startBroker(t *testing.T, dir, listen string, extra ...string) *brokerProc {
	t.Helper()
	args := append([]string{"broker", "--listen", listen, "--data-dir", dir}, extra...)
	p := &brokerProc{t: t, logs: &procLog{listening: make(chan string, 1)}, exited: make(chan struct{})}
	p.cmd = exec.Command(creekBin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start creek broker: %v", err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("log of creek broker %s:\n%s", strings.Join(args, " "), p.logs)
		}
	})
	select {
	case p.addr = <-p.logs.listening:
	case <-p.exited:
		t.Fatalf("creek broker exited at start (%v):\n%s", p.waitErr, p.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("creek broker did not start listening within 30s:\n%s", p.logs)
	}
	return p
}

// kill9 kills the broker with SIGKILL and waits for it to be gone.
func (p *brokerProc) kill9() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		p.t.Fatalf("kill -9: %v", err)
	}
	<-p.exited
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		p.t.Fatalf("broker was not killed by SIGKILL: %v", p.cmd.ProcessState)
	}
}

// waitLog waits until the broker's log matches every pattern.
func (p *brokerProc) waitLog(patterns ...string) string {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		logs := p.logs.String()
		missing := ""
		for _, pat := range patterns {
			if !strings.Contains(logs, pat) {
				missing = pat
				break
			}
		}
		if missing == "" {
			return logs
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("broker log has no %q:\n%s", missing, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Clients.

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.MetadataMinAge(100 * time.Millisecond),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func createTopic(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	cl := newClient(t, addr)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// logView is what a consumer read of a topic: the records of each
// partition between the start and end offsets the broker reported first.
type logView struct {
	recs         map[int32][]*kgo.Record
	starts, ends map[int32]int64
}

// listOffsets lists the start (ListStartOffsets) or end offsets of topic.
func listOffsets(t *testing.T, addr, topic string, start bool) map[int32]int64 {
	t.Helper()
	cl := newClient(t, addr)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list := kadm.NewClient(cl).ListEndOffsets
	if start {
		list = kadm.NewClient(cl).ListStartOffsets
	}
	listed, err := list(ctx, topic)
	if err != nil {
		t.Fatalf("list offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	var errs []error
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			errs = append(errs, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	if len(errs) > 0 {
		t.Fatalf("list offsets of %s: %v", topic, errors.Join(errs...))
	}
	return out
}

func endOffsets(t *testing.T, addr, topic string) map[int32]int64 {
	return listOffsets(t, addr, topic, false)
}

// consumeAll reads every partition of topic from its log start offset up
// to the end offset it finds first.
func consumeAll(t *testing.T, addr, topic string) logView {
	t.Helper()
	v := logView{recs: map[int32][]*kgo.Record{}, starts: listOffsets(t, addr, topic, true), ends: endOffsets(t, addr, topic)}
	from := map[int32]kgo.Offset{}
	for p, s := range v.starts {
		from[p] = kgo.NewOffset().At(s)
	}
	cl := newClient(t, addr,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchMaxWait(100*time.Millisecond))
	defer cl.Close()
	last := map[int32]int64{}
	done := func() bool {
		for p, end := range v.ends {
			if end > v.starts[p] {
				if l, ok := last[p]; !ok || l < end-1 {
					return false
				}
			}
		}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consuming %s: stopped at %v, offsets %v to %v", topic, last, v.starts, v.ends)
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("consuming %s partition %d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < v.ends[r.Partition] {
				v.recs[r.Partition] = append(v.recs[r.Partition], r)
			}
			last[r.Partition] = max(last[r.Partition], r.Offset)
		})
	}
	return v
}

// ---------------------------------------------------------------------------
// Producers that remember what was acknowledged.

type ackedAt struct {
	partition int32
	offset    int64
}

// ackLog records, per key, where each acknowledged record was written.
type ackLog struct {
	mu    sync.Mutex
	acked map[string]ackedAt
	errs  map[string]int // failure message -> records
}

func newAckLog() *ackLog { return &ackLog{acked: map[string]ackedAt{}, errs: map[string]int{}} }

func (a *ackLog) promise(r *kgo.Record, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.errs[err.Error()]++
		return
	}
	a.acked[string(r.Key)] = ackedAt{r.Partition, r.Offset}
}

func (a *ackLog) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.acked)
}

func (a *ackLog) snapshot() map[string]ackedAt {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]ackedAt, len(a.acked))
	for k, v := range a.acked {
		out[k] = v
	}
	return out
}

func (a *ackLog) failures() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]int{}
	for k, v := range a.errs {
		out[k] = v
	}
	return out
}

// waitAcked waits until at least n records are acknowledged.
func (a *ackLog) waitAcked(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for a.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d records acknowledged within %s (failures: %v)", a.count(), n, within, a.failures())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// valuePad is how long the values of valueFor are; a test that must fill
// a disk makes them larger.
var valuePad = 60

func valueFor(key string) []byte {
	return []byte(key + "|" + strings.Repeat(key[len(key)-1:], valuePad))
}

// producers are idempotent acks=all franz-go clients producing unique keys
// as fast as the broker takes them, retrying across broker restarts.
type producers struct {
	stopping atomic.Bool
	wg       sync.WaitGroup
	clients  []*kgo.Client
}

// maxPerProducer bounds what a producer sends, so that a test that waits long
// (a loaded machine) still ends; the waits are relative, so it only has to
// be large.
const maxPerProducer = 400000

func startProducers(t *testing.T, addr, topic string, n int, acks *ackLog) *producers {
	t.Helper()
	p := &producers{}
	for i := range n {
		cl := newClient(t, addr,
			kgo.DefaultProduceTopic(topic),
			kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence is franz-go's default
			kgo.MaxBufferedRecords(2000),
			kgo.ProducerLinger(time.Millisecond),
			// A kill -9 can land between a new connection's first request
			// and its answer; franz-go takes that EOF for a missing SASL
			// login and gives the records up unless told the setup is right.
			kgo.AlwaysRetryEOF())
		p.clients = append(p.clients, cl)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for j := 0; j < maxPerProducer && !p.stopping.Load(); j++ {
				key := fmt.Sprintf("p%d-%06d", i, j)
				cl.Produce(context.Background(), &kgo.Record{Key: []byte(key), Value: valueFor(key)}, acks.promise)
			}
		}()
	}
	t.Cleanup(func() {
		p.stopping.Store(true)
		for _, cl := range p.clients {
			cl.Close()
		}
		p.wg.Wait()
	})
	return p
}

// stop ends producing and waits until every buffered record is answered.
func (p *producers) stop(t *testing.T) {
	t.Helper()
	p.stopping.Store(true)
	p.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, cl := range p.clients {
		if err := cl.Flush(ctx); err != nil {
			t.Fatalf("flushing producers: %v", err)
		}
	}
}

// checkLog verifies a consumed topic: offsets start..end-1 of every
// partition each exactly once, keys unique with the value their key
// implies, and every acknowledged record at or after its partition's start
// at the partition and offset it was acknowledged with.
func checkLog(t *testing.T, v logView, acked map[string]ackedAt) {
	t.Helper()
	where := map[string]ackedAt{}
	problems := 0
	report := func(format string, args ...any) {
		problems++
		if problems <= 20 {
			t.Errorf(format, args...)
		}
	}
	for p, end := range v.ends {
		recs := v.recs[p]
		start := v.starts[p]
		sort.Slice(recs, func(i, j int) bool { return recs[i].Offset < recs[j].Offset })
		if int64(len(recs)) != end-start {
			report("partition %d: %d records between start offset %d and end offset %d", p, len(recs), start, end)
		}
		for i, r := range recs {
			if r.Offset != start+int64(i) {
				report("partition %d: record %d has offset %d (offsets are not contiguous)", p, i, r.Offset)
				break
			}
		}
		for _, r := range recs {
			k := string(r.Key)
			if prev, dup := where[k]; dup {
				report("key %s is stored twice: partition %d offset %d and partition %d offset %d", k, prev.partition, prev.offset, p, r.Offset)
			}
			where[k] = ackedAt{p, r.Offset}
			if !bytes.Equal(r.Value, valueFor(k)) {
				report("key %s at partition %d offset %d has value %q", k, p, r.Offset, r.Value)
			}
		}
	}
	lost := 0
	for k, a := range acked {
		w, ok := where[k]
		switch {
		case !ok && a.offset < v.starts[a.partition]:
			// deleted with the records before the log start offset
		case !ok:
			lost++
			report("acknowledged record %s (partition %d offset %d) is missing", k, a.partition, a.offset)
		case w != a:
			report("acknowledged record %s was acknowledged at partition %d offset %d but is stored at partition %d offset %d", k, a.partition, a.offset, w.partition, w.offset)
		}
	}
	if problems > 20 {
		t.Errorf("... %d problems in all, %d acknowledged records missing", problems, lost)
	}
}

func total(ends map[int32]int64) int64 {
	var n int64
	for _, e := range ends {
		n += e
	}
	return n
}

// ---------------------------------------------------------------------------
// Tests.

// deleter sends DeleteRecords for partition 0 of a topic in a loop, each
// time to the middle of what is left, and remembers the highest log start
// offset the broker answered: after any crash the log must start there or
// later (records reported deleted never come back).
type deleter struct {
	stopped  chan struct{}
	done     chan struct{}
	gate     sync.Mutex // held by each DeleteRecords, and by a check that must see the log stand still
	mu       sync.Mutex
	answered int64
	count    int
}

func startDeleter(t *testing.T, addr, topic string) *deleter {
	d := &deleter{stopped: make(chan struct{}), done: make(chan struct{})}
	cl := newClient(t, addr, kgo.RequestRetries(0))
	adm := kadm.NewClient(cl)
	go func() {
		defer close(d.done)
		defer cl.Close()
		for {
			select {
			case <-d.stopped:
				return
			case <-time.After(20 * time.Millisecond):
			}
			d.gate.Lock()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			ends, err := adm.ListEndOffsets(ctx, topic)
			var end, start int64 = -1, 0
			if err == nil {
				if o, ok := ends.Lookup(topic, 0); ok && o.Err == nil {
					end = o.Offset
				}
				if starts, err := adm.ListStartOffsets(ctx, topic); err == nil {
					if o, ok := starts.Lookup(topic, 0); ok {
						start = o.Offset
					}
				}
			}
			if end > start+1 {
				to := kadm.Offsets{}
				to.Add(kadm.Offset{Topic: topic, Partition: 0, At: start + (end-start)/2})
				if resp, err := adm.DeleteRecords(ctx, to); err == nil {
					if r, ok := resp.Lookup(topic, 0); ok && r.Err == nil {
						d.mu.Lock()
						d.answered = max(d.answered, r.LowWatermark)
						d.count++
						d.mu.Unlock()
					}
				}
			}
			cancel()
			d.gate.Unlock()
		}
	}()
	t.Cleanup(d.stop)
	return d
}

func (d *deleter) stop() {
	select {
	case <-d.stopped:
	default:
		close(d.stopped)
	}
	<-d.done
}

// pause waits for the DeleteRecords under way and holds the next ones back
// until resume, so that a check reads a log whose start stands still.
func (d *deleter) pause()  { d.gate.Lock() }
func (d *deleter) resume() { d.gate.Unlock() }

// lowWatermark is the highest log start offset a DeleteRecords answered.
func (d *deleter) lowWatermark() (int64, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.answered, d.count
}

// TestKill9KeepsAckedRecords kills the broker with SIGKILL while three
// idempotent producers write to four partitions in small segments (so kills
// land during segment rolls) and a client keeps deleting records of one
// partition, restarts it on the same data dir and port, and checks that
// every record acknowledged before the kill and not deleted is there at the
// offset it was acknowledged with, that offsets are contiguous from the log
// start, that the log start is not before what DeleteRecords answered, that
// the producers' retries across the crash were not written twice, and that
// producing goes on. It does so three times in a row. With fsync=never the
// page cache, which outlives the process, must be enough.
func TestKill9KeepsAckedRecords(t *testing.T) {
	for _, fsync := range []string{"acks", "never"} {
		t.Run("fsync="+fsync, func(t *testing.T) {
			dir := t.TempDir()
			const topic = "kill9"
			args := []string{"--fsync", fsync, "--override", "log.segment.bytes=65536"}
			b := startBroker(t, dir, "127.0.0.1:0", args...)
			createTopic(t, b.addr, topic, 4)
			acks := newAckLog()
			prod := startProducers(t, b.addr, topic, 3, acks)
			del := startDeleter(t, b.addr, topic)

			for round := 1; round <= 3; round++ {
				acks.waitAcked(t, acks.count()+8000, 30*time.Second)
				time.Sleep(time.Duration(round*3) * time.Millisecond) // vary the moment within a burst
				b.kill9()
				beforeKill := acks.snapshot()

				b = startBroker(t, dir, b.addr, args...)
				del.pause() // what it answered before (and just after) the kill must hold
				deletedTo, deletes := del.lowWatermark()
				v := consumeAll(t, b.addr, topic)
				checkLog(t, v, beforeKill)
				if v.starts[0] < deletedTo {
					t.Errorf("after the kill partition 0 starts at %d, but DeleteRecords had answered %d: deleted records came back", v.starts[0], deletedTo)
				}
				del.resume()
				if t.Failed() {
					t.FailNow()
				}
				// Records that reached the log before the kill without their
				// answer reaching the producer: the producers retry them after
				// the restart and must get their original offsets back.
				acks.waitAcked(t, acks.count()+2000, 30*time.Second)
				retried := 0
				for k, a := range acks.snapshot() {
					if _, before := beforeKill[k]; !before && a.offset < v.ends[a.partition] {
						retried++
					}
				}
				t.Logf("round %d: killed with %d records acknowledged and %d in the log (%d DeleteRecords answered, partition 0 from %d); %d of the others were acknowledged after the restart by retries",
					round, len(beforeKill), total(v.ends)-total(v.starts), deletes, v.starts[0], retried)
			}

			del.stop()
			prod.stop(t)
			if f := acks.failures(); len(f) > 0 {
				t.Errorf("producers had records fail (they retry forever, so none should): %v", f)
			}

			// A new producer appends right after the recovered records.
			before := endOffsets(t, b.addr, topic)
			cl := newClient(t, b.addr, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			defer cl.Close()
			extra := newAckLog()
			for p := range before {
				k := fmt.Sprintf("fresh-%d", p)
				r := &kgo.Record{Key: []byte(k), Value: valueFor(k), Partition: p}
				if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
					t.Fatalf("produce after restart: %v", err)
				}
				if r.Offset != before[p] {
					t.Errorf("partition %d: new record got offset %d, want the end offset %d", p, r.Offset, before[p])
				}
				extra.promise(r, nil)
			}

			all := acks.snapshot()
			for k, v := range extra.snapshot() {
				all[k] = v
			}
			v := consumeAll(t, b.addr, topic)
			checkLog(t, v, all)
			if kept := ackedFrom(all, v.starts); int64(kept) != total(v.ends)-total(v.starts) {
				t.Errorf("the log holds %d records but %d acknowledged ones are at or after the log start (every record was acknowledged, in the end)", total(v.ends)-total(v.starts), kept)
			}
			t.Logf("%d records acknowledged in all, offsets %v to %v", len(all), v.starts, v.ends)
		})
	}
}

// ackedFrom counts the acknowledged records at or after their partition's start.
func ackedFrom(acked map[string]ackedAt, starts map[int32]int64) int {
	n := 0
	for _, a := range acked {
		if a.offset >= starts[a.partition] {
			n++
		}
	}
	return n
}

// TestGracefulShutdownOnSIGTERM stops the broker with SIGTERM while
// producers are producing with acks=all: it must exit 0 within a few
// seconds, and every acknowledged record must be there after a restart,
// which needs no recovery.
func TestGracefulShutdownOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	const topic = "sigterm"
	b := startBroker(t, dir, "127.0.0.1:0")
	createTopic(t, b.addr, topic, 3)
	acks := newAckLog()
	prod := startProducers(t, b.addr, topic, 3, acks)
	acks.waitAcked(t, 5000, 30*time.Second)

	sent := time.Now()
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("broker still running 15s after SIGTERM:\n%s", b.logs)
	}
	took := time.Since(sent)
	beforeStop := acks.snapshot()
	t.Logf("broker exited %s after SIGTERM with %d records acknowledged", took.Round(time.Millisecond), len(beforeStop))
	if b.waitErr != nil {
		t.Fatalf("broker exited with %v after SIGTERM, want status 0:\n%s", b.waitErr, b.logs)
	}
	if took > 5*time.Second {
		t.Errorf("shutdown took %s, want a few seconds at most", took)
	}
	b.waitLog("broker stopped")

	b = startBroker(t, dir, b.addr)
	checkLog(t, consumeAll(t, b.addr, topic), beforeStop)
	if strings.Contains(b.logs.String(), "truncating torn write") {
		t.Errorf("a graceful shutdown left a torn write:\n%s", b.logs)
	}

	acks.waitAcked(t, len(beforeStop)+2000, 30*time.Second)
	prod.stop(t)
	if f := acks.failures(); len(f) > 0 {
		t.Errorf("producers had records fail: %v", f)
	}
	v := consumeAll(t, b.addr, topic)
	all := acks.snapshot()
	checkLog(t, v, all)
	ends := v.ends
	if int64(len(all)) != total(ends) {
		t.Errorf("the log holds %d records but %d were acknowledged", total(ends), len(all))
	}
}

// segmentBatch is one record batch found in a segment file.
type segmentBatch struct {
	pos, size  int64
	base, last int64
}

// readBatches walks the record batches of a segment file by their headers.
func readBatches(t *testing.T, path string) []segmentBatch {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []segmentBatch
	for pos := 0; pos < len(data); {
		if len(data)-pos < 61 {
			t.Fatalf("%s: %d stray bytes at %d", path, len(data)-pos, pos)
		}
		size := 12 + int(binary.BigEndian.Uint32(data[pos+8:]))
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(data[pos : pos+size]); err != nil {
			t.Fatalf("%s: batch at %d: %v", path, pos, err)
		}
		out = append(out, segmentBatch{pos: int64(pos), size: int64(size), base: rb.FirstOffset, last: rb.FirstOffset + int64(rb.LastOffsetDelta)})
		pos += size
	}
	return out
}

func segmentPath(dir, topic string, partition int32, base int64) string {
	return filepath.Join(dir, fmt.Sprintf("%s-%d", topic, partition), fmt.Sprintf("%020d.log", base))
}

// produceNumbered writes n records to partition 0 of topic, count at a time,
// and returns their values by offset.
func produceNumbered(t *testing.T, addr, topic string, n, count int) map[int64]string {
	t.Helper()
	cl := newClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer cl.Close()
	out := map[int64]string{}
	for i := 0; i < n; i += count {
		var recs []*kgo.Record
		for j := i; j < min(i+count, n); j++ {
			recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf("record-%05d-%s", j, strings.Repeat("x", 80)))})
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		for _, r := range recs {
			out[r.Offset] = string(r.Value)
		}
	}
	return out
}

func consumeValues(t *testing.T, addr, topic string) (map[int64]string, int64) {
	t.Helper()
	v := consumeAll(t, addr, topic)
	out := map[int64]string{}
	for _, r := range v.recs[0] {
		if _, dup := out[r.Offset]; dup {
			t.Errorf("offset %d read twice", r.Offset)
		}
		out[r.Offset] = string(r.Value)
	}
	return out, v.ends[0]
}

// TestTornTailIsTruncated kills the broker, cuts the active segment in the
// middle of its last batch as a crash during a write would, and restarts:
// the broker says it truncated, every earlier record is readable, and new
// records take the offsets after them.
func TestTornTailIsTruncated(t *testing.T) {
	dir := t.TempDir()
	const topic = "torn"
	b := startBroker(t, dir, "127.0.0.1:0")
	createTopic(t, b.addr, topic, 1)
	values := produceNumbered(t, b.addr, topic, 200, 5)
	b.kill9()

	seg := segmentPath(dir, topic, 0, 0)
	batches := readBatches(t, seg)
	if len(batches) < 10 {
		t.Fatalf("want many batches, %s has %d", seg, len(batches))
	}
	last := batches[len(batches)-1]
	if last.last != 199 {
		t.Fatalf("last batch ends at offset %d, want 199", last.last)
	}
	cut := last.pos + last.size/2
	if err := os.Truncate(seg, cut); err != nil {
		t.Fatal(err)
	}

	b = startBroker(t, dir, "127.0.0.1:0")
	b.waitLog("truncating torn write", seg)
	got, end := consumeValues(t, b.addr, topic)
	if end != last.base {
		t.Errorf("end offset after recovery is %d, want %d (the torn batch's first offset)", end, last.base)
	}
	for o := int64(0); o < last.base; o++ {
		if got[o] != values[o] {
			t.Errorf("offset %d: read %q, want %q", o, got[o], values[o])
		}
	}
	for o := range got {
		if o >= last.base {
			t.Errorf("offset %d of the torn batch is readable: %q", o, got[o])
		}
	}
	if st, err := os.Stat(seg); err != nil || st.Size() != last.pos {
		t.Errorf("segment file after recovery: %v, size %d, want %d", err, st.Size(), last.pos)
	}

	more := produceNumbered(t, b.addr, topic, 10, 10)
	for o := range more {
		if o < last.base || o >= last.base+10 {
			t.Errorf("new record got offset %d, want %d..%d", o, last.base, last.base+9)
		}
	}
	got, end = consumeValues(t, b.addr, topic)
	if end != last.base+10 || len(got) != int(end) {
		t.Errorf("after producing again: end offset %d, %d records, want %d", end, len(got), last.base+10)
	}
}

// TestCorruptSealedSegmentIsSetAside overwrites the start of a middle
// segment with garbage: the broker still starts, names the file in its log,
// moves it aside, and serves every record of the other segments.
func TestCorruptSealedSegmentIsSetAside(t *testing.T) {
	dir := t.TempDir()
	const topic = "corrupt"
	b := startBroker(t, dir, "127.0.0.1:0", "--override", "log.segment.bytes=2048")
	createTopic(t, b.addr, topic, 1)
	values := produceNumbered(t, b.addr, topic, 300, 3)
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-b.exited

	matches, _ := filepath.Glob(filepath.Join(dir, topic+"-0", "*.log"))
	sort.Strings(matches)
	if len(matches) < 5 {
		t.Fatalf("want several segments, have %v", matches)
	}
	victim := matches[len(matches)/2]
	var bad, next int64
	fmt.Sscanf(filepath.Base(victim), "%d.log", &bad)
	fmt.Sscanf(filepath.Base(matches[len(matches)/2+1]), "%d.log", &next)
	f, err := os.OpenFile(victim, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("this is not a record batch, it is garbage!"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()

	b = startBroker(t, dir, "127.0.0.1:0", "--override", "log.segment.bytes=2048")
	b.waitLog(filepath.Base(victim), "corrupt")
	if !fileExists(victim + ".corrupt") {
		t.Errorf("%s was not moved aside to %s.corrupt", victim, victim)
	}
	got, end := consumeValues(t, b.addr, topic)
	if end != 300 {
		t.Errorf("end offset %d, want 300", end)
	}
	for o := int64(0); o < 300; o++ {
		inBad := o >= bad && o < next
		switch {
		case inBad && got[o] != "":
			t.Errorf("offset %d of the corrupt segment was served: %q", o, got[o])
		case !inBad && got[o] != values[o]:
			t.Errorf("offset %d (outside the corrupt segment %d..%d): read %q, want %q", o, bad, next-1, got[o], values[o])
		}
	}
	more := produceNumbered(t, b.addr, topic, 3, 3)
	if _, ok := more[300]; !ok {
		t.Errorf("new records after restart got offsets %v, want 300..302", more)
	}
}

// ---------------------------------------------------------------------------
// Raw requests.

// rawConn sends kmsg requests over a plain TCP connection.
type rawConn struct {
	t    *testing.T
	nc   net.Conn
	corr int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc}
}

func (c *rawConn) roundTrip(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	c.corr++
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("crash-test")).AppendRequest(nil, req, c.corr)
	c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write(frame); err != nil {
		c.t.Fatalf("write %s: %v", kmsg.NameForKey(req.Key()), err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		c.t.Fatalf("read %s response: %v", kmsg.NameForKey(req.Key()), err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.nc, body); err != nil {
		c.t.Fatalf("read %s response: %v", kmsg.NameForKey(req.Key()), err)
	}
	resp := req.ResponseKind()
	rd := kbin.Reader{Src: body}
	if corr := rd.Int32(); corr != c.corr {
		c.t.Fatalf("response has correlation id %d, want %d", corr, c.corr)
	}
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		kmsg.SkipTags(&rd)
	}
	if err := resp.ReadFrom(rd.Src); err != nil {
		c.t.Fatalf("decode %s response: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// idempotentBatch encodes a record batch of an idempotent producer.
func idempotentBatch(pid int64, epoch int16, seq int32, values ...string) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Key: []byte(v), Value: []byte(v)}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	now := time.Now().UnixMilli()
	rb := kmsg.RecordBatch{
		Length:          int32(49 + len(recs)),
		Magic:           2,
		LastOffsetDelta: int32(len(values) - 1),
		FirstTimestamp:  now,
		MaxTimestamp:    now,
		ProducerID:      pid,
		ProducerEpoch:   epoch,
		FirstSequence:   seq,
		NumRecords:      int32(len(values)),
		Records:         recs,
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

func produceRequest(topic string, batch []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = 7
	req.Acks = -1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = 0
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// sendProduce sends one batch and returns the partition's answer.
func sendProduce(c *rawConn, topic string, batch []byte) (int64, error) {
	c.t.Helper()
	resp := c.roundTrip(produceRequest(topic, batch)).(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		c.t.Fatalf("produce response has %d topics", len(resp.Topics))
	}
	sp := resp.Topics[0].Partitions[0]
	return sp.BaseOffset, kerr.ErrorForCode(sp.ErrorCode)
}

// TestIdempotentRetryAcrossCrash sends a raw idempotent ProduceRequest,
// kills the broker with SIGKILL, restarts it and sends the very same
// request again, as a producer that never saw the answer would: it gets
// the original base offset and nothing is written twice. Run with one
// segment (producer state rebuilt from the log) and with a segment per
// batch (state from the snapshot taken at each roll).
func TestIdempotentRetryAcrossCrash(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"one-segment", nil},
		{"segment-per-batch", []string{"--override", "log.segment.bytes=100"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			const topic = "idempotent"
			b := startBroker(t, dir, "127.0.0.1:0", tc.extra...)
			createTopic(t, b.addr, topic, 1)

			c := dialRaw(t, b.addr)
			init := kmsg.NewPtrInitProducerIDRequest()
			init.Version = 1
			init.TransactionTimeoutMillis = 60000
			ir := c.roundTrip(init).(*kmsg.InitProducerIDResponse)
			if err := kerr.ErrorForCode(ir.ErrorCode); err != nil {
				t.Fatalf("InitProducerId: %v", err)
			}
			pid, epoch := ir.ProducerID, ir.ProducerEpoch

			first := idempotentBatch(pid, epoch, 0, "a0", "a1", "a2")
			second := idempotentBatch(pid, epoch, 3, "b0", "b1")
			for i, step := range []struct {
				batch []byte
				want  int64
			}{{first, 0}, {second, 3}} {
				base, err := sendProduce(c, topic, step.batch)
				if err != nil || base != step.want {
					t.Fatalf("produce %d: base offset %d, %v; want %d", i, base, err, step.want)
				}
			}

			b.kill9()
			b = startBroker(t, dir, "127.0.0.1:0", tc.extra...)
			c = dialRaw(t, b.addr)

			if base, err := sendProduce(c, topic, second); err != nil || base != 3 {
				t.Errorf("retry of the last batch after the crash: base offset %d, %v; want 3 and no error", base, err)
			}
			if base, err := sendProduce(c, topic, first); err != nil || base != 0 {
				t.Errorf("retry of the first batch after the crash: base offset %d, %v; want 0 and no error", base, err)
			}
			if base, err := sendProduce(c, topic, idempotentBatch(pid, epoch, 7, "gap")); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
				t.Errorf("a sequence gap after the crash: base offset %d, %v; want OUT_OF_ORDER_SEQUENCE_NUMBER", base, err)
			}
			if base, err := sendProduce(c, topic, idempotentBatch(pid, epoch, 5, "c0")); err != nil || base != 5 {
				t.Errorf("next batch after the crash: base offset %d, %v; want 5", base, err)
			}

			got, end := consumeValues(t, b.addr, topic)
			want := map[int64]string{0: "a0", 1: "a1", 2: "a2", 3: "b0", 4: "b1", 5: "c0"}
			if end != 6 || len(got) != len(want) {
				t.Errorf("log holds %d records up to end offset %d, want 6: %v", len(got), end, got)
			}
			for o, v := range want {
				if got[o] != v {
					t.Errorf("offset %d: %q, want %q", o, got[o], v)
				}
			}
		})
	}
}
