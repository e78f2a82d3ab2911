// Package clusterview keeps a recent picture of a Kafka cluster: brokers,
// topics with their partitions' offsets and sizes, and consumer groups of
// every kind with their lag, refreshed on an interval through the Kafka
// protocol alone (franz-go's kadm), so it describes creek's broker, Apache
// Kafka, MSK or Redpanda alike. The dashboard's pages and the
// kafka_exporter-compatible metrics both read its snapshot, so neither a
// page view nor a scrape sends requests to the cluster.
package clusterview

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/creek-pipeline/creek/internal/admin"
)

// Snapshot is the cluster as one refresh saw it. When a refresh fails, the
// snapshot keeps the last figures that were read, with Err saying why they
// are old.
type Snapshot struct {
	Taken     time.Time     `json:"taken"`   // when the last refresh ended
	LastOK    time.Time     `json:"last_ok"` // when the figures below were read
	Took      time.Duration `json:"took_ns"` // how long reading them took
	Err       string        `json:"error"`   // why the last refresh failed; empty when it worked
	ClusterID string        `json:"cluster_id"`
	Brokers   []Broker      `json:"brokers"`
	Topics    []Topic       `json:"topics"` // sorted by name
	Groups    []Group       `json:"groups"` // sorted by name
}

// Down reports whether the last refresh failed.
func (s *Snapshot) Down() bool { return s.Err != "" }

// Broker is one broker of the cluster.
type Broker struct {
	ID         int32  `json:"id"`
	Host       string `json:"host"`
	Port       int32  `json:"port"`
	Controller bool   `json:"controller"`
}

// Topic is a topic with its partitions and how fast it moves.
type Topic struct {
	Name       string      `json:"name"`
	ID         string      `json:"id"`
	Internal   bool        `json:"internal"`
	Partitions []Partition `json:"partitions"`
	Records    int64       `json:"records"`     // between the start and end offsets
	Size       int64       `json:"size"`        // bytes on disk, -1 when the cluster does not say
	InRate     float64     `json:"in_per_sec"`  // records/s produced, over the last 15 s
	OutRate    float64     `json:"out_per_sec"` // records/s committed by the groups reading it
	Groups     []string    `json:"groups"`      // groups with offsets or members on it
	Err        string      `json:"error,omitempty"`
}

// Partition is one partition's replicas and offsets.
type Partition struct {
	Partition int32   `json:"partition"`
	Leader    int32   `json:"leader"`
	Replicas  []int32 `json:"replicas"`
	ISR       []int32 `json:"isr"`
	Start     int64   `json:"start"` // log start offset: the oldest record left
	End       int64   `json:"end"`   // high watermark: the next record's offset
	Size      int64   `json:"size"`  // bytes on disk, -1 when unknown
}

// Group is a described group of any kind, how fast it commits, and its
// lag over the last hour.
type Group struct {
	admin.GroupDescription
	Rate       float64  `json:"commits_per_sec"` // records/s its committed offsets advanced
	LagHistory []Sample `json:"lag_history"`
	Err        string   `json:"error,omitempty"`
}

// Sample is one point of a history.
type Sample struct {
	At    int64 `json:"t"` // Unix milliseconds
	Value int64 `json:"v"`
}

// Options configure a View.
type Options struct {
	// Interval between refreshes; 2 s by default. A refresh that takes
	// long (a large cluster) stretches it to five times its duration, so
	// the view never keeps the cluster busy.
	Interval time.Duration
	// Timeout bounds one refresh; 15 s by default.
	Timeout time.Duration
	Logger  *slog.Logger
}

// History keeps an hour of lag per group, one sample per historyStep.
const (
	historyLength = time.Hour
	historyStep   = 10 * time.Second
)

// View refreshes a Snapshot in the background.
type View struct {
	adm  *kadm.Client
	opts Options
	snap atomic.Pointer[Snapshot]

	mu       sync.Mutex
	history  map[string][]Sample // group → lag samples, oldest first
	progress map[string][]Sample // topic end offsets and group commits, summed, over rateWindow
	kick     chan struct{}
}

// rateWindow is how far back rates look: consumers commit every few
// seconds, so a rate over one refresh would jump between 0 and a burst.
const rateWindow = 15 * time.Second

// rate adds a sample of an ever-growing total under key and returns its
// rate per second over rateWindow (0 until two samples a second apart).
// v.mu is held.
func (v *View) rate(key string, now time.Time, total int64) float64 {
	h := append(v.progress[key], Sample{At: now.UnixMilli(), Value: total})
	for len(h) > 2 && now.UnixMilli()-h[1].At >= rateWindow.Milliseconds() {
		h = h[1:]
	}
	v.progress[key] = h
	first, last := h[0], h[len(h)-1]
	if last.At-first.At < 1000 || last.Value < first.Value {
		return 0
	}
	return float64(last.Value-first.Value) / (float64(last.At-first.At) / 1000)
}

// New makes a view of the cluster adm talks to; Run refreshes it.
func New(adm *kadm.Client, opts Options) *View {
	if opts.Interval <= 0 {
		opts.Interval = 2 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 15 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	v := &View{adm: adm, opts: opts, history: map[string][]Sample{}, progress: map[string][]Sample{}, kick: make(chan struct{}, 1)}
	v.snap.Store(&Snapshot{Err: "not read yet", Brokers: []Broker{}, Topics: []Topic{}, Groups: []Group{}})
	return v
}

// Snapshot is the latest picture; never nil.
func (v *View) Snapshot() *Snapshot { return v.snap.Load() }

// Refresh asks for a refresh soon (after a change made through the dashboard).
func (v *View) Refresh() {
	select {
	case v.kick <- struct{}{}:
	default:
	}
}

// Run refreshes the snapshot until ctx ends.
func (v *View) Run(ctx context.Context) {
	wasDown := false
	for {
		s := v.RefreshNow(ctx)
		if s.Down() != wasDown && ctx.Err() == nil {
			if s.Down() {
				v.opts.Logger.Warn("cannot read the cluster; the dashboard shows the last figures it read", "err", s.Err)
			} else if !s.LastOK.IsZero() {
				v.opts.Logger.Info("cluster reachable again")
			}
			wasDown = s.Down()
		}
		wait := max(v.opts.Interval, 5*s.Took)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-v.kick:
		}
	}
}

// RefreshNow reads the cluster once and returns the new snapshot.
func (v *View) RefreshNow(ctx context.Context) *Snapshot {
	ctx, cancel := context.WithTimeout(ctx, v.opts.Timeout)
	defer cancel()
	began := time.Now()
	prev := v.snap.Load()
	next, err := v.read(ctx)
	now := time.Now()
	if err != nil {
		stale := *prev
		stale.Taken, stale.Err = now, err.Error()
		v.snap.Store(&stale)
		return &stale
	}
	next.Taken, next.LastOK, next.Took = now, now, now.Sub(began)
	v.snap.Store(next)
	return next
}

func (v *View) read(ctx context.Context) (*Snapshot, error) {
	md, err := v.adm.Metadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	s := &Snapshot{ClusterID: md.Cluster, Brokers: []Broker{}, Topics: []Topic{}, Groups: []Group{}}
	for _, b := range md.Brokers {
		s.Brokers = append(s.Brokers, Broker{ID: b.NodeID, Host: b.Host, Port: b.Port, Controller: b.NodeID == md.Controller})
	}
	sort.Slice(s.Brokers, func(i, j int) bool { return s.Brokers[i].ID < s.Brokers[j].ID })
	starts, err := v.adm.ListStartOffsets(ctx)
	if err != nil {
		return nil, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := v.adm.ListEndOffsets(ctx)
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	// Sizes are optional: a cluster may refuse DescribeLogDirs (ACLs).
	dirs, _ := v.adm.DescribeAllLogDirs(ctx, nil)
	sizes := map[string]map[int32]int64{}
	for _, broker := range dirs {
		broker.EachPartition(func(d kadm.DescribedLogDirPartition) {
			if sizes[d.Topic] == nil {
				sizes[d.Topic] = map[int32]int64{}
			}
			sizes[d.Topic][d.Partition] += d.Size
		})
	}
	now := time.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	seen := map[string]bool{}
	for _, td := range md.Topics.Sorted() {
		t := Topic{Name: td.Topic, ID: td.ID.String(), Internal: td.IsInternal, Size: -1, Partitions: []Partition{}, Groups: []string{}}
		if td.Err != nil {
			t.Err = td.Err.Error()
		}
		var sizeKnown bool
		var size, endSum int64
		for _, pd := range td.Partitions.Sorted() {
			p := Partition{Partition: pd.Partition, Leader: pd.Leader, Replicas: nonNil(pd.Replicas), ISR: nonNil(pd.ISR), Size: -1}
			if o, ok := starts.Lookup(td.Topic, pd.Partition); ok && o.Err == nil {
				p.Start = o.Offset
			}
			if o, ok := ends.Lookup(td.Topic, pd.Partition); ok && o.Err == nil {
				p.End = o.Offset
			}
			if sz, ok := sizes[td.Topic][pd.Partition]; ok {
				p.Size, sizeKnown = sz, true
				size += sz
			}
			t.Records += max(p.End-p.Start, 0)
			endSum += p.End
			t.Partitions = append(t.Partitions, p)
		}
		if sizeKnown {
			t.Size = size
		}
		key := "topic\x00" + t.Name
		seen[key] = true
		t.InRate = v.rate(key, now, endSum)
		s.Topics = append(s.Topics, t)
	}
	if err := v.readGroups(ctx, s, now, seen); err != nil {
		return nil, err
	}
	for key := range v.progress {
		if !seen[key] {
			delete(v.progress, key)
		}
	}
	return s, nil
}

// readGroups describes every group, works out how fast each commits and
// adds its lag to the history.
// v.mu is held; seen collects the keys of v.progress still in use.
func (v *View) readGroups(ctx context.Context, s *Snapshot, now time.Time, seen map[string]bool) error {
	listed, _, err := admin.ListGroupTypes(ctx, v.adm)
	if err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	names := listed.Groups()
	sort.Strings(names)
	descs := map[string]admin.GroupDescription{}
	errs := map[string]string{}
	if len(names) > 0 {
		all, err := admin.DescribeGroups(ctx, v.adm, names...)
		if err == nil {
			for _, d := range all {
				descs[d.Group] = d
			}
		} else {
			if ctx.Err() != nil {
				return err
			}
			for _, name := range names { // one group that fails does not hide the others
				one, err := admin.DescribeGroups(ctx, v.adm, name)
				if err != nil {
					errs[name] = err.Error()
					continue
				}
				descs[name] = one[0]
			}
		}
	}
	topicIndex := map[string]*Topic{}
	for i := range s.Topics {
		topicIndex[s.Topics[i].Name] = &s.Topics[i]
	}
	groupsSeen := map[string]bool{}
	for _, name := range names {
		groupsSeen[name] = true
		d, ok := descs[name]
		if !ok {
			d = admin.GroupDescription{Group: name, State: listed[name].State, Members: []admin.MemberRow{}, Partitions: []admin.PartitionLag{}}
		}
		g := Group{GroupDescription: d, Err: errs[name]}
		onTopics := map[string]int64{} // committed offsets summed per topic
		for _, p := range d.Partitions {
			onTopics[p.Topic] += max(p.Committed, 0)
		}
		for _, m := range d.Members {
			for _, a := range m.Assigned {
				if t, _, ok := cutLast(a, '/'); ok {
					if _, seen := onTopics[t]; !seen {
						onTopics[t] = 0
					}
				}
			}
		}
		for topic, committed := range onTopics {
			key := "group\x00" + name + "\x00" + topic
			seen[key] = true
			r := v.rate(key, now, committed)
			g.Rate += r
			if t := topicIndex[topic]; t != nil {
				t.Groups = append(t.Groups, name)
				t.OutRate += r
			}
		}
		h := v.history[name]
		if len(h) == 0 || now.UnixMilli()-h[len(h)-1].At >= historyStep.Milliseconds() {
			h = append(h, Sample{At: now.UnixMilli(), Value: d.TotalLag})
		} else {
			h[len(h)-1].Value = d.TotalLag // the newest point follows the latest figure
		}
		for len(h) > 0 && now.UnixMilli()-h[0].At > historyLength.Milliseconds() {
			h = h[1:]
		}
		v.history[name] = h
		g.LagHistory = append([]Sample(nil), h...)
		s.Groups = append(s.Groups, g)
	}
	for name := range v.history {
		if !groupsSeen[name] {
			delete(v.history, name)
		}
	}
	for i := range s.Topics {
		sort.Strings(s.Topics[i].Groups)
	}
	return nil
}

func cutLast(s string, sep byte) (string, string, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func nonNil(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}

// ErrNotRead is returned by lookups before the first refresh worked.
var ErrNotRead = errors.New("the cluster has not been read yet")

// Topic looks a topic up in the snapshot.
func (s *Snapshot) Topic(name string) (*Topic, bool) {
	i := sort.Search(len(s.Topics), func(i int) bool { return s.Topics[i].Name >= name })
	if i < len(s.Topics) && s.Topics[i].Name == name {
		return &s.Topics[i], true
	}
	return nil, false
}

// Group looks a group up in the snapshot.
func (s *Snapshot) Group(name string) (*Group, bool) {
	i := sort.Search(len(s.Groups), func(i int) bool { return s.Groups[i].Group >= name })
	if i < len(s.Groups) && s.Groups[i].Group == name {
		return &s.Groups[i], true
	}
	return nil, false
}
