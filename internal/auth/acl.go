package auth

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The enums of ACLs are Kafka's, as the wire carries them.
type (
	ResourceType = kmsg.ACLResourceType
	PatternType  = kmsg.ACLResourcePatternType
	Operation    = kmsg.ACLOperation
	Permission   = kmsg.ACLPermissionType
)

// Resource types, operations, pattern types and permissions used below.
const (
	Topic           = kmsg.ACLResourceTypeTopic
	Group           = kmsg.ACLResourceTypeGroup
	Cluster         = kmsg.ACLResourceTypeCluster
	TransactionalID = kmsg.ACLResourceTypeTransactionalId
	DelegationToken = kmsg.ACLResourceTypeDelegationToken
	User            = kmsg.ACLResourceTypeUser

	Literal  = kmsg.ACLResourcePatternTypeLiteral
	Prefixed = kmsg.ACLResourcePatternTypePrefixed

	Allow = kmsg.ACLPermissionTypeAllow
	Deny  = kmsg.ACLPermissionTypeDeny

	All             = kmsg.ACLOperationAll
	Read            = kmsg.ACLOperationRead
	Write           = kmsg.ACLOperationWrite
	Create          = kmsg.ACLOperationCreate
	Delete          = kmsg.ACLOperationDelete
	Alter           = kmsg.ACLOperationAlter
	Describe        = kmsg.ACLOperationDescribe
	ClusterAction   = kmsg.ACLOperationClusterAction
	DescribeConfigs = kmsg.ACLOperationDescribeConfigs
	AlterConfigs    = kmsg.ACLOperationAlterConfigs
	IdempotentWrite = kmsg.ACLOperationIdempotentWrite
	CreateTokens    = kmsg.ACLOperationCreateTokens
	DescribeTokens  = kmsg.ACLOperationDescribeTokens
)

// ClusterName is the name of the one cluster resource, as in Kafka.
const ClusterName = "kafka-cluster"

// Wildcard is the literal resource name, principal and host that match any.
const Wildcard = "*"

// ACL is one access control entry: a principal allowed or denied an
// operation on the resources a pattern names, from a host.
type ACL struct {
	ResourceType ResourceType `json:"resource_type"`
	ResourceName string       `json:"resource_name"`
	PatternType  PatternType  `json:"pattern_type"`
	Principal    string       `json:"principal"`
	Host         string       `json:"host"`
	Operation    Operation    `json:"operation"`
	Permission   Permission   `json:"permission"`
}

// String is the ACL as kafka-acls prints it.
func (a ACL) String() string {
	return fmt.Sprintf("(principal=%s, host=%s, operation=%s, permissionType=%s) on %s:%s:%s",
		a.Principal, a.Host, a.Operation, a.Permission, a.ResourceType, a.PatternType, a.ResourceName)
}

// Key identifies an ACL in the metadata store.
func (a ACL) Key() string {
	return fmt.Sprintf("%d\x00%s\x00%d\x00%s\x00%s\x00%d\x00%d", a.ResourceType, a.ResourceName, a.PatternType, a.Principal, a.Host, a.Operation, a.Permission)
}

// ValidOperations lists the operations that mean something on each type of
// resource (what KIP-430 reports as authorized operations).
var ValidOperations = map[ResourceType][]Operation{
	Topic:           {Read, Write, Create, Delete, Alter, Describe, DescribeConfigs, AlterConfigs},
	Group:           {Read, Describe, Delete, DescribeConfigs, AlterConfigs},
	Cluster:         {Create, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, Alter, Describe},
	TransactionalID: {Describe, Write},
	DelegationToken: {Describe},
	User:            {CreateTokens, DescribeTokens},
}

// ErrInvalidACL is a binding that cannot be stored; the wrapping error says why.
var ErrInvalidACL = errors.New("invalid ACL")

// Validate checks a binding to be created, as Kafka does.
func (a ACL) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidACL, fmt.Sprintf(format, args...))
	}
	valid, ok := ValidOperations[a.ResourceType]
	switch {
	case !ok:
		return bad("resource type %s cannot hold ACLs (TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID, DELEGATION_TOKEN, USER)", a.ResourceType)
	case a.PatternType != Literal && a.PatternType != Prefixed:
		return bad("pattern type %s: want LITERAL or PREFIXED", a.PatternType)
	case a.ResourceName == "":
		return bad("the resource name is empty")
	case a.ResourceType == Cluster && a.ResourceName != ClusterName:
		return bad("the cluster resource is named %q, not %q", ClusterName, a.ResourceName)
	case a.Permission != Allow && a.Permission != Deny:
		return bad("permission %s: want ALLOW or DENY", a.Permission)
	case a.Host == "":
		return bad("the host is empty (use * for any host)")
	}
	if _, err := ParsePrincipal(a.Principal); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidACL, err)
	}
	if a.Operation != All && !containsOp(valid, a.Operation) {
		return bad("operation %s does not apply to a %s (valid: %s)", a.Operation, a.ResourceType, opNames(valid))
	}
	return nil
}

func containsOp(ops []Operation, op Operation) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

func opNames(ops []Operation) string {
	var s []string
	for _, o := range ops {
		s = append(s, o.String())
	}
	return strings.Join(s, ", ")
}

// Filter selects ACLs, as DescribeAcls and DeleteAcls do: the zero value of
// a field (nil, ANY) matches everything; pattern type MATCH selects the
// ACLs that apply to the named resource (literal, wildcard and prefixed).
type Filter struct {
	ResourceType ResourceType
	ResourceName *string
	PatternType  PatternType
	Principal    *string
	Host         *string
	Operation    Operation
	Permission   Permission
}

// Matches reports whether the filter selects a.
func (f Filter) Matches(a ACL) bool {
	anyType := f.ResourceType == kmsg.ACLResourceTypeAny
	if !anyType && f.ResourceType != a.ResourceType {
		return false
	}
	if f.Principal != nil && *f.Principal != a.Principal {
		return false
	}
	if f.Host != nil && *f.Host != a.Host {
		return false
	}
	if f.Operation != kmsg.ACLOperationAny && f.Operation != a.Operation {
		return false
	}
	if f.Permission != kmsg.ACLPermissionTypeAny && f.Permission != a.Permission {
		return false
	}
	switch f.PatternType {
	case kmsg.ACLResourcePatternTypeAny:
		return f.ResourceName == nil || *f.ResourceName == a.ResourceName
	case kmsg.ACLResourcePatternTypeMatch:
		if f.ResourceName == nil {
			return true
		}
		name := *f.ResourceName
		switch a.PatternType {
		case Literal:
			return a.ResourceName == name || a.ResourceName == Wildcard
		case Prefixed:
			return strings.HasPrefix(name, a.ResourceName)
		}
		return false
	default:
		return f.PatternType == a.PatternType && (f.ResourceName == nil || *f.ResourceName == a.ResourceName)
	}
}

// ValidateFilter checks a filter of DescribeAcls or DeleteAcls.
func (f Filter) Validate() error {
	switch {
	case f.ResourceType == kmsg.ACLResourceTypeUnknown:
		return fmt.Errorf("%w: the filter's resource type is UNKNOWN", ErrInvalidACL)
	case f.PatternType == kmsg.ACLResourcePatternTypeUnknown:
		return fmt.Errorf("%w: the filter's pattern type is UNKNOWN", ErrInvalidACL)
	case f.Operation == kmsg.ACLOperationUnknown:
		return fmt.Errorf("%w: the filter's operation is UNKNOWN", ErrInvalidACL)
	case f.Permission == kmsg.ACLPermissionTypeUnknown:
		return fmt.Errorf("%w: the filter's permission is UNKNOWN", ErrInvalidACL)
	}
	return nil
}

// ACLStore persists ACLs (the broker's metadata store).
type ACLStore interface {
	PutACL(ACL) error
	DeleteACL(ACL) error
}

// Authorizer decides requests with Kafka's rules (StandardAuthorizer): super
// users may do anything; a DENY that matches wins; otherwise an ALLOW of the
// operation, of ALL, or of an operation that implies it (READ, WRITE,
// DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS);
// a resource that no ACL names at all is open only when
// allow.everyone.if.no.acl.found is set.
type Authorizer struct {
	superUsers    map[string]bool
	allowEveryone bool

	mu    sync.Mutex // serialises changes
	index atomic.Pointer[aclIndex]
	store ACLStore
}

// NewAuthorizer builds an authorizer over the stored ACLs; changes go to store.
func NewAuthorizer(superUsers []string, allowEveryoneIfNoACL bool, stored []ACL, store ACLStore) *Authorizer {
	a := &Authorizer{superUsers: map[string]bool{}, allowEveryone: allowEveryoneIfNoACL, store: store}
	for _, u := range superUsers {
		a.superUsers[u] = true
	}
	a.index.Store(newIndex(stored))
	return a
}

// IsSuperUser reports whether principal may do anything.
func (a *Authorizer) IsSuperUser(principal string) bool { return a.superUsers[principal] }

// Authorize decides whether principal, connected from host, may perform op
// on the named resource.
func (a *Authorizer) Authorize(principal, host string, op Operation, rt ResourceType, name string) bool {
	if a.superUsers[principal] {
		return true
	}
	return a.index.Load().authorize(principal, host, op, rt, name, a.allowEveryone)
}

// AuthorizedOperations is the KIP-430 bit set of the operations principal
// may perform on a resource.
func (a *Authorizer) AuthorizedOperations(principal, host string, rt ResourceType, name string) int32 {
	var bits int32
	for _, op := range ValidOperations[rt] {
		if a.Authorize(principal, host, op, rt, name) {
			bits |= 1 << op
		}
	}
	return bits
}

// MayOnSomeResource reports whether principal may perform op on at least
// one resource of the type: an ALLOW ACL of op (or ALL) on some pattern of
// that type applies to it and no DENY of op on every name does (Kafka's
// authorizeByResourceType, which lets WRITE on any topic imply
// IDEMPOTENT_WRITE).
func (a *Authorizer) MayOnSomeResource(principal, host string, op Operation, rt ResourceType) bool {
	if a.superUsers[principal] {
		return true
	}
	ix := a.index.Load()
	byType := ix.byType[rt]
	if byType == nil {
		return a.allowEveryone
	}
	for _, acl := range byType.wildcard {
		if acl.Permission == Deny && acl.appliesTo(principal, host) && (acl.Operation == op || acl.Operation == All) {
			return false
		}
	}
	for _, acl := range ix.all {
		if acl.ResourceType == rt && acl.Permission == Allow && acl.appliesTo(principal, host) && (acl.Operation == op || acl.Operation == All) {
			return true
		}
	}
	return false
}

// ACLs returns every ACL, in a stable order.
func (a *Authorizer) ACLs() []ACL { return append([]ACL(nil), a.index.Load().all...) }

// Describe returns the ACLs a filter selects.
func (a *Authorizer) Describe(f Filter) []ACL {
	var out []ACL
	for _, acl := range a.index.Load().all {
		if f.Matches(acl) {
			out = append(out, acl)
		}
	}
	return out
}

// Add stores new ACLs (those already present are kept once). Each binding
// gets its own error.
func (a *Authorizer) Add(acls []ACL) []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	errs := make([]error, len(acls))
	current := a.index.Load().all
	have := map[string]bool{}
	for _, acl := range current {
		have[acl.Key()] = true
	}
	next := append([]ACL(nil), current...)
	for i, acl := range acls {
		if errs[i] = acl.Validate(); errs[i] != nil || have[acl.Key()] {
			continue
		}
		if errs[i] = a.store.PutACL(acl); errs[i] != nil {
			continue
		}
		have[acl.Key()] = true
		next = append(next, acl)
	}
	a.index.Store(newIndex(next))
	return errs
}

// Delete removes the ACLs each filter selects and returns them per filter.
func (a *Authorizer) Delete(filters []Filter) ([][]ACL, []error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	deleted := make([][]ACL, len(filters))
	errs := make([]error, len(filters))
	current := a.index.Load().all
	gone := map[string]bool{}
	for i, f := range filters {
		if errs[i] = f.Validate(); errs[i] != nil {
			continue
		}
		for _, acl := range current {
			if !f.Matches(acl) {
				continue
			}
			if !gone[acl.Key()] {
				if err := a.store.DeleteACL(acl); err != nil {
					errs[i] = err
					break
				}
				gone[acl.Key()] = true
			}
			deleted[i] = append(deleted[i], acl)
		}
	}
	var next []ACL
	for _, acl := range current {
		if !gone[acl.Key()] {
			next = append(next, acl)
		}
	}
	a.index.Store(newIndex(next))
	return deleted, errs
}

// aclIndex is an immutable view of the ACLs, indexed for authorization.
type aclIndex struct {
	all    []ACL
	byType map[ResourceType]*typeIndex
}

type typeIndex struct {
	literal  map[string][]ACL
	wildcard []ACL // literal "*"
	prefixed []ACL
}

func newIndex(acls []ACL) *aclIndex {
	ix := &aclIndex{all: append([]ACL(nil), acls...), byType: map[ResourceType]*typeIndex{}}
	sort.SliceStable(ix.all, func(i, j int) bool { return ix.all[i].Key() < ix.all[j].Key() })
	for _, acl := range ix.all {
		t := ix.byType[acl.ResourceType]
		if t == nil {
			t = &typeIndex{literal: map[string][]ACL{}}
			ix.byType[acl.ResourceType] = t
		}
		switch {
		case acl.PatternType == Prefixed:
			t.prefixed = append(t.prefixed, acl)
		case acl.ResourceName == Wildcard:
			t.wildcard = append(t.wildcard, acl)
		default:
			t.literal[acl.ResourceName] = append(t.literal[acl.ResourceName], acl)
		}
	}
	return ix
}

func (acl *ACL) appliesTo(principal, host string) bool {
	return (acl.Principal == principal || acl.Principal == WildcardPrincipal) && (acl.Host == host || acl.Host == Wildcard)
}

// allows reports whether an ALLOW binding of acl.Operation grants op.
func allows(granted, op Operation) bool {
	switch {
	case granted == op || granted == All:
		return true
	case op == Describe:
		return granted == Read || granted == Write || granted == Delete || granted == Alter
	case op == DescribeConfigs:
		return granted == AlterConfigs
	}
	return false
}

func (ix *aclIndex) authorize(principal, host string, op Operation, rt ResourceType, name string, allowEveryone bool) bool {
	t := ix.byType[rt]
	if t == nil {
		return allowEveryone
	}
	found, allowed := false, false
	check := func(acls []ACL) bool { // false: denied
		for i := range acls {
			acl := &acls[i]
			found = true
			if !acl.appliesTo(principal, host) {
				continue
			}
			if acl.Permission == Deny {
				if acl.Operation == op || acl.Operation == All {
					return false
				}
			} else if allows(acl.Operation, op) {
				allowed = true
			}
		}
		return true
	}
	if !check(t.literal[name]) || !check(t.wildcard) {
		return false
	}
	for i := range t.prefixed {
		if strings.HasPrefix(name, t.prefixed[i].ResourceName) && !check(t.prefixed[i:i+1]) {
			return false
		}
	}
	if !found {
		return allowEveryone
	}
	return allowed
}
