package dashboard

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/internal/recordjson"
)

// The message browser reads one partition from an offset or a time with a
// consumer of its own (no group, nothing committed) and returns up to
// limit records, optionally only those whose key is key or whose key,
// value or headers contain q.
const (
	browseDefaultLimit = 50
	browseMaxLimit     = 1000
	browseMaxScan      = 50_000 // records read at most while searching
	browseTimeout      = 4 * time.Second
)

type browseResult struct {
	Status    Status   `json:"status"`
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	From      int64    `json:"from"`  // the first offset read
	Next      int64    `json:"next"`  // where to continue reading
	Start     int64    `json:"start"` // the partition's log start offset
	End       int64    `json:"end"`   // its high watermark
	Scanned   int      `json:"scanned"`
	Records   []Record `json:"records"`
	Note      string   `json:"note,omitempty"`
}

func (s *Server) getMessages(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	q := r.URL.Query()
	limit := browseDefaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > browseMaxLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want 1 to %d", v, browseMaxLimit))
			return
		}
		limit = n
	}
	partition := int32(0)
	if v := q.Get("partition"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("partition %q: want a partition number", v))
			return
		}
		partition = int32(n)
	}
	ctx, cancel := context.WithTimeout(r.Context(), browseTimeout+2*time.Second)
	defer cancel()
	starts, err := s.adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		writeError(w, http.StatusBadGateway, fmt.Sprintf("cannot read topic %s: %v", topic, err))
		return
	}
	start, ok := starts.Lookup(topic, partition)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("topic %s has no partition %d", topic, partition))
		return
	}
	ends, err := s.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		writeError(w, http.StatusBadGateway, fmt.Sprintf("cannot read topic %s: %v", topic, err))
		return
	}
	end, _ := ends.Lookup(topic, partition)
	res := browseResult{Status: status(s.view.Snapshot(), s.cfg.Admin), Topic: topic, Partition: partition, Start: start.Offset, End: end.Offset, Records: []Record{}}
	search, key := q.Get("q"), q.Get("key")
	filtering := search != "" || q.Has("key")

	from := max(end.Offset-int64(limit), start.Offset) // default: the newest records
	switch {
	case q.Get("offset") != "":
		n, err := strconv.ParseInt(q.Get("offset"), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("offset %q: want a number", q.Get("offset")))
			return
		}
		from = n
		if from < start.Offset {
			res.Note = fmt.Sprintf("offset %d is gone (retention); reading from the oldest, %d", n, start.Offset)
			from = start.Offset
		}
	case q.Get("time") != "":
		at, err := parseTime(q.Get("time"))
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		after, err := s.adm.ListOffsetsAfterMilli(ctx, at.UnixMilli(), topic)
		if err != nil {
			writeError(w, http.StatusBadGateway, fmt.Sprintf("find offset for %s: %v", at.Format(time.RFC3339), err))
			return
		}
		o, _ := after.Lookup(topic, partition)
		from = o.Offset
		if from < 0 || from > end.Offset {
			from = end.Offset
		}
	case filtering:
		from = start.Offset // a search starts at the oldest record
	}
	res.From, res.Next = from, from
	if from >= end.Offset {
		writeJSON(w, http.StatusOK, res)
		return
	}
	cl, err := kgo.NewClient(s.cfg.clientOpts(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}}),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.ClientID("creek-dashboard-browser"),
	)...)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	defer cl.Close()
	deadline, stop := context.WithTimeout(ctx, browseTimeout)
	defer stop()
	needle := []byte(strings.ToLower(search))
	for res.Next < end.Offset && len(res.Records) < limit && res.Scanned < browseMaxScan {
		fetches := cl.PollFetches(deadline)
		if deadline.Err() != nil {
			res.Note = "stopped after " + browseTimeout.String() + "; continue from next"
			break
		}
		fetches.EachError(func(_ string, _ int32, err error) { res.Note = err.Error() })
		iter := fetches.RecordIter()
		for !iter.Done() && len(res.Records) < limit {
			rec := iter.Next()
			res.Scanned++
			res.Next = rec.Offset + 1
			if q.Has("key") && string(rec.Key) != key {
				continue
			}
			if search != "" && !contains(rec, needle) {
				continue
			}
			res.Records = append(res.Records, newRecord(rec))
		}
		if res.Note != "" {
			break
		}
	}
	if res.Scanned >= browseMaxScan && len(res.Records) < limit {
		res.Note = fmt.Sprintf("searched %d records; continue from next", res.Scanned)
	}
	writeJSON(w, http.StatusOK, res)
}

// contains reports whether needle (lower case) is in the record's key,
// value or header values, ignoring case.
func contains(r *kgo.Record, needle []byte) bool {
	if bytes.Contains(bytes.ToLower(r.Key), needle) || bytes.Contains(bytes.ToLower(r.Value), needle) {
		return true
	}
	for _, h := range r.Headers {
		if bytes.Contains(bytes.ToLower(h.Value), needle) {
			return true
		}
	}
	return false
}

// parseTime reads RFC 3339 or Unix milliseconds.
func parseTime(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	for _, layout := range []string{time.RFC3339, recordjson.TimeLayout, "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2026-11-24T14:00:00+09:00) or Unix milliseconds", s)
}
