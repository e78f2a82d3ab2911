package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/creek-pipeline/creek/internal/admin"
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
	cmd.PersistentFlags().StringVarP(&a.output, "output", "o", "table", "table or json") // as topics: -o json
	return a
}

// admin connects to the cluster, checking it can be reached. From here
// on the command's context is bounded by kafkaCommandTimeout, as every
// topics command is (kafkaFlags.run): one way to connect, one timeout.
func (a *adminCmd) admin(cmd *cobra.Command) (*kadm.Client, func(), error) {
	if err := checkOutput(a.output); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), kafkaCommandTimeout)
	c, err := a.kafka.connect(ctx, cmd)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	cmd.SetContext(ctx)
	return c.Client, func() { c.cl.Close(); cancel() }, nil
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
			listed, types, err := admin.ListGroupTypes(ctx, adm)
			if err != nil {
				return err
			}
			members, err := admin.MemberCounts(ctx, adm, types)
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
			w := newTable(cmd.OutOrStdout())
			fmt.Fprintln(w, "GROUP\tTYPE\tSTATE\tPROTOCOL TYPE\tMEMBERS")
			for _, r := range rows {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\n", r.Group, r.Type, r.State, dash(r.ProtocolType), r.Members)
			}
			return w.Flush()
		},
	}
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
			out, err := admin.DescribeGroups(cmd.Context(), adm, args...)
			if err != nil {
				return err
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

func printGroup(w io.Writer, d admin.GroupDescription) {
	fmt.Fprintf(w, "Group %s: %s", d.Group, d.State)
	if d.Protocol != "" {
		fmt.Fprintf(w, " (assignor %s)", d.Protocol)
	}
	fmt.Fprintf(w, ", %d member(s), total lag %d\n\n", len(d.Members), d.TotalLag)
	tw := newTable(w)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\tMEMBER\tCLIENT\tHOST")
	for _, p := range d.Partitions {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%s\t%s\n", p.Topic, p.Partition, offsetString(p.Committed), p.End, p.Lag, dash(p.Member), dash(p.ClientID), dash(p.Host))
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
			r := admin.Reset{Group: args[0], Topics: topics, At: at, Offset: toOffset, DryRun: dryRun}
			switch {
			case toEarliest:
				r.To = "earliest"
			case toLatest:
				r.To = "latest"
			case toDatetime != "":
				r.To = "datetime"
			default:
				r.To = "offset"
			}
			plan, err := admin.ResetOffsets(cmd.Context(), adm, r)
			if len(plan.Rows) > 0 {
				w := newTable(cmd.OutOrStdout())
				fmt.Fprintln(w, "TOPIC\tPARTITION\tCURRENT\tNEW")
				for _, row := range plan.Rows {
					fmt.Fprintf(w, "%s\t%d\t%s\t%d\n", row.Topic, row.Partition, offsetString(row.Current), row.New)
				}
				w.Flush()
			}
			if err != nil {
				return err
			}
			if dryRun {
				fmt.Fprintln(cmd.OutOrStdout(), "dry run: nothing changed (run again without --dry-run to apply)")
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "offsets of %s %s reset\n", plan.Kind, r.Group)
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
