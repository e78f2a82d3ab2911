// Package storetest starts the real store servers that the sink tests,
// the end-to-end tests and the store benchmarks write to: PostgreSQL from
// Debian, OpenSearch from Maven Central and dynalite (DynamoDB's API) from
// npm, as scripts/test-deps.sh installs them, each on a free loopback
// port with its data in a temporary folder. A server is started the first
// time a test asks for it and stopped when the test binary ends (call Run
// from TestMain); a test can stop and restart one to see a sink wait.
// Where a server is not installed, the test is skipped with one line
// saying how to install it.
package storetest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// CacheDir is where scripts/test-deps.sh keeps what it installs.
func CacheDir() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "creek")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "creek")
}

var started struct {
	sync.Mutex
	servers []*Server
}

// Run runs the tests and stops every server they started; use it as
//
//	func TestMain(m *testing.M) { os.Exit(storetest.Run(m)) }
func Run(m *testing.M) int {
	code := m.Run()
	started.Lock()
	defer started.Unlock()
	for _, s := range started.servers {
		s.close()
	}
	return code
}

// Server is a store server process.
type Server struct {
	Name string // "PostgreSQL", "OpenSearch", "dynalite"
	Addr string // host:port
	dir  string // its data, removed by close

	args    []string
	env     []string
	user    string // run as this user when running as root ("" for the current one)
	ready   func(ctx context.Context) error
	stopSig syscall.Signal

	mu       sync.Mutex // guards cmd, done and stopped
	cmd      *exec.Cmd
	done     chan struct{}
	stopped  bool // by Stop: a crash before is not restarted after
	restarts atomic.Int32
	logs     SyncBuffer
}

// lazy starts a server once per test binary; a failure is remembered and
// reported to every test that asks.
type lazy struct {
	once sync.Once
	s    *Server
	skip string
	err  error
}

func (l *lazy) get(t testing.TB, start func() (*Server, string, error)) *Server {
	t.Helper()
	s, skip := l.try(t, start)
	if skip != "" {
		t.Skip(skip)
	}
	return s
}

// try is get that returns why the server is not installed instead of
// skipping the test.
func (l *lazy) try(t testing.TB, start func() (*Server, string, error)) (*Server, string) {
	t.Helper()
	l.once.Do(func() {
		l.s, l.skip, l.err = start()
		if l.s != nil {
			started.Lock()
			started.servers = append(started.servers, l.s)
			started.Unlock()
		}
	})
	if l.err != nil {
		t.Fatal(l.err)
	}
	return l.s, l.skip
}

// Start starts the server (again, after Stop) and waits until it answers.
func (s *Server) Start() error { return s.start(false) }

// start starts the server; again is a restart after it died under the
// tests, which a Stop meanwhile cancels.
func (s *Server) start(again bool) error {
	s.mu.Lock()
	if s.cmd != nil || (again && s.stopped) {
		s.mu.Unlock()
		return nil
	}
	s.stopped = false
	cmd := exec.Command(s.args[0], s.args[1:]...)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = &s.logs, &s.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if s.user != "" && os.Geteuid() == 0 {
		u, err := user.Lookup(s.user)
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("%s runs as user %s: %w", s.Name, s.user, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		cmd.Env = append(cmd.Env, "HOME="+s.dir, "USER="+s.user)
	}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start %s: %w", s.Name, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		s.mu.Lock()
		// A test server is the tests' fixture, not what they test: one
		// that dies under them (dynalite once did, under a full suite) is
		// started again, a few times at most, rather than failing creek's
		// tests; it says so on stderr and in its log.
		died := s.cmd == cmd // not stopped
		again := died && s.restarts.Add(1) <= 3
		if died {
			s.cmd = nil
			msg := fmt.Sprintf("storetest: %s exited while in use (%s)", s.Name, cmd.ProcessState)
			if again {
				msg += "; starting it again on the same port and data"
			}
			fmt.Fprintln(os.Stderr, msg)
			fmt.Fprintf(&s.logs, "\n[%s]\n", msg)
		}
		s.mu.Unlock()
		close(done)
		if again {
			s.WaitGone()
			if err := s.start(true); err != nil && !s.isStopped() {
				fmt.Fprintf(os.Stderr, "storetest: %s did not start again: %v\n", s.Name, err)
			}
		}
	}()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return s.waitReady(done)
}

func (s *Server) waitReady(done chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for {
		err := s.ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("%s exited at start:\n%s", s.Name, s.Logs())
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer on %s within 3 minutes (%v):\n%s", s.Name, s.Addr, err, s.Logs())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop stops the server, keeping its data, and waits until it is gone.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.stopped = nil, true
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, s.stopSig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func (s *Server) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// Logs returns what the server printed.
func (s *Server) Logs() string { return s.logs.String() }

func (s *Server) close() {
	s.Stop()
	os.RemoveAll(s.dir)
}

// freePort finds a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// dialReady is a readiness check that the port takes connections.
func dialReady(addr string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	}
}

// dataDir makes the server's folder, owned by the user it runs as.
func dataDir(name, owner string) (string, error) {
	dir, err := os.MkdirTemp("", "creek-"+name+"-")
	if err != nil {
		return "", err
	}
	if err := chownTree(dir, owner, true); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// chownTree gives dir (and with all, what is inside) to owner.
func chownTree(dir, owner string, all bool) error {
	if owner == "" || os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(owner)
	if err != nil {
		return fmt.Errorf("user %s: %w", owner, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if !all {
		return os.Lchown(dir, uid, gid)
	}
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}
