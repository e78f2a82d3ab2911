// Package kafka is the source that consumes Kafka topics. In a consumer
// group it commits a record's offset only after the sink has durably
// accepted it, so a crash delivers again rather than loses. In a share group
// (KIP-932, a queue) it accepts each record only after the sink has, and
// records it could not hand over go back to the group's other members.
// Without a group it reads every partition directly, like kcat -C, and
// commits nothing.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/creek-pipeline/creek/internal/kafkaopt"
	"github.com/creek-pipeline/creek/internal/pipeline"
)

func init() {
	pipeline.RegisterSource(pipeline.Plugin{
		Name: "kafka",
		Doc:  "Consumes Kafka topics, in a consumer group or directly.",
		Options: append([]pipeline.Option{
			kafkaopt.BrokersOption,
			{Name: "topic", Flag: "topic", Type: pipeline.TypeStrings, Doc: "Topic(s) to read (required; repeat or separate with commas)."},
			{Name: "group", Flag: "group", Type: pipeline.TypeString,
				Doc: "Consumer group: members share the partitions and the group's committed offsets say where to resume. Without a group every partition is read and no offset is committed."},
			{Name: "share-group", Flag: "share-group", Type: pipeline.TypeString,
				Doc: "Share group (KIP-932, a queue): members read the same partitions and each record goes to one of them; a record the sink accepted is gone for the group. Not with --group."},
			{Name: "from-beginning", Flag: "from-beginning", Type: pipeline.TypeBool,
				Doc: "Start at the earliest record when there is no committed offset, or for a share group that does not exist yet (without a group: always). Otherwise start at the end, with new records only."},
			{Name: "session-timeout", Flag: "session-timeout", Type: pipeline.TypeDuration, Default: "45s",
				Doc: "Consumer group: how long the group waits for a member that stopped answering (a crash, kill -9) before giving its partitions to the others; Kafka's session.timeout.ms."},
			{Name: "fetch-max-bytes", Flag: "fetch-max-bytes", Type: pipeline.TypeString, Default: "50MiB",
				Doc: "Most bytes one fetch brings (Kafka's fetch.max.bytes; a partition brings at most 1 MiB of it): what the consumer buffers before the sink takes it. Default 50MiB, or what the sink asks for when it holds records itself (s3: a twentieth of --s3-memory, at least 1 MiB)."},
			{Name: "count", Flag: "count", Type: pipeline.TypeInt, Default: "0", Doc: "Stop after this many records; 0 for no end."},
			{Name: "max-batch", Flag: "max-batch", Type: pipeline.TypeInt, Default: "10000",
				Doc: "Most records handed to the sink at once (a store writes them in one transaction or request, and the group commits them together)."},
		}, kafkaopt.SecurityOptions...),
		NewSource: New,
	})
}

// Source consumes Kafka.
type Source struct {
	cl       *kgo.Client
	group    string
	share    bool
	count    int64
	maxBatch int
	env      pipeline.Env

	// With a PositionSink the sink says what to commit (see UsePositions).
	positions *pipeline.Positions
	mu        sync.Mutex
	epochs    map[string]map[int32]int32 // latest leader epoch seen, for commits by position
	// fetchMaxGiven: --fetch-max-bytes was set, so a sink's preference
	// (Positions.FetchMaxBytes) does not replace it.
	fetchMaxGiven bool
	// outMu guards out and runCtx: while Run runs, where revocation
	// barriers go. Not mu, which commits take: a barrier may wait for a
	// sink that waits for a commit.
	outMu  sync.Mutex
	out    chan<- *pipeline.Batch
	runCtx context.Context
}

// New builds the source from its options.
func New(v *pipeline.Values, env pipeline.Env) (pipeline.Source, error) {
	var topics []string
	for _, t := range v.Strings("topic") {
		for _, s := range strings.Split(t, ",") {
			if s = strings.TrimSpace(s); s != "" {
				topics = append(topics, s)
			}
		}
	}
	if len(topics) == 0 {
		return nil, fmt.Errorf("no topic given; use --topic NAME (or topic: in the input section)")
	}
	opts, err := kafkaopt.ClientOpts(v, env.Logger)
	if err != nil {
		return nil, err
	}
	start := kgo.NewOffset().AtEnd()
	if v.Bool("from-beginning") {
		start = kgo.NewOffset().AtStart()
	}
	fetchMax, err := pipeline.ParseSize(v.String("fetch-max-bytes"))
	if err != nil || fetchMax < 1 || fetchMax > 1<<30 {
		return nil, fmt.Errorf("fetch-max-bytes %q: want a size from 1 byte to 1GiB, such as 16MiB", v.String("fetch-max-bytes"))
	}
	opts = append(opts, kgo.ConsumeTopics(topics...), kgo.FetchMaxBytes(int32(fetchMax)), kgo.FetchMaxPartitionBytes(int32(min(fetchMax, 1<<20))))
	shareGroup := v.String("share-group")
	if shareGroup != "" {
		if v.String("group") != "" {
			return nil, fmt.Errorf("--group and --share-group cannot be used together: choose a consumer group (each member owns partitions) or a share group (members share records)")
		}
		if v.Bool("from-beginning") {
			if err := startShareGroupAtEarliest(opts, shareGroup, topics); err != nil {
				return nil, err
			}
		}
		opts = append(opts, kgo.ShareGroup(shareGroup))
	} else {
		opts = append(opts, kgo.ConsumeResetOffset(start))
	}
	s := &Source{group: v.String("group"), share: shareGroup != "", count: v.Int("count"), maxBatch: int(v.Int("max-batch")), env: env,
		fetchMaxGiven: v.Given("fetch-max-bytes")}
	if s.maxBatch <= 0 {
		s.maxBatch = 10000
	}
	if s.group != "" {
		// Offsets are marked when the sink acknowledges and committed
		// from the marks (periodically, on rebalance and on close).
		opts = append(opts, kgo.ConsumerGroup(s.group), kgo.AutoCommitMarks(), kgo.AutoCommitInterval(time.Second), kgo.SessionTimeout(v.Duration("session-timeout")),
			kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
				s.revoke(revoked)
				// As franz-go's default: commit what is marked before the partitions go.
				if err := cl.CommitMarkedOffsets(ctx); err != nil {
					s.env.Logger.Warn("commit on rebalance failed; the new owner reads some records again", "err", err)
				}
			}),
			kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) { s.revoke(lost) }))
	}
	if s.cl, err = kgo.NewClient(opts...); err != nil {
		return nil, err
	}
	return s, nil
}

// UsePositions makes the source commit what a PositionSink reports stored
// instead of what it acknowledged.
func (s *Source) UsePositions(p *pipeline.Positions) error {
	if s.share {
		return errors.New("a share group hands out single records, but this sink stores runs of offsets: use a consumer group (--group) or no group")
	}
	s.positions = p
	if p.FetchMaxBytes > 0 && !s.fetchMaxGiven {
		s.cl.UpdateFetchMaxBytes(int32(min(p.FetchMaxBytes, 1<<30)), int32(min(p.FetchMaxBytes, 1<<20)))
	}
	p.Commit = func(topic string, partition int32, next int64) {
		s.mu.Lock()
		epoch := s.epochs[topic][partition]
		s.mu.Unlock()
		s.cl.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{topic: {partition: {Epoch: epoch, Offset: next}}})
	}
	return nil
}

// FetchesBySink reports whether the sink sizes the fetches (see
// pipeline.PositionSource): yes unless --fetch-max-bytes was given.
func (s *Source) FetchesBySink() bool { return !s.fetchMaxGiven }

// revoke tells a PositionSink that partitions are gone, once it has taken
// every batch sent before: an empty batch through the queue is acknowledged
// only after all batches ahead of it were written.
func (s *Source) revoke(partitions map[string][]int32) {
	if s.positions == nil || s.positions.Revoked == nil {
		return
	}
	s.outMu.Lock() // Run does not return (and its queue close) while a barrier is being sent
	var barrier chan struct{}
	if s.out != nil {
		barrier = make(chan struct{})
		once := sync.OnceFunc(func() { close(barrier) })
		if !pipeline.Send(s.runCtx, s.out, &pipeline.Batch{Ack: once, Nack: func(error) { once() }}) {
			barrier = nil
		}
	}
	s.outMu.Unlock()
	if barrier != nil {
		<-barrier
	}
	for topic, ps := range partitions {
		s.positions.Revoked(topic, ps)
	}
}

// startShareGroupAtEarliest sets a share group that does not exist yet to
// start at the earliest records (share groups start at the end otherwise).
func startShareGroupAtEarliest(opts []kgo.Opt, group string, topics []string) error {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	described, err := adm.DescribeShareGroupOffsets(ctx, group)
	if err != nil {
		return fmt.Errorf("share group %s: %w", group, err)
	}
	// A group that has started on any partition continues where it is.
	// (Kafka describes a group that does not exist as one that started
	// nowhere; older creek answered GROUP_ID_NOT_FOUND.)
	if d, ok := described[group]; ok && d.Err == nil {
		for _, ps := range d.Offsets {
			for _, p := range ps {
				if p.StartOffset >= 0 {
					return nil
				}
			}
		}
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return err
	}
	if err := starts.Error(); err != nil {
		return fmt.Errorf("start offsets of %s: %w", strings.Join(topics, ", "), err)
	}
	offsets := kadm.Offsets{}
	starts.Each(func(o kadm.ListedOffset) {
		offsets.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.Offset, LeaderEpoch: -1})
	})
	resp, err := adm.AlterShareGroupOffsets(ctx, group, offsets)
	if err != nil {
		return fmt.Errorf("start share group %s at the earliest records: %w", group, err)
	}
	return resp.Error()
}

// Run polls records and hands them over as batches.
func (s *Source) Run(ctx context.Context, out chan<- *pipeline.Batch) error {
	s.outMu.Lock()
	s.out, s.runCtx = out, ctx
	s.outMu.Unlock()
	defer func() {
		s.outMu.Lock()
		s.out = nil
		s.outMu.Unlock()
	}()
	var read int64
	for s.count == 0 || read < s.count {
		want := s.maxBatch
		if s.count > 0 {
			want = int(min(int64(want), s.count-read))
		}
		fs := s.cl.PollRecords(ctx, want)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return nil
		}
		var refused error
		fs.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			if refusal(err) {
				refused = err
				return
			}
			if topic == "" { // the client's own failure (group, connection), not one partition's
				s.env.Logger.Warn("fetch failed", "err", err)
			} else {
				s.env.Logger.Warn("fetch failed", "topic", topic, "partition", p, "err", err)
			}
			s.env.Stats.Errors.Add(1)
		})
		if refused != nil {
			return fmt.Errorf("the cluster refused this consumer: %w — check the SASL user and password, and its ACLs (READ on the topic and on the group; docs/security.md)", refused)
		}
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		s.updateLag(fs)
		b := &pipeline.Batch{Messages: make([]pipeline.Message, len(recs))}
		for i, r := range recs {
			m := &b.Messages[i]
			m.Key, m.Value, m.Timestamp = r.Key, r.Value, r.Timestamp
			m.Topic, m.Partition, m.Offset = r.Topic, r.Partition, r.Offset
			for _, h := range r.Headers {
				m.Headers = append(m.Headers, pipeline.Header{Key: h.Key, Value: h.Value})
			}
		}
		var sunk chan struct{} // share groups: closed once the sink has the batch
		switch {
		case s.positions != nil:
			s.noteEpochs(fs) // the sink commits by position; the batch needs no acknowledgement
		case s.group != "":
			b.Ack = func() { s.cl.MarkCommitRecords(recs...) }
		case s.share:
			sunk = make(chan struct{})
			b.Ack = func() {
				for _, r := range recs {
					r.Ack(kgo.AckAccept)
				}
				close(sunk)
			}
		}
		read += int64(len(recs))
		if !pipeline.Send(ctx, out, b) {
			return nil
		}
		if sunk != nil {
			// franz-go accepts whatever is still pending at the next
			// poll, so the next poll waits for the sink: a record is
			// accepted only once the sink has it.
			select {
			case <-sunk:
			case <-ctx.Done():
				return nil
			}
		}
	}
	return nil
}

// noteEpochs keeps each partition's latest leader epoch, which a commit by
// position needs (franz-go refuses a mark with an older epoch).
func (s *Source) noteEpochs(fs kgo.Fetches) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epochs == nil {
		s.epochs = map[string]map[int32]int32{}
	}
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if n := len(p.Records); n > 0 {
			if s.epochs[p.Topic] == nil {
				s.epochs[p.Topic] = map[int32]int32{}
			}
			s.epochs[p.Topic][p.Partition] = p.Records[n-1].LeaderEpoch
		}
	})
}

// updateLag sums, over the partitions just fetched, how far the last
// record is from the end of the partition.
func (s *Source) updateLag(fs kgo.Fetches) {
	var lag int64
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if n := len(p.Records); n > 0 {
			lag += max(0, p.HighWatermark-p.Records[n-1].Offset-1)
		}
	})
	s.env.Stats.Lag.Store(lag)
}

// closeCommitTimeout bounds the last commit on Close. It outlasts a Kafka
// cluster moving the group's coordinator after a broker died (Kafka
// notices after broker.session.timeout.ms, 9 s by default, then elects).
const closeCommitTimeout = 30 * time.Second

// Close commits the offsets (or share acknowledgements) of everything the
// sink accepted and leaves the group; a share group's records not accepted
// go back to its other members.
func (s *Source) Close() error {
	var err error
	ctx, cancel := context.WithTimeout(context.Background(), closeCommitTimeout)
	defer cancel()
	switch {
	case s.group != "":
		if err = s.cl.CommitMarkedOffsets(ctx); err != nil {
			err = fmt.Errorf("group %s: the last commit failed (%w); the records read after the previous commit are delivered again when the group next runs", s.group, err)
		}
	case s.share:
		if err = s.cl.FlushAcks(ctx); err != nil {
			err = fmt.Errorf("share group: acknowledging the last records failed (%w); they go back to the group once their locks run out", err)
		}
	}
	s.cl.Close()
	return err
}

// refusal reports whether err is a failed login or a denied ACL, which
// retrying cannot fix.
func refusal(err error) bool {
	for _, e := range []error{kerr.SaslAuthenticationFailed, kerr.TopicAuthorizationFailed, kerr.GroupAuthorizationFailed,
		kerr.ClusterAuthorizationFailed, kerr.UnsupportedSaslMechanism, kerr.IllegalSaslState} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
