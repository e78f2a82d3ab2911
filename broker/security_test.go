package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/creek-pipeline/creek/internal/auth"
	"github.com/creek-pipeline/creek/internal/cluster"
)

// secure is a broker with every kind of listener, a test CA of its own,
// the super user admin (added to the stopped data dir before the first
// start, as `creek users add --data-dir` does) and ACLs enforced.
type secure struct {
	b       *Broker
	dir     string
	ca      *auth.CA
	caFile  string
	log     *robustLogs
	clients []*kgo.Client
}

const adminPassword = "admin-secret"

func startSecure(t *testing.T, settings map[string]string) *secure {
	t.Helper()
	s := &secure{dir: t.TempDir(), log: &robustLogs{}}
	var err error
	if s.ca, err = auth.NewCA("creek test CA", time.Hour); err != nil {
		t.Fatal(err)
	}
	certs := filepath.Join(s.dir, "certs")
	s.caFile, _, _ = auth.WriteFiles(certs, "ca", s.ca.PEM, s.ca.Key)
	certPEM, keyPEM, err := s.ca.Issue(auth.CertRequest{CommonName: "broker", Hosts: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, _ := auth.WriteFiles(certs, "broker", certPEM, keyPEM)

	data := filepath.Join(s.dir, "data")
	store, err := cluster.OpenSecurity(data)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := auth.NewCredential(auth.ScramSHA512, adminPassword, 4096)
	if err := store.PutCredential("admin", c); err != nil {
		t.Fatal(err)
	}
	store.Close()

	all := map[string]string{
		"listeners":                   "PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
		"tls-cert":                    certFile,
		"tls-key":                     keyFile,
		"tls-client-ca":               s.caFile,
		"ssl.client.auth":             "requested",
		"ssl.principal.mapping.rules": "RULE:^CN=([^,]*),O=creek$/$1/L,DEFAULT",
		"super.users":                 "User:admin",
		"connection.failed.authentication.delay.ms": "50",
		"group.initial.rebalance.delay.ms":          "0",
	}
	for k, v := range settings {
		all[k] = v
	}
	s.b, err = Start(context.Background(), Config{DataDir: data, Settings: all, Logger: slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, cl := range s.clients {
			cl.Close()
		}
		s.b.Close()
	})
	return s
}

func (s *secure) tlsConfig(t *testing.T) *tls.Config {
	cfg, err := auth.ClientTLS(auth.ClientTLSOptions{CAFile: s.caFile})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// client connects to a listener with a SASL mechanism (nil for none) and
// TLS when the listener has it.
func (s *secure) client(t *testing.T, listener string, m sasl.Mechanism, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{kgo.SeedBrokers(s.b.ListenerAddr(listener)), kgo.RetryTimeout(3 * time.Second), kgo.RequestRetries(1),
		kgo.ProduceRequestTimeout(3 * time.Second), kgo.DialTimeout(3 * time.Second)}
	if strings.Contains(listener, "SSL") {
		base = append(base, kgo.DialTLSConfig(s.tlsConfig(t)))
	}
	if m != nil {
		base = append(base, kgo.SASL(m))
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	s.clients = append(s.clients, cl)
	return cl
}

func scram512(user, pass string) sasl.Mechanism {
	return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
}

// addUser adds a user through AlterUserScramCredentials, as admin.
func (s *secure) addUser(t *testing.T, user, password string) {
	t.Helper()
	adm := kadm.NewClient(s.client(t, "SASL_SSL", scram512("admin", adminPassword)))
	res, err := adm.AlterUserSCRAMs(protoCtx(t), nil, []kadm.UpsertSCRAM{
		{User: user, Mechanism: kadm.ScramSha512, Iterations: 4096, Password: password},
		{User: user, Mechanism: kadm.ScramSha256, Iterations: 8192, Password: password},
	})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("add user %s: %v", user, err)
	}
}

func (s *secure) allow(t *testing.T, b *kadm.ACLBuilder) {
	t.Helper()
	adm := kadm.NewClient(s.client(t, "SASL_SSL", scram512("admin", adminPassword)))
	res, err := adm.CreateACLs(protoCtx(t), b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create ACL: %v", r.Err)
		}
	}
}

func produceOne(ctx context.Context, cl *kgo.Client, topic, value string) error {
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(value)}).FirstErr()
}

func TestSASLAndACLs(t *testing.T) {
	s := startSecure(t, nil)
	ctx := protoCtx(t)
	s.addUser(t, "alice", "alice-secret")
	admin := kadm.NewClient(s.client(t, "SASL_SSL", scram512("admin", adminPassword)))
	if _, err := admin.CreateTopic(ctx, 2, 1, nil, "tweets"); err != nil {
		t.Fatal(err)
	}
	admin.CreateTopic(ctx, 1, 1, nil, "secret")

	// Authenticated but without ACLs: every operation is refused with
	// Kafka's own error codes (allow.everyone.if.no.acl.found is false).
	alice := s.client(t, "SASL_SSL", scram512("alice", "alice-secret"), kgo.DefaultProduceTopic("tweets"))
	if err := produceOne(ctx, alice, "tweets", "x"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce without an ACL: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}

	s.allow(t, kadm.NewACLs().Allow("User:alice").Topics("tweets").Operations(kadm.OpWrite, kadm.OpRead))
	s.allow(t, kadm.NewACLs().Allow("User:alice").Groups("dash").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpRead))
	for i := 0; i < 5; i++ {
		if err := produceOne(ctx, alice, "tweets", "hello"); err != nil {
			t.Fatalf("produce with WRITE allowed: %v", err)
		}
	}
	if err := produceOne(ctx, alice, "secret", "x"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce to another topic: %v", err)
	}

	// Transactions need WRITE on the transactional id.
	txn := s.client(t, "SASL_SSL", scram512("alice", "alice-secret"), kgo.TransactionalID("alice-txn"))
	if err := txn.BeginTransaction(); err == nil {
		err = produceOne(ctx, txn, "tweets", "in a transaction")
		if !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
			t.Errorf("transactional produce without an ACL: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err)
		}
	}

	// Metadata lists only what alice may describe; authorized operations (KIP-430).
	aliceAdm := kadm.NewClient(alice)
	md, err := aliceAdm.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if names := md.Topics.Names(); len(names) != 1 || names[0] != "tweets" {
		t.Errorf("alice sees topics %v, want only tweets", names)
	}
	req := kmsg.NewPtrMetadataRequest()
	req.IncludeTopicAuthorizedOperations = true
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("tweets")
	req.Topics = append(req.Topics, rt, kmsg.MetadataRequestTopic{Topic: kmsg.StringPtr("secret")})
	mresp, err := req.RequestWith(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	for _, mt := range mresp.Topics {
		switch *mt.Topic {
		case "tweets":
			ops := kadm.DecodeACLOperations(mt.AuthorizedOperations)
			if mt.ErrorCode != 0 || len(ops) != 3 { // READ, WRITE, DESCRIBE
				t.Errorf("tweets: error %d, operations %v", mt.ErrorCode, ops)
			}
		case "secret":
			if mt.ErrorCode != kerr.TopicAuthorizationFailed.Code {
				t.Errorf("secret: error %d, want TOPIC_AUTHORIZATION_FAILED", mt.ErrorCode)
			}
		}
	}

	// Consuming needs READ on the group too.
	consume := func(group string) error {
		cl := s.client(t, "SASL_SSL", scram512("alice", "alice-secret"), kgo.ConsumeTopics("tweets"), kgo.ConsumerGroup(group),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		got := 0
		for got < 5 {
			fs := cl.PollFetches(fctx)
			if err := fs.Err0(); err != nil {
				return err
			}
			got += fs.NumRecords()
		}
		return cl.CommitUncommittedOffsets(fctx)
	}
	if err := consume("dashboard"); err != nil {
		t.Errorf("consume in an allowed group: %v", err)
	}
	if err := consume("other"); !errors.Is(err, kerr.GroupAuthorizationFailed) {
		t.Errorf("consume in a group without an ACL: %v, want GROUP_AUTHORIZATION_FAILED", err)
	}

	// Admin APIs need the cluster; DescribeAcls shows the bindings.
	if _, err := aliceAdm.CreateTopic(ctx, 1, 1, nil, "mine"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("create topic: %v", err)
	}
	describeAll := func(cl *kgo.Client) *kmsg.DescribeACLsResponse {
		req := kmsg.NewPtrDescribeACLsRequest()
		req.ResourceType, req.ResourcePatternType, req.Operation, req.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := describeAll(alice); resp.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("alice describes ACLs: error %d", resp.ErrorCode)
	}
	n := 0
	for _, r := range describeAll(s.client(t, "SASL_SSL", scram512("admin", adminPassword))).Resources {
		n += len(r.ACLs)
	}
	if n != 3 {
		t.Errorf("described %d ACLs, want 3", n)
	}

	// A deny wins over the allow.
	s.allow(t, kadm.NewACLs().Deny("User:alice").Topics("tweets").Operations(kadm.OpWrite))
	if err := produceOne(ctx, alice, "tweets", "x"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("produce after a deny: %v", err)
	}
	deleted, err := admin.DeleteACLs(ctx, kadm.NewACLs().Deny("User:alice").DenyHosts("*").Topics("tweets").Operations(kadm.OpWrite))
	if err != nil || len(deleted) != 1 || len(deleted[0].Deleted) != 1 {
		t.Fatalf("delete the deny: %v %+v", err, deleted)
	}

	// ACLs survive a restart; credentials too.
	s.b.Close()
	again := s.b
	s.b, err = Start(context.Background(), Config{DataDir: filepath.Join(s.dir, "data"), Settings: map[string]string{
		"listeners": "SASL_PLAINTEXT://127.0.0.1:0", "super.users": "User:admin"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = again
	cl := s.client(t, "SASL_PLAINTEXT", scram512("alice", "alice-secret"))
	if err := produceOne(ctx, cl, "tweets", "after restart"); err != nil {
		t.Errorf("produce after a restart: %v", err)
	}
}

func TestLoginFailures(t *testing.T) {
	s := startSecure(t, nil)
	ctx := protoCtx(t)
	s.addUser(t, "bob", "bob-secret")

	for _, c := range []struct {
		name     string
		listener string
		m        sasl.Mechanism
		wantMsg  string
	}{
		{"wrong password", "SASL_SSL", scram512("bob", "nope"), "invalid credentials with SASL mechanism SCRAM-SHA-512"},
		{"unknown user", "SASL_PLAINTEXT", scram.Auth{User: "nobody", Pass: "x"}.AsSha256Mechanism(), "invalid credentials with SASL mechanism SCRAM-SHA-256"},
		{"PLAIN wrong password", "SASL_SSL", plain.Auth{User: "bob", Pass: "nope"}.AsMechanism(), "Invalid username or password"},
	} {
		cl := s.client(t, c.listener, c.m)
		start := time.Now()
		err := cl.Ping(ctx)
		if !errors.Is(err, kerr.SaslAuthenticationFailed) || !strings.Contains(err.Error(), c.wantMsg) {
			t.Errorf("%s: %v, want SASL_AUTHENTICATION_FAILED with %q", c.name, err, c.wantMsg)
		}
		if d := time.Since(start); d < 50*time.Millisecond {
			t.Errorf("%s: refused after %v, before the delay", c.name, d)
		}
	}
	if !strings.Contains(s.log.all(), "authentication failed") || !strings.Contains(s.log.all(), "127.0.0.1") {
		t.Errorf("no log line with the client's address:\n%s", s.log)
	}
	// The right password works with PLAIN too (checked against the SCRAM credential).
	if err := s.client(t, "SASL_SSL", plain.Auth{User: "bob", Pass: "bob-secret"}.AsMechanism()).Ping(ctx); err != nil {
		t.Errorf("PLAIN: %v", err)
	}
	// A SASL client on a listener without SASL, and a plain client on a SASL one.
	if err := s.client(t, "PLAINTEXT", scram512("bob", "bob-secret")).Ping(ctx); err == nil {
		t.Error("SASL on the PLAINTEXT listener worked")
	}
	if err := s.client(t, "SASL_PLAINTEXT", nil).Ping(ctx); err == nil {
		t.Error("no SASL on a SASL listener worked")
	}
}

func TestMutualTLS(t *testing.T) {
	s := startSecure(t, nil)
	ctx := protoCtx(t)
	certs := filepath.Join(s.dir, "certs")
	issue := func(name string, ca *auth.CA, notAfter time.Time) *tls.Config {
		certPEM, keyPEM, err := ca.Issue(auth.CertRequest{CommonName: name, Client: true, NotAfter: notAfter, NotBefore: notAfter.Add(-2 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		cf, kf, _ := auth.WriteFiles(certs, name, certPEM, keyPEM)
		cfg, err := auth.ClientTLS(auth.ClientTLSOptions{CAFile: s.caFile, CertFile: cf, KeyFile: kf})
		if err != nil {
			t.Fatal(err)
		}
		// Sent even when the broker's list of authorities does not name its
		// signer, so that the broker is the one to refuse it.
		cert := cfg.Certificates[0]
		cfg.Certificates = nil
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
		return cfg
	}
	connect := func(cfg *tls.Config) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(s.b.ListenerAddr("SSL")), kgo.DialTLSConfig(cfg), kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		s.clients = append(s.clients, cl)
		return cl
	}
	admin := kadm.NewClient(s.client(t, "SASL_SSL", scram512("admin", adminPassword)))
	admin.CreateTopic(ctx, 1, 1, nil, "certified")
	s.allow(t, kadm.NewACLs().Allow("User:carol").Topics("certified").Operations(kadm.OpWrite))

	// The principal is the certificate's subject, mapped by the rules: CN=Carol,O=creek -> User:carol.
	carol := connect(issue("Carol", s.ca, time.Now().Add(time.Hour)))
	if err := produceOne(ctx, carol, "certified", "by certificate"); err != nil {
		t.Errorf("produce with a client certificate: %v", err)
	}
	// Without a certificate: User:ANONYMOUS, which has no ACL.
	if err := produceOne(ctx, connect(s.tlsConfig(t)), "certified", "x"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("produce without a certificate: %v", err)
	}
	// Expired, or signed by another authority: the handshake fails.
	other, _ := auth.NewCA("another CA", time.Hour)
	for name, cfg := range map[string]*tls.Config{
		"expired":   issue("Carol", s.ca, time.Now().Add(-time.Minute)),
		"untrusted": issue("Carol", other, time.Now().Add(time.Hour)),
	} {
		if err := connect(cfg).Ping(ctx); err == nil {
			t.Errorf("%s certificate accepted", name)
		}
	}
	if !strings.Contains(s.log.all(), "TLS handshake") {
		t.Errorf("refused handshakes are not logged:\n%s", s.log)
	}
}

func TestCertificateReload(t *testing.T) {
	s := startSecure(t, nil)
	ctx := protoCtx(t)
	tc, err := tls.Dial("tcp", s.b.ListenerAddr("SSL"), s.tlsConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	before := &rawConn{t, tc}
	apiVersions := func() bool {
		before.send(kmsg.NewPtrApiVersionsRequest())
		return !before.answer(kmsg.NewPtrApiVersionsResponse())
	}
	if !apiVersions() {
		t.Fatal("no answer before the reload")
	}
	// A new CA and broker certificate in the same files, then SIGHUP's reload.
	ca2, _ := auth.NewCA("second CA", time.Hour)
	certPEM, keyPEM, _ := ca2.Issue(auth.CertRequest{CommonName: "broker", Hosts: []string{"127.0.0.1"}})
	auth.WriteFiles(filepath.Join(s.dir, "certs"), "broker", certPEM, keyPEM)
	if err := s.b.ReloadCertificates(); err != nil {
		t.Fatal(err)
	}
	// The open connection goes on; new ones get the new certificate.
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if !apiVersions() {
		t.Error("the connection made before the reload was closed")
	}
	ca2File, _, _ := auth.WriteFiles(filepath.Join(s.dir, "certs"), "ca2", ca2.PEM, ca2.Key)
	cfg, _ := auth.ClientTLS(auth.ClientTLSOptions{CAFile: ca2File})
	after, _ := kgo.NewClient(kgo.SeedBrokers(s.b.ListenerAddr("SASL_SSL")), kgo.DialTLSConfig(cfg), kgo.SASL(scram512("admin", adminPassword)))
	defer after.Close()
	if err := after.Ping(ctx); err != nil {
		t.Errorf("a client trusting the new CA: %v", err)
	}
	if err := s.client(t, "SASL_SSL", scram512("admin", adminPassword)).Ping(ctx); err == nil {
		t.Error("a client trusting only the old CA still connects")
	}
	// A broken file leaves the certificate in use.
	os.WriteFile(filepath.Join(s.dir, "certs", "broker.key"), []byte("garbage"), 0o600)
	if err := s.b.ReloadCertificates(); err == nil {
		t.Error("reloading a broken key worked")
	}
	if err := after.Ping(ctx); err != nil {
		t.Errorf("after a failed reload: %v", err)
	}
}

func TestReauthentication(t *testing.T) {
	s := startSecure(t, map[string]string{"connections.max.reauth.ms": "1000"})
	ctx := protoCtx(t)
	cl := s.client(t, "SASL_SSL", scram512("admin", adminPassword))
	kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "reauth")
	// franz-go re-authenticates before each session expires; producing for
	// three sessions' time keeps working on the same connections.
	deadline := time.Now().Add(3500 * time.Millisecond)
	for n := 0; time.Now().Before(deadline); n++ {
		if err := produceOne(ctx, cl, "reauth", "x"); err != nil {
			t.Fatalf("produce %d: %v", n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(s.log.all(), "expired") {
		t.Errorf("a session expired:\n%s", s.log)
	}
}

// rawConn speaks the protocol by hand, for the hostile tests.
type rawConn struct {
	t  *testing.T
	nc net.Conn
}

func dialRaw(t *testing.T, addr string) *rawConn {
	nc, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t, nc}
}

func (c *rawConn) send(req kmsg.Request) {
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("hostile")).AppendRequest(nil, req, 1)
	if _, err := c.nc.Write(frame); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) sendFrame(body []byte) {
	c.nc.Write(append([]byte{byte(len(body) >> 24), byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...))
}

// answer reads a response (decoded into resp) or reports the connection closed.
func (c *rawConn) answer(resp kmsg.Response) (closed bool) {
	var size [4]byte
	if _, err := readFull(c.nc, size[:]); err != nil {
		return true
	}
	n := int(size[0])<<24 | int(size[1])<<16 | int(size[2])<<8 | int(size[3])
	body := make([]byte, n)
	if _, err := readFull(c.nc, body); err != nil {
		return true
	}
	if resp == nil {
		return false
	}
	skip := 4
	if resp.IsFlexible() {
		skip = 5
	}
	if err := resp.ReadFrom(body[skip:]); err != nil {
		c.t.Fatalf("decode %T: %v", resp, err)
	}
	return false
}

func readFull(nc net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := nc.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// closedSoon reports whether the broker closes the connection.
func (c *rawConn) closedSoon() bool {
	c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 1024)
	for {
		if _, err := c.nc.Read(buf); err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}

func handshake(c *rawConn, version int16, mechanism string) *kmsg.SASLHandshakeResponse {
	req := kmsg.NewPtrSASLHandshakeRequest()
	req.Version, req.Mechanism = version, mechanism
	c.send(req)
	resp := kmsg.NewPtrSASLHandshakeResponse()
	resp.Version = version
	if c.answer(resp) {
		c.t.Fatal("the broker closed the connection at the handshake")
	}
	return resp
}

func authenticate(c *rawConn, msg []byte) (*kmsg.SASLAuthenticateResponse, bool) {
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.Version, req.SASLAuthBytes = 2, msg
	c.send(req)
	resp := kmsg.NewPtrSASLAuthenticateResponse()
	resp.Version = 2
	closed := c.answer(resp)
	return resp, closed
}

func TestHostileSASL(t *testing.T) {
	s := startSecure(t, map[string]string{"sasl.server.max.receive.size": "4096"})
	ctx := protoCtx(t)
	s.addUser(t, "bob", "bob-secret")
	addr := s.b.ListenerAddr("SASL_PLAINTEXT")
	// A well-behaved client stays connected through all of it.
	good := s.client(t, "SASL_PLAINTEXT", scram512("admin", adminPassword))
	if err := good.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	t.Run("request before authentication", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.send(kmsg.NewPtrMetadataRequest())
		if !c.closedSoon() {
			t.Error("a Metadata request before authenticating was served")
		}
	})
	t.Run("authenticate before handshake", func(t *testing.T) {
		c := dialRaw(t, addr)
		resp, _ := authenticate(c, []byte("n,,n=bob,r=abc"))
		if resp.ErrorCode != kerr.IllegalSaslState.Code || !c.closedSoon() {
			t.Errorf("error %d; want ILLEGAL_SASL_STATE and a closed connection", resp.ErrorCode)
		}
	})
	t.Run("unknown mechanism", func(t *testing.T) {
		c := dialRaw(t, addr)
		resp := handshake(c, 1, "GSSAPI")
		if resp.ErrorCode != kerr.UnsupportedSaslMechanism.Code || len(resp.SupportedMechanisms) != 3 || !c.closedSoon() {
			t.Errorf("%+v", resp)
		}
	})
	for name, msg := range map[string][]byte{
		"garbage SCRAM":          []byte("\x00\xff garbage"),
		"client-final first":     []byte("c=biws,r=abc,p=AAAA"),
		"huge client-first":      []byte("n,,n=bob,r=" + strings.Repeat("x", 8000)),
		"client-first near size": []byte("n,,n=" + strings.Repeat("b", 3900) + ",r=x"),
	} {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, addr)
			handshake(c, 1, "SCRAM-SHA-512")
			resp, closed := authenticate(c, msg)
			if !closed && resp.ErrorCode == 0 {
				// The broker answered a first message; the next must fail.
				resp, closed = authenticate(c, []byte("c=biws,r=wrong,p=AAAA"))
			}
			if !closed && resp.ErrorCode != kerr.SaslAuthenticationFailed.Code {
				t.Errorf("error %d", resp.ErrorCode)
			}
			if !c.closedSoon() {
				t.Error("the connection stayed open")
			}
		})
	}
	t.Run("re-authentication as another user", func(t *testing.T) {
		c := dialRaw(t, addr)
		login := func(user, pass string) (*kmsg.SASLAuthenticateResponse, bool) {
			handshake(c, 1, "PLAIN")
			return authenticate(c, []byte("\x00"+user+"\x00"+pass))
		}
		if resp, closed := login("admin", adminPassword); closed || resp.ErrorCode != 0 {
			t.Fatalf("first login: %+v", resp)
		}
		resp, _ := login("bob", "bob-secret")
		if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code || resp.ErrorMessage == nil || !strings.Contains(*resp.ErrorMessage, "Cannot change principals") {
			t.Errorf("re-authentication as bob: %+v", resp)
		}
		if !c.closedSoon() {
			t.Error("the connection stayed open")
		}
	})
	t.Run("v0 handshake with bare tokens", func(t *testing.T) {
		c := dialRaw(t, addr)
		if resp := handshake(c, 0, "PLAIN"); resp.ErrorCode != 0 {
			t.Fatalf("handshake: %d", resp.ErrorCode)
		}
		c.sendFrame([]byte("\x00bob\x00bob-secret"))
		if c.answer(nil) {
			t.Fatal("closed after a good bare PLAIN token")
		}
		c.send(kmsg.NewPtrApiVersionsRequest())
		if c.answer(kmsg.NewPtrApiVersionsResponse()) {
			t.Error("closed after authenticating with a bare token")
		}
		bad := dialRaw(t, addr)
		handshake(bad, 0, "PLAIN")
		bad.sendFrame([]byte("\x00bob\x00wrong"))
		if !bad.closedSoon() {
			t.Error("a wrong bare PLAIN token left the connection open")
		}
	})
	if err := good.Ping(ctx); err != nil {
		t.Errorf("the well-behaved client after the hostile ones: %v", err)
	}
}

func TestConnectionLimits(t *testing.T) {
	s := startSecure(t, map[string]string{"max.connections.per.ip": "3"})
	var conns []net.Conn
	for i := 0; i < 3; i++ {
		nc, err := net.Dial("tcp", s.b.ListenerAddr("PLAINTEXT"))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		conns = append(conns, nc)
	}
	time.Sleep(100 * time.Millisecond) // the broker admits them
	c := dialRaw(t, s.b.ListenerAddr("PLAINTEXT"))
	if !c.closedSoon() {
		t.Error("a fourth connection from the same address was kept")
	}
	conns[0].Close()
	time.Sleep(100 * time.Millisecond)
	c = dialRaw(t, s.b.ListenerAddr("PLAINTEXT"))
	c.send(kmsg.NewPtrApiVersionsRequest())
	if c.answer(kmsg.NewPtrApiVersionsResponse()) {
		t.Error("a connection after one closed was refused")
	}
	if !strings.Contains(s.log.all(), "max.connections.per.ip") {
		t.Errorf("the refusal is not logged:\n%s", s.log)
	}
}

// TestEveryAPIHasAGate keeps the authorizer's table complete: an API
// served without an entry would fall back to needing ALTER on the cluster.
func TestEveryAPIHasAGate(t *testing.T) {
	for key := range apis {
		if _, ok := gates[key]; !ok {
			t.Errorf("%s has no entry in the authorizer's table (authorize.go)", kmsg.NameForKey(key))
		}
	}
}

// TestSecurityOff: without security settings nothing changes: ACL APIs
// say security is disabled, SASL requests are refused, and everything is
// served to User:ANONYMOUS.
func TestSecurityOff(t *testing.T) {
	b := protoBroker(t, nil)
	ctx := protoCtx(t)
	adm := protoAdmin(t, b)
	if _, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:a").Topics("t").Operations(kadm.OpRead)); err == nil {
		res, _ := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:a").Topics("t").Operations(kadm.OpRead))
		if len(res) == 0 || !errors.Is(res[0].Err, kerr.SecurityDisabled) {
			t.Errorf("CreateAcls on a broker without security: %+v", res)
		}
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "open"); err != nil {
		t.Error(err)
	}
	c := dialRaw(t, b.Addr())
	if resp := handshake(c, 1, "PLAIN"); resp.ErrorCode != kerr.IllegalSaslState.Code {
		t.Errorf("SaslHandshake on PLAINTEXT: %d", resp.ErrorCode)
	}
}

func (w *robustLogs) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestUserQuota: a quota set for a user applies to that user's SASL
// connections and not to another user's.
func TestUserQuota(t *testing.T) {
	s := startSecure(t, map[string]string{"quota.window.num": "3", "quota.window.size.seconds": "1"})
	ctx := protoCtx(t)
	s.addUser(t, "alice", "alice-secret")
	admin := kadm.NewClient(s.client(t, "SASL_SSL", scram512("admin", adminPassword)))
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "metered"); err != nil {
		t.Fatal(err)
	}
	s.allow(t, kadm.NewACLs().Allow("User:alice").Topics("metered").Operations(kadm.OpWrite))
	res, err := admin.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "user", Name: kmsg.StringPtr("alice")}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 10000}},
	}})
	if err == nil && len(res) == 1 {
		err = res[0].Err
	}
	if err != nil {
		t.Fatal(err)
	}
	throttledAfter := func(cl *kgo.Client) int32 {
		value := strings.Repeat("x", 8000)
		for range 10 {
			req := kmsg.NewPtrProduceRequest()
			req.Acks, req.TimeoutMillis = -1, 5000
			rp := kmsg.ProduceRequestTopicPartition{Partition: 0, Records: protoBatch(t, protoBatchSpec{values: []string{value}})}
			req.Topics = []kmsg.ProduceRequestTopic{{Topic: "metered", Partitions: []kmsg.ProduceRequestTopicPartition{rp}}}
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			if resp.ThrottleMillis > 0 {
				return resp.ThrottleMillis
			}
		}
		return 0
	}
	if throttledAfter(s.client(t, "SASL_SSL", scram512("alice", "alice-secret"))) == 0 {
		t.Error("alice produced 80 KB at a 10 KB/s user quota and was never throttled")
	}
	if d := throttledAfter(s.client(t, "SASL_SSL", scram512("admin", adminPassword))); d != 0 {
		t.Errorf("admin, who has no quota, was throttled %d ms", d)
	}
}
