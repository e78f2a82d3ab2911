package elasticsearch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/processor"
	"github.com/creek-pipeline/creek/internal/sink/retry"
	"github.com/creek-pipeline/creek/internal/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Run(m)) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

var indexN atomic.Int64

func freshIndex() string {
	return fmt.Sprintf("creek-test-%d-%d", time.Now().UnixNano()%1e6, indexN.Add(1))
}

// call sends a request to the cluster and returns status and body.
func call(t testing.TB, method, url string, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func count(t testing.TB, url, index string) int {
	t.Helper()
	call(t, "POST", url+"/"+index+"/_refresh", "")
	st, b := call(t, "GET", url+"/"+index+"/_count", "")
	if st != 200 {
		t.Fatalf("count %s: %d %s", index, st, b)
	}
	return int(gjson.GetBytes(b, "count").Int())
}

func open(t testing.TB, cfg Config) *Sink {
	t.Helper()
	s, err := Open(context.Background(), cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Tweets become documents equal to their source records, with the tweet
// mapping; a replay rewrites the same documents, in small bulk requests
// several at a time.
func TestTweetsIdempotent(t *testing.T) {
	_, url := storetest.OpenSearch(t)
	index := freshIndex()
	s := open(t, Config{URLs: []string{url}, Index: index, CreateIndex: true, Shape: pipeline.ShapeTweet, BulkActions: 37, Workers: 3})
	orig, mapped := storetest.Tweets(t, 5, 400, time.Now(), time.Second)
	ctx := context.Background()
	if err := s.Write(ctx, &pipeline.Batch{Messages: mapped[:250]}); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, &pipeline.Batch{Messages: mapped[100:]}); err != nil { // a replay from 100 on
		t.Fatal(err)
	}
	if n := count(t, url, index); n != 400 {
		t.Fatalf("%d documents, want 400", n)
	}
	for _, i := range []int{0, 123, 399} {
		want, _ := processor.FromPost(orig[i].Value)
		st, b := call(t, "GET", url+"/"+index+"/_doc/"+want.ID, "")
		if st != 200 {
			t.Fatalf("GET doc %s: %d %s", want.ID, st, b)
		}
		src := gjson.GetBytes(b, "_source")
		got, err := processor.DecodeTweet([]byte(src.Raw))
		if err != nil {
			t.Fatal(err)
		}
		var a, c any
		json.Unmarshal(got.Raw, &a)
		json.Unmarshal(orig[i].Value, &c)
		if !reflect.DeepEqual(a, c) || got.ID != want.ID || got.Text != want.Text || !slices.Equal(got.Hashtags, want.Hashtags) || !got.CreatedAt.Equal(want.CreatedAt) {
			t.Fatalf("document %s = %+v, want %+v", want.ID, got, want)
		}
	}
	// The mapping: created_at a date, lang a keyword, text text, hashtags keyword.
	_, m := call(t, "GET", url+"/"+index+"/_mapping", "")
	props := gjson.GetBytes(m, gjson.Escape(index)+".mappings.properties")
	for field, typ := range map[string]string{"created_at": "date", "lang": "keyword", "text": "text", "hashtags": "keyword"} {
		if got := props.Get(field + ".type").String(); got != typ {
			t.Errorf("mapping of %s: %q, want %q (%s)", field, got, typ, props.Raw)
		}
	}
	// A keyword query works on the hashtags.
	_, r := call(t, "POST", url+"/"+index+"/_count", `{"query":{"term":{"hashtags":"kafka"}}}`)
	want := 0
	for _, m := range mapped {
		tw, _ := processor.DecodeTweet(m.Value)
		if slices.Contains(tw.Hashtags, "kafka") {
			want++
		}
	}
	if got := int(gjson.GetBytes(r, "count").Int()); got != want || want == 0 {
		t.Fatalf("%d documents with #kafka, want %d", got, want)
	}
}

// Records without a map: id topic+partition+offset, a daily index from
// the record's time.
func TestRecordsDatedIndex(t *testing.T) {
	_, url := storetest.OpenSearch(t)
	base := freshIndex()
	s := open(t, Config{URLs: []string{url}, Index: base + "-%Y.%m.%d", CreateIndex: true})
	day1 := time.Date(2026, 4, 11, 23, 59, 0, 0, time.UTC)
	msgs := []pipeline.Message{
		{Topic: "logs", Partition: 0, Offset: 1, Timestamp: day1, Value: []byte(`{"level":"info"}`), Key: []byte("k")},
		{Topic: "logs", Partition: 0, Offset: 2, Timestamp: day1.Add(2 * time.Minute), Value: []byte("plain text"), Headers: []pipeline.Header{{Key: "h", Value: []byte("v")}}},
	}
	for range 2 {
		if err := s.Write(context.Background(), &pipeline.Batch{Messages: msgs}); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := count(t, url, base+"-2026.04.11"), count(t, url, base+"-2026.04.12"); a != 1 || b != 1 {
		t.Fatalf("documents per day %d, %d; want 1 and 1", a, b)
	}
	st, b := call(t, "GET", url+"/"+base+"-2026.04.12/_doc/logs+0+2", "")
	src := gjson.GetBytes(b, "_source")
	if st != 200 || src.Get("value").String() != "plain text" || src.Get("headers.h").String() != "v" || src.Get("offset").Int() != 2 {
		t.Fatalf("document logs+0+2: %d %s", st, b)
	}
}

// A document the index's mapping refuses is rejected alone; the others
// are indexed.
func TestMappingErrorRejectsOne(t *testing.T) {
	_, url := storetest.OpenSearch(t)
	index := freshIndex()
	if st, b := call(t, "PUT", url+"/"+index, `{"mappings":{"properties":{"value":{"properties":{"n":{"type":"long"}}}}}}`); st != 200 {
		t.Fatalf("create index: %d %s", st, b)
	}
	s := open(t, Config{URLs: []string{url}, Index: index})
	msgs := []pipeline.Message{
		{Topic: "in", Offset: 1, Value: []byte(`{"n":1}`)},
		{Topic: "in", Offset: 2, Value: []byte(`{"n":"not a number"}`)},
		{Topic: "in", Offset: 3, Value: []byte(`{"n":3}`)},
	}
	err := s.Write(context.Background(), &pipeline.Batch{Messages: msgs})
	var rej *pipeline.RejectedError
	if !errors.As(err, &rej) || len(rej.Rejections) != 1 || rej.Rejections[0].Index != 1 || !strings.Contains(rej.Rejections[0].Class, "parsing_exception") {
		t.Fatalf("Write = %v, want message 1 rejected for a mapping error", err)
	}
	if n := count(t, url, index); n != 2 {
		t.Fatalf("%d documents, want 2", n)
	}
}

// A read-only index answers 403 for each item: the sink stops with a
// message that says why, at once, instead of retrying forever.
func TestForbiddenStops(t *testing.T) {
	_, url := storetest.OpenSearch(t)
	index := freshIndex()
	call(t, "PUT", url+"/"+index, "")
	if st, b := call(t, "PUT", url+"/"+index+"/_settings", `{"index.blocks.write":true}`); st != 200 {
		t.Fatalf("block writes: %d %s", st, b)
	}
	s := open(t, Config{URLs: []string{url}, Index: index})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := s.Write(ctx, &pipeline.Batch{Messages: []pipeline.Message{{Topic: "in", Value: []byte(`{}`)}}})
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("Write = %v, want a 403 that stops at once", err)
	}
}

// A busy cluster (429 for some items of a bulk request) gets those items
// again, and every document lands once. The test's OpenSearch has a write
// queue of a few requests; eight bulk requests at once overflow it.
func TestBusyClusterRetried(t *testing.T) {
	_, url := storetest.OpenSearch(t)
	index := freshIndex()
	call(t, "PUT", url+"/"+index, `{"settings":{"number_of_shards":3,"number_of_replicas":0}}`)
	var logs storetest.SyncBuffer
	s, err := Open(context.Background(), Config{URLs: []string{url}, Index: index, Shape: pipeline.ShapeTweet, BulkActions: 10, Workers: 16},
		slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.policy = retry.Policy{Start: 20 * time.Millisecond, Max: 500 * time.Millisecond}
	_, mapped := storetest.Tweets(t, 5, 1000, time.Now(), time.Second)
	start := time.Now()
	if err := s.Write(context.Background(), &pipeline.Batch{Messages: mapped}); err != nil {
		t.Fatal(err)
	}
	t.Logf("write took %s", time.Since(start))
	if n := count(t, url, index); n != 1000 {
		t.Fatalf("%d documents, want 1000", n)
	}
	t.Logf("%d bulk requests retried", strings.Count(logs.String(), "could not take"))
	if !strings.Contains(logs.String(), "could not take") {
		t.Skip("OpenSearch took every bulk request at once (no 429 to retry this time)")
	}
}

// Open fails at once, in one line, when the cluster is not there.
func TestOpenErrors(t *testing.T) {
	_, err := Open(context.Background(), Config{URLs: []string{"http://127.0.0.1:1"}, Index: "x"}, quiet())
	if err == nil || !strings.Contains(err.Error(), "cannot reach Elasticsearch at http://127.0.0.1:1") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Open = %v", err)
	}
	if _, err := Open(context.Background(), Config{URLs: []string{"http://127.0.0.1:1"}}, quiet()); err == nil || !strings.Contains(err.Error(), "no index given") {
		t.Fatalf("Open without an index = %v", err)
	}
}
