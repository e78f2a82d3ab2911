package dashboard

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/tidwall/gjson"
	"github.com/twmb/franz-go/pkg/kgo"
)

// analytics is the seed's dashboard: tweets per minute by language, top
// hashtags and top authors over a sliding window, computed by the
// dashboard's own consumer group (AnalyticsGroup) on the tweet topic. It
// is a consumer like any other: it commits its own offsets and never holds
// the pipeline's partitions. At start it reads from the window's beginning
// when the group has nothing committed. It yields to the pipeline: after
// each batch it rests analyticsRest times as long as the batch took, so it
// uses a fraction of a core at most and, on a machine the pipeline keeps
// busy, falls behind (its lag shows on the groups page) instead of slowing
// the pipeline down; and while the machine has no spare CPU it waits for
// some (yieldToMachine), so the pipeline keeps the cores it uses.
type analytics struct {
	s       *Server
	mu      sync.Mutex
	topic   string
	err     string
	minutes map[int64]*minuteBucket // by the minute's start, Unix ms
	others  int64                   // records in the window that are not tweets
}

// analyticsRest is how many times a batch's processing time the analytics
// wait before the next poll.
const analyticsRest = 4

type minuteBucket struct {
	total   int
	langs   map[string]int
	tags    map[string]int
	authors map[string]int
}

func newAnalytics(s *Server) *analytics {
	return &analytics{s: s, minutes: map[int64]*minuteBucket{}}
}

func (a *analytics) run(ctx context.Context) {
	topic := ""
	for topic == "" { // wait for the tweet topic to exist
		if topic = a.s.defaultTopic(); topic != "" {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	a.mu.Lock()
	a.topic = topic
	a.mu.Unlock()
	cl, err := kgo.NewClient(a.s.cfg.clientOpts(
		kgo.ConsumerGroup(AnalyticsGroup),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(time.Now().Add(-a.s.cfg.Window).UnixMilli())),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.FetchMaxBytes(1<<20), // small fetches, so resting between them bounds the work
		kgo.MaxConcurrentFetches(1),
		kgo.ClientID("creek-dashboard-analytics"),
	)...)
	if err != nil {
		a.setErr(err.Error())
		return
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		cl.CommitUncommittedOffsets(cctx)
		cl.LeaveGroupContext(cctx)
		cl.Close()
	}()
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		began := time.Now()
		ferr := ""
		fetches.EachError(func(t string, p int32, err error) { ferr = err.Error() })
		var counted []tweetFields
		fetches.EachRecord(func(r *kgo.Record) { counted = append(counted, readTweetFields(r)) })
		a.mu.Lock()
		a.err = ferr
		for _, t := range counted {
			a.add(t)
		}
		a.expire(time.Now())
		a.mu.Unlock()
		if !yieldToMachine(ctx, analyticsRest*time.Since(began)) {
			return
		}
	}
}

func (a *analytics) setErr(msg string) {
	a.mu.Lock()
	a.err = msg
	a.mu.Unlock()
}

// tweetFields is what the analytics count of a record.
type tweetFields struct {
	at       time.Time
	tweet    bool
	lang     string
	author   string
	hashtags []string
}

// readTweetFields picks the fields out of a post in the X API's shape
// with gjson, without decoding the whole object.
func readTweetFields(r *kgo.Record) tweetFields {
	f := tweetFields{at: r.Timestamp}
	if len(r.Value) == 0 || r.Value[0] != '{' {
		return f
	}
	v := gjson.GetManyBytes(r.Value, "data.id", "data.text", "data.lang", "data.author_id", "includes.users")
	if v[0].String() == "" || v[1].String() == "" {
		return f
	}
	f.tweet, f.lang, f.author, f.hashtags = true, v[2].String(), v[3].String(), hashtags(v[1].String())
	v[4].ForEach(func(_, u gjson.Result) bool {
		if u.Get("id").String() == f.author {
			f.author = "@" + u.Get("username").String()
			return false
		}
		return true
	})
	return f
}

// add counts one record; a.mu is held.
func (a *analytics) add(t tweetFields) {
	if time.Since(t.at) > a.s.cfg.Window {
		return
	}
	if !t.tweet {
		a.others++
		return
	}
	minute := t.at.Truncate(time.Minute).UnixMilli()
	b := a.minutes[minute]
	if b == nil {
		b = &minuteBucket{langs: map[string]int{}, tags: map[string]int{}, authors: map[string]int{}}
		a.minutes[minute] = b
	}
	b.total++
	lang := t.lang
	if lang == "" {
		lang = "und"
	}
	b.langs[lang]++
	b.authors[t.author]++
	for _, tag := range t.hashtags {
		b.tags[tag]++
	}
}

// expire drops the minutes that left the window; a.mu is held.
func (a *analytics) expire(now time.Time) {
	oldest := now.Add(-a.s.cfg.Window).Truncate(time.Minute).UnixMilli()
	for m := range a.minutes {
		if m < oldest {
			delete(a.minutes, m)
		}
	}
}

type analyticsView struct {
	Topic         string         `json:"topic"`
	Group         string         `json:"group"`
	WindowMinutes int            `json:"window_minutes"`
	Tweets        int            `json:"tweets"` // in the window
	Others        int64          `json:"other_records"`
	PerMinute     []minuteView   `json:"per_minute"` // oldest first, one per minute of the window
	Languages     []countedValue `json:"languages"`
	Hashtags      []countedValue `json:"top_hashtags"`
	Authors       []countedValue `json:"top_authors"`
	Error         string         `json:"error,omitempty"`
	Disabled      bool           `json:"disabled,omitempty"`
}

type minuteView struct {
	At    int64          `json:"t"` // Unix ms of the minute's start
	Total int            `json:"total"`
	Langs map[string]int `json:"langs"`
}

type countedValue struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

const topN = 10

func (a *analytics) view() analyticsView {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	a.expire(now)
	v := analyticsView{Topic: a.topic, Group: AnalyticsGroup, WindowMinutes: int(a.s.cfg.Window / time.Minute), Others: a.others, Error: a.err,
		PerMinute: []minuteView{}, Disabled: a.s.cfg.NoAnalytics}
	langs, tags, authors := map[string]int{}, map[string]int{}, map[string]int{}
	first := now.Add(-a.s.cfg.Window).Truncate(time.Minute).Add(time.Minute)
	for m := first; !m.After(now); m = m.Add(time.Minute) {
		mv := minuteView{At: m.UnixMilli(), Langs: map[string]int{}}
		if b := a.minutes[m.UnixMilli()]; b != nil {
			mv.Total = b.total
			v.Tweets += b.total
			for k, n := range b.langs {
				mv.Langs[k] = n
				langs[k] += n
			}
			for k, n := range b.tags {
				tags[k] += n
			}
			for k, n := range b.authors {
				authors[k] += n
			}
		}
		v.PerMinute = append(v.PerMinute, mv)
	}
	v.Languages, v.Hashtags, v.Authors = top(langs, 0), top(tags, topN), top(authors, topN)
	return v
}

// top sorts counts, largest first (ties by value), keeping n (0: all).
func top(m map[string]int, n int) []countedValue {
	out := make([]countedValue, 0, len(m))
	for k, c := range m {
		out = append(out, countedValue{k, c})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Count > out[j].Count || out[i].Count == out[j].Count && out[i].Value < out[j].Value
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}
