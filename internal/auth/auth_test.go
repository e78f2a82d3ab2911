package auth

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/xdg-go/pbkdf2"
)

type memStore map[string]ACL

func (m memStore) PutACL(a ACL) error    { m[a.Key()] = a; return nil }
func (m memStore) DeleteACL(a ACL) error { delete(m, a.Key()); return nil }

func acl(rt ResourceType, name string, pt PatternType, principal string, op Operation, perm Permission) ACL {
	return ACL{ResourceType: rt, ResourceName: name, PatternType: pt, Principal: principal, Host: "*", Operation: op, Permission: perm}
}

func TestAuthorizerSemantics(t *testing.T) {
	store := memStore{}
	a := NewAuthorizer([]string{"User:admin"}, false, nil, store)
	errs := a.Add([]ACL{
		acl(Topic, "tweets", Literal, "User:alice", Read, Allow),
		acl(Topic, "logs-", Prefixed, "User:alice", Write, Allow),
		acl(Topic, "logs-secret", Literal, "User:alice", Write, Deny),
		acl(Topic, "*", Literal, "User:bob", Describe, Allow),
		acl(Group, "dash", Prefixed, "User:*", Read, Allow),
		acl(Topic, "configs", Literal, "User:carol", AlterConfigs, Allow),
		{ResourceType: Topic, ResourceName: "tweets", PatternType: Literal, Principal: "User:mallory", Host: "10.0.0.9", Operation: All, Permission: Allow},
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(store) != 7 {
		t.Fatalf("store has %d ACLs, want 7", len(store))
	}
	cases := []struct {
		principal, host string
		op              Operation
		rt              ResourceType
		name            string
		want            bool
	}{
		{"User:alice", "1.2.3.4", Read, Topic, "tweets", true},
		{"User:alice", "1.2.3.4", Describe, Topic, "tweets", true}, // READ implies DESCRIBE
		{"User:alice", "1.2.3.4", Write, Topic, "tweets", false},
		{"User:alice", "1.2.3.4", Write, Topic, "logs-app", true},       // prefixed
		{"User:alice", "1.2.3.4", Write, Topic, "logs-secret", false},   // deny wins
		{"User:alice", "1.2.3.4", Describe, Topic, "logs-secret", true}, // a deny of WRITE leaves DESCRIBE
		{"User:bob", "1.2.3.4", Describe, Topic, "anything", true},      // wildcard
		{"User:bob", "1.2.3.4", Read, Topic, "anything", false},
		{"User:eve", "1.2.3.4", Read, Group, "dashboard", true}, // User:* and prefix
		{"User:eve", "1.2.3.4", Read, Group, "other", false},    // no ACL, allow.everyone off
		{"User:carol", "1.2.3.4", DescribeConfigs, Topic, "configs", true},
		{"User:mallory", "10.0.0.9", Write, Topic, "tweets", true}, // ALL from that host
		{"User:mallory", "10.0.0.8", Write, Topic, "tweets", false},
		{"User:admin", "1.2.3.4", Alter, Cluster, ClusterName, true}, // super user
		{"User:alice", "1.2.3.4", Alter, Cluster, ClusterName, false},
	}
	for _, c := range cases {
		if got := a.Authorize(c.principal, c.host, c.op, c.rt, c.name); got != c.want {
			t.Errorf("%s from %s %s %s %q: %v, want %v", c.principal, c.host, c.op, c.rt, c.name, got, c.want)
		}
	}
	if !a.MayOnSomeResource("User:alice", "1.2.3.4", Write, Topic) || a.MayOnSomeResource("User:bob", "1.2.3.4", Write, Topic) {
		t.Error("MayOnSomeResource: alice may write some topic, bob none")
	}
	if ops := a.AuthorizedOperations("User:alice", "h", Topic, "tweets"); ops != 1<<Read|1<<Describe {
		t.Errorf("alice's operations on tweets: %b", ops)
	}

	open := NewAuthorizer(nil, true, []ACL{acl(Topic, "private", Literal, "User:alice", Read, Allow)}, memStore{})
	if !open.Authorize("User:bob", "h", Write, Topic, "public") || open.Authorize("User:bob", "h", Read, Topic, "private") {
		t.Error("allow.everyone.if.no.acl.found opens only resources without ACLs")
	}

	// MATCH filters find what applies to a name; deleting by filter.
	name := "logs-secret"
	if got := a.Describe(Filter{ResourceType: Topic, ResourceName: &name, PatternType: 2, Operation: 1, Permission: 1}); len(got) != 3 {
		t.Errorf("MATCH logs-secret found %v, want the prefixed, the literal and the wildcard ACL", got)
	}
	alice := "User:alice"
	deleted, errs := a.Delete([]Filter{{ResourceType: 1, PatternType: 1, Principal: &alice, Operation: 1, Permission: 1}})
	if errs[0] != nil || len(deleted[0]) != 3 || len(a.ACLs()) != 4 || len(store) != 4 {
		t.Errorf("deleting alice's ACLs: %v %v, %d left", deleted, errs, len(a.ACLs()))
	}

	for _, bad := range []ACL{
		acl(Cluster, "other", Literal, "User:a", Alter, Allow),
		acl(Topic, "t", Literal, "alice", Read, Allow),
		acl(Topic, "t", Literal, "User:a", IdempotentWrite, Allow),
		acl(Topic, "t", 2, "User:a", Read, Allow),
	} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalidACL) {
			t.Errorf("%v: %v, want invalid", bad, err)
		}
	}
}

func TestCredentials(t *testing.T) {
	for _, m := range Mechanisms {
		c, err := NewCredential(m, "s3cret", 4096)
		if err != nil {
			t.Fatal(err)
		}
		if !c.Matches("s3cret") || c.Matches("wrong") {
			t.Fatalf("%s: Matches is wrong", m)
		}
		// What a Kafka client sends to AlterUserScramCredentials gives the same keys.
		salted := pbkdf2.Key([]byte("s3cret"), c.Salt, 4096, m.hash()().Size(), m.hash())
		d, err := CredentialFromSaltedPassword(m, c.Salt, salted, 4096)
		if err != nil || string(d.StoredKey) != string(c.StoredKey) || string(d.ServerKey) != string(c.ServerKey) {
			t.Fatalf("%s: from the salted password: %v", m, err)
		}
	}
	if _, err := NewCredential(ScramSHA256, "x", 100); !errors.Is(err, ErrUnacceptableCredential) {
		t.Errorf("100 iterations: %v", err)
	}
}

type credMap map[string]Credential

func (c credMap) Credential(user string, m Mechanism) (Credential, bool) {
	cr, ok := c[user+"/"+m.String()]
	return cr, ok
}

func TestSASLSessions(t *testing.T) {
	creds := credMap{}
	for _, m := range Mechanisms {
		c, _ := NewCredential(m, "pw", 4096)
		creds["alice/"+m.String()] = c
	}
	scramLogin := func(m Mechanism, user, password string) error {
		s, err := NewSASLSession(m.String(), creds)
		if err != nil {
			return err
		}
		client, _ := m.hash().NewClient(user, password, "")
		conv := client.NewConversation()
		msg, _ := conv.Step("")
		for {
			answer, done, err := s.Step([]byte(msg))
			if err != nil {
				return err
			}
			if msg, err = conv.Step(string(answer)); err != nil {
				return err
			}
			if done {
				if s.User() != user {
					t.Errorf("user %q, want %q", s.User(), user)
				}
				return nil
			}
		}
	}
	for _, m := range Mechanisms {
		if err := scramLogin(m, "alice", "pw"); err != nil {
			t.Errorf("%s: %v", m, err)
		}
		for _, bad := range [][2]string{{"alice", "wrong"}, {"nobody", "pw"}} {
			err := scramLogin(m, bad[0], bad[1])
			var ae *AuthError
			if !errors.As(err, &ae) || !strings.Contains(ae.Message, "invalid credentials with SASL mechanism "+m.String()) {
				t.Errorf("%s %v: %v", m, bad, err)
			}
		}
	}
	for _, garbage := range []string{"", "n,,", "x,y,z,w", "n,,m=ext,r=abc", strings.Repeat("A", 100000)} {
		s, _ := NewSASLSession("SCRAM-SHA-512", creds)
		if _, _, err := s.Step([]byte(garbage)); err == nil {
			t.Errorf("SCRAM accepted %q", garbage[:min(20, len(garbage))])
		}
	}
	plain := func(msg string) error {
		s, _ := NewSASLSession("PLAIN", creds)
		_, done, err := s.Step([]byte(msg))
		if err == nil && !done {
			t.Error("PLAIN not done")
		}
		return err
	}
	if err := plain("\x00alice\x00pw"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"\x00alice\x00nope", "\x00bob\x00pw", "bob\x00alice\x00pw", "alice", ""} {
		if err := plain(bad); err == nil {
			t.Errorf("PLAIN accepted %q", bad)
		}
	}
}

func TestPrincipalMapping(t *testing.T) {
	ca, err := NewCA("test CA", 24*3600*1e9)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := ca.Issue(CertRequest{CommonName: "Alice", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(certPEM)
	cert, _ := x509.ParseCertificate(b.Bytes)
	for rules, want := range map[string]string{
		"DEFAULT":                              "User:CN=Alice,O=creek",
		"RULE:^CN=(.*?),O=creek$/$1/L,DEFAULT": "User:alice",
		"RULE:^CN=(.*?),O=other$/$1/,DEFAULT":  "User:CN=Alice,O=creek",
		"RULE:CN=([^,]*).*/svc\\/$1/U":         "User:SVC/ALICE",
	} {
		m, err := ParsePrincipalMapping(rules)
		if err != nil {
			t.Fatalf("%s: %v", rules, err)
		}
		if got, err := m.Principal(cert); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", rules, got, err, want)
		}
	}
	for _, bad := range []string{"RULE:abc", "NOPE", "RULE:(/x/,DEFAULT"} {
		if _, err := ParsePrincipalMapping(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
