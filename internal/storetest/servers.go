package storetest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a PostgreSQL server; URL connects as the superuser postgres
// with its password (PostgresPassword; SCRAM over TCP, loopback only) to
// the database postgres.
type Postgres struct {
	*Server
	URL string
}

var postgres lazy

// PostgreSQL returns the test binary's PostgreSQL server, starting it on
// first use. PostgreSQL refuses to run as root, so as root it runs as the
// postgres user, with its own data folder and port.
func PostgreSQL(t testing.TB) *Postgres {
	t.Helper()
	p, skip := PostgreSQLIfInstalled(t)
	if skip != "" {
		t.Skip(skip)
	}
	return p
}

// PostgreSQLIfInstalled is PostgreSQL, or, when the server is not
// installed, nil and why, for a test that goes on without it.
func PostgreSQLIfInstalled(t testing.TB) (*Postgres, string) {
	t.Helper()
	s, skip := postgres.try(t, startPostgres)
	if skip != "" {
		return nil, skip
	}
	return &Postgres{Server: s, URL: fmt.Sprintf("postgres://postgres:%s@%s/postgres?sslmode=disable", PostgresPassword, s.Addr)}, ""
}

// PostgresPassword is the test server's password for the user postgres.
const PostgresPassword = "creek-test"

func startPostgres() (*Server, string, error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(bins) == 0 {
		return nil, "PostgreSQL server not installed (/usr/lib/postgresql/*/bin/postgres): run scripts/test-deps.sh", nil
	}
	sort.Strings(bins)
	bin := filepath.Dir(bins[len(bins)-1])
	owner := ""
	if os.Geteuid() == 0 {
		owner = "postgres"
	}
	dir, err := dataDir("postgres", owner)
	if err != nil {
		return nil, "", err
	}
	data := filepath.Join(dir, "data")
	if out, err := runAs(owner, dir, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale", "C", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("initdb: %v\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	s := &Server{Name: "PostgreSQL", Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir, user: owner, stopSig: syscall.SIGINT, // fast shutdown
		args: []string{filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", dir,
			"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=50", "-c", "shared_buffers=128MB"},
	}
	// Ready once it answers on its socket; the first time, the password is set there.
	socket := fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres connect_timeout=2", dir, port)
	s.ready = func(ctx context.Context) error {
		c, err := pgx.Connect(ctx, socket)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		_, err = c.Exec(ctx, "alter user postgres password '"+PostgresPassword+"'")
		return err
	}
	return s, "", s.Start()
}

// runAs runs a command to its end as owner ("" for the current user).
func runAs(owner, dir string, args ...string) ([]byte, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	if owner != "" {
		u, err := user.Lookup(owner)
		if err != nil {
			return nil, err
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Env = append(os.Environ(), "HOME="+dir)
	}
	return cmd.CombinedOutput()
}

// OpenSearchVersion is the version scripts/test-deps.sh installs.
const OpenSearchVersion = "2.19.6"

// OpenSearchWriteQueue is the test server's write queue: shard-level bulk
// requests beyond its write threads and this many are refused with 429.
const OpenSearchWriteQueue = 8

var opensearch lazy

// OpenSearch returns the test binary's OpenSearch server (plain HTTP, no
// security plugin), starting it on first use: a real OpenSearch, the
// minimal distribution from Maven Central, on the JDK that is here. It
// refuses to run as root, so as root it runs as nobody. URL is its address.
func OpenSearch(t testing.TB) (s *Server, url string) {
	t.Helper()
	s = opensearch.get(t, startOpenSearch)
	return s, "http://" + s.Addr
}

func startOpenSearch() (*Server, string, error) {
	home := filepath.Join(CacheDir(), "opensearch-"+OpenSearchVersion)
	if _, err := os.Stat(filepath.Join(home, "bin", "opensearch")); err != nil {
		return nil, "OpenSearch " + OpenSearchVersion + " not installed in " + home + ": run scripts/test-deps.sh", nil
	}
	java := javaHome()
	if java == "" {
		return nil, "no JDK 17 or 21 under /usr/lib/jvm for OpenSearch " + OpenSearchVersion, nil
	}
	owner := ""
	if os.Geteuid() == 0 {
		owner = "nobody"
	}
	dir, err := os.MkdirTemp("", "creek-opensearch-")
	if err != nil {
		return nil, "", err
	}
	// Its own copy, as links to the installed files (the cache is under
	// root's home, which nobody cannot enter), with a configuration of its
	// own (OpenSearch writes a keystore there).
	own := filepath.Join(dir, "opensearch")
	if err := exec.Command("cp", "-al", home, own).Run(); err != nil {
		os.RemoveAll(own)
		if out, err := exec.Command("cp", "-r", home, own).CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			return nil, "", fmt.Errorf("copy OpenSearch: %v %s", err, out)
		}
	}
	conf := filepath.Join(own, "config")
	os.RemoveAll(conf)
	if out, err := exec.Command("cp", "-r", filepath.Join(home, "config"), conf).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("copy OpenSearch config: %v %s", err, out)
	}
	os.WriteFile(filepath.Join(conf, "jvm.options.d", "creek.options"), []byte("-Xms512m\n-Xmx512m\n"), 0o644)
	for _, d := range []string{"data", "logs"} {
		os.Mkdir(filepath.Join(dir, d), 0o755)
	}
	// Only what is its own: chown on a linked file would change the installed one.
	for _, d := range []string{dir, own, filepath.Join(own, "logs"), filepath.Join(dir, "data"), filepath.Join(dir, "logs")} {
		if err := chownTree(d, owner, false); err != nil {
			os.RemoveAll(dir)
			return nil, "", err
		}
	}
	if err := chownTree(conf, owner, true); err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	transport, err := freePort()
	if err != nil {
		return nil, "", err
	}
	s := &Server{Name: "OpenSearch", Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir, user: owner, stopSig: syscall.SIGTERM,
		env: []string{"OPENSEARCH_JAVA_HOME=" + java, "OPENSEARCH_PATH_CONF=" + conf},
		args: []string{filepath.Join(own, "bin", "opensearch"),
			"-Ediscovery.type=single-node", "-Enetwork.host=127.0.0.1",
			"-Ehttp.port=" + strconv.Itoa(port), "-Etransport.port=" + strconv.Itoa(transport),
			"-Epath.data=" + filepath.Join(dir, "data"), "-Epath.logs=" + filepath.Join(dir, "logs"),
			// A nearly full disk must not turn the test indices read-only.
			"-Ecluster.routing.allocation.disk.threshold_enabled=false",
			// A short write queue (the default is 10,000): a few bulk
			// requests at once fit, a flood gets real 429s to retry.
			"-Ethread_pool.write.queue_size=" + strconv.Itoa(OpenSearchWriteQueue)},
	}
	s.ready = func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Addr+"/_cluster/health?wait_for_status=yellow&timeout=1s", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("cluster health: %s", resp.Status)
		}
		return nil
	}
	return s, "", s.Start()
}

// javaHome finds a JDK that OpenSearch 2.x runs on (it needs the
// security manager, which Java 24 removed).
func javaHome() string {
	for _, pattern := range []string{"/usr/lib/jvm/java-17-*", "/usr/lib/jvm/java-21-*", "/usr/lib/jvm/temurin-17*", "/usr/lib/jvm/temurin-21*"} {
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			if _, err := os.Stat(filepath.Join(m, "bin", "java")); err == nil {
				return m
			}
		}
	}
	return ""
}

var dynalite lazy

// Dynalite returns the test binary's dynalite server (DynamoDB's API on
// LevelDB, in a temporary folder, so a restart keeps the tables), starting
// it on first use. Its endpoint is "http://" + Addr; it takes any
// credentials.
func Dynalite(t testing.TB) *Server {
	t.Helper()
	return dynalite.get(t, startDynalite)
}

func startDynalite() (*Server, string, error) {
	bin := filepath.Join(CacheDir(), "dynalite", "node_modules", ".bin", "dynalite")
	if _, err := os.Stat(bin); err != nil {
		return nil, "dynalite not installed in " + filepath.Dir(filepath.Dir(bin)) + ": run scripts/test-deps.sh", nil
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, "dynalite needs Node.js (node) on PATH", nil
	}
	dir, err := os.MkdirTemp("", "creek-dynalite-")
	if err != nil {
		return nil, "", err
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	s := &Server{Name: "dynalite", Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir, stopSig: syscall.SIGTERM,
		args: []string{node, bin, "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--path", filepath.Join(dir, "db"),
			"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"},
	}
	s.ready = dialReady(s.Addr)
	return s, "", s.Start()
}

// WaitGone waits until nothing answers on the server's port (after Stop).
func (s *Server) WaitGone() {
	for range 100 {
		if dialReady(s.Addr)(context.Background()) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
