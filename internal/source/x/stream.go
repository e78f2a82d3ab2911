package x

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/creek-pipeline/creek/internal/pipeline"
	"github.com/creek-pipeline/creek/internal/tweet"
)

// stream connects and reads until ctx ends, reconnecting after drops,
// stalls and errors with the policy's waits.
func (s *Source) stream(ctx context.Context, out chan<- *pipeline.Batch) error {
	path := "/2/tweets/search/stream"
	if s.Sample {
		path = "/2/tweets/sample/stream"
	}
	q := url.Values{}
	for k, v := range map[string]string{"tweet.fields": s.TweetFields, "expansions": s.Expansions, "user.fields": s.UserFields} {
		if v != "" {
			q.Set(k, v)
		}
	}
	seen := newDedup(s.DedupWindow)
	var b backoff
	for ctx.Err() == nil {
		resp, err := s.open(ctx, path, q)
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil
			}
			wait = b.next(waitNetwork, s.Policy, 0)
			s.Logger.Warn("cannot connect to the X stream; retrying", "err", err, "wait", wait)
		case resp.StatusCode == http.StatusOK:
			b = backoff{}
			s.Logger.Info("connected to the X stream", "stream", path)
			reason := s.read(ctx, resp.Body, out, seen)
			resp.Body.Close()
			if ctx.Err() != nil {
				return nil
			}
			s.Logger.Warn("the X stream ended; reconnecting at once", "reason", reason)
			continue
		default:
			data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if e := fatalHTTP(resp.StatusCode, data); e != nil {
				return e
			}
			kind := waitHTTP
			if resp.StatusCode == http.StatusTooManyRequests {
				kind = waitRateLimit
			}
			wait = b.next(kind, s.Policy, s.rateLimitReset(resp.Header))
			s.Logger.Warn("the X stream answered with an error; retrying", "status", resp.StatusCode, "detail", problemText(data), "wait", wait)
		}
		if !s.Sleep(ctx, wait) {
			return nil
		}
	}
	return nil
}

func (s *Source) open(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.APIURL+path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	req.Header.Set("User-Agent", "creek")
	return s.Client.Do(req)
}

// read handles the lines of one connection: posts go out, keep-alives
// (empty lines) and error objects are noted, malformed lines counted and
// skipped. It returns why the connection ended.
func (s *Source) read(ctx context.Context, body io.ReadCloser, out chan<- *pipeline.Batch, seen *dedup) string {
	lines := make(chan []byte, 256)
	readErr := make(chan error, 1)
	go func() {
		defer close(lines)
		r := bufio.NewReaderSize(body, 64<<10)
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 {
				lines <- line
			}
			if err != nil {
				readErr <- err
				return
			}
		}
	}()
	stall := time.NewTimer(s.Policy.Stall)
	defer stall.Stop()
	defer func() {
		body.Close() // unblocks the reader
		for range lines {
		}
	}()
	for {
		var batch pipeline.Batch
		select {
		case <-ctx.Done():
			return "stopping"
		case <-stall.C:
			if len(lines) > 0 {
				// Lines are waiting: the pipeline was slow to take the
				// last batch, X was not silent.
				stall.Reset(s.Policy.Stall)
				continue
			}
			return fmt.Sprintf("no data or keep-alive for %s (stalled)", s.Policy.Stall)
		case line, ok := <-lines:
			if !ok {
				if err := <-readErr; err != nil && !errors.Is(err, io.EOF) {
					return err.Error()
				}
				return "closed by X"
			}
			stall.Reset(s.Policy.Stall)
			s.handle(line, &batch, seen)
		}
	more: // take what else has arrived
		for len(batch.Messages) < 500 {
			select {
			case line, ok := <-lines:
				if !ok {
					break more
				}
				s.handle(line, &batch, seen)
			default:
				break more
			}
		}
		if len(batch.Messages) > 0 {
			if !pipeline.Send(ctx, out, &batch) {
				return "stopping"
			}
			// Time spent waiting for the sink is not silence of X's.
			stall.Reset(s.Policy.Stall)
		}
	}
}

// handle turns one line of the stream into a message, if it is a post.
func (s *Source) handle(line []byte, b *pipeline.Batch, seen *dedup) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return // keep-alive
	}
	var msg struct {
		Data *struct {
			ID        string `json:"id"`
			CreatedAt string `json:"created_at"`
		} `json:"data"`
		MatchingRules []struct {
			Tag string `json:"tag"`
		} `json:"matching_rules"`
		Errors []apiProblem `json:"errors"`
	}
	if err := json.Unmarshal(line, &msg); err != nil {
		s.Stats.Errors.Add(1)
		s.Logger.Warn("malformed line from the X stream; skipped", "err", err, "line", clip(string(line), 120))
		return
	}
	for _, p := range msg.Errors {
		s.Logger.Warn("the X stream sent an error", "title", p.Title, "detail", p.Detail, "type", p.Type, "disconnect_type", p.DisconnectType)
	}
	if msg.Data == nil || msg.Data.ID == "" {
		return
	}
	if !seen.add(msg.Data.ID) {
		s.Logger.Debug("dropping a post sent again after reconnecting", "id", msg.Data.ID)
		return
	}
	m := pipeline.Message{Key: []byte(msg.Data.ID), Value: append([]byte(nil), line...), Timestamp: s.Now()}
	if t, err := time.Parse(tweet.TimeFormat, msg.Data.CreatedAt); err == nil {
		m.Timestamp = t
	} else if t, err := time.Parse(time.RFC3339, msg.Data.CreatedAt); err == nil {
		m.Timestamp = t
	}
	for _, r := range msg.MatchingRules {
		m.Headers = append(m.Headers, pipeline.Header{Key: "rule", Value: []byte(r.Tag)})
	}
	b.Messages = append(b.Messages, m)
}

// clip shortens s to at most n bytes for a log line, cutting between
// characters (posts are often Korean: three bytes a character).
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// dedup remembers the last n post ids.
type dedup struct {
	ids  map[string]struct{}
	ring []string
	next int
}

func newDedup(n int) *dedup {
	return &dedup{ids: make(map[string]struct{}, n), ring: make([]string, n)}
}

// add reports whether id is new, remembering it.
func (d *dedup) add(id string) bool {
	if _, ok := d.ids[id]; ok {
		return false
	}
	if old := d.ring[d.next]; old != "" {
		delete(d.ids, old)
	}
	d.ring[d.next] = id
	d.next = (d.next + 1) % len(d.ring)
	d.ids[id] = struct{}{}
	return true
}
