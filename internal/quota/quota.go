// Package quota keeps Kafka's client quotas (the values that
// DescribeClientQuotas and AlterClientQuotas read and write, per user,
// client id, or both, and per IP address) and measures what clients
// produce and fetch against them, answering how long a client that went
// over its byte rate must wait, as Kafka's client quota manager does.
package quota

import (
	"fmt"
	"math"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Entity types and the quota keys each takes, with whether the value is a
// whole number (Kafka refuses a fractional byte rate).
const (
	TypeUser     = "user"
	TypeClientID = "client-id"
	TypeIP       = "ip"

	ProducerByteRate       = "producer_byte_rate"
	ConsumerByteRate       = "consumer_byte_rate"
	RequestPercentage      = "request_percentage"
	ControllerMutationRate = "controller_mutation_rate"
	ConnectionCreationRate = "connection_creation_rate"
)

var clientKeys = map[string]bool{ProducerByteRate: true, ConsumerByteRate: true, RequestPercentage: false, ControllerMutationRate: false}
var ipKeys = map[string]bool{ConnectionCreationRate: true}

// Component is one part of an entity: a type and a name, or nil for the
// type's default (the quota of every user, or client id, without its own).
type Component struct {
	Type string
	Name *string
}

// Entity is what a quota applies to: a user, a client id, both, or an IP.
type Entity []Component

// key is an entity's canonical form, for the store and lookups:
// "user=alice,client-id=<default>".
func (e Entity) key() string {
	parts := make([]string, len(e))
	for i, c := range e {
		name := "<default>"
		if c.Name != nil {
			name = "=" + *c.Name
		}
		parts[i] = c.Type + name
	}
	return strings.Join(parts, ",")
}

// sorted puts an entity's components in Kafka's order: user, client-id, ip.
func (e Entity) sorted() Entity {
	out := slices.Clone(e)
	order := map[string]int{TypeUser: 0, TypeClientID: 1, TypeIP: 2}
	sort.SliceStable(out, func(i, j int) bool { return order[out[i].Type] < order[out[j].Type] })
	return out
}

// Entry is one entity's quotas.
type Entry struct {
	Entity Entity
	Values map[string]float64
}

// Store keeps entries durably.
type Store interface {
	LoadQuotas() ([]Entry, error)
	SaveQuota(key string, e Entry) error // an entry with no values is deleted
}

// Config sets how rates are measured (Kafka's quota.window.num and
// quota.window.size.seconds).
type Config struct {
	Samples int
	Sample  time.Duration
}

// Manager holds the quotas and the rates measured against them.
type Manager struct {
	store Store
	cfg   Config
	now   func() time.Time

	mu      sync.Mutex
	entries map[string]Entry
	rates   map[rateKey]*rate
}

// New loads the stored quotas.
func New(store Store, cfg Config, now func() time.Time) (*Manager, error) {
	if now == nil {
		now = time.Now
	}
	if cfg.Samples < 2 {
		cfg.Samples = 11
	}
	if cfg.Sample <= 0 {
		cfg.Sample = time.Second
	}
	m := &Manager{store: store, cfg: cfg, now: now, entries: map[string]Entry{}, rates: map[rateKey]*rate{}}
	stored, err := store.LoadQuotas()
	if err != nil {
		return nil, fmt.Errorf("load client quotas: %w", err)
	}
	for _, e := range stored {
		e.Entity = e.Entity.sorted()
		m.entries[e.Entity.key()] = e
	}
	return m, nil
}

// Op is one change of an Alter: set Key to Value, or remove it.
type Op struct {
	Key    string
	Value  float64
	Remove bool
}

// Validate checks an entity and its changes as Kafka does, returning the
// message of Kafka's INVALID_REQUEST answer when they are refused.
func Validate(e Entity, ops []Op) error {
	if len(e) == 0 {
		return fmt.Errorf("the quota entity is empty")
	}
	seen := map[string]bool{}
	for _, c := range e {
		switch c.Type {
		case TypeUser, TypeClientID, TypeIP:
		default:
			return fmt.Errorf("unhandled client quota entity type: %s", c.Type)
		}
		if seen[c.Type] {
			return fmt.Errorf("entity type %s is given twice", c.Type)
		}
		seen[c.Type] = true
	}
	keys := clientKeys
	if seen[TypeIP] {
		if len(e) > 1 {
			return fmt.Errorf("an ip quota cannot be combined with a user or client id")
		}
		if n := e[0].Name; n != nil && net.ParseIP(*n) == nil {
			return fmt.Errorf("%s is not a valid IP or resolvable host", *n)
		}
		keys = ipKeys
	}
	for _, op := range ops {
		whole, ok := keys[op.Key]
		if !ok {
			return fmt.Errorf("invalid configuration key %s", op.Key)
		}
		if op.Remove {
			continue
		}
		if op.Value <= 0 || math.IsNaN(op.Value) || math.IsInf(op.Value, 0) {
			return fmt.Errorf("quota %s must be greater than 0", op.Key)
		}
		if whole && op.Value != math.Trunc(op.Value) {
			return fmt.Errorf("%s cannot be a fractional value", op.Key)
		}
	}
	return nil
}

// Alter applies changes to one entity (after Validate) and stores them.
func (m *Manager) Alter(e Entity, ops []Op) error {
	e = e.sorted()
	key := e.key()
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.entries[key]
	values := map[string]float64{}
	for k, v := range cur.Values {
		values[k] = v
	}
	for _, op := range ops {
		if op.Remove {
			delete(values, op.Key)
		} else {
			values[op.Key] = op.Value
		}
	}
	next := Entry{Entity: e, Values: values}
	if err := m.store.SaveQuota(key, next); err != nil {
		return err
	}
	if len(values) == 0 {
		delete(m.entries, key)
	} else {
		m.entries[key] = next
	}
	return nil
}

// Match is one component filter of a Describe: Kafka's match types exact
// (0, Name), default (1) and any (2, including the default).
type Match struct {
	Type string
	Kind int8
	Name string
}

// Describe lists the entries whose entity satisfies every filter; with
// strict, entries with other component types are left out too.
func (m *Manager) Describe(filters []Match, strict bool) ([]Entry, error) {
	for _, f := range filters {
		switch f.Type {
		case TypeUser, TypeClientID, TypeIP:
		default:
			return nil, fmt.Errorf("unsupported entity type %s", f.Type)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Entry
	for _, e := range m.entries {
		if matches(e.Entity, filters, strict) {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Entity.key() < out[j].Entity.key() })
	return out, nil
}

func matches(e Entity, filters []Match, strict bool) bool {
	if strict && len(e) != len(filters) {
		return false
	}
	for _, f := range filters {
		var c *Component
		for i := range e {
			if e[i].Type == f.Type {
				c = &e[i]
			}
		}
		if c == nil {
			return false
		}
		switch f.Kind {
		case 0:
			if c.Name == nil || *c.Name != f.Name {
				return false
			}
		case 1:
			if c.Name != nil {
				return false
			}
		}
	}
	return true
}

// Client names who is producing or fetching.
type Client struct {
	User string // the authenticated principal's name; "ANONYMOUS" without authentication
	ID   string // the client id
}

// rateKey names the rate a client is measured by: the user and client id
// of the quota that applies, with a default filled in by the client's own
// value (so a default quota limits each client separately).
type rateKey struct {
	key       string // producer_byte_rate or consumer_byte_rate
	user, id  string
	userSet   bool
	clientSet bool
}

// find returns the quota that applies to a client for key, most specific
// first, as Kafka resolves them.
func (m *Manager) find(key string, cl Client) (float64, rateKey, bool) {
	u, c := cl.User, cl.ID
	candidates := []struct {
		e        Entity
		user, id bool
	}{
		{Entity{{TypeUser, &u}, {TypeClientID, &c}}, true, true},
		{Entity{{TypeUser, &u}, {TypeClientID, nil}}, true, true},
		{Entity{{TypeUser, &u}}, true, false},
		{Entity{{TypeUser, nil}, {TypeClientID, &c}}, true, true},
		{Entity{{TypeUser, nil}, {TypeClientID, nil}}, true, true},
		{Entity{{TypeUser, nil}}, true, false},
		{Entity{{TypeClientID, &c}}, false, true},
		{Entity{{TypeClientID, nil}}, false, true},
	}
	for _, cand := range candidates {
		e, ok := m.entries[cand.e.key()]
		if !ok {
			continue
		}
		if v, ok := e.Values[key]; ok {
			rk := rateKey{key: key, userSet: cand.user, clientSet: cand.id}
			if cand.user {
				rk.user = u
			}
			if cand.id {
				rk.id = c
			}
			return v, rk, true
		}
	}
	return 0, rateKey{}, false
}

// Throttle records bytes produced (key ProducerByteRate) or fetched
// (ConsumerByteRate) by a client and returns how long the client must
// wait because its quota is exceeded (0 when it is not, or it has none).
// Kafka's formula: the rate over the window above the quota, as a part of
// the quota, times the window, at most the whole window.
func (m *Manager) Throttle(key string, cl Client, bytes int64) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.entries) == 0 {
		return 0
	}
	bound, rk, ok := m.find(key, cl)
	if !ok {
		return 0
	}
	r := m.rates[rk]
	if r == nil {
		r = newRate(m.cfg)
		m.rates[rk] = r
	}
	now := m.now()
	r.record(now, float64(bytes))
	rateNow, window := r.measure(now)
	if rateNow <= bound {
		return 0
	}
	throttle := time.Duration((rateNow - bound) / bound * float64(window))
	return min(throttle, time.Duration(m.cfg.Samples)*m.cfg.Sample)
}

// Unrecord takes back bytes a Throttle recorded, for an answer that was not
// sent after all (a throttled fetch is answered without records, as in
// Kafka).
func (m *Manager) Unrecord(key string, cl Client, bytes int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, rk, ok := m.find(key, cl); ok {
		if r := m.rates[rk]; r != nil {
			r.record(m.now(), -float64(bytes))
		}
	}
}

// rate is a sliding window of samples, as Kafka's Rate metric.
type rate struct {
	cfg     Config
	samples []sample
}

type sample struct {
	start time.Time
	value float64
}

func newRate(cfg Config) *rate { return &rate{cfg: cfg} }

func (r *rate) record(now time.Time, v float64) {
	if n := len(r.samples); n == 0 || now.Sub(r.samples[n-1].start) >= r.cfg.Sample {
		r.samples = append(r.samples, sample{start: now})
	}
	r.samples[len(r.samples)-1].value += v
	// Forget samples older than the window.
	cutoff := now.Add(-time.Duration(r.cfg.Samples) * r.cfg.Sample)
	i := 0
	for i < len(r.samples)-1 && !r.samples[i].start.After(cutoff) {
		i++
	}
	r.samples = r.samples[i:]
}

// measure returns the rate per second and the window it was measured over,
// which is at least all samples but the current one long, so that a client's
// first bytes are not measured over a few milliseconds.
func (r *rate) measure(now time.Time) (float64, time.Duration) {
	var total float64
	for _, s := range r.samples {
		total += s.value
	}
	window := now.Sub(r.samples[0].start)
	if floor := time.Duration(r.cfg.Samples-1) * r.cfg.Sample; window < floor {
		window = floor
	}
	return total / window.Seconds(), window
}
