// Package http is the source that takes records over HTTP: clients POST a
// JSON object, a JSON array of objects, or NDJSON (one JSON value per line).
// The answer is 2xx only once the whole body is in the sink (for a Kafka
// sink: acknowledged by Kafka), 4xx when the body is malformed (naming the
// line), 503 when the pipeline could not deliver it.
package http

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

func init() {
	pipeline.RegisterSource(pipeline.Plugin{
		Name: "http",
		Doc:  "Receives JSON or NDJSON records over HTTP POST.",
		Options: []pipeline.Option{
			{Name: "listen", Flag: "http-listen", Type: pipeline.TypeString, Default: ":8080", Doc: "Address of the HTTP server."},
			{Name: "path", Flag: "http-path", Type: pipeline.TypeString, Default: "/", Doc: "URL path that accepts POSTs."},
			{Name: "max-body", Flag: "http-max-body", Type: pipeline.TypeInt, Default: "10485760", Doc: "Largest request body in bytes."},
		},
		NewSource: func(v *pipeline.Values, env pipeline.Env) (pipeline.Source, error) {
			ln, err := net.Listen("tcp", v.String("listen"))
			if err != nil {
				return nil, fmt.Errorf("listen on %s: %w (choose another address with --http-listen)", v.String("listen"), err)
			}
			return &Source{Listener: ln, Path: v.String("path"), MaxBody: v.Int("max-body"), Logger: env.Logger, Stats: env.Stats}, nil
		},
	})
}

// Source serves the ingest endpoint.
type Source struct {
	Listener net.Listener
	Path     string
	MaxBody  int64
	Logger   *slog.Logger
	Stats    *pipeline.Stats
}

// Run serves until ctx is done; requests in progress get their answer.
func (s *Source) Run(ctx context.Context, out chan<- *pipeline.Batch) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle(s.Path, s.handler(ctx, out))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(s.Listener) }()
	s.Logger.Info("http source listening", "addr", s.Listener.Addr().String(), "path", s.Path)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	return nil
}

// Addr is the listening address.
func (s *Source) Addr() string { return s.Listener.Addr().String() }

type answer struct {
	Accepted int    `json:"accepted,omitempty"`
	Error    string `json:"error,omitempty"`
}

func reply(w http.ResponseWriter, code int, a answer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(a)
}

func (s *Source) handler(ctx context.Context, out chan<- *pipeline.Batch) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			reply(w, http.StatusMethodNotAllowed, answer{Error: "POST JSON or NDJSON records here"})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.MaxBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				reply(w, http.StatusRequestEntityTooLarge, answer{Error: fmt.Sprintf("the body is over %d bytes", s.MaxBody)})
				return
			}
			reply(w, http.StatusBadRequest, answer{Error: "reading the body: " + err.Error()})
			return
		}
		values, err := parseBody(body)
		if err != nil {
			s.Stats.Errors.Add(1)
			reply(w, http.StatusBadRequest, answer{Error: err.Error()})
			return
		}
		if len(values) == 0 {
			reply(w, http.StatusBadRequest, answer{Error: "the body holds no records"})
			return
		}
		now := time.Now()
		b := &pipeline.Batch{Messages: make([]pipeline.Message, len(values))}
		for i, v := range values {
			b.Messages[i] = pipeline.Message{Value: v, Timestamp: now}
		}
		result := make(chan error, 1)
		b.Ack = func() { result <- nil }
		b.Nack = func(err error) { result <- err }
		if !pipeline.Send(ctx, out, b) {
			reply(w, http.StatusServiceUnavailable, answer{Error: "creek is shutting down; send again later"})
			return
		}
		select {
		case err := <-result:
			if err != nil {
				reply(w, http.StatusServiceUnavailable, answer{Error: "not delivered: " + err.Error()})
				return
			}
			reply(w, http.StatusOK, answer{Accepted: len(values)})
		case <-r.Context().Done(): // the client gave up; the batch may still be delivered
		}
	}
}

// parseBody accepts a JSON object, a JSON array of values, or NDJSON. Each
// record is one compact JSON value. Errors name the line.
func parseBody(body []byte) ([]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed) {
		return []json.RawMessage{compact(trimmed)}, nil // one object, perhaps over several lines
	}
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var arr []json.RawMessage
		if err := json.Unmarshal(trimmed, &arr); err == nil {
			out := make([]json.RawMessage, 0, len(arr))
			for _, v := range arr {
				out = append(out, compact(v))
			}
			return out, nil
		}
		// Not a valid array: fall through to NDJSON, which names the line.
	}
	var out []json.RawMessage
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), len(body)+1)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if !json.Valid(line) {
			var v any
			err := json.Unmarshal(line, &v)
			return nil, fmt.Errorf("line %d: not valid JSON: %s", n, strings.TrimPrefix(err.Error(), "json: "))
		}
		out = append(out, compact(line))
	}
	return out, sc.Err()
}

func compact(v []byte) json.RawMessage {
	var buf bytes.Buffer
	if json.Compact(&buf, v) != nil {
		return append(json.RawMessage(nil), v...)
	}
	return buf.Bytes()
}
