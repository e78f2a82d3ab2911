package broker

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/creek-pipeline/creek/internal/auth"
)

// kcat (librdkafka) against the SASL_SSL, SSL and SASL_PLAINTEXT
// listeners: SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN logins, a wrong
// password, an ACL that denies, and a client certificate.

// kcatSecure runs kcat against a listener of s with -X settings and
// returns its output and whether it succeeded.
func kcatSecure(t *testing.T, s *secure, listener, stdin string, args ...string) (string, string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	base := []string{"-b", s.b.ListenerAddr(listener), "-X", "fetch.wait.max.ms=20", "-m", "10"}
	if strings.Contains(listener, "SSL") {
		base = append(base, "-X", "ssl.ca.location="+s.caFile)
	}
	cmd := exec.CommandContext(ctx, kcatPath(t), append(base, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err == nil
}

func kcatSASL(protocol, mechanism, user, password string) []string {
	return []string{"-X", "security.protocol=" + protocol, "-X", "sasl.mechanisms=" + mechanism,
		"-X", "sasl.username=" + user, "-X", "sasl.password=" + password}
}

func TestKcatSecurity(t *testing.T) {
	kcatPath(t)
	s := startSecure(t, nil)
	ctx := protoCtx(t)
	s.addUser(t, "alice", "alice-secret") // SCRAM-SHA-512 and SCRAM-SHA-256
	admin := kadm.NewClient(s.client(t, "SASL_SSL", scram512("admin", adminPassword)))
	for _, topic := range []string{"tweets", "secret"} {
		if _, err := admin.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	s.allow(t, kadm.NewACLs().Allow("User:alice").Topics("tweets").Operations(kadm.OpWrite, kadm.OpRead, kadm.OpDescribe))
	s.allow(t, kadm.NewACLs().Allow("User:alice").Groups("kcat").Operations(kadm.OpRead))

	// Produce with each mechanism over TLS, then read everything back in a group.
	var want []string
	for _, m := range []string{"SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"} {
		line := "hello from kcat over " + m
		if out, errOut, ok := kcatSecure(t, s, "SASL_SSL", line+"\n", append(kcatSASL("SASL_SSL", m, "alice", "alice-secret"), "-P", "-t", "tweets")...); !ok {
			t.Fatalf("kcat -P with %s over SASL_SSL failed:\n%s%s", m, out, errOut)
		}
		want = append(want, line)
	}
	out, errOut, ok := kcatSecure(t, s, "SASL_SSL", "", append(kcatSASL("SASL_SSL", "SCRAM-SHA-512", "alice", "alice-secret"),
		"-X", "auto.offset.reset=earliest", "-G", "kcat", "-c", "3", "-e", "-f", "%s\n", "tweets")...)
	if !ok {
		t.Fatalf("kcat -G over SASL_SSL failed:\n%s%s", out, errOut)
	}
	kcatCompare(t, "consumed over SASL_SSL", kcatLines(out), want)

	// SASL_PLAINTEXT works the same (PLAIN sends the password in clear: only
	// on a trusted network).
	if out, errOut, ok := kcatSecure(t, s, "SASL_PLAINTEXT", "", append(kcatSASL("SASL_PLAINTEXT", "SCRAM-SHA-256", "alice", "alice-secret"),
		"-C", "-t", "tweets", "-o", "beginning", "-c", "1", "-e", "-f", "%s\n")...); !ok || strings.TrimSpace(out) != want[0] {
		t.Errorf("kcat over SASL_PLAINTEXT: ok=%v out=%q\n%s", ok, out, errOut)
	}

	// A wrong password: Kafka's message reaches the client, and the broker
	// logs the client's address. (A consumer gives up on it at once; -L
	// would wait out its metadata timeout.)
	_, errOut, ok = kcatSecure(t, s, "SASL_SSL", "", append(kcatSASL("SASL_SSL", "SCRAM-SHA-512", "alice", "wrong"), "-G", "kcat", "tweets", "-c", "1", "-e")...)
	if ok || !strings.Contains(errOut, "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512") {
		t.Errorf("kcat with a wrong password: ok=%v, stderr:\n%s", ok, errOut)
	}
	_, errOut, ok = kcatSecure(t, s, "SASL_SSL", "", append(kcatSASL("SASL_SSL", "PLAIN", "alice", "wrong"), "-G", "kcat", "tweets", "-c", "1", "-e")...)
	if ok || !strings.Contains(errOut, "Invalid username or password") {
		t.Errorf("kcat PLAIN with a wrong password: ok=%v, stderr:\n%s", ok, errOut)
	}
	if logs := s.log.all(); !strings.Contains(logs, "authentication failed") || !strings.Contains(logs, "client=127.0.0.1:") {
		t.Errorf("no log line with the client's address for the failed logins:\n%s", logs)
	}

	// An ACL that denies: librdkafka hands the application Kafka's error.
	_, errOut, ok = kcatSecure(t, s, "SASL_SSL", "x\n", append(kcatSASL("SASL_SSL", "SCRAM-SHA-512", "alice", "alice-secret"), "-P", "-t", "secret")...)
	if ok || !strings.Contains(errOut, "Topic authorization failed") {
		t.Errorf("kcat producing to a denied topic: ok=%v, stderr:\n%s", ok, errOut)
	}

	// mTLS on the SSL listener: the certificate's subject, mapped by
	// ssl.principal.mapping.rules, is the principal (User:bob).
	certPEM, keyPEM, err := s.ca.Issue(auth.CertRequest{CommonName: "bob", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, _ := auth.WriteFiles(filepath.Join(s.dir, "certs"), "bob", certPEM, keyPEM)
	mtls := []string{"-X", "security.protocol=SSL", "-X", "ssl.certificate.location=" + certFile, "-X", "ssl.key.location=" + keyFile,
		"-C", "-t", "tweets", "-o", "beginning", "-c", "1", "-e", "-f", "%s\n"}
	if _, errOut, ok := kcatSecure(t, s, "SSL", "", mtls...); ok || !strings.Contains(errOut, "Topic authorization failed") {
		t.Errorf("bob before his ACL: ok=%v, stderr:\n%s", ok, errOut)
	}
	s.allow(t, kadm.NewACLs().Allow("User:bob").Topics("tweets").Operations(kadm.OpRead))
	if out, errOut, ok := kcatSecure(t, s, "SSL", "", mtls...); !ok || strings.TrimSpace(out) != want[0] {
		t.Errorf("bob with a client certificate: ok=%v out=%q\n%s", ok, out, errOut)
	}
}
