package group

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
		g.offsets[topicPartition{o.Topic, o.Partition}] = o.committed()
	}
	sg := g.stored()
	sg.Offsets = offsets
	c.storeMu.Lock()
	c.mu.Unlock()
	defer c.storeMu.Unlock()
	return c.store.SaveGroup(sg)
}
