package cluster

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/creek-pipeline/creek/internal/auth"
)

// SCRAM credentials are stored under "scram", one JSON value per user and
// mechanism (salt, iterations, stored and server key: never the password);
// ACLs under "acls", one JSON value per binding.

var (
	bucketSCRAM = []byte("scram")
	bucketACLs  = []byte("acls")
)

// ErrNoCredential is a user without a credential of the mechanism asked for.
var ErrNoCredential = errors.New("no such SCRAM credential")

// Security holds the users' SCRAM credentials and the ACLs in the metadata
// store. Credentials are also kept in memory, for logins.
type Security struct {
	db    *bolt.DB
	close func() error // set when opened apart from a broker

	mu    sync.RWMutex
	creds map[string]map[auth.Mechanism]auth.Credential
}

// Security returns the broker's credential and ACL store.
func (c *Cluster) Security() *Security { return c.security }

func newSecurity(db *bolt.DB) (*Security, error) {
	s := &Security{db: db, creds: map[string]map[auth.Mechanism]auth.Credential{}}
	err := forEachJSON(db, bucketSCRAM, "SCRAM credential", func(key string, c auth.Credential) {
		user, _, _ := strings.Cut(key, "\x00")
		if s.creds[user] == nil {
			s.creds[user] = map[auth.Mechanism]auth.Credential{}
		}
		s.creds[user][c.Mechanism] = c
	})
	return s, err
}

// OpenSecurity opens the credentials and ACLs of a stopped broker's data
// dir (creating it if needed), as kafka-storage format --add-scram does
// before the first start. Close it when done.
func OpenSecurity(dataDir string) (*Security, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create data dir %s: %w", dataDir, err)
	}
	st, _, err := openStore(dataDir)
	if err != nil {
		if errors.Is(err, ErrDataDirLocked) {
			return nil, fmt.Errorf("%w: the broker is running; change users through it with --brokers instead of --data-dir", err)
		}
		return nil, err
	}
	s, err := newSecurity(st.db)
	if err != nil {
		st.close()
		return nil, err
	}
	s.close = st.close
	return s, nil
}

// Close closes a store opened with OpenSecurity.
func (s *Security) Close() error {
	if s.close == nil {
		return nil
	}
	return s.close()
}

func credentialKey(user string, m auth.Mechanism) string { return user + "\x00" + m.String() }

// Credential finds a user's credential (auth.CredentialLookup).
func (s *Security) Credential(user string, m auth.Mechanism) (auth.Credential, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.creds[user][m]
	return c, ok
}

// UserCredentials is a user and its credentials, by mechanism.
type UserCredentials struct {
	User        string
	Credentials []auth.Credential
}

// Users lists every user with credentials, by name.
func (s *Security) Users() []UserCredentials {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []UserCredentials
	for user, byMech := range s.creds {
		u := UserCredentials{User: user}
		for _, m := range auth.Mechanisms {
			if c, ok := byMech[m]; ok {
				u.Credentials = append(u.Credentials, c)
			}
		}
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].User < out[j].User })
	return out
}

// PutCredential stores (or replaces) a user's credential of its mechanism.
func (s *Security) PutCredential(user string, c auth.Credential) error {
	if user == "" {
		return fmt.Errorf("%w: the user name is empty", auth.ErrUnacceptableCredential)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := putJSON(s.db, bucketSCRAM, credentialKey(user, c.Mechanism), c); err != nil {
		return err
	}
	if s.creds[user] == nil {
		s.creds[user] = map[auth.Mechanism]auth.Credential{}
	}
	s.creds[user][c.Mechanism] = c
	return nil
}

// DeleteCredential removes a user's credential of a mechanism.
func (s *Security) DeleteCredential(user string, m auth.Mechanism) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.creds[user][m]; !ok {
		return fmt.Errorf("%w: user %q has no %s credential", ErrNoCredential, user, m)
	}
	if err := deleteKey(s.db, bucketSCRAM, credentialKey(user, m)); err != nil {
		return err
	}
	delete(s.creds[user], m)
	if len(s.creds[user]) == 0 {
		delete(s.creds, user)
	}
	return nil
}

// ACLs reads every stored ACL.
func (s *Security) ACLs() ([]auth.ACL, error) {
	var out []auth.ACL
	err := forEachJSON(s.db, bucketACLs, "ACL", func(_ string, a auth.ACL) { out = append(out, a) })
	return out, err
}

// PutACL stores an ACL (auth.ACLStore).
func (s *Security) PutACL(a auth.ACL) error { return putJSON(s.db, bucketACLs, a.Key(), a) }

// DeleteACL removes an ACL (auth.ACLStore).
func (s *Security) DeleteACL(a auth.ACL) error { return deleteKey(s.db, bucketACLs, a.Key()) }
