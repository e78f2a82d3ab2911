package dashboard

import (
	"encoding/json"
	"unicode"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/internal/recordjson"
	"github.com/creek-pipeline/creek/internal/tweet"
)

// Record is a Kafka record as the API gives it: the value as JSON when it
// is JSON, else as a string; Tweet is set when the value is a post in the
// X API's shape.
type Record struct {
	Topic     string          `json:"topic"`
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Timestamp string          `json:"timestamp"`
	Key       *string         `json:"key"`
	Value     json.RawMessage `json:"value"`
	Headers   []Header        `json:"headers"`
	Tweet     *Tweet          `json:"tweet,omitempty"`
}

// Header is a record header, its value as text.
type Header struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Tweet is what the pages show of a post.
type Tweet struct {
	ID       string   `json:"id"`
	Author   string   `json:"author"` // @username, or the author id
	Name     string   `json:"name,omitempty"`
	Lang     string   `json:"lang,omitempty"`
	Text     string   `json:"text"`
	Hashtags []string `json:"hashtags"`
	Created  string   `json:"created_at,omitempty"`
}

func newRecord(r *kgo.Record) Record {
	out := Record{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Timestamp: r.Timestamp.UTC().Format(recordjson.TimeLayout),
		Value:     recordjson.AppendValue(nil, r.Value),
		Headers:   []Header{},
	}
	if r.Key != nil {
		k := recordjson.Printable(r.Key)
		out.Key = &k
	}
	for _, h := range r.Headers {
		out.Headers = append(out.Headers, Header{Key: h.Key, Value: recordjson.Printable(h.Value)})
	}
	out.Tweet = parseTweet(r.Value)
	return out
}

// parseTweet reads a post in the X API v2 shape, or returns nil.
func parseTweet(value []byte) *Tweet {
	if len(value) == 0 || value[0] != '{' {
		return nil
	}
	e, ok := tweet.Parse(value)
	if !ok {
		return nil
	}
	t := &Tweet{ID: e.Data.ID, Author: e.Data.AuthorID, Lang: e.Data.Lang, Text: e.Data.Text, Hashtags: hashtags(e.Data.Text), Created: e.Data.CreatedAt}
	if u, ok := e.Author(); ok {
		t.Author, t.Name = "@"+u.Username, u.Name
	}
	return t
}

// hashtags finds #tags in text: letters, digits, marks and underscores of
// any script, so #카프카 and #データ count as X counts them.
func hashtags(text string) []string {
	tags := []string{}
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		i += size
		if r != '#' && r != '＃' {
			continue
		}
		start := i
		for i < len(text) {
			r, size := utf8.DecodeRuneInString(text[i:])
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.Is(unicode.Mn, r) && r != '_' {
				break
			}
			i += size
		}
		if i > start {
			tags = append(tags, text[start:i])
		}
	}
	return tags
}
