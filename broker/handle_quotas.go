package broker

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/auth"
	"github.com/creek-pipeline/creek/internal/quota"
)

// Client quotas (KIP-546): stored with DescribeClientQuotas and
// AlterClientQuotas as Kafka stores them, and enforced on produce and fetch
// byte rates (producer_byte_rate, consumer_byte_rate) as Kafka enforces
// them: the answer carries the time the client is asked to wait, and the
// broker reads nothing more from that connection meanwhile (KIP-219).
// request_percentage, controller_mutation_rate and connection_creation_rate
// are stored and described but not enforced.

func init() {
	register(kmsg.DescribeClientQuotas, 0, handleDescribeClientQuotas)
	register(kmsg.AlterClientQuotas, 0, handleAlterClientQuotas)
}

func handleDescribeClientQuotas(b *Broker, r *request, req *kmsg.DescribeClientQuotasRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	var filters []quota.Match
	for _, c := range req.Components {
		f := quota.Match{Type: c.EntityType, Kind: int8(c.MatchType)}
		if c.Match != nil {
			f.Name = *c.Match
		}
		filters = append(filters, f)
	}
	entries, err := b.quotas.Describe(filters, req.Strict)
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = kerr.UnsupportedVersion.Code, stringPtr(err.Error()) // Kafka's code for an unknown entity type
		return resp
	}
	resp.ErrorMessage = stringPtr("")
	resp.Entries = []kmsg.DescribeClientQuotasResponseEntry{}
	for _, e := range entries {
		re := kmsg.NewDescribeClientQuotasResponseEntry()
		for _, c := range e.Entity {
			re.Entity = append(re.Entity, kmsg.DescribeClientQuotasResponseEntryEntity{Type: c.Type, Name: c.Name})
		}
		for k, v := range e.Values {
			re.Values = append(re.Values, kmsg.DescribeClientQuotasResponseEntryValue{Key: k, Value: v})
		}
		resp.Entries = append(resp.Entries, re)
	}
	return resp
}

func handleAlterClientQuotas(b *Broker, r *request, req *kmsg.AlterClientQuotasRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	for _, re := range req.Entries {
		se := kmsg.NewAlterClientQuotasResponseEntry()
		var e quota.Entity
		for _, c := range re.Entity {
			e = append(e, quota.Component{Type: c.Type, Name: c.Name})
			se.Entity = append(se.Entity, kmsg.AlterClientQuotasResponseEntryEntity{Type: c.Type, Name: c.Name})
		}
		var ops []quota.Op
		for _, op := range re.Ops {
			ops = append(ops, quota.Op{Key: op.Key, Value: op.Value, Remove: op.Remove})
		}
		err := quota.Validate(e, ops)
		if err != nil {
			se.ErrorCode, se.ErrorMessage = kerr.InvalidRequest.Code, stringPtr(err.Error())
		} else if !req.ValidateOnly {
			if err := b.quotas.Alter(e, ops); err != nil {
				b.logger.Error("could not store client quotas", "err", err)
				se.ErrorCode, se.ErrorMessage = kerr.KafkaStorageError.Code, stringPtr(err.Error())
			}
		}
		resp.Entries = append(resp.Entries, se)
	}
	return resp
}

// quotaClient is who a request counts against: the authenticated user (as
// Kafka, the principal's name) and the client id.
func (r *request) quotaClient() quota.Client {
	user := "ANONYMOUS"
	if name, err := auth.ParsePrincipal(r.conn.principal); err == nil {
		user = name
	}
	return quota.Client{User: user, ID: r.clientID}
}

// throttle asks a client to wait d: it is told so in its answer, and its
// connection's next request is read only after d.
func (r *request) throttle(d time.Duration) int32 {
	if d <= 0 {
		return 0
	}
	r.conn.muteFor(d)
	return int32(d.Milliseconds())
}
