package share

import (
	"time"
)

// A share partition is one partition as a share group sees it (KIP-932):
// records before the start offset are done; records from it up to the
// in-flight end each have a state. A consumer acquires available records
// for a while (the acquisition lock), and then accepts them (done), releases
// them (available again) or rejects them (archived, never delivered again).
// A lock that expires makes its records available again; a record delivered
// deliveryLimit times is archived instead.

type recordState uint8

const (
	available recordState = iota
	acquired
	acknowledged
	archived
)

// record is the state of one in-flight offset.
type record struct {
	state      recordState
	deliveries int16
	member     string    // holder while acquired
	lockUntil  time.Time // while acquired
}

// sharePartition is a partition's share state for one group.
type sharePartition struct {
	topic     string
	partition int32
	start     int64    // share-partition start offset: everything before is done
	inflight  []record // states of offsets start, start+1, ...
}

// end is the first offset not yet tracked.
func (sp *sharePartition) end() int64 { return sp.start + int64(len(sp.inflight)) }

func (sp *sharePartition) at(offset int64) *record {
	if offset < sp.start || offset >= sp.end() {
		return nil
	}
	return &sp.inflight[offset-sp.start]
}

// advance drops finished records from the front; it reports whether the
// start offset moved.
func (sp *sharePartition) advance() bool {
	n := 0
	for n < len(sp.inflight) && (sp.inflight[n].state == acknowledged || sp.inflight[n].state == archived) {
		n++
	}
	if n == 0 {
		return false
	}
	sp.inflight = append(sp.inflight[:0], sp.inflight[n:]...)
	sp.start += int64(n)
	return true
}

// skipTo moves the start to the log start offset when retention or
// DeleteRecords removed records the group had not finished.
func (sp *sharePartition) skipTo(logStart int64) {
	if logStart <= sp.start {
		return
	}
	drop := min(logStart-sp.start, int64(len(sp.inflight)))
	sp.inflight = append(sp.inflight[:0], sp.inflight[drop:]...)
	sp.start = logStart
}

// acquireRange is a run of offsets acquired with the same delivery count.
type acquireRange struct {
	first, last int64
	deliveries  int16
}

// acquire locks for member up to count available records in [from, upTo],
// tracking new offsets up to maxInflight records past the start.
func (sp *sharePartition) acquire(member string, from, upTo int64, count int, maxInflight int64, lockUntil time.Time) []acquireRange {
	for sp.end() <= upTo && sp.end()-sp.start < maxInflight {
		sp.inflight = append(sp.inflight, record{})
	}
	var out []acquireRange
	for off := max(from, sp.start); off <= upTo && off < sp.end() && count > 0; off++ {
		r := sp.at(off)
		if r.state != available {
			continue
		}
		r.state, r.member, r.lockUntil = acquired, member, lockUntil
		r.deliveries++
		count--
		if n := len(out); n > 0 && out[n-1].last == off-1 && out[n-1].deliveries == r.deliveries {
			out[n-1].last = off
		} else {
			out = append(out, acquireRange{off, off, r.deliveries})
		}
	}
	return out
}

// firstAvailable is the first offset a fetch could acquire, or the in-flight
// end when every tracked record is taken.
func (sp *sharePartition) firstAvailable() int64 {
	for i, r := range sp.inflight {
		if r.state == available {
			return sp.start + int64(i)
		}
	}
	return sp.end()
}

// Acknowledge types (KIP-932; 4 is KIP-1222's renew).
const (
	ackGap     = 0
	ackAccept  = 1
	ackRelease = 2
	ackReject  = 3
	ackRenew   = 4
)

// acknowledge applies one acknowledgement to a record member holds.
func (sp *sharePartition) acknowledge(member string, offset int64, kind int8, deliveryLimit int16, lockUntil time.Time) bool {
	r := sp.at(offset)
	if r == nil || r.state != acquired || r.member != member {
		return false
	}
	switch kind {
	case ackGap, ackAccept:
		r.state = acknowledged
	case ackReject:
		r.state = archived
	case ackRelease:
		sp.makeAvailable(r, deliveryLimit)
	case ackRenew:
		r.lockUntil = lockUntil
		return true
	default:
		return false
	}
	r.member = ""
	return true
}

// makeAvailable returns a record to the pool, or archives it once it has
// been delivered as often as allowed.
func (sp *sharePartition) makeAvailable(r *record, deliveryLimit int16) {
	r.member = ""
	if r.deliveries >= deliveryLimit {
		r.state = archived
		return
	}
	r.state = available
}

// expire releases records whose lock passed; it reports whether any were.
func (sp *sharePartition) expire(now time.Time, deliveryLimit int16) bool {
	released := false
	for i := range sp.inflight {
		r := &sp.inflight[i]
		if r.state == acquired && !now.Before(r.lockUntil) {
			sp.makeAvailable(r, deliveryLimit)
			released = true
		}
	}
	return released
}

// releaseMember releases everything a member holds (it left or closed its
// session).
func (sp *sharePartition) releaseMember(member string, deliveryLimit int16) bool {
	released := false
	for i := range sp.inflight {
		r := &sp.inflight[i]
		if r.state == acquired && r.member == member {
			sp.makeAvailable(r, deliveryLimit)
			released = true
		}
	}
	return released
}

// done counts the tracked records already finished (accepted or archived),
// which do not count as lag.
func (sp *sharePartition) done() int64 {
	n := int64(0)
	for _, r := range sp.inflight {
		if r.state == acknowledged || r.state == archived {
			n++
		}
	}
	return n
}
