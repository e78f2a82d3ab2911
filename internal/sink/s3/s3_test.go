package s3_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/broker"
	"github.com/creek-pipeline/creek/internal/config"
	"github.com/creek-pipeline/creek/internal/pipeline"
	_ "github.com/creek-pipeline/creek/internal/processor" // the filter processor
	"github.com/creek-pipeline/creek/internal/s3client"
	"github.com/creek-pipeline/creek/internal/s3test"
	s3sink "github.com/creek-pipeline/creek/internal/sink/s3"
	_ "github.com/creek-pipeline/creek/internal/source/kafka"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func startBroker(t *testing.T) string {
	t.Helper()
	b, err := broker.Start(context.Background(), broker.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Settings: map[string]string{"group.initial.rebalance.delay.ms": "0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b.Addr()
}

// setup starts versitygw with a bucket and a broker.
func setup(t *testing.T, bucket string) (*s3test.Server, string) {
	t.Helper()
	srv := s3test.Start(t)
	srv.SetEnv(t)
	srv.MakeBucket(t, bucket)
	return srv, startBroker(t)
}

// tweetValue is a post in the X API v2 stream's JSON.
func tweetValue(i int) string {
	return fmt.Sprintf(`{"data":{"id":"%d","text":"트윗 %d #kafka","created_at":"2026-11-24T14:03:%02d.000Z","lang":"ko","author_id":"50%d"},"includes":{"users":[{"id":"50%d","username":"user%d"}]}}`, 1860000000000000000+i, i, i%60, i%7, i%7, i%7)
}

// produce writes n records over the topic's partitions: tweets, and every
// fifth a plain-text value; keys, a header, timestamps from ts0 a second apart.
func produce(t *testing.T, brokers, topic string, partitions int32, n int, ts0 time.Time) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range n {
		v := tweetValue(i)
		if i%5 == 4 {
			v = fmt.Sprintf("plain text %d\nsecond line", i)
		}
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i) % partitions, Key: []byte("k" + strconv.Itoa(i)), Value: []byte(v),
			Headers: []kgo.RecordHeader{{Key: "n", Value: []byte(strconv.Itoa(i))}}, Timestamp: ts0.Add(time.Duration(i) * time.Second)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func runArchive(t *testing.T, brokers string, source, sink map[string][]string) error {
	t.Helper()
	spec, err := pipeline.NewSpec("archive", "kafka", source, "s3", sink)
	if err != nil {
		t.Fatal(err)
	}
	p, err := spec.Build(pipeline.Env{Logger: quiet})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = p.Run(ctx)
	if ctx.Err() != nil {
		t.Fatal("the archiving pipeline did not finish within 60 s")
	}
	return err
}

// line is a record as the JSON lines hold it.
type line struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp string            `json:"timestamp"`
	Key       string            `json:"key"`
	Value     json.RawMessage   `json:"value"`
	Headers   map[string]string `json:"headers"`
	Object    string            `json:"object"` // added by the reader: where the line was
}

// readBucket reads every object under prefix with boto3 (an independent
// client: Debian's python3-boto3), decompressing .gz and .zst, and
// returns the lines with the object each came from.
func readBucket(t *testing.T, srv *s3test.Server, bucket, prefix string) []line {
	t.Helper()
	script := `
import boto3, gzip, json, sys
try:
    import zstandard
except ImportError:
    zstandard = None
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
pages = s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[2], Prefix=sys.argv[3])
for page in pages:
    for o in page.get("Contents", []):
        body = s3.get_object(Bucket=sys.argv[2], Key=o["Key"])["Body"].read()
        if o["Key"].endswith(".gz"):
            body = gzip.decompress(body)
        elif o["Key"].endswith(".zst"):
            if zstandard is None:
                print("SKIP zstandard not installed", file=sys.stderr); sys.exit(3)
            body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
        for l in body.decode("utf-8").splitlines():
            d = json.loads(l)
            d["object"] = o["Key"]
            print(json.dumps(d, ensure_ascii=False))
`
	cmd := exec.Command("/usr/bin/python3", "-c", script, srv.Endpoint, bucket, prefix)
	cmd.Env = srv.Env()
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && strings.Contains(string(ee.Stderr), "No module named 'boto3'") {
			t.Skip("python3-boto3 is not installed (scripts/test-deps.sh installs it)")
		}
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("reading the bucket with boto3: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var lines []line
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l == "" {
			continue
		}
		var x line
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		lines = append(lines, x)
	}
	return lines
}

// checkExactlyOnce checks that every offset below want[p] of each partition
// is in exactly one object, that each object is named by its partition and
// first offset and holds a run of offsets, and returns the objects per partition.
func checkExactlyOnce(t *testing.T, lines []line, topic string, want map[int32]int64) map[int32][]string {
	t.Helper()
	seen := map[int32]map[int64]string{}
	first := map[string]int64{}
	objects := map[int32][]string{}
	for _, l := range lines {
		if seen[l.Partition] == nil {
			seen[l.Partition] = map[int64]string{}
		}
		if prev, dup := seen[l.Partition][l.Offset]; dup {
			t.Fatalf("offset %d of partition %d is in %s and %s", l.Offset, l.Partition, prev, l.Object)
		}
		seen[l.Partition][l.Offset] = l.Object
		if f, ok := first[l.Object]; !ok {
			first[l.Object] = l.Offset
			objects[l.Partition] = append(objects[l.Partition], l.Object)
			name := fmt.Sprintf("%s+%d+%020d.", topic, l.Partition, l.Offset)
			if !strings.Contains(l.Object, "/"+name) {
				t.Fatalf("object %s starts with offset %d of partition %d; want a name with %s", l.Object, l.Offset, l.Partition, name)
			}
		} else if l.Offset < f {
			t.Fatalf("object %s holds offset %d before its first, %d", l.Object, l.Offset, f)
		}
	}
	for p, n := range want {
		for off := int64(0); off < n; off++ {
			if _, ok := seen[p][off]; !ok {
				t.Fatalf("offset %d of partition %d is in no object (%d of %d there)", off, p, len(seen[p]), n)
			}
		}
		if int64(len(seen[p])) != n {
			t.Fatalf("partition %d: %d offsets in the bucket, want %d", p, len(seen[p]), n)
		}
	}
	for p := range objects {
		sort.Strings(objects[p])
	}
	return objects
}

func sameJSON(a json.RawMessage, b string) bool {
	var x, y any
	json.Unmarshal(a, &x)
	json.Unmarshal([]byte(b), &y)
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	return x != nil && string(xs) == string(ys)
}

func committed(t *testing.T, brokers, group, topic string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			out[o.Partition] = o.At
		}
	})
	return out
}

func sinkOpts(srv *s3test.Server, bucket string, kv ...string) map[string][]string {
	o := map[string][]string{"bucket": {bucket}, "endpoint": {srv.Endpoint}, "region": {"us-east-1"}}
	for i := 0; i+1 < len(kv); i += 2 {
		o[kv[i]] = []string{kv[i+1]}
	}
	return o
}

// A topic archived as gzipped JSON lines: Kafka Connect's names, every
// record once, tweets kept as JSON and text as strings, keys, headers and
// RFC 3339 timestamps, and the group's offsets committed to the end.
func TestArchiveJSONLines(t *testing.T) {
	srv, brokers := setup(t, "archive")
	ts0 := time.Date(2026, 11, 24, 14, 0, 0, 0, time.UTC)
	produce(t, brokers, "tweets", 3, 2500, ts0)

	err := runArchive(t, brokers, map[string][]string{"brokers": {brokers}, "topic": {"tweets"}, "group": {"archive"}, "from-beginning": {"true"}, "count": {"2500"}},
		sinkOpts(srv, "archive", "prefix", "raw/", "flush-records", "300"))
	if err != nil {
		t.Fatal(err)
	}
	lines := readBucket(t, srv, "archive", "raw/")
	want := map[int32]int64{0: 834, 1: 833, 2: 833}
	objects := checkExactlyOnce(t, lines, "tweets", want)
	if got := objects[1][0]; got != "raw/tweets/partition=1/tweets+1+00000000000000000000.json.gz" {
		t.Fatalf("first object of partition 1 is %s", got)
	}
	if len(objects[0]) != 3 { // 834 records, 300 an object
		t.Fatalf("partition 0 in %d objects, want 3: %v", len(objects[0]), objects[0])
	}
	for _, l := range lines {
		i, _ := strconv.Atoi(l.Headers["n"])
		if l.Key != "k"+strconv.Itoa(i) || l.Topic != "tweets" || l.Timestamp != ts0.Add(time.Duration(i)*time.Second).Format("2006-01-02T15:04:05.000Z") {
			t.Fatalf("record %d read back as %+v", i, l)
		}
		if i%5 == 4 {
			var s string
			if json.Unmarshal(l.Value, &s) != nil || s != fmt.Sprintf("plain text %d\nsecond line", i) {
				t.Fatalf("text record %d read back as %s", i, l.Value)
			}
		} else if !sameJSON(l.Value, tweetValue(i)) {
			t.Fatalf("tweet %d read back as %s", i, l.Value)
		}
	}
	if got := committed(t, brokers, "archive", "tweets"); got[0] != 834 || got[1] != 833 || got[2] != 833 {
		t.Fatalf("committed offsets %v, want the ends of the partitions", got)
	}
}

// A quiet topic's records are stored by the flush interval, without
// waiting for more records, and only then committed.
func TestFlushIntervalStoresAQuietTopic(t *testing.T) {
	srv, brokers := setup(t, "quiet")
	produce(t, brokers, "events", 1, 5, time.Now())

	spec, err := pipeline.NewSpec("archive", "kafka", map[string][]string{"brokers": {brokers}, "topic": {"events"}, "group": {"g"}, "from-beginning": {"true"}},
		"s3", sinkOpts(srv, "quiet", "flush-interval", "500ms", "compression", "none"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := spec.Build(pipeline.Env{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	key := "events/partition=0/events+0+00000000000000000000.json"
	for {
		if _, ok := srv.Keys(t, "quiet", "")[key]; ok {
			break
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("no %s 15 s after start; the bucket holds %v", key, srv.Keys(t, "quiet", ""))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if elapsed := time.Since(start); elapsed < 400*time.Millisecond {
		t.Fatalf("stored after %v, before the 500ms flush interval", elapsed)
	}
	for committed(t, brokers, "g", "events")[0] != 5 {
		if time.Since(start) > 15*time.Second {
			t.Fatalf("offsets %v not committed after the object was stored", committed(t, brokers, "g", "events"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(readBucket(t, srv, "quiet", "")); n != 5 {
		t.Fatalf("%d records stored, want 5", n)
	}
}

// With partition-by time, objects go to dt=/hour= folders by record
// timestamp (UTC); an hour's records are never in another hour's object.
func TestPartitionByTime(t *testing.T) {
	srv, brokers := setup(t, "hourly")
	ts0 := time.Date(2026, 11, 24, 22, 50, 0, 0, time.FixedZone("KST", 9*3600)) // 13:50 UTC
	produce(t, brokers, "tweets", 2, 2400, ts0)                                 // a second apart: 13:50 to 14:30 UTC
	err := runArchive(t, brokers, map[string][]string{"brokers": {brokers}, "topic": {"tweets"}, "group": {"g"}, "from-beginning": {"true"}, "count": {"2400"}},
		sinkOpts(srv, "hourly", "partition-by", "time", "compression", "gzip"))
	if err != nil {
		t.Fatal(err)
	}
	lines := readBucket(t, srv, "hourly", "")
	checkExactlyOnce(t, lines, "tweets", map[int32]int64{0: 1200, 1: 1200})
	for _, l := range lines {
		ts, _ := time.Parse(time.RFC3339, l.Timestamp)
		dir := fmt.Sprintf("tweets/dt=%s/hour=%s/", ts.Format("2006-01-02"), ts.Format("15"))
		if !strings.HasPrefix(l.Object, dir) {
			t.Fatalf("record of %s in %s, want it under %s", l.Timestamp, l.Object, dir)
		}
	}
	keys := srv.Keys(t, "hourly", "")
	for _, k := range []string{"tweets/dt=2026-11-24/hour=13/tweets+0+00000000000000000000.json.gz", "tweets/dt=2026-11-24/hour=14/tweets+1+00000000000000000300.json.gz"} {
		if _, ok := keys[k]; !ok {
			t.Fatalf("no %s in %v", k, keys)
		}
	}
}

// writeDirect stores offsets [from, to) of one partition through a sink of
// its own with no source to commit to: as a run that stored objects and
// died before committing them.
func writeDirect(t *testing.T, srv *s3test.Server, bucket string, flushRecords int64, from, to int) {
	t.Helper()
	s, err := s3sink.New(context.Background(), s3sink.Config{Bucket: bucket, Client: s3client.Options{Endpoint: srv.Endpoint, Region: "us-east-1"},
		Format: "json", Compression: "gzip", FlushRecords: flushRecords, FlushBytes: 1 << 30, FlushInterval: time.Hour, PartitionBy: "offset", Memory: 8 << 20}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	b := &pipeline.Batch{}
	for i := from; i < to; i++ {
		b.Messages = append(b.Messages, pipeline.Message{Topic: "tweets", Partition: 0, Offset: int64(i), Key: []byte("k" + strconv.Itoa(i)),
			Value: []byte(tweetValue(i)), Headers: []pipeline.Header{{Key: "n", Value: []byte(strconv.Itoa(i))}}, Timestamp: time.UnixMilli(int64(i))})
	}
	if err := s.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// A consumer that restarts from an older commit finds objects stored after
// it and ends its objects where they end, whatever its own flush settings:
// the same names over the same offsets, so the bucket holds each offset once.
func TestRestartRewritesTheSameObjects(t *testing.T) {
	srv, brokers := setup(t, "replay")
	produce(t, brokers, "tweets", 1, 1000, time.UnixMilli(0))
	// An earlier run stored offsets 0..436 in objects of 50 (the last
	// of 37) and then died before committing anything.
	writeDirect(t, srv, "replay", 50, 0, 437)
	before := srv.Keys(t, "replay", "")
	if len(before) != 9 {
		t.Fatalf("the earlier run stored %d objects, want 9", len(before))
	}
	// This run commits every 300 records, and would cut objects elsewhere.
	err := runArchive(t, brokers, map[string][]string{"brokers": {brokers}, "topic": {"tweets"}, "group": {"g"}, "from-beginning": {"true"}, "count": {"1000"}},
		sinkOpts(srv, "replay", "flush-records", "300"))
	if err != nil {
		t.Fatal(err)
	}
	objects := checkExactlyOnce(t, readBucket(t, srv, "replay", ""), "tweets", map[int32]int64{0: 1000})
	for k := range before {
		if _, ok := srv.Keys(t, "replay", "")[k]; !ok {
			t.Fatalf("the rewrite did not keep the stored object name %s", k)
		}
	}
	last := objects[0][len(objects[0])-1]
	if !strings.Contains(last, "+00000000000000000700.") {
		t.Fatalf("after the rewritten objects (to 436) the objects are of 300 from 437: last is %s, want the one from 700", last)
	}
	if got := committed(t, brokers, "g", "tweets")[0]; got != 1000 {
		t.Fatalf("committed %d, want 1000", got)
	}
}

// The sink refuses, in one line, a bucket that does not exist, a bucket in
// another region, refused or missing credentials and a bucket name with a
// path in it.
func TestErrorsSayWhatToDo(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	srv.MakeBucket(t, "exists")
	cfg := func(bucket string) s3sink.Config {
		return s3sink.Config{Bucket: bucket, Client: s3client.Options{Endpoint: srv.Endpoint, Region: "us-east-1"},
			FlushRecords: 1, FlushBytes: 1, FlushInterval: time.Second, Memory: 1 << 20}
	}
	_, err := s3sink.New(context.Background(), cfg("no-such-bucket"), quiet)
	if err == nil || !strings.Contains(err.Error(), "bucket s3://no-such-bucket at "+srv.Endpoint+" does not exist: create it with `creek s3 mb s3://no-such-bucket") {
		t.Fatalf("missing bucket: %v", err)
	}
	_, err = s3sink.New(context.Background(), cfg("s3://exists/folder"), quiet)
	if err == nil || !strings.Contains(err.Error(), "--s3-prefix") {
		t.Fatalf("bucket with a path: %v", err)
	}
	other := cfg("exists")
	other.Client.Region = "eu-west-1"
	_, err = s3sink.New(context.Background(), other, quiet)
	if err == nil || !strings.Contains(err.Error(), "bucket s3://exists at "+srv.Endpoint+" is not in region eu-west-1") || !strings.Contains(err.Error(), "--region") {
		t.Fatalf("region mismatch: %v", err)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	_, err = s3sink.New(context.Background(), cfg("exists"), quiet)
	if err == nil || !strings.Contains(err.Error(), "S3 refused the credentials") || strings.Count(err.Error(), "\n") > 0 {
		t.Fatalf("wrong secret: %v", err)
	}
	os.Unsetenv("AWS_SECRET_ACCESS_KEY")
	os.Unsetenv("AWS_ACCESS_KEY_ID")
	t.Setenv("HOME", t.TempDir())
	_, err = s3sink.New(context.Background(), cfg("exists"), quiet)
	if err == nil || !strings.Contains(err.Error(), "no AWS credentials") {
		t.Fatalf("no credentials: %v", err)
	}
}

// Parquet read back with pyarrow (an independent reader): a column per
// record field with timestamps in microseconds (UTC), the value as JSON
// text, and with columns tweet the typed tweet columns, null for records
// that are not tweets.
func TestArchiveParquet(t *testing.T) {
	py := s3test.ParquetPython(t)
	srv, brokers := setup(t, "lake")
	ts0 := time.Date(2026, 11, 24, 14, 0, 0, 0, time.UTC)
	produce(t, brokers, "tweets", 2, 1000, ts0)
	err := runArchive(t, brokers, map[string][]string{"brokers": {brokers}, "topic": {"tweets"}, "group": {"g"}, "from-beginning": {"true"}, "count": {"1000"}},
		sinkOpts(srv, "lake", "format", "parquet", "columns", "tweet", "compression", "zstd", "flush-records", "200"))
	if err != nil {
		t.Fatal(err)
	}
	script := `
import boto3, io, json, os, sys
import pyarrow.parquet as pq
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
for o in s3.list_objects_v2(Bucket="lake")["Contents"]:
    body = s3.get_object(Bucket="lake", Key=o["Key"])["Body"].read()
    t = pq.read_table(io.BytesIO(body))
    if o["Key"] == "tweets/partition=1/tweets+1+00000000000000000200.parquet":
        print("SCHEMA", json.dumps({f.name: str(f.type) for f in t.schema}))
    for r in t.to_pylist():
        r["object"] = o["Key"]
        for k in ("timestamp", "created_at"):
            if r[k] is not None:
                r[k] = r[k].isoformat()
        r["headers"] = dict(r["headers"]) if r["headers"] is not None else None
        print(json.dumps(r, ensure_ascii=False))
# Leave without Python's teardown: Arrow's thread pool can abort the process
# there ("terminate called without an active exception", apache/arrow#34314)
# after every line is out.
sys.stdout.flush()
os._exit(0)
`
	cmd := exec.Command(py, "-c", script, srv.Endpoint)
	cmd.Env = srv.Env()
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("pyarrow: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var lines []line
	var schema map[string]string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if s, ok := strings.CutPrefix(l, "SCHEMA "); ok {
			json.Unmarshal([]byte(s), &schema)
			continue
		}
		var r struct {
			line
			Value     string  `json:"value"`
			TweetID   *string `json:"tweet_id"`
			CreatedAt *string `json:"created_at"`
			Lang      *string `json:"lang"`
			Username  *string `json:"username"`
			Text      *string `json:"text"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		i, _ := strconv.Atoi(r.Headers["n"])
		if i%5 == 4 {
			if r.TweetID != nil || r.Value != strconv.Quote(fmt.Sprintf("plain text %d\nsecond line", i)) {
				t.Fatalf("text record %d: tweet_id %v value %s", i, r.TweetID, r.Value)
			}
		} else if r.TweetID == nil || *r.TweetID != strconv.Itoa(1860000000000000000+i) || *r.Lang != "ko" || *r.Username != fmt.Sprintf("user%d", i%7) ||
			*r.Text != fmt.Sprintf("트윗 %d #kafka", i) || *r.CreatedAt != fmt.Sprintf("2026-11-24T14:03:%02d+00:00", i%60) || !sameJSON(json.RawMessage(r.Value), tweetValue(i)) {
			t.Fatalf("tweet %d read back as %s", i, l)
		}
		if r.line.Timestamp != ts0.Add(time.Duration(i)*time.Second).Format("2006-01-02T15:04:05+00:00") {
			t.Fatalf("record %d: timestamp %s", i, r.line.Timestamp)
		}
		r.line.Value = nil
		lines = append(lines, r.line)
	}
	checkExactlyOnce(t, lines, "tweets", map[int32]int64{0: 500, 1: 500})
	for col, typ := range map[string]string{"timestamp": "timestamp[us, tz=UTC]", "created_at": "timestamp[us, tz=UTC]", "offset": "int64", "partition": "int32", "value": "string", "tweet_id": "string", "headers": "map<string, string ('headers')>"} {
		if schema[col] != typ {
			t.Fatalf("column %s is %s, want %s (schema %v)", col, schema[col], typ, schema)
		}
	}
}

// Two archivers in one group while records keep coming: when the second
// joins, the first loses partitions in the middle of open objects (it
// aborts them, and the new owner writes them again from the last commit);
// were they kept, its Close would store them over the new owner's. Every
// offset ends in exactly one object.
func TestRebalanceKeepsExactlyOnce(t *testing.T) {
	srv, brokers := setup(t, "shared")
	produce(t, brokers, "tweets", 4, 2000, time.UnixMilli(0))
	start := func(name, interval string) (func(), chan error) {
		spec, err := pipeline.NewSpec(name, "kafka", map[string][]string{"brokers": {brokers}, "topic": {"tweets"}, "group": {"g"}, "from-beginning": {"true"}, "max-batch": {"50"}},
			"s3", sinkOpts(srv, "shared", "flush-records", "100000", "flush-interval", interval))
		if err != nil {
			t.Fatal(err)
		}
		p, err := spec.Build(pipeline.Env{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		return cancel, done
	}
	stopA, doneA := start("a", "1h") // its objects stay open until it stops
	more := make(chan struct{})
	go func() { // keep records coming while the group changes
		defer close(more)
		cl, _ := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		defer cl.Close()
		for i := 2000; i < 4000; i++ {
			cl.ProduceSync(context.Background(), &kgo.Record{Topic: "tweets", Partition: int32(i % 4), Key: []byte("k" + strconv.Itoa(i)),
				Value: []byte(tweetValue(i)), Headers: []kgo.RecordHeader{{Key: "n", Value: []byte(strconv.Itoa(i))}}})
			if i%500 == 0 {
				time.Sleep(50 * time.Millisecond)
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	stopB, doneB := start("b", "300ms")
	<-more
	time.Sleep(time.Second)
	stopA() // stores its open objects: only of the partitions it still has
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(45 * time.Second)
	for {
		c := committed(t, brokers, "g", "tweets")
		if c[0] == 1000 && c[1] == 1000 && c[2] == 1000 && c[3] == 1000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed %v, want 1000 in each partition", c)
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopB()
	if err := <-doneB; err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, readBucket(t, srv, "shared", ""), "tweets", map[int32]int64{0: 1000, 1: 1000, 2: 1000, 3: 1000})
}

// In a creek run file the sink's keys are the flags' names without s3-.
func TestArchiveFromAPipelineFile(t *testing.T) {
	srv, brokers := setup(t, "from-yaml")
	produce(t, brokers, "tweets", 1, 30, time.UnixMilli(0))
	path := filepath.Join(t.TempDir(), "archive.yaml")
	yaml := fmt.Sprintf(`
input:
  kafka: {brokers: %q, topic: tweets, group: archive, from-beginning: true, count: 30}
output:
  s3: {bucket: from-yaml, endpoint: %q, region: us-east-1, prefix: raw, compression: zstd, flush-records: 10, partition-by: offset}
`, brokers, srv.Endpoint)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := config.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := pipeline.SpecsFromFile(f)
	if err != nil {
		t.Fatal(err)
	}
	p, err := specs[0].Build(pipeline.Env{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	keys := srv.Keys(t, "from-yaml", "")
	for _, start := range []string{"00000000000000000000", "00000000000000000010", "00000000000000000020"} {
		if _, ok := keys["raw/tweets/partition=0/tweets+0+"+start+".json.zst"]; !ok {
			t.Fatalf("no object from offset %s: %v", start, keys)
		}
	}
}

// The pipeline's memory is the sink's budget when the Kafka source sizes
// its fetches from it, and unbounded when --fetch-max-bytes overrides that
// or a processor makes new values.
func TestMemoryBoundOfAnArchivingPipeline(t *testing.T) {
	srv, brokers := setup(t, "bound")
	for _, c := range []struct {
		name   string
		source map[string][]string
		filter string
		want   int64
	}{
		{"fetches sized by the sink", map[string][]string{"brokers": {brokers}, "topic": {"tweets"}}, "", 32 << 20},
		{"--fetch-max-bytes given", map[string][]string{"brokers": {brokers}, "topic": {"tweets"}, "fetch-max-bytes": {"8MiB"}}, "", 0},
		{"a filter", map[string][]string{"brokers": {brokers}, "topic": {"tweets"}}, `value.data.lang == "ko"`, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec, err := pipeline.NewSpec("archive", "kafka", c.source, "s3", sinkOpts(srv, "bound", "memory", "32MiB"))
			if err != nil {
				t.Fatal(err)
			}
			if c.filter != "" {
				f, err := pipeline.NewProcessor("filter", c.filter)
				if err != nil {
					t.Fatal(err)
				}
				spec.Processors = append(spec.Processors, f)
			}
			p, err := spec.Build(pipeline.Env{Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Sink.Close()
			if got := p.MemoryBound(); got != c.want {
				t.Fatalf("MemoryBound() = %d, want %d", got, c.want)
			}
		})
	}
}

// inFlight is a proxy in front of the S3 server that counts the requests
// storing data (PUT and POST) it is forwarding at once, each held 20 ms
// as a distant region would, so that requests sent together overlap.
type inFlight struct {
	proxy     http.Handler
	mu        sync.Mutex
	now, most int
}

func (f *inFlight) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPut || r.Method == http.MethodPost {
		f.mu.Lock()
		f.now++
		f.most = max(f.most, f.now)
		f.mu.Unlock()
		defer func() { f.mu.Lock(); f.now--; f.mu.Unlock() }()
		time.Sleep(20 * time.Millisecond)
	}
	f.proxy.ServeHTTP(w, r)
}

// --s3-uploads bounds the requests storing objects at once over all the
// partitions, whose objects close together; every record is stored once.
func TestUploadsBoundRequestsInFlight(t *testing.T) {
	srv, brokers := setup(t, "uploads")
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	const partitions = 48
	produce(t, brokers, "tweets", partitions, 2400, time.Now())
	for _, uploads := range []int{4, partitions} {
		t.Run(fmt.Sprint(uploads), func(t *testing.T) {
			counter := &inFlight{proxy: httputil.NewSingleHostReverseProxy(target)}
			proxy := httptest.NewServer(counter)
			defer proxy.Close()
			group, prefix := fmt.Sprint("archive-", uploads), fmt.Sprint("u", uploads, "/")
			err := runArchive(t, brokers, map[string][]string{"brokers": {brokers}, "topic": {"tweets"}, "group": {group}, "from-beginning": {"true"}, "count": {"2400"}},
				map[string][]string{"bucket": {"uploads"}, "endpoint": {proxy.URL}, "region": {"us-east-1"}, "prefix": {prefix},
					"flush-records": {"10"}, "uploads": {fmt.Sprint(uploads)}})
			if err != nil {
				t.Fatal(err)
			}
			want := map[int32]int64{}
			for p := range int32(partitions) {
				want[p] = 50
			}
			checkExactlyOnce(t, readBucket(t, srv, "uploads", prefix), "tweets", want)
			switch {
			case counter.most > uploads:
				t.Fatalf("%d requests storing objects at once, with --s3-uploads %d", counter.most, uploads)
			case uploads == partitions && counter.most <= 4:
				t.Fatalf("only %d requests at once with --s3-uploads %d: the bound of 4 above proves nothing", counter.most, uploads)
			}
			t.Logf("--s3-uploads %d: at most %d requests storing objects at once", uploads, counter.most)
		})
	}
	if _, err := s3sink.New(context.Background(), s3sink.Config{Bucket: "uploads", Client: s3client.Options{Endpoint: srv.Endpoint, Region: "us-east-1"},
		FlushRecords: 1, FlushBytes: 1, FlushInterval: time.Second, Memory: 64 << 20, Uploads: -1}, quiet); err == nil || !strings.Contains(err.Error(), "at least 1") {
		t.Errorf("uploads -1: %v", err)
	}
}
