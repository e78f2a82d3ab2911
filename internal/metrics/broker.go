package metrics

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Broker is the broker's instrumentation. Its methods are safe for
// concurrent use and cost a request a few atomic operations: the counter
// and histogram of an API and version are looked up in an array, not by
// label, and created on the first request of that version only, so
// /metrics lists the versions clients use rather than every one kmsg knows.
type Broker struct {
	requests  *prometheus.CounterVec
	durations *prometheus.HistogramVec
	errors    *prometheus.CounterVec
	fsync     prometheus.Histogram

	byAPI [][]atomic.Pointer[requestMetrics] // [key][version]

	bytesIn, bytesOut  atomic.Uint64
	connections        atomic.Int64
	connectionsTotal   atomic.Uint64
	bytesInDesc        *prometheus.Desc
	bytesOutDesc       *prometheus.Desc
	connectionsDesc    *prometheus.Desc
	connectionsTotDesc *prometheus.Desc
	logSizeDesc        *prometheus.Desc
	queuedRequestDesc  *prometheus.Desc
	fetchSessionsDesc  *prometheus.Desc
	sessionPartsDesc   *prometheus.Desc
	sessionsMadeDesc   *prometheus.Desc
	incrementalDesc    *prometheus.Desc

	// FetchSessions, when set, reports the incremental fetch sessions.
	FetchSessions func() FetchSessions

	// QueuedRequestBytes, when set, is the bytes of requests being read
	// or handled now (what queued.max.request.bytes bounds).
	QueuedRequestBytes func() int64

	// LogSizes, when set, lists every partition's size on disk at scrape
	// time.
	LogSizes func(yield func(topic string, partition int32, bytes int64))
}

// FetchSessions is what the broker reports of its incremental fetch
// sessions (KIP-227).
type FetchSessions struct {
	Sessions, Partitions int64 // kept now
	Made, Incremental    int64 // sessions made, fetches answered in one, since the start
}

type requestMetrics struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// RequestBuckets are the latency buckets of creek_broker_request_duration_seconds:
// 50 µs (an in-memory answer) to 30 s (a long poll or a slow fsync).
var RequestBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// FsyncBuckets are the buckets of creek_log_fsync_duration_seconds.
var FsyncBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5}

// NewBroker makes the broker's metrics for API keys up to maxKey and
// versions up to maxVersion.
func NewBroker(maxKey, maxVersion int16) *Broker {
	m := &Broker{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "creek_broker_requests_total", Help: "Requests answered, by Kafka API and version.",
		}, []string{"api", "version"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "creek_broker_request_duration_seconds", Help: "Time from a request's arrival to its answer written, by Kafka API and version (fsync waits and long polls included).",
			Buckets: RequestBuckets,
		}, []string{"api", "version"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "creek_broker_errors_total", Help: "Error codes in answers (one per partition, group or resource that failed), by Kafka API and error.",
		}, []string{"api", "error"}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "creek_log_fsync_duration_seconds", Help: "Time of one fsync of a partition's active segment.", Buckets: FsyncBuckets,
		}),
		bytesInDesc:        prometheus.NewDesc("creek_broker_bytes_in_total", "Bytes of requests received, framing included.", nil, nil),
		bytesOutDesc:       prometheus.NewDesc("creek_broker_bytes_out_total", "Bytes of answers sent, framing and record data sent with sendfile included.", nil, nil),
		connectionsDesc:    prometheus.NewDesc("creek_broker_connections", "Client connections open now.", nil, nil),
		connectionsTotDesc: prometheus.NewDesc("creek_broker_connections_accepted_total", "Client connections accepted.", nil, nil),
		queuedRequestDesc:  prometheus.NewDesc("creek_broker_queued_request_bytes", "Bytes of requests being read or handled now, across all connections: what queued.max.request.bytes bounds (Kafka's MemoryPoolUsed).", nil, nil),
		fetchSessionsDesc:  prometheus.NewDesc("creek_broker_fetch_sessions", "Incremental fetch sessions (KIP-227) kept now; max.incremental.fetch.session.cache.slots bounds them (Kafka's NumIncrementalFetchSessions).", nil, nil),
		sessionPartsDesc:   prometheus.NewDesc("creek_broker_fetch_session_partitions", "Partitions held by all incremental fetch sessions (Kafka's NumIncrementalFetchPartitionsCached).", nil, nil),
		sessionsMadeDesc:   prometheus.NewDesc("creek_broker_fetch_sessions_made_total", "Incremental fetch sessions made by full fetches.", nil, nil),
		incrementalDesc:    prometheus.NewDesc("creek_broker_incremental_fetches_total", "Fetches answered in a session: only the partitions with news.", nil, nil),
		logSizeDesc:        prometheus.NewDesc("creek_log_size_bytes", "Bytes a partition's segments take on disk.", []string{"topic", "partition"}, nil),
		byAPI:              make([][]atomic.Pointer[requestMetrics], maxKey+1),
	}
	for k := range m.byAPI {
		m.byAPI[k] = make([]atomic.Pointer[requestMetrics], maxVersion+1)
	}
	return m
}

// Request counts one answered request of key and version that took d, and
// the bytes that came in (size) and went out.
func (m *Broker) Request(key, version int16, in, out int, d time.Duration) {
	m.bytesIn.Add(uint64(in))
	m.bytesOut.Add(uint64(out))
	if key < 0 || int(key) >= len(m.byAPI) || version < 0 || int(version) >= len(m.byAPI[key]) {
		return
	}
	slot := &m.byAPI[key][version]
	rm := slot.Load()
	if rm == nil {
		rm = m.resolve(key, version, slot)
	}
	rm.count.Inc()
	rm.duration.Observe(d.Seconds())
}

// resolve creates the metrics of one API version, once.
func (m *Broker) resolve(key, version int16, slot *atomic.Pointer[requestMetrics]) *requestMetrics {
	api, v := kmsg.NameForKey(key), strconv.Itoa(int(version))
	rm := &requestMetrics{count: m.requests.WithLabelValues(api, v), duration: m.durations.WithLabelValues(api, v)}
	if !slot.CompareAndSwap(nil, rm) {
		return slot.Load()
	}
	return rm
}

// Errors counts the non-zero error codes in an answer of API key.
func (m *Broker) Errors(key int16, resp kmsg.Response) {
	eachErrorCode(resp, func(code int16) {
		name := strconv.Itoa(int(code))
		if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
			name = e.Message
		}
		m.errors.WithLabelValues(kmsg.NameForKey(key), name).Inc()
	})
}

// Connected counts a new client connection; Disconnected its end.
func (m *Broker) Connected() { m.connections.Add(1); m.connectionsTotal.Add(1) }

// Disconnected counts a client connection closed.
func (m *Broker) Disconnected() { m.connections.Add(-1) }

// Fsync records the duration of one fsync.
func (m *Broker) Fsync(d time.Duration) { m.fsync.Observe(d.Seconds()) }

// Describe implements prometheus.Collector.
func (m *Broker) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	m.durations.Describe(ch)
	m.errors.Describe(ch)
	m.fsync.Describe(ch)
	for _, d := range []*prometheus.Desc{m.bytesInDesc, m.bytesOutDesc, m.connectionsDesc, m.connectionsTotDesc, m.logSizeDesc, m.queuedRequestDesc, m.fetchSessionsDesc, m.sessionPartsDesc, m.sessionsMadeDesc, m.incrementalDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Broker) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	m.durations.Collect(ch)
	m.errors.Collect(ch)
	m.fsync.Collect(ch)
	ch <- prometheus.MustNewConstMetric(m.bytesInDesc, prometheus.CounterValue, float64(m.bytesIn.Load()))
	ch <- prometheus.MustNewConstMetric(m.bytesOutDesc, prometheus.CounterValue, float64(m.bytesOut.Load()))
	ch <- prometheus.MustNewConstMetric(m.connectionsDesc, prometheus.GaugeValue, float64(m.connections.Load()))
	ch <- prometheus.MustNewConstMetric(m.connectionsTotDesc, prometheus.CounterValue, float64(m.connectionsTotal.Load()))
	if m.QueuedRequestBytes != nil {
		ch <- prometheus.MustNewConstMetric(m.queuedRequestDesc, prometheus.GaugeValue, float64(m.QueuedRequestBytes()))
	}
	if m.FetchSessions != nil {
		fs := m.FetchSessions()
		ch <- prometheus.MustNewConstMetric(m.fetchSessionsDesc, prometheus.GaugeValue, float64(fs.Sessions))
		ch <- prometheus.MustNewConstMetric(m.sessionPartsDesc, prometheus.GaugeValue, float64(fs.Partitions))
		ch <- prometheus.MustNewConstMetric(m.sessionsMadeDesc, prometheus.CounterValue, float64(fs.Made))
		ch <- prometheus.MustNewConstMetric(m.incrementalDesc, prometheus.CounterValue, float64(fs.Incremental))
	}
	if m.LogSizes != nil {
		m.LogSizes(func(topic string, partition int32, bytes int64) {
			ch <- prometheus.MustNewConstMetric(m.logSizeDesc, prometheus.GaugeValue, float64(bytes), topic, strconv.Itoa(int(partition)))
		})
	}
}
