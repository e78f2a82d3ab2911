package share

import "sort"

// Store persists each share group and the start offsets of its partitions,
// and the group configs (share.auto.offset.reset), which may be set before
// the group exists. Records in flight past the start are not persisted:
// after a restart they are delivered again (at least once, never lost).
type Store interface {
	LoadShareGroups() ([]StoredGroup, error)
	SaveShareGroup(g StoredGroup) error
	DeleteShareGroup(name string) error
	LoadGroupConfigs() (map[string]map[string]string, error)
	SaveGroupConfig(group string, configs map[string]string) error
}

// StoredGroup is a share group as persisted.
type StoredGroup struct {
	Name   string        `json:"name"`
	Starts []StoredStart `json:"starts"`
}

// StoredStart is one partition's share-partition start offset.
type StoredStart struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Start     int64  `json:"start"`
}

// save writes a group's start offsets if they changed; each request saves
// once at its end. A failure is logged: it costs records delivered again
// after a restart, never records lost.
func (c *Coordinator) save(g *group) {
	if !g.dirty {
		return
	}
	g.dirty = false
	sg := StoredGroup{Name: g.name}
	for _, sp := range g.sortedPartitions() {
		sg.Starts = append(sg.Starts, StoredStart{Topic: sp.topic, Partition: sp.partition, Start: sp.start})
	}
	if err := c.store.SaveShareGroup(sg); err != nil {
		c.logger.Warn("could not persist share group state", "group", g.name, "err", err)
	}
}

func (g *group) sortedPartitions() []*sharePartition {
	out := make([]*sharePartition, 0, len(g.partitions))
	for _, sp := range g.partitions {
		out = append(out, sp)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.topic < b.topic || a.topic == b.topic && a.partition < b.partition
	})
	return out
}
