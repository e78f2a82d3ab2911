package processor

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/source/generate"
	"github.com/creek-pipeline/creek/internal/tweet"
)

// tweets makes n generated posts as the Kafka source hands them over.
func tweets(n int) []pipeline.Message {
	g := generate.New(7)
	start := time.Date(2026, 4, 11, 9, 0, 0, 0, time.UTC)
	out := make([]pipeline.Message, n)
	for i := range out {
		out[i] = g.Next(start.Add(time.Duration(i) * time.Second))
		out[i].Topic, out[i].Partition, out[i].Offset = "tweets", int32(i%3), int64(i)
	}
	return out
}

func mustFilter(t *testing.T, src string) *Filter {
	t.Helper()
	f, err := NewFilter(src)
	if err != nil {
		t.Fatalf("NewFilter(%s): %v", src, err)
	}
	return f
}

// keep runs a filter over copies of msgs and returns the indexes kept.
func keep(t *testing.T, f *Filter, msgs []pipeline.Message) []int {
	t.Helper()
	var kept []int
	for i := range msgs {
		m := msgs[i]
		ok, err := f.Process(&m)
		if err != nil {
			t.Fatalf("%s on message %d: %v", f.Stage(), i, err)
		}
		if ok {
			kept = append(kept, i)
		}
	}
	return kept
}

// The examples, each checked against the same question answered
// by decoding the post with encoding/json.
func TestFilterExamples(t *testing.T) {
	msgs := tweets(300)
	posts := make([]tweet.Envelope, len(msgs))
	for i, m := range msgs {
		var ok bool
		if posts[i], ok = tweet.Parse(m.Value); !ok {
			t.Fatalf("generated message %d is not a post", i)
		}
	}
	want := func(pred func(i int, p *tweet.Envelope) bool) []int {
		var out []int
		for i := range posts {
			if pred(i, &posts[i]) {
				out = append(out, i)
			}
		}
		return out
	}
	cases := []struct {
		expr string
		want []int
	}{
		{`value.data.lang == "ko"`, want(func(_ int, p *tweet.Envelope) bool { return p.Data.Lang == "ko" })},
		{`value.data.text contains "#kafka"`, want(func(_ int, p *tweet.Envelope) bool { return strings.Contains(p.Data.Text, "#kafka") })},
		{`value["data"]["lang"] in ["en", "ja"]`, want(func(_ int, p *tweet.Envelope) bool { return p.Data.Lang == "en" || p.Data.Lang == "ja" })},
		{`value.data.public_metrics.like_count >= 10 and value?.includes?.users[0].username != ""`,
			want(func(_ int, p *tweet.Envelope) bool { return p.Data.PublicMetrics.LikeCount >= 10 })},
		{`headers.rule == "data" && partition == 1`, want(func(i int, p *tweet.Envelope) bool { return p.MatchingRules[0].Tag == "data" && i%3 == 1 })},
		{`key == value.data.id and topic == "tweets" and offset < 100`, want(func(i int, _ *tweet.Envelope) bool { return i < 100 })},
		{`timestamp >= date("2026-04-11T09:02:00Z")`, want(func(i int, _ *tweet.Envelope) bool { return i >= 120 })},
		{`len(value.data.edit_history_tweet_ids) == 1 and value.data.edit_history_tweet_ids[0] == value.data.id`, want(func(int, *tweet.Envelope) bool { return true })},
		{`value.data.no.such.field == nil`, want(func(int, *tweet.Envelope) bool { return true })},
		{`any(value.matching_rules, .tag == "kafka")`, want(func(_ int, p *tweet.Envelope) bool { return p.MatchingRules[0].Tag == "kafka" })},
	}
	for _, c := range cases {
		if len(c.want) == 0 || len(c.want) == len(msgs) && !strings.Contains(c.expr, "nil") && !strings.Contains(c.expr, "edit_history") {
			t.Fatalf("%s: the case keeps %d of %d, which tests nothing", c.expr, len(c.want), len(msgs))
		}
		if got := keep(t, mustFilter(t, c.expr), msgs); !slices.Equal(got, c.want) {
			t.Errorf("%s kept %d records, want %d (first kept %v, want %v)", c.expr, len(got), len(c.want), head(got), head(c.want))
		}
	}
}

func head(s []int) []int { return s[:min(5, len(s))] }

// Dropping retweets, in the X API's two ways of saying so.
func TestFilterDropsRetweets(t *testing.T) {
	msgs := []pipeline.Message{
		{Value: []byte(`{"data":{"id":"1","text":"hello"}}`)},
		{Value: []byte(`{"data":{"id":"2","text":"RT @creek: hello","referenced_tweets":[{"type":"retweeted","id":"1"}]}}`)},
		{Value: []byte(`{"data":{"id":"3","text":"a reply","referenced_tweets":[{"type":"replied_to","id":"1"}]}}`)},
		{Value: []byte(`{"data":{"id":"4","text":"RT @creek: old style"}}`)},
	}
	byText := mustFilter(t, `not (value.data.text startsWith "RT @")`)
	if got := keep(t, byText, msgs); !slices.Equal(got, []int{0, 2}) {
		t.Fatalf("startsWith kept %v", got)
	}
	byRef := mustFilter(t, `none(value.data.referenced_tweets ?? [], .type == "retweeted")`)
	if got := keep(t, byRef, msgs); !slices.Equal(got, []int{0, 2, 3}) {
		t.Fatalf("referenced_tweets kept %v", got)
	}
}

// A map expression builds a new value from fields; a string result is
// text, other results are JSON.
func TestMapBuildsValue(t *testing.T) {
	m := tweets(1)[0]
	post, _ := tweet.Parse(m.Value)
	mp, err := NewMap(`{"id": value.data.id, "who": value.includes.users[0].username, "chars": len(value.data.text), "rule": headers.rule, "at": offset}`)
	if err != nil {
		t.Fatal(err)
	}
	orig := string(m.Value)
	if ok, err := mp.Process(&m); !ok || err != nil {
		t.Fatalf("Process: %v %v", ok, err)
	}
	var got map[string]any
	if err := json.Unmarshal(m.Value, &got); err != nil {
		t.Fatalf("map gave %q: %v", m.Value, err)
	}
	user, _ := post.Author()
	want := map[string]any{"id": post.Data.ID, "who": user.Username, "chars": float64(len([]rune(post.Data.Text))), "rule": post.MatchingRules[0].Tag, "at": float64(0)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("map gave %v, want %v", got, want)
	}
	if ml, _ := NewMap(`upper(value.data.lang) + ":" + value.data.id`); ml != nil {
		m2 := pipeline.Message{Value: []byte(orig)}
		ml.Process(&m2)
		if string(m2.Value) != strings.ToUpper(post.Data.Lang)+":"+post.Data.ID {
			t.Fatalf("string map gave %q", m2.Value)
		}
	}
}

// A value that is not JSON is a string, and paths into it are nil. A
// path reads its field and does not check the rest of the document.
func TestNonJSONValue(t *testing.T) {
	msgs := []pipeline.Message{{Value: []byte("hello world")}, {Value: []byte(`{"a":1}`)}, {Value: []byte(`{"a":1`)}, {Value: []byte(`a: 1`)}}
	if got := keep(t, mustFilter(t, `type(value) == "string" and value startsWith "hello"`), msgs); !slices.Equal(got, []int{0}) {
		t.Fatalf("kept %v", got)
	}
	if got := keep(t, mustFilter(t, `value.a == 1`), msgs); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("value.a == 1 kept %v", got)
	}
	if got := keep(t, mustFilter(t, `len(value) == 1`), msgs); !slices.Equal(got, []int{1}) {
		t.Fatalf("len(value) == 1 kept %v: the value used whole is decoded whole, and broken JSON is a string", got)
	}
	if got := keep(t, mustFilter(t, `key == nil and headers == {}`), msgs); len(got) != len(msgs) {
		t.Fatalf("kept %v", got)
	}
}

// Mistakes in an expression are found when it is compiled, with the
// names a record has.
func TestCompileErrors(t *testing.T) {
	for src, want := range map[string]string{
		`vlaue.data.lang == "ko"`: "unknown name vlaue",
		`value.data.lang ==`:      "unexpected token",
		`len(value.data.text)`:    "expected bool",
	} {
		_, err := NewFilter(src)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "key, value, headers") {
			t.Errorf("NewFilter(%s) = %v, want an error with %q and the record's names", src, err, want)
		}
	}
	if _, err := pipeline.NewProcessor("grep", "x"); err == nil || !strings.Contains(err.Error(), "filter, map") {
		t.Errorf("unknown kind: %v", err)
	}
}

// An expression that fails on one record is that record's error, with a
// class for the dead-letter headers; the next record is evaluated afresh.
func TestEvalErrorIsPerRecord(t *testing.T) {
	f := mustFilter(t, `len(value.data.text) > 2`)
	bad := pipeline.Message{Value: []byte(`{"data":{"id":"1"}}`)}
	_, err := f.Process(&bad)
	var pe *Error
	if !errors.As(err, &pe) || pe.ErrorClass() != ClassEval {
		t.Fatalf("Process on a post without text = %v, want an EvalError", err)
	}
	good := pipeline.Message{Value: []byte(`{"data":{"id":"2","text":"RT @x"}}`)}
	if ok, err := f.Process(&good); !ok || err != nil {
		t.Fatalf("the next record: %v %v", ok, err)
	}
	// A condition that gives something else than true or false.
	_, err = mustFilter(t, `value.data.id`).Process(&good)
	if !errors.As(err, &pe) || pe.Class != ClassEval {
		t.Fatalf("a filter giving a string: %v", err)
	}
}

func TestTweetMap(t *testing.T) {
	m := tweets(1)[0]
	orig := m
	post, _ := tweet.Parse(m.Value)
	if ok, err := (TweetMap{}).Process(&m); !ok || err != nil {
		t.Fatalf("Process: %v %v", ok, err)
	}
	var flat struct {
		ID, Lang, Text string
		CreatedAt      *string `json:"created_at"`
		AuthorID       string  `json:"author_id"`
		Username       string
		Hashtags       []string
		Raw            json.RawMessage
	}
	if err := json.Unmarshal(m.Value, &flat); err != nil {
		t.Fatalf("tweet map gave %s: %v", m.Value, err)
	}
	user, _ := post.Author()
	if flat.ID != post.Data.ID || string(m.Key) != post.Data.ID || flat.Lang != post.Data.Lang || flat.Text != post.Data.Text ||
		flat.AuthorID != post.Data.AuthorID || flat.Username != user.Username || flat.CreatedAt == nil || *flat.CreatedAt != post.Data.CreatedAt {
		t.Fatalf("flat %+v from %+v", flat, post.Data)
	}
	if len(flat.Hashtags) == 0 || !strings.Contains(post.Data.Text, "#"+flat.Hashtags[0]) {
		t.Fatalf("hashtags %v of %q", flat.Hashtags, post.Data.Text)
	}
	if string(flat.Raw) != string(orig.Value) {
		t.Fatalf("raw %s, want the original %s", flat.Raw, orig.Value)
	}
	back, err := DecodeTweet(m.Value)
	if err != nil || back.ID != flat.ID || back.Text != flat.Text || !slices.Equal(back.Hashtags, flat.Hashtags) || string(back.Raw) != string(orig.Value) ||
		back.CreatedAt.Format(TimeLayout) != post.Data.CreatedAt {
		t.Fatalf("DecodeTweet = %+v, %v", back, err)
	}
	// A filter after the mapping sees the flat fields.
	if got := keep(t, mustFilter(t, `"kafka" in value.hashtags or value.lang == "ko" or value.username != ""`), []pipeline.Message{m}); len(got) != 1 {
		t.Fatal("a filter over the flat fields did not match")
	}
}

func TestTweetMapErrors(t *testing.T) {
	for value, class := range map[string]string{
		`{"data":{"id":"1","text":"cut`:                           ClassNotJSON,
		`not json at all`:                                         ClassNotJSON,
		`{"id":"1","text":"flat already"}`:                        ClassNotTweet,
		`{"data":{"id":"1","text":"x","created_at":"yesterday"}}`: ClassBadValue,
	} {
		m := pipeline.Message{Value: []byte(value)}
		_, err := (TweetMap{}).Process(&m)
		var pe *Error
		if !errors.As(err, &pe) || pe.Class != class {
			t.Errorf("%s: %v, want class %s", value, err, class)
		}
		if string(m.Value) != value {
			t.Errorf("a failed mapping changed the value to %s", m.Value)
		}
	}
}

func TestHashtags(t *testing.T) {
	for text, want := range map[string][]string{
		"카프카 스터디 #카프카 #kafka #카프카":          {"카프카", "kafka"},
		"no tags, not#this, &#39; #123 #1a": {"1a"},
		"#start and end #end.":              {"start", "end"},
		"full width ＃데이터":                   {"데이터"},
	} {
		if got := Hashtags(text); !slices.Equal(got, want) {
			t.Errorf("Hashtags(%q) = %q, want %q", text, got, want)
		}
	}
	m := pipeline.Message{Value: []byte(`{"data":{"id":"9","text":"#a #b","entities":{"hashtags":[{"start":0,"end":2,"tag":"A"}]}}}`)}
	(TweetMap{}).Process(&m)
	if tw, _ := DecodeTweet(m.Value); !slices.Equal(tw.Hashtags, []string{"A"}) {
		t.Errorf("with entities, hashtags %q, want the API's [A]", tw.Hashtags)
	}
}
