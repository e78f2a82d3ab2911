package share

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/clock"
	"github.com/creek-pipeline/creek/internal/storage"
)

// oneTopic is a broker with one topic "t" of one partition, a real log.
type oneTopic struct{ log *storage.Log }

var tID = [16]byte{'t'}

func (o oneTopic) TopicByName(name string) ([16]byte, int32, bool) { return tID, 1, name == "t" }
func (o oneTopic) TopicByID(id [16]byte) (string, int32, bool)     { return "t", 1, id == tID }
func (o oneTopic) Log(topic string, p int32) (*storage.Log, bool) {
	return o.log, topic == "t" && p == 0
}

// memStore keeps share groups in memory.
type memStore struct{ groups map[string]StoredGroup }

func (s *memStore) LoadShareGroups() ([]StoredGroup, error) { return nil, nil }
func (s *memStore) SaveShareGroup(g StoredGroup) error      { s.groups[g.Name] = g; return nil }
func (s *memStore) DeleteShareGroup(name string) error      { delete(s.groups, name); return nil }
func (s *memStore) LoadGroupConfigs() (map[string]map[string]string, error) {
	return map[string]map[string]string{}, nil
}
func (s *memStore) SaveGroupConfig(string, map[string]string) error { return nil }

func newTestShares(t *testing.T, cfg Config) (*Coordinator, *storage.Log, *clock.Fake) {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := storage.Open(t.TempDir(), storage.DefaultConfig(), storage.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg.Clock = clk
	c, err := New(cfg, oneTopic{l}, &memStore{groups: map[string]StoredGroup{}}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, l, clk
}

// produce appends n records to the log, as a producer's batch.
func produce(t *testing.T, l *storage.Log, n int) {
	t.Helper()
	var recs []byte
	for i := 0; i < n; i++ {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte("job")}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	now := time.Now().UnixMilli()
	rb := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: int32(n - 1), FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(n), Records: recs}
	rb.Length = int32(len(rb.AppendTo(nil)) - 12)
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[17:21], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	if _, err := l.Append(raw); err != nil {
		t.Fatal(err)
	}
}

func join(t *testing.T, c *Coordinator, member string, epoch int32) int32 {
	t.Helper()
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.SetVersion(1)
	req.GroupID, req.MemberID, req.MemberEpoch = "q", member, epoch
	if epoch == 0 {
		req.SubscribedTopicNames = []string{"t"}
	}
	resp := c.Heartbeat(Client{ID: member}, req)
	if resp.ErrorCode != 0 {
		t.Fatalf("%s's heartbeat: %v %s", member, kerr.ErrorForCode(resp.ErrorCode), *resp.ErrorMessage)
	}
	return resp.MemberEpoch
}

// fetch sends a ShareFetch in member's session and returns the acquired
// ranges as [first, last, deliveries].
func fetch(t *testing.T, c *Coordinator, member string, sessionEpoch int32) [][3]int64 {
	t.Helper()
	req := kmsg.NewPtrShareFetchRequest()
	req.SetVersion(1)
	req.GroupID, req.MemberID, req.ShareSessionEpoch = kmsg.StringPtr("q"), kmsg.StringPtr(member), sessionEpoch
	req.MaxRecords, req.MaxBytes = 100, 1<<20
	req.Topics = []kmsg.ShareFetchRequestTopic{{TopicID: tID, Partitions: []kmsg.ShareFetchRequestTopicPartition{{Partition: 0}}}}
	resp, finish := c.Fetch(member, req) // the member's name stands for its connection
	if resp.ErrorCode != 0 {
		t.Fatalf("%s's fetch: %v", member, kerr.ErrorForCode(resp.ErrorCode))
	}
	if finish != nil {
		finish() // returns at once: the tests fetch only when records are there
	}
	var out [][3]int64
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			for _, a := range p.AcquiredRecords {
				out = append(out, [3]int64{a.FirstOffset, a.LastOffset, int64(a.DeliveryCount)})
			}
		}
	}
	return out
}

func startOffset(c *Coordinator) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.groups["q"].partitions[topicPartition{"t", 0}].start
}

// Acquisition locks on the fake clock: a lock that runs out gives the
// records to the next member; a record delivered delivery.count.limit
// times is archived; a member that leaves releases what it holds.
func TestShareLocksExpireAndRelease(t *testing.T) {
	c, l, clk := newTestShares(t, Config{SessionTimeout: time.Hour, LockDuration: 30 * time.Second, DeliveryLimit: 2, MaxRecordLocks: 200})
	join(t, c, "A", 0)
	join(t, c, "B", 0) // the partition starts at the log end: records come after
	produce(t, l, 3)
	if got := fetch(t, c, "A", 0); len(got) != 1 || got[0] != [3]int64{0, 2, 1} {
		t.Fatalf("A acquired %v, want offsets 0-2, first delivery", got)
	}
	clk.Advance(29 * time.Second)
	if got := fetch(t, c, "B", 0); len(got) != 0 {
		// B's fetch would wait for records; nothing is free, so it must not get A's.
		t.Fatalf("B acquired %v while A's locks hold", got)
	}
	clk.Advance(time.Second) // A's locks run out
	if got := fetch(t, c, "B", 1); len(got) != 1 || got[0] != [3]int64{0, 2, 2} {
		t.Fatalf("B acquired %v after A's locks expired, want 0-2 at delivery 2", got)
	}
	clk.Advance(30 * time.Second) // B's run out too: the second delivery was the last
	if s := startOffset(c); s != 3 {
		t.Fatalf("share-partition start %d after the delivery limit, want 3 (all archived)", s)
	}

	produce(t, l, 2)
	if got := fetch(t, c, "A", 1); len(got) != 1 || got[0] != [3]int64{3, 4, 1} {
		t.Fatalf("A acquired %v, want 3-4", got)
	}
	join(t, c, "A", -1) // leaves: its records go back at once
	if got := fetch(t, c, "B", 2); len(got) != 1 || got[0] != [3]int64{3, 4, 2} {
		t.Fatalf("B acquired %v after A left, want 3-4 at delivery 2", got)
	}
}

// A member that stops heartbeating is removed when its session ends, and
// the records it holds go to the others before their locks would expire.
func TestShareSessionTimeout(t *testing.T) {
	c, l, clk := newTestShares(t, Config{SessionTimeout: 45 * time.Second, LockDuration: 10 * time.Minute, DeliveryLimit: 5, MaxRecordLocks: 200})
	join(t, c, "A", 0)
	eb := join(t, c, "B", 0)
	produce(t, l, 1)
	if got := fetch(t, c, "A", 0); len(got) != 1 {
		t.Fatalf("A acquired %v", got)
	}
	for i := 0; i < 3; i++ { // B heartbeats, A does not
		clk.Advance(20 * time.Second)
		eb = join(t, c, "B", eb)
	}
	if got := fetch(t, c, "B", 0); len(got) != 1 || got[0] != [3]int64{0, 0, 2} {
		t.Fatalf("B acquired %v after A's session ended, want offset 0 at delivery 2", got)
	}
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.SetVersion(1)
	req.GroupID, req.MemberID, req.MemberEpoch = "q", "A", 1
	if code := c.Heartbeat(Client{}, req).ErrorCode; code != kerr.UnknownMemberID.Code {
		t.Fatalf("A's heartbeat after its session: %v", kerr.ErrorForCode(code))
	}
}
