// Package security runs Apache Kafka's own Java tools (kafka-configs,
// kafka-acls, the console producer and consumer, from the jars
// scripts/kafka.sh fetches) against creek's SASL_SSL listener with a client
// properties file, as a Kafka user would.
package security

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creek-pipeline/creek/broker"
	"github.com/creek-pipeline/creek/internal/auth"
	"github.com/creek-pipeline/creek/internal/cluster"
)

func kafkaScript() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..", "scripts", "kafka.sh")
}

// javaTools checks that java and Kafka's jars are here (fetching the jars
// once), or skips.
func javaTools(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("java is not installed (./scripts/test-deps.sh installs it): Kafka's Java tools cannot run")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, kafkaScript(), "fetch").CombinedOutput(); err != nil {
		t.Skipf("Kafka's jars are not available (scripts/kafka.sh fetch: %v): %s", err, lastLine(out))
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// tool runs one of Kafka's tools by class name; it returns the output and
// whether the tool succeeded.
func tool(t *testing.T, stdin string, class string, args ...string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kafkaScript(), append([]string{"run", class}, args...)...)
	// The tools are short runs: the quick compiler and a small heap start them faster.
	cmd.Env = append(os.Environ(), "JAVA_TOOL_OPTIONS=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto")
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err == nil
}

// properties writes a client properties file for SCRAM-SHA-512 over TLS.
func properties(t *testing.T, dir, user, password, caFile string) string {
	t.Helper()
	p := filepath.Join(dir, user+".properties")
	body := fmt.Sprintf(`security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="%s" password="%s";
ssl.truststore.type=PEM
ssl.truststore.location=%s
`, user, password, caFile)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKafkaJavaToolsOverSASLSSL(t *testing.T) {
	javaTools(t)
	dir := t.TempDir()
	ca, err := auth.NewCA("creek test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caFile, _, _ := auth.WriteFiles(dir, "ca", ca.PEM, ca.Key)
	certPEM, keyPEM, err := ca.Issue(auth.CertRequest{CommonName: "broker", Hosts: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, _ := auth.WriteFiles(dir, "broker", certPEM, keyPEM)

	// The first user goes into the stopped broker's data folder, as
	// `creek users add --data-dir` (and kafka-storage format --add-scram) do.
	data := filepath.Join(dir, "data")
	store, err := cluster.OpenSecurity(data)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := auth.NewCredential(auth.ScramSHA512, "admin-secret", 4096)
	if err := store.PutCredential("admin", c); err != nil {
		t.Fatal(err)
	}
	store.Close()
	b, err := broker.Start(context.Background(), broker.Config{DataDir: data, Settings: map[string]string{
		"listeners": "SASL_SSL://127.0.0.1:0", "tls-cert": certFile, "tls-key": keyFile,
		"super.users": "User:admin", "group.initial.rebalance.delay.ms": "0",
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	addr := b.Addr()
	admin := properties(t, dir, "admin", "admin-secret", caFile)
	alice := properties(t, dir, "alice", "alice-secret", caFile)

	// kafka-configs adds alice's SCRAM credential through AlterUserScramCredentials.
	if out, ok := tool(t, "", "org.apache.kafka.tools.ConfigCommand", "--bootstrap-server", addr, "--command-config", admin,
		"--alter", "--add-config", "SCRAM-SHA-512=[iterations=4096,password=alice-secret]", "--entity-type", "users", "--entity-name", "alice"); !ok {
		t.Fatalf("kafka-configs --alter --add-config SCRAM-SHA-512: %s", out)
	}
	// kafka-acls gives her a producer's and a consumer's rights on tweets.
	// (It lists what it added, as DescribeAcls returns it.)
	if out, ok := tool(t, "", "org.apache.kafka.tools.AclCommand", "--bootstrap-server", addr, "--command-config", admin,
		"--add", "--allow-principal", "User:alice", "--producer", "--consumer", "--topic", "tweets", "--group", "java"); !ok ||
		!strings.Contains(out, "principal=User:alice, host=*, operation=WRITE, permissionType=ALLOW") {
		t.Fatalf("kafka-acls --add --producer --consumer: ok=%v\n%s", ok, out)
	}

	// alice produces and consumes with Kafka's console tools.
	if out, ok := tool(t, "one\ntwo\n", "org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", addr,
		"--command-config", alice, "--topic", "tweets"); !ok || strings.Contains(out, "ERROR") {
		t.Fatalf("console producer as alice: ok=%v\n%s", ok, out)
	}
	out, ok := tool(t, "", "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", addr,
		"--command-config", alice, "--topic", "tweets", "--group", "java", "--from-beginning", "--max-messages", "2", "--timeout-ms", "30000")
	if !ok || !strings.Contains(out, "one\ntwo\n") {
		t.Fatalf("console consumer as alice: ok=%v\n%s", ok, out)
	}

	// Refusals reach the tools as Kafka's own exceptions.
	out, _ = tool(t, "x\n", "org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", addr,
		"--command-config", alice, "--topic", "secret")
	if !strings.Contains(out, "TopicAuthorizationException") {
		t.Errorf("console producer to a topic without an ACL: want TopicAuthorizationException:\n%s", out)
	}
	wrong := properties(t, t.TempDir(), "alice", "wrong", caFile)
	out, _ = tool(t, "", "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", addr,
		"--command-config", wrong, "--topic", "tweets", "--group", "java", "--max-messages", "1", "--timeout-ms", "20000")
	if !strings.Contains(out, "SaslAuthenticationException") { // it exits 0 all the same
		t.Errorf("console consumer with a wrong password: want SaslAuthenticationException:\n%s", out)
	}
}
