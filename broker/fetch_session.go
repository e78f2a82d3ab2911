package broker

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/metrics"
)

// Incremental fetch sessions (KIP-227), as Kafka keeps them. A consumer's
// full fetch (session epoch 0) makes a session of the partitions it asks
// for; its later fetches name the session and its next epoch, and carry
// only the partitions whose fetch position changed (and those to forget).
// The broker reads every partition of the session, and answers with only
// those that have records, an error, or a high watermark or log start the
// client has not been told. A consumer of a thousand quiet partitions then
// sends and receives a few bytes a poll instead of a thousand entries.
//
// The sessions are in memory, as in Kafka: after a restart a consumer's
// incremental fetch is FETCH_SESSION_ID_NOT_FOUND and it starts over with
// a full one.

// sessionEvictionAge is Kafka's min.incremental.fetch.session.eviction.ms:
// a session unused this long may give its slot to any new one, and one
// made this long ago to a larger new one.
const sessionEvictionAge = 120 * time.Second

// maxCachedPartitions bounds the partitions all sessions hold together
// (about 150 bytes each): a session holds what its client asks for, known
// partitions or not, and a hostile client could otherwise fill every slot
// with a request's worth (half a million) of made-up ones. A full fetch
// past it gets no session; an incremental one ends its session.
const maxCachedPartitions = 1 << 20

// fetchSessions is the broker's cache of sessions,
// max.incremental.fetch.session.cache.slots of them at most.
type fetchSessions struct {
	mu     sync.Mutex // guards byID; taken before a session's own
	slots  int
	byID   map[int32]*fetchSession
	cached atomic.Int64 // partitions held by the sessions not retired
	most   int64        // maxCachedPartitions (smaller in tests)

	made, incrementals atomic.Int64 // sessions made, incremental fetches answered: for the metrics
}

func newFetchSessions(slots int) *fetchSessions {
	return &fetchSessions{slots: slots, byID: map[int32]*fetchSession{}, most: maxCachedPartitions}
}

// report is the sessions kept, the partitions they hold, the sessions made
// and the incremental fetches answered, for the metrics.
func (s *fetchSessions) report() metrics.FetchSessions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return metrics.FetchSessions{Sessions: int64(len(s.byID)), Partitions: s.cached.Load(), Made: s.made.Load(), Incremental: s.incrementals.Load()}
}

// fetchSession is one consumer's session.
type fetchSession struct {
	id        int32
	byTopicID bool // made by a fetch of v13 or later, which names topics by id
	created   time.Time

	mu       sync.Mutex
	retired  bool  // out of the cache (or about to be): fetches of it are refused
	epoch    int32 // what the next incremental fetch must carry
	parts    []*sessionPart
	index    map[sessionKey]*sessionPart
	lastUsed time.Time
}

// sessionKey names a partition: by topic id from fetch v13, else by name.
type sessionKey struct {
	topicID   [16]byte
	topic     string
	partition int32
}

// sessionPart is a partition of a session: where the client fetches from,
// and what it was last told of the partition.
type sessionPart struct {
	key         sessionKey
	name        string // the topic's name, once known: a v13+ key has only its id
	fetchOffset int64
	maxBytes    int32
	leaderEpoch int32
	// The high watermark and log start offset last answered; the
	// partition is answered again when either changes. -1 after an error,
	// so that it is answered again once the error is gone.
	highWatermark int64
	logStart      int64
	served        bool // returned records in the answer being made
}

// nextEpoch is the epoch after e, as Kafka counts: 1 after MaxInt32.
func nextEpoch(e int32) int32 {
	if e == math.MaxInt32 {
		return 1
	}
	return e + 1
}

// fetchContext is what a fetch request means for sessions.
type fetchContext struct {
	errorCode int16         // the request is refused with this
	full      bool          // a full fetch asking for a session
	session   *fetchSession // an incremental fetch of this session
	epoch     int32         // the session epoch the request carried
}

// context decides a fetch request's session, as Kafka's FetchManager: epoch
// 0 and -1 are full fetches (closing the session they name, if any), 0
// asking for a new session; any other epoch is an incremental fetch of the
// session named, which is updated with the request's partitions now, in
// the connection's reader, so requests apply in the order sent.
func (s *fetchSessions) context(req *kmsg.FetchRequest) fetchContext {
	if req.Version < 7 {
		return fetchContext{}
	}
	if req.SessionEpoch == 0 || req.SessionEpoch == -1 {
		if req.SessionID != 0 {
			s.mu.Lock()
			if fs := s.byID[req.SessionID]; fs != nil {
				fs.mu.Lock()
				s.retire(fs)
				fs.mu.Unlock()
				delete(s.byID, fs.id)
			}
			s.mu.Unlock()
		}
		return fetchContext{full: req.SessionEpoch == 0}
	}
	s.mu.Lock()
	fs := s.byID[req.SessionID]
	s.mu.Unlock()
	if fs == nil {
		return fetchContext{errorCode: kerr.FetchSessionIDNotFound.Code}
	}
	fs.mu.Lock()
	fc, ended := s.incremental(fs, req)
	fs.mu.Unlock()
	if ended {
		s.forget(fs)
	}
	return fc
}

// incremental checks an incremental fetch against its session and applies
// it; fs.mu is held. ended says the fetch retired the session.
func (s *fetchSessions) incremental(fs *fetchSession, req *kmsg.FetchRequest) (fc fetchContext, ended bool) {
	switch {
	case fs.retired:
		return fetchContext{errorCode: kerr.FetchSessionIDNotFound.Code}, false
	case fs.epoch != req.SessionEpoch:
		return fetchContext{errorCode: kerr.InvalidFetchSessionEpoch.Code}, false
	case fs.byTopicID != (req.Version >= 13):
		return fetchContext{errorCode: kerr.FetchSessionTopicIDError.Code}, false
	}
	before := len(fs.parts)
	fs.update(req)
	grown := int64(len(fs.parts) - before)
	switch {
	case s.cached.Add(grown) > s.most && grown > 0:
		// Growing past what the cache may hold ends the session, and
		// the client starts over with a full fetch.
		s.retire(fs)
		return fetchContext{errorCode: kerr.FetchSessionIDNotFound.Code}, true
	case len(fs.parts) == 0: // everything forgotten ends it too: a fetch without a session
		s.retire(fs)
		return fetchContext{}, true
	}
	fs.lastUsed = time.Now()
	fs.epoch = nextEpoch(fs.epoch)
	s.incrementals.Add(1)
	return fetchContext{session: fs, epoch: req.SessionEpoch}, false
}

// retire takes a session out of use, so that no fetch of it gets through,
// and its partitions out of the count; fs.mu is held. The session then
// leaves the map (forget, or the caller holding s.mu).
func (s *fetchSessions) retire(fs *fetchSession) {
	if !fs.retired {
		fs.retired = true
		s.cached.Add(-int64(len(fs.parts)))
	}
}

// forget deletes a retired session from the map.
func (s *fetchSessions) forget(fs *fetchSession) {
	s.mu.Lock()
	if s.byID[fs.id] == fs {
		delete(s.byID, fs.id)
	}
	s.mu.Unlock()
}

// update applies an incremental request: its partitions are added or take
// their new fetch positions, its forgotten topics' partitions leave.
func (fs *fetchSession) update(req *kmsg.FetchRequest) {
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			k := keyOf(req.Version, rt.Topic, rt.TopicID, rp.Partition)
			p := fs.index[k]
			if p == nil {
				p = &sessionPart{key: k, highWatermark: -1, logStart: -1}
				fs.index[k] = p
				fs.parts = append(fs.parts, p)
			}
			p.fetchOffset, p.maxBytes, p.leaderEpoch = rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch
		}
	}
	var forgotten map[*sessionPart]bool
	for _, ft := range req.ForgottenTopics {
		for _, n := range ft.Partitions {
			k := keyOf(req.Version, ft.Topic, ft.TopicID, n)
			if p := fs.index[k]; p != nil {
				if forgotten == nil {
					forgotten = map[*sessionPart]bool{}
				}
				forgotten[p] = true
				delete(fs.index, k)
			}
		}
	}
	if len(forgotten) > 0 {
		kept := fs.parts[:0]
		for _, p := range fs.parts {
			if !forgotten[p] {
				kept = append(kept, p)
			}
		}
		clear(fs.parts[len(kept):])
		fs.parts = kept
	}
}

func keyOf(version int16, topic string, id [16]byte, partition int32) sessionKey {
	if version >= 13 {
		return sessionKey{topicID: id, partition: partition}
	}
	return sessionKey{topic: topic, partition: partition}
}

// requestTopics lists the session's partitions as the topics of a fetch
// request, in the session's order, a topic's neighbouring partitions
// together; parts are the same partitions in the same order.
func (fs *fetchSession) requestTopics() (topics []kmsg.FetchRequestTopic, parts []*sessionPart) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, p := range fs.parts {
		if n := len(topics); n == 0 || topics[n-1].TopicID != p.key.topicID || !fs.byTopicID && topics[n-1].Topic != p.key.topic {
			t := kmsg.NewFetchRequestTopic()
			t.Topic, t.TopicID = p.key.topic, p.key.topicID
			if fs.byTopicID {
				t.Topic = p.name // not sent: it lets the plan tell a deleted topic from an unknown id
			}
			topics = append(topics, t)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p.key.partition, p.fetchOffset, p.maxBytes
		rp.CurrentLeaderEpoch, rp.LogStartOffset = p.leaderEpoch, -1
		t := &topics[len(topics)-1]
		t.Partitions = append(t.Partitions, rp)
	}
	return topics, slices.Clone(fs.parts)
}

// create makes a session of a full fetch's partitions (the plan's parts,
// each named once) and what it answers for them, and returns its id; 0
// when no slot (or no room for its partitions) can be had by Kafka's
// eviction rules.
func (s *fetchSessions) create(req *kmsg.FetchRequest, parts []fetchPart) int32 {
	if s.slots <= 0 {
		return 0
	}
	now := time.Now()
	fs := &fetchSession{byTopicID: req.Version >= 13, created: now, epoch: nextEpoch(0),
		index: make(map[sessionKey]*sessionPart, len(parts)), parts: make([]*sessionPart, 0, len(parts)), lastUsed: now}
	for i := range parts {
		p := &parts[i]
		rt := &req.Topics[p.topic]
		sp := &sessionPart{key: keyOf(req.Version, rt.Topic, rt.TopicID, p.partition), name: p.name, fetchOffset: p.offset, maxBytes: int32(p.max), leaderEpoch: p.leaderEpoch}
		sp.told(p)
		fs.index[sp.key] = sp
		fs.parts = append(fs.parts, sp)
	}
	size := int64(len(fs.parts))
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.byID) >= s.slots || s.cached.Load()+size > s.most {
		if !s.evictFor(int(size), now) {
			return 0
		}
	}
	for fs.id == 0 || s.byID[fs.id] != nil {
		fs.id = rand.Int32N(math.MaxInt32) + 1
	}
	s.byID[fs.id] = fs
	s.cached.Add(size)
	s.made.Add(1)
	return fs.id
}

// evictFor frees a slot for a new session of size partitions, by Kafka's
// rules: the least recently used session unused for sessionEvictionAge,
// else the smallest of those made that long ago, if it is smaller. s.mu is
// held.
func (s *fetchSessions) evictFor(size int, now time.Time) bool {
	var stale, smallest *fetchSession
	var staleUsed time.Time
	smallestSize := 0
	for _, fs := range s.byID {
		fs.mu.Lock()
		used, n := fs.lastUsed, len(fs.parts)
		fs.mu.Unlock()
		if now.Sub(used) > sessionEvictionAge && (stale == nil || used.Before(staleUsed)) {
			stale, staleUsed = fs, used
		}
		if now.Sub(fs.created) > sessionEvictionAge && (smallest == nil || n < smallestSize) {
			smallest, smallestSize = fs, n
		}
	}
	victim := stale
	if victim == nil && smallest != nil && smallestSize < size {
		victim = smallest
	}
	if victim == nil {
		return false
	}
	victim.mu.Lock()
	s.retire(victim)
	victim.mu.Unlock()
	delete(s.byID, victim.id)
	return true
}

// learnNames gives the session's partitions added by an id (or whose id
// was unknown) the name the fetch's plan found for it, as Kafka resolves
// a partition's name when it is added: once the topic is deleted, the
// partition is then an unknown topic, not an unknown id.
func (fs *fetchSession) learnNames(parts []fetchPart, session []*sessionPart) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, sp := range session {
		if sp.name == "" {
			sp.name = parts[i].name
		}
	}
}

// told records what an answer tells the client of the partition.
func (sp *sessionPart) told(p *fetchPart) {
	sp.highWatermark, sp.logStart = p.highWatermark, p.logStart
	if p.errorCode != 0 {
		sp.highWatermark = -1
	}
}

// answering names an incremental fetch's session in its answer, and reports
// whether the answer is still the one of the session's epoch: a fetch with
// the next epoch may have overtaken it, and then the answer is
// INVALID_FETCH_SESSION_EPOCH. fc.session.mu is held.
func (fc fetchContext) answering(resp *kmsg.FetchResponse) bool {
	resp.SessionID = fc.session.id
	if fc.session.epoch != nextEpoch(fc.epoch) {
		resp.ErrorCode = kerr.InvalidFetchSessionEpoch.Code
		return false
	}
	return true
}

// sessionAnswer decides which partitions of an incremental fetch's answer
// the client has news of, as Kafka does: records, an error, or a high
// watermark or log start offset it was not told. session is the session's
// partitions, one for each part in the same order. The partitions that
// return records go to the back of the session, so that a fetch's byte
// limits serve every partition in turn. ok is false when the fetch was
// overtaken (see answering).
func sessionAnswer(fc fetchContext, resp *kmsg.FetchResponse, parts []fetchPart, session []*sessionPart) (news []bool, ok bool) {
	fs := fc.session
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if !fc.answering(resp) {
		return nil, false
	}
	news = make([]bool, len(parts))
	served := 0
	for i := range parts {
		p, sp := &parts[i], session[i]
		records := p.errorCode == 0 && p.chunk.Len > 0
		news[i] = records || p.errorCode != 0 || sp.highWatermark != p.highWatermark || sp.logStart != p.logStart
		sp.told(p)
		if records {
			sp.served = true
			served++
		}
	}
	if served > 0 {
		order := make([]*sessionPart, 0, len(fs.parts))
		back := make([]*sessionPart, 0, served)
		for _, sp := range fs.parts {
			if sp.served {
				back = append(back, sp)
				sp.served = false
			} else {
				order = append(order, sp)
			}
		}
		fs.parts = append(order, back...)
	}
	return news, true
}
