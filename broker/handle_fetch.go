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
	log    *storage.Log
	offset int64
	max    int64
	chunk  storage.Chunk
}

// fetch reads, long polling until the request's max wait, the broker's
// shutdown or the end of its connection's reader.
func (b *Broker) fetch(r *request, req *kmsg.FetchRequest, fr *fetchResponse, fc fetchContext) {
	gone := r.conn.gone
	resp := fr.FetchResponse
	if fc.session != nil { // an incremental fetch reads every partition of its session
		whole := *req
		whole.Topics = fc.session.requestTopics()
		req = &whole
	}
	parts := b.fetchPlan(req, resp)
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
		// the time to wait, and what it was not sent is not counted.
		b.quotas.Unrecord(quota.ConsumerByteRate, r.quotaClient(), total)
		resp.Topics = nil
		resp.ThrottleMillis = r.throttle(d)
		if fc.session != nil { // a full fetch's session is not made (Kafka's rule)
			resp.SessionID = fc.session.id
		}
		return
	}
	if fc.full || fc.session != nil {
		parts = b.sessionAnswer(req, resp, parts, fc)
	}
	for _, p := range parts {
		sp := &resp.Topics[p.ti].Partitions[p.pi]
		if sp.ErrorCode != 0 || p.chunk.Len == 0 {
			continue
		}
		if p.chunk.Len >= sendfileMin {
			sp.RecordBatches = placeholder
			fr.regions = append(fr.regions, region{chunk: p.chunk, dst: &sp.RecordBatches})
			continue
		}
		data, err := p.chunk.Bytes()
		switch {
		case err == nil:
			sp.RecordBatches = data
		case errors.Is(err, storage.ErrSegmentGone): // retention won the race; the client fetches again
		default:
			sp.ErrorCode = kerr.KafkaStorageError.Code
			b.logger.Error("fetch read failed", "partition", filepath.Base(p.log.Dir()), "err", err)
		}
	}
}

// sessionAnswer makes the session of a full fetch that asks for one, or
// cuts an incremental fetch's answer down to what the client has not been
// told; it returns the parts that stay, at their places in the answer.
func (b *Broker) sessionAnswer(req *kmsg.FetchRequest, resp *kmsg.FetchResponse, parts []fetchPart, fc fetchContext) []fetchPart {
	if fc.full {
		resp.SessionID = b.fetchSessions.create(req, resp)
		return parts
	}
	fs := fc.session
	hasRecords := make(map[[2]int]bool, len(parts))
	for _, p := range parts {
		if p.chunk.Len > 0 && resp.Topics[p.ti].Partitions[p.pi].ErrorCode == 0 {
			hasRecords[[2]int{p.ti, p.pi}] = true
		}
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	resp.SessionID = fs.id
	if fs.epoch != nextEpoch(fc.epoch) { // another fetch of the session came after this one
		resp.ErrorCode, resp.Topics = kerr.InvalidFetchSessionEpoch.Code, nil
		return nil
	}
	keep := fs.answered(req.Version, resp, hasRecords, true)
	moved := make(map[[2]int][2]int, len(parts))
	var topics []kmsg.FetchResponseTopic
	for i, t := range resp.Topics {
		var kept []kmsg.FetchResponseTopicPartition
		for j, sp := range t.Partitions {
			if keep[i][j] {
				moved[[2]int{i, j}] = [2]int{len(topics), len(kept)}
				kept = append(kept, sp)
			}
		}
		if len(kept) > 0 {
			t.Partitions = kept
			topics = append(topics, t)
		}
	}
	resp.Topics = topics
	out := parts[:0]
	for _, p := range parts {
		if at, ok := moved[[2]int{p.ti, p.pi}]; ok {
			p.ti, p.pi = at[0], at[1]
			out = append(out, p)
		}
	}
	return out
}

// fetchPlan builds the response skeleton and resolves each partition.
func (b *Broker) fetchPlan(req *kmsg.FetchRequest, resp *kmsg.FetchResponse) []fetchPart {
	var parts []fetchPart
	for ti, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		var t *cluster.Topic
		topicErr := int16(0)
		if req.Version >= 13 {
			var ok bool
			if t, ok = b.cluster.TopicByID(rt.TopicID); !ok {
				topicErr = kerr.UnknownTopicID.Code
			}
		} else {
			var ok bool
			if t, ok = b.cluster.Topic(rt.Topic); !ok {
				topicErr = kerr.UnknownTopicOrPartition.Code
			}
		}
		for pi, rp := range rt.Partitions {
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
				parts = append(parts, fetchPart{ti: ti, pi: pi, log: l, offset: rp.FetchOffset, max: int64(rp.PartitionMaxBytes)})
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
