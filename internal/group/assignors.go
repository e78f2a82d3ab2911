package group

// The server-side assignors of consumer-protocol groups (KIP-848). Both are
// pure functions of the members (sorted by id), their subscriptions and the
// topics; uniform also keeps partitions where the previous target had them.

// assignTopic is a subscribed topic as the assignors see it.
type assignTopic struct {
	name       string
	id         [16]byte
	partitions int32
}

// assignRange gives each member of a topic a contiguous range of its
// partitions, the first members one more when they do not divide evenly. As
// members are in the same order for every topic, members subscribing to the
// same topics get the same partition numbers of each (co-partitioning).
func assignRange(members []*consumerMember, topics []assignTopic) map[string]partitionSet {
	out := make(map[string]partitionSet, len(members))
	for _, m := range members {
		out[m.id] = partitionSet{}
	}
	for _, t := range topics {
		var subs []*consumerMember
		for _, m := range members {
			if m.subscribes(t.name) {
				subs = append(subs, m)
			}
		}
		if len(subs) == 0 {
			continue
		}
		n := int32(len(subs))
		per, extra := t.partitions/n, t.partitions%n
		next := int32(0)
		for i, m := range subs {
			count := per
			if int32(i) < extra {
				count++
			}
			for p := next; p < next+count; p++ {
				out[m.id][topicIDPartition{t.id, p}] = struct{}{}
			}
			next += count
		}
	}
	return out
}

// assignUniform spreads partitions so that member counts differ by at most
// one where subscriptions allow, moving as few partitions as it can: a
// partition stays with the member the previous target gave it to while
// that member still subscribes to it, new or orphaned partitions go to the
// least loaded subscriber, and then partitions move from the most to the
// least loaded members until no move improves the balance.
func assignUniform(members []*consumerMember, topics []assignTopic, previous map[string]partitionSet) map[string]partitionSet {
	out := make(map[string]partitionSet, len(members))
	byID := make(map[string]*consumerMember, len(members))
	for _, m := range members {
		out[m.id] = partitionSet{}
		byID[m.id] = m
	}
	type part struct {
		tp    topicIDPartition
		topic string
	}
	var all []part
	for _, t := range topics {
		for p := int32(0); p < t.partitions; p++ {
			all = append(all, part{topicIDPartition{t.id, p}, t.name})
		}
	}
	owner := map[topicIDPartition]string{}
	for _, m := range members {
		for tp := range previous[m.id] {
			if _, taken := owner[tp]; !taken {
				owner[tp] = m.id
			}
		}
	}
	subscribers := func(topic string) []*consumerMember {
		var subs []*consumerMember
		for _, m := range members {
			if m.subscribes(topic) {
				subs = append(subs, m)
			}
		}
		return subs
	}
	leastLoaded := func(subs []*consumerMember) *consumerMember {
		var best *consumerMember
		for _, m := range subs {
			if best == nil || len(out[m.id]) < len(out[best.id]) {
				best = m
			}
		}
		return best
	}

	subsOf := map[string][]*consumerMember{}
	var orphans []part
	for _, p := range all {
		subs, ok := subsOf[p.topic]
		if !ok {
			subs = subscribers(p.topic)
			subsOf[p.topic] = subs
		}
		if len(subs) == 0 {
			continue
		}
		if id, ok := owner[p.tp]; ok && byID[id].subscribes(p.topic) {
			out[id][p.tp] = struct{}{}
			continue
		}
		orphans = append(orphans, p)
	}
	for _, p := range orphans {
		m := leastLoaded(subsOf[p.topic])
		out[m.id][p.tp] = struct{}{}
	}

	// Balance: move a partition from a member to a subscriber with at
	// least two fewer. Each move lowers the sum of squared counts, so this
	// ends.
	for moved := true; moved; {
		moved = false
		for _, p := range all {
			subs := subsOf[p.topic]
			var from string
			for _, m := range subs {
				if out[m.id].has(p.tp) {
					from = m.id
					break
				}
			}
			if from == "" {
				continue
			}
			to := leastLoaded(subs)
			if len(out[to.id])+1 < len(out[from]) {
				delete(out[from], p.tp)
				out[to.id][p.tp] = struct{}{}
				moved = true
			}
		}
	}
	return out
}
