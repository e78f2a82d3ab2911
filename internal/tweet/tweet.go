// Package tweet holds the shape of a post as the X (Twitter) API v2 stream
// delivers it: one JSON object per post with the post under "data", expanded
// objects (the author) under "includes", and the filter rules it matched.
// The X source passes these objects through untouched; the generator makes
// synthetic ones; the console recognises them to print a readable line.
package tweet

import (
	"encoding/json"
	"time"
)

// Envelope is one message of the stream.
type Envelope struct {
	Data          Post       `json:"data"`
	Includes      *Includes  `json:"includes,omitempty"`
	MatchingRules []RuleRef  `json:"matching_rules,omitempty"`
	Errors        []APIError `json:"errors,omitempty"`
}

// Post is a post's fields (those requested with tweet.fields).
type Post struct {
	ID            string   `json:"id"`
	Text          string   `json:"text"`
	CreatedAt     string   `json:"created_at,omitempty"`
	Lang          string   `json:"lang,omitempty"`
	AuthorID      string   `json:"author_id,omitempty"`
	PublicMetrics *Metrics `json:"public_metrics,omitempty"`
	EditHistory   []string `json:"edit_history_tweet_ids,omitempty"`
}

// Metrics are a post's public engagement counts.
type Metrics struct {
	RetweetCount    int `json:"retweet_count"`
	ReplyCount      int `json:"reply_count"`
	LikeCount       int `json:"like_count"`
	QuoteCount      int `json:"quote_count"`
	BookmarkCount   int `json:"bookmark_count"`
	ImpressionCount int `json:"impression_count"`
}

// Includes holds expanded objects.
type Includes struct {
	Users []User `json:"users,omitempty"`
}

// User is an expanded author.
type User struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Username string `json:"username"`
}

// RuleRef is a filter rule a post matched.
type RuleRef struct {
	ID  string `json:"id"`
	Tag string `json:"tag,omitempty"`
}

// APIError is an error object; the stream sends them alone (an operational
// disconnect) or beside data.
type APIError struct {
	Title          string `json:"title,omitempty"`
	Detail         string `json:"detail,omitempty"`
	Type           string `json:"type,omitempty"`
	DisconnectType string `json:"disconnect_type,omitempty"`
}

// TimeFormat is how X writes created_at.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// Parse reads an envelope; ok is false when the JSON is not a post.
func Parse(b []byte) (Envelope, bool) {
	var e Envelope
	if json.Unmarshal(b, &e) != nil || e.Data.ID == "" || e.Data.Text == "" {
		return e, false
	}
	return e, true
}

// Author returns the post's expanded author, if present.
func (e *Envelope) Author() (User, bool) {
	if e.Includes != nil {
		for _, u := range e.Includes.Users {
			if u.ID == e.Data.AuthorID {
				return u, true
			}
		}
	}
	return User{}, false
}

// Created parses created_at.
func (e *Envelope) Created() (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, e.Data.CreatedAt)
	return t, err == nil
}
