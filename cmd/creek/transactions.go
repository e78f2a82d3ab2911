package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/creek-pipeline/creek/internal/admin"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// transactionsCmd holds what every transactions subcommand shares.
type transactionsCmd struct{ *adminCmd }

func newTransactionsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "transactions",
		Short: "List and describe transactions and the producers writing to partitions",
		Long: `Inspect transactional producers on creek's broker or any Kafka cluster, like
Kafka's kafka-transactions.sh: which transactional ids exist and their state
(Ongoing, CompleteCommit, CompleteAbort...), the partitions an open
transaction touches and since when, and, per partition, the producers that
wrote to it and the first offset of their open transaction (which holds
read_committed consumers back).`,
	}
	x := transactionsCmd{newAdminCmd(cmd)}
	cmd.AddCommand(x.listCommand(), x.describeCommand(), x.producersCommand())
	return cmd
}

func (x *transactionsCmd) listCommand() *cobra.Command {
	var states []string
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List transactional ids with their producer id and state",
		Example: "  creek transactions list\n  creek transactions list --state Ongoing",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			adm, done, err := x.admin(cmd)
			if err != nil {
				return err
			}
			defer done()
			listed, err := adm.ListTransactions(cmd.Context(), nil, states)
			if err != nil {
				return err
			}
			type row struct {
				TransactionalID string `json:"transactional_id"`
				ProducerID      int64  `json:"producer_id"`
				State           string `json:"state"`
			}
			rows := []row{}
			for _, t := range listed.Sorted() {
				rows = append(rows, row{t.TxnID, t.ProducerID, t.State})
			}
			if x.output == "json" {
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no transactions")
				return nil
			}
			w := newTable(cmd.OutOrStdout())
			fmt.Fprintln(w, "TRANSACTIONAL ID\tPRODUCER ID\tSTATE")
			for _, r := range rows {
				fmt.Fprintf(w, "%s\t%d\t%s\n", r.TransactionalID, r.ProducerID, r.State)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringArrayVar(&states, "state", nil, "only transactions in this state (repeatable): Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort")
	return cmd
}

func (x *transactionsCmd) describeCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "describe TRANSACTIONAL-ID...",
		Short:   "Describe transactions: producer, epoch, state, timeout, partitions",
		Example: "  creek transactions describe payments-writer",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			adm, done, err := x.admin(cmd)
			if err != nil {
				return err
			}
			defer done()
			described, err := adm.DescribeTransactions(cmd.Context(), args...)
			if err != nil {
				return err
			}
			type row struct {
				TransactionalID string   `json:"transactional_id"`
				ProducerID      int64    `json:"producer_id"`
				Epoch           int16    `json:"producer_epoch"`
				State           string   `json:"state"`
				TimeoutMs       int32    `json:"timeout_ms"`
				Started         string   `json:"started,omitempty"`
				Partitions      []string `json:"partitions"`
				Error           string   `json:"error,omitempty"`
			}
			var rows []row
			for _, id := range args {
				d, ok := described[id]
				r := row{TransactionalID: id, Partitions: []string{}}
				switch {
				case !ok:
					r.Error = "not described"
				case d.Err != nil:
					r.Error = d.Err.Error()
				default:
					r.ProducerID, r.Epoch, r.State, r.TimeoutMs = d.ProducerID, d.ProducerEpoch, d.State, d.TimeoutMillis
					if d.StartTimestamp > 0 {
						r.Started = time.UnixMilli(d.StartTimestamp).UTC().Format(time.RFC3339)
					}
					d.Topics.Each(func(t string, p int32) { r.Partitions = append(r.Partitions, fmt.Sprintf("%s/%d", t, p)) })
					sort.Strings(r.Partitions)
				}
				rows = append(rows, r)
			}
			if x.output == "json" {
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			w := newTable(cmd.OutOrStdout())
			fmt.Fprintln(w, "TRANSACTIONAL ID\tPRODUCER ID\tEPOCH\tSTATE\tTIMEOUT\tSTARTED\tPARTITIONS")
			for _, r := range rows {
				if r.Error != "" {
					fmt.Fprintf(w, "%s\t-\t-\t%s\t-\t-\t-\n", r.TransactionalID, r.Error)
					continue
				}
				fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%s\t%s\n", r.TransactionalID, r.ProducerID, r.Epoch, r.State,
					time.Duration(r.TimeoutMs)*time.Millisecond, dash(r.Started), dash(strings.Join(r.Partitions, ",")))
			}
			return w.Flush()
		},
	}
}

func (x *transactionsCmd) producersCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "producers TOPIC [PARTITION...]",
		Short: "Describe the producers of a topic's partitions and their open transactions",
		Long: `Show, per partition, each producer with state there: its id and epoch, the
last sequence number and write time, and the first offset of its open
transaction. A transaction that stays open holds read_committed consumers
back at that offset until it commits, aborts or times out.`,
		Example: "  creek transactions producers payments\n  creek transactions producers payments 0 2",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			adm, done, err := x.admin(cmd)
			if err != nil {
				return err
			}
			defer done()
			topic := args[0]
			set := kadm.TopicsSet{topic: {}}
			for _, a := range args[1:] {
				var p int32
				if _, err := fmt.Sscan(a, &p); err != nil || p < 0 {
					return usageError{fmt.Errorf("partition %q is not a number", a)}
				}
				set[topic][p] = struct{}{}
			}
			if len(args) == 1 {
				topics, err := adm.ListTopics(cmd.Context(), topic)
				if err != nil {
					return err
				}
				td, ok := topics[topic]
				switch {
				case !ok:
					return fmt.Errorf("topic %q does not exist (see creek topics list)", topic)
				case td.Err != nil:
					return admin.TopicError(topic, td.Err, "")
				}
				for _, p := range td.Partitions.Numbers() {
					set[topic][p] = struct{}{}
				}
			}
			described, err := adm.DescribeProducers(cmd.Context(), set)
			if err != nil {
				return err
			}
			type row struct {
				Partition     int32  `json:"partition"`
				ProducerID    int64  `json:"producer_id"`
				Epoch         int16  `json:"producer_epoch"`
				LastSequence  int32  `json:"last_sequence"`
				LastWrite     string `json:"last_write"`
				OpenTxnOffset int64  `json:"open_txn_start_offset"` // -1: none
			}
			rows := []row{}
			described.EachProducer(func(p kadm.DescribedProducer) {
				rows = append(rows, row{p.Partition, p.ProducerID, p.ProducerEpoch, p.LastSequence,
					time.UnixMilli(p.LastTimestamp).UTC().Format(time.RFC3339), p.CurrentTxnStartOffset})
			})
			var errs []string
			described.EachPartition(func(p kadm.DescribedProducersPartition) {
				if p.Err != nil {
					errs = append(errs, fmt.Sprintf("%s/%d: %v", topic, p.Partition, p.Err))
				}
			})
			if len(errs) > 0 {
				return fmt.Errorf("%s", strings.Join(errs, "; "))
			}
			sort.Slice(rows, func(i, j int) bool {
				if rows[i].Partition != rows[j].Partition {
					return rows[i].Partition < rows[j].Partition
				}
				return rows[i].ProducerID < rows[j].ProducerID
			})
			if x.output == "json" {
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			if len(rows) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "no producers with state in %s\n", topic)
				return nil
			}
			w := newTable(cmd.OutOrStdout())
			fmt.Fprintln(w, "PARTITION\tPRODUCER ID\tEPOCH\tLAST SEQUENCE\tLAST WRITE\tOPEN TRANSACTION FROM")
			for _, r := range rows {
				fmt.Fprintf(w, "%d\t%d\t%d\t%d\t%s\t%s\n", r.Partition, r.ProducerID, r.Epoch, r.LastSequence, r.LastWrite, offsetString(r.OpenTxnOffset))
			}
			return w.Flush()
		},
	}
}
