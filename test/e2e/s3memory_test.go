package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/broker"
	"github.com/creek-pipeline/creek/internal/s3test"
)

// `creek consume --to s3` keeps what it holds within --s3-memory whatever
// the number of partitions: with 100 partitions, 150 MB of records and the
// default budget (64 MiB) the process stays under 200 MiB. The consumer's
// fetches are sized from the budget and Go's collector is held to twice it;
// before, it fetched 50 MiB at a time and peaked near 300 MiB here (and at
// 430-480 MiB with a larger topic).
func TestArchiveToS3StaysWithinItsMemory(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	srv.MakeBucket(t, "memory")
	b, err := broker.Start(context.Background(), broker.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const partitions, records, size = 100, 150_000, 1000
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("wide"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, "wide"); err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("creek "), size/6)
	for i := range records {
		cl.Produce(ctx, &kgo.Record{Value: value, Key: strconv.AppendInt(nil, int64(i), 10)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	const budget = 64 << 20 // --s3-memory's default
	cmd := exec.CommandContext(ctx, creekBin, "consume", "--brokers", b.Addr(), "--topic", "wide", "--group", "archive", "--from-beginning",
		"--count", strconv.Itoa(records), "--to", "s3", "--s3-bucket", "memory", "--s3-endpoint", srv.Endpoint, "--s3-compression", "none")
	cmd.Env = srv.Env()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("creek consume --to s3: %v\n%s", err, out)
	}
	peak := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10 // kilobytes on Linux
	t.Logf("peak resident memory %d MiB with a budget of %d MiB for %d partitions", peak>>20, budget>>20, partitions)
	// Twice the budget and 16 MiB for the heap (144 MiB), and the binary's
	// own pages: under the 200 MiB the archive is meant to need.
	if limit := int64(200 << 20); peak > limit {
		t.Fatalf("peak resident memory %d MiB, want at most %d MiB", peak>>20, limit>>20)
	}
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, "archive")
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
	if committed != records {
		t.Fatalf("the group committed %d records, want all %d (each stored before it is committed)", committed, records)
	}
}
