package share

// Expiry: members whose session ended and acquisition locks that ran out.

// expire releases expired acquisition locks and removes members whose
// session expired; it runs every tenth of the lock duration (10 to 100 ms).
func (c *Coordinator) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	wake := false
	for _, g := range c.groups {
		for _, m := range g.members {
			if now.After(m.deadline) {
				c.logger.Info("share group member removed", "group", g.name, "member", m.id, "why", "session timeout")
				wake = c.removeMember(g, m) || wake
			}
		}
		for _, sp := range g.partitions {
			if sp.expire(now, c.groupCfg(g.name).DeliveryLimit) {
				wake = true
				g.dirty = sp.advance() || g.dirty
			}
		}
		c.save(g)
	}
	if wake {
		c.notifyLocked()
	}
}

// removeMember drops a member, its sessions and its locks.
func (c *Coordinator) removeMember(g *group, m *member) bool {
	delete(g.members, m.id)
	g.epoch++
	delete(c.sessions, sessionKey{g.name, m.id})
	released := false
	for _, sp := range g.partitions {
		released = sp.releaseMember(m.id, c.groupCfg(g.name).DeliveryLimit) || released
	}
	return released
}
