package share

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ---- group configs ----

// AutoOffsetReset is the group config that says where a share group starts
// reading a partition it has no state for: latest (the default) or earliest.
const AutoOffsetReset = "share.auto.offset.reset"

// GroupConfig returns a group's value of a group config and whether it was
// set (otherwise the default is returned).
func (c *Coordinator) GroupConfig(group, name string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.configs[group][name]; ok {
		return v, true
	}
	return "latest", false
}

// SetGroupConfig sets (or, with value nil, deletes) a group config.
func (c *Coordinator) SetGroupConfig(group, name string, value *string, validateOnly bool) error {
	if name != AutoOffsetReset {
		return fmt.Errorf("%w: %s is not a group config here (only %s)", kerr.InvalidConfig, name, AutoOffsetReset)
	}
	if value != nil && *value != "latest" && *value != "earliest" {
		return fmt.Errorf("%w: %s must be latest or earliest, got %q", kerr.InvalidConfig, name, *value)
	}
	if group == "" || len(group) > MaxNameBytes {
		return fmt.Errorf("%w: the group name is empty or longer than %d bytes", kerr.InvalidGroupID, MaxNameBytes)
	}
	if validateOnly {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	next := map[string]string{}
	for k, v := range c.configs[group] {
		next[k] = v
	}
	if value == nil {
		delete(next, name)
	} else {
		next[name] = *value
	}
	if err := c.store.SaveGroupConfig(group, next); err != nil {
		return fmt.Errorf("%w: %v", kerr.KafkaStorageError, err)
	}
	c.configs[group] = next
	return nil
}
