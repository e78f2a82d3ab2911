// Package cluster runs the seed's producer and consumers — creek produce
// from the tweet generator, creek consume in a consumer group into a file,
// and a creek run pipeline — against a real three-broker Apache Kafka
// cluster (replication factor 3, min.insync.replicas 2, started on loopback
// by scripts/kafka.sh), while one broker is killed with kill -9 and started
// again. It checks what creek promises beyond one machine: nothing
// acknowledged is lost, the idempotent producer writes nothing twice, the
// consumers deliver at least once and their groups resume where they
// committed.
package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/internal/clusterview"
	"github.com/creek-pipeline/creek/internal/source/generate"
	"github.com/creek-pipeline/creek/internal/testbin"
)

var creekBin string

func TestMain(m *testing.M) {
	bin, remove := testbin.Build("cluster")
	creekBin = bin
	code := m.Run()
	remove()
	os.Exit(code)
}

// testJVMFlags start the brokers sooner: the quick compiler only (the
// test's load is light) and a small heap.
const testJVMFlags = "-Xms64m -Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1"

const seed = 13 // of the generator: the test knows every tweet id in advance

func TestSeedPipelineAgainstThreeBrokerKafka(t *testing.T) {
	dir := t.TempDir()
	kafkaDir := filepath.Join(dir, "kafka")
	began := time.Now()
	brokers := startCluster(t, kafkaDir)
	t.Logf("three Kafka brokers serve after %.1f s", time.Since(began).Seconds())
	t.Cleanup(func() { exec.Command(kafkaScript(), "stop", kafkaDir).Run() })
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	// The topics as a user would create them on a cluster.
	for _, topic := range []string{"tweets", "tweets-ko"} {
		creekOK(t, "topics", "create", topic, "--brokers", brokers, "--partitions", "3", "--replication-factor", "3")
	}

	// The seed's three programs.
	producer := start(t, dir, "produce", "produce", "--brokers", brokers, "--topic", "tweets", "--from", "generate",
		"--rate", "300", "--seed", strconv.Itoa(seed), "--acks", "all")
	archive := filepath.Join(dir, "archive.jsonl")
	consume := []string{"consume", "--brokers", brokers, "--topic", "tweets", "--group", "archive", "--from-beginning",
		"--session-timeout", "10s", "--to", "file", "--path", archive}
	consumer := start(t, dir, "consume-1", consume...)
	pipelineFile := filepath.Join(dir, "pipeline.yaml")
	os.WriteFile(pipelineFile, []byte(`
input:
  kafka: {brokers: "`+brokers+`", topic: tweets, group: korean, from-beginning: true, session-timeout: 10s}
processors:
  - filter: 'value.data.lang == "ko"'
output:
  kafka: {brokers: "`+brokers+`", topic: tweets-ko}
`), 0o644)
	pipeline := start(t, dir, "run", "run", pipelineFile)

	waitFor(t, 60*time.Second, "the producer's first 500 tweets", func() bool { return endOffsets(t, adm, "tweets") >= 500 })

	// The dashboard's view of the cluster, with its own long-lived client,
	// as `creek dashboard --brokers` runs it.
	viewCl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.DialTimeout(5*time.Second), kgo.RequestRetries(2), kgo.RetryTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer viewCl.Close()
	view := clusterview.New(kadm.NewClient(viewCl), clusterview.Options{Interval: time.Second})
	viewCtx, stopView := context.WithCancel(context.Background())
	defer stopView()
	go view.Run(viewCtx)
	waitFor(t, 30*time.Second, "the dashboard's view to show the archive group", func() bool { return viewCommitted(view, "archive", "tweets") >= 0 })

	// kill -9 the broker that coordinates the archive group (it leads
	// a partition of tweets too: every broker leads one).
	victim := coordinator(t, adm, "archive")
	pid := brokerPID(t, kafkaDir, victim)
	atKill := endOffsets(t, adm, "tweets")
	t.Logf("kill -9 broker %d (pid %d) at %d tweets", victim, pid, atKill)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The cluster moves the leaders and the coordinators (after
	// broker.session.timeout.ms); the producer, the consumer and the
	// pipeline carry on with the other two brokers.
	waitFor(t, 90*time.Second, "the groups to commit past the tweets produced before the kill", func() bool {
		return committed(t, brokers, "archive", "tweets") > atKill+300 && committed(t, brokers, "korean", "tweets") > atKill+300
	})
	// The view's client had the dead broker as the group's coordinator;
	// it must find the new one, not go on asking the dead broker.
	waitFor(t, 60*time.Second, "the dashboard's view to show the archive group's commits after the kill", func() bool {
		return viewCommitted(view, "archive", "tweets") > atKill+300
	})

	t.Logf("starting broker %d again at %d tweets", victim, endOffsets(t, adm, "tweets"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	restarted := time.Now()
	restart := exec.CommandContext(ctx, kafkaScript(), "node", kafkaDir, strconv.Itoa(int(victim)))
	restart.Env = append(os.Environ(), "KAFKA_JVM_FLAGS="+testJVMFlags)
	if out, err := restart.CombinedOutput(); err != nil {
		t.Fatalf("restarting broker %d: %v\n%s", victim, err, out)
	}
	t.Logf("broker %d listens again after %.1f s", victim, time.Since(restarted).Seconds())
	waitFor(t, 2*time.Minute, fmt.Sprintf("broker %d back in every replica set of tweets", victim), func() bool { return inAllISRs(t, adm, "tweets", victim) })
	// Leadership moves back to it (the preferred leaders), under load:
	// the clients see NOT_LEADER_OR_FOLLOWER and find the leaders again.
	if _, err := adm.ElectLeaders(context.Background(), kadm.ElectPreferredReplica, kadm.TopicsSet{"tweets": {0: {}, 1: {}, 2: {}}}); err != nil {
		t.Logf("preferred leader election: %v", err)
	}
	// The consumer stops (committing what it wrote) and the next one
	// continues where the group stopped.
	consumer.stop(t)
	consumer = start(t, dir, "consume-2", consume...)
	time.Sleep(3 * time.Second)
	producer.stop(t) // delivers what it read, then exits 0
	total := endOffsets(t, adm, "tweets")
	t.Logf("producer stopped at %d tweets", total)

	want, wantKo := expected(total)
	waitFor(t, 60*time.Second, "the archive group and the pipeline to catch up", func() bool {
		return committed(t, brokers, "archive", "tweets") == total && committed(t, brokers, "korean", "tweets") == total
	})
	consumer.stop(t)
	pipeline.stop(t)

	// 1. The topic holds exactly the first `total` tweets of the
	// generator, each once: nothing acknowledged is lost, and the
	// idempotent producer wrote none twice through the leader moves.
	inTopic := readTopic(t, brokers, "tweets")
	checkExactlyOnce(t, "tweets", inTopic, want)

	// 2. The archive file has every tweet; a tweet twice only as the
	// same record delivered again (at least once), and fewer repeats
	// than the first consumer wrote (the group resumed, not restarted).
	lines := readArchive(t, archive)
	seen := map[string]string{} // id -> partition/offset
	repeats := 0
	for _, l := range lines {
		at := fmt.Sprintf("%d/%d", l.Partition, l.Offset)
		if prev, ok := seen[l.Key]; ok {
			if prev != at {
				t.Errorf("archive: tweet %s at %s and again at %s: two records, a duplicate written by the producer", l.Key, prev, at)
			}
			repeats++
			continue
		}
		seen[l.Key] = at
	}
	for _, id := range want {
		if _, ok := seen[id]; !ok {
			t.Errorf("archive: tweet %s (acknowledged to the producer) is missing", id)
			break
		}
	}
	if len(seen) != len(want) {
		t.Errorf("archive: %d distinct tweets, want %d", len(seen), len(want))
	}
	firstRun := consumer.linesBefore
	if repeats >= firstRun && firstRun > 0 {
		t.Errorf("archive: %d tweets written twice, as many as the first consumer wrote (%d): the group started over instead of resuming", repeats, firstRun)
	}
	t.Logf("archive: %d lines, %d tweets, %d delivered again after the restart (first consumer wrote %d)", len(lines), len(seen), repeats, firstRun)

	// 3. The pipeline's topic holds every Korean tweet, nothing else; a
	// repeat only where the group delivered again (at least once).
	inKo := readTopic(t, brokers, "tweets-ko")
	koSeen := map[string]int{}
	for _, id := range inKo {
		koSeen[id]++
	}
	for _, id := range wantKo {
		if koSeen[id] == 0 {
			t.Errorf("tweets-ko: Korean tweet %s is missing", id)
			break
		}
	}
	if len(koSeen) != len(wantKo) {
		t.Errorf("tweets-ko: %d distinct tweets, want the %d Korean ones", len(koSeen), len(wantKo))
	}
	t.Logf("tweets-ko: %d records, %d Korean tweets of %d", len(inKo), len(koSeen), len(want))

	// How often a Kafka output had to produce records again (the client
	// gave them up while the broker was down).
	for _, name := range []string{"produce", "run"} {
		b, _ := os.ReadFile(filepath.Join(dir, name+".stderr"))
		if n := strings.Count(string(b), "producing the failed records again"); n > 0 {
			t.Logf("creek %s produced failed records again %d times", name, n)
		}
	}
}

// startCluster starts three Kafka brokers under dir, or skips the test
// with the reason when Kafka cannot run here.
func startCluster(t *testing.T, dir string) string {
	t.Helper()
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("SKIP: no java here, so no Apache Kafka cluster to test creek's clients against (scripts/test-deps.sh fetches Kafka when java and mvn exist)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kafkaScript(), "start", dir, "3")
	cmd.Env = append(os.Environ(), "KAFKA_JVM_FLAGS="+testJVMFlags, fmt.Sprint("KAFKA_OWNER_PID=", os.Getpid())) // stopped even if this process is killed
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Skipf("SKIP: a three-broker Apache Kafka could not start here (scripts/kafka.sh start DIR 3): %v: %s", err, lastLines(out, 3))
	}
	for _, line := range strings.Split(string(out), "\n") {
		if addr, ok := strings.CutPrefix(line, "bootstrap="); ok {
			return addr
		}
	}
	t.Fatalf("scripts/kafka.sh start printed no bootstrap address: %s", out)
	return ""
}

func kafkaScript() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..", "scripts", "kafka.sh")
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// brokerPID is the process id of Kafka node id (line id of DIR/pids).
func brokerPID(t *testing.T, dir string, id int32) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "pids"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(b))
	if int(id) > len(lines) {
		t.Fatalf("no pid for broker %d in %q", id, b)
	}
	pid, err := strconv.Atoi(lines[id-1])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// process is a creek command running in the background.
type process struct {
	name        string
	cmd         *exec.Cmd
	done        chan error
	stderr      string
	linesBefore int // a file consumer: lines in its file when it started
}

func start(t *testing.T, dir, name string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(creekBin, args...)
	stderr := filepath.Join(dir, name+".stderr")
	f, err := os.Create(stderr)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan error, 1), stderr: stderr}
	go func() { p.done <- cmd.Wait(); f.Close() }()
	if path := argAfter(args, "--path"); path != "" {
		p.linesBefore = countLines(path)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("creek %s's output:\n%s", name, logTail(stderr))
		}
	})
	return p
}

// stop sends SIGTERM and expects a clean exit: what was read is delivered
// and committed first.
func (p *process) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("creek %s exited with %v after SIGTERM:\n%s", p.name, err, logTail(p.stderr))
		}
	case <-time.After(45 * time.Second):
		t.Fatalf("creek %s did not stop within 45 s of SIGTERM:\n%s", p.name, logTail(p.stderr))
	}
}

// logTail is the end of a creek log, without the client's repeated
// "unable to open connection" lines of a broker that is down.
func logTail(path string) string {
	b, _ := os.ReadFile(path)
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !strings.Contains(l, "unable to open connection to broker") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep[max(0, len(keep)-25):], "\n")
}

func argAfter(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func countLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}

func creekOK(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, creekBin, args...).CombinedOutput(); err != nil {
		t.Fatalf("creek %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	began := time.Now()
	for !ok() {
		if time.Since(began) > limit {
			t.Fatalf("waited %s for %s", limit, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("%s: after %.1f s", what, time.Since(began).Seconds())
}

// endOffsets sums the end offsets of a topic's partitions (-1 on error: the
// cluster is electing leaders).
func endOffsets(t *testing.T, adm *kadm.Client, topic string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		return -1
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// committed sums a group's committed offsets on a topic, asking with a new
// client each time as creek groups describe does: a long-lived franz-go
// client keeps sending OffsetFetch to a group coordinator that died (its
// sharded requests do not forget a coordinator they cannot dial).
func committed(t *testing.T, brokers, group, topic string) int64 {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil || offs.Error() != nil {
		return -1
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			n += o.At
		}
	})
	return n
}

// viewCommitted sums what the dashboard's view shows a group has committed
// on a topic; -1 while the view shows no such group, or an error for it.
func viewCommitted(v *clusterview.View, group, topic string) int64 {
	for _, g := range v.Snapshot().Groups {
		if g.Group != group || g.Err != "" {
			continue
		}
		n := int64(0)
		for _, p := range g.Partitions {
			if p.Topic == topic && p.Committed > 0 {
				n += p.Committed
			}
		}
		return n
	}
	return -1
}

func coordinator(t *testing.T, adm *kadm.Client, group string) int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, ok := adm.FindGroupCoordinators(ctx, group)[group]
	if !ok || c.Err != nil {
		t.Fatalf("coordinator of %s: %+v", group, c)
	}
	return c.NodeID
}

func inAllISRs(t *testing.T, adm *kadm.Client, topic string, broker int32) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return false
	}
	for _, p := range md.Topics[topic].Partitions {
		in := false
		for _, r := range p.ISR {
			in = in || r == broker
		}
		if !in {
			return false
		}
	}
	return true
}

// expected is the first n tweet ids of the generator with the test's seed,
// and those of them in Korean.
func expected(n int64) (all, korean []string) {
	g := generate.New(seed)
	for range n {
		m := g.Next(time.Now())
		id := string(m.Key)
		all = append(all, id)
		var v struct {
			Data struct {
				Lang string `json:"lang"`
			} `json:"data"`
		}
		json.Unmarshal(m.Value, &v)
		if v.Data.Lang == "ko" {
			korean = append(korean, id)
		}
	}
	return all, korean
}

// readTopic reads every record of a topic from the start, directly (no
// group), and returns their keys.
func readTopic(t *testing.T, brokers, topic string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	end := endOffsets(t, adm, topic)
	var keys []string
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for int64(len(keys)) < end {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s within 60 s", len(keys), end, topic)
		}
		fs.EachRecord(func(r *kgo.Record) { keys = append(keys, string(r.Key)) })
	}
	return keys
}

func checkExactlyOnce(t *testing.T, topic string, got, want []string) {
	t.Helper()
	count := map[string]int{}
	for _, id := range got {
		count[id]++
	}
	for _, id := range want {
		switch count[id] {
		case 1:
		case 0:
			t.Errorf("%s: acknowledged tweet %s is missing", topic, id)
		default:
			t.Errorf("%s: tweet %s stored %d times by the idempotent producer", topic, id, count[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s holds %d records, want the generator's first %d tweets", topic, len(got), len(want))
	}
}

type archiveLine struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key"`
}

func readArchive(t *testing.T, path string) []archiveLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []archiveLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l archiveLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("archive line %d: %v: %s", len(out)+1, err, sc.Text())
		}
		out = append(out, l)
	}
	return out
}
