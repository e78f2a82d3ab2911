package broker

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
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

// sessionEvictableAfter is how long a session must have been unused before
// a new one may take its slot (Kafka's min.incremental.fetch.session.eviction.ms).
const sessionEvictableAfter = 120 * time.Second

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
	cached atomic.Int64 // partitions held by all sessions
	most   int64        // maxCachedPartitions (smaller in tests)
}

func newFetchSessions(slots int) *fetchSessions {
	return &fetchSessions{slots: slots, byID: map[int32]*fetchSession{}, most: maxCachedPartitions}
}

// count is the sessions kept and the partitions they hold, for the metrics.
func (s *fetchSessions) count() (sessions, partitions int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.byID)), s.cached.Load()
}

// fetchSession is one consumer's session.
type fetchSession struct {
	id        int32
	byTopicID bool // made by a fetch of v13 or later, which names topics by id

	mu       sync.Mutex
	dropped  bool  // no longer in the cache
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
	key            sessionKey
	fetchOffset    int64
	maxBytes       int32
	leaderEpoch    int32
	logStartOffset int64
	// The high watermark and log start offset last answered; the
	// partition is answered again when either changes. -1 after an error,
	// so that it is answered again once the error is gone.
	highWatermark int64
	logStart      int64
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
				s.drop(fs)
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
	switch {
	case fs.dropped:
		fs.mu.Unlock()
		return fetchContext{errorCode: kerr.FetchSessionIDNotFound.Code}
	case fs.epoch != req.SessionEpoch:
		fs.mu.Unlock()
		return fetchContext{errorCode: kerr.InvalidFetchSessionEpoch.Code}
	case fs.byTopicID != (req.Version >= 13):
		fs.mu.Unlock()
		return fetchContext{errorCode: kerr.FetchSessionTopicIDError.Code}
	}
	before := len(fs.parts)
	fs.update(req)
	empty := len(fs.parts) == 0
	if s.cached.Add(int64(len(fs.parts)-before)) > s.most || empty {
		// Everything forgotten ends the session; so does growing past
		// what the cache may hold, and the client starts over with a
		// full fetch.
		fs.mu.Unlock()
		s.mu.Lock()
		s.drop(fs)
		s.mu.Unlock()
		if empty {
			return fetchContext{}
		}
		return fetchContext{errorCode: kerr.FetchSessionIDNotFound.Code}
	}
	defer fs.mu.Unlock()
	fs.lastUsed = time.Now()
	fs.epoch = nextEpoch(fs.epoch)
	return fetchContext{session: fs, epoch: req.SessionEpoch}
}

// drop takes a session out of the cache; s.mu is held.
func (s *fetchSessions) drop(fs *fetchSession) {
	delete(s.byID, fs.id)
	fs.mu.Lock()
	if !fs.dropped {
		fs.dropped = true
		s.cached.Add(-int64(len(fs.parts)))
	}
	fs.mu.Unlock()
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
			p.fetchOffset, p.maxBytes, p.leaderEpoch, p.logStartOffset = rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LogStartOffset
		}
	}
	forget := map[sessionKey]bool{}
	for _, ft := range req.ForgottenTopics {
		for _, n := range ft.Partitions {
			k := keyOf(req.Version, ft.Topic, ft.TopicID, n)
			if fs.index[k] != nil {
				forget[k] = true
				delete(fs.index, k)
			}
		}
	}
	if len(forget) > 0 {
		kept := fs.parts[:0]
		for _, p := range fs.parts {
			if !forget[p.key] {
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
// together (as Kafka answers them).
func (fs *fetchSession) requestTopics() []kmsg.FetchRequestTopic {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var topics []kmsg.FetchRequestTopic
	for _, p := range fs.parts {
		if n := len(topics); n == 0 || topics[n-1].Topic != p.key.topic || topics[n-1].TopicID != p.key.topicID {
			t := kmsg.NewFetchRequestTopic()
			t.Topic, t.TopicID = p.key.topic, p.key.topicID
			topics = append(topics, t)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p.key.partition, p.fetchOffset, p.maxBytes
		rp.CurrentLeaderEpoch, rp.LogStartOffset = p.leaderEpoch, p.logStartOffset
		t := &topics[len(topics)-1]
		t.Partitions = append(t.Partitions, rp)
	}
	return topics
}

// create makes a session of a full fetch's partitions and what it answers
// for them, and returns its id; 0 when every slot is taken by a session
// used in the last two minutes that is at least as large (Kafka's rule).
func (s *fetchSessions) create(req *kmsg.FetchRequest, resp *kmsg.FetchResponse) int32 {
	size := 0
	for _, t := range req.Topics {
		size += len(t.Partitions)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.slots <= 0 || s.cached.Load()+int64(size) > s.most || (len(s.byID) >= s.slots && !s.evictFor(size)) {
		return 0
	}
	now := time.Now()
	fs := &fetchSession{byTopicID: req.Version >= 13, epoch: nextEpoch(0), index: map[sessionKey]*sessionPart{}, lastUsed: now}
	fs.update(req)
	fs.answered(req.Version, resp, nil, false)
	s.cached.Add(int64(len(fs.parts)))
	for fs.id == 0 || s.byID[fs.id] != nil {
		fs.id = rand.Int32N(math.MaxInt32) + 1
	}
	s.byID[fs.id] = fs
	return fs.id
}

// evictFor frees a slot for a new session of size partitions: the least
// recently used session idle for sessionEvictableAfter, else the smallest
// session if it is smaller. s.mu is held.
func (s *fetchSessions) evictFor(size int) bool {
	var stale, smallest *fetchSession
	var staleUsed time.Time
	smallestSize := 0
	for _, fs := range s.byID {
		fs.mu.Lock()
		used, n := fs.lastUsed, len(fs.parts)
		fs.mu.Unlock()
		if time.Since(used) >= sessionEvictableAfter && (stale == nil || used.Before(staleUsed)) {
			stale, staleUsed = fs, used
		}
		if smallest == nil || n < smallestSize {
			smallest, smallestSize = fs, n
		}
	}
	switch {
	case stale != nil:
		s.drop(stale)
	case smallest != nil && smallestSize < size:
		s.drop(smallest)
	default:
		return false
	}
	return true
}

// answered records what a fetch answer tells the client of each partition
// of the session. For an incremental fetch (prune) it also drops from the
// answer the partitions with nothing new, as Kafka does, and moves those
// that return records (hasRecords, by place in the answer) to the back of
// the session, so that a fetch's byte limits serve every partition in
// turn. keep[i][j] says whether resp.Topics[i].Partitions[j] stays.
func (fs *fetchSession) answered(version int16, resp *kmsg.FetchResponse, hasRecords map[[2]int]bool, prune bool) (keep [][]bool) {
	keep = make([][]bool, len(resp.Topics))
	var moved []*sessionPart
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		keep[i] = make([]bool, len(rt.Partitions))
		for j := range rt.Partitions {
			sp := &rt.Partitions[j]
			p := fs.index[keyOf(version, rt.Topic, rt.TopicID, sp.Partition)]
			if p == nil {
				keep[i][j] = true
				continue
			}
			records := hasRecords[[2]int{i, j}]
			must := records || sp.ErrorCode != 0 || p.highWatermark != sp.HighWatermark || p.logStart != sp.LogStartOffset
			p.highWatermark, p.logStart = sp.HighWatermark, sp.LogStartOffset
			if sp.ErrorCode != 0 {
				p.highWatermark = -1
			}
			keep[i][j] = must || !prune
			if prune && records {
				moved = append(moved, p)
			}
		}
	}
	if len(moved) > 0 {
		back := make(map[*sessionPart]bool, len(moved))
		for _, p := range moved {
			back[p] = true
		}
		order := make([]*sessionPart, 0, len(fs.parts))
		for _, p := range fs.parts {
			if !back[p] {
				order = append(order, p)
			}
		}
		fs.parts = append(order, moved...)
	}
	return keep
}
