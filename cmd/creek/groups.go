package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// adminCmd holds what the subcommands of an admin command (groups,
// transactions) share: the connection flags and --output.
type adminCmd struct {
	kafka  *kafkaFlags
	output string
}

// newAdminCmd adds the shared flags to cmd.
func newAdminCmd(cmd *cobra.Command) *adminCmd {
	a := &adminCmd{kafka: addKafkaFlags(cmd)}
	cmd.PersistentFlags().StringVar(&a.output, "output", "table", "table or json")
	return a
}

// admin connects to the cluster, checking it can be reached.
func (a *adminCmd) admin(cmd *cobra.Command) (*kadm.Client, func(), error) {
	if err := checkOutput(a.output); err != nil {
		return nil, nil, err
	}
	c, err := a.kafka.connect(cmd.Context(), cmd)
	if err != nil {
		return nil, nil, err
	}
	return c.Client, c.cl.Close, nil
}

// groupsCmd holds what every groups subcommand shares.
type groupsCmd struct{ *adminCmd }

func newGroupsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "groups",
		Short: "List, describe, delete consumer groups and reset their offsets",
		Long: `Inspect and manage consumer groups on creek's broker or any Kafka cluster:
which groups exist, their members and assignments, how far each one has read
(committed offset, end offset and lag per partition), and moving a group's
position.`,
	}
	g := groupsCmd{newAdminCmd(cmd)}
	cmd.AddCommand(g.listCommand(), g.describeCommand(), g.deleteCommand(), g.resetCommand())
	return cmd
}

func (g *groupsCmd) listCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List consumer groups with their type, state and members",
		Long: `List every group: classic consumer groups, consumer groups of Kafka 4's
protocol (KIP-848, type consumer) and share groups (KIP-932, type share),
with their state and number of members.`,
		Example: "  creek groups list\n  creek groups list --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			adm, done, err := g.admin(cmd)
			if err != nil {
				return err
			}
			defer done()
			ctx := cmd.Context()
			listed, types, err := listGroupTypes(ctx, adm)
			if err != nil {
				return err
			}
			members, err := memberCounts(ctx, adm, types)
			if err != nil {
				return err
			}
			type row struct {
				Group        string `json:"group"`
				Type         string `json:"type"`
				State        string `json:"state"`
				ProtocolType string `json:"protocol_type"`
				Members      int    `json:"members"`
			}
			var rows []row
			for _, name := range listed.Groups() {
				l := listed[name]
				rows = append(rows, row{Group: name, Type: types[name], State: l.State, ProtocolType: l.ProtocolType, Members: members[name]})
			}
			sort.Slice(rows, func(i, j int) bool { return rows[i].Group < rows[j].Group })
			if g.output == "json" {
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no consumer groups")
				return nil
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "GROUP\tTYPE\tSTATE\tPROTOCOL TYPE\tMEMBERS")
			for _, r := range rows {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\n", r.Group, r.Type, r.State, dash(r.ProtocolType), r.Members)
			}
			return w.Flush()
		},
	}
}

// listGroupTypes lists every group and its type: classic, consumer (the
// KIP-848 protocol) or share. A cluster too old to filter by type has only
// classic groups.
func listGroupTypes(ctx context.Context, adm *kadm.Client) (kadm.ListedGroups, map[string]string, error) {
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

// memberCounts describes the groups with the API of their type and counts
// their members.
func memberCounts(ctx context.Context, adm *kadm.Client, types map[string]string) (map[string]int, error) {
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

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

type partitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"` // -1: nothing committed
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"`
	Member    string `json:"member,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Host      string `json:"host,omitempty"`
}

type groupDescription struct {
	Group      string         `json:"group"`
	State      string         `json:"state"`
	Protocol   string         `json:"protocol,omitempty"`
	Members    []memberRow    `json:"members"`
	Partitions []partitionLag `json:"partitions"`
	TotalLag   int64          `json:"total_lag"`
}

type memberRow struct {
	MemberID   string   `json:"member_id"`
	InstanceID string   `json:"instance_id,omitempty"`
	ClientID   string   `json:"client_id"`
	Host       string   `json:"host"`
	Assigned   []string `json:"assigned"`
}

func (g *groupsCmd) describeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "describe GROUP...",
		Short: "Show a group's members, assignments, and committed offset, end offset and lag per partition",
		Long: `Show a consumer group: its state, its members and the partitions each one is
assigned, and for every partition the group has committed an offset for (or
is assigned): the committed offset, the partition's end offset, and the lag
between them (records not yet consumed).`,
		Example: "  creek groups describe creek-console",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			adm, done, err := g.admin(cmd)
			if err != nil {
				return err
			}
			defer done()
			_, types, err := listGroupTypes(cmd.Context(), adm)
			if err != nil {
				return err
			}
			var classic []string
			for _, name := range args {
				if types[name] == "classic" || types[name] == "" {
					classic = append(classic, name)
				}
			}
			var lags kadm.DescribedGroupLags
			if len(classic) > 0 { // Lag of no groups would describe them all
				if lags, err = adm.Lag(cmd.Context(), classic...); err != nil {
					return err
				}
			}
			var out []groupDescription
			for _, name := range args {
				if types[name] == "consumer" || types[name] == "share" {
					describe := describeConsumerProtocolGroup
					if types[name] == "share" {
						describe = describeShareGroup
					}
					d, err := describe(cmd.Context(), adm, name)
					if err != nil {
						return err
					}
					out = append(out, d)
					continue
				}
				l, ok := lags[name]
				if !ok || l.State == "Dead" {
					return fmt.Errorf("consumer group %q does not exist (see creek groups list)", name)
				}
				if err := l.Error(); err != nil {
					return fmt.Errorf("describe group %s: %w", name, err)
				}
				out = append(out, describeLag(l))
			}
			if g.output == "json" {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			for i, d := range out {
				if i > 0 {
					fmt.Fprintln(cmd.OutOrStdout())
				}
				printGroup(cmd.OutOrStdout(), d)
			}
			return nil
		},
	}
}

func describeLag(l kadm.DescribedGroupLag) groupDescription {
	d := groupDescription{Group: l.Group, State: l.State, Protocol: l.Protocol, Members: []memberRow{}, Partitions: []partitionLag{}}
	for _, m := range l.Members {
		row := memberRow{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost}
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
		p := partitionLag{Topic: ml.Topic, Partition: ml.Partition, Committed: ml.Commit.At, End: ml.End.Offset, Lag: ml.Lag}
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
func describeConsumerProtocolGroup(ctx context.Context, adm *kadm.Client, name string) (groupDescription, error) {
	described, err := adm.DescribeConsumerGroups(ctx, name)
	if err != nil {
		return groupDescription{}, err
	}
	dg := described[name]
	if dg.Err != nil {
		return groupDescription{}, fmt.Errorf("describe group %s: %w", name, dg.Err)
	}
	d := groupDescription{Group: name, State: dg.State, Protocol: dg.AssignorName, Members: []memberRow{}, Partitions: []partitionLag{}}
	type tp struct {
		topic     string
		partition int32
	}
	owners := map[tp]kadm.ConsumerGroupMember{}
	topics := map[string]bool{}
	for _, m := range dg.Members {
		row := memberRow{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost}
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
		return groupDescription{}, fmt.Errorf("committed offsets of group %s: %w", name, err)
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
		return groupDescription{}, err
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return groupDescription{}, err
	}
	parts := map[tp]bool{}
	for k := range owners {
		parts[k] = true
	}
	committed.Each(func(o kadm.OffsetResponse) { parts[tp{o.Topic, o.Partition}] = true })
	for k := range parts {
		p := partitionLag{Topic: k.topic, Partition: k.partition, Committed: -1}
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
func describeShareGroup(ctx context.Context, adm *kadm.Client, name string) (groupDescription, error) {
	described, err := adm.DescribeShareGroups(ctx, name)
	if err != nil {
		return groupDescription{}, err
	}
	dg := described[name]
	if dg.Err != nil {
		return groupDescription{}, fmt.Errorf("describe share group %s: %w", name, dg.Err)
	}
	d := groupDescription{Group: name, State: dg.GroupState, Protocol: "share", Members: []memberRow{}, Partitions: []partitionLag{}}
	for _, m := range dg.Members {
		row := memberRow{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost}
		for _, t := range m.Assignment.Sorted() {
			for _, p := range t.Partitions {
				row.Assigned = append(row.Assigned, fmt.Sprintf("%s/%d", t.Topic, p))
			}
		}
		d.Members = append(d.Members, row)
	}
	offsets, err := adm.DescribeShareGroupOffsets(ctx, name)
	if err != nil {
		return groupDescription{}, fmt.Errorf("share group %s offsets: %w", name, err)
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
		return groupDescription{}, err
	}
	offsets[name].Offsets.Each(func(o kadm.ShareOffset) {
		p := partitionLag{Topic: o.Topic, Partition: o.Partition, Committed: o.StartOffset, Lag: max(o.Lag, 0)}
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

func printGroup(w io.Writer, d groupDescription) {
	fmt.Fprintf(w, "Group %s: %s", d.Group, d.State)
	if d.Protocol != "" {
		fmt.Fprintf(w, " (assignor %s)", d.Protocol)
	}
	fmt.Fprintf(w, ", %d member(s), total lag %d\n\n", len(d.Members), d.TotalLag)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\tMEMBER\tCLIENT\tHOST")
	for _, p := range d.Partitions {
		committed := strconv.FormatInt(p.Committed, 10)
		if p.Committed < 0 {
			committed = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%s\t%s\n", p.Topic, p.Partition, committed, p.End, p.Lag, dash(p.Member), dash(p.ClientID), dash(p.Host))
	}
	tw.Flush()
}

func (g *groupsCmd) deleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "delete GROUP...",
		Short:   "Delete consumer groups without members, with their committed offsets",
		Example: "  creek groups delete old-dashboard",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			adm, done, err := g.admin(cmd)
			if err != nil {
				return err
			}
			defer done()
			resp, err := adm.DeleteGroups(cmd.Context(), args...)
			if err != nil {
				return err
			}
			var errs []error
			for _, name := range args {
				r := resp[name]
				if r.Err != nil {
					errs = append(errs, fmt.Errorf("delete group %s: %w", name, r.Err))
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted group %s\n", name)
			}
			return errors.Join(errs...)
		},
	}
}

func (g *groupsCmd) resetCommand() *cobra.Command {
	var (
		topics                       []string
		toEarliest, toLatest, dryRun bool
		toOffset                     int64
		toDatetime                   string
	)
	cmd := &cobra.Command{
		Use:   "reset-offsets GROUP --topic TOPIC (--to-earliest | --to-latest | --to-offset N | --to-datetime TIME)",
		Short: "Move a group's committed offsets (the group must have no active members)",
		Long: `Move where a consumer group will continue reading, for every partition of the
given topics. As in Kafka, only a group without active members can be reset:
stop its consumers first. --dry-run shows the plan without changing anything.

--to-datetime takes RFC 3339 (2026-11-24T14:00:00Z or with an offset such as
+09:00) and moves each partition to the first record at or after that time.`,
		Example: `  creek groups reset-offsets analytics --topic tweets --to-earliest
  creek groups reset-offsets analytics --topic tweets --to-datetime 2026-11-24T09:00:00+09:00 --dry-run`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			chosen := 0
			for _, b := range []bool{toEarliest, toLatest, cmd.Flags().Changed("to-offset"), toDatetime != ""} {
				if b {
					chosen++
				}
			}
			if chosen != 1 {
				return usageError{errors.New("choose exactly one of --to-earliest, --to-latest, --to-offset N, --to-datetime TIME")}
			}
			if len(topics) == 0 {
				return usageError{errors.New("give the topic(s) to reset with --topic")}
			}
			var at time.Time
			if toDatetime != "" {
				var err error
				if at, err = time.Parse(time.RFC3339, toDatetime); err != nil {
					return usageError{fmt.Errorf("--to-datetime %q: want RFC 3339 such as 2026-11-24T14:00:00Z", toDatetime)}
				}
			}
			adm, done, err := g.admin(cmd)
			if err != nil {
				return err
			}
			defer done()
			ctx := cmd.Context()
			group := args[0]
			listed, types, err := listGroupTypes(ctx, adm)
			if err != nil {
				return err
			}
			if _, ok := types[group]; !ok {
				types[group] = "classic" // a group that does not exist yet
			}
			members, err := memberCounts(ctx, adm, map[string]string{group: types[group]})
			if err != nil {
				return err
			}
			if n := members[group]; n > 0 {
				return fmt.Errorf("group %s has %d active member(s) (state %s); stop its consumers first: offsets of an active group cannot be reset", group, n, listed[group].State)
			}
			var target kadm.ListedOffsets
			switch {
			case toEarliest:
				target, err = adm.ListStartOffsets(ctx, topics...)
			case toLatest:
				target, err = adm.ListEndOffsets(ctx, topics...)
			case toDatetime != "":
				target, err = adm.ListOffsetsAfterMilli(ctx, at.UnixMilli(), topics...)
			default:
				target, err = adm.ListEndOffsets(ctx, topics...)
			}
			if err != nil {
				return err
			}
			if err := target.Error(); err != nil {
				return fmt.Errorf("list offsets: %w", err)
			}
			current, err := adm.FetchOffsets(ctx, group)
			if err != nil {
				return err
			}
			plan := kadm.Offsets{}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TOPIC\tPARTITION\tCURRENT\tNEW")
			var problems []string
			target.Each(func(lo kadm.ListedOffset) {
				next := lo.Offset
				if cmd.Flags().Changed("to-offset") {
					next = toOffset
					if start, ok := startOf(ctx, adm, lo.Topic, lo.Partition); ok && next < start {
						problems = append(problems, fmt.Sprintf("%s/%d: offset %d is before the earliest available offset %d", lo.Topic, lo.Partition, next, start))
					}
					if next > lo.Offset {
						problems = append(problems, fmt.Sprintf("%s/%d: offset %d is past the end offset %d", lo.Topic, lo.Partition, next, lo.Offset))
					}
				}
				cur := "-"
				if c, ok := current.Lookup(lo.Topic, lo.Partition); ok && c.At >= 0 {
					cur = strconv.FormatInt(c.At, 10)
				}
				fmt.Fprintf(w, "%s\t%d\t%s\t%d\n", lo.Topic, lo.Partition, cur, next)
				plan.Add(kadm.Offset{Topic: lo.Topic, Partition: lo.Partition, At: next, LeaderEpoch: -1})
			})
			w.Flush()
			if len(problems) > 0 {
				sort.Strings(problems)
				return fmt.Errorf("not reset:\n  %s", strings.Join(problems, "\n  "))
			}
			if dryRun {
				fmt.Fprintln(cmd.OutOrStdout(), "dry run: nothing changed (run again without --dry-run to apply)")
				return nil
			}
			kind, apply := "group", func() error {
				resp, err := adm.CommitOffsets(ctx, group, plan)
				if err != nil {
					return err
				}
				return resp.Error()
			}
			if types[group] == "share" { // its position is its share-partition start offsets
				kind, apply = "share group", func() error {
					resp, err := adm.AlterShareGroupOffsets(ctx, group, plan)
					if err != nil {
						return err
					}
					return resp.Error()
				}
			}
			if err := apply(); err != nil {
				return fmt.Errorf("reset offsets of %s %s: %w", kind, group, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "offsets of %s %s reset\n", kind, group)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&topics, "topic", nil, "topic whose partitions to reset (repeatable)")
	f.BoolVar(&toEarliest, "to-earliest", false, "move to the earliest available record")
	f.BoolVar(&toLatest, "to-latest", false, "move to the end: skip everything not yet read")
	f.Int64Var(&toOffset, "to-offset", 0, "move every partition to this offset")
	f.StringVar(&toDatetime, "to-datetime", "", "move to the first record at or after this time (RFC 3339)")
	f.BoolVar(&dryRun, "dry-run", false, "show the plan without applying it")
	return cmd
}

func startOf(ctx context.Context, adm *kadm.Client, topic string, partition int32) (int64, bool) {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return 0, false
	}
	o, ok := starts.Lookup(topic, partition)
	return o.Offset, ok
}
