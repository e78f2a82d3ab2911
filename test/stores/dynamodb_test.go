package stores

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/creek-pipeline/creek/internal/processor"
	"github.com/creek-pipeline/creek/internal/storetest"
)

func TestDynamoDB(t *testing.T) {
	t.Parallel()
	d := storetest.Dynalite(t)
	endpoint := "http://" + d.Addr
	const table = "tweets"
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("creek-test", "creek-test", "")))
	if err != nil {
		t.Fatal(err)
	}
	client := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) })
	items := func(t *testing.T) []map[string]types.AttributeValue {
		var out []map[string]types.AttributeValue
		p := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{TableName: aws.String(table)})
		for p.HasMorePages() {
			page, err := p.NextPage(context.Background())
			if err != nil {
				return nil // not created yet
			}
			out = append(out, page.Items...)
		}
		return out
	}
	s := func(it map[string]types.AttributeValue, name string) string {
		if v, ok := it[name].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	runStore(t, &store{
		name: "dynamodb", server: d,
		env:   []string{"AWS_ACCESS_KEY_ID=creek-test", "AWS_SECRET_ACCESS_KEY=creek-test", "AWS_EC2_METADATA_DISABLED=true"},
		flags: []string{"--to", "dynamodb", "--dynamodb-table", table, "--dynamodb-endpoint", endpoint, "--dynamodb-region", "us-east-1", "--dynamodb-create-table"},
		count: func(t *testing.T) int {
			out, err := client.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(table), Select: types.SelectCount})
			n := 0
			for err == nil {
				n += int(out.Count)
				if out.LastEvaluatedKey == nil {
					break
				}
				out, err = client.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(table), Select: types.SelectCount, ExclusiveStartKey: out.LastEvaluatedKey})
			}
			return n
		},
		read: func(t *testing.T) map[string]processor.Tweet {
			out := map[string]processor.Tweet{}
			for _, it := range items(t) {
				tw := processor.Tweet{ID: s(it, "id"), Lang: s(it, "lang"), AuthorID: s(it, "author_id"), Username: s(it, "username"), Text: s(it, "text"), Raw: []byte(s(it, "raw"))}
				tw.CreatedAt, _ = time.Parse(time.RFC3339, s(it, "created_at"))
				if l, ok := it["hashtags"].(*types.AttributeValueMemberL); ok {
					for _, v := range l.Value {
						tw.Hashtags = append(tw.Hashtags, v.(*types.AttributeValueMemberS).Value)
					}
				}
				out[tw.ID] = tw
			}
			return out
		},
	})
}
