package processor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

// Tweet is a post in the flat form that `--map tweet` gives and every
// store keeps under these names: the X API v2 stream's nested object
// (what the X source and the generator produce) reduced to the fields a
// dashboard asks for, with the whole original under raw.
type Tweet struct {
	ID        string
	CreatedAt time.Time // zero when the post has none
	Lang      string
	AuthorID  string
	Username  string // from includes.users, "" when not expanded
	Text      string
	Hashtags  []string // without '#', in order of appearance
	Raw       []byte   // the post as the X API sent it (JSON)
}

// TweetMap is the built-in mapping `map tweet`.
type TweetMap struct{}

// Stage names the mapping.
func (TweetMap) Stage() string { return "map tweet" }

// Shape tells the sinks that records are tweets.
func (TweetMap) Shape() string { return pipeline.ShapeTweet }

// Process replaces an X API v2 post by its flat form and keys the record
// by the post id. A value that is not JSON, or not a post, is an error for
// that record alone (it goes to the dead-letter topic).
func (TweetMap) Process(m *pipeline.Message) (bool, error) {
	t, err := FromPost(m.Value)
	if err != nil {
		return false, err
	}
	m.Value = t.AppendJSON(make([]byte, 0, 2*len(m.Value)))
	m.Key = []byte(t.ID)
	return true, nil
}

// FromPost reads an X API v2 post ({"data": {...}, "includes": {...}}).
func FromPost(v []byte) (Tweet, error) {
	if !gjson.ValidBytes(v) {
		return Tweet{}, &Error{Class: ClassNotJSON, Err: fmt.Errorf("the value is not JSON (%s)", preview(v))}
	}
	doc := gjson.ParseBytes(v)
	data := doc.Get("data")
	id, text := data.Get("id"), data.Get("text")
	if id.Type != gjson.String || id.Str == "" || text.Type != gjson.String {
		return Tweet{}, &Error{Class: ClassNotTweet, Err: errors.New(`the value is not an X API v2 post: it needs "data" with a string "id" and "text"`)}
	}
	t := Tweet{
		ID:       id.Str,
		Text:     text.Str,
		Lang:     data.Get("lang").String(),
		AuthorID: data.Get("author_id").String(),
		Raw:      v,
	}
	if c := data.Get("created_at"); c.Exists() {
		at, err := time.Parse(time.RFC3339, c.String())
		if err != nil {
			return Tweet{}, &Error{Class: ClassBadValue, Err: fmt.Errorf("post %s: created_at %q is not an RFC 3339 time", t.ID, c.String())}
		}
		t.CreatedAt = at
	}
	doc.Get("includes.users").ForEach(func(_, u gjson.Result) bool {
		if u.Get("id").String() == t.AuthorID {
			t.Username = u.Get("username").String()
			return false
		}
		return true
	})
	if tags := data.Get("entities.hashtags"); tags.IsArray() {
		tags.ForEach(func(_, h gjson.Result) bool {
			if tag := h.Get("tag").String(); tag != "" {
				t.Hashtags = append(t.Hashtags, tag)
			}
			return true
		})
	} else {
		t.Hashtags = Hashtags(t.Text)
	}
	return t, nil
}

// TimeLayout is how created_at is written: X's own form, RFC 3339 in UTC
// with milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// AppendJSON appends the flat form: {"id", "created_at", "lang",
// "author_id", "username", "text", "hashtags", "raw"}.
func (t *Tweet) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = gjson.AppendJSONString(b, t.ID)
	b = append(b, `,"created_at":`...)
	if t.CreatedAt.IsZero() {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = t.CreatedAt.UTC().AppendFormat(b, TimeLayout)
		b = append(b, '"')
	}
	for _, f := range [...]struct{ name, v string }{{"lang", t.Lang}, {"author_id", t.AuthorID}, {"username", t.Username}, {"text", t.Text}} {
		b = append(b, ',', '"')
		b = append(b, f.name...)
		b = append(b, '"', ':')
		b = gjson.AppendJSONString(b, f.v)
	}
	b = append(b, `,"hashtags":[`...)
	for i, h := range t.Hashtags {
		if i > 0 {
			b = append(b, ',')
		}
		b = gjson.AppendJSONString(b, h)
	}
	b = append(b, `],"raw":`...)
	if bytes.ContainsAny(t.Raw, "\r\n") {
		// One line, so that the mapped record fits line-based formats
		// (a bulk request); only white space between tokens can break it.
		var c bytes.Buffer
		json.Compact(&c, t.Raw)
		return append(append(b, c.Bytes()...), '}')
	}
	b = append(b, t.Raw...)
	return append(b, '}')
}

// DecodeTweet reads a record that `map tweet` made, for the sinks.
func DecodeTweet(v []byte) (Tweet, error) {
	doc := gjson.ParseBytes(v)
	if !doc.IsObject() {
		return Tweet{}, errors.New("not a mapped tweet: the value is not a JSON object")
	}
	var t Tweet
	var err error
	doc.ForEach(func(k, f gjson.Result) bool {
		switch k.Str {
		case "id":
			t.ID = f.String()
		case "created_at":
			if f.Type == gjson.String {
				if t.CreatedAt, err = time.Parse(time.RFC3339, f.Str); err != nil {
					err = fmt.Errorf("created_at: %w", err)
					return false
				}
			}
		case "lang":
			t.Lang = f.String()
		case "author_id":
			t.AuthorID = f.String()
		case "username":
			t.Username = f.String()
		case "text":
			t.Text = f.String()
		case "hashtags":
			t.Hashtags = make([]string, 0, 2)
			f.ForEach(func(_, h gjson.Result) bool {
				t.Hashtags = append(t.Hashtags, h.String())
				return true
			})
		case "raw":
			t.Raw = []byte(f.Raw)
		}
		return true
	})
	if err != nil {
		return Tweet{}, fmt.Errorf("not a mapped tweet: %w", err)
	}
	if t.ID == "" {
		return Tweet{}, errors.New("not a mapped tweet: no id")
	}
	return t, nil
}

// Hashtags finds the hashtags of a text as X does: '#' after a character
// that is not part of a word, then letters, marks, digits or '_', not all
// digits. Each tag once, in order, without the '#'.
func Hashtags(text string) []string {
	tags := []string{}
	prev := ' '
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		if (r == '#' || r == '＃') && !isWordRune(prev) && prev != '&' {
			j, letters := i+size, false
			for j < len(text) {
				c, n := utf8.DecodeRuneInString(text[j:])
				if !isWordRune(c) {
					break
				}
				letters = letters || !unicode.IsDigit(c)
				j += n
			}
			if tag := text[i+size : j]; letters && !slices.Contains(tags, tag) {
				tags = append(tags, tag)
			}
			if j > i+size {
				prev = 'a'
				i = j
				continue
			}
		}
		prev = r
		i += size
	}
	return tags
}

func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

// preview shows the start of a value in an error.
func preview(v []byte) string {
	const n = 40
	if len(v) > n {
		return fmt.Sprintf("%q…", strings.ToValidUTF8(string(v[:n]), ""))
	}
	return fmt.Sprintf("%q", strings.ToValidUTF8(string(v), "\ufffd"))
}
