package x

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

const rulesPath = "/2/tweets/search/stream/rules"

type rulesResponse struct {
	Data []Rule `json:"data"`
	Meta struct {
		Summary struct {
			Created    int `json:"created"`
			NotCreated int `json:"not_created"`
			Deleted    int `json:"deleted"`
			Invalid    int `json:"invalid"`
		} `json:"summary"`
	} `json:"meta"`
	Errors []apiProblem `json:"errors"`
}

// apiProblem is an error object of the X API.
type apiProblem struct {
	Value   string   `json:"value,omitempty"`
	ID      string   `json:"id,omitempty"`
	Title   string   `json:"title,omitempty"`
	Detail  string   `json:"detail,omitempty"`
	Type    string   `json:"type,omitempty"`
	Details []string `json:"details,omitempty"`

	DisconnectType string `json:"disconnect_type,omitempty"` // in the stream: why X closed it
}

// duplicate reports whether the problem is X's "a rule with this value
// exists already".
func (p apiProblem) duplicate() bool {
	return p.Title == "DuplicateRule" || strings.HasSuffix(p.Type, "/duplicate-rules")
}

func (p apiProblem) String() string {
	parts := []string{p.Title}
	if p.Detail != "" {
		parts = append(parts, p.Detail)
	}
	parts = append(parts, p.Details...)
	return strings.Join(parts, ": ")
}

// syncRules makes the stream's rules those configured: it adds the missing
// ones (checked with dry_run first, so a rejected rule is reported and the
// valid ones still go in) and deletes the others unless KeepRules.
//
// The old rules are deleted before the new ones are added: X keys rules by
// value, so a configured rule whose tag changed is a duplicate of the old
// one until that is gone. The dry run comes before both, so that a
// configuration X rejects entirely leaves the stream's rules alone.
func (s *Source) syncRules(ctx context.Context) error {
	var current rulesResponse
	if err := s.call(ctx, "list the stream rules", http.MethodGet, rulesPath, nil, nil, &current); err != nil {
		return err
	}
	have := map[Rule]string{} // value+tag -> id
	for _, r := range current.Data {
		have[Rule{Value: r.Value, Tag: r.Tag}] = r.ID
	}
	var add []Rule
	want := map[Rule]bool{}
	for _, r := range s.Rules {
		key := Rule{Value: r.Value, Tag: r.Tag}
		if want[key] {
			continue
		}
		want[key] = true
		if _, ok := have[key]; !ok {
			add = append(add, key)
		}
	}
	var del []string
	deleting := map[string]bool{} // values of the rules about to be deleted
	if !s.KeepRules {
		for _, r := range current.Data {
			if !want[Rule{Value: r.Value, Tag: r.Tag}] {
				del = append(del, r.ID)
				deleting[r.Value] = true
			}
		}
	}

	var valid []Rule
	if len(add) > 0 {
		var check rulesResponse
		q := url.Values{"dry_run": {"true"}}
		if err := s.call(ctx, "validate the stream rules", http.MethodPost, rulesPath, q, map[string]any{"add": add}, &check); err != nil {
			return err
		}
		rejected := map[string]bool{}
		for _, p := range check.Errors {
			switch {
			case p.duplicate() && deleting[p.Value]:
				// On the stream with another tag and about to be deleted:
				// it goes in again, with its new tag, after that.
			case p.duplicate():
				rejected[p.Value] = true
				s.Logger.Warn("a filter rule with this value is already on the stream with another tag; it is kept as it is", "rule", p.Value)
			case p.Value != "":
				rejected[p.Value] = true
				s.Logger.Error("X rejected a filter rule; it is left out", "rule", p.Value, "reason", p.String())
			default:
				s.Logger.Error("X rejected the filter rules", "reason", p.String())
			}
		}
		for _, r := range add {
			if !rejected[r.Value] {
				valid = append(valid, r)
			}
		}
		if len(valid) == 0 && len(current.Data)-len(del) == 0 {
			return fmt.Errorf("X rejected every filter rule (see the errors above); fix the --x-rule values")
		}
	}
	if len(del) > 0 {
		var deleted rulesResponse
		body := map[string]any{"delete": map[string]any{"ids": del}}
		if err := s.call(ctx, "delete old stream rules", http.MethodPost, rulesPath, nil, body, &deleted); err != nil {
			return err
		}
		s.Logger.Info("filter rules not in the configuration deleted (keep them with --x-keep-rules)", "deleted", len(del))
	}
	if len(valid) > 0 {
		var added rulesResponse
		if err := s.call(ctx, "add the stream rules", http.MethodPost, rulesPath, nil, map[string]any{"add": valid}, &added); err != nil {
			return err
		}
		for _, r := range added.Data {
			s.Logger.Info("filter rule added", "rule", r.Value, "tag", r.Tag, "id", r.ID)
		}
		for _, p := range added.Errors {
			s.Logger.Error("X did not add a filter rule", "rule", p.Value, "reason", p.String())
		}
	}
	return nil
}

// call makes one REST request, retrying with the reconnection policy what
// retrying can fix. out receives the JSON answer.
func (s *Source) call(ctx context.Context, what, method, path string, q url.Values, body, out any) error {
	var b backoff
	for {
		status, hdr, data, err := s.request(ctx, method, path, q, body)
		var wait waitKind
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			wait = waitNetwork
			s.Logger.Warn("X API request failed; retrying", "what", what, "err", err)
		case status/100 == 2:
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("%s: X answered with unreadable JSON: %w", what, err)
			}
			return nil
		default:
			if e := fatalHTTP(status, data); e != nil {
				return fmt.Errorf("%s: %w", what, e)
			}
			wait = waitHTTP
			if status == http.StatusTooManyRequests {
				wait = waitRateLimit
			}
			s.Logger.Warn("X API answered with an error; retrying", "what", what, "status", status, "detail", problemText(data))
		}
		if !s.Sleep(ctx, b.next(wait, s.Policy, s.rateLimitReset(hdr))) {
			return ctx.Err()
		}
	}
}

func (s *Source) request(ctx context.Context, method, path string, q url.Values, body any) (int, http.Header, []byte, error) {
	u := s.APIURL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	req.Header.Set("User-Agent", "creek")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header, data, err
}

// fatalHTTP returns an error for answers no retry can fix, with what to do.
func fatalHTTP(status int, body []byte) error {
	detail := problemText(body)
	switch status {
	case http.StatusUnauthorized:
		return fmt.Errorf("X refused the bearer token (401 %s): check X_BEARER_TOKEN; it must be the app-only bearer token of your X app", detail)
	case http.StatusForbidden:
		return fmt.Errorf("X refused access (403 %s): the app's access level does not include this stream, or the app is not in a project; check the X developer portal", detail)
	case http.StatusBadRequest, http.StatusNotFound:
		return fmt.Errorf("X refused the request (%d %s): check --x-tweet-fields, --x-expansions, --x-user-fields and --x-api-url", status, detail)
	}
	return nil
}

// problemText summarises an error body of the X API.
func problemText(body []byte) string {
	var p struct {
		Title  string       `json:"title"`
		Detail string       `json:"detail"`
		Errors []apiProblem `json:"errors"`
	}
	if json.Unmarshal(body, &p) == nil {
		switch {
		case p.Detail != "" && p.Detail != p.Title:
			return strings.Trim(p.Title+": "+p.Detail, ": ")
		case p.Title != "":
			return p.Title
		case len(p.Errors) > 0:
			return p.Errors[0].String()
		}
	}
	return clip(strings.TrimSpace(string(body)), 200)
}
