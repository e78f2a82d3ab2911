package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/creek-pipeline/creek/internal/admin"
)

// Actions change the cluster, so they are refused unless the dashboard was
// started with --http-admin, and they must be sent as JSON with the header
// X-Creek-Confirm: yes (the pages ask the user first; a form on another
// site cannot set that header). They run internal/admin, the code of the
// CLI's commands.

type actionResult struct {
	Lines []string `json:"lines,omitempty"`
	Plan  any      `json:"plan,omitempty"`
}

func (s *Server) action(fn func(r *http.Request) (actionResult, int, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.cfg.Admin {
			writeError(w, http.StatusForbidden, "the dashboard is read-only; start it with --http-admin to allow changes")
			return
		}
		if r.Header.Get("X-Creek-Confirm") != "yes" {
			writeError(w, http.StatusBadRequest, "send the header X-Creek-Confirm: yes to confirm this change")
			return
		}
		res, code, err := fn(r)
		if err != nil {
			s.logger.Warn("dashboard action failed", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
			writeError(w, code, err.Error())
			return
		}
		s.logger.Info("dashboard action", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
		s.view.Refresh()
		writeJSON(w, http.StatusOK, res)
	}
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed JSON body: %v", err)
	}
	return nil
}

func actionCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 30*time.Second)
}

// createTopicRequest is the body of POST /api/topics.
type createTopicRequest struct {
	Name              string            `json:"name"`
	Partitions        int32             `json:"partitions"`         // 0: the broker's default
	ReplicationFactor int16             `json:"replication_factor"` // 0: the broker's default
	Configs           map[string]string `json:"configs"`
}

func (s *Server) createTopic(r *http.Request) (actionResult, int, error) {
	var req createTopicRequest
	if err := decodeBody(r, &req); err != nil {
		return actionResult{}, http.StatusBadRequest, err
	}
	if strings.TrimSpace(req.Name) == "" {
		return actionResult{}, http.StatusBadRequest, errors.New("give the topic's name")
	}
	if req.Partitions < 0 || req.ReplicationFactor < 0 {
		return actionResult{}, http.StatusBadRequest, errors.New("partitions and replication_factor: want 1 or more, or 0 for the broker's default")
	}
	partitions, rf := req.Partitions, req.ReplicationFactor
	if partitions == 0 {
		partitions = -1
	}
	if rf == 0 {
		rf = -1
	}
	ctx, cancel := actionCtx(r)
	defer cancel()
	lines, err := admin.CreateTopics(ctx, s.adm, partitions, rf, req.Configs, false, req.Name)
	if err != nil {
		return actionResult{}, http.StatusConflict, err
	}
	return actionResult{Lines: lines}, http.StatusOK, nil
}

func (s *Server) deleteTopic(r *http.Request) (actionResult, int, error) {
	ctx, cancel := actionCtx(r)
	defer cancel()
	lines, err := admin.DeleteTopics(ctx, s.adm, false, r.PathValue("topic"))
	if err != nil {
		return actionResult{}, http.StatusConflict, err
	}
	return actionResult{Lines: lines}, http.StatusOK, nil
}

// resetRequest is the body of POST /api/groups/{group}/reset-offsets.
type resetRequest struct {
	Topics []string `json:"topics"`
	To     string   `json:"to"` // earliest, latest, offset, datetime
	Offset int64    `json:"offset"`
	Time   string   `json:"datetime"` // RFC 3339
	DryRun bool     `json:"dry_run"`
}

func (s *Server) resetOffsets(r *http.Request) (actionResult, int, error) {
	var req resetRequest
	if err := decodeBody(r, &req); err != nil {
		return actionResult{}, http.StatusBadRequest, err
	}
	reset := admin.Reset{Group: r.PathValue("group"), Topics: req.Topics, To: req.To, Offset: req.Offset, DryRun: req.DryRun}
	if req.To == "datetime" {
		at, err := parseTime(req.Time)
		if err != nil {
			return actionResult{}, http.StatusBadRequest, err
		}
		reset.At = at
	}
	ctx, cancel := actionCtx(r)
	defer cancel()
	plan, err := admin.ResetOffsets(ctx, s.adm, reset)
	if err != nil {
		return actionResult{Plan: plan}, http.StatusConflict, err
	}
	return actionResult{Plan: plan}, http.StatusOK, nil
}
