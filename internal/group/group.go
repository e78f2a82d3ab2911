package group

import (
	"time"

	"github.com/creek-pipeline/creek/internal/clock"
)

// The group and member records. A group is classic, or a consumer group
// when cg is set; the coordinator's mutex guards all of it.

// Group states, named as Kafka reports them.
type state int

const (
	stateEmpty state = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
)

func (s state) String() string {
	return [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable"}[s]
}

type committed struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	at          time.Time
}

// group is one consumer group. The coordinator's mutex guards it.
type group struct {
	c    *Coordinator
	name string

	state        state
	protocolType string
	protocol     string // chosen for the current generation
	generation   int32
	leader       string
	members      map[string]*member
	static       map[string]string    // group.instance.id -> member id
	pending      map[string]time.Time // member ids handed out with MEMBER_ID_REQUIRED -> expiry
	offsets      map[TopicPartition]committed
	emptySince   time.Time
	rebalancedAt time.Time // when the last rebalance's join phase ended

	cg *consumerGroup // set for a KIP-848 group (type "consumer"), nil for a classic group

	rebalanceDeadline time.Time // members that have not rejoined by then are dropped
	joinNotBefore     time.Time // group.initial.rebalance.delay.ms for a group that was empty
	timer             clock.Timer
}

// hasMembers reports whether any member, of either protocol, is in the group.
func (g *group) hasMembers() bool {
	if g.cg != nil && len(g.cg.members) > 0 {
		return true
	}
	return len(g.members) > 0 || len(g.pending) > 0 || g.state != stateEmpty
}
