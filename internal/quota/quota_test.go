package quota

import (
	"strings"
	"testing"
	"time"
)

type memStore struct{ saved map[string]Entry }

func (s *memStore) LoadQuotas() ([]Entry, error) {
	var out []Entry
	for _, e := range s.saved {
		out = append(out, e)
	}
	return out, nil
}

func (s *memStore) SaveQuota(key string, e Entry) error {
	if len(e.Values) == 0 {
		delete(s.saved, key)
	} else {
		s.saved[key] = e
	}
	return nil
}

func str(s string) *string { return &s }

func TestValidateAsKafka(t *testing.T) {
	client := Entity{{TypeClientID, str("c")}}
	cases := []struct {
		e    Entity
		op   Op
		want string // "" for valid
	}{
		{client, Op{Key: ProducerByteRate, Value: 1024}, ""},
		{client, Op{Key: RequestPercentage, Value: 12.5}, ""},
		{client, Op{Key: "no_such_rate", Value: 5}, "invalid configuration key no_such_rate"},
		{client, Op{Key: ProducerByteRate, Value: -5}, "must be greater than 0"},
		{client, Op{Key: ProducerByteRate, Value: 0.5}, "cannot be a fractional value"},
		{client, Op{Key: ConnectionCreationRate, Value: 10}, "invalid configuration key connection_creation_rate"},
		{Entity{{TypeIP, str("10.0.0.1")}}, Op{Key: ConnectionCreationRate, Value: 10}, ""},
		{Entity{{TypeIP, str("not an ip")}}, Op{Key: ConnectionCreationRate, Value: 10}, "not a valid IP"},
		{Entity{{"nosuch", str("x")}}, Op{Key: ProducerByteRate, Value: 1}, "unhandled client quota entity type: nosuch"},
		{Entity{{TypeUser, str("alice")}, {TypeClientID, nil}}, Op{Key: ProducerByteRate, Value: 1}, ""},
		{client, Op{Key: ProducerByteRate, Remove: true}, ""},
	}
	for _, c := range cases {
		err := Validate(c.e, []Op{c.op})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v %+v: %v", c.e.key(), c.op, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v %+v: got %v, want %q", c.e.key(), c.op, err, c.want)
		}
	}
}

// TestThrottleAsKafka: a client over its byte rate is told to wait for
// the time that brings the window's rate back to the quota; one under it,
// or without a quota, is not; the most specific quota applies, and a
// default quota limits each client on its own.
func TestThrottleAsKafka(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	m, err := New(&memStore{saved: map[string]Entry{}}, Config{Samples: 11, Sample: time.Second}, clock)
	if err != nil {
		t.Fatal(err)
	}
	alice := Client{User: "ANONYMOUS", ID: "alice"}
	if d := m.Throttle(ProducerByteRate, alice, 1<<30); d != 0 {
		t.Fatalf("throttled %s without a quota", d)
	}
	if err := m.Alter(Entity{{TypeClientID, nil}}, []Op{{Key: ProducerByteRate, Value: 1000}}); err != nil {
		t.Fatal(err)
	}
	// 10,000 bytes at once: the rate over the (at least 10 s) window is
	// 1,000 B/s, at the quota.
	if d := m.Throttle(ProducerByteRate, alice, 10000); d != 0 {
		t.Fatalf("throttled %s at the quota", d)
	}
	// 10,000 more: 2,000 B/s, twice the quota: wait (2000-1000)/1000 × 10 s.
	if d := m.Throttle(ProducerByteRate, alice, 10000); d != 10*time.Second {
		t.Fatalf("throttle %s, want 10s", d)
	}
	// Another client has its own share of the default quota.
	if d := m.Throttle(ProducerByteRate, Client{User: "ANONYMOUS", ID: "bob"}, 5000); d != 0 {
		t.Fatalf("bob throttled %s for alice's bytes", d)
	}
	// A quota of its own, larger, applies to alice instead of the default.
	if err := m.Alter(Entity{{TypeClientID, str("alice")}}, []Op{{Key: ProducerByteRate, Value: 1e6}}); err != nil {
		t.Fatal(err)
	}
	if d := m.Throttle(ProducerByteRate, alice, 1); d != 0 {
		t.Fatalf("throttled %s under alice's own quota", d)
	}
	// Fetch quotas are separate.
	if d := m.Throttle(ConsumerByteRate, alice, 1<<30); d != 0 {
		t.Fatalf("fetch throttled %s with only produce quotas", d)
	}
	// Time passes: the old bytes leave the window.
	m.Alter(Entity{{TypeClientID, str("alice")}}, []Op{{Key: ProducerByteRate, Remove: true}})
	now = now.Add(30 * time.Second)
	if d := m.Throttle(ProducerByteRate, alice, 100); d != 0 {
		t.Fatalf("throttled %s long after the burst", d)
	}
	// A large throttle is capped at the window.
	if d := m.Throttle(ProducerByteRate, alice, 1e9); d != 11*time.Second {
		t.Fatalf("throttle %s, want the 11 s window", d)
	}
}

func TestDescribeAndStore(t *testing.T) {
	st := &memStore{saved: map[string]Entry{}}
	m, _ := New(st, Config{}, nil)
	m.Alter(Entity{{TypeClientID, str("a")}}, []Op{{Key: ProducerByteRate, Value: 1}, {Key: ConsumerByteRate, Value: 2}})
	m.Alter(Entity{{TypeClientID, nil}}, []Op{{Key: ProducerByteRate, Value: 3}})
	m.Alter(Entity{{TypeClientID, str("u")}, {TypeUser, str("x")}}, []Op{{Key: ProducerByteRate, Value: 4}})
	got, err := m.Describe([]Match{{Type: TypeClientID, Kind: 2}}, true)
	if err != nil || len(got) != 2 {
		t.Fatalf("any client id, strict: %v %v", got, err)
	}
	got, _ = m.Describe([]Match{{Type: TypeClientID, Kind: 0, Name: "u"}}, false)
	if len(got) != 1 || got[0].Entity[0].Type != TypeUser {
		t.Fatalf("client id u, not strict: %+v (components are kept in Kafka's order, user first)", got)
	}
	if _, err := m.Describe([]Match{{Type: "nosuch", Kind: 2}}, false); err == nil {
		t.Fatal("an unknown entity type was described")
	}
	m.Alter(Entity{{TypeClientID, nil}}, []Op{{Key: ProducerByteRate, Remove: true}})
	m2, _ := New(st, Config{}, nil)
	if got, _ := m2.Describe(nil, false); len(got) != 2 {
		t.Fatalf("after a reload: %+v", got)
	}
}
