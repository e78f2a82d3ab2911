package broker

import (
	"errors"
	"path/filepath"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/cluster"
	"github.com/creek-pipeline/creek/internal/quota"
	"github.com/creek-pipeline/creek/internal/storage"
)

// handleFetch serves consumers, with incremental fetch sessions
// (fetch_session.go): the session the request names is looked up and
// updated here, in the connection's reader, so a client's fetches apply in
// the order sent.
//
// The fetch itself (long polling up to MaxWaitMillis until MinBytes are
// available) runs in the finish step, so it never holds up the reading of
// the connection's next requests.
func handleFetch(b *Broker, r *request, req *kmsg.FetchRequest) (kmsg.Response, func()) {
	resp := &fetchResponse{FetchResponse: req.ResponseKind().(*kmsg.FetchResponse)}
	fc := b.fetchSessions.context(req)
	if fc.errorCode != 0 {
		resp.ErrorCode = fc.errorCode
		return resp, nil
	}
	return resp, func() { b.fetch(r, req, resp, fc) }
}

// fetchPart is one requested partition during a fetch: where to read, and
// what the read found. The answer is built from the parts at the end, so
// that a session's partitions with nothing new cost no answer entry.
type fetchPart struct {
	topic       int    // the request topic it is listed under
	name        string // its topic's name, "" for an unknown topic id
	partition   int32
	log         *storage.Log // nil when errorCode is set by the plan
	offset      int64
	max         int64
	leaderEpoch int32 // the client's, checked by the plan

	errorCode                    int16
	highWatermark, lso, logStart int64
	aborted                      []storage.AbortedTxn
	chunk                        storage.Chunk
	data                         []byte // the records of a chunk too small for sendfile, once read
}

// fetch reads, long polling until the request's max wait, the broker's
// shutdown or the end of its connection's reader.
func (b *Broker) fetch(r *request, req *kmsg.FetchRequest, fr *fetchResponse, fc fetchContext) {
	gone := r.conn.gone
	resp := fr.FetchResponse
	var session []*sessionPart
	if fc.session != nil { // an incremental fetch reads every partition of its session
		whole := *req
		whole.Topics, session = fc.session.requestTopics()
		req = &whole
	}
	parts := b.fetchPlan(r, req, fc.session == nil)
	erroneousLast(parts, session)
	if fc.session != nil && fc.session.byTopicID {
		fc.session.learnNames(parts, session)
	}
	b.longPoll(req, parts, gone)
	var total int64
	for i := range parts {
		total += parts[i].chunk.Len
	}
	if d := b.quotas.Throttle(quota.ConsumerByteRate, r.quotaClient(), total); d > 0 {
		// As Kafka: a consumer over its quota gets an empty answer with
		// the time to wait, and what it was not sent is not counted. A
		// full fetch's session is not made; an incremental one's answer
		// still says whether its epoch held.
		b.quotas.Unrecord(quota.ConsumerByteRate, r.quotaClient(), total)
		resp.ThrottleMillis = r.throttle(d)
		if fs := fc.session; fs != nil {
			fs.mu.Lock()
			fc.answering(resp)
			fs.mu.Unlock()
		}
		return
	}
	// Small record sets are read now, before the session learns what the
	// answer says: a read that fails makes it an error answer.
	for i := range parts {
		p := &parts[i]
		if p.errorCode != 0 || p.chunk.Len == 0 || p.chunk.Len >= sendfileMin {
			continue
		}
		data, err := p.chunk.Bytes()
		switch {
		case err == nil:
			p.data = data
		case errors.Is(err, storage.ErrSegmentGone): // retention won the race; the client fetches again
			p.chunk.Len = 0
		default:
			p.chunk.Len = 0
			p.errorCode = kerr.KafkaStorageError.Code
			p.highWatermark, p.lso, p.logStart = -1, -1, -1
			b.logger.Error("fetch read failed", "partition", filepath.Base(p.log.Dir()), "err", err)
		}
	}
	var news []bool // nil: every part is answered
	switch {
	case fc.full:
		resp.SessionID = b.fetchSessions.create(req, parts)
	case fc.session != nil:
		var ok bool
		if news, ok = sessionAnswer(fc, resp, parts, session); !ok {
			return
		}
	}
	fetchAnswer(fr, req, parts, news)
}

// longPoll reads the parts until they hold the request's MinBytes, or its
// MaxWaitMillis pass (or the broker shuts down, or gone is closed). A fetch
// that may wait watches its partitions before it first reads them, so no
// append in between goes unnoticed.
func (b *Broker) longPoll(req *kmsg.FetchRequest, parts []fetchPart, gone <-chan struct{}) {
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	minBytes := int64(req.MinBytes)
	wake := make(chan struct{}, 1)
	watched := false // some partition can be read, and the fetch may wait
	if req.MaxWaitMillis > 0 {
		for i := range parts {
			if l := parts[i].log; l != nil {
				l.WatchAppends(wake)
				watched = true
			}
		}
		defer func() {
			for i := range parts {
				if l := parts[i].log; l != nil {
					l.UnwatchAppends(wake)
				}
			}
		}()
	}
	for {
		total, failed := b.fetchRead(req, parts)
		if total >= minBytes || failed || !time.Now().Before(deadline) || !watched {
			return
		}
		if !b.waitForData(wake, deadline, gone) {
			b.fetchRead(req, parts)
			return
		}
	}
}

// fetchAnswer builds the answer from the parts, or those news says the
// client has news of (nil: all), a topic's neighbouring partitions in one
// entry, as Kafka answers them.
func fetchAnswer(fr *fetchResponse, req *kmsg.FetchRequest, parts []fetchPart, news []bool) {
	resp := fr.FetchResponse
	type place struct{ ti, pi, part int }
	var sent []place // record sets sent from their files, placed once the answer is whole
	for i := range parts {
		p := &parts[i]
		if news != nil && !news[i] {
			continue
		}
		rt := &req.Topics[p.topic]
		if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != rt.Topic || resp.Topics[n-1].TopicID != rt.TopicID {
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			resp.Topics = append(resp.Topics, st)
		}
		st := &resp.Topics[len(resp.Topics)-1]
		sp := kmsg.NewFetchResponseTopicPartition()
		sp.Partition, sp.ErrorCode = p.partition, p.errorCode
		sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = p.highWatermark, p.lso, p.logStart
		sp.RecordBatches = []byte{} // empty, not null: librdkafka rejects a null record set
		for _, a := range p.aborted {
			at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
			at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
			sp.AbortedTransactions = append(sp.AbortedTransactions, at)
		}
		switch {
		case p.errorCode != 0 || p.chunk.Len == 0:
		case p.data != nil:
			sp.RecordBatches = p.data
		default:
			sp.RecordBatches = placeholder
			sent = append(sent, place{len(resp.Topics) - 1, len(st.Partitions), i})
		}
		st.Partitions = append(st.Partitions, sp)
	}
	for _, at := range sent {
		sp := &resp.Topics[at.ti].Partitions[at.pi]
		fr.regions = append(fr.regions, region{chunk: parts[at.part].chunk, dst: &sp.RecordBatches})
	}
}

// fetchPlan resolves each requested partition, in the request's order; the
// readable ones get their log, the others the error to answer. A topic the
// client may not read (r.mayRead) is TOPIC_AUTHORIZATION_FAILED, after an
// unknown topic id and before an unknown name, as in Kafka. A partition
// named again is read and answered once, at its first place with its last
// position, as Kafka does (a session's partitions are each named once, so
// named is false for them and the check is spared).
func (b *Broker) fetchPlan(r *request, req *kmsg.FetchRequest, named bool) []fetchPart {
	n := 0
	for _, rt := range req.Topics {
		n += len(rt.Partitions)
	}
	parts := make([]fetchPart, 0, n)
	var seen map[sessionKey]int // place in parts
	if named && n > 1 {
		seen = make(map[sessionKey]int, n)
	}
	for ti, rt := range req.Topics {
		var t *cluster.Topic
		topicErr := int16(0)
		name := rt.Topic // from v13, set only for a session's partitions whose name was known
		gone := false    // a session's topic whose id is no more
		if req.Version >= 13 {
			var ok bool
			switch t, ok = b.cluster.TopicByID(rt.TopicID); {
			case ok:
				name = t.Name()
			case name == "":
				topicErr = kerr.UnknownTopicID.Code
			default:
				gone = true
			}
		}
		switch {
		case topicErr != 0:
		case r.mayRead != nil && !r.mayRead(name):
			topicErr = kerr.TopicAuthorizationFailed.Code
		case gone:
			// As Kafka: the topic was deleted, or deleted and made again
			// under the same name with another id.
			var again bool
			if t, again = b.cluster.Topic(name); !again {
				topicErr = kerr.UnknownTopicOrPartition.Code
			}
		case req.Version < 13:
			var ok bool
			if t, ok = b.cluster.Topic(name); !ok {
				topicErr = kerr.UnknownTopicOrPartition.Code
			}
		}
		for _, rp := range rt.Partitions {
			if seen != nil {
				k := keyOf(req.Version, rt.Topic, rt.TopicID, rp.Partition)
				if at, again := seen[k]; again {
					parts[at].offset, parts[at].max, parts[at].leaderEpoch = rp.FetchOffset, int64(rp.PartitionMaxBytes), rp.CurrentLeaderEpoch
					continue
				}
				seen[k] = len(parts)
			}
			p := fetchPart{topic: ti, name: name, partition: rp.Partition, offset: rp.FetchOffset, max: int64(rp.PartitionMaxBytes), leaderEpoch: rp.CurrentLeaderEpoch,
				errorCode: topicErr, highWatermark: -1, lso: -1, logStart: -1}
			if p.errorCode == 0 {
				switch p.log = t.Partition(rp.Partition); {
				case p.log == nil:
					p.errorCode = kerr.UnknownTopicOrPartition.Code
				case gone:
					p.errorCode = kerr.InconsistentTopicID.Code
				}
			}
			if p.errorCode == 0 && req.Version >= 9 {
				p.errorCode = checkLeaderEpoch(rp.CurrentLeaderEpoch)
			}
			if p.errorCode != 0 {
				p.log = nil
			}
			parts = append(parts, p)
		}
	}
	return parts
}

// erroneousLast puts the partitions Kafka answers after the others last,
// each kind in its order: first those it reads (whose read may still fail),
// then unknown topic ids, then topics the client may not read and unknown
// topics and partitions. A full fetch's session keeps that order too.
// session, when set, holds the session's partition of each part and is
// kept beside them.
func erroneousLast(parts []fetchPart, session []*sessionPart) {
	rank := func(p *fetchPart) int {
		switch p.errorCode {
		case kerr.UnknownTopicID.Code:
			return 1
		case kerr.TopicAuthorizationFailed.Code, kerr.UnknownTopicOrPartition.Code:
			return 2
		}
		return 0
	}
	sorted := true
	for i := 1; i < len(parts) && sorted; i++ {
		sorted = rank(&parts[i-1]) <= rank(&parts[i])
	}
	if sorted {
		return // nearly every fetch
	}
	order := make([]int, len(parts))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return rank(&parts[a]) - rank(&parts[b]) })
	was, wasSession := slices.Clone(parts), slices.Clone(session)
	for i, j := range order {
		parts[i] = was[j]
		if session != nil {
			session[i] = wasSession[j]
		}
	}
}

// fetchRead locates the data of every readable partition, within the
// partition and response byte limits. The first batch of the first
// partition with data is returned whole even when it is over the limits
// (KIP-74), so a consumer never gets stuck behind a large batch.
func (b *Broker) fetchRead(req *kmsg.FetchRequest, parts []fetchPart) (total int64, failed bool) {
	// fetch.max.bytes bounds what a consumer may ask for, as in Kafka: the
	// same partition listed 10,000 times with 2 GiB asked must not be
	// read into memory 10,000 times.
	budget := b.fetchMaxBytes
	if req.MaxBytes > 0 {
		budget = min(budget, int64(req.MaxBytes))
	}
	for i := range parts {
		p := &parts[i]
		if p.log == nil {
			continue
		}
		limit := min(p.max, budget-total)
		// The LSO is taken before reading: what lies below it stays decided.
		lso := p.log.LastStableOffset()
		var res storage.ReadResult
		var err error
		if req.IsolationLevel == 1 { // read_committed: only decided transactions
			res, err = p.log.ReadUpTo(p.offset, max(limit, 0), total == 0, lso)
		} else {
			res, err = p.log.Read(p.offset, max(limit, 0), total == 0)
		}
		p.chunk, p.aborted = res.Chunk, nil
		if err != nil {
			// As Kafka: an answer with an error carries no offsets.
			p.errorCode = errorCode(err)
			p.highWatermark, p.lso, p.logStart = -1, -1, -1
			failed = true
			continue
		}
		p.errorCode = 0
		p.highWatermark, p.lso, p.logStart = res.HighWatermark, lso, res.LogStartOffset
		if req.IsolationLevel == 1 && res.Chunk.Len > 0 {
			// The consumer drops the records of these producers' aborted
			// transactions; the markers tell it where each one ends.
			p.aborted = p.log.AbortedTxns(p.offset, lso)
		}
		total += res.Chunk.Len
	}
	return total, failed
}

// waitForData blocks until wake is signalled (an append to one of the
// partitions), the deadline passes, the broker shuts down or gone is closed;
// it reports whether to read again.
func (b *Broker) waitForData(wake <-chan struct{}, deadline time.Time, gone <-chan struct{}) bool {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-wake:
		return true
	case <-timer.C:
	case <-b.closing:
	case <-gone:
	}
	return false
}

// checkLeaderEpoch validates the leader epoch a client believes in (KIP-320).
func checkLeaderEpoch(epoch int32) int16 {
	switch {
	case epoch == -1 || epoch == leaderEpoch:
		return 0
	case epoch > leaderEpoch:
		return kerr.UnknownLeaderEpoch.Code
	default:
		return kerr.FencedLeaderEpoch.Code
	}
}
