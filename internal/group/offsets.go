package group

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ---- OffsetCommit ----

// newCommitResponse is the answer to an OffsetCommit: each topic and
// partition it names, without an error yet.
func newCommitResponse(req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// Commit handles OffsetCommit. A member commits within its generation; a
// client outside group management (generation -1) may commit to a group
// without members, as with Kafka. Offsets are durable when it returns.
func (c *Coordinator) Commit(cl Client, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := newCommitResponse(req)
	setAll := func(e *kerr.Error) *kmsg.OffsetCommitResponse {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = e.Code
			}
		}
		return resp
	}
	// The empty group id is allowed, as in Kafka: old consumers without a
	// group commit under it.
	if tooLong(req.Group) {
		return setAll(kerr.InvalidGroupID)
	}

	c.mu.Lock()
	locked := true
	defer func() {
		if locked {
			c.mu.Unlock()
		}
	}()
	if c.closed {
		return setAll(kerr.NotCoordinator)
	}
	g := c.groups[req.Group]
	if g == nil && req.Generation >= 0 {
		return setAll(kerr.IllegalGeneration)
	}
	g = c.groupFor(req.Group, true)
	if e := g.canCommit(req); e != nil {
		c.forgetIfUnused(g)
		return setAll(e)
	}

	now := c.now()
	var saved []StoredOffset
	for i, rt := range req.Topics {
		name := rt.Topic
		var partitions int32
		var ok bool
		if req.Version >= 10 {
			name, partitions, ok = c.topics.TopicByID(rt.TopicID)
		} else {
			_, partitions, ok = c.topics.TopicByName(rt.Topic)
		}
		for j, rp := range rt.Partitions {
			sp := &resp.Topics[i].Partitions[j]
			switch {
			case !ok || rp.Partition < 0 || rp.Partition >= partitions:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				if req.Version >= 10 {
					sp.ErrorCode = kerr.UnknownTopicID.Code
				}
				continue
			case rp.Metadata != nil && len(*rp.Metadata) > c.MaxMetadataBytes():
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			o := StoredOffset{Topic: name, Partition: rp.Partition, Offset: rp.Offset, LeaderEpoch: -1, CommitTime: now}
			if req.Version >= 6 {
				o.LeaderEpoch = rp.LeaderEpoch
			}
			if rp.Metadata != nil {
				o.Metadata = *rp.Metadata
			}
			saved = append(saved, o)
			g.offsets[TopicPartition{name, rp.Partition}] = o.committed()
		}
	}
	if m := g.members[req.MemberID]; m != nil {
		m.deadline = now.Add(m.sessionTimeout) // a commit shows the member is alive
	}
	if len(saved) == 0 {
		return resp
	}
	sg := g.stored()
	sg.Offsets = saved
	// Write outside the coordinator lock, but in commit order.
	c.storeMu.Lock()
	c.mu.Unlock()
	locked = false
	err := c.store.SaveGroup(sg)
	c.storeMu.Unlock()
	if err != nil {
		c.logger.Error("could not persist committed offsets", "group", req.Group, "err", err)
		setAll(kerr.KafkaStorageError)
	}
	return resp
}

// inStoreOrder makes a deletion in the store (c.mu is held) after every
// commit that has left c.mu but is still being written: a group deleted
// while a commit to it is on its way to disk stays deleted.
func (c *Coordinator) inStoreOrder(change func() error) error {
	c.storeMu.Lock()
	defer c.storeMu.Unlock()
	return change()
}

// MaxMetadataBytes is the longest metadata an offset commit may carry:
// offset.metadata.max.bytes, but never more than OffsetFetch v0-v5 can
// answer with.
func (c *Coordinator) MaxMetadataBytes() int { return min(c.cfg.MaxMetadataBytes, MaxNameBytes) }

// canCommit applies Kafka's rules for who may commit to a group.
func (g *group) canCommit(req *kmsg.OffsetCommitRequest) *kerr.Error {
	if g.cg != nil {
		return g.checkConsumerCommit(req.Version, req.MemberID, req.Generation)
	}
	if req.Generation < 0 && g.state == stateEmpty {
		return nil // a client that manages partitions itself
	}
	if req.InstanceID != nil {
		if e := g.checkInstance(*req.InstanceID, req.MemberID); e != nil {
			return e
		}
	}
	switch {
	case g.members[req.MemberID] == nil:
		return kerr.UnknownMemberID
	case req.Generation != g.generation:
		return kerr.IllegalGeneration
	case g.state == stateCompletingRebalance:
		return kerr.RebalanceInProgress
	}
	return nil
}

// offsetPartitions names the partitions the group has offsets for, in
// order.
func (g *group) offsetPartitions() []TopicPartition {
	tps := slices.Collect(maps.Keys(g.offsets))
	slices.SortFunc(tps, func(a, b TopicPartition) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return tps
}

func (g *group) stored() StoredGroup {
	sg := StoredGroup{Name: g.name, ProtocolType: g.protocolType, EmptySince: g.emptySince}
	if g.cg != nil {
		sg.Type = "consumer"
	}
	return sg
}

// persistMeta writes the group's metadata (protocol type, when it became
// empty) without offsets. Failures are logged: the metadata only tunes
// offset retention.
func (g *group) persistMeta() {
	if err := g.c.store.SaveGroup(g.stored()); err != nil {
		g.c.logger.Warn("could not persist group metadata", "group", g.name, "err", err)
	}
}

// recordMembership tells the store the classic group's membership, after
// it was made by a join, completed a rebalance or became empty (where
// Kafka logs its group metadata record). Failures are logged: nothing is
// loaded from it.
func (g *group) recordMembership() {
	if err := g.c.store.RecordMembership(g.name, g.membership()); err != nil {
		g.c.logger.Warn("could not record group membership", "group", g.name, "err", err)
	}
}

// membership is the classic group's state as Kafka's group metadata
// record holds it: members (by id) with the subscription of the chosen
// protocol and their assignment, none while the group is empty.
func (g *group) membership() *kmsg.GroupMetadataValue {
	v := kmsg.NewGroupMetadataValue()
	v.Version = 3
	v.ProtocolType, v.Generation = g.protocolType, g.generation
	if g.state == stateEmpty {
		v.CurrentStateTimestamp, v.Members = g.emptySince.UnixMilli(), []kmsg.GroupMetadataValueMember{}
		return &v
	}
	v.CurrentStateTimestamp = g.rebalancedAt.UnixMilli()
	protocol, leader := g.protocol, g.leader
	v.Protocol, v.Leader = &protocol, &leader
	for _, id := range slices.Sorted(maps.Keys(g.members)) {
		m := g.members[id]
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID, vm.InstanceID, vm.ClientID, vm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
		vm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout.Milliseconds())
		vm.SessionTimeoutMillis = int32(m.sessionTimeout.Milliseconds())
		for _, p := range m.protocols {
			if p.Name == g.protocol {
				vm.Subscription = p.Metadata
			}
		}
		vm.Assignment = m.assignment
		v.Members = append(v.Members, vm)
	}
	return &v
}

// ---- OffsetFetch ----

// Fetch handles OffsetFetch: one group before v8, several from v8. A
// partition without a committed offset reads -1.
func (c *Coordinator) Fetch(cl Client, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	if req.Version < 8 {
		rg := kmsg.OffsetFetchRequestGroup{Group: req.Group}
		for _, t := range req.Topics {
			rg.Topics = append(rg.Topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
		}
		if req.Topics == nil {
			rg.Topics = nil
		}
		sg := c.fetchGroup(req.Version, rg)
		resp.ErrorCode = sg.ErrorCode
		for _, t := range sg.Topics {
			st := kmsg.NewOffsetFetchResponseTopic()
			st.Topic = t.Topic
			for _, p := range t.Partitions {
				sp := kmsg.NewOffsetFetchResponseTopicPartition()
				sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata, sp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
	for _, rg := range req.Groups {
		resp.Groups = append(resp.Groups, c.fetchGroup(req.Version, rg))
	}
	return resp
}

func (c *Coordinator) fetchGroup(version int16, rg kmsg.OffsetFetchRequestGroup) kmsg.OffsetFetchResponseGroup {
	sg := kmsg.NewOffsetFetchResponseGroup()
	sg.Group = rg.Group
	if c.closed { // the empty group id is allowed, as for OffsetCommit
		sg.ErrorCode = kerr.NotCoordinator.Code
		return sg
	}
	g := c.groups[rg.Group]
	if g != nil && g.cg != nil && version >= 9 {
		if e := g.checkConsumerFetch(rg.MemberID, rg.MemberEpoch); e != nil {
			sg.ErrorCode = e.Code
			return sg
		}
	}
	topics := rg.Topics
	if topics == nil && g != nil { // every committed offset
		parts := map[string][]int32{}
		for tp := range g.offsets {
			parts[tp.Topic] = append(parts[tp.Topic], tp.Partition)
		}
		for _, name := range slices.Sorted(maps.Keys(parts)) {
			t := kmsg.OffsetFetchRequestGroupTopic{Topic: name, Partitions: parts[name]}
			slices.Sort(t.Partitions)
			t.TopicID, _, _ = c.topics.TopicByName(name)
			topics = append(topics, t)
		}
	}
	for _, rt := range topics {
		st := kmsg.NewOffsetFetchResponseGroupTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		name, unknownID := rt.Topic, false
		if version >= 10 && rg.Topics != nil { // v10 names topics by id (KIP-848)
			n, _, ok := c.topics.TopicByID(rt.TopicID)
			name, unknownID = n, !ok
		}
		for _, p := range rt.Partitions {
			sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			sp.Partition, sp.Offset, sp.LeaderEpoch = p, -1, -1
			if unknownID {
				sp.ErrorCode = kerr.UnknownTopicID.Code
			} else if g != nil {
				if o, ok := g.offsets[TopicPartition{name, p}]; ok {
					sp.Offset, sp.LeaderEpoch, sp.Metadata = o.offset, o.leaderEpoch, kmsg.StringPtr(o.metadata)
				}
			}
			if sp.Metadata == nil {
				sp.Metadata = kmsg.StringPtr("")
			}
			st.Partitions = append(st.Partitions, sp)
		}
		sg.Topics = append(sg.Topics, st)
	}
	return sg
}

// ---- OffsetDelete ----

// DeleteOffsets handles OffsetDelete (after the Front's lookup): offsets of
// topics the group's members are not subscribed to can be deleted.
func (c *Coordinator) DeleteOffsets(cl Client, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[req.Group] // the Front looked it up
	switch {
	case g == nil:
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp
	case g.state != stateEmpty && g.protocolType != "consumer":
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		return resp
	}
	subscribed := g.subscribedTopics()
	var gone []TopicPartition
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = rp.Partition
			if subscribed[rt.Topic] {
				sp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			} else {
				delete(g.offsets, TopicPartition{rt.Topic, rp.Partition})
				gone = append(gone, TopicPartition{rt.Topic, rp.Partition})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(gone) > 0 {
		if err := c.inStoreOrder(func() error { return c.store.DeleteOffsets(g.name, gone) }); err != nil {
			c.logger.Error("could not persist deleted offsets", "group", g.name, "err", err)
			resp.ErrorCode = kerr.KafkaStorageError.Code
		}
	}
	return resp
}

// subscribedTopics reads the topics the members subscribe to from their
// "consumer" protocol metadata.
func (g *group) subscribedTopics() map[string]bool {
	out := map[string]bool{}
	if g.cg != nil {
		for _, t := range g.subscribedTopics848() {
			out[t] = true
		}
		return out
	}
	if g.protocolType != "consumer" {
		return out
	}
	for _, m := range g.members {
		for _, p := range m.protocols {
			var meta kmsg.ConsumerMemberMetadata
			if meta.ReadFrom(p.Metadata) == nil {
				for _, t := range meta.Topics {
					out[t] = true
				}
			}
		}
	}
	return out
}

// ---- expiry ----

// ExpireOffsets deletes offsets past offsets.retention.minutes: for a group
// using group management, once it has been empty that long; for a group
// whose clients commit without joining, per offset since its commit. A group
// left empty and without offsets is forgotten.
func (c *Coordinator) ExpireOffsets() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	now := c.now()
	for _, g := range c.sortedGroups() {
		if g.hasMembers() {
			continue
		}
		var gone []TopicPartition
		for _, tp := range g.offsetPartitions() {
			o := g.offsets[tp]
			since := o.at
			if g.protocolType != "" && g.emptySince.After(since) {
				since = g.emptySince
			}
			if now.Sub(since) > c.cfg.OffsetsRetention {
				delete(g.offsets, tp)
				gone = append(gone, tp)
			}
		}
		if len(g.offsets) == 0 {
			delete(c.groups, g.name)
			if err := c.inStoreOrder(func() error { return c.store.DeleteGroup(g.name, gone) }); err != nil {
				c.logger.Warn("could not delete expired group", "group", g.name, "err", err)
			}
			c.logger.Info("group expired", "group", g.name)
			continue
		}
		if len(gone) > 0 {
			if err := c.inStoreOrder(func() error { return c.store.DeleteOffsets(g.name, gone) }); err != nil {
				c.logger.Warn("could not delete expired offsets", "group", g.name, "err", err)
			}
			c.logger.Info("offsets expired", "group", g.name, "partitions", len(gone))
		}
	}
}

// ForgetTopic deletes every group's committed offsets of a deleted topic,
// so that a topic created again under the same name starts fresh.
func (c *Coordinator) ForgetTopic(topic string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range c.sortedGroups() {
		var gone []TopicPartition
		for _, tp := range g.offsetPartitions() {
			if tp.Topic == topic {
				delete(g.offsets, tp)
				gone = append(gone, tp)
			}
		}
		if len(gone) > 0 {
			if err := c.inStoreOrder(func() error { return c.store.DeleteOffsets(g.name, gone) }); err != nil {
				c.logger.Warn("could not delete offsets of a deleted topic", "group", g.name, "topic", topic, "err", err)
			}
		}
	}
}
