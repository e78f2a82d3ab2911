package stores

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/creek-pipeline/creek/internal/processor"
	"github.com/creek-pipeline/creek/internal/storetest"
)

func TestPostgreSQL(t *testing.T) {
	t.Parallel()
	pg := storetest.PostgreSQL(t)
	const table = "tweets"
	query := func(t *testing.T, f func(c *pgx.Conn) error) {
		t.Helper()
		c, err := pgx.Connect(context.Background(), pg.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		if err := f(c); err != nil {
			t.Fatal(err)
		}
	}
	runStore(t, &store{
		name: "postgres", server: pg.Server,
		flags: []string{"--to", "postgres", "--pg-url", pg.URL, "--pg-table", table, "--pg-create-table"},
		count: func(t *testing.T) (n int) {
			query(t, func(c *pgx.Conn) error {
				err := c.QueryRow(context.Background(), "select count(*) from "+table).Scan(&n)
				if err != nil && pgErrCode(err) == "42P01" {
					return nil // not created yet
				}
				return err
			})
			return n
		},
		read: func(t *testing.T) map[string]processor.Tweet {
			out := map[string]processor.Tweet{}
			query(t, func(c *pgx.Conn) error {
				rows, err := c.Query(context.Background(), "select id, created_at, lang, author_id, username, text, hashtags, raw::text from "+table)
				if err != nil {
					return err
				}
				var tw processor.Tweet
				var raw string
				_, err = pgx.ForEachRow(rows, []any{&tw.ID, &tw.CreatedAt, &tw.Lang, &tw.AuthorID, &tw.Username, &tw.Text, &tw.Hashtags, &raw}, func() error {
					tw.Raw = []byte(raw)
					out[tw.ID] = tw
					return nil
				})
				return err
			})
			return out
		},
	})
}
