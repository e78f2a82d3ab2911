package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/xdg-go/scram"
)

// SASL mechanism names.
const (
	MechanismPlain = "PLAIN"
	// AWSMSKIAM is Amazon MSK's IAM mechanism; creek's clients speak it,
	// creek's broker does not.
	AWSMSKIAM = "AWS_MSK_IAM"
)

// ServerMechanisms are the SASL mechanisms the broker can serve.
var ServerMechanisms = []string{ScramSHA512.String(), ScramSHA256.String(), MechanismPlain}

// ParseServerMechanisms parses sasl.enabled.mechanisms.
func ParseServerMechanisms(s string) ([]string, error) {
	var out []string
	for _, m := range strings.Split(s, ",") {
		m = strings.ToUpper(strings.TrimSpace(m))
		if m == "" {
			continue
		}
		known := false
		for _, k := range ServerMechanisms {
			known = known || k == m
		}
		if !known {
			return nil, fmt.Errorf("sasl.enabled.mechanisms: creek's broker does not serve %q (it serves %s)", m, strings.Join(ServerMechanisms, ", "))
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("sasl.enabled.mechanisms is empty; enable at least one of %s", strings.Join(ServerMechanisms, ", "))
	}
	return out, nil
}

// AuthError is a failed authentication. Message is what the client is
// told (Kafka's wording, which says nothing of why); Reason is for the
// broker's log.
type AuthError struct {
	Message string
	Reason  string
}

func (e *AuthError) Error() string { return e.Message + ": " + e.Reason }

// SASLSession is one SASL exchange on a connection.
type SASLSession interface {
	// Step takes the client's next message and returns the answer to send;
	// done is true once the client is authenticated. A failure is an
	// *AuthError.
	Step(msg []byte) (answer []byte, done bool, err error)
	// User is the authenticated user name, once done.
	User() string
}

// NewSASLSession starts an exchange of a mechanism the broker serves.
func NewSASLSession(mechanism string, creds CredentialLookup) (SASLSession, error) {
	if mechanism == MechanismPlain {
		return &plainSession{creds: creds}, nil
	}
	m, err := ParseMechanism(mechanism)
	if err != nil {
		return nil, err
	}
	sess := &scramSession{m: m}
	lookup := func(user string) (scram.StoredCredentials, error) {
		c, ok := creds.Credential(user, m)
		if !ok {
			// An unknown user goes through the whole exchange and fails at
			// the proof, like a wrong password, so that the answers do not
			// tell which user names exist.
			c = decoyCredential(user, m)
		}
		sess.cred = c
		return scram.StoredCredentials{KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: c.Iterations}, StoredKey: c.StoredKey, ServerKey: c.ServerKey}, nil
	}
	server, err := m.hash().NewServer(lookup)
	if err != nil {
		return nil, err
	}
	sess.conv = server.NewConversation()
	return sess, nil
}

// decoyKey makes decoy salts stable for a user within a broker's life, as a
// real user's salt is.
var decoyKey = func() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}()

func decoyCredential(user string, m Mechanism) Credential {
	h := hmac.New(sha256.New, decoyKey)
	h.Write([]byte(user))
	key := make([]byte, m.hash()().Size())
	rand.Read(key)
	return Credential{Mechanism: m, Iterations: DefaultIterations, Salt: h.Sum(nil), StoredKey: key, ServerKey: key}
}

// maxSASLMessage bounds one client message; real ones are well under a
// kilobyte (the transport also bounds what it reads before authentication).
const maxSASLMessage = 64 << 10

type scramSession struct {
	m    Mechanism
	conv *scram.ServerConversation

	// What the first round said, for a client-final message whose nonce
	// repeats the client's part (see finalWithRepeatedNonce).
	cred        Credential
	clientFirst string
	serverFirst string
	user        string // set once authenticated outside conv
	done        bool
}

func (s *scramSession) failed(reason string) *AuthError {
	return &AuthError{Message: "Authentication failed during authentication due to invalid credentials with SASL mechanism " + s.m.String(), Reason: reason}
}

func (s *scramSession) Step(msg []byte) ([]byte, bool, error) {
	if len(msg) > maxSASLMessage {
		return nil, false, s.failed(fmt.Sprintf("a SCRAM message of %d bytes", len(msg)))
	}
	if s.conv.Done() || s.done {
		return nil, false, s.failed("a SCRAM message after the exchange ended")
	}
	if s.serverFirst != "" {
		if answer, ok, err := s.finalWithRepeatedNonce(string(msg)); ok {
			return answer, err == nil, err
		}
	}
	answer, err := s.conv.Step(string(msg))
	if err != nil {
		reason := err.Error()
		if user := s.conv.Username(); user != "" {
			reason = fmt.Sprintf("user %q: %s", user, reason)
		}
		return nil, false, s.failed(reason)
	}
	if s.serverFirst == "" {
		s.clientFirst, s.serverFirst = string(msg), answer
	}
	return []byte(answer), s.conv.Valid(), nil
}

// finalWithRepeatedNonce checks a client-final message whose nonce is the
// client's nonce followed by the whole server nonce (which already begins
// with the client's): librdkafka 2.x sends that, and Kafka accepts it
// because it only asks that the nonce end with the server's (ScramSaslServer).
// The proof is checked as RFC 5802 says, over the messages as sent; ok is
// false for any other message, which the SCRAM library then handles.
func (s *scramSession) finalWithRepeatedNonce(c2 string) (answer []byte, ok bool, err error) {
	fields := strings.Split(c2, ",")
	serverNonce := strings.TrimPrefix(strings.SplitN(s.serverFirst, ",", 2)[0], "r=")
	if len(fields) < 3 || !strings.HasPrefix(fields[1], "r=") {
		return nil, false, nil
	}
	nonce := strings.TrimPrefix(fields[1], "r=")
	if nonce == serverNonce || !strings.HasSuffix(nonce, serverNonce) {
		return nil, false, nil
	}
	s.done = true
	// The gs2 header (channel binding flag and authzid) is what the
	// client-first message began with; c= must carry it back.
	parts := strings.SplitN(s.clientFirst, ",", 3)
	if len(parts) < 3 || (parts[0] != "n" && parts[0] != "y") {
		return nil, true, s.failed("a repeated nonce with channel binding")
	}
	gs2, bare := parts[0]+","+parts[1]+",", parts[2]
	if fields[0] != "c="+base64.StdEncoding.EncodeToString([]byte(gs2)) {
		return nil, true, s.failed("channel binding data that does not match the first message")
	}
	proof, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(fields[len(fields)-1], "p="))
	if err != nil || !strings.HasPrefix(fields[len(fields)-1], "p=") {
		return nil, true, s.failed("a client-final message without a valid proof")
	}
	authMessage := []byte(bare + "," + s.serverFirst + "," + c2[:strings.LastIndex(c2, ",")])
	newHash := s.m.hash()
	mac := func(key []byte) []byte {
		h := hmac.New(newHash, key)
		h.Write(authMessage)
		return h.Sum(nil)
	}
	signature := mac(s.cred.StoredKey)
	if len(proof) != len(signature) {
		return nil, true, s.failed("a proof of the wrong length")
	}
	clientKey := make([]byte, len(proof))
	for i := range proof {
		clientKey[i] = proof[i] ^ signature[i]
	}
	h := newHash()
	h.Write(clientKey)
	if !hmac.Equal(h.Sum(nil), s.cred.StoredKey) {
		return nil, true, s.failed(fmt.Sprintf("user %q: challenge proof invalid", s.conv.Username()))
	}
	s.user = s.conv.Username()
	return []byte("v=" + base64.StdEncoding.EncodeToString(mac(s.cred.ServerKey))), true, nil
}

func (s *scramSession) User() string {
	if s.user != "" {
		return s.user
	}
	return s.conv.Username()
}

type plainSession struct {
	creds CredentialLookup
	user  string
	done  bool
}

const plainFailed = "Authentication failed: Invalid username or password"

// Step checks PLAIN's single message, authzid NUL user NUL password (RFC
// 4616), against the user's SCRAM credential.
func (s *plainSession) Step(msg []byte) ([]byte, bool, error) {
	if s.done {
		return nil, false, &AuthError{Message: plainFailed, Reason: "a second PLAIN message"}
	}
	s.done = true
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 || len(msg) > maxSASLMessage {
		return nil, false, &AuthError{Message: "Authentication failed: Invalid SASL/PLAIN response: expected 3 tokens", Reason: fmt.Sprintf("a malformed PLAIN message of %d bytes", len(msg))}
	}
	authzID, user, password := string(parts[0]), string(parts[1]), string(parts[2])
	if user == "" || password == "" {
		return nil, false, &AuthError{Message: plainFailed, Reason: "an empty user name or password"}
	}
	if authzID != "" && authzID != user {
		return nil, false, &AuthError{Message: "Authentication failed: Client requested an authorization id that is different from username", Reason: fmt.Sprintf("user %q asked to act as %q", user, authzID)}
	}
	for _, m := range []Mechanism{ScramSHA512, ScramSHA256} {
		if c, ok := s.creds.Credential(user, m); ok {
			if !c.Matches(password) {
				return nil, false, &AuthError{Message: plainFailed, Reason: fmt.Sprintf("user %q: wrong password", user)}
			}
			s.user = user
			return []byte{}, true, nil
		}
	}
	decoyCredential(user, ScramSHA512).Matches(password) // the same work as for a known user
	return nil, false, &AuthError{Message: plainFailed, Reason: fmt.Sprintf("user %q is unknown", user)}
}

func (s *plainSession) User() string { return s.user }
