package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/creek-pipeline/creek/internal/awsconfig"
	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/processor"
	"github.com/creek-pipeline/creek/internal/storetest"
)

func TestMain(m *testing.M) {
	// dynalite takes any credentials; the SDK needs some to sign with.
	os.Setenv("AWS_ACCESS_KEY_ID", "creek-test")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "creek-test")
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Exit(storetest.Run(m))
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

var tableN atomic.Int64

func freshTable() string { return fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e6, tableN.Add(1)) }

func endpoint(t testing.TB) (*storetest.Server, awsconfig.Options) {
	d := storetest.Dynalite(t)
	return d, awsconfig.Options{Endpoint: "http://" + d.Addr, Region: "us-east-1", MaxAttempts: 2}
}

func open(t testing.TB, cfg Config) *Sink {
	t.Helper()
	s, err := Open(context.Background(), cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// scan reads every item of a table.
func scan(t testing.TB, s *Sink) []map[string]types.AttributeValue {
	t.Helper()
	var out []map[string]types.AttributeValue
	p := dynamodb.NewScanPaginator(s.client, &dynamodb.ScanInput{TableName: aws.String(s.cfg.Table)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Items...)
	}
	return out
}

func attrS(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// Tweets become items equal to their source records; a replay and a
// batch that names a post twice leave one item per post.
func TestTweetsIdempotent(t *testing.T) {
	_, aws := endpoint(t)
	s := open(t, Config{Table: freshTable(), CreateTable: true, Shape: pipeline.ShapeTweet, AWS: aws})
	orig, mapped := storetest.Tweets(t, 9, 300, tweetStart, time.Millisecond)
	ctx := context.Background()
	if err := s.Write(ctx, &pipeline.Batch{Messages: mapped[:200]}); err != nil {
		t.Fatal(err)
	}
	replay := append(slices.Clone(mapped[150:]), mapped[160], mapped[299])
	if err := s.Write(ctx, &pipeline.Batch{Messages: replay}); err != nil {
		t.Fatal(err)
	}
	items := scan(t, s)
	if len(items) != 300 {
		t.Fatalf("%d items, want 300", len(items))
	}
	byID := map[string]map[string]types.AttributeValue{}
	for _, it := range items {
		byID[attrS(it, "id")] = it
	}
	for _, m := range orig {
		want, _ := processor.FromPost(m.Value)
		it := byID[want.ID]
		var tags []string
		if l, ok := it["hashtags"].(*types.AttributeValueMemberL); ok {
			for _, v := range l.Value {
				tags = append(tags, v.(*types.AttributeValueMemberS).Value)
			}
		}
		if it == nil || attrS(it, "text") != want.Text || attrS(it, "lang") != want.Lang || attrS(it, "username") != want.Username ||
			attrS(it, "author_id") != want.AuthorID || attrS(it, "created_at") != want.CreatedAt.Format(TimeLayout) ||
			attrS(it, "raw") != string(m.Value) || !slices.Equal(tags, want.Hashtags) {
			t.Fatalf("item %s = %v, want %+v", want.ID, it, want)
		}
	}
}

// Records without a map: ids topic-partition-offset, binary values as
// bytes, headers as a map, an expiry from the record's time.
func TestRecordsWithTTL(t *testing.T) {
	_, aws := endpoint(t)
	s := open(t, Config{Table: freshTable(), CreateTable: true, TTL: time.Hour, AWS: aws})
	at := time.Date(2026, 4, 11, 9, 0, 0, 0, time.UTC)
	msgs := []pipeline.Message{
		{Topic: "logs", Partition: 2, Offset: 9, Timestamp: at, Key: []byte("k"), Value: []byte(`{"a":1}`), Headers: []pipeline.Header{{Key: "rule", Value: []byte("kafka")}}},
		{Topic: "logs", Partition: 2, Offset: 10, Timestamp: at, Value: []byte{0xff, 0xfe}},
	}
	if err := s.Write(context.Background(), &pipeline.Batch{Messages: msgs}); err != nil {
		t.Fatal(err)
	}
	items := scan(t, s)
	slices.SortFunc(items, func(a, b map[string]types.AttributeValue) int { return strings.Compare(attrS(a, "id"), attrS(b, "id")) })
	if len(items) != 2 || attrS(items[0], "id") != "logs-2-10" || attrS(items[1], "id") != "logs-2-9" {
		t.Fatalf("items %v", items)
	}
	if b, ok := items[0]["value"].(*types.AttributeValueMemberB); !ok || string(b.Value) != "\xff\xfe" {
		t.Fatalf("binary value %v", items[0]["value"])
	}
	h, _ := items[1]["headers"].(*types.AttributeValueMemberM)
	exp, _ := items[1]["expires_at"].(*types.AttributeValueMemberN)
	if attrS(items[1], "value") != `{"a":1}` || h == nil || h.Value["rule"].(*types.AttributeValueMemberS).Value != "kafka" ||
		exp == nil || exp.Value != fmt.Sprint(at.Add(time.Hour).Unix()) {
		t.Fatalf("item %v", items[1])
	}
}

// An item over 400 KB is refused before it is sent, and one DynamoDB
// refuses is found by writing one at a time; the others are written.
func TestItemsRefusedAlone(t *testing.T) {
	_, aws := endpoint(t)
	s := open(t, Config{Table: freshTable(), CreateTable: true, AWS: aws})
	msgs := []pipeline.Message{
		{Topic: "in", Offset: 1, Value: []byte("small")},
		{Topic: "in", Offset: 2, Value: []byte(strings.Repeat("x", MaxItemSize))},
		{Topic: "in", Offset: 3, Value: []byte("small too")},
	}
	err := s.Write(context.Background(), &pipeline.Batch{Messages: msgs})
	var rej *pipeline.RejectedError
	if !errors.As(err, &rej) || len(rej.Rejections) != 1 || rej.Rejections[0].Index != 1 || !strings.Contains(rej.Rejections[0].Err.Error(), "400 KB") {
		t.Fatalf("Write = %v, want message 1 refused as too large", err)
	}
	// An item DynamoDB itself refuses (a number that is not one) spoils its
	// request; the others of the request still land.
	good, _, _ := s.attributes(&pipeline.Message{Topic: "in", Offset: 4, Value: []byte("fine")})
	bad, _, _ := s.attributes(&pipeline.Message{Topic: "in", Offset: 5, Value: []byte("fine")})
	bad["offset"] = &types.AttributeValueMemberN{Value: "not a number"}
	refused, err := s.writeGroup(context.Background(), []item{{msg: 0, id: "in-0-4", attrs: good}, {msg: 1, id: "in-0-5", attrs: bad}})
	if err != nil || len(refused) != 1 || refused[0].Index != 1 || refused[0].Class != "ValidationException" {
		t.Fatalf("writeGroup = %v, %v; want item 1 refused", refused, err)
	}
	var ids []string
	for _, it := range scan(t, s) {
		ids = append(ids, attrS(it, "id"))
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"in-0-1", "in-0-3", "in-0-4"}) {
		t.Fatalf("items %v", ids)
	}
}

// A missing table, a table with another key, a server that does not
// answer and missing credentials stop at start with one line.
func TestOpenErrors(t *testing.T) {
	_, aws := endpoint(t)
	other := freshTable()
	s := open(t, Config{Table: freshTable(), CreateTable: true, AWS: aws})
	s.client.CreateTable(context.Background(), &dynamodb.CreateTableInput{TableName: &other,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: ptr("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: ptr("pk"), KeyType: types.KeyTypeHash}}, BillingMode: types.BillingModePayPerRequest})
	unreachable := aws
	unreachable.Endpoint = "http://127.0.0.1:1"
	for _, c := range []struct {
		cfg  Config
		env  map[string]string
		want string
	}{
		{Config{Table: "missing", AWS: aws}, nil, "does not exist (in this region): create it with partition key id"},
		{Config{Table: other, AWS: aws}, nil, "has the key pk (HASH)"},
		{Config{Table: "x", AWS: unreachable}, nil, "cannot reach DynamoDB table x at http://127.0.0.1:1"},
		{Config{Table: "x", AWS: aws}, map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}, "no AWS credentials"},
	} {
		for k, v := range c.env {
			t.Setenv(k, v)
		}
		_, err := Open(context.Background(), c.cfg, quiet())
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Open(%s) = %v, want one line with %q", c.cfg.Table, err, c.want)
		}
	}
}

func ptr(s string) *string { return &s }

var tweetStart = time.Date(2026, 4, 11, 9, 0, 0, 0, time.UTC)

// While the server is down a write waits and retries; once it is back the
// batch is written.
func TestWaitsForServer(t *testing.T) {
	d, aws := endpoint(t)
	s := open(t, Config{Table: freshTable(), CreateTable: true, Shape: pipeline.ShapeTweet, AWS: aws})
	s.policy.Max = time.Second
	_, mapped := storetest.Tweets(t, 9, 60, tweetStart, time.Millisecond)
	storetest.CheckWriteWaits(t, d, func() error { return s.Write(context.Background(), &pipeline.Batch{Messages: mapped}) })
	if n := len(scan(t, s)); n != 60 {
		t.Fatalf("%d items, want 60", n)
	}
}
