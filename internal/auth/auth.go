// Package auth is the broker's security, the parts that know nothing of
// connections or the wire format: listener security protocols, principals
// (and mapping a client certificate's subject to one), SCRAM credentials
// and the SASL mechanisms that check them (PLAIN, SCRAM-SHA-256,
// SCRAM-SHA-512), the ACL authorizer with Kafka's semantics, and TLS
// configurations built from PEM files.
package auth

import (
	"fmt"
	"strings"
)

// Protocol is a listener's security protocol, as Kafka names them.
type Protocol string

// The four security protocols.
const (
	Plaintext     Protocol = "PLAINTEXT"
	SSL           Protocol = "SSL"
	SASLPlaintext Protocol = "SASL_PLAINTEXT"
	SASLSSL       Protocol = "SASL_SSL"
)

// ParseProtocol parses a security protocol name.
func ParseProtocol(s string) (Protocol, error) {
	switch p := Protocol(strings.ToUpper(strings.TrimSpace(s))); p {
	case Plaintext, SSL, SASLPlaintext, SASLSSL:
		return p, nil
	}
	return "", fmt.Errorf("%q is not a security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)", s)
}

// TLS reports whether connections are encrypted.
func (p Protocol) TLS() bool { return p == SSL || p == SASLSSL }

// SASL reports whether clients authenticate with SASL.
func (p Protocol) SASL() bool { return p == SASLPlaintext || p == SASLSSL }

// Anonymous is the principal of a client that did not authenticate.
const Anonymous = "User:ANONYMOUS"

// WildcardPrincipal in an ACL matches every user.
const WildcardPrincipal = "User:*"

// UserPrincipal is the principal of an authenticated user name.
func UserPrincipal(name string) string { return "User:" + name }

// ParsePrincipal checks a principal of the form Type:name (User:alice) and
// returns its name.
func ParsePrincipal(p string) (string, error) {
	typ, name, ok := strings.Cut(p, ":")
	if !ok || typ == "" || name == "" {
		return "", fmt.Errorf("principal %q: want Type:name, such as User:alice", p)
	}
	return name, nil
}

// ParseSuperUsers parses super.users: principals separated by semicolons.
func ParseSuperUsers(s string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(s, ";") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, err := ParsePrincipal(p); err != nil {
			return nil, fmt.Errorf("super.users: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}
