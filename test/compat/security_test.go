package compat

import (
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/internal/auth"
)

// The security scenarios run against the suite's one broker, which has a
// SASL_SSL and a SASL_PLAINTEXT listener beside the PLAINTEXT one. With
// SASL listeners ACLs are enforced on every listener, so the PLAINTEXT
// clients of the other scenarios are the super user User:ANONYMOUS; the
// security scenarios log in as secUser, who may use the topics and groups
// named "compat-sec-…" and nothing else, in particular not secDenied.
const (
	secUser     = "compat-alice"
	secPassword = "alice-secret"
	secPrefix   = "compat-sec-"
	secDenied   = "compat-denied"
)

// secure holds what the security scenarios connect with; TestMain fills it
// and hands the same to the scripts through CREEK_COMPAT_* variables.
var secure struct {
	saslSSL, saslPlaintext string // listener addresses
	caFile                 string // the test CA that signed the broker's certificate
}

// secureCerts makes a test CA and the broker's certificate in dir and
// returns the broker settings that turn its security on.
func secureCerts(dir string) (map[string]string, error) {
	ca, err := auth.NewCA("creek compat test CA", 24*time.Hour)
	if err != nil {
		return nil, err
	}
	if secure.caFile, _, err = auth.WriteFiles(dir, "ca", ca.PEM, ca.Key); err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := ca.Issue(auth.CertRequest{CommonName: "broker", Hosts: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		return nil, err
	}
	certFile, keyFile, err := auth.WriteFiles(dir, "broker", certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return map[string]string{
		"listeners":   "PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
		"tls-cert":    certFile,
		"tls-key":     keyFile,
		"super.users": "User:ANONYMOUS",
		"connection.failed.authentication.delay.ms": "20",
	}, nil
}

// secureSetup adds secUser (SCRAM-SHA-512 and -256), its ACLs and the
// denied topic through the PLAINTEXT listener, as the super user.
func secureSetup(plaintext, saslSSL, saslPlaintext string) error {
	secure.saslSSL, secure.saslPlaintext = saslSSL, saslPlaintext
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(plaintext))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: secUser, Mechanism: kadm.ScramSha512, Iterations: 4096, Password: secPassword},
		{User: secUser, Mechanism: kadm.ScramSha256, Iterations: 4096, Password: secPassword},
	})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		return fmt.Errorf("add user %s: %w", secUser, err)
	}
	for _, acls := range []*kadm.ACLBuilder{
		kadm.NewACLs().Allow(auth.UserPrincipal(secUser)).ResourcePatternType(kadm.ACLPatternPrefixed).
			Topics(secPrefix).Operations(kadm.OpRead, kadm.OpWrite, kadm.OpCreate, kadm.OpDescribe),
		kadm.NewACLs().Allow(auth.UserPrincipal(secUser)).ResourcePatternType(kadm.ACLPatternPrefixed).
			Groups(secPrefix).Operations(kadm.OpRead),
	} {
		created, err := adm.CreateACLs(ctx, acls)
		if err != nil {
			return err
		}
		for _, r := range created {
			if r.Err != nil {
				return fmt.Errorf("create ACL: %w", r.Err)
			}
		}
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, secDenied); err != nil {
		return fmt.Errorf("create %s: %w", secDenied, err)
	}
	for k, v := range map[string]string{
		"CREEK_COMPAT_SASL_SSL": saslSSL, "CREEK_COMPAT_SASL_PLAINTEXT": saslPlaintext, "CREEK_COMPAT_CA": secure.caFile,
		"CREEK_COMPAT_USER": secUser, "CREEK_COMPAT_PASSWORD": secPassword, "CREEK_COMPAT_DENIED": secDenied,
	} {
		os.Setenv(k, v)
	}
	return nil
}

// secTopic is the topic (and group) of one security scenario of the
// client whose other scenarios use topic "compat-NAME": compat-sec-NAME-SCENARIO.
func secTopic(topic, scenario string) string {
	return secPrefix + strings.TrimPrefix(topic, "compat-") + "-" + scenario
}

// withSecurity adds a client's security scenarios to its other ones.
func withSecurity(sec, fns map[string]scenarioFunc) map[string]scenarioFunc {
	maps.Copy(fns, sec)
	return fns
}

// secValues are the records a security scenario produces and reads back.
func secValues(scenario string) []string {
	return []string{scenario + "-0", scenario + "-1", scenario + "-2"}
}

// secTLS trusts the test CA.
func secTLS() (*tls.Config, error) {
	return auth.ClientTLS(auth.ClientTLSOptions{CAFile: secure.caFile})
}

// checkValues compares what a security scenario read with what it wrote.
func checkValues(got []string, scenario string) error {
	if want := secValues(scenario); !slices.Equal(got, want) {
		return fmt.Errorf("read %q, want %q", got, want)
	}
	return nil
}
