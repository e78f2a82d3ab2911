// Package x is the X (Twitter) API v2 stream source: the filtered stream,
// whose rules it keeps in sync with the configuration, or the sample
// stream. It reconnects the way X's "handling disconnections" guide asks,
// drops posts re-sent after a reconnect, and passes every post on exactly
// as X sent it.
package x

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

func init() {
	pipeline.RegisterSource(pipeline.Plugin{
		Name: "x",
		Doc:  "Posts from the X (Twitter) API v2 filtered or sample stream.",
		Options: []pipeline.Option{
			{Name: "stream", Flag: "x-stream", Type: pipeline.TypeString, Default: "filter", Enum: []string{"filter", "sample"},
				Doc: "filter: posts matching the rules; sample: a random 1% of all posts."},
			{Name: "rules", Flag: "x-rule", Type: pipeline.TypeObject,
				Doc: "Filter rule, such as 'kafka lang:ko' (repeatable). In YAML a list of strings or of {value, tag}."},
			{Name: "keep-rules", Flag: "x-keep-rules", Type: pipeline.TypeBool,
				Doc: "Keep rules already on the stream that are not configured here (by default they are deleted)."},
			{Name: "bearer-token", Type: pipeline.TypeString, Env: []string{"X_BEARER_TOKEN", "TWITTER_BEARER_TOKEN"}, Secret: true,
				Doc: "App-only bearer token; from X_BEARER_TOKEN or TWITTER_BEARER_TOKEN when not in the file. Never logged."},
			{Name: "api-url", Flag: "x-api-url", Env: []string{"X_API_URL"}, Type: pipeline.TypeString, Default: "https://api.x.com",
				Doc: "Base URL of the X API (for proxies and tests)."},
			{Name: "tweet-fields", Flag: "x-tweet-fields", Type: pipeline.TypeString, Default: "created_at,lang,author_id,public_metrics",
				Doc: "tweet.fields to request."},
			{Name: "expansions", Flag: "x-expansions", Type: pipeline.TypeString, Default: "author_id", Doc: "expansions to request."},
			{Name: "user-fields", Flag: "x-user-fields", Type: pipeline.TypeString, Default: "username,name", Doc: "user.fields to request for expanded users."},
			{Name: "dedup-window", Type: pipeline.TypeInt, Default: "10000", Doc: "How many recent post ids are remembered to drop posts sent again after a reconnect."},
		},
		NewSource: New,
	})
}

// Rule is a filtered stream rule.
type Rule struct {
	ID    string `json:"id,omitempty"`
	Value string `json:"value"`
	Tag   string `json:"tag,omitempty"`
}

// UnmarshalYAML accepts a rule as a plain string or as {value, tag}.
func (r *Rule) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		r.Value = n.Value
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a rule is a string or {value, tag}", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "value":
			r.Value = v.Value
		case "tag":
			r.Tag = v.Value
		default:
			return fmt.Errorf("line %d: unknown rule key %q (known: value, tag)", k.Line, k.Value)
		}
	}
	if r.Value == "" {
		return fmt.Errorf("line %d: the rule has no value", n.Line)
	}
	return nil
}

// Source reads an X stream.
type Source struct {
	APIURL      string
	Token       string
	Sample      bool
	Rules       []Rule
	KeepRules   bool
	TweetFields string
	Expansions  string
	UserFields  string
	DedupWindow int

	Client *http.Client
	Logger *slog.Logger
	Stats  *pipeline.Stats

	// Policy is the reconnection policy (X's handling-disconnections guide).
	Policy Policy
	// Sleep waits between reconnection attempts; tests replace it to
	// observe the waits. It returns false if ctx ended first.
	Sleep func(ctx context.Context, d time.Duration) bool
	// Now is the clock (for the rate-limit reset header).
	Now func() time.Time
}

// Policy is how long to wait before reconnecting.
type Policy struct {
	Stall          time.Duration // no byte (not even a keep-alive) for this long means the stream stalled
	NetworkStep    time.Duration // network errors: back off linearly by this much per attempt...
	NetworkMax     time.Duration // ...up to this
	HTTPStart      time.Duration // HTTP errors: back off exponentially from this...
	HTTPMax        time.Duration // ...up to this
	RateLimitStart time.Duration // 429: back off exponentially from this (or until the reset time)
}

// DefaultPolicy is X's guidance: a keep-alive every 20 s, +250 ms up to 16 s
// for network errors, 5 s doubling up to 320 s for HTTP errors, one minute
// doubling for rate limiting.
var DefaultPolicy = Policy{
	Stall:          20 * time.Second,
	NetworkStep:    250 * time.Millisecond,
	NetworkMax:     16 * time.Second,
	HTTPStart:      5 * time.Second,
	HTTPMax:        320 * time.Second,
	RateLimitStart: time.Minute,
}

// ErrNoToken is returned when no bearer token is configured.
var ErrNoToken = errors.New("no X bearer token: set X_BEARER_TOKEN (or TWITTER_BEARER_TOKEN) to an app-only bearer token from the X developer portal")

// New builds the source from its options.
func New(v *pipeline.Values, env pipeline.Env) (pipeline.Source, error) {
	s := &Source{
		APIURL:      strings.TrimRight(v.String("api-url"), "/"),
		Token:       strings.TrimSpace(v.String("bearer-token")),
		Sample:      v.String("stream") == "sample",
		KeepRules:   v.Bool("keep-rules"),
		TweetFields: v.String("tweet-fields"),
		Expansions:  v.String("expansions"),
		UserFields:  v.String("user-fields"),
		DedupWindow: int(v.Int("dedup-window")),
		Logger:      env.Logger,
		Stats:       env.Stats,
	}
	if err := v.Decode("rules", &s.Rules); err != nil {
		return nil, err
	}
	if s.Token == "" {
		return nil, ErrNoToken
	}
	if !s.Sample && len(s.Rules) == 0 && !s.KeepRules {
		return nil, errors.New("the filtered stream needs rules: give --x-rule 'QUERY' (repeatable), or --x-keep-rules to use the rules already on the stream, or --x-stream sample")
	}
	return s, nil
}

func (s *Source) defaults() {
	if s.Client == nil {
		s.Client = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
		}}
	}
	if s.Policy == (Policy{}) {
		s.Policy = DefaultPolicy
	}
	if s.Sleep == nil {
		s.Sleep = func(ctx context.Context, d time.Duration) bool {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return true
			case <-ctx.Done():
				return false
			}
		}
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.Stats == nil {
		s.Stats = &pipeline.Stats{}
	}
	if s.DedupWindow <= 0 {
		s.DedupWindow = 10000
	}
}

// Run syncs the rules (filtered stream), then reads the stream until ctx
// ends, reconnecting as needed. It returns an error only for what retrying
// cannot fix: a refused token, a request X calls invalid.
func (s *Source) Run(ctx context.Context, out chan<- *pipeline.Batch) error {
	s.defaults()
	if !s.Sample {
		if err := s.syncRules(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return s.stream(ctx, out)
}
