package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/processor"
	"github.com/creek-pipeline/creek/internal/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Run(m)) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

var tableN int

var tweetStart = time.Date(2026, 4, 11, 9, 0, 0, 0, time.UTC)

// freshTable names a table no other test uses.
func freshTable() string {
	tableN++
	return fmt.Sprintf("t%d_%d", time.Now().UnixNano()%1e6, tableN)
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Tweets land as typed rows equal to their source records; writing them
// again, and a batch holding one post twice, leaves one row per post.
func TestTweetsIdempotent(t *testing.T) {
	pg := storetest.PostgreSQL(t)
	table := freshTable()
	s, err := Open(context.Background(), Config{URL: pg.URL, Table: table, CreateTable: true, Shape: pipeline.ShapeTweet}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	orig, mapped := storetest.Tweets(t, 11, 500, tweetStart, time.Millisecond)
	ctx := context.Background()
	if err := s.Write(ctx, &pipeline.Batch{Messages: mapped[:300]}); err != nil {
		t.Fatal(err)
	}
	// A replay from 200 on, with a post repeated inside the batch.
	replay := append(slices.Clone(mapped[200:]), mapped[250])
	if err := s.Write(ctx, &pipeline.Batch{Messages: replay}); err != nil {
		t.Fatal(err)
	}
	c := connect(t, pg.URL)
	var n int
	c.QueryRow(ctx, "select count(*) from "+table).Scan(&n)
	if n != 500 {
		t.Fatalf("%d rows, want 500", n)
	}
	for i, m := range orig {
		want, _ := processor.FromPost(m.Value)
		var got processor.Tweet
		var rawEqual bool
		err := c.QueryRow(ctx, "select id, created_at, lang, author_id, username, text, hashtags, raw = $2::jsonb from "+table+" where id = $1", want.ID, string(m.Value)).
			Scan(&got.ID, &got.CreatedAt, &got.Lang, &got.AuthorID, &got.Username, &got.Text, &got.Hashtags, &rawEqual)
		if err != nil {
			t.Fatalf("post %d (%s): %v", i, want.ID, err)
		}
		if !got.CreatedAt.Equal(want.CreatedAt) || !rawEqual {
			t.Fatalf("post %s: created_at %v (want %v), raw equal %v", want.ID, got.CreatedAt, want.CreatedAt, rawEqual)
		}
		got.CreatedAt, got.Raw, want.CreatedAt, want.Raw = time.Time{}, nil, time.Time{}, nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("row %+v, want %+v", got, want)
		}
	}
}

// Records without a map: keyed by topic, partition and offset, JSON
// values as jsonb and other values as JSON strings.
func TestRecordsWithoutMap(t *testing.T) {
	pg := storetest.PostgreSQL(t)
	table := freshTable()
	s, err := Open(context.Background(), Config{URL: pg.URL, Table: table, CreateTable: true}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Date(2026, 4, 11, 9, 0, 0, 123e6, time.UTC)
	msgs := []pipeline.Message{
		{Topic: "logs", Partition: 0, Offset: 7, Key: []byte{0xff, 0x00}, Value: []byte(`{"level":"info"}`), Timestamp: at, Headers: []pipeline.Header{{Key: "rule", Value: []byte("kafka")}}},
		{Topic: "logs", Partition: 1, Offset: 7, Value: []byte("plain text line")},
	}
	ctx := context.Background()
	for range 2 { // the second time is a replay
		if err := s.Write(ctx, &pipeline.Batch{Messages: msgs}); err != nil {
			t.Fatal(err)
		}
	}
	c := connect(t, pg.URL)
	rows, err := c.Query(ctx, `select topic, partition, "offset", key, value::text, headers::text, timestamp from `+table+` order by partition`)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		Topic     string
		Partition int32
		Offset    int64
		Key       []byte
		Value     string
		Headers   *string
		Timestamp *time.Time
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[rec])
	if err != nil {
		t.Fatal(err)
	}
	h := `{"rule": "kafka"}`
	want := []rec{{"logs", 0, 7, []byte{0xff, 0}, `{"level": "info"}`, &h, &at}, {"logs", 1, 7, nil, `"plain text line"`, nil, nil}}
	if len(got) != 2 || !reflect.DeepEqual(got[1], want[1]) || got[0].Value != want[0].Value || !slices.Equal(got[0].Key, want[0].Key) ||
		*got[0].Headers != h || !got[0].Timestamp.Equal(at) {
		t.Fatalf("rows %+v, want %+v", got, want)
	}
}

// A row the server refuses (a check constraint) and one creek cannot
// store (NUL in text) are returned as rejections with their places in the
// batch; the rest of the batch is committed.
func TestRowsRefusedAlone(t *testing.T) {
	pg := storetest.PostgreSQL(t)
	table := freshTable()
	c := connect(t, pg.URL)
	ctx := context.Background()
	if _, err := c.Exec(ctx, `create table `+table+` (id text primary key, created_at timestamptz, lang text check (lang <> 'xx'), author_id text, username text, text text, hashtags text[], raw jsonb)`); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, Config{URL: pg.URL, Table: table, Shape: pipeline.ShapeTweet}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	msgs := []pipeline.Message{
		{Value: []byte(`{"data":{"id":"1","text":"ok","lang":"ko"}}`)},
		{Value: []byte(`{"data":{"id":"2","text":"refused by the check","lang":"xx"}}`)},
		{Value: []byte(`{"data":{"id":"3","text":"nul \u0000 inside","lang":"en"}}`)},
		{Value: []byte(`{"data":{"id":"4","text":"ok too","lang":"en"}}`)},
	}
	for i := range msgs {
		(processor.TweetMap{}).Process(&msgs[i])
	}
	err = s.Write(ctx, &pipeline.Batch{Messages: msgs})
	var rej *pipeline.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("Write = %v, want rejections", err)
	}
	var idx []int
	for _, r := range rej.Rejections {
		idx = append(idx, r.Index)
	}
	slices.Sort(idx)
	if !slices.Equal(idx, []int{1, 2}) || !strings.Contains(fmt.Sprint(rej.Rejections), "check constraint") {
		t.Fatalf("rejections %v", rej.Rejections)
	}
	var ids []string
	r, _ := c.Query(ctx, "select id from "+table+" order by id")
	ids, _ = pgx.CollectRows(r, pgx.RowTo[string])
	if !slices.Equal(ids, []string{"1", "4"}) {
		t.Fatalf("stored %v, want 1 and 4", ids)
	}
}

// Wrong credentials, database or table stop at start with one line
// naming PostgreSQL and what to do.
func TestOpenErrors(t *testing.T) {
	pg := storetest.PostgreSQL(t)
	ctx := context.Background()
	badPassword := strings.Replace(pg.URL, storetest.PostgresPassword, "wrong", 1)
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{URL: badPassword, Table: "t"}, "password authentication failed"},
		{Config{URL: strings.Replace(pg.URL, "/postgres?", "/nosuchdb?", 1), Table: "t"}, "nosuchdb"},
		{Config{URL: pg.URL, Table: "no_such_table"}, "does not exist: create it, or add --pg-create-table"},
		{Config{URL: "postgres://postgres@127.0.0.1:1/postgres", Table: "t"}, "127.0.0.1:1"},
		{Config{URL: pg.URL}, "no table given"},
	} {
		_, err := Open(ctx, c.cfg, quiet())
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "PostgreSQL") && !strings.Contains(err.Error(), "postgres") ||
			strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), storetest.PostgresPassword) {
			t.Errorf("Open(%s) = %v, want one line with %q", c.cfg.Table, err, c.want)
		}
	}
	// A table that does not fit: the wrong primary key.
	conn := connect(t, pg.URL)
	table := freshTable()
	conn.Exec(ctx, "create table "+table+" (id text, created_at timestamptz, lang text, author_id text, username text, text text, hashtags text[], raw jsonb)")
	if _, err := Open(ctx, Config{URL: pg.URL, Table: table, Shape: pipeline.ShapeTweet}, quiet()); err == nil || !strings.Contains(err.Error(), "no primary key or unique index on (id)") {
		t.Errorf("a table without the key: %v", err)
	}
}

// While the server is down a write waits and retries; once the server is
// back the batch is committed.
func TestWaitsForServer(t *testing.T) {
	pg := storetest.PostgreSQL(t)
	table := freshTable()
	ctx := context.Background()
	s, err := Open(ctx, Config{URL: pg.URL, Table: table, CreateTable: true, Shape: pipeline.ShapeTweet}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, mapped := storetest.Tweets(t, 11, 10, tweetStart, time.Millisecond)
	storetest.CheckWriteWaits(t, pg.Server, func() error { return s.Write(ctx, &pipeline.Batch{Messages: mapped}) })
	var n int
	connect(t, pg.URL).QueryRow(ctx, "select count(*) from "+table).Scan(&n)
	if n != 10 {
		t.Fatalf("%d rows, want 10", n)
	}
	// A cancelled context ends the wait.
	pg.Stop()
	defer pg.Start()
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := s.Write(cctx, &pipeline.Batch{Messages: mapped}); err == nil {
		t.Fatal("Write succeeded with the server down")
	}
}
