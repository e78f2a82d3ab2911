package s3

import (
	"context"
	"errors"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	pqgzip "github.com/parquet-go/parquet-go/compress/gzip"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	pqzstd "github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/recordjson"
	"github.com/creek-pipeline/creek/internal/s3client"
	"github.com/creek-pipeline/creek/internal/tweet"
)

// recordRow is a Parquet row: a column per record field, the value as the
// same JSON text the JSON lines hold, timestamps in microseconds (UTC) as
// Athena, Spark and DuckDB read them.
type recordRow struct {
	Topic     string            `parquet:"topic,dict"`
	Partition int32             `parquet:"partition"`
	Offset    int64             `parquet:"offset"`
	Timestamp *time.Time        `parquet:"timestamp,optional,timestamp(microsecond:utc)"`
	Key       *string           `parquet:"key,optional"`
	Value     string            `parquet:"value"`
	Headers   map[string]string `parquet:"headers,optional"`
}

// tweetRow adds typed columns read from X API v2 JSON; null for a value
// that is not a tweet.
type tweetRow struct {
	recordRow
	TweetID   *string    `parquet:"tweet_id,optional"`
	CreatedAt *time.Time `parquet:"created_at,optional,timestamp(microsecond:utc)"`
	Lang      *string    `parquet:"lang,optional,dict"`
	AuthorID  *string    `parquet:"author_id,optional"`
	Username  *string    `parquet:"username,optional"`
	Text      *string    `parquet:"text,optional"`
}

func checkParquet(cfg Config) error {
	if cfg.Columns != "" && cfg.Columns != "record" && cfg.Columns != "tweet" {
		return errors.New("columns: want record or tweet")
	}
	return nil
}

// rowBuffer gathers an object's rows between chunks.
type rowBuffer struct {
	tweets  bool
	records []recordRow
	twts    []tweetRow
	bytes   int
}

func (b *rowBuffer) size() int { return b.bytes }
func (b *rowBuffer) len() int  { return len(b.records) + len(b.twts) }

func (b *rowBuffer) add(m *pipeline.Message) {
	r := recordRow{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset,
		Value: string(recordjson.AppendValue(nil, m.Value))}
	if !m.Timestamp.IsZero() {
		ts := m.Timestamp.UTC()
		r.Timestamp = &ts
	}
	if m.Key != nil {
		k := recordjson.Printable(m.Key)
		r.Key = &k
	}
	if len(m.Headers) > 0 {
		r.Headers = make(map[string]string, len(m.Headers))
		for _, h := range m.Headers {
			r.Headers[h.Key] = recordjson.Printable(h.Value)
		}
	}
	b.bytes += len(r.Value) + len(m.Key) + 64
	if !b.tweets {
		b.records = append(b.records, r)
		return
	}
	t := tweetRow{recordRow: r}
	if e, ok := tweet.Parse(m.Value); ok {
		str := func(s string) *string {
			if s == "" {
				return nil
			}
			return &s
		}
		t.TweetID, t.Lang, t.AuthorID, t.Text = str(e.Data.ID), str(e.Data.Lang), str(e.Data.AuthorID), str(e.Data.Text)
		if u, ok := e.Author(); ok {
			t.Username = str(u.Username)
		}
		if c, ok := e.Created(); ok {
			c = c.UTC()
			t.CreatedAt = &c
		}
	}
	b.twts = append(b.twts, t)
}

// take hands the rows over and starts afresh.
func (b *rowBuffer) take() *rowBuffer {
	out := &rowBuffer{tweets: b.tweets, records: b.records, twts: b.twts, bytes: b.bytes}
	b.records, b.twts, b.bytes = nil, nil, 0
	return out
}

// parquetFile writes one object's Parquet file; each chunk of rows becomes
// a row group, so a writer holds one chunk's columns at a time.
type parquetFile struct {
	records *parquet.GenericWriter[recordRow]
	tweets  *parquet.GenericWriter[tweetRow]
}

func newParquetFile(ctx context.Context, w *s3client.ObjectWriter, tweets bool, codec string) *parquetFile {
	out := writerFunc(func(p []byte) (int, error) {
		if err := w.Write(ctx, p); err != nil {
			return 0, err
		}
		return len(p), nil
	})
	var c compress.Codec = &pqgzip.Codec{}
	switch codec {
	case "zstd":
		c = &pqzstd.Codec{}
	case "none":
		c = &uncompressed.Codec{}
	}
	opts := []parquet.WriterOption{parquet.Compression(c), parquet.PageBufferSize(64 << 10), parquet.CreatedBy("creek", "", "")}
	if tweets {
		return &parquetFile{tweets: parquet.NewGenericWriter[tweetRow](out, opts...)}
	}
	return &parquetFile{records: parquet.NewGenericWriter[recordRow](out, opts...)}
}

func (f *parquetFile) write(b *rowBuffer) error {
	var err error
	if f.tweets != nil {
		_, err = f.tweets.Write(b.twts)
	} else {
		_, err = f.records.Write(b.records)
	}
	if err != nil {
		return err
	}
	if f.tweets != nil {
		return f.tweets.Flush()
	}
	return f.records.Flush()
}

func (f *parquetFile) close() error {
	if f.tweets != nil {
		return f.tweets.Close()
	}
	return f.records.Close()
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
