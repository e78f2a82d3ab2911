package group

import (
	"fmt"
	"testing"
)

func testMember(id string, topics ...string) *consumerMember {
	return &consumerMember{id: id, topics: topics}
}

func counts(out map[string]partitionSet, ids ...string) []int {
	var n []int
	for _, id := range ids {
		n = append(n, len(out[id]))
	}
	return n
}

// checkExact fails unless every partition of topics is assigned exactly once.
func checkExact(t *testing.T, out map[string]partitionSet, topics []assignTopic) {
	t.Helper()
	seen := map[topicIDPartition]string{}
	for id, s := range out {
		for p := range s {
			if other, dup := seen[p]; dup {
				t.Fatalf("partition %v assigned to %s and %s", p, other, id)
			}
			seen[p] = id
		}
	}
	for _, tp := range topics {
		for p := int32(0); p < tp.partitions; p++ {
			if _, ok := seen[topicIDPartition{tp.id, p}]; !ok {
				t.Fatalf("%s/%d is not assigned", tp.name, p)
			}
		}
	}
}

func TestAssignUniformBalancesAndSticks(t *testing.T) {
	topics := []assignTopic{{name: "a", id: [16]byte{1}, partitions: 7}, {name: "b", id: [16]byte{2}, partitions: 3}}
	m1, m2 := testMember("m1", "a", "b"), testMember("m2", "a", "b")
	out := assignUniform([]*consumerMember{m1, m2}, topics, nil)
	checkExact(t, out, topics)
	if c := counts(out, "m1", "m2"); c[0]+c[1] != 10 || c[0] != 5 {
		t.Fatalf("counts %v, want 5 and 5", c)
	}

	// A third member takes partitions from the others; nothing else moves.
	m3 := testMember("m3", "a", "b")
	next := assignUniform([]*consumerMember{m1, m2, m3}, topics, out)
	checkExact(t, next, topics)
	c := counts(next, "m1", "m2", "m3")
	for _, n := range c {
		if n < 3 || n > 4 {
			t.Fatalf("counts %v, want 3 or 4 each", c)
		}
	}
	for _, id := range []string{"m1", "m2"} {
		for p := range next[id] {
			if !out[id].has(p) {
				t.Fatalf("%s was given %v, which it did not have: only the new member should gain", id, p)
			}
		}
	}
}

func TestAssignUniformHonoursSubscriptions(t *testing.T) {
	topics := []assignTopic{{name: "a", id: [16]byte{1}, partitions: 4}, {name: "b", id: [16]byte{2}, partitions: 4}}
	both, onlyA := testMember("m1", "a", "b"), testMember("m2", "a")
	out := assignUniform([]*consumerMember{both, onlyA}, topics, nil)
	checkExact(t, out, topics)
	for p := range out["m2"] {
		if p.id == ([16]byte{2}) {
			t.Fatalf("m2 does not read b but got %v", p)
		}
	}
	if c := counts(out, "m1", "m2"); c[0] != 4 || c[1] != 4 {
		t.Fatalf("counts %v, want 4 and 4 (m2 takes all of a)", c)
	}
}

func TestAssignRangeIsContiguous(t *testing.T) {
	topics := []assignTopic{{name: "a", id: [16]byte{1}, partitions: 5}, {name: "b", id: [16]byte{2}, partitions: 5}}
	m1, m2 := testMember("m1", "a", "b"), testMember("m2", "a", "b")
	out := assignRange([]*consumerMember{m1, m2}, topics)
	checkExact(t, out, topics)
	got := func(id string, topic [16]byte) string {
		_, parts := out[id].byTopic()
		return fmt.Sprint(parts[topic])
	}
	for _, topic := range [][16]byte{{1}, {2}} {
		if got("m1", topic) != "[0 1 2]" || got("m2", topic) != "[3 4]" {
			t.Fatalf("range gave %s and %s, want [0 1 2] and [3 4] of every topic", got("m1", topic), got("m2", topic))
		}
	}
}
