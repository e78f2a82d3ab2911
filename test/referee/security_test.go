package referee

import (
	"bytes"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// On a broker without an authorizer (creek's default, like Kafka's), the
// ACL APIs answer SECURITY_DISABLED, and SCRAM credentials are still
// managed (KRaft stores them without SASL listeners).

func TestACLsWithoutAuthorizer(t *testing.T) {
	p := newPair(t)
	topic := uniqueName(t, "acl")
	for _, v := range versions(kmsg.CreateACLs, 0) {
		p.same("CreateAcls without an authorizer", v, func(string) kmsg.Request {
			req := kmsg.NewPtrCreateACLsRequest()
			c := kmsg.NewCreateACLsRequestCreation()
			c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceTypeTopic, topic, kmsg.ACLResourcePatternTypeLiteral
			c.Principal, c.Host, c.Operation, c.PermissionType = "User:alice", "*", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
			req.Creations = append(req.Creations, c)
			return req
		})
	}
	for _, v := range versions(kmsg.DescribeACLs, 0) {
		p.same("DescribeAcls without an authorizer", v, func(string) kmsg.Request {
			req := kmsg.NewPtrDescribeACLsRequest()
			req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
			if v == 0 {
				req.ResourcePatternType = kmsg.ACLResourcePatternTypeLiteral
			}
			req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			return req
		})
	}
	for _, v := range versions(kmsg.DeleteACLs, 0) {
		p.same("DeleteAcls without an authorizer", v, func(string) kmsg.Request {
			req := kmsg.NewPtrDeleteACLsRequest()
			f := kmsg.NewDeleteACLsRequestFilter()
			f.ResourceType, f.ResourceName, f.ResourcePatternType = kmsg.ACLResourceTypeTopic, kmsg.StringPtr(topic), kmsg.ACLResourcePatternTypeLiteral
			f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			req.Filters = append(req.Filters, f)
			return req
		})
	}
}

func TestScramCredentials(t *testing.T) {
	p := newPair(t)
	user := uniqueName(t, "user")
	upsert := func(mechanism int8, iterations int32) func(string) kmsg.Request {
		return func(string) kmsg.Request {
			req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
			u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
			u.Name, u.Mechanism, u.Iterations = user, mechanism, iterations
			u.Salt, u.SaltedPassword = bytes.Repeat([]byte{7}, 24), bytes.Repeat([]byte{9}, 64)
			req.Upsertions = append(req.Upsertions, u)
			return req
		}
	}
	remove := func(name string) func(string) kmsg.Request {
		return func(string) kmsg.Request {
			req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
			req.Deletions = append(req.Deletions, kmsg.AlterUserSCRAMCredentialsRequestDeletion{Name: name, Mechanism: 2})
			return req
		}
	}
	describe := func(names ...string) func(string) kmsg.Request {
		return func(string) kmsg.Request {
			req := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
			for _, n := range names {
				req.Users = append(req.Users, kmsg.DescribeUserSCRAMCredentialsRequestUser{Name: n})
			}
			return req
		}
	}
	// Kafka applies a credential change through its metadata log a moment
	// after answering; wait until both brokers describe the user as wanted.
	settled := func(exists bool) {
		t.Helper()
		p.both(func(side string, c *conn) {
			deadline := time.Now().Add(15 * time.Second)
			for {
				req := describe(user)("")
				req.SetVersion(0)
				r := c.must(req).(*kmsg.DescribeUserSCRAMCredentialsResponse)
				if len(r.Results) == 1 && (r.Results[0].ErrorCode == 0) == exists {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: user %s exists=%v not seen within 15 s", side, user, exists)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	v := int16(0)
	p.same("DescribeUserScramCredentials of an unknown user", v, describe(user))
	p.same("AlterUserScramCredentials with too few iterations", v, upsert(2, 1000))
	p.same("AlterUserScramCredentials of an unknown mechanism", v, upsert(0, 4096))
	p.same("AlterUserScramCredentials delete an unknown credential", v, remove(user))
	p.same("AlterUserScramCredentials upsert", v, upsert(2, 4096))
	settled(true)
	p.same("DescribeUserScramCredentials of the user", v, describe(user))
	p.same("DescribeUserScramCredentials of a user twice", v, describe(user, user))
	p.same("AlterUserScramCredentials delete", v, remove(user))
	settled(false)
	p.same("DescribeUserScramCredentials after the delete", v, describe(user))
}
