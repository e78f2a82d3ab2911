package share

import (
	"encoding/binary"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/storage"
)

// Share sessions: a member opens one with ShareFetch epoch 0 naming its
// partitions, then sends each request with the next epoch, adding and
// forgetting partitions; epoch -1 closes it. Acknowledgements ride on
// ShareFetch or go alone in ShareAcknowledge, under the same epochs.

type sessionKey struct{ group, member string }

type topicIDPartition struct {
	id        [16]byte
	partition int32
}

type session struct {
	epoch int32 // the epoch the next request must carry
	parts map[topicIDPartition]struct{}
	conn  any // the connection it was last used on
}

func nextEpoch(e int32) int32 {
	if e == 1<<31-1 {
		return 1 // wraps as in Kafka
	}
	return e + 1
}

// ackBatch is one acknowledgement range of either request type.
type ackBatch struct {
	first, last int64
	types       []int8
}

// Fetch handles ShareFetch. Acknowledgements are applied at once; the
// fetch (long polling up to MaxWaitMillis for records to acquire) runs in
// the returned finish function.
// conn identifies the client connection: a session is closed, and its
// records released, when that connection closes (as Kafka does).
func (c *Coordinator) Fetch(conn any, req *kmsg.ShareFetchRequest) (*kmsg.ShareFetchResponse, func()) {
	resp := req.ResponseKind().(*kmsg.ShareFetchResponse) // no lock time in an error answer, as Kafka
	fail := func(e *kerr.Error, msg string) (*kmsg.ShareFetchResponse, func()) {
		resp.ErrorCode, resp.ErrorMessage = e.Code, kmsg.StringPtr(msg)
		return resp, nil
	}
	if req.GroupID == nil || *req.GroupID == "" || req.MemberID == nil || *req.MemberID == "" {
		return fail(kerr.InvalidRequest, "ShareFetch needs a group id and a member id")
	}
	hasAcks := false
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			hasAcks = hasAcks || len(p.AcknowledgementBatches) > 0
		}
	}
	if req.ShareSessionEpoch == 0 && hasAcks {
		return fail(kerr.InvalidRequest, "a share session cannot be opened with acknowledgements")
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	g, s, e, msg := c.session(*req.GroupID, *req.MemberID, req.ShareSessionEpoch)
	if e != nil {
		return fail(e, msg)
	}
	resp.AcquisitionLockTimeoutMillis = int32(c.groupCfg(g.name).LockDuration.Milliseconds())
	member := *req.MemberID
	s.conn = conn
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			s.parts[topicIDPartition{t.TopicID, p.Partition}] = struct{}{}
		}
	}
	for _, ft := range req.ForgottenTopicsData {
		for _, p := range ft.Partitions {
			delete(s.parts, topicIDPartition{ft.TopicID, p})
		}
	}

	out := newFetchAnswer(resp)
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			if len(p.AcknowledgementBatches) == 0 {
				continue
			}
			batches := make([]ackBatch, len(p.AcknowledgementBatches))
			for i, b := range p.AcknowledgementBatches {
				batches[i] = ackBatch{b.FirstOffset, b.LastOffset, b.AcknowledgeTypes}
			}
			rp := out.partition(t.TopicID, p.Partition)
			if e := c.acknowledge(g, member, t.TopicID, p.Partition, batches); e != nil {
				rp.AcknowledgeErrorCode = e.Code
			}
		}
	}
	c.save(g)
	if req.ShareSessionEpoch == -1 {
		c.closeSession(g, member)
		return resp, nil
	}
	if req.IsRenewAck {
		return resp, nil // a renewal fetches nothing
	}

	maxRecords := int(req.MaxRecords)
	if maxRecords <= 0 {
		maxRecords = 500
	}
	deadline := c.now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	key := sessionKey{g.name, member}
	return resp, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for {
			s := c.sessions[key]
			if s == nil || c.closed {
				return // closed meanwhile: nothing more to hand out
			}
			if c.acquireInto(out, g, member, s, maxRecords, req.MaxBytes) || !c.now().Before(deadline) {
				return
			}
			changed := c.changed
			var logs []*storage.Log
			for tp := range s.parts {
				if name, _, ok := c.topics.TopicByID(tp.id); ok {
					if l, ok := c.topics.Log(name, tp.partition); ok {
						logs = append(logs, l)
					}
				}
			}
			c.mu.Unlock()
			c.waitAny(changed, logs, deadline)
			c.mu.Lock()
		}
	}
}

// session checks a request's session epoch and returns the session it
// continues (or opens, for epoch 0).
func (c *Coordinator) session(group, member string, epoch int32) (*group, *session, *kerr.Error, string) {
	if c.closed {
		return nil, nil, kerr.NotCoordinator, "the broker is shutting down"
	}
	g := c.groups[group]
	key := sessionKey{group, member}
	s := c.sessions[key]
	switch {
	case epoch != 0 && s == nil: // as Kafka, whether or not the member is in the group
		return nil, nil, kerr.ShareSessionNotFound, "member " + member + " has no share session; open one with epoch 0"
	case g == nil || g.members[member] == nil:
		// Kafka 4.4 opens a session for a member id its group does not
		// have; creek lets only members acquire records.
		return nil, nil, kerr.UnknownMemberID, "member " + member + " is not in share group " + group + "; it must join with ShareGroupHeartbeat first"
	}
	switch {
	case epoch == 0:
		if s != nil {
			c.releaseMember(g, member) // the member let its old session go
		}
		s = &session{epoch: 1, parts: map[topicIDPartition]struct{}{}}
		c.sessions[key] = s
		return g, s, nil, ""
	case epoch == -1:
		return g, s, nil, ""
	case epoch != s.epoch:
		return nil, nil, kerr.InvalidShareSessionEpoch, "share session epoch is not the expected one"
	}
	s.epoch = nextEpoch(s.epoch)
	return g, s, nil, ""
}

// ConnectionClosed closes the share sessions last used on a connection:
// the records their members hold go back to the group at once.
func (c *Coordinator) ConnectionClosed(conn any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	closed := false
	for key, s := range c.sessions {
		if s.conn == conn {
			if g := c.groups[key.group]; g != nil {
				c.closeSession(g, key.member)
			} else {
				delete(c.sessions, key)
			}
			closed = true
		}
	}
	if closed {
		c.notifyLocked() // share fetches waiting in those sessions end now
	}
}

func (c *Coordinator) closeSession(g *group, member string) {
	delete(c.sessions, sessionKey{g.name, member})
	c.releaseMember(g, member)
}

func (c *Coordinator) releaseMember(g *group, member string) {
	released := false
	for _, sp := range g.partitions {
		released = sp.releaseMember(member, c.groupCfg(g.name).DeliveryLimit) || released
	}
	if released {
		c.notifyLocked()
	}
}

// acknowledge applies a partition's acknowledgement batches.
func (c *Coordinator) acknowledge(g *group, member string, topicID [16]byte, partition int32, batches []ackBatch) *kerr.Error {
	name, _, ok := c.topics.TopicByID(topicID)
	if !ok {
		return kerr.UnknownTopicID
	}
	sp := g.partitions[topicPartition{name, partition}]
	if sp == nil {
		return kerr.InvalidRecordState
	}
	gc := c.groupCfg(g.name)
	lockUntil := c.now().Add(gc.LockDuration)
	var result *kerr.Error
	released := false
	for _, b := range batches {
		n := b.last - b.first + 1
		if n <= 0 || len(b.types) == 0 || (len(b.types) != 1 && int64(len(b.types)) != n) {
			result = kerr.InvalidRequest
			continue
		}
		for off := b.first; off <= b.last; off++ {
			kind := b.types[0]
			if len(b.types) > 1 {
				kind = b.types[off-b.first]
			}
			if !sp.acknowledge(member, off, kind, gc.DeliveryLimit, lockUntil) && result == nil {
				result = kerr.InvalidRecordState
			}
			released = released || kind == ackRelease
		}
	}
	g.dirty = sp.advance() || g.dirty
	if released {
		c.notifyLocked()
	}
	return result
}

// acquireInto acquires records of the session's partitions for member and
// adds them, with their data, to the answer; it reports whether it added
// any.
func (c *Coordinator) acquireInto(out *fetchAnswer, g *group, member string, s *session, maxRecords int, maxBytes int32) bool {
	got := false
	budget := int64(maxBytes)
	if budget <= 0 {
		budget = 50 << 20
	}
	gc := c.groupCfg(g.name)
	lockUntil := c.now().Add(gc.LockDuration)
	for tp := range s.parts {
		if maxRecords <= 0 || budget <= 0 {
			break
		}
		name, _, ok := c.topics.TopicByID(tp.id)
		if !ok {
			out.partition(tp.id, tp.partition).ErrorCode = kerr.UnknownTopicID.Code
			continue
		}
		sp, l := c.partitionFor(g, name, tp.partition)
		if sp == nil {
			out.partition(tp.id, tp.partition).ErrorCode = kerr.UnknownTopicOrPartition.Code
			continue
		}
		_, hwm := l.Offsets()
		if gc.ReadCommitted {
			hwm = min(hwm, l.LastStableOffset())
		}
		from := sp.firstAvailable()
		if from >= hwm || from-sp.start >= gc.MaxRecordLocks {
			continue
		}
		res, err := l.Read(from, budget, true)
		if err != nil {
			continue // retention moved the start; the next fetch starts past it
		}
		data, err := res.Chunk.Bytes()
		if err != nil || len(data) == 0 {
			continue
		}
		last := lastOffset(data)
		if gc.ReadCommitted {
			sp.archiveAborted(data, l.AbortedTxns(from, last+1), gc.MaxRecordLocks)
		}
		ranges := sp.acquire(member, from, min(last, hwm-1), maxRecords, gc.MaxRecordLocks, lockUntil)
		if len(ranges) == 0 {
			continue
		}
		data = trimAfter(data, ranges[len(ranges)-1].last)
		rp := out.partition(tp.id, tp.partition)
		rp.Records = data
		for _, r := range ranges {
			rp.AcquiredRecords = append(rp.AcquiredRecords, kmsg.ShareFetchResponseTopicPartitionAcquiredRecord{
				FirstOffset: r.first, LastOffset: r.last, DeliveryCount: r.deliveries,
			})
			maxRecords -= int(r.last - r.first + 1)
		}
		budget -= int64(len(data))
		got = true
	}
	c.save(g) // partitions first fetched here were initialised
	return got
}

// batchHeader reads the base offset and length of the batch at the start of
// data and its last offset, through kmsg.
func batchHeader(data []byte) (size int, last int64, ok bool) {
	if len(data) < 12 {
		return 0, 0, false
	}
	size = 12 + int(binary.BigEndian.Uint32(data[8:12]))
	if size > len(data) {
		return 0, 0, false
	}
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(data[:size]); err != nil {
		return 0, 0, false
	}
	return size, rb.FirstOffset + int64(rb.LastOffsetDelta), true
}

// lastOffset is the last offset of the last whole batch in data.
func lastOffset(data []byte) int64 {
	last := int64(-1)
	for len(data) > 0 {
		size, l, ok := batchHeader(data)
		if !ok {
			break
		}
		last, data = l, data[size:]
	}
	return last
}

// trimAfter cuts data after the batch that holds offset.
func trimAfter(data []byte, offset int64) []byte {
	pos := 0
	for pos < len(data) {
		size, l, ok := batchHeader(data[pos:])
		if !ok {
			break
		}
		pos += size
		if l >= offset {
			break
		}
	}
	return data[:pos]
}

// waitAny blocks until records may be available (the group changed, or
// one of the logs was appended to), or the deadline.
func (c *Coordinator) waitAny(changed <-chan struct{}, logs []*storage.Log, deadline time.Time) {
	woke := make(chan struct{}, 1)
	for _, l := range logs {
		l.WatchAppends(woke)
	}
	defer func() {
		for _, l := range logs {
			l.UnwatchAppends(woke)
		}
	}()
	due := make(chan struct{})
	t := c.clock.AfterFunc(deadline.Sub(c.now()), func() { close(due) })
	defer t.Stop()
	select {
	case <-changed:
	case <-woke:
	case <-due:
	}
}

// fetchAnswer adds partitions to a ShareFetch response on demand.
type fetchAnswer struct {
	resp  *kmsg.ShareFetchResponse
	where map[topicIDPartition][2]int
}

func newFetchAnswer(resp *kmsg.ShareFetchResponse) *fetchAnswer {
	return &fetchAnswer{resp: resp, where: map[topicIDPartition][2]int{}}
}

func (a *fetchAnswer) partition(id [16]byte, partition int32) *kmsg.ShareFetchResponseTopicPartition {
	key := topicIDPartition{id, partition}
	if w, ok := a.where[key]; ok {
		return &a.resp.Topics[w[0]].Partitions[w[1]]
	}
	ti := -1
	for i, t := range a.resp.Topics {
		if t.TopicID == id {
			ti = i
		}
	}
	if ti < 0 {
		t := kmsg.NewShareFetchResponseTopic()
		t.TopicID = id
		a.resp.Topics = append(a.resp.Topics, t)
		ti = len(a.resp.Topics) - 1
	}
	p := kmsg.NewShareFetchResponseTopicPartition()
	p.Partition = partition
	p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = -1, -1
	// Empty, not null, as Kafka sends it: librdkafka cannot parse a null
	// record set (an answer that only carries acknowledgement results).
	p.Records = []byte{}
	a.resp.Topics[ti].Partitions = append(a.resp.Topics[ti].Partitions, p)
	a.where[key] = [2]int{ti, len(a.resp.Topics[ti].Partitions) - 1}
	return &a.resp.Topics[ti].Partitions[len(a.resp.Topics[ti].Partitions)-1]
}

// Acknowledge handles ShareAcknowledge: acknowledgements within the share
// session, which a fetch must have opened.
func (c *Coordinator) Acknowledge(conn any, req *kmsg.ShareAcknowledgeRequest) *kmsg.ShareAcknowledgeResponse {
	resp := req.ResponseKind().(*kmsg.ShareAcknowledgeResponse) // no lock time in an error answer, as Kafka
	fail := func(e *kerr.Error, msg string) *kmsg.ShareAcknowledgeResponse {
		resp.ErrorCode, resp.ErrorMessage = e.Code, kmsg.StringPtr(msg)
		return resp
	}
	if req.GroupID == nil || req.MemberID == nil {
		return fail(kerr.InvalidRequest, "ShareAcknowledge needs a group id and a member id")
	}
	if req.ShareSessionEpoch == 0 {
		return fail(kerr.InvalidShareSessionEpoch, "acknowledgements need an open share session (epoch 0 opens one with ShareFetch)")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g, s, e, msg := c.session(*req.GroupID, *req.MemberID, req.ShareSessionEpoch)
	if e != nil {
		return fail(e, msg)
	}
	resp.AcquisitionLockTimeoutMillis = int32(c.groupCfg(g.name).LockDuration.Milliseconds())
	s.conn = conn
	for _, t := range req.Topics {
		rt := kmsg.NewShareAcknowledgeResponseTopic()
		rt.TopicID = t.TopicID
		for _, p := range t.Partitions {
			batches := make([]ackBatch, len(p.AcknowledgementBatches))
			for i, b := range p.AcknowledgementBatches {
				batches[i] = ackBatch{b.FirstOffset, b.LastOffset, b.AcknowledgeTypes}
			}
			rp := kmsg.NewShareAcknowledgeResponseTopicPartition()
			rp.Partition = p.Partition
			rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = -1, -1
			if e := c.acknowledge(g, *req.MemberID, t.TopicID, p.Partition, batches); e != nil {
				rp.ErrorCode = e.Code
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	c.save(g)
	if req.ShareSessionEpoch == -1 {
		c.closeSession(g, *req.MemberID)
	}
	return resp
}
