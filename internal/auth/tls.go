package auth

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
)

// ClientAuth is ssl.client.auth: whether the broker asks TLS clients for a
// certificate.
type ClientAuth string

// The ssl.client.auth values.
const (
	ClientAuthNone      ClientAuth = "none"
	ClientAuthRequested ClientAuth = "requested"
	ClientAuthRequired  ClientAuth = "required"
)

// ServerTLS is the broker's TLS configuration, read from PEM files and
// read again by Reload (SIGHUP): connections made before keep theirs.
type ServerTLS struct {
	certFile, keyFile, clientCAFile string
	clientAuth                      ClientAuth
	current                         atomic.Pointer[tls.Config]
}

// NewServerTLS reads the certificate chain, its key and, for client
// certificates, the authorities that sign them.
func NewServerTLS(certFile, keyFile, clientCAFile string, clientAuth ClientAuth) (*ServerTLS, error) {
	switch clientAuth {
	case ClientAuthNone, ClientAuthRequested, ClientAuthRequired:
	default:
		return nil, fmt.Errorf("ssl.client.auth %q: want none, requested or required", clientAuth)
	}
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("a TLS listener needs --tls-cert and --tls-key (PEM files; `creek certs` makes a test set)")
	}
	if clientAuth != ClientAuthNone && clientCAFile == "" {
		return nil, fmt.Errorf("ssl.client.auth=%s needs --tls-client-ca, the PEM file of the authorities that sign client certificates", clientAuth)
	}
	s := &ServerTLS{certFile: certFile, keyFile: keyFile, clientCAFile: clientCAFile, clientAuth: clientAuth}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the files again; on an error the configuration in use stays.
func (s *ServerTLS) Reload() error {
	cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s with key %s: %w", s.certFile, s.keyFile, err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if s.clientCAFile != "" {
		pool, err := LoadCertPool(s.clientCAFile)
		if err != nil {
			return err
		}
		cfg.ClientCAs = pool
	}
	switch s.clientAuth {
	case ClientAuthRequired:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	case ClientAuthRequested:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	s.current.Store(cfg)
	return nil
}

// Config is what a listener hands to tls.Server: each handshake takes the
// configuration current at that moment.
func (s *ServerTLS) Config() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return s.current.Load(), nil },
	}
}

// ClientAuthenticates reports whether clients present certificates.
func (s *ServerTLS) ClientAuthenticates() bool { return s.clientAuth != ClientAuthNone }

// LoadCertPool reads PEM certificates into a pool.
func LoadCertPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("certificate authorities: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("certificate authorities %s: no PEM certificate in the file", file)
	}
	return pool, nil
}

// ClientTLSOptions are a client's TLS settings.
type ClientTLSOptions struct {
	CAFile   string // authorities to trust; empty: the system's
	CertFile string // client certificate chain for mTLS
	KeyFile  string
	// ServerName overrides the name checked in the broker's certificate.
	ServerName string
}

// ClientTLS builds a client's TLS configuration (TLS 1.2 or later).
func ClientTLS(o ClientTLSOptions) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName}
	if o.CAFile != "" {
		pool, err := LoadCertPool(o.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, fmt.Errorf("a client certificate needs both --tls-cert and --tls-key")
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s with key %s: %w", o.CertFile, o.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// ParseClientAuth parses ssl.client.auth.
func ParseClientAuth(s string) (ClientAuth, error) {
	switch c := ClientAuth(strings.ToLower(strings.TrimSpace(s))); c {
	case ClientAuthNone, ClientAuthRequested, ClientAuthRequired:
		return c, nil
	}
	return "", fmt.Errorf("ssl.client.auth %q: want none, requested or required", s)
}
