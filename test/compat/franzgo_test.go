package compat

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

func TestFranzGo(t *testing.T) {
	const topic, group = "compat-franz-go", "compat-franz-go-g"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	codecs := map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}

	consume := func(n int) ([]rec, error) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		var got []rec
		for len(got) < n {
			fs := cl.PollFetches(ctx)
			if err := fs.Err(); err != nil {
				return got, err
			}
			fs.EachRecord(func(r *kgo.Record) {
				h := map[string]string{}
				for _, x := range r.Headers {
					h[x.Key] = string(x.Value)
				}
				got = append(got, rec{string(r.Key), string(r.Value), h})
			})
		}
		return got, cl.CommitUncommittedOffsets(ctx)
	}

	runScenarios(t, "franz-go", withSecurity(franzGoSecurity(topic), map[string]scenarioFunc{
		"create-topic": func(t *testing.T) error {
			_, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": kadm.StringPtr("3600000")}, topic)
			return err
		},
		"produce-codecs": func(t *testing.T) error {
			for _, r := range produced(allCodecs) {
				codec := r.headers["codec"]
				cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(codecs[codec]))
				if err != nil {
					return err
				}
				res := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(r.key), Value: []byte(r.value), Headers: []kgo.RecordHeader{{Key: "codec", Value: []byte(codec)}}})
				cl.Close()
				if err := res.FirstErr(); err != nil {
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
			cl, _ := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.DefaultProduceTopic(topic))
			after := []rec{{key: "after-1", value: "later", headers: map[string]string{}}, {key: "after-2", value: "later", headers: map[string]string{}}}
			for _, r := range after {
				cl.Produce(ctx, &kgo.Record{Key: []byte(r.key), Value: []byte(r.value)}, nil)
			}
			err := cl.Flush(ctx)
			cl.Close()
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
			ends, err := adm.ListEndOffsets(ctx, topic)
			if err != nil {
				return err
			}
			var total int64
			ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
			if total != int64(len(allCodecs)*perCodec+2) {
				return fmt.Errorf("end offsets add up to %d", total)
			}
			starts, err := adm.ListStartOffsets(ctx, topic)
			if err != nil {
				return err
			}
			var sum int64
			starts.Each(func(o kadm.ListedOffset) { sum += o.Offset })
			if sum != 0 {
				return fmt.Errorf("start offsets add up to %d", sum)
			}
			return nil
		},
		"describe-configs": func(t *testing.T) error {
			rc, err := adm.DescribeTopicConfigs(ctx, topic)
			if err != nil {
				return err
			}
			c, err := rc.On(topic, nil)
			if err != nil {
				return err
			}
			for _, kv := range c.Configs {
				if kv.Key == "retention.ms" && kv.MaybeValue() == "3600000" && kv.Source.String() == "DYNAMIC_TOPIC_CONFIG" {
					return nil
				}
			}
			return fmt.Errorf("retention.ms=3600000 (topic config) not described: %+v", c.Configs)
		},
		"error-path": func(t *testing.T) error {
			cl, _ := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.RecordRetries(1))
			defer cl.Close()
			err := cl.ProduceSync(ctx, &kgo.Record{Topic: "bad topic name!", Value: []byte("x")}).FirstErr()
			if !errors.Is(err, kerr.InvalidTopicException) && !errors.Is(err, kerr.UnknownTopicOrPartition) {
				return fmt.Errorf("producing to an invalid topic name: %v", err)
			}
			return nil
		},
		"transactions": func(t *testing.T) error {
			txTopic := topic + "-txn"
			if _, err := adm.CreateTopic(ctx, 1, 1, nil, txTopic); err != nil {
				return err
			}
			p, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.TransactionalID("compat-franz-go-txn"), kgo.DefaultProduceTopic(txTopic))
			if err != nil {
				return err
			}
			defer p.Close()
			for _, tx := range txnScript {
				if err := p.BeginTransaction(); err != nil {
					return err
				}
				for _, v := range tx.values {
					if err := p.ProduceSync(ctx, &kgo.Record{Key: []byte(v), Value: []byte(v)}).FirstErr(); err != nil {
						return err
					}
				}
				if err := p.EndTransaction(ctx, kgo.TransactionEndTry(tx.commit)); err != nil {
					return err
				}
			}
			c, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.ConsumeTopics(txTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			if err != nil {
				return err
			}
			defer c.Close()
			var got []string
			for !slices.Contains(got, "end") {
				fs := c.PollFetches(ctx)
				if err := fs.Err(); err != nil {
					return err
				}
				fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
			}
			return checkCommitted(got)
		},
		"consumer-protocol": func(t *testing.T) error { return franzConsumerProtocol(ctx, adm) },
		"share-group":       func(t *testing.T) error { return franzShareGroup(ctx, adm) },
	}))
}

// franzConsumerProtocol: two KIP-848 members split a topic's partitions,
// read every record once and commit; a new member resumes after them.
func franzConsumerProtocol(ctx context.Context, adm *kadm.Client) error {
	const topic, group = "compat-franz-go-848", "compat-franz-go-848-g"
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, topic); err != nil {
		return err
	}
	if err := produceN(ctx, topic, 0, 40); err != nil {
		return err
	}
	member := func() (*kgo.Client, error) {
		return kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ServerSideBalancer(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	}
	var tally valueTally
	var clients []*kgo.Client
	for range 2 {
		cl, err := member()
		if err != nil {
			return err
		}
		clients = append(clients, cl)
		tally.consume(ctx, cl, nil)
	}
	if _, err := tally.wait(ctx, 40, "the two members read"); err != nil {
		return err
	}
	d, err := adm.DescribeConsumerGroups(ctx, group)
	if err != nil {
		return err
	}
	if g := d[group]; g.Err != nil || g.AssignorName != "uniform" || len(g.Members) != 2 {
		return fmt.Errorf("ConsumerGroupDescribe: %+v", g)
	}
	for _, cl := range clients {
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			return err
		}
		cl.Close()
	}
	if err := produceN(ctx, topic, 40, 4); err != nil {
		return err
	}
	cl, err := member()
	if err != nil {
		return err
	}
	defer cl.Close()
	var got []string
	for len(got) < 4 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			return err
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	slices.Sort(got)
	if fmt.Sprint(got) != "[40 41 42 43]" {
		return fmt.Errorf("the new member read %v, want only the 4 new records", got)
	}
	return nil
}

// franzShareGroup: two share group members take 40 records between them,
// each exactly once.
func franzShareGroup(ctx context.Context, adm *kadm.Client) error {
	const topic, group = "compat-franz-go-share", "compat-franz-go-share-g"
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		return err
	}
	if err := produceN(ctx, topic, 0, 40); err != nil {
		return err
	}
	// A share group starts at the end unless told otherwise.
	offsets := kadm.Offsets{}
	for p := range int32(2) {
		offsets.Add(kadm.Offset{Topic: topic, Partition: p, At: 0, LeaderEpoch: -1})
	}
	if resp, err := adm.AlterShareGroupOffsets(ctx, group, offsets); err != nil || resp.Error() != nil {
		return fmt.Errorf("AlterShareGroupOffsets: %v %v", err, resp.Error())
	}
	var tally valueTally
	for range 2 {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.ShareGroup(group), kgo.ConsumeTopics(topic))
		if err != nil {
			return err
		}
		defer cl.Close()
		tally.consume(ctx, cl, func(r *kgo.Record) { r.Ack(kgo.AckAccept) })
	}
	taken, err := tally.wait(ctx, 40, "the share group took")
	if err != nil {
		return err
	}
	for v, n := range taken {
		if n != 1 {
			return fmt.Errorf("record %s taken %d times", v, n)
		}
	}
	return nil
}

// valueTally counts, over consumers polling in the background, how often
// each record value was read.
type valueTally struct {
	mu sync.Mutex
	n  map[string]int
}

// consume polls cl until it closes, calling each (if not nil) on every
// record before counting it.
func (v *valueTally) consume(ctx context.Context, cl *kgo.Client, each func(*kgo.Record)) {
	go func() {
		for {
			fs := cl.PollFetches(ctx)
			if fs.IsClientClosed() || ctx.Err() != nil {
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				if each != nil {
					each(r)
				}
				v.mu.Lock()
				if v.n == nil {
					v.n = map[string]int{}
				}
				v.n[string(r.Value)]++
				v.mu.Unlock()
			})
		}
	}()
}

// wait returns the counts once want distinct values were read.
func (v *valueTally) wait(ctx context.Context, want int, what string) (map[string]int, error) {
	for {
		v.mu.Lock()
		n := len(v.n)
		counts := maps.Clone(v.n)
		v.mu.Unlock()
		if n == want {
			return counts, nil
		}
		if ctx.Err() != nil {
			return counts, fmt.Errorf("%s %d of %d records", what, n, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// produceN produces the values from, from+1, ... round-robin over the
// topic's partitions.
func produceN(ctx context.Context, topic string, from, n int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		return err
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		recs = append(recs, &kgo.Record{Value: []byte(strconv.Itoa(i))})
	}
	return cl.ProduceSync(ctx, recs...).FirstErr()
}

// franzGoSecurity: kgo.SASL with franz-go's scram and plain mechanisms,
// kgo.DialTLSConfig for TLS.
func franzGoSecurity(topic string) map[string]scenarioFunc {
	client := func(addr string, m sasl.Mechanism, opts ...kgo.Opt) (*kgo.Client, error) {
		opts = append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.SASL(m), kgo.RecordRetries(2), kgo.RetryTimeout(5 * time.Second)}, opts...)
		if addr == secure.saslSSL {
			cfg, err := secTLS()
			if err != nil {
				return nil, err
			}
			opts = append(opts, kgo.DialTLSConfig(cfg))
		}
		return kgo.NewClient(opts...)
	}
	roundTrip := func(addr string, m sasl.Mechanism, scenario string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		tp := secTopic(topic, scenario)
		cl, err := client(addr, m, kgo.DefaultProduceTopic(tp), kgo.AllowAutoTopicCreation())
		if err != nil {
			return err
		}
		defer cl.Close()
		for _, v := range secValues(scenario) {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				return fmt.Errorf("produce: %w", err)
			}
		}
		cons, err := client(addr, m, kgo.ConsumerGroup(tp), kgo.ConsumeTopics(tp), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			return err
		}
		defer cons.Close()
		var got []string
		for len(got) < len(secValues(scenario)) {
			fs := cons.PollFetches(ctx)
			if err := fs.Err(); err != nil {
				return fmt.Errorf("consume: %w", err)
			}
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		}
		if err := cons.CommitUncommittedOffsets(ctx); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return checkValues(got, scenario)
	}
	produceTo := func(pass, tp string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		// One try: the failures are not retriable.
		cl, err := client(secure.saslSSL, scram.Auth{User: secUser, Pass: pass}.AsSha512Mechanism(), kgo.RecordRetries(0), kgo.RequestRetries(0))
		if err != nil {
			return err
		}
		defer cl.Close()
		return cl.ProduceSync(ctx, &kgo.Record{Topic: tp, Value: []byte("x")}).FirstErr()
	}
	return map[string]scenarioFunc{
		"sasl-scram-tls": func(t *testing.T) error {
			return roundTrip(secure.saslSSL, scram.Auth{User: secUser, Pass: secPassword}.AsSha512Mechanism(), "sasl-scram-tls")
		},
		"sasl-plain": func(t *testing.T) error {
			return roundTrip(secure.saslPlaintext, plain.Auth{User: secUser, Pass: secPassword}.AsMechanism(), "sasl-plain")
		},
		"bad-password": func(t *testing.T) error {
			err := produceTo("wrong", secTopic(topic, "bad-password"))
			if !errors.Is(err, kerr.SaslAuthenticationFailed) {
				return fmt.Errorf("want kerr.SaslAuthenticationFailed, got %v", err)
			}
			return nil
		},
		"acl-denied": func(t *testing.T) error {
			err := produceTo(secPassword, secDenied)
			if !errors.Is(err, kerr.TopicAuthorizationFailed) {
				return fmt.Errorf("want kerr.TopicAuthorizationFailed, got %v", err)
			}
			return nil
		},
	}
}
