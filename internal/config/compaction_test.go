package config

import (
	"strings"
	"testing"
)

func TestCompactionConfigs(t *testing.T) {
	for _, c := range []struct {
		name, value, want, err string
	}{
		{"cleanup.policy", "compact", "compact", ""},
		{"cleanup.policy", "compact,delete", "compact,delete", ""},
		{"cleanup.policy", "delete, compact", "delete, compact", ""},
		{"cleanup.policy", "compacted", "", `"compacted" is not a cleanup policy`},
		{"min.cleanable.dirty.ratio", "0.25", "0.25", ""},
		{"min.cleanable.dirty.ratio", "1", "1", ""},
		{"min.cleanable.dirty.ratio", "1.5", "", "must be from 0 to 1"},
		{"min.cleanable.dirty.ratio", "-0.1", "", "must be at least 0"},
		{"min.cleanable.dirty.ratio", "half", "", "must be a number"},
		{"min.cleanable.dirty.ratio", "NaN", "", "must be a number"},
		{"delete.retention.ms", "-1", "", "must be at least 0"},
		{"max.compaction.lag.ms", "0", "", "must be at least 1"},
	} {
		got, err := ValidateTopicConfigs(map[string]string{c.name: c.value})
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s=%s: %v", c.name, c.value, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s=%s: error %v, want one saying %q", c.name, c.value, err, c.err)
		case c.err == "" && got[c.name] != c.want:
			t.Errorf("%s=%s normalised to %q, want %q", c.name, c.value, got[c.name], c.want)
		}
	}
	for v, want := range map[string][2]bool{"delete": {true, false}, "compact": {false, true}, "compact,delete": {true, true}, "delete, compact": {true, true}} {
		if d, c := CleanupPolicy(v); d != want[0] || c != want[1] {
			t.Errorf("CleanupPolicy(%q) = %v, %v, want %v", v, d, c, want)
		}
	}
	b, err := NewBrokerValues(map[string]string{"log.cleaner.io.max.bytes.per.second": "5e7"})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Float64("log.cleaner.io.max.bytes.per.second"); got != 5e7 {
		t.Fatalf("log.cleaner.io.max.bytes.per.second=5e7 reads %v", got)
	}
}
