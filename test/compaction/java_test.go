package compaction

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/broker"
)

// Kafka Connect and Kafka Streams keep their state in compacted topics;
// these tests run Apache Kafka's own jars (fetched from Maven Central by
// scripts/kafka.sh into the cache) against a creek broker.

// javaSettings make every topic of the broker small-segmented and
// cleaned at any dirty ratio, so the topics that Connect and Streams
// create are compacted while the tests run.
var javaSettings = map[string]string{
	"log.cleaner.backoff.ms":           "50",
	"log.segment.bytes":                "2048",
	"log.cleaner.min.cleanable.ratio":  "0.01",
	"group.initial.rebalance.delay.ms": "0",
}

func startJavaBroker(t *testing.T, dir, listen string, more ...string) *broker.Broker {
	t.Helper()
	settings := maps.Clone(javaSettings)
	for i := 0; i+1 < len(more); i += 2 {
		settings[more[i]] = more[i+1]
	}
	b, err := broker.Start(context.Background(), broker.Config{
		Listen: listen, DataDir: dir, Settings: settings,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// kafkaLibs returns the folder of Apache Kafka's jars, fetching them once.
func kafkaLibs(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("java is not installed: Kafka Connect and Kafka Streams need a JDK 17 or later")
	}
	out, err := exec.Command("../../scripts/kafka.sh", "fetch").Output()
	if err != nil {
		t.Skipf("Apache Kafka's jars are not available (scripts/kafka.sh fetch: %v)", err)
	}
	return strings.TrimSpace(string(out))
}

// javaProc is a JVM the test started; its output is kept for the test log.
type javaProc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	exited chan struct{}
}

func (p *javaProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *javaProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func startJava(t *testing.T, name, dir string, args ...string) *javaProc {
	t.Helper()
	p := &javaProc{t: t, name: name, exited: make(chan struct{})}
	p.cmd = exec.Command("java", append([]string{"-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"}, args...)...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("output of %s:\n%s", name, p.output())
		}
	})
	return p
}

// stop ends the JVM with SIGTERM (its shutdown hooks run) and waits.
func (p *javaProc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// waitFor polls cond until it holds, failing after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, state := cond()
		if ok {
			t.Logf("%s: after %s", what, time.Until(deadline.Add(-within)).Abs().Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (%s)", what, within, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// latestValues reads a topic from the start (committed records only) and
// returns each key's last value.
func latestValues(t *testing.T, addr, topic string) map[string]string {
	t.Helper()
	cl := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	defer cl.Close()
	out := map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { out[string(r.Key)] = string(r.Value) })
	}
	return out
}

// TestKafkaStreamsStateStore runs a Kafka Streams word count (exactly once,
// its counts in a state store whose changelog is a compacted topic) against
// creek. Its counts must stay right when the broker restarts under it, and
// when the application restarts with its local state deleted, so that the
// store is rebuilt from the changelog the cleaner has been compacting.
func TestKafkaStreamsStateStore(t *testing.T) {
	t.Parallel() // mostly waiting on JVMs
	libs := kafkaLibs(t)
	if _, err := exec.LookPath("javac"); err != nil {
		t.Skip("javac is not installed: the Kafka Streams application is compiled by the test")
	}
	work := t.TempDir()
	if out, err := exec.Command("javac", "-cp", filepath.Join(libs, "*"), "-d", work, "java/WordCount.java").CombinedOutput(); err != nil {
		t.Fatalf("javac WordCount.java: %v\n%s", err, out)
	}
	dir := t.TempDir()
	b := startJavaBroker(t, dir, "127.0.0.1:0")
	addr := b.Addr()
	admin := newClient(t, addr)
	createTopic(t, admin, "words-in", nil)
	createTopic(t, admin, "words-out", nil)

	stateDir := filepath.Join(work, "state")
	app := func() *javaProc {
		return startJava(t, "the Kafka Streams word count", work, "-cp", filepath.Join(libs, "*")+string(os.PathListSeparator)+work, "WordCount", addr, stateDir)
	}
	running := func(p *javaProc) {
		waitFor(t, 90*time.Second, "the word count reaches RUNNING", func() (bool, string) {
			return strings.Contains(p.output(), "STATE RUNNING"), lastLine(p.output())
		})
	}
	want := map[string]int{}
	prod := newClient(t, addr, kgo.DefaultProduceTopic("words-in"))
	produce := func(round, lines int) {
		t.Helper()
		for i := range lines {
			line := fmt.Sprintf("alpha beta w%d round%d", i%7, round)
			if err := prod.ProduceSync(context.Background(), &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(line)}).FirstErr(); err != nil {
				t.Fatalf("produce to words-in: %v", err)
			}
			for _, w := range strings.Fields(line) {
				want[w]++
			}
		}
	}
	counted := func(what string) {
		t.Helper()
		waitFor(t, 60*time.Second, what, func() (bool, string) {
			got := latestValues(t, addr, "words-out")
			for w, n := range want {
				if got[w] != fmt.Sprint(n) {
					return false, fmt.Sprintf("%s counted %q, want %d", w, got[w], n)
				}
			}
			return true, ""
		})
	}

	p := app()
	running(p)
	produce(1, 200)
	counted("counts of the first lines")

	b.Close()
	startJavaBroker(t, dir, addr) // closed by the test's cleanup
	produce(2, 200)
	counted("counts after the broker restarted under the application")

	changelog := "creek-wordcount-counts-changelog"
	waitFor(t, 30*time.Second, "the changelog is compacted", func() (bool, string) {
		st := cleanerStatus(t, admin, changelog)
		return st.LastCleaning != nil && st.LastCleaning.RecordsKept < st.LastCleaning.RecordsRead, fmt.Sprintf("%+v", st)
	})
	p.stop()
	if err := os.RemoveAll(stateDir); err != nil {
		t.Fatal(err)
	}
	p = app()
	running(p)
	produce(3, 200)
	counted("counts after the application restarted without its local state (restored from the compacted changelog)")
	t.Logf("words counted: %v", want)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// TestKafkaConnectDistributedWorker runs a Kafka Connect distributed
// worker, which refuses to start unless its config, offset and status
// topics are compacted, with a source connector (java/LinesSource.java)
// copying the lines of a file into a topic. The worker must go on when the broker
// restarts under it, and a new worker must find the connector and its
// offset in the compacted topics: it copies new lines and none twice.
func TestKafkaConnectDistributedWorker(t *testing.T) {
	t.Parallel()
	libs := kafkaLibs(t)
	work := t.TempDir()
	if _, err := exec.LookPath("javac"); err != nil {
		t.Skip("javac is not installed: the test's connector is compiled by the test")
	}
	if out, err := exec.Command("javac", "-cp", filepath.Join(libs, "*"), "-d", work, "java/LinesSource.java").CombinedOutput(); err != nil {
		t.Fatalf("javac LinesSource.java: %v\n%s", err, out)
	}
	dir := t.TempDir()
	// A segment per batch: Connect's offsets are compacted as they come.
	const segmentBytes = "100"
	b := startJavaBroker(t, dir, "127.0.0.1:0", "log.segment.bytes", segmentBytes)
	addr := b.Addr()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rest := "http://" + l.Addr().String()
	l.Close()
	props := filepath.Join(work, "worker.properties")
	if err := os.WriteFile(props, []byte(strings.Join([]string{
		"bootstrap.servers=" + addr,
		"group.id=creek-connect",
		"key.converter=org.apache.kafka.connect.storage.StringConverter",
		"value.converter=org.apache.kafka.connect.storage.StringConverter",
		"config.storage.topic=connect-configs",
		"offset.storage.topic=connect-offsets",
		"status.storage.topic=connect-status",
		"config.storage.replication.factor=1",
		"offset.storage.replication.factor=1",
		"status.storage.replication.factor=1",
		"offset.storage.partitions=1",
		"status.storage.partitions=1",
		"offset.flush.interval.ms=200",
		"listeners=" + rest,
		"plugin.discovery=only_scan",
		"",
	}, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	worker := func() *javaProc {
		p := startJava(t, "the Kafka Connect worker", work, "-cp", filepath.Join(libs, "*")+string(os.PathListSeparator)+work, "org.apache.kafka.connect.cli.ConnectDistributed", props)
		waitFor(t, 90*time.Second, "the Connect worker answers on its REST port", func() (bool, string) {
			resp, err := http.Get(rest + "/connectors")
			if err != nil {
				return false, err.Error()
			}
			resp.Body.Close()
			return resp.StatusCode == 200, resp.Status
		})
		return p
	}
	input := filepath.Join(work, "lines.txt")
	lines := 0
	appendLines := func(n int) {
		f, err := os.OpenFile(input, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			lines++
			fmt.Fprintf(f, "line %04d\n", lines)
		}
		f.Close()
	}
	copied := func(what string) {
		t.Helper()
		waitFor(t, 60*time.Second, what, func() (bool, string) {
			got := readLines(t, addr, "connect-lines")
			seen := map[string]int{}
			for _, l := range got {
				seen[l]++
			}
			for i := 1; i <= lines; i++ {
				if n := seen[fmt.Sprintf("line %04d", i)]; n != 1 {
					return false, fmt.Sprintf("line %d copied %d times (%d records)", i, n, len(got))
				}
			}
			return len(got) == lines, fmt.Sprintf("%d records for %d lines", len(got), lines)
		})
	}

	appendLines(50)
	p := worker()
	connector, _ := json.Marshal(map[string]any{"name": "lines", "config": map[string]string{
		"connector.class": "LinesSource",
		"tasks.max":       "1", "file": input, "topic": "connect-lines",
	}})
	resp, err := http.Post(rest+"/connectors", "application/json", bytes.NewReader(connector))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating the connector: %s %s", resp.Status, body)
	}
	copied("the first lines are copied")

	b.Close()
	startJavaBroker(t, dir, addr, "log.segment.bytes", segmentBytes)
	appendLines(50)
	copied("lines written after the broker restarted are copied")
	appendLines(50)
	copied("more lines are copied")
	admin := newClient(t, addr)
	waitFor(t, 30*time.Second, "the cleaner compacts Connect's offsets", func() (bool, string) {
		st := cleanerStatus(t, admin, "connect-offsets")
		return st.LastCleaning != nil && st.LastCleaning.RecordsKept < st.LastCleaning.RecordsRead, fmt.Sprintf("%+v", st)
	})

	p.stop()
	appendLines(50)
	worker()
	copied("a new worker resumes from the offset in the compacted topic")
	waitFor(t, 30*time.Second, "the connector is RUNNING", func() (bool, string) {
		resp, err := http.Get(rest + "/connectors/lines/status")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var st struct {
			Connector struct{ State string } `json:"connector"`
		}
		json.NewDecoder(resp.Body).Decode(&st)
		return st.Connector.State == "RUNNING", st.Connector.State
	})
}

// readLines reads every value of a topic from the start.
func readLines(t *testing.T, addr, topic string) []string {
	t.Helper()
	cl := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	defer cl.Close()
	var out []string
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
	}
	return out
}
