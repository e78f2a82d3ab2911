package storetest

import (
	"context"
	"net/http"
	"os"
	"testing"

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
