package compat

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// kcat (librdkafka, Debian's kcat package) has no admin API: topics come
// from auto-creation and configs are not shown.
func TestKcat(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat is not installed (make test installs it)")
	}
	const topic, group = "compat-kcat", "compat-kcat-g"
	kcat := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command("kcat", append([]string{"-b", brokerAddr}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("kcat %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}
	// consume reads n records in the group, printing key|value|headers.
	consume := func(n int) ([]rec, error) {
		out, err := kcat("", "-G", group, "-X", "auto.offset.reset=earliest", "-c", fmt.Sprint(n), "-f", "%k|%s|%h\n", "-q", topic)
		if err != nil {
			return nil, err
		}
		var got []rec
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.SplitN(line, "|", 3)
			if len(f) != 3 {
				continue
			}
			hs := map[string]string{}
			for _, h := range strings.Split(f[2], ",") {
				if k, v, ok := strings.Cut(h, "="); ok {
					hs[k] = v
				}
			}
			got = append(got, rec{f[0], f[1], hs})
		}
		return got, nil
	}
	runScenarios(t, "kcat", withSecurity(kcatSecurity(topic), map[string]scenarioFunc{
		"consumer-protocol": func(t *testing.T) error {
			return notApplicable("librdkafka 2.0 (Debian) predates KIP-848 (librdkafka 2.4+ with group.protocol=consumer)")
		},
		"share-group": func(t *testing.T) error {
			return notApplicable("kcat has no share group consumer")
		},
		"transactions": func(t *testing.T) error { return notApplicable("kcat has no transactional producer") },
		"create-topic": func(t *testing.T) error {
			return notApplicable("kcat has no admin API; the topic is created on first produce")
		},
		"produce-codecs": func(t *testing.T) error {
			for _, codec := range allCodecs {
				var lines []string
				for _, r := range produced([]string{codec}) {
					lines = append(lines, r.key+"\t"+r.value)
				}
				if _, err := kcat(strings.Join(lines, "\n")+"\n", "-P", "-t", topic, "-K", "\t", "-z", codec, "-H", "codec="+codec,
					"-X", "enable.idempotence=true"); err != nil {
					return err
				}
			}
			return nil
		},
		"consume-group": func(t *testing.T) error {
			got, err := consume(len(allCodecs) * perCodec)
			if err != nil {
				return err
			}
			return sameRecords(got, produced(allCodecs))
		},
		"resume": func(t *testing.T) error {
			if _, err := kcat("after-1\tlater\nafter-2\tlater\n", "-P", "-t", topic, "-K", "\t"); err != nil {
				return err
			}
			got, err := consume(2)
			if err != nil {
				return err
			}
			return sameRecords(got, []rec{{"after-1", "later", map[string]string{}}, {"after-2", "later", map[string]string{}}})
		},
		"list-offsets": func(t *testing.T) error {
			// -Q: offsets for a timestamp (0 = the first offset).
			out, err := kcat("", "-Q", "-t", topic+":0:0")
			if err != nil {
				return err
			}
			if !strings.Contains(out, "offset 0") {
				return fmt.Errorf("offset for timestamp 0: %s", out)
			}
			return nil
		},
		"describe-configs": func(t *testing.T) error { return notApplicable("kcat cannot describe configs") },
		"error-path": func(t *testing.T) error {
			out, err := kcat("", "-C", "-t", topic, "-p", "0", "-o", "1000000", "-c", "1", "-e", "-X", "auto.offset.reset=error")
			if err == nil || !strings.Contains(strings.ToLower(out), "offset out of range") {
				return fmt.Errorf("consuming past the end with auto.offset.reset=error: %v\n%s", err, out)
			}
			return nil
		},
	}))
}

// kcatSecurity: librdkafka's -X security.protocol, sasl.mechanisms,
// sasl.username, sasl.password and ssl.ca.location.
func kcatSecurity(topic string) map[string]scenarioFunc {
	kcat := func(stdin, addr, mechanism, pass string, args ...string) (string, error) {
		protocol := "SASL_PLAINTEXT"
		base := []string{"-b", addr, "-X", "sasl.mechanisms=" + mechanism, "-X", "sasl.username=" + secUser, "-X", "sasl.password=" + pass}
		if addr == secure.saslSSL {
			protocol = "SASL_SSL"
			base = append(base, "-X", "ssl.ca.location="+secure.caFile)
		}
		cmd := exec.Command("kcat", append(append(base, "-X", "security.protocol="+protocol), args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	roundTrip := func(addr, mechanism, scenario string) error {
		tp := secTopic(topic, scenario)
		values := secValues(scenario)
		if out, err := kcat(strings.Join(values, "\n")+"\n", addr, mechanism, secPassword, "-P", "-t", tp); err != nil {
			return fmt.Errorf("kcat -P: %v\n%s", err, out)
		}
		out, err := kcat("", addr, mechanism, secPassword, "-G", tp, "-X", "auto.offset.reset=earliest", "-c", fmt.Sprint(len(values)), "-f", "%s\n", "-q", tp)
		if err != nil {
			return fmt.Errorf("kcat -G: %v\n%s", err, out)
		}
		return checkValues(strings.Fields(out), scenario)
	}
	return map[string]scenarioFunc{
		"sasl-scram-tls": func(t *testing.T) error { return roundTrip(secure.saslSSL, "SCRAM-SHA-512", "sasl-scram-tls") },
		"sasl-plain":     func(t *testing.T) error { return roundTrip(secure.saslPlaintext, "PLAIN", "sasl-plain") },
		"bad-password": func(t *testing.T) error {
			// A consumer gives up at once on a failed login (-L would wait out its metadata timeout).
			tp := secTopic(topic, "bad-password")
			out, err := kcat("", secure.saslSSL, "SCRAM-SHA-512", "wrong", "-G", tp, tp, "-c", "1", "-e")
			if err == nil || !strings.Contains(out, "Authentication failed") {
				return fmt.Errorf("kcat with a wrong password: %v\n%s", err, out)
			}
			return nil
		},
		"acl-denied": func(t *testing.T) error {
			out, err := kcat("x\n", secure.saslSSL, "SCRAM-SHA-512", secPassword, "-P", "-t", secDenied)
			if err == nil || !strings.Contains(out, "Topic authorization failed") {
				return fmt.Errorf("kcat producing to a denied topic: %v\n%s", err, out)
			}
			return nil
		},
	}
}
