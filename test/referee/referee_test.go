// Package referee holds creek's differential tests: the same Kafka requests
// are sent to creek and to Apache Kafka (a real KRaft broker started by
// scripts/kafka.sh from Maven Central's jars), and the answers are compared
// field by field, leaving out what must differ between two brokers (ids,
// timestamps, throttle times, node ids, the cluster id, error messages).
// Every difference is a bug to fix, or a deliberate difference listed in
// known.go with its reason (and in docs/broker.md).
package referee

import (
	"bufio"

	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/broker"
)

var (
	creekAddr    string               // the embedded creek broker
	creekMetrics *prometheus.Registry // its metrics
	kafkaAddr    string               // Apache Kafka's bootstrap address
	skipWhy      string               // why Kafka is not here, when it is not

	// The version ranges each broker serves, by API key.
	creekVersions, kafkaVersions map[int16][2]int16
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "creek-referee-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "referee:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	creekMetrics = prometheus.NewRegistry()
	b, err := broker.Start(context.Background(), broker.Config{
		Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "creek"), Metrics: creekMetrics,
		Settings: map[string]string{"group.initial.rebalance.delay.ms": "0", "offsets.topic.num.partitions": "50"}, // Kafka's count, to compare where groups go
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "referee: start creek:", err)
		return 1
	}
	defer b.Close()
	creekAddr = b.Addr()

	if addr, err := startKafka(filepath.Join(dir, "kafka")); err != nil {
		skipWhy = err.Error()
		fmt.Fprintf(os.Stderr, "SKIP: referee tests: Apache Kafka is not available here: %v\n", err)
	} else {
		kafkaAddr = addr
		defer exec.Command(kafkaScript(), "stop", filepath.Join(dir, "kafka")).Run()
		if creekVersions, err = apiVersions(creekAddr); err == nil {
			kafkaVersions, err = apiVersions(kafkaAddr)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "referee: ApiVersions:", err)
			return 1
		}
	}
	return m.Run()
}

// creekCounter is the value of one of creek's counters.
func creekCounter(t *testing.T, name string) float64 {
	t.Helper()
	families, err := creekMetrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("creek has no metric %s", name)
	return 0
}

// apiVersions asks a broker which versions of which APIs it serves.
func apiVersions(addr string) (map[int16][2]int16, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	c := &conn{name: addr, nc: nc, rd: bufio.NewReader(nc)}
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "referee", "1"
	resp, err := c.roundTrip(req)
	if err != nil {
		return nil, err
	}
	out := map[int16][2]int16{}
	for _, k := range resp.(*kmsg.ApiVersionsResponse).ApiKeys {
		out[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	return out, nil
}

// versions lists the versions of an API that both brokers serve, oldest
// first, that are at least from (some scenarios need a newer field). For
// an API creek does not serve it lists Kafka's versions: the comparison
// then shows that creek does not answer.
func versions(key kmsg.Key, from int16) []int16 {
	c, inCreek := creekVersions[key.Int16()]
	k := kafkaVersions[key.Int16()]
	if !inCreek {
		c = k
	}
	var out []int16
	for v := max(c[0], k[0], from); v <= min(c[1], k[1]); v++ {
		out = append(out, v)
	}
	return out
}

func kafkaScript() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..", "scripts", "kafka.sh")
}

// startKafka starts one Apache Kafka broker under dir and returns its address.
func startKafka(dir string) (string, error) {
	if _, err := exec.LookPath("java"); err != nil {
		return "", fmt.Errorf("no java: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kafkaScript(), "start", dir)
	cmd.Env = append(os.Environ(), fmt.Sprint("KAFKA_OWNER_PID=", os.Getpid())) // stopped even if this process is killed
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("scripts/kafka.sh start: %v: %s", err, lastLines(out, 5))
	}
	for _, line := range strings.Split(string(out), "\n") {
		if addr, ok := strings.CutPrefix(line, "bootstrap="); ok {
			return addr, nil
		}
	}
	return "", fmt.Errorf("scripts/kafka.sh start printed no address: %s", lastLines(out, 5))
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// needKafka skips a test when Apache Kafka could not be started.
func needKafka(t *testing.T) {
	t.Helper()
	if kafkaAddr == "" {
		t.Skipf("SKIP: Apache Kafka is not available: %s", skipWhy)
	}
}

// conn is a raw Kafka protocol connection: requests built with kmsg, sent
// at the version they carry, answers decoded with kmsg.
type conn struct {
	t    *testing.T
	name string
	addr string
	nc   net.Conn
	rd   *bufio.Reader
	corr int32
}

func dial(t *testing.T, name, addr string) *conn {
	t.Helper()
	c := &conn{t: t, name: name, addr: addr}
	c.redial()
	t.Cleanup(func() { c.nc.Close() })
	return c
}

// redial opens a new connection (after the broker closed the last one).
func (c *conn) redial() {
	c.t.Helper()
	if c.nc != nil {
		c.nc.Close()
	}
	nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		c.t.Fatalf("dial %s at %s: %v", c.name, c.addr, err)
	}
	c.nc, c.rd = nc, bufio.NewReader(nc)
}

// roundTrip sends req and returns the answer, or an error when the broker
// closed the connection instead of answering.
func (c *conn) roundTrip(req kmsg.Request) (kmsg.Response, error) {
	c.corr++
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("referee")).AppendRequest(nil, req, c.corr)
	c.nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(frame); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(c.rd, size[:]); err != nil {
		return nil, fmt.Errorf("%s closed the connection instead of answering %s v%d: %w", c.name, kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.rd, body); err != nil {
		return nil, err
	}
	rd := kbin.Reader{Src: body}
	if corr := rd.Int32(); corr != c.corr {
		return nil, fmt.Errorf("%s answered correlation id %d, want %d", c.name, corr, c.corr)
	}
	resp := req.ResponseKind()
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		kmsg.SkipTags(&rd)
	}
	if err := resp.ReadFrom(rd.Src); err != nil {
		return nil, fmt.Errorf("decode %s's %s v%d answer: %w", c.name, kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp, nil
}

// pair is one connection to each broker.
type pair struct {
	t            *testing.T
	creek, kafka *conn
}

func newPair(t *testing.T) *pair {
	t.Helper()
	needKafka(t)
	return &pair{t: t, creek: dial(t, "creek", creekAddr), kafka: dial(t, "kafka", kafkaAddr)}
}

// send sends a request built by mk (called once per broker, with the
// broker's name, so that it can carry ids that broker handed out) at
// version to both brokers and returns both answers.
func (p *pair) send(what string, version int16, mk func(side string) kmsg.Request) (creek, kafka kmsg.Response) {
	p.t.Helper()
	var errs [2]error
	for i, c := range []*conn{p.creek, p.kafka} {
		req := mk(c.name)
		req.SetVersion(version)
		resp, err := c.roundTrip(req)
		if err != nil {
			c.redial()
		}
		errs[i] = err
		if i == 0 {
			creek = resp
		} else {
			kafka = resp
		}
	}
	if errs[0] != nil || errs[1] != nil {
		if (errs[0] == nil) != (errs[1] == nil) {
			p.t.Errorf("%s (%s v%d): creek: %v; kafka: %v", what, kmsg.NameForKey(mk("").Key()), version, orAnswered(errs[0]), orAnswered(errs[1]))
		}
		return nil, nil
	}
	return creek, kafka
}

func orAnswered(err error) string {
	if err == nil {
		return "answered"
	}
	return err.Error()
}

// same sends the request to both brokers and reports every field whose
// normalized value differs; it returns both answers.
func (p *pair) same(what string, version int16, mk func(side string) kmsg.Request, opts ...normalizer) (creek, kafka kmsg.Response) {
	p.t.Helper()
	creek, kafka = p.send(what, version, mk)
	if creek == nil || kafka == nil {
		return creek, kafka
	}
	c, k := normalize(creek, opts...), normalize(kafka, opts...)
	for _, d := range diff(c, k) {
		if why, ok := knownDifference(what, d.path); ok {
			p.t.Logf("%s: %s differs, deliberately: %s", what, d.path, why)
			continue
		}
		p.t.Errorf("%s (%s v%d): %s: creek %s, kafka %s", what, kmsg.NameForKey(creek.Key()), version, d.path, d.creek, d.kafka)
	}
	return creek, kafka
}

// both runs fn against each broker with its own connection: setup steps
// whose answers are not compared (creating a topic, producing).
func (p *pair) both(fn func(side string, c *conn)) {
	fn("creek", p.creek)
	fn("kafka", p.kafka)
}

// must sends a request to one broker and fails the test if it is not answered.
func (c *conn) must(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	resp, err := c.roundTrip(req)
	if err != nil {
		c.t.Fatalf("%s: %v", c.name, err)
	}
	return resp
}

// uniqueName returns a topic or group name not used before in this run.
func uniqueName(t *testing.T, what string) string {
	r := strings.NewReplacer("/", "-", " ", "-", "=", "-")
	return fmt.Sprintf("ref-%s-%s-%d", what, r.Replace(t.Name()), time.Now().UnixNano()%1e9)
}
