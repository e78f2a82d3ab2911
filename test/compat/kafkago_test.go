package compat

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

func TestKafkaGo(t *testing.T) {
	const topic, group = "compat-kafka-go", "compat-kafka-go-g"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(brokerAddr), Timeout: 10 * time.Second}
	codecs := map[string]compress.Compression{"none": 0, "gzip": compress.Gzip, "snappy": compress.Snappy, "lz4": compress.Lz4, "zstd": compress.Zstd}

	consume := func(n int) ([]rec, error) {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{brokerAddr}, GroupID: group, Topic: topic,
			StartOffset: kafka.FirstOffset, CommitInterval: 0, MaxWait: 200 * time.Millisecond})
		defer r.Close()
		var got []rec
		for len(got) < n {
			m, err := r.ReadMessage(ctx) // commits synchronously (CommitInterval 0)
			if err != nil {
				return got, err
			}
			hs := map[string]string{}
			for _, h := range m.Headers {
				hs[h.Key] = string(h.Value)
			}
			got = append(got, rec{string(m.Key), string(m.Value), hs})
		}
		return got, nil
	}

	runScenarios(t, "kafka-go", withSecurity(kafkaGoSecurity(topic), map[string]scenarioFunc{
		"consumer-protocol": func(t *testing.T) error {
			return notApplicable("segmentio/kafka-go speaks only the classic group protocol")
		},
		"share-group": func(t *testing.T) error {
			return notApplicable("segmentio/kafka-go has no share group consumer")
		},
		"transactions": func(t *testing.T) error {
			return notApplicable("segmentio/kafka-go has no transactional producer")
		},
		"create-topic": func(t *testing.T) error {
			resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
				Topic: topic, NumPartitions: 3, ReplicationFactor: 1,
				ConfigEntries: []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "3600000"}},
			}}})
			if err != nil {
				return err
			}
			return resp.Errors[topic]
		},
		"produce-codecs": func(t *testing.T) error {
			for _, codec := range allCodecs {
				w := &kafka.Writer{Addr: kafka.TCP(brokerAddr), Topic: topic, RequiredAcks: kafka.RequireAll,
					Compression: codecs[codec], Balancer: &kafka.Hash{}, BatchTimeout: 10 * time.Millisecond}
				var msgs []kafka.Message
				for _, r := range produced([]string{codec}) {
					msgs = append(msgs, kafka.Message{Key: []byte(r.key), Value: []byte(r.value), Headers: []kafka.Header{{Key: "codec", Value: []byte(codec)}}})
				}
				err := w.WriteMessages(ctx, msgs...)
				w.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", codec, err)
				}
			}
			return nil
		},
		"consume-group": func(t *testing.T) error {
			got, err := consume(len(allCodecs) * perCodec)
			if err != nil {
				return err
			}
			return sameRecords(got, produced(allCodecs))
		},
		"resume": func(t *testing.T) error {
			w := &kafka.Writer{Addr: kafka.TCP(brokerAddr), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: 10 * time.Millisecond}
			after := []rec{{key: "after-1", value: "later", headers: map[string]string{}}, {key: "after-2", value: "later", headers: map[string]string{}}}
			err := w.WriteMessages(ctx, kafka.Message{Key: []byte(after[0].key), Value: []byte("later")}, kafka.Message{Key: []byte(after[1].key), Value: []byte("later")})
			w.Close()
			if err != nil {
				return err
			}
			got, err := consume(2)
			if err != nil {
				return err
			}
			return sameRecords(got, after)
		},
		"list-offsets": func(t *testing.T) error {
			req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {
				kafka.LastOffsetOf(0), kafka.LastOffsetOf(1), kafka.LastOffsetOf(2),
			}}}
			resp, err := client.ListOffsets(ctx, req)
			if err != nil {
				return err
			}
			var total int64
			for _, p := range resp.Topics[topic] {
				if p.Error != nil {
					return p.Error
				}
				total += p.LastOffset
			}
			if total != int64(len(allCodecs)*perCodec+2) {
				return fmt.Errorf("last offsets add up to %d", total)
			}
			return nil
		},
		"describe-configs": func(t *testing.T) error {
			resp, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
				ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"retention.ms"},
			}}})
			if err != nil {
				return err
			}
			for _, r := range resp.Resources {
				for _, e := range r.ConfigEntries {
					if e.ConfigName == "retention.ms" && e.ConfigValue == "3600000" {
						return nil
					}
				}
			}
			return fmt.Errorf("retention.ms=3600000 not described: %+v", resp.Resources)
		},
		"error-path": func(t *testing.T) error {
			conn, err := kafka.DialLeader(ctx, "tcp", brokerAddr, topic, 0)
			if err != nil {
				return err
			}
			defer conn.Close()
			_, err = conn.Seek(1_000_000, kafka.SeekAbsolute)
			if err == nil {
				conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, err = conn.ReadMessage(1 << 20)
			}
			if !errors.Is(err, kafka.OffsetOutOfRange) {
				return fmt.Errorf("reading past the end: %v", err)
			}
			return nil
		},
	}))
}

// kafkaGoSecurity: a Transport (writer) and a Dialer (reader) with kafka-go's
// sasl/scram and sasl/plain mechanisms and a TLS config.
func kafkaGoSecurity(topic string) map[string]scenarioFunc {
	scram512 := func(pass string) sasl.Mechanism {
		m, err := scram.Mechanism(scram.SHA512, secUser, pass)
		if err != nil {
			panic(err) // only for an unknown hash
		}
		return m
	}
	transport := func(addr string, m sasl.Mechanism) (*kafka.Transport, *kafka.Dialer, error) {
		tr := &kafka.Transport{SASL: m}
		d := &kafka.Dialer{Timeout: 10 * time.Second, SASLMechanism: m}
		if addr == secure.saslSSL {
			cfg, err := secTLS()
			if err != nil {
				return nil, nil, err
			}
			tr.TLS, d.TLS = cfg, cfg
		}
		return tr, d, nil
	}
	roundTrip := func(addr string, m sasl.Mechanism, scenario string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tr, d, err := transport(addr, m)
		if err != nil {
			return err
		}
		tp := secTopic(topic, scenario)
		// The user may create its topics (kafka-go's writer does not wait
		// for a topic it auto-creates).
		cl := &kafka.Client{Addr: kafka.TCP(addr), Transport: tr}
		resp, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: tp, NumPartitions: 1, ReplicationFactor: 1}}})
		if err == nil {
			err = resp.Errors[tp]
		}
		if err != nil {
			return fmt.Errorf("create topic: %w", err)
		}
		w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: tp, Transport: tr, RequiredAcks: kafka.RequireAll, BatchTimeout: 10 * time.Millisecond}
		var msgs []kafka.Message
		for _, v := range secValues(scenario) {
			msgs = append(msgs, kafka.Message{Value: []byte(v)})
		}
		err = w.WriteMessages(ctx, msgs...)
		w.Close()
		if err != nil {
			return fmt.Errorf("produce: %w", err)
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, GroupID: tp, Topic: tp, Dialer: d,
			StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond})
		defer r.Close()
		var got []string
		for len(got) < len(msgs) {
			msg, err := r.ReadMessage(ctx)
			if err != nil {
				return fmt.Errorf("consume: %w", err)
			}
			got = append(got, string(msg.Value))
		}
		return checkValues(got, scenario)
	}
	// dialLeader opens a connection to tp's leader: a Writer would report a
	// topic it may not see as UNKNOWN_TOPIC_OR_PARTITION (its Transport
	// reads the metadata of all topics, where Kafka lists only the visible
	// ones), the Dialer asks for the topic itself.
	dialLeader := func(pass, tp string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, d, err := transport(secure.saslSSL, scram512(pass))
		if err != nil {
			return err
		}
		conn, err := d.DialLeader(ctx, "tcp", secure.saslSSL, tp, 0)
		if err != nil {
			return err
		}
		conn.Close()
		return nil
	}
	return map[string]scenarioFunc{
		"sasl-scram-tls": func(t *testing.T) error { return roundTrip(secure.saslSSL, scram512(secPassword), "sasl-scram-tls") },
		"sasl-plain": func(t *testing.T) error {
			return roundTrip(secure.saslPlaintext, plain.Mechanism{Username: secUser, Password: secPassword}, "sasl-plain")
		},
		"bad-password": func(t *testing.T) error {
			err := dialLeader("wrong", secDenied)
			if !errors.Is(err, kafka.SASLAuthenticationFailed) {
				return fmt.Errorf("want kafka.SASLAuthenticationFailed, got %v", err)
			}
			return nil
		},
		"acl-denied": func(t *testing.T) error {
			err := dialLeader(secPassword, secDenied)
			if !errors.Is(err, kafka.TopicAuthorizationFailed) {
				return fmt.Errorf("want kafka.TopicAuthorizationFailed, got %v", err)
			}
			return nil
		},
	}
}
