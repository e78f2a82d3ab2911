// Package admin holds the cluster administration that creek's CLI and its
// dashboard share: describing consumer groups of every kind, resetting a
// group's offsets, listing, creating, describing, altering and deleting
// topics, deleting their oldest records. It speaks only the Kafka protocol
// (franz-go's kadm), so it works against any Kafka cluster. Its functions
// return data and lines of text; printing them is the caller's job.
package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// ListGroupTypes lists every group and its type: classic, consumer (the
// KIP-848 protocol) or share. A cluster too old to filter by type has only
// classic groups.
func ListGroupTypes(ctx context.Context, adm *kadm.Client) (kadm.ListedGroups, map[string]string, error) {
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return nil, nil, err
	}
	types := make(map[string]string, len(listed))
	for name := range listed {
		types[name] = "classic"
	}
	for _, typ := range []string{"consumer", "share"} {
		byType, err := adm.ListGroupsByType(ctx, []string{typ})
		if err != nil {
			continue
		}
		for name, l := range byType {
			types[name] = typ
			listed[name] = l
		}
	}
	return listed, types, nil
}

// MemberCounts describes the groups with the API of their type and counts
// their members.
func MemberCounts(ctx context.Context, adm *kadm.Client, types map[string]string) (map[string]int, error) {
	byType := map[string][]string{}
	for name, typ := range types {
		byType[typ] = append(byType[typ], name)
	}
	out := map[string]int{}
	err := errors.Join(
		countMembers(ctx, out, byType["classic"], adm.DescribeGroups, func(g kadm.DescribedGroup) int { return len(g.Members) }),
		countMembers(ctx, out, byType["consumer"], adm.DescribeConsumerGroups, func(g kadm.DescribedConsumerGroup) int { return len(g.Members) }),
		countMembers(ctx, out, byType["share"], adm.DescribeShareGroups, func(g kadm.DescribedShareGroup) int { return len(g.Members) }),
	)
	return out, err
}

// countMembers describes names with describe and adds their member counts.
func countMembers[D ~map[string]G, G any](ctx context.Context, out map[string]int, names []string,
	describe func(context.Context, ...string) (D, error), members func(G) int) error {
	if len(names) == 0 {
		return nil // describing no groups would describe them all
	}
	d, err := describe(ctx, names...)
	if err != nil {
		return err
	}
	for name, g := range d {
		out[name] = members(g)
	}
	return nil
}

// PartitionLag is a group's position in one partition.
type PartitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"` // -1: nothing committed
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"`
	Member    string `json:"member,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Host      string `json:"host,omitempty"`
}

// GroupDescription is a described group, as `creek groups describe
// --output json` prints it.
type GroupDescription struct {
	Group      string         `json:"group"`
	Type       string         `json:"type"` // classic, consumer or share
	State      string         `json:"state"`
	Protocol   string         `json:"protocol,omitempty"`
	Members    []MemberRow    `json:"members"`
	Partitions []PartitionLag `json:"partitions"`
	TotalLag   int64          `json:"total_lag"`
}

// MemberRow is one member of a group and what it is assigned.
type MemberRow struct {
	MemberID   string   `json:"member_id"`
	InstanceID string   `json:"instance_id,omitempty"`
	ClientID   string   `json:"client_id"`
	Host       string   `json:"host"`
	Assigned   []string `json:"assigned"`
}

func describeLag(l kadm.DescribedGroupLag) GroupDescription {
	d := GroupDescription{Group: l.Group, State: l.State, Protocol: l.Protocol, Members: []MemberRow{}, Partitions: []PartitionLag{}}
	for _, m := range l.Members {
		row := MemberRow{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost}
		if m.InstanceID != nil {
			row.InstanceID = *m.InstanceID
		}
		if ca, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range ca.Topics {
				for _, p := range t.Partitions {
					row.Assigned = append(row.Assigned, fmt.Sprintf("%s/%d", t.Topic, p))
				}
			}
		}
		d.Members = append(d.Members, row)
	}
	for _, ml := range l.Lag.Sorted() {
		p := PartitionLag{Topic: ml.Topic, Partition: ml.Partition, Committed: ml.Commit.At, End: ml.End.Offset, Lag: ml.Lag}
		if ml.Member != nil {
			p.Member, p.ClientID, p.Host = ml.Member.MemberID, ml.Member.ClientID, ml.Member.ClientHost
		}
		d.Partitions = append(d.Partitions, p)
		d.TotalLag += max(ml.Lag, 0)
	}
	return d
}

// describeConsumerProtocolGroup describes a group of Kafka 4's consumer
// protocol (KIP-848), which ConsumerGroupDescribe describes, as describeLag
// does a classic group.
func describeConsumerProtocolGroup(ctx context.Context, adm *kadm.Client, name string) (GroupDescription, error) {
	described, err := adm.DescribeConsumerGroups(ctx, name)
	if err != nil {
		return GroupDescription{}, err
	}
	dg := described[name]
	if dg.Err != nil {
		return GroupDescription{}, fmt.Errorf("describe group %s: %w", name, dg.Err)
	}
	d := GroupDescription{Group: name, State: dg.State, Protocol: dg.AssignorName, Members: []MemberRow{}, Partitions: []PartitionLag{}}
	type tp struct {
		topic     string
		partition int32
	}
	owners := map[tp]kadm.ConsumerGroupMember{}
	topics := map[string]bool{}
	for _, m := range dg.Members {
		row := MemberRow{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost}
		if m.InstanceID != nil {
			row.InstanceID = *m.InstanceID
		}
		for _, t := range m.Assignment.Sorted() {
			for _, p := range t.Partitions {
				row.Assigned = append(row.Assigned, fmt.Sprintf("%s/%d", t.Topic, p))
				owners[tp{t.Topic, p}] = m
				topics[t.Topic] = true
			}
		}
		d.Members = append(d.Members, row)
	}
	committed, err := adm.FetchOffsets(ctx, name)
	if err != nil {
		return GroupDescription{}, fmt.Errorf("committed offsets of group %s: %w", name, err)
	}
	committed.Each(func(o kadm.OffsetResponse) { topics[o.Topic] = true })
	if len(topics) == 0 {
		return d, nil
	}
	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	starts, err := adm.ListStartOffsets(ctx, names...)
	if err != nil {
		return GroupDescription{}, err
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return GroupDescription{}, err
	}
	parts := map[tp]bool{}
	for k := range owners {
		parts[k] = true
	}
	committed.Each(func(o kadm.OffsetResponse) { parts[tp{o.Topic, o.Partition}] = true })
	for k := range parts {
		p := PartitionLag{Topic: k.topic, Partition: k.partition, Committed: -1}
		from := int64(0)
		if s, ok := starts.Lookup(k.topic, k.partition); ok {
			from = s.Offset
		}
		if o, ok := committed.Lookup(k.topic, k.partition); ok && o.Err == nil {
			p.Committed, from = o.At, o.At
		}
		if e, ok := ends.Lookup(k.topic, k.partition); ok {
			p.End = e.Offset
			p.Lag = max(e.Offset-from, 0)
		}
		if m, ok := owners[k]; ok {
			p.Member, p.ClientID, p.Host = m.MemberID, m.ClientID, m.ClientHost
		}
		d.Partitions = append(d.Partitions, p)
		d.TotalLag += p.Lag
	}
	sort.Slice(d.Partitions, func(i, j int) bool {
		a, b := d.Partitions[i], d.Partitions[j]
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
	})
	return d, nil
}

// describeShareGroup describes a share group (KIP-932): its members, which
// all read every partition, and per partition the share-partition start
// offset (shown as committed: everything before it is done) and the
// records not yet done.
func describeShareGroup(ctx context.Context, adm *kadm.Client, name string) (GroupDescription, error) {
	described, err := adm.DescribeShareGroups(ctx, name)
	if err != nil {
		return GroupDescription{}, err
	}
	dg := described[name]
	if dg.Err != nil {
		return GroupDescription{}, fmt.Errorf("describe share group %s: %w", name, dg.Err)
	}
	d := GroupDescription{Group: name, State: dg.GroupState, Protocol: "share", Members: []MemberRow{}, Partitions: []PartitionLag{}}
	for _, m := range dg.Members {
		row := MemberRow{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost}
		for _, t := range m.Assignment.Sorted() {
			for _, p := range t.Partitions {
				row.Assigned = append(row.Assigned, fmt.Sprintf("%s/%d", t.Topic, p))
			}
		}
		d.Members = append(d.Members, row)
	}
	offsets, err := adm.DescribeShareGroupOffsets(ctx, name)
	if err != nil {
		return GroupDescription{}, fmt.Errorf("share group %s offsets: %w", name, err)
	}
	var topics []string
	offsets[name].Offsets.Each(func(o kadm.ShareOffset) {
		if !slices.Contains(topics, o.Topic) {
			topics = append(topics, o.Topic)
		}
	})
	if len(topics) == 0 {
		return d, nil
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return GroupDescription{}, err
	}
	offsets[name].Offsets.Each(func(o kadm.ShareOffset) {
		p := PartitionLag{Topic: o.Topic, Partition: o.Partition, Committed: o.StartOffset, Lag: max(o.Lag, 0)}
		if e, ok := ends.Lookup(o.Topic, o.Partition); ok {
			p.End = e.Offset
		}
		d.Partitions = append(d.Partitions, p)
		d.TotalLag += p.Lag
	})
	sort.Slice(d.Partitions, func(i, j int) bool {
		a, b := d.Partitions[i], d.Partitions[j]
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
	})
	return d, nil
}

// DescribeGroups describes groups of every kind by name, each with the API
// of its type: members, assignments, and committed offset, end offset and
// lag per partition.
func DescribeGroups(ctx context.Context, adm *kadm.Client, names ...string) ([]GroupDescription, error) {
	_, types, err := ListGroupTypes(ctx, adm)
	if err != nil {
		return nil, err
	}
	var classic []string
	for _, name := range names {
		if types[name] == "classic" || types[name] == "" {
			classic = append(classic, name)
		}
	}
	var lags kadm.DescribedGroupLags
	if len(classic) > 0 { // Lag of no groups would describe them all
		if lags, err = adm.Lag(ctx, classic...); err != nil {
			return nil, err
		}
	}
	var out []GroupDescription
	for _, name := range names {
		if types[name] == "consumer" || types[name] == "share" {
			describe := describeConsumerProtocolGroup
			if types[name] == "share" {
				describe = describeShareGroup
			}
			d, err := describe(ctx, adm, name)
			if err != nil {
				return nil, err
			}
			d.Type = types[name]
			out = append(out, d)
			continue
		}
		l, ok := lags[name]
		if !ok || l.State == "Dead" {
			return nil, fmt.Errorf("consumer group %q does not exist (see creek groups list)", name)
		}
		if err := l.Error(); err != nil {
			return nil, fmt.Errorf("describe group %s: %w", name, err)
		}
		d := describeLag(l)
		d.Type = "classic"
		out = append(out, d)
	}
	return out, nil
}

// Reset says where to move a group's committed offsets.
type Reset struct {
	Group  string
	Topics []string
	// To is earliest, latest, offset (Offset) or datetime (At).
	To     string
	Offset int64
	At     time.Time
	DryRun bool // compute the plan without applying it
}

// ResetRow is one partition of a reset plan; Current is -1 when nothing
// was committed.
type ResetRow struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Current   int64  `json:"current"`
	New       int64  `json:"new"`
}

// ResetPlan is what ResetOffsets did or, on a dry run, would do.
type ResetPlan struct {
	Kind    string     `json:"kind"` // group or share group
	Rows    []ResetRow `json:"rows"`
	Applied bool       `json:"applied"`
}

// ResetOffsets moves a group's committed offsets for every partition of
// the given topics. As in Kafka, only a group without active members can
// be reset. An offset outside a partition's range is refused before
// anything changes.
func ResetOffsets(ctx context.Context, adm *kadm.Client, r Reset) (ResetPlan, error) {
	plan := ResetPlan{Kind: "group"}
	if len(r.Topics) == 0 {
		return plan, errors.New("give the topic(s) to reset")
	}
	listed, types, err := ListGroupTypes(ctx, adm)
	if err != nil {
		return plan, err
	}
	if _, ok := types[r.Group]; !ok {
		types[r.Group] = "classic" // a group that does not exist yet
	}
	members, err := MemberCounts(ctx, adm, map[string]string{r.Group: types[r.Group]})
	if err != nil {
		return plan, err
	}
	if n := members[r.Group]; n > 0 {
		return plan, fmt.Errorf("group %s has %d active member(s) (state %s); stop its consumers first: offsets of an active group cannot be reset", r.Group, n, listed[r.Group].State)
	}
	var target kadm.ListedOffsets
	switch r.To {
	case "earliest":
		target, err = adm.ListStartOffsets(ctx, r.Topics...)
	case "latest", "offset":
		target, err = adm.ListEndOffsets(ctx, r.Topics...)
	case "datetime":
		target, err = adm.ListOffsetsAfterMilli(ctx, r.At.UnixMilli(), r.Topics...)
	default:
		return plan, fmt.Errorf("reset to %q: want earliest, latest, offset or datetime", r.To)
	}
	if err != nil {
		return plan, err
	}
	if err := target.Error(); err != nil {
		return plan, fmt.Errorf("list offsets: %w", err)
	}
	current, err := adm.FetchOffsets(ctx, r.Group)
	if err != nil {
		return plan, err
	}
	var starts kadm.ListedOffsets
	if r.To == "offset" {
		if starts, err = adm.ListStartOffsets(ctx, r.Topics...); err != nil {
			return plan, err
		}
	}
	offsets := kadm.Offsets{}
	var problems []string
	target.Each(func(lo kadm.ListedOffset) {
		next := lo.Offset
		if r.To == "offset" {
			next = r.Offset
			if start, ok := starts.Lookup(lo.Topic, lo.Partition); ok && next < start.Offset {
				problems = append(problems, fmt.Sprintf("%s/%d: offset %d is before the earliest available offset %d", lo.Topic, lo.Partition, next, start.Offset))
			}
			if next > lo.Offset {
				problems = append(problems, fmt.Sprintf("%s/%d: offset %d is past the end offset %d", lo.Topic, lo.Partition, next, lo.Offset))
			}
		}
		row := ResetRow{Topic: lo.Topic, Partition: lo.Partition, Current: -1, New: next}
		if c, ok := current.Lookup(lo.Topic, lo.Partition); ok && c.At >= 0 {
			row.Current = c.At
		}
		plan.Rows = append(plan.Rows, row)
		offsets.Add(kadm.Offset{Topic: lo.Topic, Partition: lo.Partition, At: next, LeaderEpoch: -1})
	})
	sort.Slice(plan.Rows, func(i, j int) bool {
		a, b := plan.Rows[i], plan.Rows[j]
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
	})
	if len(problems) > 0 {
		sort.Strings(problems)
		return plan, fmt.Errorf("not reset:\n  %s", strings.Join(problems, "\n  "))
	}
	if r.DryRun {
		return plan, nil
	}
	apply := func() error {
		resp, err := adm.CommitOffsets(ctx, r.Group, offsets)
		if err != nil {
			return err
		}
		return resp.Error()
	}
	if types[r.Group] == "share" { // its position is its share-partition start offsets
		plan.Kind, apply = "share group", func() error {
			resp, err := adm.AlterShareGroupOffsets(ctx, r.Group, offsets)
			if err != nil {
				return err
			}
			return resp.Error()
		}
	}
	if err := apply(); err != nil {
		return plan, fmt.Errorf("reset offsets of %s %s: %w", plan.Kind, r.Group, err)
	}
	plan.Applied = true
	return plan, nil
}
