package group

import (
	"github.com/twmb/franz-go/pkg/kerr"
)

// Listing and deleting classic and consumer groups, which the Front serves
// across kinds once it has looked the name up.

// listed is every classic and consumer group as ListGroups reports them;
// ok is false once the coordinator is closed.
func (c *Coordinator) listed() (all []Listed, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, false
	}
	for _, g := range c.groups {
		l := Listed{Name: g.name, ProtocolType: g.protocolType, State: g.state.String(), Type: "classic"}
		if g.cg != nil {
			l.State, l.Type = g.cg.state(), "consumer"
		}
		all = append(all, l)
	}
	return all, true
}

// deleteGroup deletes a group without members with its committed offsets.
func (c *Coordinator) deleteGroup(name string) *kerr.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[name]
	switch {
	case g == nil:
		return kerr.GroupIDNotFound
	case g.hasMembers():
		return kerr.NonEmptyGroup
	}
	if err := c.inStoreOrder(func() error { return c.store.DeleteGroup(name, g.offsetPartitions()) }); err != nil {
		c.logger.Error("could not delete group", "group", name, "err", err)
		return kerr.KafkaStorageError
	}
	g.stopTimers()
	delete(c.groups, name)
	c.logger.Info("group deleted", "group", name)
	return nil
}
