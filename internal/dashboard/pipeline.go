package dashboard

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/creek-pipeline/creek/internal/clusterview"
)

// pipelineRates samples the counters of this process's pipelines every
// second, for their records/s in and out.
type pipelineRates struct {
	pipes []Pipeline
	mu    sync.Mutex
	last  []pipelineSample
	rates []rate
}

type pipelineSample struct {
	at      time.Time
	in, out int64
}

type rate struct{ in, out float64 }

func newPipelineRates(pipes []Pipeline) *pipelineRates {
	return &pipelineRates{pipes: pipes, last: make([]pipelineSample, len(pipes)), rates: make([]rate, len(pipes))}
}

func (p *pipelineRates) run(ctx context.Context) {
	if len(p.pipes) == 0 {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		p.sample(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (p *pipelineRates) sample(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, pipe := range p.pipes {
		if pipe.Stats == nil {
			continue
		}
		s := pipe.Stats.Snapshot()
		prev := p.last[i]
		if !prev.at.IsZero() {
			dt := now.Sub(prev.at).Seconds()
			// Smoothed over a few seconds: a pipeline writes in batches.
			p.rates[i].in = 0.5*p.rates[i].in + 0.5*float64(s.In-prev.in)/dt
			p.rates[i].out = 0.5*p.rates[i].out + 0.5*float64(s.Out-prev.out)/dt
		}
		p.last[i] = pipelineSample{at: now, in: s.In, out: s.Out}
	}
}

// pipelineView is the pipeline page: this process's pipelines with their
// counters, and the topics and groups they meet (or, for a cluster with no
// local pipelines, the busiest topics and their groups).
type pipelineView struct {
	Pipelines []pipelineRow `json:"pipelines"`
	Topics    []topicRow    `json:"topics"`
	Groups    []groupRow    `json:"groups"`
}

type pipelineRow struct {
	Pipeline
	In          int64   `json:"in"`
	Out         int64   `json:"out"`
	Errors      int64   `json:"errors"`
	Filtered    int64   `json:"filtered"`
	DeadLetters int64   `json:"dead_letters"`
	Lag         int64   `json:"lag"` // -1: unknown
	InRate      float64 `json:"in_per_sec"`
	OutRate     float64 `json:"out_per_sec"`
}

// maxDiagramTopics bounds the topics the diagram draws.
const maxDiagramTopics = 8

func (s *Server) pipelineView(snap *clusterview.Snapshot) pipelineView {
	v := pipelineView{Pipelines: []pipelineRow{}, Topics: []topicRow{}, Groups: []groupRow{}}
	wanted := map[string]bool{}
	s.rates.mu.Lock()
	for i, p := range s.rates.pipes {
		row := pipelineRow{Pipeline: p, Lag: -1, InRate: s.rates.rates[i].in, OutRate: s.rates.rates[i].out}
		if p.Stats != nil {
			st := p.Stats.Snapshot()
			row.In, row.Out, row.Errors, row.Filtered, row.DeadLetters, row.Lag = st.In, st.Out, st.Errors, st.Filtered, st.DeadLetters, st.Lag
		}
		v.Pipelines = append(v.Pipelines, row)
		for _, t := range []string{p.Reads, p.Writes} {
			if t != "" {
				wanted[t] = true
			}
		}
	}
	s.rates.mu.Unlock()
	if len(wanted) == 0 {
		// No local pipelines: the busiest topics that someone reads.
		if t := s.defaultTopic(); t != "" {
			wanted[t] = true
		}
		for _, t := range snap.Topics {
			if len(wanted) >= maxDiagramTopics {
				break
			}
			if !t.Internal && len(t.Groups) > 0 {
				wanted[t.Name] = true
			}
		}
	}
	groups := map[string]bool{}
	for _, t := range snap.Topics {
		if !wanted[t.Name] {
			continue
		}
		v.Topics = append(v.Topics, topicRow{Name: t.Name, Partitions: len(t.Partitions), Records: t.Records, Size: t.Size,
			InRate: t.InRate, OutRate: t.OutRate, Groups: t.Groups, Error: t.Err})
		for _, g := range t.Groups {
			groups[g] = true
		}
	}
	for _, g := range snap.Groups {
		if groups[g.Group] {
			v.Groups = append(v.Groups, groupRow{Group: g.Group, Type: g.Type, State: g.State, Members: len(g.Members), TotalLag: g.TotalLag,
				Rate: g.Rate, Topics: groupTopics(g), Lag: thin(g.LagHistory, 30), Error: g.Err})
		}
	}
	return v
}

func (s *Server) getPipeline(w http.ResponseWriter, r *http.Request) {
	snap := s.view.Snapshot()
	writeJSON(w, http.StatusOK, struct {
		Status Status `json:"status"`
		pipelineView
	}{status(snap, s.cfg.Admin), s.pipelineView(snap)})
}
