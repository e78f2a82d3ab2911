package broker

import (
	"errors"
	"path/filepath"
	"reflect"
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

// fetchPart is one requested partition during a fetch.
type fetchPart struct {
	ti, pi int // place in the response
	k      int // place among the request's partitions, in order
	log    *storage.Log
	offset int64
	max    int64
	chunk  storage.Chunk
	data   []byte // the records of a chunk too small for sendfile, once read
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
	parts := b.fetchPlan(r, req, resp)
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	minBytes := int64(req.MinBytes)
	for {
		waits := make([]<-chan struct{}, 0, len(parts))
		for _, p := range parts {
			waits = append(waits, p.log.Appended())
		}
		total, failed := b.fetchRead(req, resp, parts)
		if total >= minBytes || failed || !time.Now().Before(deadline) || len(parts) == 0 {
			break
		}
		if !b.waitForData(waits, deadline, gone) {
			b.fetchRead(req, resp, parts)
			break
		}
	}
	var total int64
	for _, p := range parts {
		total += p.chunk.Len
	}
	if d := b.quotas.Throttle(quota.ConsumerByteRate, r.quotaClient(), total); d > 0 {
		// As Kafka: a consumer over its quota gets an empty answer with
		// the time to wait, and what it was not sent is not counted. A
		// full fetch's session is not made; an incremental one's answer
		// still says whether its epoch held.
		b.quotas.Unrecord(quota.ConsumerByteRate, r.quotaClient(), total)
		resp.Topics = nil
		resp.ThrottleMillis = r.throttle(d)
		if fs := fc.session; fs != nil {
			fs.mu.Lock()
			resp.SessionID = fs.id
			if fs.epoch != nextEpoch(fc.epoch) {
				resp.ErrorCode = kerr.InvalidFetchSessionEpoch.Code
			}
			fs.mu.Unlock()
		}
		return
	}
	// Small record sets are read now, before the session learns what the
	// answer says: a read that fails makes it an error answer.
	for i := range parts {
		p := &parts[i]
		sp := &resp.Topics[p.ti].Partitions[p.pi]
		if sp.ErrorCode != 0 || p.chunk.Len == 0 || p.chunk.Len >= sendfileMin {
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
			sp.ErrorCode = kerr.KafkaStorageError.Code
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			b.logger.Error("fetch read failed", "partition", filepath.Base(p.log.Dir()), "err", err)
		}
	}
	switch {
	case fc.full:
		resp.SessionID = b.fetchSessions.create(req, resp)
	case fc.session != nil:
		parts = sessionAnswer(fc, resp, parts, session)
	}
	for _, p := range parts {
		sp := &resp.Topics[p.ti].Partitions[p.pi]
		switch {
		case sp.ErrorCode != 0 || p.chunk.Len == 0:
		case p.data != nil:
			sp.RecordBatches = p.data
		default:
			sp.RecordBatches = placeholder
			fr.regions = append(fr.regions, region{chunk: p.chunk, dst: &sp.RecordBatches})
		}
	}
}

// sessionAnswer cuts an incremental fetch's answer down to what the client
// has not been told (see fetchSession.answered), a topic's neighbouring
// partitions together as Kafka answers them, and returns the parts that
// stay, at their new places. session is the session's partitions in the
// answer's order.
func sessionAnswer(fc fetchContext, resp *kmsg.FetchResponse, parts []fetchPart, session []*sessionPart) []fetchPart {
	fs := fc.session
	fs.mu.Lock()
	defer fs.mu.Unlock()
	resp.SessionID = fs.id
	if fs.epoch != nextEpoch(fc.epoch) { // another fetch of the session came after this one
		resp.ErrorCode, resp.Topics = kerr.InvalidFetchSessionEpoch.Code, nil
		return nil
	}
	for _, p := range parts {
		if p.chunk.Len > 0 && resp.Topics[p.ti].Partitions[p.pi].ErrorCode == 0 {
			session[p.k].served = true
		}
	}
	keep := fs.answered(resp, session)
	at := make([][2]int, len(keep)) // each partition's new place
	var topics []kmsg.FetchResponseTopic
	k := 0
	for _, t := range resp.Topics {
		for _, sp := range t.Partitions {
			if keep[k] {
				n := len(topics)
				if n == 0 || topics[n-1].Topic != t.Topic || topics[n-1].TopicID != t.TopicID {
					nt := t
					nt.Partitions = nil
					topics = append(topics, nt)
					n++
				}
				at[k] = [2]int{n - 1, len(topics[n-1].Partitions)}
				topics[n-1].Partitions = append(topics[n-1].Partitions, sp)
			}
			k++
		}
	}
	resp.Topics = topics
	out := parts[:0]
	for _, p := range parts {
		if keep[p.k] {
			p.ti, p.pi = at[p.k][0], at[p.k][1]
			out = append(out, p)
		}
	}
	return out
}

// fetchPlan builds the response skeleton and resolves each partition. A
// topic the client may not read (r.mayRead) is TOPIC_AUTHORIZATION_FAILED,
// after an unknown topic id and before an unknown name, as in Kafka.
func (b *Broker) fetchPlan(r *request, req *kmsg.FetchRequest, resp *kmsg.FetchResponse) []fetchPart {
	var parts []fetchPart
	k := -1
	for ti, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		var t *cluster.Topic
		topicErr := int16(0)
		name := rt.Topic
		if req.Version >= 13 {
			var ok bool
			if t, ok = b.cluster.TopicByID(rt.TopicID); ok {
				name = t.Name()
			} else {
				topicErr = kerr.UnknownTopicID.Code
			}
		}
		switch {
		case topicErr != 0:
		case r.mayRead != nil && !r.mayRead(name):
			topicErr = kerr.TopicAuthorizationFailed.Code
		case req.Version < 13:
			var ok bool
			if t, ok = b.cluster.Topic(name); !ok {
				topicErr = kerr.UnknownTopicOrPartition.Code
			}
		}
		for pi, rp := range rt.Partitions {
			k++
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			sp.RecordBatches = []byte{} // empty, not null: librdkafka rejects a null record set
			sp.ErrorCode = topicErr
			var l *storage.Log
			if sp.ErrorCode == 0 {
				if l = t.Partition(rp.Partition); l == nil {
					sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				}
			}
			if sp.ErrorCode == 0 && req.Version >= 9 {
				sp.ErrorCode = checkLeaderEpoch(rp.CurrentLeaderEpoch)
			}
			st.Partitions = append(st.Partitions, sp)
			if sp.ErrorCode == 0 {
				parts = append(parts, fetchPart{ti: ti, pi: pi, k: k, log: l, offset: rp.FetchOffset, max: int64(rp.PartitionMaxBytes)})
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return parts
}

// fetchRead locates the data of every partition, within the partition and
// response byte limits. The first batch of the first partition with data is
// returned whole even when it is over the limits (KIP-74), so a consumer
// never gets stuck behind a large batch.
func (b *Broker) fetchRead(req *kmsg.FetchRequest, resp *kmsg.FetchResponse, parts []fetchPart) (total int64, failed bool) {
	// fetch.max.bytes bounds what a consumer may ask for, as in Kafka: the
	// same partition listed 10,000 times with 2 GiB asked must not be
	// read into memory 10,000 times.
	budget := b.fetchMaxBytes
	if req.MaxBytes > 0 {
		budget = min(budget, int64(req.MaxBytes))
	}
	for i := range parts {
		p := &parts[i]
		sp := &resp.Topics[p.ti].Partitions[p.pi]
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
		p.chunk = res.Chunk
		if err != nil {
			// As Kafka: an answer with an error carries no offsets.
			sp.ErrorCode = errorCode(err)
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			failed = true
			continue
		}
		sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = res.HighWatermark, lso, res.LogStartOffset
		if req.IsolationLevel == 1 && res.Chunk.Len > 0 {
			// The consumer drops the records of these producers' aborted
			// transactions; the markers tell it where each one ends.
			for _, a := range p.log.AbortedTxns(p.offset, lso) {
				at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
				sp.AbortedTransactions = append(sp.AbortedTransactions, at)
			}
		}
		total += res.Chunk.Len
	}
	return total, failed
}

// waitForData blocks until one of the partitions gets an append, the
// deadline passes, the broker shuts down or gone is closed; it reports
// whether to read again.
func (b *Broker) waitForData(waits []<-chan struct{}, deadline time.Time, gone <-chan struct{}) bool {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	if len(waits) == 1 {
		select {
		case <-waits[0]:
			return true
		case <-timer.C:
		case <-b.closing:
		case <-gone:
		}
		return false
	}
	cases := make([]reflect.SelectCase, 0, len(waits)+3)
	cases = append(cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(b.closing)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(gone)})
	for _, w := range waits {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(w)})
	}
	chosen, _, _ := reflect.Select(cases)
	return chosen >= 3
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
