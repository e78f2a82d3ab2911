package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

// Pipelines exposes the counters of running pipelines (creek_pipeline_*),
// read from their Stats at scrape time: the runner adds to those atomics
// once per batch, so measuring costs the pipeline nothing more.
type Pipelines struct {
	mu    sync.Mutex
	pipes []pipelineEntry
	batch *prometheus.HistogramVec

	in, out, filtered, dead, failed, lag *prometheus.Desc
}

type pipelineEntry struct {
	name, source, sink string
	stats              *pipeline.Stats
}

// NewPipelines makes an empty pipeline collector.
func NewPipelines() *Pipelines {
	labels := []string{"pipeline", "stage"}
	return &Pipelines{
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "creek_pipeline_sink_batch_duration_seconds", Help: "Time the sink took to make one batch durable (or fail), by pipeline and sink.",
			Buckets: RequestBuckets,
		}, []string{"pipeline", "sink"}),
		in:       prometheus.NewDesc("creek_pipeline_records_in_total", "Records the source handed to the pipeline.", labels, nil),
		out:      prometheus.NewDesc("creek_pipeline_records_out_total", "Records the sink wrote durably and were acknowledged to the source.", labels, nil),
		filtered: prometheus.NewDesc("creek_pipeline_records_filtered_total", "Records a processor dropped on purpose (a filter).", labels, nil),
		dead:     prometheus.NewDesc("creek_pipeline_records_dead_lettered_total", "Records sent to the dead-letter topic because a processor or the store refused them alone.", labels, nil),
		failed:   prometheus.NewDesc("creek_pipeline_records_failed_total", "Records that failed: malformed input a source dropped, or writes that failed and will be delivered again.", labels, nil),
		lag:      prometheus.NewDesc("creek_pipeline_lag_records", "Records the source knows it has yet to read (its Kafka consumer lag); absent when unknown.", []string{"pipeline"}, nil),
	}
}

// Add exposes a pipeline's counters under its name; source and sink are
// the plugin names (generate, kafka, s3...). It sets p.SinkBatch.
func (c *Pipelines) Add(p *pipeline.Pipeline, source, sink string) {
	if p.Stats == nil {
		p.Stats = &pipeline.Stats{}
		p.Stats.Lag.Store(-1)
	}
	obs := c.batch.WithLabelValues(p.Name, sink)
	p.SinkBatch = func(d time.Duration) { obs.Observe(d.Seconds()) }
	c.mu.Lock()
	c.pipes = append(c.pipes, pipelineEntry{name: p.Name, source: source, sink: sink, stats: p.Stats})
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *Pipelines) Describe(ch chan<- *prometheus.Desc) {
	c.batch.Describe(ch)
	for _, d := range []*prometheus.Desc{c.in, c.out, c.filtered, c.dead, c.failed, c.lag} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Pipelines) Collect(ch chan<- prometheus.Metric) {
	c.batch.Collect(ch)
	c.mu.Lock()
	pipes := append([]pipelineEntry(nil), c.pipes...)
	c.mu.Unlock()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, p := range pipes {
		s := p.stats.Snapshot()
		source, sink := "source "+p.source, "sink "+p.sink
		counter(c.in, s.In, p.name, source)
		counter(c.out, s.Out, p.name, sink)
		counter(c.filtered, s.Filtered, p.name, "processors")
		// The runner counts dead letters and failures for the pipeline as
		// a whole: a source, a processor or the sink may have caused them.
		counter(c.dead, s.DeadLetters, p.name, "pipeline")
		counter(c.failed, s.Errors, p.name, "pipeline")
		if s.Lag >= 0 {
			ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(s.Lag), p.name)
		}
	}
}
