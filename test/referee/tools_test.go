package referee

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's own command-line tools (the classes behind kafka-topics.sh and
// the rest) run against creek and against Apache Kafka with the same
// arguments; their exit status and what they print, once each brokerArg's
// address, ids and clock readings are taken out, must be the same.

// toolRun is one run of a tool.
type toolRun struct {
	code           int
	stdout, stderr string
}

func (r toolRun) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, lastLines([]byte(r.stderr), 15))
}

// quickJVM starts the tools' JVMs with the client compiler only: they run
// for seconds, and compiling less saves a third of their CPU.
const quickJVM = "KAFKA_RUN_OPTS=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"

// brokerArg is the placeholder for each brokerArg's address in onBoth's args.
const brokerArg = "BROKER"

// tool runs a tool's class with scripts/kafka.sh run, stdin as its input.
func tool(t *testing.T, stdin, class string, args ...string) toolRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kafkaScript(), append([]string{"run", class}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), quickJVM)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := toolRun{stdout: out.String(), stderr: errOut.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v\n%s", class, err, r.stderr)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s %s did not finish within 2 minutes:\n%s", class, strings.Join(args, " "), r)
	}
	return r
}

// onBoth runs the same tool command against creek and against Kafka at the
// same time; BROKER (brokerArg) in args stands for each brokerArg's address.
func onBoth(t *testing.T, stdin, class string, args ...string) (creek, kafka toolRun) {
	t.Helper()
	needKafka(t)
	withAddr := func(addr string) []string {
		out := slices.Clone(args)
		for i := range out {
			out[i] = strings.ReplaceAll(out[i], brokerArg, addr)
		}
		return out
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		kafka = tool(t, stdin, class, withAddr(kafkaAddr)...)
	}()
	creek = tool(t, stdin, class, withAddr(creekAddr)...)
	wg.Wait()
	return creek, kafka
}

// cleaner rewrites a tool's output before comparison: side is "creek" or
// "kafka", for the known differences that concern one of them.
type cleaner func(side, out string) string

// tidy puts the address, whitespace runs and line order aside: the tools
// print tables whose rows come in the order of a map.
func tidy(side, out string) string {
	addr := creekAddr
	if side == "kafka" {
		addr = kafkaAddr
	}
	out = strings.ReplaceAll(out, addr, brokerArg)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// sameRun reports a difference in exit status, in the cleaned output, or,
// when the command failed, in its error lines.
func sameRun(t *testing.T, what string, creek, kafka toolRun, clean ...cleaner) {
	t.Helper()
	apply := func(side, s string) string {
		s = tidy(side, s)
		for _, c := range clean {
			s = c(side, s)
		}
		return s
	}
	if creek.code != kafka.code {
		t.Errorf("%s: creek exits %d, kafka %d\ncreek: %s\nkafka: %s", what, creek.code, kafka.code, creek, kafka)
		return
	}
	if c, k := apply("creek", creek.stdout), apply("kafka", kafka.stdout); c != k {
		t.Errorf("%s prints differently:\ncreek:\n%s\nkafka:\n%s", what, c, k)
	}
	if creek.code != 0 {
		if c, k := apply("creek", errorLines(creek.stderr)), apply("kafka", errorLines(kafka.stderr)); c != k {
			t.Errorf("%s fails differently:\ncreek:\n%s\nkafka:\n%s", what, c, k)
		}
	}
}

// errorLines are the lines of a tool's stderr that say what failed (not
// its log lines or a stack trace).
func errorLines(stderr string) string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "Error") || strings.Contains(l, "Exception:") && !strings.HasPrefix(l, "\tat ") && !strings.HasPrefix(l, "[") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// replace is a cleaner applying a regular expression on both sides.
func replace(re, with string) cleaner {
	r := regexp.MustCompile(re)
	return func(_, s string) string { return r.ReplaceAllString(s, with) }
}

// onSide is a cleaner for one brokerArg's output only.
func onSide(which string, c cleaner) cleaner {
	return func(side, s string) string {
		if side != which {
			return s
		}
		return c(side, s)
	}
}

const (
	topicTool     = "org.apache.kafka.tools.TopicCommand"
	producerTool  = "org.apache.kafka.tools.ConsoleProducer"
	consumerTool  = "org.apache.kafka.tools.consumer.ConsoleConsumer"
	groupsTool    = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
	configsTool   = "org.apache.kafka.tools.ConfigCommand"
	offsetsTool   = "org.apache.kafka.tools.GetOffsetShell"
	deleteTool    = "org.apache.kafka.tools.DeleteRecordsCommand"
	txnTool       = "org.apache.kafka.tools.TransactionsCommand"
	producerPerf  = "org.apache.kafka.tools.ProducerPerformance"
	consumerPerf  = "org.apache.kafka.tools.ConsumerPerformance"
	bootstrapFlag = "--bootstrap-server"
)

// Differences in kafka-topics' output that are not creek's to fix here.
var topicsKnown = []cleaner{
	replace(`TopicId: \S+`, "TopicId: ID"),
	// creek does not serve DescribeTopicPartitions (KIP-966), so the tool
	// falls back to Metadata and knows no eligible leader replicas.
	onSide("creek", replace(`Elr: N/A LastKnownElr: N/A`, "Elr: LastKnownElr:")),
	// The referee brokerArg's server.properties sets min.insync.replicas,
	// which Kafka then shows as a brokerArg-level override on every topic.
	onSide("kafka", replace(`Configs: min\.insync\.replicas=1,?`, "Configs: ")),
}

// kafkaSettled waits (up to 10 s) until Kafka's answer to req satisfies
// ok: Kafka applies topic and config changes through its metadata log, a
// moment after it has answered them, and a tool run at once may see the
// old state.
func (p *pair) kafkaSettled(req kmsg.Request, ok func(kmsg.Response) bool) {
	p.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ok(p.kafka.must(req)) {
			return
		}
	}
}

// kafkaConfigIs waits until Kafka reports a topic config's value ("" for
// not set on the topic).
func (p *pair) kafkaConfigIs(topic, name, value string) {
	req := describeConfigsReq(kmsg.ConfigResourceTypeTopic, topic, name)("kafka")
	req.SetVersion(4)
	p.kafkaSettled(req, func(resp kmsg.Response) bool {
		for _, r := range resp.(*kmsg.DescribeConfigsResponse).Resources {
			for _, c := range r.Configs {
				own := c.Source == kmsg.ConfigSourceDynamicTopicConfig
				return (value == "" && !own) || (own && c.Value != nil && *c.Value == value)
			}
		}
		return false
	})
}

func TestToolTopics(t *testing.T) {
	p := newPair(t)
	topic := uniqueName(t, "topic")
	create := []string{bootstrapFlag, brokerArg, "--create", "--topic", topic, "--partitions", "3", "--config", "retention.ms=3600000"}
	c, k := onBoth(t, "", topicTool, create...)
	sameRun(t, "kafka-topics --create", c, k)
	c, k = onBoth(t, "", topicTool, create...)
	sameRun(t, "kafka-topics --create of an existing topic", c, k)
	if c.code == 0 {
		t.Errorf("creating an existing topic succeeded: %s", c)
	}
	c, k = onBoth(t, "", topicTool, bootstrapFlag, brokerArg, "--alter", "--topic", topic, "--partitions", "4")
	sameRun(t, "kafka-topics --alter --partitions", c, k)
	md := metadataReq(false, topic)("kafka")
	md.SetVersion(9)
	p.kafkaSettled(md, func(resp kmsg.Response) bool {
		ts := resp.(*kmsg.MetadataResponse).Topics
		return len(ts) == 1 && len(ts[0].Partitions) == 4
	})
	c, k = onBoth(t, "", topicTool, bootstrapFlag, brokerArg, "--describe", "--topic", topic)
	sameRun(t, "kafka-topics --describe", c, k, topicsKnown...)
	if !strings.Contains(c.stdout, "PartitionCount: 4") || !strings.Contains(c.stdout, "retention.ms=3600000") {
		t.Errorf("describe after the alter: %s", c)
	}
	c, k = onBoth(t, "", topicTool, bootstrapFlag, brokerArg, "--delete", "--topic", topic)
	sameRun(t, "kafka-topics --delete", c, k)
}

func TestToolConsoleAndConsumerGroups(t *testing.T) {
	p := newPair(t)
	topic, group := uniqueName(t, "topic"), uniqueName(t, "group")
	p.createTopic(topic, 2, nil)
	var input strings.Builder
	for i := range 20 {
		fmt.Fprintf(&input, "key-%d:value %d 안녕\n", i%5, i)
	}
	c, k := onBoth(t, input.String(), producerTool, bootstrapFlag, brokerArg, "--topic", topic,
		"--reader-property", "parse.key=true", "--reader-property", "key.separator=:")
	sameRun(t, "kafka-console-producer", c, k)

	made, incremental := creekCounter(t, "creek_broker_fetch_sessions_made_total"), creekCounter(t, "creek_broker_incremental_fetches_total")
	c, k = onBoth(t, "", consumerTool, bootstrapFlag, brokerArg, "--topic", topic, "--group", group, "--from-beginning",
		"--max-messages", "20", "--timeout-ms", "30000", "--formatter-property", "print.key=true",
		"--formatter-property", "print.partition=true", "--formatter-property", "print.offset=true")
	sameRun(t, "kafka-console-consumer", c, k)
	if n := strings.Count(c.stdout, "안녕"); n != 20 {
		t.Errorf("the console consumer read %d records from creek, want 20:\n%s", n, c)
	}
	// The Java consumer fetched from creek in an incremental fetch session.
	if m, i := creekCounter(t, "creek_broker_fetch_sessions_made_total")-made, creekCounter(t, "creek_broker_incremental_fetches_total")-incremental; m < 1 || i < 1 {
		t.Errorf("the Java console consumer made %v fetch sessions on creek and sent %v incremental fetches; want both", m, i)
	}

	describe := []string{bootstrapFlag, brokerArg, "--describe", "--group", group}
	c, k = onBoth(t, "", groupsTool, describe...)
	sameRun(t, "kafka-consumer-groups --describe", c, k)
	c, k = onBoth(t, "", groupsTool, bootstrapFlag, brokerArg, "--reset-offsets", "--group", group, "--topic", topic+":0",
		"--to-offset", "3", "--execute")
	sameRun(t, "kafka-consumer-groups --reset-offsets --to-offset --execute", c, k)
	c, k = onBoth(t, "", groupsTool, bootstrapFlag, brokerArg, "--reset-offsets", "--group", group, "--all-topics",
		"--shift-by", "-2", "--dry-run")
	sameRun(t, "kafka-consumer-groups --reset-offsets --shift-by --dry-run", c, k)
	c, k = onBoth(t, "", groupsTool, describe...)
	sameRun(t, "kafka-consumer-groups --describe after the reset", c, k)
	if !regexp.MustCompile(`(?m)^\S+\s+` + regexp.QuoteMeta(topic) + `\s+0\s+3\s`).MatchString(c.stdout) {
		t.Errorf("after the reset partition 0 is not at offset 3:\n%s", c)
	}
}

func TestToolConfigs(t *testing.T) {
	p := newPair(t)
	topic := uniqueName(t, "topic")
	p.createTopic(topic, 1, map[string]string{"retention.ms": "3600000"})
	// creek's default retention.bytes is the seed's 1 GiB (Kafka: no
	// limit, docs/broker.md); the referee Kafka sets min.insync.replicas
	// in its server.properties, which Kafka lists as broker synonyms.
	compare := func(what string, c, k toolRun) {
		t.Helper()
		sameRun(t, what, c, k, replace(`DEFAULT_CONFIG:log\.retention\.bytes=\S+?([,}])`, "DEFAULT_CONFIG:log.retention.bytes=DEFAULT$1"),
			replace(`(DYNAMIC_DEFAULT_BROKER_CONFIG|STATIC_BROKER_CONFIG):min\.insync\.replicas=1, `, ""))
	}
	entity := []string{bootstrapFlag, brokerArg, "--entity-type", "topics", "--entity-name", topic}
	c, k := onBoth(t, "", configsTool, append(entity, "--describe")...)
	compare("kafka-configs --describe", c, k)
	c, k = onBoth(t, "", configsTool, append(entity, "--alter", "--add-config", "retention.bytes=1000000,segment.ms=600000")...)
	compare("kafka-configs --alter --add-config", c, k)
	p.kafkaConfigIs(topic, "segment.ms", "600000")
	c, k = onBoth(t, "", configsTool, append(entity, "--alter", "--delete-config", "retention.ms")...)
	compare("kafka-configs --alter --delete-config", c, k)
	p.kafkaConfigIs(topic, "retention.ms", "")
	c, k = onBoth(t, "", configsTool, append(entity, "--describe")...)
	compare("kafka-configs --describe after the alters", c, k)
	if !strings.Contains(c.stdout, "retention.bytes=1000000") || strings.Contains(c.stdout, "retention.ms=") {
		t.Errorf("creek's topic configs after the alters: %s", c)
	}
	c, k = onBoth(t, "", configsTool, append(entity, "--alter", "--add-config", "no.such.config=1")...)
	sameRun(t, "kafka-configs --alter of an unknown config", c, k)
	c, k = onBoth(t, "", configsTool, bootstrapFlag, brokerArg, "--entity-type", "brokers", "--entity-name", "1", "--describe")
	compare("kafka-configs --describe of brokerArg 1", c, k)
}

func TestToolGetOffsetsAndDeleteRecords(t *testing.T) {
	p := newPair(t)
	topic := uniqueName(t, "topic")
	p.createTopic(topic, 2, nil)
	var input strings.Builder
	for i := range 30 {
		fmt.Fprintf(&input, "%d:v%d\n", i%3, i)
	}
	c, k := onBoth(t, input.String(), producerTool, bootstrapFlag, brokerArg, "--topic", topic,
		"--reader-property", "parse.key=true", "--reader-property", "key.separator=:")
	sameRun(t, "kafka-console-producer", c, k)
	c, k = onBoth(t, "", offsetsTool, bootstrapFlag, brokerArg, "--topic", topic)
	sameRun(t, "kafka-get-offsets (latest)", c, k)
	if strings.Count(c.stdout, topic+":") != 2 {
		t.Errorf("kafka-get-offsets against creek: %s", c)
	}
	file := t.TempDir() + "/delete.json"
	json := fmt.Sprintf(`{"version":1,"partitions":[{"topic":%q,"partition":0,"offset":4},{"topic":%q,"partition":1,"offset":2}]}`, topic, topic)
	if err := os.WriteFile(file, []byte(json), 0o644); err != nil {
		t.Fatal(err)
	}
	c, k = onBoth(t, "", deleteTool, bootstrapFlag, brokerArg, "--offset-json-file", file)
	sameRun(t, "kafka-delete-records", c, k)
	c, k = onBoth(t, "", offsetsTool, bootstrapFlag, brokerArg, "--topic", topic, "--time", "earliest")
	sameRun(t, "kafka-get-offsets --time earliest after kafka-delete-records", c, k)
	if !strings.Contains(c.stdout, topic+":0:4") || !strings.Contains(c.stdout, topic+":1:2") {
		t.Errorf("creek's earliest offsets after deleting records: %s", c)
	}
	json = fmt.Sprintf(`{"version":1,"partitions":[{"topic":%q,"partition":0,"offset":1000}]}`, topic)
	if err := os.WriteFile(file, []byte(json), 0o644); err != nil {
		t.Fatal(err)
	}
	c, k = onBoth(t, "", deleteTool, bootstrapFlag, brokerArg, "--offset-json-file", file)
	sameRun(t, "kafka-delete-records past the end", c, k, replace(`error: \S+`, "error: E"))
}

// txnColumns keeps the rows of a kafka-transactions table about one
// transactional id, with what differs between brokers put aside: the
// producer id each hands out, the epoch (Kafka 4 bumps it at every commit
// with transaction version 2, KIP-890, which creek does not advertise, so
// creek's stays) and clock readings.
func txnColumns(id string) cleaner {
	return func(_, s string) string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			f := strings.Fields(l)
			switch {
			case len(f) >= 8 && f[1] == id: // describe: CoordinatorId TransactionalId ProducerId ProducerEpoch TransactionState TransactionTimeoutMs CurrentTransactionStartTimeMs TransactionDurationMs [TopicPartitions]
				f[2], f[3] = "PID", "EPOCH"
				for i, what := range map[int]string{6: "START", 7: "DURATION"} {
					if f[i] != "None" {
						f[i] = what
					}
				}
			case len(f) == 4 && f[0] == id: // list: TransactionalId Coordinator ProducerId TransactionState
				f[2] = "PID"
			default:
				continue // the header, and other tests' transactions
			}
			out = append(out, strings.Join(f, " "))
		}
		return strings.Join(out, "\n")
	}
}

func TestToolPerfAndTransactions(t *testing.T) {
	p := newPair(t)
	topic, txn := uniqueName(t, "topic"), uniqueName(t, "txn")
	p.createTopic(topic, 1, nil)
	// --command-property takes every property after it: one flag, both.
	c, k := onBoth(t, "", producerPerf, bootstrapFlag, brokerArg, "--topic", topic, "--num-records", "2000", "--record-size", "100",
		"--throughput", "-1", "--transactional-id", txn, "--transaction-duration-ms", "300",
		"--command-property", "acks=all", "linger.ms=5")
	for side, r := range map[string]toolRun{"creek": c, "kafka": k} {
		if r.code != 0 || !strings.Contains(r.stdout, "2000 records sent") {
			t.Errorf("kafka-producer-perf-test against %s: %s", side, r)
		}
	}
	c, k = onBoth(t, "", consumerPerf, bootstrapFlag, brokerArg, "--topic", topic, "--num-records", "2000", "--timeout", "30000")
	consumed := regexp.MustCompile(`(?m)^[^,]+, [^,]+, [0-9.]+, [0-9.]+, (\d+),`)
	for side, r := range map[string]toolRun{"creek": c, "kafka": k} {
		if m := consumed.FindStringSubmatch(r.stdout); r.code != 0 || m == nil || m[1] != "2000" {
			t.Errorf("kafka-consumer-perf-test against %s: %s", side, r)
		}
	}
	c, k = onBoth(t, "", txnTool, bootstrapFlag, brokerArg, "list")
	sameRun(t, "kafka-transactions list", c, k, txnColumns(txn))
	c, k = onBoth(t, "", txnTool, bootstrapFlag, brokerArg, "describe", "--transactional-id", txn)
	sameRun(t, "kafka-transactions describe", c, k, txnColumns(txn))
	if !strings.Contains(c.stdout, "CompleteCommit") {
		t.Errorf("kafka-transactions describe against creek: %s", c)
	}
}
