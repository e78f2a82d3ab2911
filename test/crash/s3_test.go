package crash

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/internal/s3test"
)

// archiver is a `creek consume --to s3` child process.
type archiver struct {
	cmd    *exec.Cmd
	out    *procLog
	exited chan struct{}
}

func startArchiver(t *testing.T, srv *s3test.Server, brokers string, flush ...string) *archiver {
	t.Helper()
	args := append([]string{"consume", "--brokers", brokers, "--topic", "tweets", "--group", "archive", "--from-beginning",
		"--to", "s3", "--s3-bucket", "crash", "--s3-endpoint", srv.Endpoint, "--s3-compression", "none", "--s3-flush-records", "1000000", "--session-timeout", "6s"}, flush...)
	a := &archiver{out: &procLog{listening: make(chan string, 1)}, exited: make(chan struct{})}
	a.cmd = exec.Command(creekBin, args...)
	a.cmd.Env = srv.Env()
	a.cmd.Stdout, a.cmd.Stderr = a.out, a.out
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.cmd.Wait(); close(a.exited) }()
	t.Cleanup(func() {
		a.cmd.Process.Kill()
		<-a.exited
		if t.Failed() {
			t.Logf("creek consume --to s3 said:\n%s", a.out)
		}
	})
	return a
}

// kill -9 of `creek consume --to s3` while it uploads an object in parts:
// the restarted consumer (with other flush settings) finds what was stored
// after its last commit, writes those objects again under the same names,
// aborts the upload the killed one left, and in the end every offset is in
// exactly one object and none is missing.
func TestKill9ArchiverMidUpload(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	srv.MakeBucket(t, "crash")
	b := startBroker(t, t.TempDir(), "127.0.0.1:0")
	createTopic(t, b.addr, "tweets", 3)

	// A producer keeps records coming, so that uploads go on until the kill.
	cl := newClient(t, b.addr, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	value := bytes.Repeat([]byte("x"), 2000)
	ctx, stopProducing := context.WithCancel(context.Background())
	var produced sync.WaitGroup
	produced.Add(1)
	go func() {
		defer produced.Done()
		for i := 0; i < 60_000 && ctx.Err() == nil; i++ {
			cl.Produce(ctx, &kgo.Record{Topic: "tweets", Value: fmt.Appendf(nil, `{"n":%d,"pad":"%s"}`, i, value)}, nil)
		}
		cl.Flush(context.Background())
	}()

	// Objects of 6 MiB go up in two parts of 5 MiB: kill when one is
	// half-uploaded and some objects are already stored.
	first := startArchiver(t, srv, b.addr, "--s3-flush-bytes", "6MiB")
	s3c := srv.Client(t)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ups, err := s3c.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String("crash")})
		if err != nil {
			t.Fatal(err)
		}
		if len(ups.Uploads) > 0 && len(srv.Keys(t, "crash", "")) > 0 {
			break
		}
		select {
		case <-first.exited:
			t.Fatalf("the archiver exited before the kill")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no multipart upload in progress within 60 s; the bucket holds %v", srv.Keys(t, "crash", ""))
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("kill -9 after %v, %d objects stored", time.Since(deadline.Add(-60*time.Second)), len(srv.Keys(t, "crash", "")))
	first.cmd.Process.Signal(syscall.SIGKILL)
	<-first.exited
	stopProducing()
	produced.Wait()
	ends := endOffsets(t, b.addr, "tweets")
	checkArchive(t, srv, nil) // no offset twice even now

	// The second run cuts objects elsewhere and by time; it must still
	// rewrite the stored ones as they were.
	second := startArchiver(t, srv, b.addr, "--s3-flush-bytes", "4MiB", "--s3-flush-interval", "1s")
	adm := kadm.NewClient(cl)
	for {
		offs, err := adm.FetchOffsets(context.Background(), "archive")
		if err != nil {
			t.Fatal(err)
		}
		done := true
		for p, end := range ends {
			if o, ok := offs.Lookup("tweets", p); !ok || o.At != end {
				done = false
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("the restarted archiver did not commit to the end %v: %v", ends, offs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("restarted archiver committed everything after %v", time.Since(deadline.Add(-60*time.Second)))
	second.cmd.Process.Signal(os.Interrupt)
	<-second.exited
	checkArchive(t, srv, ends)
	ups, _ := s3c.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String("crash")})
	if len(ups.Uploads) > 0 {
		t.Fatalf("uploads left unfinished after the restart: %d, first %s", len(ups.Uploads), aws.ToString(ups.Uploads[0].Key))
	}
	if !strings.Contains(second.out.String(), "rewriting an object stored but not committed before") {
		t.Logf("the kill came right after a commit: nothing stored was uncommitted (the rewrite is tested in internal/sink/s3)")
	}
}

// checkArchive reads every object and checks that no offset is in two of
// them and, with ends, that every offset below the end is in one.
func checkArchive(t *testing.T, srv *s3test.Server, ends map[int32]int64) {
	t.Helper()
	c := srv.Client(t)
	where := map[int32]map[int64]string{}
	for key := range srv.Keys(t, "crash", "") {
		out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("crash"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r struct {
				Partition int32 `json:"partition"`
				Offset    int64 `json:"offset"`
			}
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			if where[r.Partition] == nil {
				where[r.Partition] = map[int64]string{}
			}
			if other, dup := where[r.Partition][r.Offset]; dup {
				t.Fatalf("offset %d of partition %d is in %s and in %s", r.Offset, r.Partition, other, key)
			}
			where[r.Partition][r.Offset] = key
		}
		out.Body.Close()
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
	}
	for p, end := range ends {
		for off := int64(0); off < end; off++ {
			if _, ok := where[p][off]; !ok {
				t.Fatalf("offset %d of partition %d is in no object", off, p)
			}
		}
		if int64(len(where[p])) != end {
			t.Fatalf("partition %d: %d offsets archived, want %d", p, len(where[p]), end)
		}
	}
}
