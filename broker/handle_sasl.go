package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/auth"
)

// SASL (KIP-43, KIP-152, KIP-368): SaslHandshake picks a mechanism, then
// SaslAuthenticate requests carry its messages (v1+ of the handshake), or,
// after a v0 handshake, bare length-prefixed tokens do. A client that
// fails is told SASL_AUTHENTICATION_FAILED after a delay, and its
// connection is closed.

func init() {
	register(kmsg.SASLHandshake, 0, handleSASLHandshake)
	registerAsync(kmsg.SASLAuthenticate, 0, handleSASLAuthenticate)
}

func handleSASLHandshake(b *Broker, r *request, req *kmsg.SASLHandshakeRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = b.sec.mechanisms
	c, s := r.conn, r.conn.sasl
	refuse := func(code *kerr.Error, reason string) kmsg.Response {
		resp.ErrorCode = code.Code
		if s != nil {
			c.closeAfter = true
			c.b.logger.Warn("SASL handshake refused; closing the connection", "client", c.nc.RemoteAddr().String(), "listener", c.listener.Name, "reason", reason)
		}
		return resp
	}
	switch {
	case s == nil: // a listener without SASL, which Kafka says has no mechanisms
		resp.SupportedMechanisms = nil
		return refuse(kerr.IllegalSaslState, "")
	case !slices.Contains(b.sec.mechanisms, req.Mechanism):
		return refuse(kerr.UnsupportedSaslMechanism, fmt.Sprintf("mechanism %q is not enabled (sasl.enabled.mechanisms)", req.Mechanism))
	case s.session != nil:
		return refuse(kerr.IllegalSaslState, "a second SaslHandshake during an exchange")
	case s.authenticated && (req.Version < 1 || !s.canReauth):
		return refuse(kerr.IllegalSaslState, "a SaslHandshake after authentication from a client that cannot re-authenticate (KIP-368 needs SaslAuthenticate v1)")
	case s.authenticated && req.Mechanism != s.mechanism:
		return refuse(kerr.IllegalSaslState, fmt.Sprintf("re-authentication with %s after authenticating with %s", req.Mechanism, s.mechanism))
	}
	session, err := auth.NewSASLSession(req.Mechanism, b.sec.creds)
	if err != nil {
		return refuse(kerr.UnsupportedSaslMechanism, err.Error())
	}
	s.mechanism, s.session, s.raw = req.Mechanism, session, req.Version == 0
	return resp
}

func handleSASLAuthenticate(b *Broker, r *request, req *kmsg.SASLAuthenticateRequest) (kmsg.Response, func()) {
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	c, s := r.conn, r.conn.sasl
	switch {
	case s == nil:
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.ErrorMessage = stringPtr("this listener does not use SASL")
		return resp, nil
	case s.session == nil || s.raw:
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.ErrorMessage = stringPtr("SaslAuthenticate before SaslHandshake")
		c.closeAfter = true
		c.b.logger.Warn("SaslAuthenticate out of order; closing the connection", "client", c.nc.RemoteAddr().String(), "listener", c.listener.Name)
		return resp, nil
	}
	answer, done, err := c.saslStep(req.SASLAuthBytes, req.Version >= 1)
	if err != nil {
		var ae *auth.AuthError
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		if errors.As(err, &ae) {
			resp.ErrorMessage = stringPtr(ae.Message)
		}
		return resp, c.b.failedLoginDelay
	}
	resp.SASLAuthBytes = answer
	if done && req.Version >= 1 && b.sec.reauth > 0 {
		resp.SessionLifetimeMillis = b.sec.reauth.Milliseconds()
	}
	return resp, nil
}

// failedLoginDelay holds back the answer to a failed login
// (connection.failed.authentication.delay.ms); it runs on the connection's
// writer, so other clients do not wait.
func (b *Broker) failedLoginDelay() {
	select {
	case <-time.After(b.sec.failDelay):
	case <-b.closing:
	}
}

// saslStep feeds one client message to the exchange in progress. On
// success the connection's principal is the user's; on a failure, which is
// logged, the connection is to close after the answer.
func (c *conn) saslStep(msg []byte, canReauth bool) ([]byte, bool, error) {
	s := c.sasl
	answer, done, err := s.session.Step(msg)
	if err == nil && done {
		principal := auth.UserPrincipal(s.session.User())
		if s.authenticated && principal != c.principal {
			err = &auth.AuthError{
				Message: fmt.Sprintf("Cannot change principals during re-authentication from %s: %s", c.principal, principal),
				Reason:  "re-authentication as another user",
			}
		} else {
			reauth := s.authenticated
			s.session, s.authenticated, s.raw, s.canReauth = nil, true, false, canReauth
			if c.b.sec.reauth > 0 {
				s.expiry = time.Now().Add(c.b.sec.reauth)
			}
			c.principal = principal
			c.b.logger.Debug("client authenticated", "client", c.nc.RemoteAddr().String(), "listener", c.listener.Name, "principal", principal, "mechanism", s.mechanism, "reauthentication", reauth)
			return answer, true, nil
		}
	}
	if err != nil {
		reason := err.Error()
		var ae *auth.AuthError
		if errors.As(err, &ae) {
			reason = ae.Reason
		}
		c.closeAfter = true
		s.session = nil
		c.b.logger.Warn("authentication failed; closing the connection", "client", c.nc.RemoteAddr().String(), "listener", c.listener.Name, "mechanism", s.mechanism, "reason", reason)
		return nil, false, err
	}
	return answer, false, nil
}

// rawToken serves a bare SASL token (after SaslHandshake v0): the answer
// goes back as a bare token too; a failure closes the connection after the
// delay, as the v0 exchange has no way to say why.
func (c *conn) rawToken(token []byte) error {
	answer, _, err := c.saslStep(token, false)
	if err != nil {
		c.b.failedLoginDelay()
		return errLogged
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.w.Write(binary.BigEndian.AppendUint32(nil, uint32(len(answer)))); err != nil {
		return err
	}
	if _, err := c.w.Write(answer); err != nil {
		return err
	}
	return c.w.Flush()
}
