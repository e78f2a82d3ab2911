// Package elasticsearch is the sink that indexes records into
// Elasticsearch or OpenSearch through the _bulk API, with opensearch-go
// (which, unlike the Elastic client, does not refuse a server that is not
// Elastic's own, so one sink serves both). A batch is cut into bulk
// requests bounded by count and bytes, several in flight; each document
// has an id that the record decides (the tweet id with --map tweet, else
// topic+partition+offset, as Kafka Connect's sink does), so a replay
// rewrites the same documents.
//
// The answer of a bulk request is read item by item, as Logstash's
// output does: 429 (the cluster is busy) and 5xx are sent again with
// back-off; a 403 (a read-only index, a missing privilege) stops the
// pipeline with a message saying what to fix, never an endless silent
// retry; other 4xx (a mapping error) are the document's own fault and go
// to the dead-letter topic. A whole request that fails for 429, 5xx or
// the network is retried with back-off for as long as it takes.
package elasticsearch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/tidwall/gjson"

	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/sink/parts"
	"github.com/creek-pipeline/creek/internal/sink/retry"
)

func init() {
	pipeline.RegisterSink(pipeline.Plugin{
		Name: "elasticsearch",
		Doc:  "Indexes records into Elasticsearch or OpenSearch with the _bulk API; document ids from the record (the tweet id with --map tweet, else topic+partition+offset) make replays rewrite the same documents.",
		Options: []pipeline.Option{
			{Name: "url", Flag: "es-url", Env: []string{"CREEK_ES_URL"}, Type: pipeline.TypeString, Default: "http://localhost:9200",
				Doc: "Address of the cluster; several nodes separated by commas."},
			{Name: "index", Flag: "es-index", Type: pipeline.TypeString,
				Doc: "Index to write to (required). %Y, %m, %d and %H are the record's UTC date and hour, such as tweets-%Y.%m.%d (Logstash's logstash-%{+YYYY.MM.dd})."},
			{Name: "user", Flag: "es-user", Env: []string{"CREEK_ES_USER"}, Type: pipeline.TypeString, Doc: "User for HTTP basic authentication."},
			{Name: "password", Env: []string{"CREEK_ES_PASSWORD"}, Type: pipeline.TypeString, Secret: true,
				Doc: "The user's password: from CREEK_ES_PASSWORD or the YAML file, never a flag (flags show in the process list)."},
			{Name: "api-key", Env: []string{"CREEK_ES_API_KEY"}, Type: pipeline.TypeString, Secret: true,
				Doc: "An API key (the encoded form Elasticsearch returns) instead of a user: from CREEK_ES_API_KEY or the YAML file."},
			{Name: "create-index", Flag: "es-create-index", Type: pipeline.TypeBool,
				Doc: "Create each index when it is missing, with a mapping: for --map tweet created_at date, lang, hashtags and the ids keyword, text text, raw stored but not indexed."},
			{Name: "bulk-actions", Flag: "es-bulk-actions", Type: pipeline.TypeInt, Default: "1000", Doc: "Most documents in one bulk request."},
			{Name: "bulk-size", Flag: "es-bulk-size", Type: pipeline.TypeString, Default: "5MB", Doc: "Most bytes in one bulk request, such as 5MB."},
			{Name: "workers", Flag: "es-workers", Type: pipeline.TypeInt, Default: "4", Doc: "Bulk requests in flight at once."},
		},
		NewSink: func(v *pipeline.Values, env pipeline.Env) (pipeline.Sink, error) {
			size, err := pipeline.ParseSize(v.String("bulk-size"))
			if err != nil {
				return nil, fmt.Errorf("bulk-size: %w", err)
			}
			return Open(context.Background(), Config{
				URLs: strings.Split(v.String("url"), ","), Index: v.String("index"), User: v.String("user"), Password: v.String("password"),
				APIKey: v.String("api-key"), CreateIndex: v.Bool("create-index"), BulkActions: int(v.Int("bulk-actions")), BulkBytes: int(size),
				Workers: int(v.Int("workers")), Shape: env.Shape,
			}, env.Logger)
		},
	})
}

// Config is where the sink writes and how.
type Config struct {
	URLs        []string
	Index       string
	User        string
	Password    string
	APIKey      string
	CreateIndex bool
	BulkActions int
	BulkBytes   int
	Workers     int
	Shape       string
}

// Sink indexes batches.
type Sink struct {
	cfg     Config
	log     *slog.Logger
	client  *opensearch.Client
	index   indexName
	where   string
	mapping string // the index mapping for create-index

	created sync.Map // index name -> struct{}: created or found
	policy  retry.Policy
}

// Open connects and checks the cluster answers and takes the credentials.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Sink, error) {
	if cfg.Index == "" {
		return nil, errors.New("elasticsearch: no index given; use --es-index NAME (or index: in the output section)")
	}
	if cfg.BulkActions <= 0 {
		cfg.BulkActions = 1000
	}
	if cfg.BulkBytes <= 0 {
		cfg.BulkBytes = 5 << 20
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	var urls []string
	for _, u := range cfg.URLs {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, strings.TrimRight(u, "/"))
		}
	}
	s := &Sink{cfg: cfg, log: log, index: parseIndexName(cfg.Index), where: strings.Join(urls, ","), policy: retry.Default}
	if s.cfg.Shape == pipeline.ShapeTweet {
		s.mapping = tweetMapping
	} else {
		s.mapping = recordMapping
	}
	header := http.Header{}
	if cfg.APIKey != "" {
		header.Set("Authorization", "ApiKey "+cfg.APIKey)
	}
	client, err := opensearch.NewClient(opensearch.Config{
		Addresses: urls, Username: cfg.User, Password: cfg.Password, Header: header,
		DisableRetry: true, HealthCheckMaxRetries: -1, DiscoverNodesOnStart: new(false),
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: cfg.Workers * 2,
			IdleConnTimeout:     90 * time.Second,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("elasticsearch at %s: %w", s.where, err)
	}
	s.client = client
	if err := s.check(ctx); err != nil {
		client.Close()
		return nil, err
	}
	return s, nil
}

// check asks the cluster who it is, so that a wrong address or refused
// credentials show at start.
func (s *Sink) check(ctx context.Context) error {
	status, body, err := s.do(ctx, http.MethodGet, "/", nil)
	if err != nil {
		return fmt.Errorf("cannot reach Elasticsearch at %s: %v; check --es-url", s.where, rootCause(err))
	}
	if status != http.StatusOK {
		return s.refused(status, body, "")
	}
	name := gjson.GetBytes(body, "version.distribution").String()
	if name == "" {
		name = "elasticsearch"
	}
	s.log.Info("connected to the search cluster", "url", s.where, "distribution", name, "version", gjson.GetBytes(body, "version.number").String())
	return nil
}

// do sends one request and reads the answer.
func (s *Sink) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		if strings.HasSuffix(path, "_bulk") {
			req.Header.Set("Content-Type", "application/x-ndjson")
		}
	}
	resp, err := s.client.Stream(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// Write indexes a batch and returns once every document is indexed or
// refused alone (returned as a *pipeline.RejectedError).
func (s *Sink) Write(ctx context.Context, b *pipeline.Batch) error {
	docs, rejected, err := s.documents(b.Messages)
	if err != nil {
		return err
	}
	if s.cfg.CreateIndex {
		if err := s.createIndices(ctx, docs); err != nil {
			return err
		}
	}
	chunks := s.chunk(docs)
	return parts.Write(ctx, len(chunks), s.cfg.Workers, rejected, func(ctx context.Context, i int) ([]pipeline.Rejection, error) {
		return s.sendChunk(ctx, chunks[i])
	})
}

// doc is one bulk action: its action line and source, ready to send.
type doc struct {
	msg   int // index in the batch
	index string
	line  []byte // {"index":{...}}\n{source}\n
}

// chunk cuts the documents into bulk requests of at most BulkActions
// documents and BulkBytes bytes (a larger document goes alone).
func (s *Sink) chunk(docs []doc) [][]doc {
	var out [][]doc
	start, size := 0, 0
	for i, d := range docs {
		if i > start && (i-start >= s.cfg.BulkActions || size+len(d.line) > s.cfg.BulkBytes) {
			out = append(out, docs[start:i])
			start, size = i, 0
		}
		size += len(d.line)
	}
	if start < len(docs) {
		out = append(out, docs[start:])
	}
	return out
}

// sendChunk sends one bulk request and again, with back-off, the
// documents the cluster could not take yet, until all are indexed or
// refused alone.
func (s *Sink) sendChunk(ctx context.Context, docs []doc) ([]pipeline.Rejection, error) {
	var rejected []pipeline.Rejection
	pending := docs
	err := retry.Do(ctx, s.policy, s.log, "bulk request to Elasticsearch at "+s.where, retryable, func() error {
		again, rej, err := s.bulk(ctx, pending)
		rejected = append(rejected, rej...)
		if err != nil {
			return err
		}
		if len(again) > 0 {
			pending = again
			return &busyError{n: len(again), of: len(docs)}
		}
		return nil
	})
	return rejected, err
}

// busyError: the cluster took part of a bulk request and asked for the
// rest later (429 or 5xx items).
type busyError struct{ n, of int }

func (e *busyError) Error() string {
	return fmt.Sprintf("the cluster could not take %d of %d documents yet (429 or 5xx)", e.n, e.of)
}

// statusError is a whole bulk request answered with an error status.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

// fatalError stops the pipeline.
type fatalError struct{ msg string }

func (e *fatalError) Error() string { return e.msg }

func retryable(err error) bool {
	var fe *fatalError
	var se *statusError
	switch {
	case errors.As(err, &fe):
		return false
	case errors.As(err, &se):
		return se.status == http.StatusTooManyRequests || se.status >= 500
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	return true // the network, a broken answer
}

// bulk sends one bulk request and sorts its items: again (429, 5xx),
// rejected (other 4xx). A 403 on any item is fatal.
func (s *Sink) bulk(ctx context.Context, docs []doc) (again []doc, rejected []pipeline.Rejection, err error) {
	size := 0
	for _, d := range docs {
		size += len(d.line)
	}
	body := make([]byte, 0, size)
	for _, d := range docs {
		body = append(body, d.line...)
	}
	status, resp, err := s.do(ctx, http.MethodPost, "/_bulk", body)
	if err != nil {
		return nil, nil, err
	}
	if status != http.StatusOK {
		if status == http.StatusTooManyRequests || status >= 500 {
			return nil, nil, &statusError{status, fmt.Sprintf("Elasticsearch at %s answered %d: %s", s.where, status, errorReason(resp))}
		}
		return nil, nil, s.refused(status, resp, docs[0].index)
	}
	if !gjson.GetBytes(resp, "errors").Bool() {
		return nil, nil, nil
	}
	items := gjson.GetBytes(resp, "items").Array()
	if len(items) != len(docs) {
		return nil, nil, fmt.Errorf("Elasticsearch at %s answered %d items for %d documents", s.where, len(items), len(docs))
	}
	for i, it := range items {
		var res gjson.Result
		it.ForEach(func(_, v gjson.Result) bool { res = v; return false }) // {"index": {...}}
		st := int(res.Get("status").Int())
		switch {
		case st >= 200 && st < 300:
		case st == http.StatusTooManyRequests || st >= 500:
			again = append(again, docs[i])
		case st == http.StatusForbidden:
			return nil, nil, &fatalError{fmt.Sprintf("Elasticsearch at %s refused to write to index %s (403 %s: %s): the index is read-only (a full disk sets index.blocks.read_only_allow_delete; clear it once there is room) or the user lacks the index privilege; creek stops rather than retry this forever",
				s.where, docs[i].index, res.Get("error.type").String(), res.Get("error.reason").String())}
		case st == http.StatusNotFound && res.Get("error.type").String() == "index_not_found_exception":
			return nil, nil, &fatalError{fmt.Sprintf("Elasticsearch at %s: index %s does not exist and the cluster does not create indices on write: create it, or add --es-create-index", s.where, docs[i].index)}
		default:
			typ := res.Get("error.type").String()
			if typ == "" {
				typ = "http_" + strconv.Itoa(st)
			}
			rejected = append(rejected, pipeline.Rejection{Index: docs[i].msg, Class: typ,
				Err: fmt.Errorf("Elasticsearch refused the document for index %s (%d %s): %s", docs[i].index, st, typ, res.Get("error.reason").String())})
		}
	}
	return again, rejected, nil
}

// refused explains an answer that no retry will change.
func (s *Sink) refused(status int, body []byte, index string) error {
	reason := errorReason(body)
	switch status {
	case http.StatusUnauthorized:
		return &fatalError{fmt.Sprintf("Elasticsearch at %s refused the credentials (401: %s): check --es-user and CREEK_ES_PASSWORD, or CREEK_ES_API_KEY", s.where, reason)}
	case http.StatusForbidden:
		return &fatalError{fmt.Sprintf("Elasticsearch at %s refused the request (403: %s): give the user the index privileges on %s (create_index, index)", s.where, reason, index)}
	case http.StatusRequestEntityTooLarge:
		return &fatalError{fmt.Sprintf("Elasticsearch at %s refused a bulk request as too large (413): lower --es-bulk-size", s.where)}
	case http.StatusNotFound:
		return &fatalError{fmt.Sprintf("Elasticsearch at %s answered 404 (%s): check --es-url (the address of the cluster, without a path)", s.where, reason)}
	}
	return &fatalError{fmt.Sprintf("Elasticsearch at %s answered %d: %s", s.where, status, reason)}
}

// errorReason is the error's type and reason from an error answer.
func errorReason(body []byte) string {
	e := gjson.GetBytes(body, "error")
	switch {
	case e.IsObject():
		return e.Get("type").String() + ": " + e.Get("reason").String()
	case e.Exists():
		return e.String()
	}
	if len(body) > 200 {
		body = body[:200]
	}
	return strings.TrimSpace(string(body))
}

// createIndices creates the indices of a batch that were not seen yet.
func (s *Sink) createIndices(ctx context.Context, docs []doc) error {
	for _, d := range docs {
		if _, ok := s.created.Load(d.index); ok {
			continue
		}
		err := retry.Do(ctx, s.policy, s.log, "create index "+d.index+" in Elasticsearch at "+s.where, retryable, func() error {
			status, body, err := s.do(ctx, http.MethodPut, "/"+d.index, []byte(s.mapping))
			switch {
			case err != nil:
				return err
			case status == http.StatusOK:
				s.log.Info("created index", "index", d.index)
				return nil
			case status == http.StatusBadRequest && strings.Contains(gjson.GetBytes(body, "error.type").String(), "already_exists"):
				return nil
			case status == http.StatusTooManyRequests || status >= 500:
				return &statusError{status, fmt.Sprintf("create index %s: %d %s", d.index, status, errorReason(body))}
			}
			return s.refused(status, body, d.index)
		})
		if err != nil {
			return err
		}
		s.created.Store(d.index, struct{}{})
	}
	return nil
}

// Close releases the client.
func (s *Sink) Close() error { return s.client.Close() }

// rootCause is the innermost error, without the layers' prefixes.
func rootCause(err error) error {
	var ne *net.OpError
	if errors.As(err, &ne) {
		return ne.Err
	}
	return err
}
