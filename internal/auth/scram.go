package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/xdg-go/scram"
)

// Mechanism is a SCRAM mechanism, numbered as AlterUserScramCredentials
// numbers them.
type Mechanism int8

// The SCRAM mechanisms.
const (
	ScramSHA256 Mechanism = 1
	ScramSHA512 Mechanism = 2
)

// Mechanisms lists the SCRAM mechanisms.
var Mechanisms = []Mechanism{ScramSHA256, ScramSHA512}

func (m Mechanism) String() string {
	switch m {
	case ScramSHA256:
		return "SCRAM-SHA-256"
	case ScramSHA512:
		return "SCRAM-SHA-512"
	}
	return fmt.Sprintf("UNKNOWN(%d)", int8(m))
}

// ParseMechanism parses SCRAM-SHA-256 or SCRAM-SHA-512.
func ParseMechanism(s string) (Mechanism, error) {
	for _, m := range Mechanisms {
		if strings.EqualFold(strings.TrimSpace(s), m.String()) {
			return m, nil
		}
	}
	return 0, fmt.Errorf("%q is not a SCRAM mechanism (SCRAM-SHA-256, SCRAM-SHA-512)", s)
}

// Valid reports whether m is a known mechanism.
func (m Mechanism) Valid() bool { return m == ScramSHA256 || m == ScramSHA512 }

func (m Mechanism) hash() scram.HashGeneratorFcn {
	if m == ScramSHA256 {
		return scram.SHA256
	}
	return scram.SHA512
}

// Iteration bounds, as Kafka's: fewer than 4096 is weak, more than 16384
// makes every login expensive.
const (
	MinIterations     = 4096
	MaxIterations     = 16384
	DefaultIterations = 8192
)

// Credential is a user's SCRAM credential as the broker keeps it: the salt,
// the iteration count and the two keys derived from the salted password
// (RFC 5802). The password itself is never kept.
type Credential struct {
	Mechanism  Mechanism `json:"mechanism"`
	Iterations int       `json:"iterations"`
	Salt       []byte    `json:"salt"`
	StoredKey  []byte    `json:"stored_key"`
	ServerKey  []byte    `json:"server_key"`
}

// ErrUnacceptableCredential is a credential the broker refuses to store.
var ErrUnacceptableCredential = errors.New("unacceptable credential")

// NewCredential derives a credential from a password with a fresh random salt.
func NewCredential(m Mechanism, password string, iterations int) (Credential, error) {
	if err := checkIterations(iterations); err != nil {
		return Credential{}, err
	}
	if password == "" {
		return Credential{}, fmt.Errorf("%w: the password is empty", ErrUnacceptableCredential)
	}
	salt := make([]byte, 32)
	rand.Read(salt)
	return credentialFromPassword(m, password, salt, iterations)
}

func credentialFromPassword(m Mechanism, password string, salt []byte, iterations int) (Credential, error) {
	// Not SASLprep'd: Kafka and its clients hash the password's UTF-8 bytes.
	client, err := m.hash().NewClientUnprepped("", password, "")
	if err != nil {
		return Credential{}, fmt.Errorf("%w: %v", ErrUnacceptableCredential, err)
	}
	sc, err := client.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: iterations})
	if err != nil {
		return Credential{}, fmt.Errorf("%w: %v", ErrUnacceptableCredential, err)
	}
	return Credential{Mechanism: m, Iterations: iterations, Salt: salt, StoredKey: sc.StoredKey, ServerKey: sc.ServerKey}, nil
}

// CredentialFromSaltedPassword builds a credential from what
// AlterUserScramCredentials carries: the salt and the salted password that
// the client derived (so the password never leaves the client).
func CredentialFromSaltedPassword(m Mechanism, salt, salted []byte, iterations int) (Credential, error) {
	if !m.Valid() {
		return Credential{}, fmt.Errorf("%w: unknown SCRAM mechanism %d", ErrUnacceptableCredential, m)
	}
	if err := checkIterations(iterations); err != nil {
		return Credential{}, err
	}
	if len(salt) == 0 || len(salted) != m.hash()().Size() {
		return Credential{}, fmt.Errorf("%w: want a salt and a %d-byte salted password for %s", ErrUnacceptableCredential, m.hash()().Size(), m)
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(m.hash(), key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	h := m.hash()()
	h.Write(clientKey)
	return Credential{Mechanism: m, Iterations: iterations, Salt: salt, StoredKey: h.Sum(nil), ServerKey: mac(salted, "Server Key")}, nil
}

func checkIterations(n int) error {
	if n < MinIterations || n > MaxIterations {
		return fmt.Errorf("%w: %d iterations is outside %d..%d", ErrUnacceptableCredential, n, MinIterations, MaxIterations)
	}
	return nil
}

// Matches reports whether password is the one the credential was made from.
func (c Credential) Matches(password string) bool {
	other, err := credentialFromPassword(c.Mechanism, password, c.Salt, c.Iterations)
	return err == nil && hmac.Equal(other.StoredKey, c.StoredKey)
}

// CredentialLookup finds a user's credential for a mechanism.
type CredentialLookup interface {
	Credential(user string, m Mechanism) (Credential, bool)
}
