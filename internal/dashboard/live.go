package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The live view reads each watched topic with one consumer outside any
// group (it commits nothing and holds no partitions from the pipeline's
// consumers), shared by every open page, starting a few records before the
// end so a new page has something to show at once. A page shows a few
// records a second at most, so the view takes what it can show and skips
// ahead when the topic moves faster: on a busy topic it reads a small part
// of the records instead of competing with the pipeline for them.
const (
	liveBacklog   = 50               // records kept per topic for a page that opens
	liveStartBack = 20               // records per partition read before the end at start
	liveIdle      = 30 * time.Second // a topic nobody watches is let go after this
	liveBuffer    = 256              // records queued per page before they are skipped
	livePerPoll   = 40               // records shown per poll at most (the newest)
	livePollEvery = 250 * time.Millisecond
	liveMaxBehind = 200 // a partition further behind its end than this skips ahead
)

type liveHub struct {
	s      *Server
	mu     sync.Mutex
	topics map[string]*liveTopic
	closed bool
}

type liveTopic struct {
	name   string
	subs   map[*liveSub]struct{}
	recent []Record
	cancel context.CancelFunc
	idle   *time.Timer
	err    string
}

type liveSub struct {
	ch      chan Record
	skipped int
}

func newLiveHub(s *Server) *liveHub { return &liveHub{s: s, topics: map[string]*liveTopic{}} }

// subscribe returns the recent records of topic and a channel of new ones.
func (h *liveHub) subscribe(topic string) ([]Record, *liveSub, func(), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil, nil, fmt.Errorf("the dashboard is stopping")
	}
	t := h.topics[topic]
	if t == nil {
		t = &liveTopic{name: topic, subs: map[*liveSub]struct{}{}}
		if err := h.start(t); err != nil {
			return nil, nil, nil, err
		}
		h.topics[topic] = t
	}
	if t.idle != nil {
		t.idle.Stop()
		t.idle = nil
	}
	sub := &liveSub{ch: make(chan Record, liveBuffer)}
	t.subs[sub] = struct{}{}
	backlog := append([]Record(nil), t.recent...)
	return backlog, sub, func() { h.unsubscribe(t, sub) }, nil
}

func (h *liveHub) unsubscribe(t *liveTopic, sub *liveSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(t.subs, sub)
	if len(t.subs) == 0 && t.idle == nil && !h.closed {
		t.idle = time.AfterFunc(liveIdle, func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if len(t.subs) == 0 && h.topics[t.name] == t {
				t.cancel()
				delete(h.topics, t.name)
			}
		})
	}
}

// start begins consuming a topic; h.mu is held.
func (h *liveHub) start(t *liveTopic) error {
	cl, err := kgo.NewClient(h.s.cfg.clientOpts(
		kgo.ConsumeTopics(t.name),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd().Relative(-liveStartBack)),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.FetchMaxBytes(1<<20),
		kgo.FetchMaxPartitionBytes(256<<10),
		kgo.ClientID("creek-dashboard-live"),
	)...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	go func() {
		defer cl.Close()
		for {
			began := time.Now()
			fetches := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			var recs []*kgo.Record
			skip := map[string]map[int32]kgo.EpochOffset{}
			fetches.EachPartition(func(p kgo.FetchTopicPartition) {
				recs = append(recs, p.Records...)
				if n := len(p.Records); n > 0 && p.HighWatermark-p.Records[n-1].Offset > liveMaxBehind {
					if skip[p.Topic] == nil {
						skip[p.Topic] = map[int32]kgo.EpochOffset{}
					}
					skip[p.Topic][p.Partition] = kgo.EpochOffset{Epoch: -1, Offset: p.HighWatermark - liveStartBack}
				}
			})
			if len(skip) > 0 {
				cl.SetOffsets(skip)
			}
			skipped := max(len(recs)-livePerPoll, 0)
			batch := make([]Record, 0, len(recs)-skipped)
			for _, r := range recs[skipped:] {
				batch = append(batch, newRecord(r))
			}
			var ferr string
			fetches.EachError(func(topic string, p int32, err error) { ferr = fmt.Sprintf("%s/%d: %v", topic, p, err) })
			h.deliver(t, batch, ferr)
			select {
			case <-ctx.Done():
				return
			case <-time.After(livePollEvery - time.Since(began)):
			}
		}
	}()
	return nil
}

func (h *liveHub) deliver(t *liveTopic, batch []Record, ferr string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t.err = ferr
	for _, r := range batch {
		t.recent = append(t.recent, r)
		for sub := range t.subs {
			select {
			case sub.ch <- r:
			default:
				sub.skipped++ // a page that cannot keep up misses records, never the pipeline
			}
		}
	}
	if n := len(t.recent) - liveBacklog; n > 0 {
		t.recent = append(t.recent[:0], t.recent[n:]...)
	}
}

func (h *liveHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, t := range h.topics {
		t.cancel()
		if t.idle != nil {
			t.idle.Stop()
		}
	}
	h.topics = map[string]*liveTopic{}
}

// getLive streams a topic's new records as server-sent events: "record"
// events carry a Record, "skipped" events say how many a slow page missed.
func (s *Server) getLive(w http.ResponseWriter, r *http.Request) {
	topic := r.URL.Query().Get("topic")
	if topic == "" {
		topic = s.defaultTopic()
	}
	if topic == "" {
		writeError(w, http.StatusNotFound, "no topic to watch yet: the cluster has no topics (or could not be read)")
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming is not supported by this connection")
		return
	}
	backlog, sub, unsubscribe, err := s.live.subscribe(topic)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	defer unsubscribe()
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	fmt.Fprintf(w, "event: topic\ndata: %q\n\n", topic)
	for _, rec := range backlog {
		writeEvent(w, "record", rec)
	}
	flusher.Flush()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	reported := 0
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		case rec := <-sub.ch:
			writeEvent(w, "record", rec)
			for n := len(sub.ch); n > 0; n-- { // send what queued up in one write
				writeEvent(w, "record", <-sub.ch)
			}
			s.live.mu.Lock()
			skipped := sub.skipped
			s.live.mu.Unlock()
			if skipped > reported {
				writeEvent(w, "skipped", skipped)
				reported = skipped
			}
			flusher.Flush()
		case <-ping.C:
			fmt.Fprint(w, ": ping\n\n")
			flusher.Flush()
		}
	}
}

func writeEvent(w http.ResponseWriter, event string, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
}
