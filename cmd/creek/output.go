package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/creek-pipeline/creek/internal/admin"
	"github.com/creek-pipeline/creek/internal/storage"
)

// Rendering shared by the admin commands (topics, groups, transactions):
// --output json or tables, and how offsets, sizes and lists print in them.

// The JSON shapes of creek topics list and describe, under the names the command's
// tests use.
type (
	topicListRow     = admin.TopicListing
	topicDescription = admin.TopicDescription
	topicConfig      = admin.TopicConfig
)

// topicID prints a topic id as Kafka's tools do.
func topicID(id [16]byte) string { return admin.TopicID(id) }

func checkOutput(output string) error {
	if output != "table" && output != "json" {
		return usageError{fmt.Errorf("--output %q: want table or json", output)}
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newTable is the tabwriter every admin table is written with.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// printLines prints lines, one per line.
func printLines(w io.Writer, lines []string) {
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// offsetString prints an offset, "-" for none (negative).
func offsetString(o int64) string {
	if o < 0 {
		return "-"
	}
	return strconv.FormatInt(o, 10)
}

func int32List(s []int32) string {
	if len(s) == 0 {
		return "-"
	}
	parts := make([]string, len(s))
	for i, n := range s {
		parts[i] = strconv.Itoa(int(n))
	}
	return strings.Join(parts, ",")
}

// humanBytes prints a size in B, KiB, MiB, GiB or TiB.
func humanBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	f, unit := float64(n)/1024, "KiB"
	for _, u := range []string{"MiB", "GiB", "TiB"} {
		if f < 1024 {
			break
		}
		f, unit = f/1024, u
	}
	return fmt.Sprintf("%.1f %s", f, unit)
}

// printTopicList prints creek topics list's table.
func printTopicList(w io.Writer, rows []admin.TopicListing) error {
	if len(rows) == 0 {
		fmt.Fprintln(w, "no topics (create one with creek topics create NAME)")
		return nil
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tREPLICATION FACTOR")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", r.Topic, r.Partitions, r.ReplicationFactor)
	}
	return tw.Flush()
}

// printTopics prints described topics, a blank line between two.
func printTopics(w io.Writer, ds []topicDescription, allConfigs bool) {
	if len(ds) == 0 {
		fmt.Fprintln(w, "no topics (create one with creek topics create NAME)")
	}
	for i, d := range ds {
		if i > 0 {
			fmt.Fprintln(w)
		}
		printTopic(w, d, allConfigs)
	}
}

func printTopic(w io.Writer, d topicDescription, allConfigs bool) {
	size := "unknown"
	if d.SizeBytes >= 0 {
		size = humanBytes(d.SizeBytes)
	}
	fmt.Fprintf(w, "Topic: %s\nID: %s\nPartitions: %d   Replication factor: %d   Records: %d   Size: %s\n",
		d.Topic, d.ID, d.PartitionCount, d.ReplicationFactor, d.Records, size)
	switch {
	case len(d.Configs) == 0:
		fmt.Fprintln(w, "Configs: all defaults (--all-configs shows them)")
	case allConfigs:
		fmt.Fprintln(w, "Configs:")
	default:
		fmt.Fprintln(w, "Configs (not defaults; --all-configs shows all):")
	}
	tw := newTable(w)
	if len(d.Configs) > 0 {
		fmt.Fprintln(tw, "  NAME\tVALUE\tSOURCE")
		for _, c := range d.Configs {
			src := c.Source
			if c.SourceKey != "" {
				src += " (" + c.SourceKey + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Name, c.Value, src)
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	withErrors := slices.ContainsFunc(d.Partitions, func(p admin.PartitionDescription) bool { return p.Error != "" })
	tw = newTable(w)
	fmt.Fprint(tw, "PARTITION\tLEADER\tREPLICAS\tISR\tEARLIEST\tLATEST\tRECORDS\tSIZE")
	if withErrors {
		fmt.Fprint(tw, "\tERROR")
	}
	fmt.Fprintln(tw)
	for _, p := range d.Partitions {
		leader := "none"
		if p.Leader >= 0 {
			leader = strconv.Itoa(int(p.Leader))
		}
		size := "-"
		if p.SizeBytes >= 0 {
			size = humanBytes(p.SizeBytes)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s", p.Partition, leader, int32List(p.Replicas), int32List(p.ISR),
			offsetString(p.Earliest), offsetString(p.Latest), p.Records, size)
		if withErrors {
			fmt.Fprintf(tw, "\t%s", dash(p.Error))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	if d.Compacted {
		printCompaction(w, d, time.Now())
	}
}

// printCompaction shows, per partition of a compacted topic, the dirty
// ratio (bytes written since the last cleaning, over the closed segments)
// and the last cleaning pass.
func printCompaction(w io.Writer, d topicDescription, now time.Time) {
	fmt.Fprintln(w)
	if !slices.ContainsFunc(d.Partitions, func(p admin.PartitionDescription) bool { return p.Cleaner != nil }) {
		fmt.Fprintln(w, "Compaction: the cluster does not report its log cleaner's state (creek brokers do)")
		return
	}
	fmt.Fprintln(w, "Compaction:")
	tw := newTable(w)
	fmt.Fprintln(tw, "PARTITION\tDIRTY RATIO\tCLEAN\tDIRTY\tFIRST DIRTY\tLAST CLEANING")
	for _, p := range d.Partitions {
		st := p.Cleaner
		if st == nil {
			fmt.Fprintf(tw, "%d\t-\t-\t-\t-\t-\n", p.Partition)
			continue
		}
		fmt.Fprintf(tw, "%d\t%.0f%%\t%s\t%s\t%d\t%s\n", p.Partition, 100*st.DirtyRatio, humanBytes(st.CleanBytes), humanBytes(st.DirtyBytes),
			st.FirstDirtyOffset, lastCleaning(st.LastCleaning, now))
	}
	tw.Flush()
}

func lastCleaning(c *storage.CleaningStats, now time.Time) string {
	if c == nil {
		return "never"
	}
	ago := now.Sub(c.Start.Add(time.Duration(c.DurationMs) * time.Millisecond)).Round(time.Second)
	s := fmt.Sprintf("%s ago: offsets %d-%d, %s read, %s written, %d of %d records kept, %d tombstones removed, in %s",
		ago, c.FirstDirty, c.End-1, humanBytes(c.BytesRead), humanBytes(c.BytesWritten), c.RecordsKept, c.RecordsRead,
		c.TombstonesRemoved, (time.Duration(c.DurationMs) * time.Millisecond).String())
	if c.Error != "" {
		s += "; failed: " + c.Error
	}
	return s
}
