package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/creek-pipeline/creek/internal/admin"
	"github.com/creek-pipeline/creek/internal/clusterview"
	"github.com/creek-pipeline/creek/internal/config"
	"github.com/creek-pipeline/creek/internal/storage"
)

// The API's answers are JSON; every answer about the cluster carries its
// status (up, or down since when, with the last figures it read), so a
// page always has something true to show.

// Status is how fresh the figures of an answer are.
type Status struct {
	Up        bool      `json:"up"`
	Error     string    `json:"error,omitempty"`
	LastOK    time.Time `json:"last_ok"`
	Taken     time.Time `json:"taken"`
	TookMs    float64   `json:"took_ms"`
	Admin     bool      `json:"admin"`
	ClusterID string    `json:"cluster_id"`
}

func status(s *clusterview.Snapshot, admin bool) Status {
	return Status{Up: !s.Down(), Error: s.Err, LastOK: s.LastOK, Taken: s.Taken, TookMs: float64(s.Took.Microseconds()) / 1000, Admin: admin, ClusterID: s.ClusterID}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// apiError is the body of every failed call.
type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}

// defaultTopic is the configured topic, else the first with records.
func (s *Server) defaultTopic() string {
	if s.cfg.Topic != "" {
		return s.cfg.Topic
	}
	for _, t := range s.view.Snapshot().Topics {
		if !t.Internal && t.Records > 0 {
			return t.Name
		}
	}
	return ""
}

type overview struct {
	Status     Status               `json:"status"`
	Brokers    []clusterview.Broker `json:"brokers"`
	Topic      string               `json:"topic"` // the live tweets' topic
	Topics     int                  `json:"topics"`
	Partitions int                  `json:"partitions"`
	Records    int64                `json:"records"`
	Groups     int                  `json:"groups"`
	TotalLag   int64                `json:"total_lag"`
	InRate     float64              `json:"in_per_sec"`
	Pipeline   pipelineView         `json:"pipeline"`
}

func (s *Server) getOverview(w http.ResponseWriter, r *http.Request) {
	snap := s.view.Snapshot()
	o := overview{Status: status(snap, s.cfg.Admin), Brokers: snap.Brokers, Topic: s.defaultTopic(), Groups: len(snap.Groups), Pipeline: s.pipelineView(snap)}
	for _, t := range snap.Topics {
		if t.Internal {
			continue // Kafka's own (__consumer_offsets...), as kafka-topics --exclude-internal
		}
		o.Topics++
		o.Partitions += len(t.Partitions)
		o.Records += t.Records
		o.InRate += t.InRate
	}
	for _, g := range snap.Groups {
		o.TotalLag += g.TotalLag
	}
	writeJSON(w, http.StatusOK, o)
}

func (s *Server) getCluster(w http.ResponseWriter, r *http.Request) {
	snap := s.view.Snapshot()
	writeJSON(w, http.StatusOK, struct {
		Status  Status               `json:"status"`
		Brokers []clusterview.Broker `json:"brokers"`
	}{status(snap, s.cfg.Admin), snap.Brokers})
}

// topicRow is a topic in the list, without its partitions.
type topicRow struct {
	Name       string   `json:"name"`
	Internal   bool     `json:"internal"`
	Partitions int      `json:"partitions"`
	Records    int64    `json:"records"`
	Size       int64    `json:"size"`
	InRate     float64  `json:"in_per_sec"`
	OutRate    float64  `json:"out_per_sec"`
	Groups     []string `json:"groups"`
	Error      string   `json:"error,omitempty"`
}

// getTopics lists the topics; Kafka's internal ones (__consumer_offsets,
// __transaction_state) only with ?internal=true.
func (s *Server) getTopics(w http.ResponseWriter, r *http.Request) {
	snap := s.view.Snapshot()
	internal := r.URL.Query().Get("internal") == "true"
	rows := make([]topicRow, 0, len(snap.Topics))
	for _, t := range snap.Topics {
		if t.Internal && !internal {
			continue
		}
		rows = append(rows, topicRow{Name: t.Name, Internal: t.Internal, Partitions: len(t.Partitions), Records: t.Records, Size: t.Size,
			InRate: t.InRate, OutRate: t.OutRate, Groups: t.Groups, Error: t.Err})
	}
	writeJSON(w, http.StatusOK, struct {
		Status Status     `json:"status"`
		Topics []topicRow `json:"topics"`
	}{status(snap, s.cfg.Admin), rows})
}

// topicConfig is one config of a topic and where its value comes from.
type topicConfig struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Source    string `json:"source"` // DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG, ...
	Sensitive bool   `json:"sensitive,omitempty"`
}

type topicDetail struct {
	Status         Status            `json:"status"`
	Topic          clusterview.Topic `json:"topic"`
	Configs        []topicConfig     `json:"configs"`
	ConfigsError   string            `json:"configs_error,omitempty"`
	RetentionBytes int64             `json:"retention_bytes"` // per partition; -1: no limit, 0: unknown
	RetentionMs    int64             `json:"retention_ms"`
	// Compacted is set when cleanup.policy includes compact; Compaction
	// then holds each partition's log cleaner state, when the cluster
	// reports it (creek does).
	Compacted  bool            `json:"compacted"`
	Deletes    bool            `json:"deletes"` // cleanup.policy includes delete: retention applies
	Compaction []compactionRow `json:"compaction,omitempty"`
}

type compactionRow struct {
	Partition int32 `json:"partition"`
	storage.CleanerStatus
}

func (s *Server) getTopic(w http.ResponseWriter, r *http.Request) {
	snap := s.view.Snapshot()
	name := r.PathValue("topic")
	t, ok := snap.Topic(name)
	if !ok {
		writeError(w, http.StatusNotFound, "no topic "+strconv.Quote(name)+" (as of the last read of the cluster)")
		return
	}
	d := topicDetail{Status: status(snap, s.cfg.Admin), Topic: *t, Configs: []topicConfig{}}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	rcs, err := s.adm.DescribeTopicConfigs(ctx, name)
	if err == nil {
		var rc kadm.ResourceConfig
		if rc, err = rcs.On(name, nil); err == nil {
			err = rc.Err
		}
		for _, c := range rc.Configs {
			tc := topicConfig{Name: c.Key, Source: c.Source.String(), Sensitive: c.Sensitive}
			if c.Value != nil {
				tc.Value = *c.Value
			}
			d.Configs = append(d.Configs, tc)
			n, _ := strconv.ParseInt(tc.Value, 10, 64)
			switch c.Key {
			case "retention.bytes":
				d.RetentionBytes = n
			case "retention.ms":
				d.RetentionMs = n
			case "cleanup.policy":
				d.Deletes, d.Compacted = config.CleanupPolicy(tc.Value)
			}
		}
		sort.Slice(d.Configs, func(i, j int) bool { return d.Configs[i].Name < d.Configs[j].Name })
	}
	if d.Compacted {
		leaders := map[int32][]int32{}
		for _, p := range t.Partitions {
			leaders[p.Leader] = append(leaders[p.Leader], p.Partition)
		}
		dirs := admin.CleanerStatuses(ctx, s.client, name, leaders)
		for _, p := range t.Partitions {
			if st := dirs[p.Partition].Cleaner; st != nil {
				d.Compaction = append(d.Compaction, compactionRow{Partition: p.Partition, CleanerStatus: *st})
			}
		}
	}
	if err != nil {
		d.ConfigsError = "configs could not be read: " + err.Error()
	}
	writeJSON(w, http.StatusOK, d)
}

// groupRow is a group in the list, with its lag over the last hour thinned
// to a sparkline.
type groupRow struct {
	Group    string               `json:"group"`
	Type     string               `json:"type"`
	State    string               `json:"state"`
	Members  int                  `json:"members"`
	TotalLag int64                `json:"total_lag"`
	Rate     float64              `json:"commits_per_sec"`
	Topics   []string             `json:"topics"`
	Lag      []clusterview.Sample `json:"lag_history"`
	Error    string               `json:"error,omitempty"`
}

const sparkPoints = 60

func (s *Server) getGroups(w http.ResponseWriter, r *http.Request) {
	snap := s.view.Snapshot()
	rows := make([]groupRow, 0, len(snap.Groups))
	for _, g := range snap.Groups {
		rows = append(rows, groupRow{Group: g.Group, Type: g.Type, State: g.State, Members: len(g.Members), TotalLag: g.TotalLag,
			Rate: g.Rate, Topics: groupTopics(g), Lag: thin(g.LagHistory, sparkPoints), Error: g.Err})
	}
	writeJSON(w, http.StatusOK, struct {
		Status Status     `json:"status"`
		Groups []groupRow `json:"groups"`
	}{status(snap, s.cfg.Admin), rows})
}

func groupTopics(g clusterview.Group) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, p := range g.Partitions {
		if !seen[p.Topic] {
			seen[p.Topic] = true
			out = append(out, p.Topic)
		}
	}
	return out
}

// thin keeps at most n evenly spread samples, always the newest.
func thin(h []clusterview.Sample, n int) []clusterview.Sample {
	if len(h) <= n {
		return h
	}
	out := make([]clusterview.Sample, 0, n)
	step := float64(len(h)-1) / float64(n-1)
	for i := range n {
		out = append(out, h[int(float64(i)*step+0.5)])
	}
	return out
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) {
	snap := s.view.Snapshot()
	name := r.PathValue("group")
	g, ok := snap.Group(name)
	if !ok {
		writeError(w, http.StatusNotFound, "no group "+strconv.Quote(name)+" (as of the last read of the cluster)")
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Status Status            `json:"status"`
		Group  clusterview.Group `json:"group"`
	}{status(snap, s.cfg.Admin), *g})
}

func (s *Server) getAnalytics(w http.ResponseWriter, r *http.Request) {
	snap := s.view.Snapshot()
	writeJSON(w, http.StatusOK, struct {
		Status Status `json:"status"`
		analyticsView
	}{status(snap, s.cfg.Admin), s.analytics.view()})
}
