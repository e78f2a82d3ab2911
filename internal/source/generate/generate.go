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
}

// New returns a generator.
func New(seed uint64) *Generator {
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return &Generator{rnd: rnd, nextID: 1860000000000000000 + rnd.Uint64N(1<<40)}
}

// Next returns the next tweet as a pipeline message: key = post id,
// value = the stream JSON, timestamp = created_at, a "rule" header per
// matching rule tag.
func (g *Generator) Next(now time.Time) pipeline.Message {
	e := g.Envelope(now)
	value, _ := json.Marshal(e)
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
