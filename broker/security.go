package broker

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/auth"
	"github.com/creek-pipeline/creek/internal/cluster"
	"github.com/creek-pipeline/creek/internal/config"
)

// Listeners and the state of security on a connection. A broker without
// security settings has one PLAINTEXT listener, no authentication and no
// authorizer: every request is served as before.

// listener is one of the broker's listeners.
type listener struct {
	auth.Listener
	ln         net.Listener
	advertised string // host:port clients are told; "" for the address they used
}

// security is what the broker's listeners and handlers need to
// authenticate and authorize clients.
type security struct {
	tls             *auth.ServerTLS // nil without TLS listeners
	mapper          *auth.PrincipalMapper
	mechanisms      []string
	reauth          time.Duration // connections.max.reauth.ms; 0: sessions do not expire
	failDelay       time.Duration
	maxUnauthedSize int32
	maxConns        int
	maxConnsPerIP   int
	creds           auth.CredentialLookup

	// authz decides requests; nil when ACLs are not enforced (the default
	// for brokers that do not authenticate clients).
	authz *auth.Authorizer
}

// openListeners reads listeners (or the --listen shorthand) and listens.
func openListeners(values *config.BrokerValues) ([]*listener, error) {
	protocols, err := auth.ParseProtocolMap(values.String("listener.security.protocol.map"))
	if err != nil {
		return nil, err
	}
	var specs []auth.Listener
	advertised := map[string]string{}
	spec, source := values.Get("listeners")
	if spec == "" {
		specs = []auth.Listener{{Name: "PLAINTEXT", Protocol: auth.Plaintext, Addr: values.String("listen")}}
		advertised["PLAINTEXT"] = values.String("advertised-addr")
	} else {
		if _, src := values.Get("listen"); src != config.SourceDefault && source != config.SourceDefault {
			return nil, fmt.Errorf("give either --listen (one PLAINTEXT listener) or --listeners, not both")
		}
		if specs, err = auth.ParseListeners(spec, protocols, false); err != nil {
			return nil, err
		}
		if values.String("advertised-addr") != "" {
			return nil, fmt.Errorf("--advertised-addr goes with --listen; with --listeners use --advertised-listeners NAME://host:port")
		}
	}
	if adv := values.String("advertised.listeners"); adv != "" {
		list, err := auth.ParseListeners(adv, protocols, true)
		if err != nil {
			return nil, err
		}
		for _, a := range list {
			if !slices.ContainsFunc(specs, func(l auth.Listener) bool { return l.Name == a.Name }) {
				return nil, fmt.Errorf("advertised.listeners names %s, which is not a listener", a.Name)
			}
			advertised[a.Name] = a.Addr
		}
	}
	var out []*listener
	for _, s := range specs {
		ln, err := net.Listen("tcp", s.Addr)
		if err != nil {
			for _, l := range out {
				l.ln.Close()
			}
			flag := "--listeners"
			if spec == "" {
				flag = "--listen"
			}
			return nil, fmt.Errorf("listen on %s (%s): %w (is another broker running? choose another port with %s)", s.Addr, s.Name, err, flag)
		}
		out = append(out, &listener{Listener: s, ln: ln, advertised: advertised[s.Name]})
	}
	return out, nil
}

// newSecurity reads the security settings for the listeners.
func newSecurity(values *config.BrokerValues, listeners []*listener, cl *cluster.Cluster, logger *slog.Logger) (*security, error) {
	s := &security{
		reauth:          time.Duration(values.Int64("connections.max.reauth.ms")) * time.Millisecond,
		failDelay:       time.Duration(values.Int64("connection.failed.authentication.delay.ms")) * time.Millisecond,
		maxUnauthedSize: int32(values.Int64("sasl.server.max.receive.size")),
		maxConns:        int(values.Int64("max.connections")),
		maxConnsPerIP:   int(values.Int64("max.connections.per.ip")),
		creds:           cl.Security(),
	}
	var err error
	if s.mechanisms, err = auth.ParseServerMechanisms(values.String("sasl.enabled.mechanisms")); err != nil {
		return nil, err
	}
	if s.mapper, err = auth.ParsePrincipalMapping(values.String("ssl.principal.mapping.rules")); err != nil {
		return nil, err
	}
	authenticates := false
	for _, l := range listeners {
		authenticates = authenticates || l.Protocol.SASL()
		if l.Protocol.TLS() && s.tls == nil {
			clientAuth, err := auth.ParseClientAuth(values.String("ssl.client.auth"))
			if err != nil {
				return nil, err
			}
			if s.tls, err = auth.NewServerTLS(values.String("tls-cert"), values.String("tls-key"), values.String("tls-client-ca"), clientAuth); err != nil {
				return nil, fmt.Errorf("listener %s: %w", l.Name, err)
			}
			authenticates = authenticates || s.tls.ClientAuthenticates()
		}
	}
	mode := config.AuthorizerMode(values.String("authorizer.class.name"))
	if mode == "on" || (mode == "auto" && authenticates) {
		superUsers, err := auth.ParseSuperUsers(values.String("super.users"))
		if err != nil {
			return nil, err
		}
		acls, err := cl.Security().ACLs()
		if err != nil {
			return nil, err
		}
		s.authz = auth.NewAuthorizer(superUsers, values.Bool("allow.everyone.if.no.acl.found"), acls, cl.Security())
		logger.Info("ACLs are enforced", "acls", len(acls), "super_users", superUsers, "allow_everyone_if_no_acl_found", values.Bool("allow.everyone.if.no.acl.found"))
	}
	return s, nil
}

// ReloadCertificates reads the TLS certificate, key and client
// authorities again (as on SIGHUP). Connections already made keep theirs.
func (b *Broker) ReloadCertificates() error {
	if b.sec.tls == nil {
		return nil
	}
	if err := b.sec.tls.Reload(); err != nil {
		return err
	}
	b.logger.Info("TLS certificates reloaded")
	return nil
}

// ListenerAddr is the address a listener listens on ("" for no such listener).
func (b *Broker) ListenerAddr(name string) string {
	for _, l := range b.listeners {
		if l.Name == name {
			return l.ln.Addr().String()
		}
	}
	return ""
}

// admit applies max.connections and max.connections.per.ip to a new
// connection; b.mu is held.
func (b *Broker) admit(c *conn) error {
	if len(b.conns) >= b.sec.maxConns {
		return fmt.Errorf("the broker has %d connections open (max.connections)", len(b.conns))
	}
	if n := b.connsPerIP[c.host]; n >= b.sec.maxConnsPerIP {
		return fmt.Errorf("%s has %d connections open (max.connections.per.ip)", c.host, n)
	}
	b.connsPerIP[c.host]++
	return nil
}

// tlsHandshakeTimeout bounds a client's TLS handshake.
const tlsHandshakeTimeout = 10 * time.Second

// startTLS finishes the TLS handshake of a connection and takes the
// principal of its client certificate, if it sent one.
func (c *conn) startTLS(tc *tls.Conn) error {
	tc.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("TLS handshake on listener %s failed: %w", c.listener.Name, err)
	}
	tc.SetDeadline(time.Time{})
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
		p, err := c.b.sec.mapper.Principal(certs[0])
		if err != nil {
			return err
		}
		c.principal = p
	}
	return nil
}

// saslConn is the SASL state of a connection on a SASL listener. Only the
// connection's reader touches it.
type saslConn struct {
	mechanism     string
	session       auth.SASLSession // the exchange in progress
	raw           bool             // SaslHandshake v0: the next frames are bare SASL tokens
	authenticated bool
	canReauth     bool      // authenticated with SaslAuthenticate v1+ (KIP-368)
	expiry        time.Time // zero: never
}

// allows tells whether a request may come in the connection's SASL state:
// before authentication only ApiVersions, SaslHandshake and, after it,
// SaslAuthenticate; after it, anything while the session lasts.
func (s *saslConn) allows(key int16, now func() time.Time) error {
	switch key {
	case 18: // ApiVersions
		return nil
	case 17, 36: // SaslHandshake, SaslAuthenticate: their handlers check the order
		return nil
	}
	if !s.authenticated {
		return protocolError("a %s request before SASL authentication: is the client configured for SASL (security.protocol=SASL_PLAINTEXT or SASL_SSL)?", kmsg.NameForKey(key))
	}
	if !s.expiry.IsZero() && now().After(s.expiry) {
		return protocolError("the client's SASL session expired (connections.max.reauth.ms) and it did not authenticate again")
	}
	return nil
}

// errNotRaw: the frame is a Kafka request, to be read as usual.
var errNotRaw = errors.New("not a bare SASL token")

// unauthenticatedFrame applies the rules of a SASL listener before the
// client has authenticated: requests are bounded by
// sasl.server.max.receive.size, and after a v0 handshake a frame is a bare
// SASL token, served here.
func (c *conn) unauthenticatedFrame(r *bufio.Reader, size int32) error {
	if size < 0 || size > c.b.sec.maxUnauthedSize {
		return protocolError("a frame of %d bytes before SASL authentication is outside 0..%d (sasl.server.max.receive.size)", size, c.b.sec.maxUnauthedSize)
	}
	if !c.sasl.raw || c.sasl.session == nil {
		return errNotRaw
	}
	token, err := c.readBody(r, int(size))
	if err != nil {
		return err
	}
	return c.rawToken(token)
}

// Listeners lists the broker's listeners with the addresses they listen on.
func (b *Broker) Listeners() []auth.Listener {
	var out []auth.Listener
	for _, l := range b.listeners {
		out = append(out, auth.Listener{Name: l.Name, Protocol: l.Protocol, Addr: l.ln.Addr().String()})
	}
	return out
}
