package group

import "time"

// consumerTimeouts are a consumer-protocol group's session timeout and
// heartbeat interval: its own group configs (consumer.session.timeout.ms,
// consumer.heartbeat.interval.ms) when set, else the broker's.
func (c *Coordinator) consumerTimeouts(group string) (session, heartbeat time.Duration) {
	session, heartbeat = c.cfg.ConsumerSessionTimeout, c.cfg.ConsumerHeartbeatInterval
	if c.cfg.GroupTimeouts != nil {
		s, h := c.cfg.GroupTimeouts(group)
		if s > 0 {
			session = s
		}
		if h > 0 {
			heartbeat = h
		}
	}
	return session, heartbeat
}
