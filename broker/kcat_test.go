package broker

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kcat (librdkafka) is the most common Kafka command-line client; these
// tests run the real binary against an embedded broker.

func kcatPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed (./scripts/test-deps.sh installs it)")
	}
	return p
}

func kcatBroker(t *testing.T) *Broker {
	t.Helper()
	b, err := Start(context.Background(), Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// kcatRun runs kcat against b with stdin and returns its standard output.
func kcatRun(t *testing.T, b *Broker, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcatPath(t), append([]string{"-b", b.Addr(), "-X", "fetch.wait.max.ms=20"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func kcatClient(t *testing.T, b *Broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addr())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func kcatCreateTopic(t *testing.T, b *Broker, topic string, partitions int32) {
	t.Helper()
	if _, err := kadm.NewClient(kcatClient(t, b)).CreateTopic(context.Background(), partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
}

func kcatLines(out string) []string {
	out = strings.TrimRight(out, "\n")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

func kcatCompare(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestKcatMetadata(t *testing.T) {
	kcatPath(t)
	b := kcatBroker(t)
	kcatCreateTopic(t, b, "kcat-meta", 3)
	out := kcatRun(t, b, "", "-L")
	for _, want := range []string{
		"1 brokers:",
		"broker 1 at " + b.Addr(),
		`topic "kcat-meta" with 3 partitions:`,
		"partition 2, leader 1, replicas: 1, isrs: 1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kcat -L output lacks %q:\n%s", want, out)
		}
	}
	out = kcatRun(t, b, "", "-L", "-t", "kcat-meta")
	if !strings.Contains(out, "1 topics:") || !strings.Contains(out, "partition 0, leader 1") {
		t.Errorf("kcat -L -t output:\n%s", out)
	}
}

var kcatCodecs = []struct {
	name string
	code uint8 // the batch attribute's compression bits
}{{"none", 0}, {"gzip", 1}, {"snappy", 2}, {"lz4", 3}, {"zstd", 4}}

// kcatProduceCodec produces 50 keyed records with kcat -z codec into a new
// topic and returns the topic and the lines kcat -C should print for it.
func kcatProduceCodec(t *testing.T, b *Broker, codec string) (string, []string) {
	t.Helper()
	topic := "kcat-codec-" + codec
	kcatCreateTopic(t, b, topic, 1)
	var in strings.Builder
	var want []string
	for i := 0; i < 50; i++ {
		// Values repeat themselves so that compression pays off and
		// librdkafka has no reason to send them uncompressed.
		v := fmt.Sprintf("%s value %03d %s", codec, i, strings.Repeat("abc", 40))
		fmt.Fprintf(&in, "key-%03d:%s\n", i, v)
		want = append(want, fmt.Sprintf("%s|0|%d|key-%03d|%s", topic, i, i, v))
	}
	args := []string{"-P", "-t", topic, "-K:"}
	if codec != "none" {
		args = append(args, "-z", codec)
	}
	kcatRun(t, b, in.String(), args...)
	return topic, want
}

// TestKcatProduceConsumeEveryCodec produces keyed records with kcat under
// each codec librdkafka has and reads them back with kcat.
func TestKcatProduceConsumeEveryCodec(t *testing.T) {
	kcatPath(t)
	b := kcatBroker(t)
	for _, codec := range kcatCodecs {
		t.Run(codec.name, func(t *testing.T) {
			topic, want := kcatProduceCodec(t, b, codec.name)
			out := kcatRun(t, b, "", "-C", "-t", topic, "-e", "-q", "-f", "%t|%p|%o|%k|%s\n")
			kcatCompare(t, "kcat -C", kcatLines(out), want)
		})
	}
}

// TestKcatCompressionIsKept checks, with franz-go, that the batches kcat
// sent with -z are stored compressed with that codec: a broker whose
// ApiVersions answer makes librdkafka give up compression would cost every
// librdkafka user disk and bandwidth without a word.
func TestKcatCompressionIsKept(t *testing.T) {
	kcatPath(t)
	b := kcatBroker(t)
	for _, codec := range kcatCodecs {
		t.Run(codec.name, func(t *testing.T) {
			topic, _ := kcatProduceCodec(t, b, codec.name)
			cl := kcatClient(t, b, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			stored := map[uint8]int{}
			n := 0
			for n < 50 && ctx.Err() == nil {
				cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
					stored[r.Attrs.CompressionType()]++
					n++
				})
			}
			if n != 50 {
				t.Fatalf("franz-go read %d records, want 50", n)
			}
			if stored[codec.code] != 50 {
				t.Errorf("kcat -z %s: records stored by compression codec %v, want all 50 with codec %d. "+
					"librdkafka before 2.11.1 (Debian's kcat has 2.0.2) drops gzip, snappy and lz4 when the broker's "+
					"ApiVersions range for Produce does not include v0 (rd_kafka_msgset_writer_select_MsgVersion asks "+
					"whether Produce [0,0] is supported); check the Produce floor in broker/apis.go",
					codec.name, stored, codec.code)
			}
		})
	}
}

// TestKcatOffsets covers kcat's ways of choosing where to start: -o
// beginning, end, an absolute offset, a relative one, a timestamp, and
// -Q for offsets by timestamp.
func TestKcatOffsets(t *testing.T) {
	kcatPath(t)
	b := kcatBroker(t)
	const topic = "kcat-offsets"
	kcatCreateTopic(t, b, topic, 2)
	// Ten records on partition 1 with timestamps 1000, 2000, ... 10000 ms.
	cl := kcatClient(t, b, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var all []string
	for i := 0; i < 10; i++ {
		r := &kgo.Record{Partition: 1, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i)), Timestamp: time.UnixMilli(int64(i+1) * 1000)}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		all = append(all, fmt.Sprintf("%d %d k%d v%d %d", r.Partition, r.Offset, i, i, (i+1)*1000))
	}
	consume := func(args ...string) []string {
		t.Helper()
		return kcatLines(kcatRun(t, b, "", append([]string{"-C", "-t", topic, "-p", "1", "-e", "-q", "-f", "%p %o %k %s %T\n"}, args...)...))
	}
	kcatCompare(t, "-o beginning", consume("-o", "beginning"), all)
	kcatCompare(t, "-o end", consume("-o", "end"), nil)
	kcatCompare(t, "-o 7", consume("-o", "7"), all[7:])
	kcatCompare(t, "-o -3", consume("-o", "-3"), all[7:])
	kcatCompare(t, "-o s@4500", consume("-o", "s@4500"), all[4:])
	kcatCompare(t, "-c 2", consume("-o", "beginning", "-c", "2"), all[:2])

	// The whole topic, both partitions, from the start: nothing on partition 0.
	out := kcatLines(kcatRun(t, b, "", "-C", "-t", topic, "-e", "-q", "-f", "%p %o %k %s %T\n"))
	kcatCompare(t, "whole topic", out, all)

	for _, q := range []struct {
		ts   string
		want string
	}{
		{"0", "offset 0"},
		{"1000", "offset 0"},
		{"2500", "offset 2"},
		{"10000", "offset 9"},
		{"99999999999", "offset -1"},
		{"-1", "offset 10"}, // latest
		{"-2", "offset 0"},  // earliest
	} {
		out := kcatRun(t, b, "", "-Q", "-t", topic+":1:"+q.ts)
		if want := topic + " [1]  " + q.want; !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("kcat -Q -t %s:1:%s: got %q, want %q", topic, q.ts, strings.TrimSpace(out), want)
		}
	}
	empty := kcatRun(t, b, "", "-Q", "-t", topic+":0:1000")
	if !strings.Contains(empty, topic+" [0]") || !strings.Contains(empty, "offset -1") {
		t.Errorf("kcat -Q on the empty partition: %q", empty)
	}
}

// TestKcatHeadersAndNullValues produces headers and an empty value with
// kcat and reads them back.
func TestKcatHeadersAndNullValues(t *testing.T) {
	kcatPath(t)
	b := kcatBroker(t)
	const topic = "kcat-headers"
	kcatCreateTopic(t, b, topic, 1)
	kcatRun(t, b, "k1:v1\nk2:\n", "-P", "-t", topic, "-K:", "-H", "source=kcat", "-H", "n=1", "-Z")
	out := kcatLines(kcatRun(t, b, "", "-C", "-t", topic, "-e", "-q", "-Z", "-f", "%o %k [%s] %h\n"))
	kcatCompare(t, "headers", out, []string{"0 k1 [v1] source=kcat,n=1", "1 k2 [NULL] source=kcat,n=1"})
}
