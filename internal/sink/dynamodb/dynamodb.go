// Package dynamodb is the sink that stores records as DynamoDB items with
// aws-sdk-go-v2 and its default credential chain (on EC2, the instance
// role). A batch goes in BatchWriteItem requests of at most 25 items,
// several in flight; an item is keyed by id (the tweet id with --map
// tweet, else topic-partition-offset), so a replay after a crash
// overwrites the same items. DynamoDB refuses a request that holds one key
// twice, so within a batch the last record for a key wins.
//
// Items DynamoDB leaves unprocessed (throttling) are sent again with
// back-off, and so are whole requests that fail for throttling or the
// network, for as long as it takes. An item over DynamoDB's 400 KB limit
// is found before it is sent, and one that DynamoDB refuses for what it
// holds (a ValidationException, found by writing the request's items one
// by one) goes to the dead-letter topic. Refused credentials or a missing
// table stop the pipeline with one line saying what to do.
package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/creek-pipeline/creek/internal/awsconfig"
	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/sink/parts"
	"github.com/creek-pipeline/creek/internal/sink/retry"
)

func init() {
	pipeline.RegisterSink(pipeline.Plugin{
		Name: "dynamodb",
		Doc:  "Stores records as DynamoDB items with BatchWriteItem, keyed by id (the tweet id with --map tweet, else topic-partition-offset) so replays overwrite; credentials from AWS's default chain (the EC2 instance role).",
		Options: []pipeline.Option{
			{Name: "table", Flag: "dynamodb-table", Type: pipeline.TypeString, Doc: "Table to write to (required); its partition key is id, a string."},
			{Name: "region", Flag: "dynamodb-region", Type: pipeline.TypeString,
				Doc: "The table's region (default: AWS_REGION, the profile's, the EC2 instance's, or us-east-1)."},
			{Name: "endpoint", Flag: "dynamodb-endpoint", Type: pipeline.TypeString,
				Doc: "URL of a DynamoDB-compatible server (DynamoDB Local, dynalite); the SDK also reads AWS_ENDPOINT_URL_DYNAMODB."},
			{Name: "profile", Flag: "dynamodb-profile", Type: pipeline.TypeString, Doc: "Shared-config profile to take credentials and region from."},
			{Name: "create-table", Flag: "dynamodb-create-table", Type: pipeline.TypeBool,
				Doc: "Create the table when it is missing: partition key id (string), on-demand capacity."},
			{Name: "ttl", Flag: "dynamodb-ttl", Type: pipeline.TypeDuration,
				Doc: "Write an expires_at attribute (Unix seconds) this long after the record's time, such as 720h, for DynamoDB's time to live to delete the item; with --dynamodb-create-table, TTL is turned on for it."},
			{Name: "workers", Flag: "dynamodb-workers", Type: pipeline.TypeInt, Default: "8", Doc: "BatchWriteItem requests in flight at once."},
		},
		NewSink: func(v *pipeline.Values, env pipeline.Env) (pipeline.Sink, error) {
			return Open(context.Background(), Config{
				Table: v.String("table"), CreateTable: v.Bool("create-table"), TTL: v.Duration("ttl"), Workers: int(v.Int("workers")), Shape: env.Shape,
				AWS: awsconfig.Options{Region: v.String("region"), Endpoint: v.String("endpoint"), Profile: v.String("profile"), MaxAttempts: 3},
			}, env.Logger)
		},
	})
}

// Config is where the sink writes and how.
type Config struct {
	Table       string
	CreateTable bool
	TTL         time.Duration
	Workers     int
	Shape       string
	AWS         awsconfig.Options
}

// Sink writes batches to a table.
type Sink struct {
	cfg    Config
	log    *slog.Logger
	client *dynamodb.Client
	where  string // the table and its region or endpoint, for messages
	policy retry.Policy
}

// Open builds the client and checks the table (creating it if asked), so
// that wrong credentials, region or table show at start.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Sink, error) {
	if cfg.Table == "" {
		return nil, errors.New("dynamodb: no table given; use --dynamodb-table NAME (or table: in the output section)")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	awsCfg, err := awsconfig.Load(ctx, cfg.AWS)
	if err != nil {
		return nil, fmt.Errorf("dynamodb: %w", err)
	}
	s := &Sink{cfg: cfg, log: log, policy: retry.Default,
		client: dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
			if cfg.AWS.Endpoint != "" {
				o.BaseEndpoint = aws.String(cfg.AWS.Endpoint)
			}
		}),
		where: fmt.Sprintf("DynamoDB table %s in %s", cfg.Table, awsCfg.Region),
	}
	if cfg.AWS.Endpoint != "" {
		s.where = fmt.Sprintf("DynamoDB table %s at %s", cfg.Table, cfg.AWS.Endpoint)
	}
	if err := s.checkTable(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// checkTable describes the table, creates it if asked, and checks its key.
func (s *Sink) checkTable(ctx context.Context) error {
	out, err := s.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.cfg.Table)})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) && s.cfg.CreateTable {
		return s.createTable(ctx)
	}
	if err != nil {
		return s.explain(err)
	}
	keys := out.Table.KeySchema
	if len(keys) != 1 || aws.ToString(keys[0].AttributeName) != "id" {
		var names []string
		for _, k := range keys {
			names = append(names, aws.ToString(k.AttributeName)+" ("+string(k.KeyType)+")")
		}
		return &fatalError{fmt.Sprintf("%s has the key %s; creek writes items keyed by id alone (a string): use another table, or let --dynamodb-create-table make one", s.where, strings.Join(names, ", "))}
	}
	return nil
}

func (s *Sink) createTable(ctx context.Context) error {
	_, err := s.client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(s.cfg.Table),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) { // another consumer may be creating it too
		return s.explain(err)
	}
	waiter := dynamodb.NewTableExistsWaiter(s.client, func(o *dynamodb.TableExistsWaiterOptions) { o.MinDelay = 200 * time.Millisecond })
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.cfg.Table)}, 5*time.Minute); err != nil {
		return fmt.Errorf("%s: waiting for the new table: %w", s.where, err)
	}
	s.log.Info("created DynamoDB table", "table", s.cfg.Table)
	if s.cfg.TTL > 0 {
		_, err := s.client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(s.cfg.Table),
			TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String("expires_at"), Enabled: aws.Bool(true)}})
		if err != nil {
			s.log.Warn("could not turn on time to live; items keep their expires_at but are not deleted until it is on", "table", s.cfg.Table, "err", awsconfig.RootCause(err))
		}
	}
	return nil
}

// Write stores a batch and returns once every item is written or refused
// alone (returned as a *pipeline.RejectedError).
func (s *Sink) Write(ctx context.Context, b *pipeline.Batch) error {
	items, rejected := s.items(b.Messages)
	groups := (len(items) + maxBatchItems - 1) / maxBatchItems
	return parts.Write(ctx, groups, s.cfg.Workers, rejected, func(ctx context.Context, i int) ([]pipeline.Rejection, error) {
		return s.writeGroup(ctx, items[i*maxBatchItems:min((i+1)*maxBatchItems, len(items))])
	})
}

// maxBatchItems is BatchWriteItem's limit.
const maxBatchItems = 25

// writeGroup writes up to 25 items, sending the unprocessed ones again
// with back-off until none is left.
func (s *Sink) writeGroup(ctx context.Context, group []item) ([]pipeline.Rejection, error) {
	pending := make(map[string]item, len(group))
	for _, it := range group {
		pending[it.id] = it
	}
	var rejected []pipeline.Rejection
	err := retry.Do(ctx, s.policy, s.log, "write to "+s.where, retryable, func() error {
		reqs := make([]types.WriteRequest, 0, len(pending))
		for _, it := range pending {
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: it.attrs}})
		}
		out, err := s.client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{s.cfg.Table: reqs}})
		var ve smithy.APIError
		if errors.As(err, &ve) && ve.ErrorCode() == "ValidationException" {
			// One item spoils the request: find it, item by item.
			rej, err := s.onePerRequest(ctx, pending)
			rejected = append(rejected, rej...)
			if err == nil {
				clear(pending)
			}
			return err
		}
		if err != nil {
			return s.explain(err)
		}
		left := out.UnprocessedItems[s.cfg.Table]
		if len(left) == 0 {
			clear(pending)
			return nil
		}
		again := make(map[string]item, len(left))
		for _, r := range left {
			if r.PutRequest == nil {
				continue
			}
			if id, ok := r.PutRequest.Item["id"].(*types.AttributeValueMemberS); ok {
				again[id.Value] = pending[id.Value]
			}
		}
		pending = again
		return &unprocessedError{n: len(again), of: len(group)}
	})
	return rejected, err
}

// onePerRequest writes items one PutItem at a time and returns those
// DynamoDB refuses for what they hold.
func (s *Sink) onePerRequest(ctx context.Context, items map[string]item) ([]pipeline.Rejection, error) {
	var rejected []pipeline.Rejection
	for id, it := range items {
		_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.cfg.Table), Item: it.attrs})
		var ve smithy.APIError
		switch {
		case err == nil:
			delete(items, id)
		case errors.As(err, &ve) && ve.ErrorCode() == "ValidationException":
			rejected = append(rejected, pipeline.Rejection{Index: it.msg, Class: "ValidationException",
				Err: fmt.Errorf("DynamoDB refused item %s: %s", id, ve.ErrorMessage())})
			delete(items, id)
		default:
			return rejected, s.explain(err)
		}
	}
	return rejected, nil
}

// Close releases nothing: the client holds no connection that needs it.
func (s *Sink) Close() error { return nil }

// unprocessedError: DynamoDB took part of a request and left the rest
// (throttling).
type unprocessedError struct{ n, of int }

func (e *unprocessedError) Error() string {
	return fmt.Sprintf("DynamoDB left %d of %d items unprocessed (throttled)", e.n, e.of)
}

// fatalError stops the pipeline.
type fatalError struct{ msg string }

func (e *fatalError) Error() string { return e.msg }

func retryable(err error) bool {
	var fe *fatalError
	return !errors.As(err, &fe) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// explain turns what DynamoDB said into one line naming the table and
// what to do; errors waiting cannot fix are fatal.
func (s *Sink) explain(err error) error {
	var ae smithy.APIError
	code := ""
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	fatal := func(format string, args ...any) error {
		return &fatalError{s.where + ": " + fmt.Sprintf(format, args...)}
	}
	switch {
	case code == "ResourceNotFoundException":
		return fatal("the table does not exist (in this region): create it with partition key id (string), add --dynamodb-create-table, or check --dynamodb-region")
	case code == "UnrecognizedClientException" || code == "InvalidSignatureException" || code == "ExpiredTokenException" ||
		code == "MissingAuthenticationTokenException" || code == "InvalidClientTokenId" || code == "IncompleteSignatureException":
		return fatal("DynamoDB refused the credentials (%s): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the profile, or the instance role", code)
	case code == "AccessDeniedException":
		return fatal("access denied (%s): allow dynamodb:BatchWriteItem, PutItem and DescribeTable (and CreateTable for --dynamodb-create-table) on the table in the role's policy", ae.ErrorMessage())
	case awsconfig.IsNoCredentials(err):
		return fatal("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, choose a profile, or run on EC2 with an instance role")
	case awsconfig.IsNetwork(err):
		return fmt.Errorf("cannot reach %s: %v", s.where, awsconfig.RootCause(err))
	case code != "":
		return fmt.Errorf("%s: %s: %s", s.where, code, ae.ErrorMessage())
	}
	return fmt.Errorf("%s: %w", s.where, err)
}
