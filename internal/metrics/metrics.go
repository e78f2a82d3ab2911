// Package metrics holds creek's Prometheus collectors: the broker's own
// request, byte, connection, error and fsync figures (creek_broker_*,
// creek_log_*), the pipelines' record counters (creek_pipeline_*), and the
// cluster figures under kafka_exporter's names (kafka_*), so that Grafana
// dashboards made for kafka_exporter work unchanged.
//
// Nothing here runs per record: the broker counts per request into
// counters resolved once per API and version, bytes go into atomic
// integers read at scrape time, and cluster figures come from a snapshot
// refreshed on an interval, not per scrape.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry is a registry with the Go runtime and process collectors,
// as the default registry of client_golang has.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves a registry's metrics in the Prometheus text format.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
