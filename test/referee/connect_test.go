package referee

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConnectStandaloneFileStream runs a Kafka Connect standalone worker
// with Kafka's FileStream source and sink connectors (connect-file) against
// creek and against Kafka at once: the source copies a file's lines into a
// topic, the sink (a consumer group) writes the topic into another file.
// Both brokers must end with the sink file equal to the source file.
// Maven Central has connect-file up to 4.3.1 only; java/AppInfoParser.java
// bridges the one class it needs that Kafka 4.4 moved.
func TestConnectStandaloneFileStream(t *testing.T) {
	needKafka(t)
	if _, err := exec.LookPath("javac"); err != nil {
		t.Skip("SKIP: javac is not installed: the test compiles a small bridge for connect-file 4.3.1 (java/AppInfoParser.java)")
	}
	libs, err := exec.Command(kafkaScript(), "libs").Output()
	if err != nil {
		t.Skipf("SKIP: Kafka's jars are not in the cache: %v", err)
	}
	classpath := filepath.Join(strings.TrimSpace(string(libs)), "*")
	bridge := t.TempDir()
	if out, err := exec.Command("javac", "-cp", classpath, "-d", bridge, "java/AppInfoParser.java").CombinedOutput(); err != nil {
		t.Fatalf("javac java/AppInfoParser.java: %v\n%s", err, out)
	}
	classpath += string(os.PathListSeparator) + bridge
	lines := make([]string, 200)
	for i := range lines {
		lines[i] = fmt.Sprintf("line %03d 스트림 %s", i, strings.Repeat("x", i%7))
	}
	input := strings.Join(lines, "\n") + "\n"
	var wg sync.WaitGroup
	results := map[string]string{}
	var mu sync.Mutex
	for side, addr := range map[string]string{"creek": creekAddr, "kafka": kafkaAddr} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := runStandaloneConnect(t, classpath, side, addr, input)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				results[side] = "error: " + err.Error()
				return
			}
			results[side] = out
		}()
	}
	wg.Wait()
	for side, got := range results {
		if got != input {
			t.Errorf("Connect standalone against %s: the sink file is not the source file:\n%s", side, got[max(0, len(got)-3000):])
		}
	}
}

// runStandaloneConnect starts a worker against addr and returns what its
// sink wrote once it holds every input line (or the time is up).
func runStandaloneConnect(t *testing.T, classpath, side, addr, input string) (string, error) {
	dir := t.TempDir()
	topic := uniqueName(t, side)
	in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	if err := os.WriteFile(in, []byte(input), 0o644); err != nil {
		return "", err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	rest := "http://" + l.Addr().String()
	l.Close()
	files := map[string][]string{
		"worker.properties": {
			"bootstrap.servers=" + addr,
			"key.converter=org.apache.kafka.connect.storage.StringConverter",
			"value.converter=org.apache.kafka.connect.storage.StringConverter",
			"offset.storage.file.filename=" + filepath.Join(dir, "offsets"),
			"offset.flush.interval.ms=200",
			"listeners=" + rest,
			"plugin.discovery=only_scan",
			"consumer.group.protocol=consumer",
		},
		"source.properties": {
			"name=file-source-" + side, "connector.class=org.apache.kafka.connect.file.FileStreamSourceConnector",
			"tasks.max=1", "file=" + in, "topic=" + topic,
		},
		"sink.properties": {
			"name=file-sink-" + side, "connector.class=org.apache.kafka.connect.file.FileStreamSinkConnector",
			"tasks.max=1", "file=" + out, "topics=" + topic,
		},
	}
	for name, props := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Join(props, "\n")+"\n"), 0o644); err != nil {
			return "", err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
		"-cp", classpath, "org.apache.kafka.connect.cli.ConnectStandalone",
		filepath.Join(dir, "worker.properties"), filepath.Join(dir, "source.properties"), filepath.Join(dir, "sink.properties"))
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return "", err
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		got, _ := os.ReadFile(out)
		if len(got) >= len(input) {
			time.Sleep(500 * time.Millisecond) // nothing more may come: a line twice would show
			got, _ = os.ReadFile(out)
			return string(got), nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	got, _ := os.ReadFile(out)
	return string(got), fmt.Errorf("the sink wrote %d of %d bytes in 2 minutes; worker log:\n%s", len(got), len(input), lastLines(logs.Bytes(), 20))
}
