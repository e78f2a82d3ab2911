// Package compat checks that the Kafka clients users already have work
// against creek's broker unchanged: kcat, kafka-python, confluent-kafka,
// KafkaJS, sarama, segmentio/kafka-go and franz-go. Each client runs the
// same scenarios through its own API; the results form a matrix that
// `make test` prints and docs/compatibility.md records.
//
// It is a separate Go module so that test-only client libraries stay out of
// creek's own dependencies.
package compat

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"

	"github.com/creek-pipeline/creek/broker"
)

// The scenarios every client runs, in matrix order.
var scenarios = []string{
	"create-topic",      // create a topic with several partitions through the client's admin API
	"produce-codecs",    // keyed records with headers, with every codec the client has (idempotent where offered)
	"consume-group",     // consume them back in a consumer group and commit
	"resume",            // a restarted group member continues after the committed offsets
	"list-offsets",      // earliest/latest (and by time where offered)
	"describe-configs",  // topic configs
	"error-path",        // a Kafka error surfaces as the client's error (client-specific)
	"transactions",      // a transactional producer commits one transaction and aborts another; read_committed sees only the committed records
	"consumer-protocol", // Kafka 4's consumer group protocol (KIP-848): two members split the partitions, commit, and a new member resumes
	"share-group",       // a share group (KIP-932): two members take every record once between them
	"sasl-scram-tls",    // SCRAM-SHA-512 over TLS (SASL_SSL): produce a few records and consume them back
	"sasl-plain",        // PLAIN over SASL_PLAINTEXT: produce and consume
	"bad-password",      // a wrong password is refused with the client's own authentication error
	"acl-denied",        // a topic the user has no ACL for: the client's own authorization error reaches the caller
}

var clients = []string{"kcat", "kafka-python", "kafka-python-2", "confluent-kafka", "confluent-kafka-2", "aiokafka",
	"kafkajs", "sarama", "kafka-go", "franz-go", "java-4.x", "java-2.x"}

// Result of one client × scenario.
type result struct {
	status string // pass, FAIL, n/a
	detail string
}

var matrix = struct {
	sync.Mutex
	r map[string]map[string]result
}{r: map[string]map[string]result{}}

func record(client, scenario, status, detail string) {
	matrix.Lock()
	defer matrix.Unlock()
	if matrix.r[client] == nil {
		matrix.r[client] = map[string]result{}
	}
	matrix.r[client][scenario] = result{status, detail}
}

// brokerAddr is the broker every client talks to.
var brokerAddr string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "creek-compat-")
	if err != nil {
		panic(err)
	}
	settings, err := secureCerts(dir)
	if err != nil {
		panic(err)
	}
	settings["group.initial.rebalance.delay.ms"] = "0"
	settings["group.consumer.heartbeat.interval.ms"] = "500"
	settings["group.share.heartbeat.interval.ms"] = "1000"
	b, err := broker.Start(context.Background(), broker.Config{DataDir: filepath.Join(dir, "data"), Settings: settings})
	if err != nil {
		panic(err)
	}
	brokerAddr = b.ListenerAddr("PLAINTEXT")
	if err := secureSetup(brokerAddr, b.ListenerAddr("SASL_SSL"), b.ListenerAddr("SASL_PLAINTEXT")); err != nil {
		panic(err)
	}
	code := m.Run()
	b.Close()
	os.RemoveAll(dir)
	table := renderMatrix()
	fmt.Print(table)
	if path := os.Getenv("COMPAT_MATRIX"); path != "" {
		os.WriteFile(path, []byte(table), 0o644)
	}
	os.Exit(code)
}

func renderMatrix() string {
	matrix.Lock()
	defer matrix.Unlock()
	var b strings.Builder
	b.WriteString("\nKafka client compatibility (client × scenario)\n\n")
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CLIENT\t"+strings.Join(scenarios, "\t"))
	var notes []string
	for _, c := range clients {
		row := []string{c}
		for _, s := range scenarios {
			r, ok := matrix.r[c][s]
			if !ok {
				r = result{status: "not run"}
			}
			row = append(row, r.status)
			if r.detail != "" {
				notes = append(notes, fmt.Sprintf("  %s / %s: %s", c, s, r.detail))
			}
		}
		fmt.Fprintln(w, strings.Join(row, "\t"))
	}
	w.Flush()
	if len(notes) > 0 {
		sort.Strings(notes)
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}
	return b.String()
}

// scenarioFunc runs one scenario; returning errNA marks it not applicable.
type scenarioFunc func(t *testing.T) error

type notApplicable string

func (n notApplicable) Error() string { return string(n) }

// passedWith is a pass that notes something (such as the codecs a client has).
type passedWith string

func (p passedWith) Error() string { return string(p) }

// runScenarios runs a client's scenarios in order as subtests and records
// each result; a scenario's failure does not stop the next ones.
func runScenarios(t *testing.T, client string, fns map[string]scenarioFunc) {
	for _, s := range scenarios {
		fn := fns[s]
		t.Run(s, func(t *testing.T) {
			if fn == nil {
				record(client, s, "n/a", "")
				return
			}
			err := fn(t)
			switch e := err.(type) {
			case nil:
				record(client, s, "pass", "")
			case passedWith:
				record(client, s, "pass", string(e))
			case notApplicable:
				record(client, s, "n/a", string(e))
				t.Skip(string(e))
			default:
				record(client, s, "FAIL", err.Error())
				t.Error(err)
			}
		})
	}
}

// codecs are the compression codecs each client tries.
var allCodecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// txnScript is the transactions scenario: one transaction committed, one
// aborted, one committed with the "end" marker the reader stops at, all to
// a topic of one partition so that their order is the log's.
var txnScript = []struct {
	values []string
	commit bool
}{
	{[]string{"c0", "c1", "c2"}, true},
	{[]string{"a0", "a1"}, false},
	{[]string{"end"}, true},
}

// checkCommitted checks what a read_committed consumer read.
func checkCommitted(got []string) error {
	if want := []string{"c0", "c1", "c2", "end"}; !slices.Equal(got, want) {
		return fmt.Errorf("read_committed read %q, want %q", got, want)
	}
	return nil
}
