package compaction

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// run runs a client program and returns its standard output.
func run(t *testing.T, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), err
}

// checkCompacted checks what a client read back from a cleaned topic:
// every key's latest value last, at most one record per key below the
// first dirty offset, and no tombstoned key but for its tombstone.
func checkCompacted(t *testing.T, recs []record, latest map[string]string, firstDirty int64) {
	t.Helper()
	keys := byKey(recs)
	for k, v := range latest {
		rs := keys[k]
		switch {
		case v == "" && len(rs) > 0 && !rs[len(rs)-1].tombstone:
			t.Fatalf("deleted key %s reads %v", k, rs)
		case v != "" && (len(rs) == 0 || rs[len(rs)-1].value != v):
			t.Fatalf("key %s: latest value %q is not what the client reads last: %v", k, v, rs)
		}
		n := 0
		for _, r := range rs {
			if r.offset < firstDirty {
				n++
			}
		}
		if n > 1 {
			t.Fatalf("key %s appears %d times in the cleaned part of the log: %v", k, n, rs)
		}
	}
	if len(keys) > len(latest) {
		t.Fatalf("%d keys read, %d written", len(keys), len(latest))
	}
}

// TestKcatCompactedTopic: librdkafka (kcat) writes keyed records and
// tombstones (-Z), has a record without a key refused, and reads the
// compacted topic back.
func TestKcatCompactedTopic(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed (./scripts/test-deps.sh installs it)")
	}
	b := startBroker(t, t.TempDir(), "127.0.0.1:0")
	const topic = "settings"
	admin := newClient(t, b.Addr())
	createTopic(t, admin, topic, compactedConfigs())
	latest := map[string]string{}
	var in strings.Builder
	for i := range 800 {
		k, v := fmt.Sprintf("setting-%d", i%25), fmt.Sprintf("value %d", i)
		fmt.Fprintf(&in, "%s:%s\n", k, v)
		latest[k] = v
	}
	for k := range 5 {
		fmt.Fprintf(&in, "setting-%d:\n", k) // -Z: an empty value is sent as NULL, a tombstone
		latest[fmt.Sprintf("setting-%d", k)] = ""
	}
	for i := range 40 {
		k, v := fmt.Sprintf("setting-%d", 5+i%20), fmt.Sprintf("late %d", i)
		fmt.Fprintf(&in, "%s:%s\n", k, v)
		latest[k] = v
	}
	if _, err := run(t, in.String(), kcat, "-b", b.Addr(), "-t", topic, "-P", "-K:", "-Z", "-X", "batch.size=800", "-X", "linger.ms=2"); err != nil {
		t.Fatal(err)
	}
	_, err = run(t, "no key\n", kcat, "-b", b.Addr(), "-t", topic, "-P")
	if err == nil || !strings.Contains(err.Error(), "Broker failed to validate record") {
		t.Fatalf("kcat producing without a key: %v, want INVALID_RECORD (Broker failed to validate record)", err)
	}
	st := waitSettled(t, admin, topic)

	out, err := run(t, "", kcat, "-b", b.Addr(), "-t", topic, "-C", "-e", "-Z", "-f", "%o\t%k\t%S\t%s\n")
	if err != nil {
		t.Fatal(err)
	}
	var recs []record
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.SplitN(line, "\t", 4)
		if len(f) != 4 {
			t.Fatalf("kcat printed %q", line)
		}
		o, _ := strconv.ParseInt(f[0], 10, 64)
		recs = append(recs, record{offset: o, key: f[1], value: f[3], tombstone: f[2] == "-1"})
	}
	checkCompacted(t, recs, latest, st.FirstDirtyOffset)
	if len(recs) > 100 {
		t.Fatalf("kcat reads %d records of 845 over 25 keys", len(recs))
	}
}

// TestKafkaPythonCompactedTopic: kafka-python writes gzip batches to a
// compacted topic; the cleaner rebuilds and re-compresses them, and
// kafka-python reads the latest value of each key back.
func TestKafkaPythonCompactedTopic(t *testing.T) {
	if _, err := run(t, "", "/usr/bin/python3", "-c", "import kafka"); err != nil {
		t.Skip("kafka-python is not installed for /usr/bin/python3 (./scripts/test-deps.sh installs python3-kafka)")
	}
	b := startBroker(t, t.TempDir(), "127.0.0.1:0")
	const topic = "python-table"
	out, err := run(t, "", "/usr/bin/python3", "python/compacted_topic.py", b.Addr(), topic, "produce")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "KEYLESS refused") {
		t.Fatalf("kafka-python producing without a key: %s", out)
	}
	latest := map[string]string{}
	for i := range 600 {
		latest[fmt.Sprintf("key-%02d", i%20)] = fmt.Sprintf("value %d", i)
	}
	for k := range 3 {
		latest[fmt.Sprintf("key-%02d", k)] = ""
	}
	for i := range 60 {
		latest[fmt.Sprintf("key-%02d", 3+i%17)] = fmt.Sprintf("late %d", i)
	}
	admin := newClient(t, b.Addr())
	st := waitSettled(t, admin, topic)
	out, err = run(t, "", "/usr/bin/python3", "python/compacted_topic.py", b.Addr(), topic, "consume")
	if err != nil {
		t.Fatal(err)
	}
	var recs []record
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var row []any
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil || len(row) != 3 {
			t.Fatalf("kafka-python printed %q", sc.Text())
		}
		r := record{offset: int64(row[0].(float64)), key: row[1].(string)}
		if v, ok := row[2].(string); ok {
			r.value = v
		} else {
			r.tombstone = true
		}
		recs = append(recs, r)
	}
	checkCompacted(t, recs, latest, st.FirstDirtyOffset)
	if len(recs) > 100 {
		t.Fatalf("kafka-python reads %d records of 663 over 20 keys", len(recs))
	}
}
