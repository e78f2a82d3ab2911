package broker

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// answeredPartitions lists an answer's partitions as "p=HWM" or
// "p=HWM+records", in the answer's order.
func answeredPartitions(resp *kmsg.FetchResponse) []string {
	var got []string
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			s := fmt.Sprintf("%d=%d", p.Partition, p.HighWatermark)
			if len(p.RecordBatches) > 0 {
				s += "+records"
			}
			if p.ErrorCode != 0 {
				s += "!" + kerr.ErrorForCode(p.ErrorCode).Error()
			}
			got = append(got, s)
		}
	}
	return got
}

func produceTo(t testing.TB, cl *kgo.Client, topic string, partition int32, n int) {
	t.Helper()
	for i := range n {
		r := &kgo.Record{Topic: topic, Partition: partition, Value: fmt.Appendf(nil, "v%d", i)}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// A session's life, as KIP-227 and Kafka define it: a full fetch makes it,
// incremental fetches carry only what changed and are answered only what
// changed (records, a new high watermark or log start offset), forgotten
// partitions leave it, a wrong epoch is refused, epoch -1 closes it.
func TestIncrementalFetchSession(t *testing.T) {
	for _, version := range []int16{12, 18} { // topics by name, by id
		t.Run(fmt.Sprint("v", version), func(t *testing.T) {
			b := protoBroker(t, nil)
			topic := "sessions"
			id := protoCreateTopic(t, b, topic, 3, nil)
			cl := protoClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			produceTo(t, cl, topic, 0, 2)
			c := protoDial(t, b)
			fetch := func(req *kmsg.FetchRequest) *kmsg.FetchResponse {
				t.Helper()
				return c.roundTrip(req, version).(*kmsg.FetchResponse)
			}
			check := func(what string, resp *kmsg.FetchResponse, want ...string) {
				t.Helper()
				if resp.ErrorCode != 0 {
					t.Fatalf("%s: %v", what, kerr.ErrorForCode(resp.ErrorCode))
				}
				if got := answeredPartitions(resp); !slices.Equal(got, want) {
					t.Fatalf("%s answered %q, want %q", what, got, want)
				}
			}

			full := fetch(protoSessionFetch(topic, id, 0, 0, map[int32]int64{0: 0, 1: 0, 2: 0}))
			check("the full fetch", full, "0=2+records", "1=0", "2=0")
			session := full.SessionID
			if session == 0 {
				t.Fatal("a full fetch with epoch 0 made no session")
			}
			check("an incremental fetch with the next offset of partition 0",
				fetch(protoSessionFetch(topic, id, session, 1, map[int32]int64{0: 2})))

			produceTo(t, cl, topic, 2, 1)
			resp := fetch(protoSessionFetch(topic, id, session, 2, nil))
			check("an incremental fetch after a record to partition 2", resp, "2=1+records")
			if resp.SessionID != session {
				t.Fatalf("the answer names session %d, want %d", resp.SessionID, session)
			}
			protoErr(t, "an epoch used before", fetch(protoSessionFetch(topic, id, session, 2, nil)).ErrorCode, kerr.InvalidFetchSessionEpoch)

			// Partition 2 is forgotten: its next record is not answered.
			check("forgetting partition 2", fetch(protoSessionFetch(topic, id, session, 3, map[int32]int64{2: 1}, 2)))
			produceTo(t, cl, topic, 2, 1)
			check("a record to the forgotten partition", fetch(protoSessionFetch(topic, id, session, 4, nil)))

			// A new log start offset is news too.
			if _, err := protoAdmin(t, b).DeleteRecords(context.Background(), offsetsAt(topic, 0, 1)); err != nil {
				t.Fatal(err)
			}
			resp = fetch(protoSessionFetch(topic, id, session, 5, nil))
			check("after records of partition 0 were deleted", resp, "0=2")
			if lso := resp.Topics[0].Partitions[0].LogStartOffset; lso != 1 {
				t.Fatalf("log start offset %d answered, want 1", lso)
			}

			// A fetch of the other way of naming topics is refused.
			other := int16(18)
			if version >= 13 {
				other = 12
			}
			req := protoSessionFetch(topic, id, session, 6, nil)
			if got := c.roundTrip(req, other).(*kmsg.FetchResponse).ErrorCode; got != kerr.FetchSessionTopicIDError.Code {
				t.Fatalf("a v%d fetch of a v%d session: %v, want FETCH_SESSION_TOPIC_ID_ERROR", other, version, kerr.ErrorForCode(got))
			}

			// Epoch -1 closes the session: a full fetch without one.
			closed := fetch(protoSessionFetch(topic, id, session, -1, map[int32]int64{1: 0}))
			check("closing the session", closed, "1=0")
			if closed.SessionID != 0 {
				t.Fatalf("the closing fetch answered session %d, want 0", closed.SessionID)
			}
			protoErr(t, "a fetch of the closed session", fetch(protoSessionFetch(topic, id, session, 6, nil)).ErrorCode, kerr.FetchSessionIDNotFound)
		})
	}
}

func offsetsAt(topic string, partition int32, offset int64) kadm.Offsets {
	o := kadm.Offsets{}
	o.Add(kadm.Offset{Topic: topic, Partition: partition, At: offset})
	return o
}

// The partitions that answered records go to the back of the session, so
// that a fetch whose byte limit holds one partition's records serves each
// partition in turn rather than the first one over and over.
func TestFetchSessionServesPartitionsInTurn(t *testing.T) {
	b := protoBroker(t, nil)
	topic := "turns"
	id := protoCreateTopic(t, b, topic, 2, nil)
	cl := protoClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceTo(t, cl, topic, 0, 1)
	produceTo(t, cl, topic, 1, 1)
	c := protoDial(t, b)
	fetch := func(session, epoch int32, offsets map[int32]int64) *kmsg.FetchResponse {
		req := protoSessionFetch(topic, id, session, epoch, offsets)
		req.MaxBytes = 1 // one partition's first batch, as KIP-74 allows
		return c.roundTrip(req, 12).(*kmsg.FetchResponse)
	}
	full := fetch(0, 0, map[int32]int64{0: 0, 1: 0})
	if got := answeredPartitions(full); !slices.Equal(got, []string{"0=1+records", "1=1"}) {
		t.Fatalf("the full fetch answered %q", got)
	}
	// The client fetches both from offset 0 again and again (as one would
	// that has no room for more): after each answer with records the
	// partition that had them goes last, so the byte limit is spent on
	// each partition in turn.
	for epoch, want := range []string{"", "0=1+records", "1=1+records", "0=1+records", "1=1+records"} {
		if epoch == 0 {
			continue
		}
		if got := answeredPartitions(fetch(full.SessionID, int32(epoch), nil)); !slices.Equal(got, []string{want}) {
			t.Fatalf("incremental fetch %d answered %q, want %q", epoch, got, want)
		}
	}
}

// With every slot taken, Kafka's eviction rules: a session unused for two
// minutes gives its slot to any new one; one made two minutes ago to a
// larger one; otherwise the fetch is answered without a session.
func TestFetchSessionSlots(t *testing.T) {
	b := protoBroker(t, map[string]string{"max.incremental.fetch.session.cache.slots": "1"})
	topic := "slots"
	id := protoCreateTopic(t, b, topic, 3, nil)
	c := protoDial(t, b)
	fetch := func(req *kmsg.FetchRequest) *kmsg.FetchResponse { return c.roundTrip(req, 12).(*kmsg.FetchResponse) }
	age := func(session int32, created, used time.Duration) {
		fs := b.fetchSessions
		fs.mu.Lock()
		defer fs.mu.Unlock()
		s := fs.byID[session]
		s.mu.Lock()
		s.created, s.lastUsed = s.created.Add(-created), s.lastUsed.Add(-used)
		s.mu.Unlock()
	}

	two := fetch(protoSessionFetch(topic, id, 0, 0, map[int32]int64{0: 0, 1: 0})).SessionID
	if two == 0 {
		t.Fatal("no session made while a slot was free")
	}
	if got := fetch(protoSessionFetch(topic, id, 0, 0, map[int32]int64{0: 0, 1: 0, 2: 0})).SessionID; got != 0 {
		t.Fatalf("a larger session (%d) took the slot of one made just now", got)
	}
	age(two, 3*time.Minute, 0)
	if got := fetch(protoSessionFetch(topic, id, 0, 0, map[int32]int64{0: 0})).SessionID; got != 0 {
		t.Fatalf("a smaller session (%d) took the slot of one in use", got)
	}
	if fetch(protoSessionFetch(topic, id, two, 1, nil)).ErrorCode != 0 {
		t.Fatal("the two-partition session was lost")
	}
	three := fetch(protoSessionFetch(topic, id, 0, 0, map[int32]int64{0: 0, 1: 0, 2: 0})).SessionID
	if three == 0 {
		t.Fatal("a larger session did not take the slot of one made three minutes ago")
	}
	protoErr(t, "the evicted session", fetch(protoSessionFetch(topic, id, two, 2, nil)).ErrorCode, kerr.FetchSessionIDNotFound)
	age(three, 0, 3*time.Minute)
	if fetch(protoSessionFetch(topic, id, 0, 0, map[int32]int64{0: 0})).SessionID == 0 {
		t.Fatal("a new session did not take the slot of one unused for three minutes")
	}

	off := protoBroker(t, map[string]string{"max.incremental.fetch.session.cache.slots": "0"})
	id = protoCreateTopic(t, off, topic, 1, nil)
	if got := protoDial(t, off).roundTrip(protoSessionFetch(topic, id, 0, 0, map[int32]int64{0: 0}), 12).(*kmsg.FetchResponse); got.SessionID != 0 || got.ErrorCode != 0 {
		t.Fatalf("with no slots: session %d, %v", got.SessionID, kerr.ErrorForCode(got.ErrorCode))
	}
}

// Sessions hold what clients ask for, made-up partitions too, so the
// partitions all sessions hold are bounded: past the bound a full fetch
// gets no session and an incremental one ends its session.
func TestFetchSessionsHoldBoundedPartitions(t *testing.T) {
	b := protoBroker(t, nil)
	b.fetchSessions.most = 5
	c := protoDial(t, b)
	madeUp := func(n int) map[int32]int64 {
		m := map[int32]int64{}
		for p := range int32(n) {
			m[p] = 0
		}
		return m
	}
	fetch := func(req *kmsg.FetchRequest) *kmsg.FetchResponse { return c.roundTrip(req, 12).(*kmsg.FetchResponse) }
	first := fetch(protoSessionFetch("no-such-topic", [16]byte{}, 0, 0, madeUp(4)))
	if first.SessionID == 0 {
		t.Fatal("no session for 4 partitions with room for 5")
	}
	if got := answeredPartitions(first); len(got) != 4 || got[0] != "0=-1!UNKNOWN_TOPIC_OR_PARTITION: This server does not host this topic-partition." {
		t.Fatalf("made-up partitions answered %q", got)
	}
	if got := fetch(protoSessionFetch("other", [16]byte{}, 0, 0, madeUp(2))).SessionID; got != 0 {
		t.Fatalf("a session (%d) made past the bound", got)
	}
	protoErr(t, "an incremental fetch growing past the bound", fetch(protoSessionFetch("other", [16]byte{}, first.SessionID, 1, madeUp(2))).ErrorCode, kerr.FetchSessionIDNotFound)
	if n := b.fetchSessions.cached.Load(); n != 0 {
		t.Fatalf("%d partitions still counted once the only session ended", n)
	}
	full := fetch(protoSessionFetch("other", [16]byte{}, 0, 0, madeUp(5))).SessionID
	if full == 0 {
		t.Fatal("no session for 5 partitions once the room was freed")
	}
	// A client that fills the room and goes away holds it for two minutes.
	fs := b.fetchSessions.byID[full]
	fs.lastUsed = fs.lastUsed.Add(-3 * time.Minute)
	if fetch(protoSessionFetch("other", [16]byte{}, 0, 0, madeUp(2))).SessionID == 0 {
		t.Fatal("the room of a session unused for three minutes was not given to a new one")
	}
}

// The sessions kept and the partitions they hold are metrics.
func TestFetchSessionMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	b, err := Start(context.Background(), Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Metrics: reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	id := protoCreateTopic(t, b, "measured", 2, nil)
	c := protoDial(t, b)
	session := c.roundTrip(protoSessionFetch("measured", id, 0, 0, map[int32]int64{0: 0, 1: 0}), 12).(*kmsg.FetchResponse).SessionID
	if s, p := protoMetric(t, reg, "creek_broker_fetch_sessions"), protoMetric(t, reg, "creek_broker_fetch_session_partitions"); s != 1 || p != 2 {
		t.Fatalf("with one session of two partitions: %v sessions, %v partitions", s, p)
	}
	c.roundTrip(protoSessionFetch("measured", id, session, -1, map[int32]int64{0: 0}), 12)
	if s, p := protoMetric(t, reg, "creek_broker_fetch_sessions"), protoMetric(t, reg, "creek_broker_fetch_session_partitions"); s != 0 || p != 0 {
		t.Fatalf("once the session is closed: %v sessions, %v partitions", s, p)
	}

	// franz-go fetches in a session: it reads every record through one.
	producer := protoClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceTo(t, producer, "measured", 0, 10)
	consumer := protoClient(t, b, kgo.ConsumeTopics("measured"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	ctx := protoCtx(t)
	got := 0
	for got < 20 {
		fs := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 20 records", got)
		}
		got += len(fs.Records())
		if got == 10 {
			produceTo(t, producer, "measured", 1, 10) // found by an incremental fetch
		}
	}
	if s := protoMetric(t, reg, "creek_broker_fetch_sessions"); s != 1 {
		t.Fatalf("%v sessions while franz-go consumes, want 1", s)
	}
	if made, incremental := protoMetric(t, reg, "creek_broker_fetch_sessions_made_total"), protoMetric(t, reg, "creek_broker_incremental_fetches_total"); made != 2 || incremental < 1 {
		t.Fatalf("sessions made %v (want 2: ours and franz-go's), incremental fetches %v", made, incremental)
	}
}

// Clients racing over the same sessions with any ids, epochs, partitions
// and forgotten partitions leave the cache consistent: every fetch is
// answered, and the partitions counted are those the sessions hold.
func TestFetchSessionsUnderConcurrentAbuse(t *testing.T) {
	b := protoBroker(t, map[string]string{"max.incremental.fetch.session.cache.slots": "4"})
	id := protoCreateTopic(t, b, "abused", 4, nil)
	var ids sync.Map // session ids seen
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := protoDial(t, b)
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range 150 {
				session, epoch := int32(0), int32(rng.IntN(4)-1)
				ids.Range(func(k, _ any) bool {
					if rng.IntN(3) == 0 {
						session = k.(int32)
						return false
					}
					return true
				})
				offsets := map[int32]int64{}
				for p := range int32(6) { // two partitions that do not exist
					if rng.IntN(2) == 0 {
						offsets[p] = int64(rng.IntN(3))
					}
				}
				var forget []int32
				if rng.IntN(3) == 0 {
					forget = []int32{int32(rng.IntN(6))}
				}
				req := protoSessionFetch("abused", id, session, epoch, offsets, forget...)
				req.MaxWaitMillis = 0
				resp := c.roundTrip(req, 12).(*kmsg.FetchResponse)
				if resp.SessionID != 0 {
					ids.Store(resp.SessionID, true)
				}
			}
		}()
	}
	wg.Wait()
	fs := b.fetchSessions
	fs.mu.Lock()
	held := 0
	for _, s := range fs.byID {
		s.mu.Lock()
		held += len(s.parts)
		if len(s.index) != len(s.parts) {
			t.Errorf("session %d: %d partitions indexed, %d listed", s.id, len(s.index), len(s.parts))
		}
		s.mu.Unlock()
	}
	n := len(fs.byID)
	fs.mu.Unlock()
	if got := fs.cached.Load(); got != int64(held) {
		t.Fatalf("%d partitions counted, the %d sessions hold %d", got, n, held)
	}
	if n > 4 {
		t.Fatalf("%d sessions kept with 4 slots", n)
	}
}

// READ is checked on every fetch of a session, for the partitions it reads
// without naming them: once the ACL is gone, they are answered
// TOPIC_AUTHORIZATION_FAILED, as by Kafka.
func TestFetchSessionChecksReadOnEveryFetch(t *testing.T) {
	s := startSecure(t, nil)
	admin := s.client(t, "SASL_SSL", scram512("admin", adminPassword))
	adm := kadm.NewClient(admin)
	if _, err := adm.CreateTopic(protoCtx(t), 1, 1, nil, "watched"); err != nil {
		t.Fatal(err)
	}
	if err := produceOne(protoCtx(t), admin, "watched", "v"); err != nil {
		t.Fatal(err)
	}
	readers := kadm.NewACLs().Allow("User:ANONYMOUS").Topics("watched").Operations(kadm.OpRead)
	s.allow(t, readers)

	nc, err := net.DialTimeout("tcp", s.b.ListenerAddr("PLAINTEXT"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := &protoConn{t: t, nc: nc, r: bufio.NewReader(nc), fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("reader"))}
	full := c.roundTrip(protoSessionFetch("watched", [16]byte{}, 0, 0, map[int32]int64{0: 0}), 12).(*kmsg.FetchResponse)
	if got := answeredPartitions(full); !slices.Equal(got, []string{"0=1+records"}) || full.SessionID == 0 {
		t.Fatalf("the allowed full fetch answered %q in session %d", got, full.SessionID)
	}
	deleted, err := adm.DeleteACLs(protoCtx(t), kadm.NewACLs().Allow("User:ANONYMOUS").AllowHosts("*").Topics("watched").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))
	if err != nil || deleted[0].Err != nil || len(deleted[0].Deleted) != 1 {
		t.Fatalf("delete the ACL: %v %+v", err, deleted)
	}
	resp := c.roundTrip(protoSessionFetch("watched", [16]byte{}, full.SessionID, 1, nil), 12).(*kmsg.FetchResponse)
	if got := answeredPartitions(resp); len(got) != 1 || !strings.Contains(got[0], "TOPIC_AUTHORIZATION_FAILED") {
		t.Fatalf("the session's fetch after the ACL was deleted answered %q", got)
	}
}

// After the partitions that returned records move to the back of the
// session, a topic's partitions answered together are one entry of the
// answer, as Kafka merges them once the quiet partitions are left out.
func TestFetchSessionAnswersATopicOnce(t *testing.T) {
	b := protoBroker(t, nil)
	protoCreateTopic(t, b, "a", 2, nil)
	protoCreateTopic(t, b, "b", 1, nil)
	cl := protoClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	c := protoDial(t, b)
	req := protoSessionFetch("a", [16]byte{}, 0, 0, map[int32]int64{0: 0, 1: 0})
	req.Topics = append(req.Topics, protoSessionFetch("b", [16]byte{}, 0, 0, map[int32]int64{0: 0}).Topics...)
	full := c.roundTrip(req, 12).(*kmsg.FetchResponse)
	produceTo(t, cl, "a", 0, 1)
	// a/0 returns its record and goes to the back: a/1, b/0, a/0.
	if got := answeredPartitions(c.roundTrip(protoSessionFetch("a", [16]byte{}, full.SessionID, 1, nil), 12).(*kmsg.FetchResponse)); !slices.Equal(got, []string{"0=1+records"}) {
		t.Fatalf("first incremental fetch answered %q", got)
	}
	produceTo(t, cl, "a", 1, 1)
	resp := c.roundTrip(protoSessionFetch("a", [16]byte{}, full.SessionID, 2, map[int32]int64{0: 0}), 12).(*kmsg.FetchResponse)
	if len(resp.Topics) != 1 || resp.Topics[0].Topic != "a" || !slices.Equal(answeredPartitions(resp), []string{"1=1+records", "0=1+records"}) {
		t.Fatalf("answer of a/1 and a/0 around a quiet b/0: %d topics, %q", len(resp.Topics), answeredPartitions(resp))
	}
}

// A long poll that reads twice (its first read short of MinBytes) lists
// each aborted transaction once.
func TestLongPollListsAbortedTransactionsOnce(t *testing.T) {
	b := protoBroker(t, nil)
	id := protoCreateTopic(t, b, "aborts", 1, nil)
	produceTxn(t, txnProducer(t, b, "aborter", kgo.RecordPartitioner(kgo.ManualPartitioner())), "aborts", false, "gone")
	produceTo(t, protoClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner())), "aborts", 0, 1)
	req := protoSessionFetch("aborts", id, 0, -1, map[int32]int64{0: 0})
	req.IsolationLevel, req.MinBytes, req.MaxWaitMillis = 1, 1<<20, 100
	resp := protoDial(t, b).roundTrip(req, 12).(*kmsg.FetchResponse)
	if got := resp.Topics[0].Partitions[0].AbortedTransactions; len(got) != 1 {
		t.Fatalf("aborted transactions listed: %+v, want the one", got)
	}
}

// fetchPlace is one entry of a fetch answer, in order: the topic entry it
// is under (its name, or "id" for one named by id), partition and error.
type fetchPlace struct {
	entry     int
	topic     string
	partition int32
	errorCode int16
}

func fetchPlaces(resp *kmsg.FetchResponse, names map[[16]byte]string) []fetchPlace {
	var out []fetchPlace
	for i, rt := range resp.Topics {
		name := rt.Topic
		if rt.TopicID != ([16]byte{}) {
			name = names[rt.TopicID]
		}
		for _, rp := range rt.Partitions {
			out = append(out, fetchPlace{i, name, rp.Partition, rp.ErrorCode})
		}
	}
	return out
}

// TestFetchAnswersUnknownPartitionsLast: as Kafka, a fetch answers the
// partitions it reads first, then unknown topic ids, then unknown topics
// and partitions, each in the request's order; a topic's partitions on
// either side of that move are two entries of the answer.
func TestFetchAnswersUnknownPartitionsLast(t *testing.T) {
	b := protoBroker(t, nil)
	id := protoCreateTopic(t, b, "known", 2, nil)
	c := protoDial(t, b)
	madeUp := [16]byte{1, 2, 3}
	names := map[[16]byte]string{id: "known", madeUp: "unknown-id"}
	req := func(topics ...kmsg.FetchRequestTopic) *kmsg.FetchRequest {
		r := protoSessionFetch("", [16]byte{}, 0, -1, nil)
		r.MaxWaitMillis, r.Topics = 0, topics
		return r
	}
	topic := func(name string, id [16]byte, partitions ...int32) kmsg.FetchRequestTopic {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = name, id
		for _, p := range partitions {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LogStartOffset = p, 1<<20, -1, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}
	unknown, unknownID := kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicID.Code

	got := fetchPlaces(c.roundTrip(req(topic("nope", [16]byte{}, 0), topic("known", [16]byte{}, 0, 5, 1)), 12).(*kmsg.FetchResponse), names)
	want := []fetchPlace{{0, "known", 0, 0}, {0, "known", 1, 0}, {1, "nope", 0, unknown}, {2, "known", 5, unknown}}
	if !slices.Equal(got, want) {
		t.Errorf("v12 answer %v, want %v", got, want)
	}
	got = fetchPlaces(c.roundTrip(req(topic("", madeUp, 0), topic("", id, 5, 0)), 13).(*kmsg.FetchResponse), names)
	want = []fetchPlace{{0, "known", 0, 0}, {1, "unknown-id", 0, unknownID}, {2, "known", 5, unknown}}
	if !slices.Equal(got, want) {
		t.Errorf("v13 answer %v, want %v", got, want)
	}
}

// TestFetchSessionOfADeletedTopic: a v13+ session's partition whose topic
// is deleted is UNKNOWN_TOPIC_OR_PARTITION, and once a topic of that name
// is made again (with another id) INCONSISTENT_TOPIC_ID, as in Kafka; a
// partition never known is UNKNOWN_TOPIC_ID.
func TestFetchSessionOfADeletedTopic(t *testing.T) {
	b := protoBroker(t, nil)
	id := protoCreateTopic(t, b, "gone", 1, nil)
	other := protoCreateTopic(t, b, "kept", 1, nil)
	c := protoDial(t, b)
	full := protoSessionFetch("gone", id, 0, 0, map[int32]int64{0: 0})
	kept := kmsg.NewFetchRequestTopic()
	kept.TopicID = other
	kept.Partitions = append(kept.Partitions, full.Topics[0].Partitions[0])
	full.Topics = append(full.Topics, kept)
	resp := c.roundTrip(full, 13).(*kmsg.FetchResponse)
	if resp.SessionID == 0 {
		t.Fatal("no session made")
	}
	codes := func(epoch int32) []fetchPlace {
		t.Helper()
		r := c.roundTrip(protoSessionFetch("", [16]byte{}, resp.SessionID, epoch, nil), 13).(*kmsg.FetchResponse)
		if r.ErrorCode != 0 {
			t.Fatalf("incremental fetch %d: %v", epoch, kerr.ErrorForCode(r.ErrorCode))
		}
		return fetchPlaces(r, map[[16]byte]string{id: "gone", other: "kept"})
	}
	if _, err := protoAdmin(t, b).DeleteTopics(protoCtx(t), "gone"); err != nil {
		t.Fatal(err)
	}
	if got, want := codes(1), []fetchPlace{{0, "gone", 0, kerr.UnknownTopicOrPartition.Code}}; !slices.Equal(got, want) {
		t.Errorf("after the delete: %v, want %v", got, want)
	}
	protoCreateTopic(t, b, "gone", 1, nil)
	if got, want := codes(2), []fetchPlace{{0, "gone", 0, kerr.InconsistentTopicID.Code}}; !slices.Equal(got, want) {
		t.Errorf("once made again: %v, want %v", got, want)
	}
}

// TestSessionReadsATopicOnce: an incremental fetch reads a session's
// partitions as one request topic per topic (one lookup and one READ check
// each), whether the session names topics by name or by id.
func TestSessionReadsATopicOnce(t *testing.T) {
	for _, version := range []int16{12, 13} {
		b := protoBroker(t, nil)
		id := protoCreateTopic(t, b, "tweets", 4, nil)
		resp := protoDial(t, b).roundTrip(protoSessionFetch("tweets", id, 0, 0, map[int32]int64{0: 0, 1: 0, 2: 0, 3: 0}), version).(*kmsg.FetchResponse)
		b.fetchSessions.mu.Lock()
		fs := b.fetchSessions.byID[resp.SessionID]
		b.fetchSessions.mu.Unlock()
		if fs == nil {
			t.Fatalf("v%d: no session made", version)
		}
		topics, _ := fs.requestTopics()
		if len(topics) != 1 || len(topics[0].Partitions) != 4 {
			t.Errorf("v%d: the session's partitions are read as %d request topics, want 1 with all 4", version, len(topics))
		}
	}
}
