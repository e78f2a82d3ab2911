package group

import "github.com/twmb/franz-go/pkg/kerr"

// CommitTransactional applies offsets a transaction committed
// (TxnOffsetCommit followed by EndTxn with commit), creating the group if
// it has none yet. It is called by the transaction coordinator, which has
// already checked the producer; the group's generation does not apply.
func (c *Coordinator) CommitTransactional(groupName string, offsets []StoredOffset) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	g := c.groupFor(groupName, true)
	now := c.now()
	for i := range offsets {
		offsets[i].CommitTime = now
		o := offsets[i]
		g.offsets[TopicPartition{o.Topic, o.Partition}] = o.committed()
	}
	sg := g.stored()
	sg.Offsets = offsets
	c.storeMu.Lock()
	c.mu.Unlock()
	defer c.storeMu.Unlock()
	return c.store.SaveGroup(sg)
}

// NoteTxnCommit makes the group of a transactional offset commit, empty,
// if it does not exist, as Kafka makes a simple group for it: the group is
// listed, and its members can be checked, before the transaction ends.
func (c *Coordinator) NoteTxnCommit(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.groupFor(name, true)
	}
}

// CheckTxnCommit fences a transactional offset commit (TxnOffsetCommit v3+,
// KIP-447) from a group member that is no longer current: a consumer that
// lost its partitions in a rebalance cannot commit offsets for them. A
// commit without member (generation -1) is checked only by its producer.
func (c *Coordinator) CheckTxnCommit(name, memberID string, instanceID *string, generation int32) *kerr.Error {
	if generation < 0 && memberID == "" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[name]
	switch {
	case g == nil:
		return kerr.GroupIDNotFound // as Kafka 4 (ILLEGAL_GENERATION before TxnOffsetCommit v6)
	case g.cg != nil:
		m := g.cg.members[memberID]
		if m == nil {
			return kerr.UnknownMemberID
		}
		if generation != m.epoch {
			return kerr.IllegalGeneration
		}
		return nil
	}
	if instanceID != nil {
		if e := g.checkInstance(*instanceID, memberID); e != nil {
			return e
		}
	}
	switch {
	case g.members[memberID] == nil:
		return kerr.UnknownMemberID
	case generation != g.generation:
		return kerr.IllegalGeneration
	}
	return nil
}
