package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/creek-pipeline/creek/internal/clusterview"
)

// Cluster exposes a cluster view under kafka_exporter's metric names and
// labels (kafka_brokers, kafka_topic_partition_current_offset,
// kafka_consumergroup_lag, ...), so Grafana's kafka_exporter dashboard
// (id 7589) works unchanged. The figures come from the view's latest
// snapshot, never from a request per scrape. While the cluster cannot be
// read, only creek_cluster_up (0) is exposed, not stale offsets.
type Cluster struct {
	view *clusterview.View

	up, age                                                            *prometheus.Desc
	brokers, brokerInfo, partitions                                    *prometheus.Desc
	current, oldest, leader, replicas, isr, underReplicated, preferred *prometheus.Desc
	groupCurrent, groupCurrentSum, groupLag, groupLagSum, members      *prometheus.Desc
}

// NewCluster exposes view.
func NewCluster(view *clusterview.View) *Cluster {
	tp := []string{"topic", "partition"}
	gtp := []string{"consumergroup", "topic", "partition"}
	gt := []string{"consumergroup", "topic"}
	return &Cluster{
		view:            view,
		up:              prometheus.NewDesc("creek_cluster_up", "1 when the last read of the cluster through the Kafka protocol worked.", nil, nil),
		age:             prometheus.NewDesc("creek_cluster_snapshot_age_seconds", "Age of the cluster figures below.", nil, nil),
		brokers:         prometheus.NewDesc("kafka_brokers", "Number of Brokers in the Kafka Cluster.", nil, nil),
		brokerInfo:      prometheus.NewDesc("kafka_broker_info", "Information about the Kafka Broker.", []string{"address", "id"}, nil),
		partitions:      prometheus.NewDesc("kafka_topic_partitions", "Number of partitions for this Topic", []string{"topic"}, nil),
		current:         prometheus.NewDesc("kafka_topic_partition_current_offset", "Current Offset of a Broker at Topic/Partition", tp, nil),
		oldest:          prometheus.NewDesc("kafka_topic_partition_oldest_offset", "Oldest Offset of a Broker at Topic/Partition", tp, nil),
		leader:          prometheus.NewDesc("kafka_topic_partition_leader", "Leader Broker ID of this Topic/Partition", tp, nil),
		replicas:        prometheus.NewDesc("kafka_topic_partition_replicas", "Number of Replicas for this Topic/Partition", tp, nil),
		isr:             prometheus.NewDesc("kafka_topic_partition_in_sync_replica", "Number of In-Sync Replicas for this Topic/Partition", tp, nil),
		underReplicated: prometheus.NewDesc("kafka_topic_partition_under_replicated_partition", "1 if Topic/Partition is under Replicated", tp, nil),
		preferred:       prometheus.NewDesc("kafka_topic_partition_leader_is_preferred", "1 if Topic/Partition is using the Preferred Broker", tp, nil),
		groupCurrent:    prometheus.NewDesc("kafka_consumergroup_current_offset", "Current Offset of a ConsumerGroup at Topic/Partition", gtp, nil),
		groupCurrentSum: prometheus.NewDesc("kafka_consumergroup_current_offset_sum", "Current Offset of a ConsumerGroup at Topic for all partitions", gt, nil),
		groupLag:        prometheus.NewDesc("kafka_consumergroup_lag", "Current Approximate Lag of a ConsumerGroup at Topic/Partition", gtp, nil),
		groupLagSum:     prometheus.NewDesc("kafka_consumergroup_lag_sum", "Current Approximate Lag of a ConsumerGroup at Topic for all partitions", gt, nil),
		members:         prometheus.NewDesc("kafka_consumergroup_members", "Amount of members in a consumer group", []string{"consumergroup"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Cluster) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.age, c.brokers, c.brokerInfo, c.partitions, c.current, c.oldest, c.leader, c.replicas,
		c.isr, c.underReplicated, c.preferred, c.groupCurrent, c.groupCurrentSum, c.groupLag, c.groupLagSum, c.members} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Cluster) Collect(ch chan<- prometheus.Metric) {
	s := c.view.Snapshot()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if s.Down() {
		gauge(c.up, 0)
		return
	}
	gauge(c.up, 1)
	gauge(c.age, s.Taken.Sub(s.LastOK).Seconds())
	gauge(c.brokers, float64(len(s.Brokers)))
	for _, b := range s.Brokers {
		gauge(c.brokerInfo, 1, b.Host+":"+strconv.Itoa(int(b.Port)), strconv.Itoa(int(b.ID)))
	}
	for _, t := range s.Topics {
		gauge(c.partitions, float64(len(t.Partitions)), t.Name)
		for _, p := range t.Partitions {
			part := strconv.Itoa(int(p.Partition))
			gauge(c.current, float64(p.End), t.Name, part)
			gauge(c.oldest, float64(p.Start), t.Name, part)
			gauge(c.leader, float64(p.Leader), t.Name, part)
			gauge(c.replicas, float64(len(p.Replicas)), t.Name, part)
			gauge(c.isr, float64(len(p.ISR)), t.Name, part)
			gauge(c.underReplicated, boolGauge(len(p.ISR) < len(p.Replicas)), t.Name, part)
			gauge(c.preferred, boolGauge(len(p.Replicas) > 0 && p.Replicas[0] == p.Leader), t.Name, part)
		}
	}
	for _, g := range s.Groups {
		gauge(c.members, float64(len(g.Members)), g.Group)
		type sums struct{ current, lag int64 }
		byTopic := map[string]*sums{}
		for _, p := range g.Partitions {
			if p.Committed < 0 {
				continue // kafka_exporter reports only committed partitions
			}
			part := strconv.Itoa(int(p.Partition))
			gauge(c.groupCurrent, float64(p.Committed), g.Group, p.Topic, part)
			gauge(c.groupLag, float64(p.Lag), g.Group, p.Topic, part)
			sm := byTopic[p.Topic]
			if sm == nil {
				sm = &sums{}
				byTopic[p.Topic] = sm
			}
			sm.current += p.Committed
			sm.lag += p.Lag
		}
		for topic, sm := range byTopic {
			gauge(c.groupCurrentSum, float64(sm.current), g.Group, topic)
			gauge(c.groupLagSum, float64(sm.lag), g.Group, topic)
		}
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
