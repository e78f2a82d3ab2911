package crash

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/creek-pipeline/creek/internal/testfs"
)

// freeBytes is what the file system holding dir has left.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// waitFull waits until producers stall on the full disk: the file system
// has almost nothing left and acknowledgements stop coming.
func waitFull(t *testing.T, fs *testfs.Tmpfs, acks *ackLog) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	last, since := acks.count(), time.Now()
	for {
		if n := acks.count(); n != last {
			last, since = n, time.Now()
		}
		if freeBytes(t, fs.Dir) < 256<<10 && time.Since(since) > 300*time.Millisecond {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the disk did not fill within 60s: %d bytes free, %d records acknowledged", freeBytes(t, fs.Dir), acks.count())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sigterm stops the broker gracefully and waits for it to exit.
func (p *brokerProc) sigterm() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.t.Fatalf("broker still running 30s after SIGTERM:\n%s", p.logs)
	}
}

// TestFullDiskKeepsAckedRecords runs the broker on a small tmpfs and fills
// it with acks=all producers: a produce is answered KAFKA_STORAGE_ERROR
// and the producers wait, reads go on while the disk is full,
// DeleteRecords frees whole segments at once, a kill -9 on the full disk
// loses nothing, producing resumes without a restart when the file system
// grows, and after a clean restart every acknowledged record is at its
// acknowledged offset, with sane offsets and segment names.
func TestFullDiskKeepsAckedRecords(t *testing.T) {
	fs := testfs.Mount(t, 8<<20)
	valuePad = 1000
	t.Cleanup(func() { valuePad = 60 })
	dir := filepath.Join(fs.Dir, "data")
	const topic = "full"
	args := []string{"--override", "log.segment.bytes=262144"}
	b := startBroker(t, dir, "127.0.0.1:0", args...)
	createTopic(t, b.addr, topic, 2)
	acks := newAckLog()
	prod := startProducers(t, b.addr, topic, 2, acks)

	// Fill.
	waitFull(t, fs, acks)
	c := dialRaw(t, b.addr)
	if _, err := sendProduce(c, topic, idempotentBatch(-1, -1, -1, strings.Repeat("x", 64<<10))); !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("a produce to the full disk was answered %v, want KAFKA_STORAGE_ERROR", err)
	}
	if lines := strings.Count(b.logs.String(), `topic=full`); lines == 0 {
		t.Errorf("the refused produces were not logged with their topic:\n%s", b.logs)
	}
	t.Logf("full: %d records acknowledged, %d bytes free", acks.count(), freeBytes(t, fs.Dir))

	// Read while full.
	checkLog(t, consumeAll(t, b.addr, topic), acks.snapshot())

	// DeleteRecords while full, past whole segments of partition 0.
	ends := endOffsets(t, b.addr, topic)
	before := freeBytes(t, fs.Dir)
	deleteTo := ends[0] * 3 / 4
	adm := kadm.NewClient(newClient(t, b.addr))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	to := kadm.Offsets{}
	to.Add(kadm.Offset{Topic: topic, Partition: 0, At: deleteTo})
	resp, err := adm.DeleteRecords(ctx, to)
	if err != nil {
		t.Fatalf("DeleteRecords: %v", err)
	}
	r, _ := resp.Lookup(topic, 0)
	if r.Err != nil || r.LowWatermark != deleteTo {
		t.Fatalf("DeleteRecords on the full disk: low watermark %d, %v; want %d", r.LowWatermark, r.Err, deleteTo)
	}
	if after := freeBytes(t, fs.Dir); after <= before {
		// The producers may have taken it all again already: then acks moved.
		t.Logf("free space after DeleteRecords: %d (before %d); the producers took it", after, before)
	}

	// Kill -9 on the full disk (the freed space is filled again first).
	waitFull(t, fs, acks)
	b.kill9()
	beforeKill := acks.snapshot()
	b = startBroker(t, dir, b.addr, args...)
	v := consumeAll(t, b.addr, topic)
	checkLog(t, v, beforeKill)
	if v.starts[0] < deleteTo {
		t.Fatalf("after kill -9 partition 0 starts at %d, but DeleteRecords answered %d", v.starts[0], deleteTo)
	}

	// Grow: producing resumes without a restart.
	waitFull(t, fs, acks)
	full := acks.count()
	fs.Resize(32 << 20)
	acks.waitAcked(t, full+5000, 60*time.Second)
	t.Logf("after growing: %d records acknowledged (%d when full)", acks.count(), full)

	// Clean restart, then a last look at everything.
	prod.stop(t)
	b.sigterm()
	if b.waitErr != nil {
		t.Fatalf("broker exited with %v after SIGTERM:\n%s", b.waitErr, b.logs)
	}
	b = startBroker(t, dir, b.addr, args...)
	all := acks.snapshot()
	v = consumeAll(t, b.addr, topic)
	checkLog(t, v, all)
	if kept := ackedFrom(all, v.starts); int64(kept) != total(v.ends)-total(v.starts) {
		t.Errorf("the log holds %d records but %d acknowledged ones are at or after the log start", total(v.ends)-total(v.starts), kept)
	}
	for p, end := range v.ends {
		if end < 0 || v.starts[p] < 0 || v.starts[p] > end {
			t.Errorf("partition %d: offsets %d to %d", p, v.starts[p], end)
		}
	}
	if f := acks.failures(); len(f) > 0 {
		t.Errorf("producers had records fail (they retry until the disk has room): %v", f)
	}
	files, _ := filepath.Glob(filepath.Join(dir, topic+"-*", "*.log"))
	for _, f := range files {
		base, err := strconv.ParseInt(strings.TrimSuffix(filepath.Base(f), ".log"), 10, 64)
		if err != nil || base < 0 {
			t.Errorf("segment file %s has a bad name", f)
		}
	}
	if strings.Contains(b.logs.String(), "level=ERROR") {
		t.Errorf("the clean restart logged errors:\n%s", b.logs)
	}
	t.Logf("%d records acknowledged in all, offsets %v to %v, %d segment files", len(all), v.starts, v.ends, len(files))
}
