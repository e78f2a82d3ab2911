package broker

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The broker's metrics count what real clients do: produce and fetch
// requests by version, the bytes both ways, fsyncs, connections, the size
// of each partition, and error codes in answers.
func TestBrokerMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	b, err := Start(context.Background(), Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Metrics: reg,
		Settings: map[string]string{"auto.create.topics.enable": "false"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx := protoCtx(t)
	protoCreateTopic(t, b, "events", 2, nil)
	cl := protoClient(t, b, kgo.DefaultProduceTopic("events"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	value := []byte(strings.Repeat("v", 1000))
	for range 20 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	protoConsume(t, b, "events", 20)

	// A request for a topic that does not exist is answered with an error code.
	c := protoDial(t, b)
	md := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("missing")
	md.Topics = append(md.Topics, rt)
	c.roundTrip(md, 12)

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, f := range families {
		for _, m := range f.Metric {
			key := f.GetName()
			for _, l := range m.Label {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.Counter != nil:
				values[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				values[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				values[key] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	sum := func(prefix string) (n float64) {
		for k, v := range values {
			if strings.HasPrefix(k, prefix) {
				n += v
			}
		}
		return n
	}
	if n := sum("creek_broker_requests_total,api=Produce,"); n < 20 {
		t.Errorf("produce requests counted: %v, want at least 20 (%v)", n, values)
	}
	if n := sum("creek_broker_requests_total,api=Fetch,"); n < 1 {
		t.Errorf("fetch requests counted: %v", n)
	}
	if n := sum("creek_broker_request_duration_seconds,api=Produce,"); n < 20 {
		t.Errorf("produce latencies observed: %v", n)
	}
	if in := values["creek_broker_bytes_in_total"]; in < 20*1000 {
		t.Errorf("bytes in %v, want at least the 20 kB produced", in)
	}
	if out := values["creek_broker_bytes_out_total"]; out < 20*1000 {
		t.Errorf("bytes out %v, want at least the 20 kB fetched", out)
	}
	if n := values["creek_log_fsync_duration_seconds"]; n < 1 {
		t.Errorf("fsyncs observed: %v (fsync=acks syncs before each answer)", n)
	}
	if n := values["creek_broker_connections_accepted_total"]; n < 2 {
		t.Errorf("connections accepted: %v", n)
	}
	if n := values["creek_broker_connections"]; n < 1 {
		t.Errorf("connections open: %v", n)
	}
	if n := sum("creek_log_size_bytes,partition="); n < 20*1000 {
		t.Errorf("log sizes add up to %v, want at least 20 kB", n)
	}
	if n := values["creek_broker_errors_total,api=Metadata,error=UNKNOWN_TOPIC_OR_PARTITION"]; n != 1 {
		t.Errorf("Metadata errors: %v, want 1 UNKNOWN_TOPIC_OR_PARTITION (%v)", n, values)
	}
	if n := testutil.CollectAndCount(reg, "creek_broker_requests_total"); n < 3 {
		t.Errorf("request series: %d", n)
	}
}
