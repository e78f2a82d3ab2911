package storetest

import (
	"context"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

// PostgreSQL and dynalite start, answer, and PostgreSQL comes back after
// a stop.
func TestServersStartAndRestart(t *testing.T) {
	pg := PostgreSQL(t)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	var one int
	if err := c.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("select 1: %v %d", err, one)
	}
	c.Close(ctx)
	pg.Stop()
	if _, err := pgx.Connect(ctx, pg.URL); err == nil {
		t.Fatal("PostgreSQL still answers after Stop")
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}

	d := Dynalite(t)
	resp, err := http.Get("http://" + d.Addr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// OpenSearch, the slowest to start, is started by the Elasticsearch
	// sink's tests and test/stores, not once more here.
}

// A server that dies under the tests (kill -9 here) is started again on
// its port, and says so in its log; one stopped on purpose stays stopped.
func TestServerThatDiesStartsAgain(t *testing.T) {
	d := Dynalite(t)
	d.mu.Lock()
	pid := d.cmd.Process.Pid
	d.mu.Unlock()
	syscall.Kill(-pid, syscall.SIGKILL)
	deadline := time.Now().Add(time.Minute)
	for {
		d.mu.Lock()
		back := d.cmd != nil && d.cmd.Process.Pid != pid
		d.mu.Unlock()
		if back && dialReady(d.Addr)(context.Background()) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dynalite not back a minute after it was killed:\n%s", d.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(d.Logs(), "exited while in use") {
		t.Errorf("the restart is not in the server's log:\n%s", d.Logs())
	}
	d.Stop()
	time.Sleep(500 * time.Millisecond)
	if dialReady(d.Addr)(context.Background()) == nil {
		t.Fatal("dynalite answers after Stop")
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
}
