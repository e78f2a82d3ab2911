// Package generate is the synthetic tweet source: posts in the exact JSON
// shape of the X API v2 stream, Korean and English mixed, from a pool of
// authors, with hashtags and matching rules. It is the tweet source when no
// X bearer token is set, so the pipeline runs offline, and it is the load
// generator of the pipeline benchmark. A --seed makes the sequence of posts
// repeatable.
package generate

import (
	"context"
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
	// created_at of the last millisecond formatted; a busy generator makes
	// hundreds of tweets in the same millisecond.
	lastMilli   int64
	lastCreated []byte
}

// New returns a generator.
func New(seed uint64) *Generator {
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return &Generator{rnd: rnd, nextID: 1860000000000000000 + rnd.Uint64N(1<<40), lastMilli: -1}
}

// post is one tweet as drawn from the corpus: everything random about it.
type post struct {
	id                         uint64
	author                     *author
	text                       *phrase
	topic, extra               *topic // extra is nil for one hashtag
	likes, replies, quotes, ex int    // ex: impressions beyond 20 a like
}

// draw makes the random choices of the next tweet.
func (g *Generator) draw() post {
	r := g.rnd
	g.nextID += 1 + r.Uint64N(1<<22)
	p := post{id: g.nextID, author: &authors[r.IntN(len(authors))]}
	switch n := r.IntN(100); {
	case n < 55:
		p.text = &korean[r.IntN(len(korean))]
	case n < 95:
		p.text = &english[r.IntN(len(english))]
	default:
		p.text = &japanese[r.IntN(len(japanese))]
	}
	p.topic = &topics[r.IntN(len(topics))]
	if r.IntN(3) == 0 {
		if extra := &topics[r.IntN(len(topics))]; extra.tag != p.topic.tag {
			p.extra = extra
		}
	}
	p.likes = int(r.ExpFloat64() * 8)
	p.replies = r.IntN(3)
	p.quotes = r.IntN(2)
	p.ex = r.IntN(200)
	return p
}

// Next returns the next tweet as a pipeline message: key = post id,
// value = the stream JSON, timestamp = created_at, a "rule" header per
// matching rule tag.
func (g *Generator) Next(now time.Time) pipeline.Message {
	p := g.draw()
	value, idStart, idEnd := g.appendJSON(make([]byte, 0, 768), &p, now) // tweets are 400–700 bytes
	return pipeline.Message{
		Key:       value[idStart:idEnd:idEnd], // the id inside the value; capped so appends copy
		Value:     value,
		Timestamp: now.Truncate(time.Millisecond),
		Headers:   []pipeline.Header{{Key: "rule", Value: p.topic.ruleHeader}},
	}
}

// Envelope returns the next tweet as a structure.
func (g *Generator) Envelope(now time.Time) tweet.Envelope {
	p := g.draw()
	return p.envelope(now)
}

func (p *post) envelope(now time.Time) tweet.Envelope {
	id := strconv.FormatUint(p.id, 10)
	text := p.text.text + " #" + p.topic.tag
	if p.extra != nil {
		text += " #" + p.extra.tag
	}
	return tweet.Envelope{
		Data: tweet.Post{
			ID:        id,
			Text:      text,
			CreatedAt: now.UTC().Format(tweet.TimeFormat),
			Lang:      p.text.lang,
			AuthorID:  p.author.id,
			PublicMetrics: &tweet.Metrics{
				LikeCount:       p.likes,
				RetweetCount:    p.likes / 3,
				ReplyCount:      p.replies,
				QuoteCount:      p.quotes,
				ImpressionCount: p.likes*20 + p.ex,
			},
			EditHistory: []string{id},
		},
		Includes:      &tweet.Includes{Users: []tweet.User{{ID: p.author.id, Name: p.author.name, Username: p.author.handle}}},
		MatchingRules: []tweet.RuleRef{{ID: p.topic.ruleID, Tag: p.topic.rule}},
	}
}

// appendJSON appends the post as encoding/json encodes its envelope (a test
// checks they agree byte for byte), several times faster: the corpus' JSON
// pieces are encoded once, at start. It returns where the id's digits are.
func (g *Generator) appendJSON(b []byte, p *post, now time.Time) (_ []byte, idStart, idEnd int) {
	b = append(b, `{"data":{"id":"`...)
	idStart = len(b)
	b = strconv.AppendUint(b, p.id, 10)
	idEnd = len(b)
	b = append(b, `","text":`...)
	// JSON escapes character by character, so the text's literal is the
	// phrase's literal and each hashtag's, joined.
	b = append(b, p.text.openJSON...)
	b = append(b, p.topic.hashJSON...)
	if p.extra != nil {
		b = append(b, p.extra.hashJSON...)
	}
	b = append(b, `","created_at":"`...)
	b = append(b, g.created(now)...)
	b = append(b, `","lang":"`...)
	b = append(b, p.text.lang...)
	b = append(b, `","author_id":"`...)
	b = append(b, p.author.id...)
	b = append(b, `","public_metrics":{"retweet_count":`...)
	b = strconv.AppendInt(b, int64(p.likes/3), 10)
	b = append(b, `,"reply_count":`...)
	b = strconv.AppendInt(b, int64(p.replies), 10)
	b = append(b, `,"like_count":`...)
	b = strconv.AppendInt(b, int64(p.likes), 10)
	b = append(b, `,"quote_count":`...)
	b = strconv.AppendInt(b, int64(p.quotes), 10)
	b = append(b, `,"bookmark_count":0,"impression_count":`...)
	b = strconv.AppendInt(b, int64(p.likes*20+p.ex), 10)
	b = append(b, `},"edit_history_tweet_ids":["`...)
	b = append(b, b[idStart:idEnd]...)
	b = append(b, `"]},"includes":{"users":[`...)
	b = append(b, p.author.userJSON...)
	b = append(b, `]},"matching_rules":[`...)
	b = append(b, p.topic.ruleJSON...)
	return append(b, "]}"...), idStart, idEnd
}

// created returns now as created_at, formatted once per millisecond.
func (g *Generator) created(now time.Time) []byte {
	if ms := now.UnixMilli(); ms != g.lastMilli {
		g.lastMilli = ms
		g.lastCreated = now.UTC().AppendFormat(g.lastCreated[:0], tweet.TimeFormat)
	}
	return g.lastCreated
}
