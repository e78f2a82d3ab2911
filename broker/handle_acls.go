package broker

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/auth"
	"github.com/creek-pipeline/creek/internal/cluster"
)

// Users' SCRAM credentials (KIP-554) and ACLs (KIP-140), kept in the
// metadata store. Who may call these is the authorizer's business
// (ALTER or DESCRIBE on the cluster, authorize.go).

func init() {
	register(kmsg.DescribeUserSCRAMCredentials, 0, handleDescribeUserSCRAMCredentials)
	register(kmsg.AlterUserSCRAMCredentials, 0, handleAlterUserSCRAMCredentials)
	register(kmsg.CreateACLs, 0, handleCreateACLs)
	register(kmsg.DescribeACLs, 0, handleDescribeACLs)
	register(kmsg.DeleteACLs, 0, handleDeleteACLs)
}

func handleDescribeUserSCRAMCredentials(b *Broker, r *request, req *kmsg.DescribeUserSCRAMCredentialsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	users := b.cluster.Security().Users()
	describe := func(u cluster.UserCredentials) kmsg.DescribeUserSCRAMCredentialsResponseResult {
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = u.User
		for _, c := range u.Credentials {
			info := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
			info.Mechanism, info.Iterations = int8(c.Mechanism), int32(c.Iterations)
			res.CredentialInfos = append(res.CredentialInfos, info)
		}
		return res
	}
	if len(req.Users) == 0 { // null or empty: every user
		for _, u := range users {
			resp.Results = append(resp.Results, describe(u))
		}
		return resp
	}
	byName := map[string]cluster.UserCredentials{}
	for _, u := range users {
		byName[u.User] = u
	}
	twice := listedTwice(req.Users, func(u kmsg.DescribeUserSCRAMCredentialsRequestUser) string { return u.Name })
	answered := map[string]bool{}
	for _, ru := range req.Users {
		if answered[ru.Name] {
			continue
		}
		answered[ru.Name] = true
		u, ok := byName[ru.Name]
		res := describe(u)
		res.User = ru.Name
		switch {
		case twice[ru.Name]:
			res.ErrorCode, res.ErrorMessage = kerr.DuplicateResource.Code, stringPtr("Cannot describe SCRAM credentials for the same user twice in a single request: "+ru.Name)
			res.CredentialInfos = nil
		case !ok:
			res.ErrorCode, res.ErrorMessage = kerr.ResourceNotFound.Code, stringPtr("Attempt to describe a user credential that does not exist: "+ru.Name)
		}
		resp.Results = append(resp.Results, res)
	}
	return resp
}

func handleAlterUserSCRAMCredentials(b *Broker, r *request, req *kmsg.AlterUserSCRAMCredentialsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	store := b.cluster.Security()
	type change struct {
		user      string
		mechanism auth.Mechanism
	}
	seen := map[change]int{}
	for _, d := range req.Deletions {
		seen[change{d.Name, auth.Mechanism(d.Mechanism)}]++
	}
	for _, u := range req.Upsertions {
		seen[change{u.Name, auth.Mechanism(u.Mechanism)}]++
	}
	errs := map[string]error{} // the first error of each user
	var order []string
	note := func(user string, err error) {
		if _, ok := errs[user]; !ok {
			order = append(order, user)
			errs[user] = nil
		}
		if errs[user] == nil {
			errs[user] = err
		}
	}
	check := func(user string, m auth.Mechanism) error {
		switch {
		case user == "":
			return fmt.Errorf("%w: the user name is empty", kerr.UnacceptableCredential)
		case !m.Valid():
			return fmt.Errorf("%w: unknown SCRAM mechanism %d", kerr.UnsupportedSaslMechanism, m)
		case seen[change{user, m}] > 1:
			return fmt.Errorf("%w: a user's %s credential is changed twice in one request", kerr.DuplicateResource, m)
		}
		return nil
	}
	for _, d := range req.Deletions {
		m := auth.Mechanism(d.Mechanism)
		err := check(d.Name, m)
		if err == nil {
			if err = store.DeleteCredential(d.Name, m); errors.Is(err, cluster.ErrNoCredential) {
				err = fmt.Errorf("%w: Attempt to delete a user credential that does not exist", kerr.ResourceNotFound)
			}
		}
		note(d.Name, err)
	}
	for _, u := range req.Upsertions {
		m := auth.Mechanism(u.Mechanism)
		err := check(u.Name, m)
		if err == nil {
			var c auth.Credential
			if c, err = auth.CredentialFromSaltedPassword(m, u.Salt, u.SaltedPassword, int(u.Iterations)); err != nil {
				err = fmt.Errorf("%w: %v", kerr.UnacceptableCredential, err)
			} else {
				err = store.PutCredential(u.Name, c)
			}
		}
		note(u.Name, err)
	}
	for _, user := range order {
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User = user
		res.ErrorCode, res.ErrorMessage = errorCode(errs[user]), errorMessage(errs[user])
		resp.Results = append(resp.Results, res)
		if errs[user] == nil {
			b.logger.Info("SCRAM credentials changed", "user", user, "by", r.conn.principal)
		}
	}
	return resp
}

// authorizerOff answers the ACL APIs of a broker that does not enforce ACLs.
var errSecurityDisabled = fmt.Errorf("%w: ACLs are not enforced on this broker: it has no listener that authenticates clients (see docs/security.md, or set authorizer.class.name)", kerr.SecurityDisabled)

func handleCreateACLs(b *Broker, r *request, req *kmsg.CreateACLsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	acls := make([]auth.ACL, len(req.Creations))
	for i, c := range req.Creations {
		pt := c.ResourcePatternType
		if req.Version == 0 {
			pt = auth.Literal
		}
		acls[i] = auth.ACL{ResourceType: c.ResourceType, ResourceName: c.ResourceName, PatternType: pt, Principal: c.Principal, Host: c.Host, Operation: c.Operation, Permission: c.PermissionType}
	}
	var errs []error
	if b.sec.authz == nil {
		errs = make([]error, len(acls))
		for i := range errs {
			errs[i] = errSecurityDisabled
		}
	} else {
		errs = b.sec.authz.Add(acls)
	}
	for i, err := range errs {
		res := kmsg.NewCreateACLsResponseResult()
		if errors.Is(err, auth.ErrInvalidACL) {
			err = fmt.Errorf("%w: %v", kerr.InvalidRequest, err)
		}
		res.ErrorCode, res.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Results = append(resp.Results, res)
		if err == nil {
			b.logger.Info("ACL created", "acl", acls[i].String(), "by", r.conn.principal)
		}
	}
	return resp
}

func handleDescribeACLs(b *Broker, r *request, req *kmsg.DescribeACLsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	if b.sec.authz == nil {
		resp.ErrorCode, resp.ErrorMessage = errorCode(errSecurityDisabled), errorMessage(errSecurityDisabled)
		return resp
	}
	f := auth.Filter{ResourceType: req.ResourceType, ResourceName: req.ResourceName, PatternType: req.ResourcePatternType,
		Principal: req.Principal, Host: req.Host, Operation: req.Operation, Permission: req.PermissionType}
	if req.Version == 0 {
		f.PatternType = auth.Literal
	}
	if err := f.Validate(); err != nil {
		err = fmt.Errorf("%w: %v", kerr.InvalidRequest, err)
		resp.ErrorCode, resp.ErrorMessage = errorCode(err), errorMessage(err)
		return resp
	}
	index := map[[3]string]int{}
	for _, a := range b.sec.authz.Describe(f) {
		k := [3]string{a.ResourceType.String(), a.ResourceName, a.PatternType.String()}
		i, ok := index[k]
		if !ok {
			i = len(resp.Resources)
			index[k] = i
			res := kmsg.NewDescribeACLsResponseResource()
			res.ResourceType, res.ResourceName, res.ResourcePatternType = a.ResourceType, a.ResourceName, a.PatternType
			resp.Resources = append(resp.Resources, res)
		}
		d := kmsg.NewDescribeACLsResponseResourceACL()
		d.Principal, d.Host, d.Operation, d.PermissionType = a.Principal, a.Host, a.Operation, a.Permission
		resp.Resources[i].ACLs = append(resp.Resources[i].ACLs, d)
	}
	return resp
}

func handleDeleteACLs(b *Broker, r *request, req *kmsg.DeleteACLsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	filters := make([]auth.Filter, len(req.Filters))
	for i, f := range req.Filters {
		filters[i] = auth.Filter{ResourceType: f.ResourceType, ResourceName: f.ResourceName, PatternType: f.ResourcePatternType,
			Principal: f.Principal, Host: f.Host, Operation: f.Operation, Permission: f.PermissionType}
		if req.Version == 0 {
			filters[i].PatternType = auth.Literal
		}
	}
	var deleted [][]auth.ACL
	var errs []error
	if b.sec.authz == nil {
		deleted, errs = make([][]auth.ACL, len(filters)), make([]error, len(filters))
		for i := range errs {
			errs[i] = errSecurityDisabled
		}
	} else {
		deleted, errs = b.sec.authz.Delete(filters)
	}
	for i := range filters {
		res := kmsg.NewDeleteACLsResponseResult()
		err := errs[i]
		if errors.Is(err, auth.ErrInvalidACL) {
			err = fmt.Errorf("%w: %v", kerr.InvalidRequest, err)
		}
		res.ErrorCode, res.ErrorMessage = errorCode(err), errorMessage(err)
		for _, a := range deleted[i] {
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName, m.ResourcePatternType = a.ResourceType, a.ResourceName, a.PatternType
			m.Principal, m.Host, m.Operation, m.PermissionType = a.Principal, a.Host, a.Operation, a.Permission
			res.MatchingACLs = append(res.MatchingACLs, m)
			b.logger.Info("ACL deleted", "acl", a.String(), "by", r.conn.principal)
		}
		resp.Results = append(resp.Results, res)
	}
	return resp
}
