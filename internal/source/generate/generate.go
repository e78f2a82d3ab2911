// Package generate is the synthetic tweet source: posts in the exact JSON
// shape of the X API v2 stream, Korean and English mixed, from a pool of
// authors, with hashtags and matching rules. It is the tweet source when no
// X bearer token is set, so the pipeline runs offline, and it is the load
// generator of the pipeline benchmark. A --seed makes the sequence of posts
// repeatable.
package generate

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/tweet"
)

func init() {
	pipeline.RegisterSource(pipeline.Plugin{
		Name: "generate",
		Doc:  "Synthetic tweets in the X API v2 stream's JSON shape (Korean and English), for running offline and for load tests.",
		Options: []pipeline.Option{
			{Name: "rate", Flag: "rate", Type: pipeline.TypeInt, Default: "5", Doc: "Tweets per second; 0 for as fast as the pipeline takes them."},
			{Name: "count", Flag: "count", Type: pipeline.TypeInt, Default: "0", Doc: "Stop after this many tweets; 0 for no end."},
			{Name: "seed", Flag: "seed", Type: pipeline.TypeInt, Doc: "Seed of the random sequence: the same seed gives the same tweets. Random when not set."},
		},
		NewSource: func(v *pipeline.Values, env pipeline.Env) (pipeline.Source, error) {
			if v.Int("rate") < 0 || v.Int("count") < 0 {
				return nil, fmt.Errorf("rate and count must not be negative")
			}
			seed := uint64(v.Int("seed"))
			if !v.Given("seed") {
				seed = uint64(time.Now().UnixNano())
			}
			return &Source{Rate: int(v.Int("rate")), Count: v.Int("count"), gen: New(seed)}, nil
		},
	})
}

// Source emits generated tweets.
type Source struct {
	Rate  int   // per second, 0: unlimited
	Count int64 // 0: unlimited
	gen   *Generator
}

// maxBatch bounds a batch when generating as fast as possible.
const maxBatch = 2000

// Run emits tweets at the configured rate until ctx ends or Count is reached.
func (s *Source) Run(ctx context.Context, out chan<- *pipeline.Batch) error {
	var sent int64
	remaining := func() int {
		if s.Count == 0 {
			return maxBatch
		}
		return int(min(int64(maxBatch), s.Count-sent))
	}
	emit := func(n int) bool {
		b := &pipeline.Batch{Messages: make([]pipeline.Message, n)}
		for i := range b.Messages {
			b.Messages[i] = s.gen.Next(time.Now())
		}
		sent += int64(n)
		return pipeline.Send(ctx, out, b)
	}
	if s.Rate == 0 {
		for n := remaining(); n > 0; n = remaining() {
			if !emit(n) {
				return nil
			}
		}
		return nil
	}
	// Emit on a steady tick; at high rates several tweets per tick.
	tick := max(time.Second/time.Duration(s.Rate), 10*time.Millisecond)
	perTick := float64(s.Rate) * tick.Seconds()
	t := time.NewTicker(tick)
	defer t.Stop()
	owed := 1.0 // the first tweet goes out at once
	for {
		if n := min(int(owed), remaining()); n > 0 {
			owed -= float64(n)
			if !emit(n) {
				return nil
			}
		}
		if remaining() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			owed += perTick
		}
	}
}

// Generator makes tweets; the same seed makes the same sequence.
type Generator struct {
	rnd    *rand.Rand
	nextID uint64
	quoted map[string][]byte // JSON string literals of the corpus' strings
}

// New returns a generator.
func New(seed uint64) *Generator {
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return &Generator{rnd: rnd, nextID: 1860000000000000000 + rnd.Uint64N(1<<40), quoted: map[string][]byte{}}
}

// Next returns the next tweet as a pipeline message: key = post id,
// value = the stream JSON, timestamp = created_at, a "rule" header per
// matching rule tag.
func (g *Generator) Next(now time.Time) pipeline.Message {
	e := g.Envelope(now)
	value := g.appendJSON(make([]byte, 0, 512), &e)
	m := pipeline.Message{Key: []byte(e.Data.ID), Value: value, Timestamp: now.Truncate(time.Millisecond)}
	for _, r := range e.MatchingRules {
		m.Headers = append(m.Headers, pipeline.Header{Key: "rule", Value: []byte(r.Tag)})
	}
	return m
}

// Envelope returns the next tweet.
func (g *Generator) Envelope(now time.Time) tweet.Envelope {
	r := g.rnd
	g.nextID += 1 + r.Uint64N(1<<22)
	id := strconv.FormatUint(g.nextID, 10)
	a := authors[r.IntN(len(authors))]
	authorID := strconv.Itoa(5000 + a.n)

	var text, lang string
	switch p := r.IntN(100); {
	case p < 55:
		text, lang = korean[r.IntN(len(korean))], "ko"
	case p < 95:
		text, lang = english[r.IntN(len(english))], "en"
	default:
		text, lang = japanese[r.IntN(len(japanese))], "ja"
	}
	topic := topics[r.IntN(len(topics))]
	text += " #" + topic.tag
	if r.IntN(3) == 0 {
		extra := topics[r.IntN(len(topics))]
		if extra.tag != topic.tag {
			text += " #" + extra.tag
		}
	}
	likes := int(r.ExpFloat64() * 8)
	return tweet.Envelope{
		Data: tweet.Post{
			ID:        id,
			Text:      text,
			CreatedAt: now.UTC().Format(tweet.TimeFormat),
			Lang:      lang,
			AuthorID:  authorID,
			PublicMetrics: &tweet.Metrics{
				LikeCount:       likes,
				RetweetCount:    likes / 3,
				ReplyCount:      r.IntN(3),
				QuoteCount:      r.IntN(2),
				ImpressionCount: likes*20 + r.IntN(200),
			},
			EditHistory: []string{id},
		},
		Includes:      &tweet.Includes{Users: []tweet.User{{ID: authorID, Name: a.name, Username: a.handle}}},
		MatchingRules: []tweet.RuleRef{{ID: topic.ruleID, Tag: topic.rule}},
	}
}

// appendJSON appends e as encoding/json would encode it (a test checks
// they agree byte for byte), several times faster: generated envelopes
// always have the same fields, and their strings come from a small corpus
// whose JSON literals are made once by encoding/json and then reused.
func (g *Generator) appendJSON(b []byte, e *tweet.Envelope) []byte {
	d, m := &e.Data, e.Data.PublicMetrics
	b = append(b, `{"data":{"id":`...)
	b = g.appendString(b, d.ID)
	b = append(b, `,"text":`...)
	b = g.appendString(b, d.Text)
	b = append(b, `,"created_at":`...)
	b = g.appendString(b, d.CreatedAt)
	b = append(b, `,"lang":`...)
	b = g.appendString(b, d.Lang)
	b = append(b, `,"author_id":`...)
	b = g.appendString(b, d.AuthorID)
	b = append(b, `,"public_metrics":{"retweet_count":`...)
	b = strconv.AppendInt(b, int64(m.RetweetCount), 10)
	b = append(b, `,"reply_count":`...)
	b = strconv.AppendInt(b, int64(m.ReplyCount), 10)
	b = append(b, `,"like_count":`...)
	b = strconv.AppendInt(b, int64(m.LikeCount), 10)
	b = append(b, `,"quote_count":`...)
	b = strconv.AppendInt(b, int64(m.QuoteCount), 10)
	b = append(b, `,"bookmark_count":`...)
	b = strconv.AppendInt(b, int64(m.BookmarkCount), 10)
	b = append(b, `,"impression_count":`...)
	b = strconv.AppendInt(b, int64(m.ImpressionCount), 10)
	b = append(b, `},"edit_history_tweet_ids":[`...)
	for i, id := range d.EditHistory {
		if i > 0 {
			b = append(b, ',')
		}
		b = g.appendString(b, id)
	}
	b = append(b, `]},"includes":{"users":[`...)
	for i, u := range e.Includes.Users {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = g.appendString(b, u.ID)
		b = append(b, `,"name":`...)
		b = g.appendString(b, u.Name)
		b = append(b, `,"username":`...)
		b = g.appendString(b, u.Username)
		b = append(b, '}')
	}
	b = append(b, `]},"matching_rules":[`...)
	for i, r := range e.MatchingRules {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = g.appendString(b, r.ID)
		b = append(b, `,"tag":`...)
		b = g.appendString(b, r.Tag)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendString appends s as a JSON string. Digits and the timestamp need no
// escaping; other strings are the corpus' and are quoted once.
func (g *Generator) appendString(b []byte, s string) []byte {
	if plainJSON(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, ok := g.quoted[s]
	if !ok {
		q, _ = json.Marshal(s)
		g.quoted[s] = q
	}
	return append(b, q...)
}

// plainJSON reports whether s is made only of characters encoding/json
// writes as they are and that are common in ids and times.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || c == '-' || c == ':' || c == '.' || c == 'T' || c == 'Z') {
			return false
		}
	}
	return true
}
