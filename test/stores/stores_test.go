// Package stores runs the real creek binary as a consumer that stores
// generated tweets in each real store (PostgreSQL, OpenSearch, DynamoDB's
// API through dynalite) and checks what the issue promises: kill -9 of the
// consumer during the load and a restart leave exactly one copy of every
// tweet, equal to its source record; a malformed record lands in the
// dead-letter topic with its headers; a stopped store makes the consumer
// wait and commit nothing until it is back.
package stores

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/broker"
	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/processor"
	"github.com/creek-pipeline/creek/internal/source/generate"
	"github.com/creek-pipeline/creek/internal/storetest"
	"github.com/creek-pipeline/creek/internal/testbin"
)

var creekBin string

func TestMain(m *testing.M) {
	bin, remove := testbin.Build("stores")
	creekBin = bin
	code := storetest.Run(m)
	remove()
	os.Exit(code)
}

// store is what the test needs of one store.
type store struct {
	name   string
	server *storetest.Server
	env    []string                                      // for the consumer
	flags  []string                                      // --to and the sink's flags
	count  func(t *testing.T) int                        // tweets stored
	read   func(t *testing.T) map[string]processor.Tweet // every stored tweet by id
}

// consumer is one run of `creek consume`.
type consumer struct {
	cmd  *exec.Cmd
	logs *storetest.SyncBuffer
	done chan struct{}
}

func startConsumer(t *testing.T, brokerAddr, topic string, st *store) *consumer {
	t.Helper()
	args := append([]string{"consume", "--brokers", brokerAddr, "--topic", topic, "--group", "store-" + st.name, "--from-beginning",
		"--map", "tweet", "--dead-letter-topic", topic + "-dlq", "--log-level", "info",
		// After a kill -9 the group waits this long before the restarted
		// consumer gets the partitions (Kafka's smallest session timeout).
		"--session-timeout", "6s",
		// Small batches, so that the kill lands while some are stored and
		// others not (one batch of 15,000 would be all or nothing).
		"--max-batch", "500"}, st.flags...)
	c := &consumer{cmd: exec.Command(creekBin, args...), logs: &storetest.SyncBuffer{}, done: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), st.env...)
	c.cmd.Stdout, c.cmd.Stderr = c.logs, c.logs
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.done
		if t.Failed() {
			t.Logf("consumer log:\n%s", c.logs)
		}
	})
	return c
}

func (c *consumer) kill9(t *testing.T) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the consumer was not killed by SIGKILL: %v\n%s", c.cmd.ProcessState, c.logs)
	}
}

func (c *consumer) stop(t *testing.T) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the consumer did not stop within 30 s of SIGTERM:\n%s", c.logs)
	}
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// committed sums the group's committed offsets over the topic.
func committed(t *testing.T, adm *kadm.Client, group, topic string) int64 {
	t.Helper()
	offs, err := adm.FetchOffsets(context.Background(), group)
	if err != nil {
		return -1
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.At > 0 {
			n += o.At
		}
	})
	return n
}

// produce writes generated tweets, and a malformed record after the
// first half, and returns the tweets by id and the malformed record's
// place.
func produce(t *testing.T, cl *kgo.Client, topic string, seed uint64, n int, malformed bool) (map[string]pipeline.Message, *kgo.Record) {
	t.Helper()
	g := generate.New(seed)
	sent := map[string]pipeline.Message{}
	var recs []*kgo.Record
	var bad *kgo.Record
	for i := range n {
		m := g.Next(time.Now())
		sent[string(m.Key)] = m
		recs = append(recs, &kgo.Record{Topic: topic, Key: m.Key, Value: m.Value, Timestamp: m.Timestamp})
		if malformed && i == n/2 {
			bad = &kgo.Record{Topic: topic, Key: []byte("broken"), Value: []byte(`{"data":{"id":"1","text":"cut off`)}
			recs = append(recs, bad)
		}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return sent, bad
}

// checkStored: the store holds exactly the sent tweets, each equal to
// the flat form of its source record.
func checkStored(t *testing.T, st *store, sent map[string]pipeline.Message) {
	t.Helper()
	got := st.read(t)
	if len(got) != len(sent) || st.count(t) != len(sent) {
		t.Fatalf("%s holds %d tweets (counted %d), want %d", st.name, len(got), st.count(t), len(sent))
	}
	for id, m := range sent {
		want, err := processor.FromPost(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		g, ok := got[id]
		if !ok {
			t.Fatalf("%s lacks tweet %s", st.name, id)
		}
		if g.ID != want.ID || g.Text != want.Text || g.Lang != want.Lang || g.AuthorID != want.AuthorID || g.Username != want.Username ||
			!g.CreatedAt.Equal(want.CreatedAt) || strings.Join(g.Hashtags, ",") != strings.Join(want.Hashtags, ",") || !sameJSON(g.Raw, m.Value) {
			t.Fatalf("%s holds tweet %s as %+v, want %+v (raw %s)", st.name, id, g, want, m.Value)
		}
	}
}

// The whole story for one store.
func runStore(t *testing.T, st *store) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log:\n%s", st.server.Name, lastLines(st.server.Logs(), 40))
		}
	})
	b, err := broker.Start(context.Background(), broker.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Settings: map[string]string{"group.initial.rebalance.delay.ms": "0", "num.partitions": "3"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	const topic, n = "tweets", 15000
	sent, bad := produce(t, cl, topic, 1, n, true)
	total := int64(n + 1)

	// kill -9 during the load, then a restart.
	c := startConsumer(t, b.Addr(), topic, st)
	waitFor(t, "the first tweets in "+st.name, 2*time.Minute, func() bool { return st.count(t) >= n/10 })
	c.kill9(t)
	if got := st.count(t); got >= n {
		t.Fatalf("the kill came after the load (%d of %d stored): nothing was tested", got, n)
	}
	c = startConsumer(t, b.Addr(), topic, st)
	waitFor(t, "every record committed", 3*time.Minute, func() bool { return committed(t, adm, "store-"+st.name, topic) == total })
	c.stop(t)
	checkStored(t, st, sent)

	// The malformed record is in the dead-letter topic with Kafka
	// Connect's headers (once, or twice if the kill came between its
	// dead-lettering and the commit).
	dl := readAll(t, b.Addr(), topic+"-dlq")
	if len(dl) == 0 || len(dl) > 2 {
		t.Fatalf("%d records in the dead-letter topic, want the malformed one", len(dl))
	}
	for _, r := range dl {
		h := map[string]string{}
		for _, kv := range r.Headers {
			h[kv.Key] = string(kv.Value)
		}
		if string(r.Value) != string(bad.Value) || h[pipeline.HeaderErrTopic] != topic || h[pipeline.HeaderErrPartition] != strconv.Itoa(int(bad.Partition)) ||
			h[pipeline.HeaderErrOffset] != strconv.FormatInt(bad.Offset, 10) || h[pipeline.HeaderErrExceptionClass] != processor.ClassNotJSON ||
			h[pipeline.HeaderErrCreekStage] != "processor map tweet" || h[pipeline.HeaderErrMessage] == "" {
			t.Fatalf("dead letter %s with headers %v, want the malformed record %s/%d@%d", r.Value, h, topic, bad.Partition, bad.Offset)
		}
	}

	// The store stops under a running consumer: it waits, retries and
	// commits nothing; once the store is back, everything lands.
	c = startConsumer(t, b.Addr(), topic, st)
	first, _ := produce(t, cl, topic, 2, 10, false)
	total += 10
	waitFor(t, "the consumer to store ten more", time.Minute, func() bool { return committed(t, adm, "store-"+st.name, topic) == total })
	st.server.Stop()
	more, _ := produce(t, cl, topic, 3, 2000, false)
	waitFor(t, "the consumer to retry", time.Minute, func() bool { return strings.Contains(c.logs.String(), "retrying, nothing is committed") })
	time.Sleep(2 * time.Second) // more than the commit interval
	if got := committed(t, adm, "store-"+st.name, topic); got != total {
		t.Fatalf("committed %d records while %s was down, want %d", got, st.name, total)
	}
	select {
	case <-c.done:
		t.Fatalf("the consumer gave up while %s was down", st.name)
	default:
	}
	if err := st.server.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new tweets committed", 3*time.Minute, func() bool { return committed(t, adm, "store-"+st.name, topic) == total+2000 })
	c.stop(t)
	for id, m := range first {
		sent[id] = m
	}
	for id, m := range more {
		sent[id] = m
	}
	checkStored(t, st, sent)
}

// lastLines is the end of a log.
func lastLines(log string, n int) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// readAll reads a topic from its start to its end.
func readAll(t *testing.T, addr, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for int64(len(out)) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", len(out), want, topic)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// sameJSON: a and b are the same JSON value (PostgreSQL's jsonb, for
// one, keeps neither key order nor spacing).
func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func pgErrCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
