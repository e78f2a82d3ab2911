package broker

import (
	"reflect"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/auth"
)

// Authorization sits here, in one place: every request passes through
// authorized, which asks the gate of its API (the table below: which
// operation on which resource each part of a request needs, with Kafka's
// rules and error codes) before the handler runs. A gate answers a request
// that is denied as a whole; for one denied in part, it takes the denied
// topics, groups or ids out of the request and, once the handler has
// answered the rest, adds their errors to the response. Handlers never see
// what they may not serve, and know nothing of ACLs; the one exception is
// Fetch, whose sessions read partitions the request does not name, so its
// gate gives the handler a check to make for each topic it reads.
//
// Without an authorizer (no listener authenticates clients, the default)
// authorized is a plain call of the handler.

// authorized serves a request through its API's gate.
func (b *Broker) authorized(a api, r *request, req kmsg.Request) (kmsg.Response, func()) {
	if b.sec.authz == nil {
		return a.handle(b, r, req)
	}
	g, ok := gates[req.Key()]
	if !ok {
		g = unlistedGate
	}
	answer, after := g(access{b, r}, req)
	if answer != nil {
		return answer, nil
	}
	resp, finish := a.handle(b, r, req)
	if after == nil || resp == nil {
		return resp, finish
	}
	if finish == nil {
		after(resp)
		return resp, nil
	}
	return resp, func() { finish(); after(resp) }
}

// gate checks a request before its handler runs: it returns an answer for a
// request denied as a whole, or trims the request and returns what to add
// to the response (nil: nothing).
type gate func(z access, req kmsg.Request) (answer kmsg.Response, after func(kmsg.Response))

// access asks the authorizer on behalf of a request's client.
type access struct {
	b *Broker
	r *request
}

func (z access) may(op auth.Operation, rt auth.ResourceType, name string) bool {
	return z.b.sec.authz.Authorize(z.r.conn.principal, z.r.conn.host, op, rt, name)
}

func (z access) mayCluster(op auth.Operation) bool { return z.may(op, auth.Cluster, auth.ClusterName) }

func (z access) ops(rt auth.ResourceType, name string) int32 {
	return z.b.sec.authz.AuthorizedOperations(z.r.conn.principal, z.r.conn.host, rt, name)
}

// topicName is the name of a topic given by name or id ("" for an id the
// broker does not know, which the handler answers).
func (z access) topicName(name string, id [16]byte) string {
	if name != "" || id == [16]byte{} {
		return name
	}
	if t, ok := z.b.cluster.TopicByID(id); ok {
		return t.Name()
	}
	return ""
}

var (
	topicDenied   = kerr.TopicAuthorizationFailed.Code
	groupDenied   = kerr.GroupAuthorizationFailed.Code
	clusterDenied = kerr.ClusterAuthorizationFailed.Code
	txnDenied     = kerr.TransactionalIDAuthorizationFailed.Code
)

// gates is the table: what each API needs.
var gates = map[int16]gate{}

func init() {
	none := func(access, kmsg.Request) (kmsg.Response, func(kmsg.Response)) { return nil, nil }
	for _, k := range []kmsg.Key{kmsg.ApiVersions, kmsg.SASLHandshake, kmsg.SASLAuthenticate} {
		gates[k.Int16()] = none
	}

	// Records.
	gates[kmsg.Produce.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		r := req.(*kmsg.ProduceRequest)
		if r.TransactionID != nil && !z.may(auth.Write, auth.TransactionalID, *r.TransactionID) {
			return denyWhole(req, txnDenied), nil
		}
		return z.topics(req, "Topics", auth.Write, topicDenied)
	}
	gates[kmsg.Fetch.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		// A fetch in a session reads the session's partitions, not only
		// those it names, and a denied one stays in the session (as in
		// Kafka, which answers it TOPIC_AUTHORIZATION_FAILED each time):
		// so READ is checked by the handler for every topic it reads.
		z.r.mayRead = func(topic string) bool { return z.may(auth.Read, auth.Topic, topic) }
		return nil, nil
	}
	gates[kmsg.ListOffsets.Int16()] = topicsGate(auth.Describe)
	gates[kmsg.OffsetForLeaderEpoch.Int16()] = topicsGate(auth.Describe)
	gates[kmsg.DeleteRecords.Int16()] = topicsGate(auth.Delete)
	gates[kmsg.DescribeProducers.Int16()] = topicsGate(auth.Read)
	gates[kmsg.Metadata.Int16()] = metadataGate

	// Topics and configs.
	gates[kmsg.CreateTopics.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		if z.mayCluster(auth.Create) {
			return nil, nil
		}
		return z.topics(req, "Topics", auth.Create, topicDenied)
	}
	gates[kmsg.DeleteTopics.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		r := req.(*kmsg.DeleteTopicsRequest)
		for _, name := range r.TopicNames { // v0-v5 name topics in a list of strings
			r.Topics = append(r.Topics, kmsg.DeleteTopicsRequestTopic{Topic: stringPtr(name)})
		}
		r.TopicNames = nil
		return z.topics(req, "Topics", auth.Delete, topicDenied)
	}
	gates[kmsg.CreatePartitions.Int16()] = topicsGate(auth.Alter)
	gates[kmsg.DescribeConfigs.Int16()] = configsGate(auth.DescribeConfigs)
	gates[kmsg.AlterConfigs.Int16()] = configsGate(auth.AlterConfigs)
	gates[kmsg.IncrementalAlterConfigs.Int16()] = configsGate(auth.AlterConfigs)

	// The cluster.
	gates[kmsg.DescribeLogDirs.Int16()] = clusterGate(auth.Describe)
	gates[kmsg.DescribeCluster.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		if !z.mayCluster(auth.Describe) {
			return denyWhole(req, clusterDenied), nil
		}
		if !req.(*kmsg.DescribeClusterRequest).IncludeClusterAuthorizedOperations {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			resp.(*kmsg.DescribeClusterResponse).ClusterAuthorizedOperations = z.ops(auth.Cluster, auth.ClusterName)
		}
	}
	gates[kmsg.DescribeUserSCRAMCredentials.Int16()] = clusterGate(auth.Describe)
	gates[kmsg.AlterUserSCRAMCredentials.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		if z.mayCluster(auth.Alter) {
			return nil, nil
		}
		r := req.(*kmsg.AlterUserSCRAMCredentialsRequest)
		resp := r.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
		seen := map[string]bool{}
		for _, u := range append(userNames(r), nil...) {
			if !seen[u] {
				seen[u] = true
				res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
				res.User, res.ErrorCode = u, clusterDenied
				resp.Results = append(resp.Results, res)
			}
		}
		return resp, nil
	}
	gates[kmsg.ElectLeaders.Int16()] = clusterGate(auth.Alter)
	gates[kmsg.AlterPartitionAssignments.Int16()] = clusterGate(auth.Alter)
	gates[kmsg.ListPartitionReassignments.Int16()] = clusterGate(auth.Describe)
	gates[kmsg.UpdateFeatures.Int16()] = clusterGate(auth.Alter)
	gates[kmsg.DescribeClientQuotas.Int16()] = clusterGate(auth.DescribeConfigs)
	gates[kmsg.AlterClientQuotas.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		if z.mayCluster(auth.AlterConfigs) {
			return nil, nil
		}
		resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
		for _, e := range req.(*kmsg.AlterClientQuotasRequest).Entries { // no error at the top: one per entry
			re := kmsg.NewAlterClientQuotasResponseEntry()
			re.ErrorCode = clusterDenied
			for _, en := range e.Entity {
				re.Entity = append(re.Entity, kmsg.AlterClientQuotasResponseEntryEntity{Type: en.Type, Name: en.Name})
			}
			resp.Entries = append(resp.Entries, re)
		}
		return resp, nil
	}
	gates[kmsg.DescribeACLs.Int16()] = clusterGate(auth.Describe)
	gates[kmsg.CreateACLs.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		if z.mayCluster(auth.Alter) {
			return nil, nil
		}
		resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
		for range req.(*kmsg.CreateACLsRequest).Creations {
			res := kmsg.NewCreateACLsResponseResult()
			res.ErrorCode = clusterDenied
			resp.Results = append(resp.Results, res)
		}
		return resp, nil
	}
	gates[kmsg.DeleteACLs.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		if z.mayCluster(auth.Alter) {
			return nil, nil
		}
		resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
		for range req.(*kmsg.DeleteACLsRequest).Filters {
			res := kmsg.NewDeleteACLsResponseResult()
			res.ErrorCode = clusterDenied
			resp.Results = append(resp.Results, res)
		}
		return resp, nil
	}

	// Producer ids and transactions.
	gates[kmsg.InitProducerID.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		r := req.(*kmsg.InitProducerIDRequest)
		if r.TransactionalID != nil {
			if !z.may(auth.Write, auth.TransactionalID, *r.TransactionalID) {
				return denyWhole(req, txnDenied), nil
			}
			return nil, nil
		}
		// An idempotent producer: IDEMPOTENT_WRITE on the cluster, or WRITE
		// on any topic (KIP-679).
		if !z.mayCluster(auth.IdempotentWrite) && !z.b.sec.authz.MayOnSomeResource(z.r.conn.principal, z.r.conn.host, auth.Write, auth.Topic) {
			return denyWhole(req, clusterDenied), nil
		}
		return nil, nil
	}
	gates[kmsg.AddPartitionsToTxn.Int16()] = addPartitionsToTxnGate
	gates[kmsg.AddOffsetsToTxn.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		r := req.(*kmsg.AddOffsetsToTxnRequest)
		switch {
		case !z.may(auth.Write, auth.TransactionalID, r.TransactionalID):
			return denyWhole(req, txnDenied), nil
		case !z.may(auth.Read, auth.Group, r.Group):
			return denyWhole(req, groupDenied), nil
		}
		return nil, nil
	}
	gates[kmsg.EndTxn.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		if !z.may(auth.Write, auth.TransactionalID, req.(*kmsg.EndTxnRequest).TransactionalID) {
			return denyWhole(req, txnDenied), nil
		}
		return nil, nil
	}
	gates[kmsg.TxnOffsetCommit.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		r := req.(*kmsg.TxnOffsetCommitRequest)
		switch {
		case !z.may(auth.Write, auth.TransactionalID, r.TransactionalID):
			return denyEveryTopic(req, txnDenied), nil
		case !z.may(auth.Read, auth.Group, r.Group):
			return denyEveryTopic(req, groupDenied), nil
		}
		return z.topics(req, "Topics", auth.Read, topicDenied)
	}
	gates[kmsg.DescribeTransactions.Int16()] = namesGate("TransactionalIDs", "TransactionStates", "TransactionalID", auth.TransactionalID, auth.Describe, txnDenied)
	gates[kmsg.ListTransactions.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		return nil, func(resp kmsg.Response) {
			r := resp.(*kmsg.ListTransactionsResponse)
			r.TransactionStates = slices.DeleteFunc(r.TransactionStates, func(s kmsg.ListTransactionsResponseTransactionState) bool {
				return !z.may(auth.Describe, auth.TransactionalID, s.TransactionalID)
			})
		}
	}

	// Groups.
	gates[kmsg.FindCoordinator.Int16()] = findCoordinatorGate
	for _, k := range []kmsg.Key{kmsg.JoinGroup, kmsg.SyncGroup, kmsg.Heartbeat, kmsg.LeaveGroup} {
		gates[k.Int16()] = groupGate("Group", auth.Read)
	}
	gates[kmsg.OffsetCommit.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		if !z.may(auth.Read, auth.Group, req.(*kmsg.OffsetCommitRequest).Group) {
			return denyEveryTopic(req, groupDenied), nil
		}
		return z.topics(req, "Topics", auth.Read, topicDenied)
	}
	gates[kmsg.OffsetFetch.Int16()] = offsetFetchGate
	gates[kmsg.OffsetDelete.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		if !z.may(auth.Delete, auth.Group, req.(*kmsg.OffsetDeleteRequest).Group) {
			return denyWhole(req, groupDenied), nil
		}
		return z.topics(req, "Topics", auth.Read, topicDenied)
	}
	gates[kmsg.ListGroups.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		if z.mayCluster(auth.Describe) {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			r := resp.(*kmsg.ListGroupsResponse)
			r.Groups = slices.DeleteFunc(r.Groups, func(g kmsg.ListGroupsResponseGroup) bool { return !z.may(auth.Describe, auth.Group, g.Group) })
		}
	}
	gates[kmsg.DescribeGroups.Int16()] = describeGroupsGate("Groups", "Groups", "Group")
	gates[kmsg.DeleteGroups.Int16()] = namesGate("Groups", "Groups", "Group", auth.Group, auth.Delete, groupDenied)
	gates[kmsg.ConsumerGroupHeartbeat.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		r := req.(*kmsg.ConsumerGroupHeartbeatRequest)
		if !z.may(auth.Read, auth.Group, r.Group) {
			return denyWhole(req, groupDenied), nil
		}
		for _, t := range r.SubscribedTopicNames {
			if !z.may(auth.Describe, auth.Topic, t) {
				return denyWhole(req, topicDenied), nil
			}
		}
		return nil, nil
	}
	gates[kmsg.ConsumerGroupDescribe.Int16()] = describeGroupsGate("Groups", "Groups", "Group")

	// Share groups.
	gates[kmsg.ShareGroupHeartbeat.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		r := req.(*kmsg.ShareGroupHeartbeatRequest)
		if !z.may(auth.Read, auth.Group, r.GroupID) {
			return denyWhole(req, groupDenied), nil
		}
		for _, t := range r.SubscribedTopicNames {
			if !z.may(auth.Describe, auth.Topic, t) {
				return denyWhole(req, topicDenied), nil
			}
		}
		return nil, nil
	}
	gates[kmsg.ShareGroupDescribe.Int16()] = describeGroupsGate("GroupIDs", "Groups", "GroupID")
	for _, k := range []kmsg.Key{kmsg.ShareFetch, kmsg.ShareAcknowledge} {
		gates[k.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
			group := reflect.ValueOf(req).Elem().FieldByName("GroupID").Interface().(*string)
			if group != nil && !z.may(auth.Read, auth.Group, *group) {
				return denyWhole(req, groupDenied), nil
			}
			return z.topics(req, "Topics", auth.Read, topicDenied)
		}
	}
	gates[kmsg.DescribeShareGroupOffsets.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		r := req.(*kmsg.DescribeShareGroupOffsetsRequest)
		var denied []string
		r.Groups = slices.DeleteFunc(r.Groups, func(g kmsg.DescribeShareGroupOffsetsRequestGroup) bool {
			if !z.may(auth.Describe, auth.Group, g.GroupID) {
				denied = append(denied, g.GroupID)
				return true
			}
			return false
		})
		return nil, func(resp kmsg.Response) {
			rr := resp.(*kmsg.DescribeShareGroupOffsetsResponse)
			for _, g := range denied {
				dg := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
				dg.GroupID, dg.ErrorCode = g, groupDenied
				rr.Groups = append(rr.Groups, dg)
			}
			for i := range rr.Groups {
				rr.Groups[i].Topics = slices.DeleteFunc(rr.Groups[i].Topics, func(t kmsg.DescribeShareGroupOffsetsResponseGroupTopic) bool {
					return !z.may(auth.Describe, auth.Topic, t.Topic)
				})
			}
		}
	}
	gates[kmsg.AlterShareGroupOffsets.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		if !z.may(auth.Read, auth.Group, req.(*kmsg.AlterShareGroupOffsetsRequest).GroupID) {
			return denyWhole(req, groupDenied), nil
		}
		return z.topics(req, "Topics", auth.Read, topicDenied)
	}
	gates[kmsg.DeleteShareGroupOffsets.Int16()] = func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		if !z.may(auth.Delete, auth.Group, req.(*kmsg.DeleteShareGroupOffsetsRequest).GroupID) {
			return denyWhole(req, groupDenied), nil
		}
		return z.topics(req, "Topics", auth.Read, topicDenied)
	}
}

// unlistedGate is the rule for an API without one in the table: only a
// principal that may ALTER the cluster is served (TestEveryAPIHasAGate
// keeps the table complete).
func unlistedGate(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
	if z.mayCluster(auth.Alter) {
		return nil, nil
	}
	return denyWhole(req, clusterDenied), nil
}

func clusterGate(op auth.Operation) gate {
	return func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		if !z.mayCluster(op) {
			return denyWhole(req, clusterDenied), nil
		}
		return nil, nil
	}
}

func topicsGate(op auth.Operation) gate {
	return func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		return z.topics(req, "Topics", op, topicDenied)
	}
}

// groupGate checks op on the group a request names in field.
func groupGate(field string, op auth.Operation) gate {
	return func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		if !z.may(op, auth.Group, reflect.ValueOf(req).Elem().FieldByName(field).String()) {
			return denyWhole(req, groupDenied), nil
		}
		return nil, nil
	}
}

// denyWhole is the answer to a request denied as a whole: its response
// with the error code at the top.
func denyWhole(req kmsg.Request, code int16) kmsg.Response {
	resp := req.ResponseKind()
	setField(reflect.ValueOf(resp).Elem(), "ErrorCode", code)
	switch r := resp.(type) {
	case *kmsg.InitProducerIDResponse:
		r.ProducerID, r.ProducerEpoch = -1, -1
	case *kmsg.JoinGroupResponse:
		r.Generation = -1
	case *kmsg.ProduceResponse, *kmsg.DescribeLogDirsResponse:
		return denyEveryTopic(req, code) // no error code at the top in older versions
	}
	return resp
}

// denyEveryTopic answers a request with code on each of its partitions.
func denyEveryTopic(req kmsg.Request, code int16) kmsg.Response {
	resp := req.ResponseKind()
	topics := reflect.ValueOf(req).Elem().FieldByName("Topics")
	if topics.IsValid() {
		addDenied(reflect.ValueOf(resp).Elem().FieldByName("Topics"), topics, code)
	}
	return resp
}

// topics checks op on every topic of the request's list in field. The
// denied ones leave the request; after the handler they join the response's
// list of the same name, with code on each partition (or on the topic, for
// responses that have no partitions).
func (z access) topics(req kmsg.Request, field string, op auth.Operation, code int16) (kmsg.Response, func(kmsg.Response)) {
	list := reflect.ValueOf(req).Elem().FieldByName(field)
	var denied []int
	for i := 0; i < list.Len(); i++ {
		name, id := topicOf(list.Index(i))
		if name = z.topicName(name, id); name != "" && !z.may(op, auth.Topic, name) {
			denied = append(denied, i)
		}
	}
	if len(denied) == 0 {
		return nil, nil
	}
	kept := reflect.MakeSlice(list.Type(), 0, list.Len()-len(denied))
	out := reflect.MakeSlice(list.Type(), 0, len(denied))
	for i, j := 0, 0; i < list.Len(); i++ {
		if j < len(denied) && denied[j] == i {
			out = reflect.Append(out, list.Index(i))
			j++
		} else {
			kept = reflect.Append(kept, list.Index(i))
		}
	}
	list.Set(kept)
	return nil, func(resp kmsg.Response) {
		v := reflect.ValueOf(resp).Elem()
		if fr, ok := resp.(*fetchResponse); ok {
			v = reflect.ValueOf(fr.FetchResponse).Elem()
		}
		addDenied(v.FieldByName(field), out, code)
	}
}

// topicOf reads a request element's topic name (string or *string) and id.
func topicOf(v reflect.Value) (string, [16]byte) {
	var name string
	var id [16]byte
	switch f := v.FieldByName("Topic"); {
	case !f.IsValid():
	case f.Kind() == reflect.String:
		name = f.String()
	case f.Kind() == reflect.Pointer && !f.IsNil():
		name = f.Elem().String()
	}
	if f := v.FieldByName("TopicID"); f.IsValid() {
		id = f.Interface().([16]byte)
	}
	return name, id
}

// addDenied appends to the response list dst one element per request
// element of denied, with its topic, partitions and code.
func addDenied(dst, denied reflect.Value, code int16) {
	if !dst.IsValid() {
		return
	}
	for i := 0; i < denied.Len(); i++ {
		src := denied.Index(i)
		e := newElem(dst.Type().Elem())
		copyField(e, src, "Topic")
		copyField(e, src, "TopicID")
		copyField(e, src, "Name")
		parts, rparts := src.FieldByName("Partitions"), e.FieldByName("Partitions")
		if !parts.IsValid() || !rparts.IsValid() {
			setField(e, "ErrorCode", code)
		} else {
			for j := 0; j < parts.Len(); j++ {
				p := newElem(rparts.Type().Elem())
				sp := parts.Index(j)
				if sp.Kind() == reflect.Int32 {
					setField(p, "Partition", int32(sp.Int()))
				} else {
					copyField(p, sp, "Partition")
				}
				setField(p, "ErrorCode", code)
				setField(p, "RecordBatches", []byte{}) // librdkafka refuses a null record set
				rparts.Set(reflect.Append(rparts, p))
			}
		}
		dst.Set(reflect.Append(dst, e))
	}
}

// newElem makes a response element with its protocol defaults (-1 offsets).
func newElem(t reflect.Type) reflect.Value {
	p := reflect.New(t)
	if d, ok := p.Interface().(interface{ Default() }); ok {
		d.Default()
	}
	return p.Elem()
}

func setField(v reflect.Value, name string, x any) {
	if f := v.FieldByName(name); f.IsValid() && f.CanSet() && f.Type() == reflect.TypeOf(x) {
		f.Set(reflect.ValueOf(x))
	}
}

func copyField(dst, src reflect.Value, name string) {
	d, s := dst.FieldByName(name), src.FieldByName(name)
	if d.IsValid() && s.IsValid() && d.Type() == s.Type() {
		d.Set(s)
	}
}

// namesGate checks op on each name of a request's string list; denied names
// get code in the response list, whose elements name them in respName.
func namesGate(reqList, respList, respName string, rt auth.ResourceType, op auth.Operation, code int16) gate {
	return func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		list := reflect.ValueOf(req).Elem().FieldByName(reqList)
		names := list.Interface().([]string)
		var denied []string
		kept := slices.DeleteFunc(slices.Clone(names), func(n string) bool {
			if !z.may(op, rt, n) {
				denied = append(denied, n)
				return true
			}
			return false
		})
		if len(denied) == 0 {
			return nil, nil
		}
		if kept == nil {
			kept = []string{}
		}
		list.Set(reflect.ValueOf(kept))
		return nil, func(resp kmsg.Response) {
			dst := reflect.ValueOf(resp).Elem().FieldByName(respList)
			for _, n := range denied {
				e := newElem(dst.Type().Elem())
				setField(e, respName, n)
				setField(e, "ErrorCode", code)
				dst.Set(reflect.Append(dst, e))
			}
		}
	}
}

// describeGroupsGate is namesGate for DESCRIBE on groups, reporting each
// group's authorized operations when asked (KIP-430).
func describeGroupsGate(reqList, respList, respName string) gate {
	names := namesGate(reqList, respList, respName, auth.Group, auth.Describe, groupDenied)
	return func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		_, after := names(z, req)
		if !reflect.ValueOf(req).Elem().FieldByName("IncludeAuthorizedOperations").Bool() {
			return nil, after
		}
		return nil, func(resp kmsg.Response) {
			if after != nil {
				after(resp)
			}
			groups := reflect.ValueOf(resp).Elem().FieldByName(respList)
			for i := 0; i < groups.Len(); i++ {
				g := groups.Index(i)
				if g.FieldByName("ErrorCode").Int() == 0 {
					setField(g, "AuthorizedOperations", z.ops(auth.Group, g.FieldByName(respName).String()))
				}
			}
		}
	}
}

// configsGate checks op on each resource of DescribeConfigs, AlterConfigs
// and IncrementalAlterConfigs: topics, the broker (the cluster) and groups.
func configsGate(op auth.Operation) gate {
	return func(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
		list := reflect.ValueOf(req).Elem().FieldByName("Resources")
		kept := reflect.MakeSlice(list.Type(), 0, list.Len())
		type deniedResource struct {
			typ  kmsg.ConfigResourceType
			name string
			code int16
		}
		var denied []deniedResource
		for i := 0; i < list.Len(); i++ {
			res := list.Index(i)
			typ := res.FieldByName("ResourceType").Interface().(kmsg.ConfigResourceType)
			name := res.FieldByName("ResourceName").String()
			ok, code := true, int16(0)
			switch typ {
			case kmsg.ConfigResourceTypeTopic:
				ok, code = z.may(op, auth.Topic, name), topicDenied
			case kmsg.ConfigResourceTypeGroupConfig:
				ok, code = z.may(op, auth.Group, name), groupDenied
			default: // brokers, broker loggers
				ok, code = z.mayCluster(op), clusterDenied
			}
			if ok {
				kept = reflect.Append(kept, res)
			} else {
				denied = append(denied, deniedResource{typ, name, code})
			}
		}
		if len(denied) == 0 {
			return nil, nil
		}
		list.Set(kept)
		return nil, func(resp kmsg.Response) {
			dst := reflect.ValueOf(resp).Elem().FieldByName("Resources")
			for _, d := range denied {
				e := newElem(dst.Type().Elem())
				setField(e, "ResourceType", d.typ)
				setField(e, "ResourceName", d.name)
				setField(e, "ErrorCode", d.code)
				dst.Set(reflect.Append(dst, e))
			}
		}
	}
}

// metadataGate lists only the topics the client may DESCRIBE; a topic it
// names but may not describe, or that it would create without CREATE, is
// TOPIC_AUTHORIZATION_FAILED (Kafka's rules, so a client learns nothing of
// topics it may not see).
func metadataGate(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
	r := req.(*kmsg.MetadataRequest)
	all := r.Topics == nil || (r.Version == 0 && len(r.Topics) == 0)
	var denied []kmsg.MetadataRequestTopic
	dropAll := false
	if !all {
		allowCreate := (r.Version < 4 || r.AllowAutoTopicCreation) && z.b.autoCreate
		mayCreateAny := allowCreate && z.mayCluster(auth.Create)
		kept := r.Topics[:0:0]
		for _, t := range r.Topics {
			name := ""
			if t.Topic != nil {
				name = *t.Topic
			}
			name = z.topicName(name, t.TopicID)
			_, exists := z.b.cluster.Topic(name)
			switch {
			case name == "":
				kept = append(kept, t) // an unknown id: the handler says so
			case !z.may(auth.Describe, auth.Topic, name):
				denied = append(denied, t)
			case !exists && allowCreate && !mayCreateAny && !z.may(auth.Create, auth.Topic, name):
				denied = append(denied, t)
			default:
				kept = append(kept, t)
			}
		}
		r.Topics = kept
		if r.Version == 0 && len(kept) == 0 {
			dropAll = true // v0 reads an empty list as every topic
		}
	}
	return nil, func(resp kmsg.Response) {
		mr := resp.(*kmsg.MetadataResponse)
		if dropAll {
			mr.Topics = nil
		}
		if all {
			mr.Topics = slices.DeleteFunc(mr.Topics, func(t kmsg.MetadataResponseTopic) bool {
				return !z.may(auth.Describe, auth.Topic, *t.Topic)
			})
		}
		for _, t := range denied {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.TopicID, mt.ErrorCode = t.Topic, t.TopicID, topicDenied
			mr.Topics = append(mr.Topics, mt)
		}
		if r.IncludeTopicAuthorizedOperations {
			for i := range mr.Topics {
				if t := &mr.Topics[i]; t.ErrorCode == 0 && t.Topic != nil {
					t.AuthorizedOperations = z.ops(auth.Topic, *t.Topic)
				}
			}
		}
		if r.IncludeClusterAuthorizedOperations {
			mr.AuthorizedOperations = z.ops(auth.Cluster, auth.ClusterName)
		}
	}
}

// findCoordinatorGate needs DESCRIBE on the group or transactional id.
func findCoordinatorGate(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
	r := req.(*kmsg.FindCoordinatorRequest)
	rt, code := auth.Group, groupDenied
	if r.CoordinatorType == 1 {
		rt, code = auth.TransactionalID, txnDenied
	}
	if r.Version < 4 {
		if !z.may(auth.Describe, rt, r.CoordinatorKey) {
			resp := denyWhole(req, code).(*kmsg.FindCoordinatorResponse)
			resp.NodeID, resp.Port = -1, -1
			return resp, nil
		}
		return nil, nil
	}
	var denied []string
	r.CoordinatorKeys = slices.DeleteFunc(slices.Clone(r.CoordinatorKeys), func(k string) bool {
		if !z.may(auth.Describe, rt, k) {
			denied = append(denied, k)
			return true
		}
		return false
	})
	if len(denied) == 0 {
		return nil, nil
	}
	return nil, func(resp kmsg.Response) {
		fr := resp.(*kmsg.FindCoordinatorResponse)
		for _, k := range denied {
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key, c.ErrorCode, c.NodeID, c.Port = k, code, -1, -1
			fr.Coordinators = append(fr.Coordinators, c)
		}
	}
}

// offsetFetchGate needs DESCRIBE on each group; of the topics, those the
// client may not DESCRIBE are TOPIC_AUTHORIZATION_FAILED when named, and
// left out when it asked for all.
func offsetFetchGate(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
	r := req.(*kmsg.OffsetFetchRequest)
	if r.Version < 8 {
		if !z.may(auth.Describe, auth.Group, r.Group) {
			resp := denyEveryTopic(req, groupDenied).(*kmsg.OffsetFetchResponse)
			resp.ErrorCode = groupDenied
			return resp, nil
		}
		if r.Topics != nil {
			return z.topics(req, "Topics", auth.Describe, topicDenied)
		}
		return nil, func(resp kmsg.Response) {
			or := resp.(*kmsg.OffsetFetchResponse)
			or.Topics = slices.DeleteFunc(or.Topics, func(t kmsg.OffsetFetchResponseTopic) bool { return !z.may(auth.Describe, auth.Topic, t.Topic) })
		}
	}
	var deniedGroups []string
	deniedTopics := map[string][]kmsg.OffsetFetchRequestGroupTopic{}
	r.Groups = slices.DeleteFunc(slices.Clone(r.Groups), func(g kmsg.OffsetFetchRequestGroup) bool {
		if !z.may(auth.Describe, auth.Group, g.Group) {
			deniedGroups = append(deniedGroups, g.Group)
			return true
		}
		return false
	})
	for i := range r.Groups {
		g := &r.Groups[i]
		if g.Topics == nil {
			continue
		}
		g.Topics = slices.DeleteFunc(slices.Clone(g.Topics), func(t kmsg.OffsetFetchRequestGroupTopic) bool {
			name := z.topicName(t.Topic, t.TopicID)
			if name != "" && !z.may(auth.Describe, auth.Topic, name) {
				deniedTopics[g.Group] = append(deniedTopics[g.Group], t)
				return true
			}
			return false
		})
	}
	return nil, func(resp kmsg.Response) {
		or := resp.(*kmsg.OffsetFetchResponse)
		for i := range or.Groups {
			g := &or.Groups[i]
			g.Topics = slices.DeleteFunc(g.Topics, func(t kmsg.OffsetFetchResponseGroupTopic) bool {
				name := z.topicName(t.Topic, t.TopicID)
				return name != "" && !z.may(auth.Describe, auth.Topic, name)
			})
			if ts := deniedTopics[g.Group]; len(ts) > 0 {
				addDenied(reflect.ValueOf(g).Elem().FieldByName("Topics"), reflect.ValueOf(ts), topicDenied)
			}
		}
		for _, name := range deniedGroups {
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group, g.ErrorCode = name, groupDenied
			or.Groups = append(or.Groups, g)
		}
	}
}

// addPartitionsToTxnGate needs WRITE on the transactional id and on each
// topic. As in Kafka, when any partition is denied none is added: the
// others are OPERATION_NOT_ATTEMPTED.
func addPartitionsToTxnGate(z access, req kmsg.Request) (kmsg.Response, func(kmsg.Response)) {
	r := req.(*kmsg.AddPartitionsToTxnRequest)
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if r.Version < 4 {
		code, deny := int16(0), false
		if !z.may(auth.Write, auth.TransactionalID, r.TransactionalID) {
			code, deny = txnDenied, true
		}
		for _, t := range r.Topics {
			deny = deny || !z.may(auth.Write, auth.Topic, t.Topic)
		}
		if !deny {
			return nil, nil
		}
		for _, t := range r.Topics {
			c := code
			if c == 0 {
				c = kerr.OperationNotAttempted.Code
				if !z.may(auth.Write, auth.Topic, t.Topic) {
					c = topicDenied
				}
			}
			addDenied(reflect.ValueOf(resp).Elem().FieldByName("Topics"), reflect.ValueOf([]kmsg.AddPartitionsToTxnRequestTopic{t}), c)
		}
		return resp, nil
	}
	var denied []kmsg.AddPartitionsToTxnResponseTransaction
	r.Transactions = slices.DeleteFunc(slices.Clone(r.Transactions), func(tr kmsg.AddPartitionsToTxnRequestTransaction) bool {
		idOK := z.may(auth.Write, auth.TransactionalID, tr.TransactionalID)
		deny := !idOK
		for _, t := range tr.Topics {
			deny = deny || !z.may(auth.Write, auth.Topic, t.Topic)
		}
		if !deny {
			return false
		}
		rt := kmsg.NewAddPartitionsToTxnResponseTransaction()
		rt.TransactionalID = tr.TransactionalID
		for _, t := range tr.Topics {
			c := txnDenied
			if idOK {
				c = kerr.OperationNotAttempted.Code
				if !z.may(auth.Write, auth.Topic, t.Topic) {
					c = topicDenied
				}
			}
			addDenied(reflect.ValueOf(&rt).Elem().FieldByName("Topics"), reflect.ValueOf([]kmsg.AddPartitionsToTxnRequestTransactionTopic{t}), c)
		}
		denied = append(denied, rt)
		return true
	})
	if len(denied) == 0 {
		return nil, nil
	}
	return nil, func(resp kmsg.Response) {
		ar := resp.(*kmsg.AddPartitionsToTxnResponse)
		ar.Transactions = append(ar.Transactions, denied...)
	}
}

// userNames lists the users an AlterUserScramCredentials request changes.
func userNames(r *kmsg.AlterUserSCRAMCredentialsRequest) []string {
	var out []string
	for _, d := range r.Deletions {
		out = append(out, d.Name)
	}
	for _, u := range r.Upsertions {
		out = append(out, u.Name)
	}
	return out
}
