package postgres

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/processor"
	"github.com/creek-pipeline/creek/internal/recordjson"
)

// layout is a table's columns and how a message fills them.
type layout struct {
	columns []string // in COPY order
	key     []string // the primary key
	types   []string // for CREATE TABLE, per column
	// valueType is the value column's type in the table (record layout):
	// jsonb and json take JSON, text takes text, bytea bytes.
	valueType string
	// fill returns a message's values and primary key, or why the row
	// cannot be stored.
	fill func(l *layout, m *pipeline.Message) ([]any, string, error)
}

// tweetLayout is the table of `--map tweet`.
var tweetLayout = &layout{
	columns: []string{"id", "created_at", "lang", "author_id", "username", "text", "hashtags", "raw"},
	types:   []string{"text primary key", "timestamptz", "text", "text", "text", "text", "text[]", "jsonb"},
	key:     []string{"id"},
	fill: func(_ *layout, m *pipeline.Message) ([]any, string, error) {
		t, err := processor.DecodeTweet(m.Value)
		if err != nil {
			return nil, "", err
		}
		for _, s := range append([]string{t.ID, t.Lang, t.AuthorID, t.Username, t.Text}, t.Hashtags...) {
			if strings.IndexByte(s, 0) >= 0 {
				return nil, "", fmt.Errorf("post %s holds a NUL character, which PostgreSQL text cannot", t.ID)
			}
		}
		if bytes.Contains(t.Raw, []byte(`\u0000`)) {
			return nil, "", fmt.Errorf("post %s holds \\u0000, which PostgreSQL jsonb cannot", t.ID)
		}
		var created any
		if !t.CreatedAt.IsZero() {
			created = t.CreatedAt
		}
		return []any{t.ID, created, t.Lang, t.AuthorID, t.Username, t.Text, t.Hashtags, json.RawMessage(t.Raw)}, t.ID, nil
	},
}

// recordLayout is the table of records as read from Kafka.
var recordLayout = &layout{
	columns:   []string{"topic", "partition", "offset", "key", "value", "headers", "timestamp"},
	types:     []string{"text not null", "integer not null", "bigint not null", "bytea", "jsonb", "jsonb", "timestamptz"},
	key:       []string{"topic", "partition", "offset"},
	valueType: "jsonb",
	fill: func(l *layout, m *pipeline.Message) ([]any, string, error) {
		if m.Topic == "" {
			return nil, "", fmt.Errorf("the record has no Kafka topic, partition and offset to key its row by: read it from Kafka, or use --map tweet")
		}
		value, err := l.value(m.Value)
		if err != nil {
			return nil, "", err
		}
		var headers any
		if len(m.Headers) > 0 {
			h := make(map[string]string, len(m.Headers))
			for _, kv := range m.Headers {
				h[kv.Key] = recordjson.Printable(kv.Value)
			}
			b, _ := json.Marshal(h)
			headers = json.RawMessage(bytes.ReplaceAll(b, []byte(`\u0000`), []byte(`\ufffd`)))
		}
		var ts any
		if !m.Timestamp.IsZero() {
			ts = m.Timestamp
		}
		key := m.Topic + "\x00" + strconv.Itoa(int(m.Partition)) + "\x00" + strconv.FormatInt(m.Offset, 10)
		return []any{m.Topic, m.Partition, m.Offset, m.Key, value, headers, ts}, key, nil
	},
}

// withValueType is the record layout for a table whose value column has
// the given type ("" when the table is not there yet: jsonb).
func (l *layout) withValueType(t string) *layout {
	c := *l
	if t != "" {
		c.valueType = t
	}
	return &c
}

// value converts a record value for the value column.
func (l *layout) value(v []byte) (any, error) {
	switch l.valueType {
	case "bytea":
		return v, nil
	case "json", "jsonb":
		v = recordjson.AppendValue(nil, v) // a value that is not JSON becomes a JSON string
		if l.valueType == "jsonb" && bytes.Contains(v, []byte(`\u0000`)) {
			return nil, fmt.Errorf("the value holds \\u0000, which PostgreSQL jsonb cannot")
		}
		return json.RawMessage(v), nil
	}
	if !utf8.Valid(v) || bytes.IndexByte(v, 0) >= 0 {
		return nil, fmt.Errorf("the value is not UTF-8 text without NUL, which a %s column needs (make it bytea or jsonb)", l.valueType)
	}
	return string(v), nil
}

// rows turns messages into rows, keeping the last message of each key (an
// upsert may not touch a row twice), sorted by key so that concurrent
// writers lock rows in the same order. Messages that cannot be rows are
// returned as rejections.
func (l *layout) rows(msgs []pipeline.Message) ([]row, []pipeline.Rejection) {
	rows := make([]row, 0, len(msgs))
	at := make(map[string]int, len(msgs))
	var rejected []pipeline.Rejection
	for i := range msgs {
		values, key, err := l.fill(l, &msgs[i])
		if err != nil {
			rejected = append(rejected, pipeline.Rejection{Index: i, Class: "creek.sink.postgres.BadRow", Err: err})
			continue
		}
		if j, ok := at[key]; ok {
			rows[j] = row{index: i, key: key, values: values}
			continue
		}
		at[key] = len(rows)
		rows = append(rows, row{index: i, key: key, values: values})
	}
	sort.Slice(rows, func(a, b int) bool { return rows[a].key < rows[b].key })
	return rows, rejected
}

func (l *layout) createSQL(table pgx.Identifier) string {
	cols := make([]string, len(l.columns))
	for i, c := range l.columns {
		cols[i] = pgx.Identifier{c}.Sanitize() + " " + l.types[i]
	}
	if len(l.key) > 1 {
		cols = append(cols, "primary key ("+quoted(l.key)+")")
	}
	return fmt.Sprintf("create table if not exists %s (%s)", table.Sanitize(), strings.Join(cols, ", "))
}

// upsertSQL inserts from source (a format with %s for the column list or
// the parameters) and overwrites a row with the same key.
func (l *layout) upsertSQL(table pgx.Identifier, source string) string {
	var set []string
	for _, c := range l.columns {
		if !slices.Contains(l.key, c) {
			q := pgx.Identifier{c}.Sanitize()
			set = append(set, q+" = excluded."+q)
		}
	}
	from := quoted(l.columns)
	if strings.HasPrefix(source, "values") {
		params := make([]string, len(l.columns))
		for i := range params {
			params[i] = "$" + strconv.Itoa(i+1)
		}
		from = strings.Join(params, ", ")
	}
	return fmt.Sprintf("insert into %s (%s) %s on conflict (%s) do update set %s",
		table.Sanitize(), quoted(l.columns), fmt.Sprintf(source, from), quoted(l.key), strings.Join(set, ", "))
}

func quoted(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(q, ", ")
}
