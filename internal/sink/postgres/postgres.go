// Package postgres is the sink that stores records in a PostgreSQL table
// with pgx, for dashboards to query with SQL. Each batch is one
// transaction: COPY into a session-local staging table, then one
// INSERT … SELECT … ON CONFLICT (primary key) DO UPDATE into the table,
// committed before the batch is acknowledged (and so before the Kafka
// offsets are). Rows are keyed by the tweet id after --map tweet, else by
// topic, partition and offset, so a replay after a crash overwrites what
// it wrote before instead of adding to it.
//
// A server that is down or restarting, a broken connection, a deadlock or
// a serialization failure are retried with back-off for as long as it
// takes; refused credentials, a missing database or table, or a table
// without the columns creek writes stop the pipeline with one line saying
// so. A row the server refuses for what it holds (a data exception, a
// constraint) is found by writing the batch again row by row, and goes to
// the dead-letter topic.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/sink/retry"
)

func init() {
	pipeline.RegisterSink(pipeline.Plugin{
		Name: "postgres",
		Doc:  "Stores records in a PostgreSQL table, one transaction per batch, idempotently (upsert on the primary key: the tweet id with --map tweet, else topic, partition, offset).",
		Options: []pipeline.Option{
			{Name: "url", Flag: "pg-url", Env: []string{"CREEK_PG_URL"}, Type: pipeline.TypeString, Secret: true,
				Doc: "Connection URL such as postgres://user:password@host:5432/db (libpq's PG* environment variables fill in what it leaves out, such as PGPASSWORD)."},
			{Name: "table", Flag: "pg-table", Type: pipeline.TypeString, Doc: "Table to write to (required), optionally schema.table."},
			{Name: "connections", Flag: "pg-connections", Type: pipeline.TypeInt, Default: "3",
				Doc: "Batches written at once, each in its own transaction on its own connection."},
			{Name: "create-table", Flag: "pg-create-table", Type: pipeline.TypeBool,
				Doc: "Create the table when it is missing: with --map tweet typed columns (id primary key, created_at, lang, author_id, username, text, hashtags text[], raw jsonb); else topic, partition, offset as the primary key and key, value jsonb, headers, timestamp."},
		},
		NewSink: func(v *pipeline.Values, env pipeline.Env) (pipeline.Sink, error) {
			return Open(context.Background(), Config{URL: v.String("url"), Table: v.String("table"), CreateTable: v.Bool("create-table"),
				Connections: int(v.Int("connections")), Shape: env.Shape}, env.Logger)
		},
	})
}

// Config is what the sink writes where.
type Config struct {
	URL         string
	Table       string
	CreateTable bool
	Connections int    // batches in flight; 0 for 3
	Shape       string // pipeline.ShapeTweet for tweet columns
}

// Sink writes batches to a table, several at once over a few
// connections. The runner acknowledges them in order.
type Sink struct {
	cfg    Config
	log    *slog.Logger
	table  pgx.Identifier
	layout *layout
	where  string // host:port/db, for messages

	free chan *writer // writers not writing a batch
	all  []*writer
}

// writer is one connection with its staging table and statements.
type writer struct {
	s    *Sink
	conn *pgx.Conn // nil after a broken connection, until the next attempt
}

// Open connects, checks (or creates) the table and prepares the
// statements, so that a wrong URL, password, database or table shows at
// start.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Sink, error) {
	if cfg.URL == "" {
		return nil, errors.New("postgres: no database given; use --pg-url postgres://user@host:5432/db (or url: in the output section, or CREEK_PG_URL)")
	}
	if cfg.Table == "" {
		return nil, errors.New("postgres: no table given; use --pg-table NAME (or table: in the output section)")
	}
	pc, err := pgx.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: --pg-url is not a PostgreSQL URL: %v", hideURL(err, cfg.URL))
	}
	s := &Sink{cfg: cfg, log: log, table: pgx.Identifier(strings.Split(cfg.Table, ".")),
		where: fmt.Sprintf("%s/%s", net.JoinHostPort(pc.Host, fmt.Sprint(pc.Port)), pc.Database)}
	if cfg.Shape == pipeline.ShapeTweet {
		s.layout = tweetLayout
	} else {
		s.layout = recordLayout
	}
	n := max(cfg.Connections, 1)
	if cfg.Connections == 0 {
		n = 3
	}
	s.free = make(chan *writer, n)
	for i := range n {
		w := &writer{s: s}
		if err := w.connect(ctx, i == 0); err != nil {
			s.Close()
			return nil, err
		}
		s.all = append(s.all, w)
		s.free <- w
	}
	return s, nil
}

// connect opens the connection, creates the table if asked, checks it and
// prepares the staging table and statements.
func (w *writer) connect(ctx context.Context, first bool) error {
	s := w.s
	conn, err := pgx.Connect(ctx, s.cfg.URL)
	if err != nil {
		return s.explain(err)
	}
	fail := func(err error) error {
		conn.Close(context.Background())
		return s.explain(err)
	}
	if first && s.cfg.CreateTable {
		if _, err := conn.Exec(ctx, s.layout.createSQL(s.table)); err != nil {
			return fail(err)
		}
	}
	if first && s.layout.valueType != "" {
		// The record layout writes the value as the table's column takes it.
		valueType := ""
		err = conn.QueryRow(ctx, `select format_type(atttypid, atttypmod) from pg_attribute where attrelid = $1::regclass and attname = 'value' and not attisdropped`,
			s.table.Sanitize()).Scan(&valueType)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fail(err)
		}
		s.layout = s.layout.withValueType(valueType)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf(`create temporary table if not exists creek_stage (like %s including defaults) on commit delete rows`, s.table.Sanitize())); err != nil {
		return fail(err)
	}
	for name, sql := range map[string]string{"creek_upsert": s.layout.upsertSQL(s.table, "select %s from creek_stage"), "creek_upsert_one": s.layout.upsertSQL(s.table, "values (%s)")} {
		if _, err := conn.Prepare(ctx, name, sql); err != nil {
			return fail(err)
		}
	}
	// Planning finds what parsing does not: no unique index to upsert on.
	if _, err := conn.Exec(ctx, "explain "+s.layout.upsertSQL(s.table, "select %s from creek_stage")); err != nil {
		return fail(err)
	}
	w.conn = conn
	return nil
}

// Write stores a batch in one transaction and returns once it is
// committed. A row refused for what it holds is returned in a
// *pipeline.RejectedError; the other rows are committed.
func (s *Sink) Write(ctx context.Context, b *pipeline.Batch) error {
	done := make(chan error, 1)
	s.WriteAsync(ctx, b, func(err error) { done <- err })
	return <-done
}

// WriteAsync stores a batch on the next free connection and calls done
// once it is committed (or failed for good).
func (s *Sink) WriteAsync(ctx context.Context, b *pipeline.Batch, done func(error)) {
	var w *writer
	select {
	case w = <-s.free:
	case <-ctx.Done():
		done(ctx.Err())
		return
	}
	go func() {
		err := w.writeBatch(ctx, b)
		s.free <- w
		done(err)
	}()
}

func (w *writer) writeBatch(ctx context.Context, b *pipeline.Batch) error {
	rows, rejected := w.s.layout.rows(b.Messages)
	var refused []pipeline.Rejection
	err := retry.Do(ctx, retry.Default, w.s.log, "write to PostgreSQL at "+w.s.where, retryable, func() error {
		var err error
		refused, err = w.write(ctx, rows)
		return err
	})
	if err != nil {
		return err
	}
	rejected = append(rejected, refused...)
	if len(rejected) > 0 {
		return &pipeline.RejectedError{Rejections: rejected}
	}
	return nil
}

// write is one attempt at a batch.
func (w *writer) write(ctx context.Context, rows []row) ([]pipeline.Rejection, error) {
	if w.conn == nil {
		if err := w.connect(ctx, false); err != nil {
			return nil, err
		}
	}
	err := w.copyUpsert(ctx, rows)
	if err == nil {
		return nil, nil
	}
	if rowError(err) {
		return w.rowByRow(ctx, rows)
	}
	return nil, w.broken(err)
}

// copyUpsert COPYs the rows straight into the table, which is all a first
// delivery needs. If some are there already (a replay: unique_violation)
// it goes back and upserts them all through the staging table instead.
func (w *writer) copyUpsert(ctx context.Context, rows []row) error {
	tx, err := w.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "savepoint creek_copy"); err != nil {
		return err
	}
	_, err = tx.CopyFrom(ctx, w.s.table, w.s.layout.columns, copySource(rows))
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		if _, err := tx.Exec(ctx, "rollback to savepoint creek_copy"); err != nil {
			return err
		}
		if _, err = tx.CopyFrom(ctx, pgx.Identifier{"creek_stage"}, w.s.layout.columns, copySource(rows)); err == nil {
			_, err = tx.Exec(ctx, "creek_upsert")
		}
	}
	if err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// rowByRow writes the rows one at a time, each behind a savepoint, to
// find those the server refuses; the others are committed together.
func (w *writer) rowByRow(ctx context.Context, rows []row) ([]pipeline.Rejection, error) {
	tx, err := w.conn.Begin(ctx)
	if err != nil {
		return nil, w.broken(err)
	}
	defer tx.Rollback(context.Background())
	var rejected []pipeline.Rejection
	for _, r := range rows {
		if _, err := tx.Exec(ctx, "savepoint creek_row"); err != nil {
			return nil, w.broken(err)
		}
		_, err := tx.Exec(ctx, "creek_upsert_one", r.values...)
		if err == nil {
			continue
		}
		if !rowError(err) {
			return nil, w.broken(err)
		}
		var pe *pgconn.PgError
		errors.As(err, &pe)
		rejected = append(rejected, pipeline.Rejection{Index: r.index, Class: pe.Code + " " + pe.Severity, Err: fmt.Errorf("PostgreSQL refused the row: %s", pe.Message)})
		if _, err := tx.Exec(ctx, "rollback to savepoint creek_row"); err != nil {
			return nil, w.broken(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, w.broken(err)
	}
	return rejected, nil
}

// broken drops a connection that failed other than for a row, so the
// next attempt starts on a new one (and its session's staging table).
func (w *writer) broken(err error) error {
	if w.conn != nil {
		w.conn.Close(context.Background())
		w.conn = nil
	}
	return w.s.explain(err)
}

// Close closes the connections (the runner calls it with no batch in
// flight).
func (s *Sink) Close() error {
	var err error
	for _, w := range s.all {
		if w.conn != nil {
			err = errors.Join(err, w.conn.Close(context.Background()))
		}
	}
	return err
}

// row is one message's column values; index is its place in the batch.
type row struct {
	index  int
	key    string // the primary key, to keep the last message per key
	values []any
}

// copySource hands rows to COPY.
func copySource(rows []row) pgx.CopyFromSource {
	i := -1
	return pgx.CopyFromFunc(func() ([]any, error) {
		i++
		if i >= len(rows) {
			return nil, nil
		}
		return rows[i].values, nil
	})
}

// rowError tells whether the server refused a row for what it holds: a
// data exception (class 22) or an integrity constraint (class 23).
func rowError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23"))
}

// retryable: what waiting can fix. Connection failures, a server shutting
// down or starting (57P0x), too many connections or another lack of
// resources (53), a serialization failure or deadlock (40).
func retryable(err error) bool {
	var fe *fatalError
	if errors.As(err, &fe) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P") || strings.HasPrefix(pe.Code, "53") || strings.HasPrefix(pe.Code, "40")
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// fatalError is an error that stops the pipeline.
type fatalError struct{ msg string }

func (e *fatalError) Error() string { return e.msg }

// explain turns what the server said into one line naming PostgreSQL, the
// server and the table, and what to do.
func (s *Sink) explain(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		var ne *net.OpError
		if errors.As(err, &ne) {
			return fmt.Errorf("cannot reach PostgreSQL at %s: %v; check the host and port in --pg-url", s.where, ne.Err)
		}
		return fmt.Errorf("PostgreSQL at %s: %s", s.where, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	table := s.table.Sanitize()
	fatal := func(format string, args ...any) error {
		return &fatalError{fmt.Sprintf("PostgreSQL at %s: ", s.where) + fmt.Sprintf(format, args...)}
	}
	switch {
	case pe.Code == "28P01" || pe.Code == "28000":
		return fatal("%s: check the user and password in --pg-url (or PGPASSWORD)", pe.Message)
	case pe.Code == "3D000":
		return fatal("%s: create it (createdb) or fix the database in --pg-url", pe.Message)
	case pe.Code == "42P01":
		return fatal("table %s does not exist: create it, or add --pg-create-table", table)
	case pe.Code == "42501":
		return fatal("%s: grant the user INSERT, UPDATE and SELECT on %s (and CREATE for --pg-create-table)", pe.Message, table)
	case pe.Code == "42P10":
		return fatal("table %s has no primary key or unique index on (%s), which creek upserts on: add one", table, strings.Join(s.layout.key, ", "))
	case pe.Code == "42703" || strings.HasPrefix(pe.Code, "42"):
		return fatal("table %s does not fit what creek writes (%s): %s; creek writes the columns %s", table, pe.Code, pe.Message, strings.Join(s.layout.columns, ", "))
	}
	return fmt.Errorf("PostgreSQL at %s: %s (SQLSTATE %s)", s.where, pe.Message, pe.Code)
}

// hideURL keeps a password in the URL out of an error message.
func hideURL(err error, url string) string {
	msg := err.Error()
	if i := strings.Index(url, "://"); i >= 0 {
		if j := strings.Index(url[i+3:], "@"); j >= 0 {
			msg = strings.ReplaceAll(msg, url[i+3:i+3+j], "(hidden)")
		}
	}
	return msg
}
