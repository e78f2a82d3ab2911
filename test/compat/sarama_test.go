package compat

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
)

func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V3_6_0_0
	c.ClientID = "compat-sarama"
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Enable = false
	return c
}

// saramaCollector is a consumer group handler that collects n records and commits.
type saramaCollector struct {
	n    int
	mu   sync.Mutex
	got  []rec
	done chan struct{}
	once sync.Once
}

func (h *saramaCollector) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaCollector) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *saramaCollector) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		hs := map[string]string{}
		for _, x := range m.Headers {
			hs[string(x.Key)] = string(x.Value)
		}
		h.mu.Lock()
		h.got = append(h.got, rec{string(m.Key), string(m.Value), hs})
		full := len(h.got) >= h.n
		h.mu.Unlock()
		s.MarkMessage(m, "")
		if full {
			s.Commit()
			h.once.Do(func() { close(h.done) })
		}
	}
	return nil
}

// saramaConsume reads n records of topic in a consumer group and commits.
func saramaConsume(cfg *sarama.Config, brokers []string, group, topic string, n int) ([]rec, error) {
	g, err := sarama.NewConsumerGroup(brokers, group, cfg)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	h := &saramaCollector{n: n, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, h); err != nil {
				errc <- err
				return
			}
		}
	}()
	select {
	case <-h.done:
	case err := <-errc:
		cancel()
		return nil, err
	case <-time.After(30 * time.Second):
		cancel()
		return h.got, fmt.Errorf("timed out with %d of %d records", len(h.got), n)
	}
	cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got, nil
}

func TestSarama(t *testing.T) {
	const topic, group = "compat-sarama", "compat-sarama-g"
	brokers := []string{brokerAddr}
	codecs := map[string]sarama.CompressionCodec{"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP,
		"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD}

	consume := func(n int) ([]rec, error) { return saramaConsume(saramaConfig(), brokers, group, topic, n) }

	admin := func() (sarama.ClusterAdmin, error) { return sarama.NewClusterAdmin(brokers, saramaConfig()) }

	runScenarios(t, "sarama", withSecurity(saramaSecurity(topic), map[string]scenarioFunc{
		"create-topic": func(t *testing.T) error {
			a, err := admin()
			if err != nil {
				return err
			}
			defer a.Close()
			ret := "3600000"
			return a.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1, ConfigEntries: map[string]*string{"retention.ms": &ret}}, false)
		},
		"produce-codecs": func(t *testing.T) error {
			for _, codec := range allCodecs {
				cfg := saramaConfig()
				cfg.Producer.Compression = codecs[codec]
				cfg.Producer.Idempotent = true
				cfg.Net.MaxOpenRequests = 1
				p, err := sarama.NewSyncProducer(brokers, cfg)
				if err != nil {
					return fmt.Errorf("%s: %w", codec, err)
				}
				var msgs []*sarama.ProducerMessage
				for _, r := range produced([]string{codec}) {
					msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(r.key), Value: sarama.StringEncoder(r.value),
						Headers: []sarama.RecordHeader{{Key: []byte("codec"), Value: []byte(codec)}}})
				}
				err = p.SendMessages(msgs)
				p.Close()
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
			p, err := sarama.NewSyncProducer(brokers, saramaConfig())
			if err != nil {
				return err
			}
			after := []rec{{key: "after-1", value: "later", headers: map[string]string{}}, {key: "after-2", value: "later", headers: map[string]string{}}}
			for _, r := range after {
				if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(r.key), Value: sarama.StringEncoder(r.value)}); err != nil {
					return err
				}
			}
			p.Close()
			got, err := consume(2)
			if err != nil {
				return err
			}
			return sameRecords(got, after)
		},
		"list-offsets": func(t *testing.T) error {
			c, err := sarama.NewClient(brokers, saramaConfig())
			if err != nil {
				return err
			}
			defer c.Close()
			var total int64
			for p := int32(0); p < 3; p++ {
				newest, err := c.GetOffset(topic, p, sarama.OffsetNewest)
				if err != nil {
					return err
				}
				oldest, err := c.GetOffset(topic, p, sarama.OffsetOldest)
				if err != nil || oldest != 0 {
					return fmt.Errorf("oldest offset of partition %d: %d %v", p, oldest, err)
				}
				total += newest
			}
			if total != int64(len(allCodecs)*perCodec+2) {
				return fmt.Errorf("newest offsets add up to %d", total)
			}
			return nil
		},
		"describe-configs": func(t *testing.T) error {
			a, err := admin()
			if err != nil {
				return err
			}
			defer a.Close()
			entries, err := a.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
			if err != nil {
				return err
			}
			for _, e := range entries {
				if e.Name == "retention.ms" && e.Value == "3600000" && e.Source == sarama.SourceTopic {
					return nil
				}
			}
			return fmt.Errorf("retention.ms=3600000 (topic) not described: %+v", entries)
		},
		"error-path": func(t *testing.T) error {
			a, err := admin()
			if err != nil {
				return err
			}
			defer a.Close()
			err = a.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false)
			var te *sarama.TopicError
			if !errors.As(err, &te) || te.Err != sarama.ErrTopicAlreadyExists {
				return fmt.Errorf("creating an existing topic: %v", err)
			}
			return nil
		},
		"consumer-protocol": func(t *testing.T) error {
			return notApplicable("sarama speaks only the classic group protocol")
		},
		"share-group": func(t *testing.T) error {
			return notApplicable("sarama has no share group consumer")
		},
		"transactions": func(t *testing.T) error {
			txTopic := topic + "-txn"
			a, err := admin()
			if err != nil {
				return err
			}
			err = a.CreateTopic(txTopic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false)
			a.Close()
			if err != nil {
				return err
			}
			cfg := saramaConfig()
			cfg.Producer.Idempotent = true
			cfg.Producer.Transaction.ID = "compat-sarama-txn"
			cfg.Net.MaxOpenRequests = 1
			p, err := sarama.NewSyncProducer(brokers, cfg)
			if err != nil {
				return err
			}
			defer p.Close()
			for _, tx := range txnScript {
				if err := p.BeginTxn(); err != nil {
					return err
				}
				for _, v := range tx.values {
					if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: txTopic, Key: sarama.StringEncoder(v), Value: sarama.StringEncoder(v)}); err != nil {
						return err
					}
				}
				end := p.AbortTxn
				if tx.commit {
					end = p.CommitTxn
				}
				if err := end(); err != nil {
					return err
				}
			}
			ccfg := saramaConfig()
			ccfg.Consumer.IsolationLevel = sarama.ReadCommitted
			c, err := sarama.NewConsumer(brokers, ccfg)
			if err != nil {
				return err
			}
			defer c.Close()
			pc, err := c.ConsumePartition(txTopic, 0, sarama.OffsetOldest)
			if err != nil {
				return err
			}
			defer pc.Close()
			var got []string
			timeout := time.After(30 * time.Second)
			for !slices.Contains(got, "end") {
				select {
				case m := <-pc.Messages():
					got = append(got, string(m.Value))
				case err := <-pc.Errors():
					return err
				case <-timeout:
					return fmt.Errorf("read_committed read %q before the timeout", got)
				}
			}
			return checkCommitted(got)
		},
	}))
}

// saramaSecurity: Config.Net.SASL (PLAIN built in, SCRAM through the
// SCRAMClientGeneratorFunc sarama asks for, here with xdg-go/scram) and
// Config.Net.TLS.
func saramaSecurity(topic string) map[string]scenarioFunc {
	config := func(addr, mechanism, pass string) (*sarama.Config, error) {
		c := saramaConfig()
		c.Net.SASL.Enable = true
		c.Net.SASL.User, c.Net.SASL.Password = secUser, pass
		c.Net.SASL.Mechanism = sarama.SASLMechanism(mechanism)
		c.Net.SASL.Handshake = true
		if mechanism == sarama.SASLTypeSCRAMSHA512 {
			c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &saramaSCRAM{hash: scram.SHA512} }
		}
		if addr == secure.saslSSL {
			tlsCfg, err := secTLS()
			if err != nil {
				return nil, err
			}
			c.Net.TLS.Enable, c.Net.TLS.Config = true, tlsCfg
		}
		c.Metadata.Retry.Max, c.Producer.Retry.Max = 1, 1
		return c, nil
	}
	roundTrip := func(addr, mechanism, scenario string) error {
		c, err := config(addr, mechanism, secPassword)
		if err != nil {
			return err
		}
		tp := secTopic(topic, scenario)
		p, err := sarama.NewSyncProducer([]string{addr}, c)
		if err != nil {
			return err
		}
		for _, v := range secValues(scenario) {
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: tp, Value: sarama.StringEncoder(v)}); err != nil {
				p.Close()
				return fmt.Errorf("produce: %w", err)
			}
		}
		p.Close()
		got, err := saramaConsume(c, []string{addr}, tp, tp, len(secValues(scenario)))
		if err != nil {
			return fmt.Errorf("consume: %w", err)
		}
		var values []string
		for _, r := range got {
			values = append(values, r.value)
		}
		return checkValues(values, scenario)
	}
	produceTo := func(pass, tp string) error {
		c, err := config(secure.saslSSL, sarama.SASLTypeSCRAMSHA512, pass)
		if err != nil {
			return err
		}
		p, err := sarama.NewSyncProducer([]string{secure.saslSSL}, c)
		if err != nil {
			return err
		}
		defer p.Close()
		_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: tp, Value: sarama.StringEncoder("x")})
		return err
	}
	return map[string]scenarioFunc{
		"sasl-scram-tls": func(t *testing.T) error {
			return roundTrip(secure.saslSSL, sarama.SASLTypeSCRAMSHA512, "sasl-scram-tls")
		},
		"sasl-plain": func(t *testing.T) error {
			return roundTrip(secure.saslPlaintext, sarama.SASLTypePlaintext, "sasl-plain")
		},
		"bad-password": func(t *testing.T) error {
			err := produceTo("wrong", secTopic(topic, "bad-password"))
			if !errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
				return fmt.Errorf("want sarama.ErrSASLAuthenticationFailed, got %v", err)
			}
			return nil
		},
		"acl-denied": func(t *testing.T) error {
			err := produceTo(secPassword, secDenied)
			if !errors.Is(err, sarama.ErrTopicAuthorizationFailed) {
				return fmt.Errorf("want sarama.ErrTopicAuthorizationFailed, got %v", err)
			}
			return nil
		},
	}
}

// saramaSCRAM is the sarama.SCRAMClient of xdg-go/scram's conversation.
type saramaSCRAM struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (s *saramaSCRAM) Begin(user, pass, authzID string) error {
	c, err := s.hash.NewClient(user, pass, authzID)
	if err != nil {
		return err
	}
	s.conv = c.NewConversation()
	return nil
}

func (s *saramaSCRAM) Step(challenge string) (string, error) { return s.conv.Step(challenge) }
func (s *saramaSCRAM) Done() bool                            { return s.conv.Done() }
