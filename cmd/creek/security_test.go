package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/creek-pipeline/creek/broker"
)

// runCreekIn runs the CLI with stdin.
func runCreekIn(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCommand()
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func writeFile(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSecurityCLI walks docs/security.md's setup: certificates from
// `creek certs`, the admin user bootstrapped into the stopped broker's data
// folder, then users and ACLs managed through the SASL_SSL listener, and
// every command logging in with the client flags.
func TestSecurityCLI(t *testing.T) {
	dir := t.TempDir()
	certs, data := filepath.Join(dir, "certs"), filepath.Join(dir, "data")
	mustCreek(t, "certs", "ca", "--dir", certs)
	if _, _, err := runCreek(t, "certs", "ca", "--dir", certs); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("a second certs ca: %v, want a refusal naming --force", err)
	}
	mustCreek(t, "certs", "broker", "broker", "--host", "127.0.0.1", "--dir", certs)
	ca := filepath.Join(certs, "ca.crt")

	adminPass := writeFile(t, filepath.Join(dir, "admin.pass"), "admin-secret\n")
	mustCreek(t, "users", "add", "admin", "--password-file", adminPass, "--data-dir", data)
	if _, _, err := runCreekIn(t, "bob-secret\n", "users", "add", "bob", "--mechanism", "SCRAM-SHA-256", "--data-dir", data); err != nil {
		t.Fatal(err)
	}
	var users []userRow
	if err := json.Unmarshal([]byte(mustCreek(t, "users", "list", "--data-dir", data, "--output", "json")), &users); err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 || users[0] != (userRow{"admin", "SCRAM-SHA-512", 8192}) || users[1] != (userRow{"bob", "SCRAM-SHA-256", 8192}) {
		t.Fatalf("users in the data dir: %+v", users)
	}
	mustCreek(t, "users", "delete", "bob", "--data-dir", data)
	if _, _, err := runCreekIn(t, "", "users", "add", "carol", "--data-dir", data); err == nil || !strings.Contains(err.Error(), "no password") {
		t.Errorf("users add with an empty stdin: %v", err)
	}

	b, err := broker.Start(context.Background(), broker.Config{DataDir: data, Settings: map[string]string{
		"listeners": "PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
		"tls-cert":  filepath.Join(certs, "broker.crt"), "tls-key": filepath.Join(certs, "broker.key"),
		"super.users": "User:admin", "connection.failed.authentication.delay.ms": "10",
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, _, err := runCreekIn(t, "x\n", "users", "add", "carol", "--data-dir", data); err == nil || !strings.Contains(err.Error(), "--brokers") {
		t.Errorf("users add --data-dir of a running broker: %v, want advice to use --brokers", err)
	}
	secure := b.ListenerAddr("SASL_SSL")
	asAdmin := []string{"--brokers", secure, "--tls-ca", ca, "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-user", "admin", "--sasl-password-file", adminPass}
	alicePass := writeFile(t, filepath.Join(dir, "alice.pass"), "alice-secret\n")
	asAlice := []string{"--brokers", secure, "--tls-ca", ca, "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-user", "alice", "--sasl-password-file", alicePass}

	mustCreek(t, append([]string{"users", "add", "alice", "--password-file", alicePass}, asAdmin...)...)
	if out := mustCreek(t, append([]string{"users", "list"}, asAdmin...)...); !strings.Contains(out, "alice  SCRAM-SHA-512  8192") {
		t.Errorf("users list through the protocol:\n%s", out)
	}
	mustCreek(t, append([]string{"topics", "create", "tweets"}, asAdmin...)...)
	mustCreek(t, append([]string{"topics", "create", "secret"}, asAdmin...)...)

	// Without ACLs alice sees no topic; PLAINTEXT's anonymous user neither.
	if out := mustCreek(t, append([]string{"topics", "list"}, asAlice...)...); strings.Contains(out, "tweets") {
		t.Errorf("alice lists topics before any ACL:\n%s", out)
	}
	mustCreek(t, append([]string{"acls", "add", "--allow-principal", "User:alice", "--producer", "--consumer", "--topic", "tweets", "--group", "dash"}, asAdmin...)...)
	var acls []aclRow
	if err := json.Unmarshal([]byte(mustCreek(t, append([]string{"acls", "list", "--output", "json"}, asAdmin...)...)), &acls); err != nil {
		t.Fatal(err)
	}
	if len(acls) != 5 { // WRITE, DESCRIBE, CREATE, READ on the topic; READ on the group
		t.Fatalf("ACLs after --producer --consumer: %+v", acls)
	}
	if out := mustCreek(t, append([]string{"topics", "list"}, asAlice...)...); !strings.Contains(out, "tweets") || strings.Contains(out, "secret") {
		t.Errorf("alice lists topics with her ACLs:\n%s", out)
	}
	// The password also comes from CREEK_SASL_PASSWORD, and PLAIN checks
	// it against the same SCRAM credential.
	t.Setenv("CREEK_SASL_PASSWORD", "alice-secret")
	if out := mustCreek(t, "topics", "list", "--brokers", secure, "--tls-ca", ca, "--sasl-mechanism", "PLAIN", "--sasl-user", "alice"); !strings.Contains(out, "tweets") {
		t.Errorf("PLAIN with CREEK_SASL_PASSWORD:\n%s", out)
	}
	t.Setenv("CREEK_SASL_PASSWORD", "wrong")
	if _, _, err := runCreek(t, "topics", "list", "--brokers", secure, "--tls-ca", ca, "--sasl-mechanism", "SCRAM-SHA-256", "--sasl-user", "alice"); err == nil ||
		!strings.Contains(err.Error(), "refused the login") || !strings.Contains(err.Error(), "SASL_AUTHENTICATION_FAILED") {
		t.Errorf("a wrong password: %v", err)
	}
	t.Setenv("CREEK_SASL_PASSWORD", "")
	// The broker's certificate variables, exported in the shell that
	// started it, leave its clients alone; the client's own turn TLS on.
	plain := b.ListenerAddr("PLAINTEXT")
	t.Setenv("CREEK_TLS_CERT", filepath.Join(certs, "broker.crt"))
	t.Setenv("CREEK_TLS_KEY", filepath.Join(certs, "broker.key"))
	if _, _, err := runCreek(t, "topics", "list", "--brokers", plain); err != nil {
		t.Errorf("a PLAINTEXT client in a shell with the broker's CREEK_TLS_CERT: %v", err)
	}
	t.Setenv("CREEK_CLIENT_TLS_CERT", filepath.Join(certs, "broker.crt"))
	t.Setenv("CREEK_CLIENT_TLS_KEY", filepath.Join(certs, "broker.key"))
	if _, _, err := runCreek(t, "topics", "list", "--brokers", plain); err == nil {
		t.Error("CREEK_CLIENT_TLS_CERT did not turn TLS on: a TLS client was answered by the PLAINTEXT listener")
	}
	t.Setenv("CREEK_CLIENT_TLS_CERT", "")
	t.Setenv("CREEK_CLIENT_TLS_KEY", "")
	// Without --tls-ca the broker's certificate is not trusted.
	if _, _, err := runCreek(t, "topics", "list", "--brokers", secure, "--tls", "--sasl-mechanism", "PLAIN", "--sasl-user", "alice"); err == nil {
		t.Error("a certificate from an unknown authority was accepted")
	}
	// alice may not manage users nor ACLs.
	if _, _, err := runCreek(t, append([]string{"acls", "list"}, asAlice...)...); err == nil || !strings.Contains(err.Error(), "CLUSTER_AUTHORIZATION_FAILED") {
		t.Errorf("alice lists ACLs: %v", err)
	}

	mustCreek(t, append([]string{"acls", "remove", "--topic", "tweets", "--allow-principal", "User:alice", "--operation", "Describe"}, asAdmin...)...)
	if out := mustCreek(t, append([]string{"acls", "list", "--topic", "tweets"}, asAdmin...)...); strings.Contains(out, "DESCRIBE") || !strings.Contains(out, "WRITE") {
		t.Errorf("after removing DESCRIBE:\n%s", out)
	}
	mustCreek(t, append([]string{"acls", "remove", "--topic", "tweets"}, asAdmin...)...)
	if out := mustCreek(t, append([]string{"acls", "list", "--topic", "tweets"}, asAdmin...)...); !strings.Contains(out, "no ACLs") {
		t.Errorf("after removing every ACL of tweets:\n%s", out)
	}

	mustCreek(t, append([]string{"users", "delete", "alice"}, asAdmin...)...)
	if _, _, err := runCreek(t, append([]string{"topics", "list"}, asAlice...)...); err == nil || !strings.Contains(err.Error(), "refused the login") {
		t.Errorf("a deleted user logs in: %v", err)
	}
}
