package dashboard

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
)

// Auth is how the dashboard checks who is asking: HTTP basic auth with a
// user and password, or a bearer token (an Authorization header, a
// ?token= parameter, which also sets a cookie so the page's later requests
// carry it). Both may be set; either then admits.
type Auth struct {
	User     string
	Password string
	Token    string
}

// Enabled reports whether any credential is configured.
func (a Auth) Enabled() bool { return a.User != "" || a.Token != "" }

const tokenCookie = "creek_token"

// CheckExposure refuses to serve on an address reachable from other
// machines without credentials, unless insecure is set explicitly.
func CheckExposure(addr string, a Auth, insecure bool) error {
	if a.User != "" && a.Password == "" {
		return errors.New("--http-user needs a password: set CREEK_HTTP_PASSWORD or --http-password-file")
	}
	if a.Enabled() || insecure || IsLoopback(addr) {
		return nil
	}
	return fmt.Errorf("--http %s is reachable from other machines: give credentials (--http-user with CREEK_HTTP_PASSWORD or --http-password-file, or --http-token-file), or pass --http-insecure to serve it without", addr)
}

// IsLoopback reports whether a listen address only accepts local connections.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (a Auth) guard(next http.Handler, logger *slog.Logger) http.Handler {
	if !a.Enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.admits(w, r) {
			next.ServeHTTP(w, r)
			return
		}
		logger.Warn("refused a dashboard request without valid credentials", "remote", r.RemoteAddr, "path", r.URL.Path)
		if a.User != "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="creek", charset="UTF-8"`)
		}
		http.Error(w, "401 unauthorized: this dashboard needs credentials", http.StatusUnauthorized)
	})
}

func (a Auth) admits(w http.ResponseWriter, r *http.Request) bool {
	if a.User != "" {
		if u, p, ok := r.BasicAuth(); ok && equal(u, a.User) && equal(p, a.Password) {
			return true
		}
	}
	if a.Token == "" {
		return false
	}
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") && equal(strings.TrimPrefix(h, "Bearer "), a.Token) {
		return true
	}
	if c, err := r.Cookie(tokenCookie); err == nil && equal(c.Value, a.Token) {
		return true
	}
	if t := r.URL.Query().Get("token"); t != "" && equal(t, a.Token) {
		http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: t, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		return true
	}
	return false
}

// equal compares in constant time (of the hashes), so a wrong guess tells
// nothing about how close it was.
func equal(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
