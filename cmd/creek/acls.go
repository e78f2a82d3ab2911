package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/auth"
)

// aclFlags are kafka-acls' flags: principals and hosts, operations,
// resources and the pattern type.
type aclFlags struct {
	allowPrincipals, denyPrincipals []string
	allowHosts, denyHosts           []string
	principals                      []string // list: whose ACLs
	operations                      []string
	topics, groups, txnIDs, tokens  []string
	users                           []string
	cluster                         bool
	patternType                     string
	producer, consumer, idempotent  bool
}

func (a *aclFlags) add(f *pflag.FlagSet, list bool) {
	if list {
		f.StringArrayVar(&a.principals, "principal", nil, "only the ACLs of this principal, such as User:alice (repeatable)")
	} else {
		f.StringArrayVar(&a.allowPrincipals, "allow-principal", nil, "principal allowed, such as User:alice or User:* (repeatable)")
		f.StringArrayVar(&a.denyPrincipals, "deny-principal", nil, "principal denied (repeatable)")
		f.StringArrayVar(&a.allowHosts, "allow-host", nil, "host (IP address) the allowed principals may connect from; default * (repeatable)")
		f.StringArrayVar(&a.denyHosts, "deny-host", nil, "host the denied principals are refused from; default * (repeatable)")
		f.StringArrayVar(&a.operations, "operation", nil, "Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, CreateTokens, DescribeTokens or All (repeatable)")
		f.BoolVar(&a.producer, "producer", false, "the ACLs a producer needs: Write, Describe and Create on the topics (and Write, Describe on --transactional-id)")
		f.BoolVar(&a.consumer, "consumer", false, "the ACLs a consumer needs: Read and Describe on the topics, Read on the groups")
		f.BoolVar(&a.idempotent, "idempotent", false, "with --producer: IdempotentWrite on the cluster too")
	}
	f.StringArrayVar(&a.topics, "topic", nil, "topic name, * for every topic, or a prefix with --resource-pattern-type prefixed (repeatable)")
	f.StringArrayVar(&a.groups, "group", nil, "consumer group name (repeatable)")
	f.StringArrayVar(&a.txnIDs, "transactional-id", nil, "transactional id (repeatable)")
	f.StringArrayVar(&a.tokens, "delegation-token", nil, "delegation token id (repeatable)")
	f.StringArrayVar(&a.users, "user-principal", nil, "user resource, for CreateTokens and DescribeTokens (repeatable)")
	f.BoolVar(&a.cluster, "cluster", false, "the cluster resource")
	def := "literal"
	if list {
		def = "any"
	}
	f.StringVar(&a.patternType, "resource-pattern-type", def, "literal, prefixed, or (list and remove) any or match")
}

// resource is a resource named by the flags.
type resource struct {
	typ  kmsg.ACLResourceType
	name string
}

func (a *aclFlags) resources() []resource {
	var out []resource
	for _, r := range []struct {
		typ   kmsg.ACLResourceType
		names []string
	}{{auth.Topic, a.topics}, {auth.Group, a.groups}, {auth.TransactionalID, a.txnIDs}, {auth.DelegationToken, a.tokens}, {auth.User, a.users}} {
		for _, n := range r.names {
			out = append(out, resource{r.typ, n})
		}
	}
	if a.cluster {
		out = append(out, resource{auth.Cluster, auth.ClusterName})
	}
	return out
}

func (a *aclFlags) pattern(creating bool) (kmsg.ACLResourcePatternType, error) {
	p, err := kmsg.ParseACLResourcePatternType(a.patternType)
	if err != nil || p == kmsg.ACLResourcePatternTypeUnknown {
		return 0, usageError{fmt.Errorf("--resource-pattern-type %q: want literal, prefixed, any or match", a.patternType)}
	}
	if creating && p != auth.Literal && p != auth.Prefixed {
		return 0, usageError{fmt.Errorf("--resource-pattern-type %s: an ACL is added with literal or prefixed", a.patternType)}
	}
	return p, nil
}

func parseOperations(names []string) ([]kmsg.ACLOperation, error) {
	var out []kmsg.ACLOperation
	for _, n := range names {
		op, err := kmsg.ParseACLOperation(n)
		if err != nil || op == kmsg.ACLOperationAny || op == kmsg.ACLOperationUnknown {
			return nil, usageError{fmt.Errorf("--operation %q: want Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, CreateTokens, DescribeTokens or All", n)}
		}
		out = append(out, op)
	}
	return out, nil
}

// bindings are the ACLs the flags name, for add (and the filters of remove,
// with any for what the flags leave open).
func (a *aclFlags) bindings(creating bool) ([]auth.ACL, error) {
	pattern, err := a.pattern(creating)
	if err != nil {
		return nil, err
	}
	ops, err := parseOperations(a.operations)
	if err != nil {
		return nil, err
	}
	if (a.producer || a.consumer) && len(ops) > 0 {
		return nil, usageError{errors.New("--producer and --consumer choose the operations; leave out --operation")}
	}
	if len(a.allowPrincipals)+len(a.denyPrincipals) == 0 && creating {
		return nil, usageError{errors.New("name who the ACL is for: --allow-principal User:NAME or --deny-principal User:NAME")}
	}
	for _, p := range append(append([]string(nil), a.allowPrincipals...), a.denyPrincipals...) {
		if _, err := auth.ParsePrincipal(p); err != nil {
			return nil, usageError{err}
		}
	}
	resources := a.resources()
	if len(resources) == 0 {
		return nil, usageError{errors.New("name a resource: --topic, --group, --cluster, --transactional-id, --delegation-token or --user-principal")}
	}
	// What each resource gets: the operations given, or the producer's or
	// consumer's set.
	opsFor := func(r resource) []kmsg.ACLOperation {
		if !a.producer && !a.consumer {
			if len(ops) == 0 {
				if creating {
					return []kmsg.ACLOperation{auth.All}
				}
				return []kmsg.ACLOperation{kmsg.ACLOperationAny}
			}
			return ops
		}
		var out []kmsg.ACLOperation
		switch r.typ {
		case auth.Topic:
			if a.producer {
				out = append(out, auth.Write, auth.Describe, auth.Create)
			}
			if a.consumer {
				out = append(out, auth.Read, auth.Describe)
			}
		case auth.Group:
			if a.consumer {
				out = append(out, auth.Read)
			}
		case auth.TransactionalID:
			if a.producer {
				out = append(out, auth.Write, auth.Describe)
			}
		case auth.Cluster:
			if a.producer && a.idempotent {
				out = append(out, auth.IdempotentWrite)
			}
		}
		return out
	}
	if a.producer && a.idempotent && !a.cluster {
		resources = append(resources, resource{auth.Cluster, auth.ClusterName})
	}
	hosts := func(h []string) []string {
		if len(h) == 0 {
			return []string{auth.Wildcard}
		}
		return h
	}
	var out []auth.ACL
	seen := map[string]bool{}
	for _, side := range []struct {
		perm       kmsg.ACLPermissionType
		principals []string
		hosts      []string
	}{{auth.Allow, a.allowPrincipals, hosts(a.allowHosts)}, {auth.Deny, a.denyPrincipals, hosts(a.denyHosts)}} {
		for _, r := range resources {
			for _, p := range side.principals {
				for _, h := range side.hosts {
					for _, op := range opsFor(r) {
						b := auth.ACL{ResourceType: r.typ, ResourceName: r.name, PatternType: pattern, Principal: p, Host: h, Operation: op, Permission: side.perm}
						if !seen[b.Key()] {
							seen[b.Key()] = true
							out = append(out, b)
						}
					}
				}
			}
		}
	}
	if len(out) == 0 {
		return nil, usageError{errors.New("these flags name no ACL: --producer needs --topic (or --transactional-id), --consumer needs --topic or --group")}
	}
	return out, nil
}

func newACLsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "acls",
		Short: "Add, list and remove ACLs, with kafka-acls' flags",
		Long: `Manage the access control lists of creek's broker or any Kafka cluster through
the Kafka protocol (CreateAcls, DescribeAcls, DeleteAcls), with the flags of
Kafka's kafka-acls tool. An ACL allows or denies a principal (User:alice) an
operation (Read, Write, ...) on a resource (a topic, a group, the cluster, a
transactional id), named literally, by prefix, or * for all. A deny wins over
an allow. See docs/security.md for what each Kafka request needs.`,
	}
	a := newAdminCmd(cmd)
	cmd.AddCommand(aclsAddCommand(a), aclsListCommand(a), aclsRemoveCommand(a))
	return cmd
}

func aclsAddCommand(a *adminCmd) *cobra.Command {
	var f aclFlags
	cmd := &cobra.Command{
		Use:   "add",
		Short: "Add ACLs",
		Example: `  creek acls add --allow-principal User:alice --operation Read --topic tweets --group dashboard
  creek acls add --allow-principal User:collector --producer --topic tweets
  creek acls add --allow-principal User:etl --consumer --topic logs- --resource-pattern-type prefixed --group etl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			bindings, err := f.bindings(true)
			if err != nil {
				return err
			}
			return a.kafka.run(cmd, func(ctx context.Context, c *kafkaConn) error {
				req := kmsg.NewPtrCreateACLsRequest()
				for _, b := range bindings {
					cr := kmsg.NewCreateACLsRequestCreation()
					cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = b.ResourceType, b.ResourceName, b.PatternType
					cr.Principal, cr.Host, cr.Operation, cr.PermissionType = b.Principal, b.Host, b.Operation, b.Permission
					req.Creations = append(req.Creations, cr)
				}
				resp, err := req.RequestWith(ctx, c.cl)
				if err != nil {
					return err
				}
				var errs []error
				for i, r := range resp.Results {
					if err := aclError(r.ErrorCode, r.ErrorMessage); err != nil && i < len(bindings) {
						errs = append(errs, fmt.Errorf("%s: %w", bindings[i], err))
					} else if i < len(bindings) {
						fmt.Fprintf(cmd.ErrOrStderr(), "added %s\n", bindings[i])
					}
				}
				return errors.Join(errs...)
			})
		},
	}
	f.add(cmd.Flags(), false)
	return cmd
}

func aclsRemoveCommand(a *adminCmd) *cobra.Command {
	var f aclFlags
	cmd := &cobra.Command{
		Use:   "remove",
		Short: "Remove the ACLs that match the flags",
		Long: `Remove every ACL that matches: the principals, hosts and operations given
(any when left out) on the resources named.`,
		Example: `  creek acls remove --allow-principal User:alice --operation Read --topic tweets
  creek acls remove --topic tweets`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			filters, err := f.removeFilters()
			if err != nil {
				return err
			}
			return a.kafka.run(cmd, func(ctx context.Context, c *kafkaConn) error {
				req := kmsg.NewPtrDeleteACLsRequest()
				req.Filters = filters
				resp, err := req.RequestWith(ctx, c.cl)
				if err != nil {
					return err
				}
				var errs []error
				n := 0
				for _, r := range resp.Results {
					if err := aclError(r.ErrorCode, r.ErrorMessage); err != nil {
						errs = append(errs, err)
						continue
					}
					for _, m := range r.MatchingACLs {
						if err := aclError(m.ErrorCode, m.ErrorMessage); err != nil {
							errs = append(errs, err)
							continue
						}
						n++
						fmt.Fprintf(cmd.ErrOrStderr(), "removed %s\n", auth.ACL{ResourceType: m.ResourceType, ResourceName: m.ResourceName, PatternType: m.ResourcePatternType,
							Principal: m.Principal, Host: m.Host, Operation: m.Operation, Permission: m.PermissionType})
					}
				}
				if n == 0 && len(errs) == 0 {
					fmt.Fprintln(cmd.ErrOrStderr(), "no ACL matched; nothing was removed")
				}
				return errors.Join(errs...)
			})
		},
	}
	f.add(cmd.Flags(), false)
	return cmd
}

// removeFilters are the delete filters of the flags: each principal, host
// and operation given, any for what is left out.
func (a *aclFlags) removeFilters() ([]kmsg.DeleteACLsRequestFilter, error) {
	pattern, err := a.pattern(false)
	if err != nil {
		return nil, err
	}
	if len(a.resources()) == 0 {
		return nil, usageError{errors.New("name a resource: --topic, --group, --cluster, --transactional-id, --delegation-token or --user-principal")}
	}
	var filters []kmsg.DeleteACLsRequestFilter
	if len(a.allowPrincipals)+len(a.denyPrincipals) > 0 || a.producer || a.consumer {
		bindings, err := a.bindings(false)
		if err != nil {
			return nil, err
		}
		for _, b := range bindings {
			f := kmsg.NewDeleteACLsRequestFilter()
			f.ResourceType, f.ResourceName, f.ResourcePatternType = b.ResourceType, kmsg.StringPtr(b.ResourceName), b.PatternType
			f.Principal, f.Host, f.Operation, f.PermissionType = kmsg.StringPtr(b.Principal), kmsg.StringPtr(b.Host), b.Operation, b.Permission
			if len(a.allowHosts)+len(a.denyHosts) == 0 {
				f.Host = nil
			}
			filters = append(filters, f)
		}
		return filters, nil
	}
	ops, err := parseOperations(a.operations)
	if err != nil {
		return nil, err
	}
	if len(ops) == 0 {
		ops = []kmsg.ACLOperation{kmsg.ACLOperationAny}
	}
	for _, r := range a.resources() {
		for _, op := range ops {
			f := kmsg.NewDeleteACLsRequestFilter()
			f.ResourceType, f.ResourceName, f.ResourcePatternType = r.typ, kmsg.StringPtr(r.name), pattern
			f.Operation, f.PermissionType = op, kmsg.ACLPermissionTypeAny
			filters = append(filters, f)
		}
	}
	return filters, nil
}

func aclsListCommand(a *adminCmd) *cobra.Command {
	var f aclFlags
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List ACLs, all or those of the resources and principals given",
		Example: "  creek acls list\n  creek acls list --topic tweets\n  creek acls list --principal User:alice --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(a.output); err != nil {
				return err
			}
			pattern, err := f.pattern(false)
			if err != nil {
				return err
			}
			var reqs []*kmsg.DescribeACLsRequest
			principals := f.principals
			if len(principals) == 0 {
				principals = []string{""}
			}
			resources := f.resources()
			if len(resources) == 0 {
				resources = []resource{{typ: kmsg.ACLResourceTypeAny}}
			}
			for _, r := range resources {
				for _, p := range principals {
					req := kmsg.NewPtrDescribeACLsRequest()
					req.ResourceType, req.ResourcePatternType = r.typ, pattern
					req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
					if r.name != "" {
						req.ResourceName = kmsg.StringPtr(r.name)
					}
					if p != "" {
						req.Principal = kmsg.StringPtr(p)
					}
					reqs = append(reqs, req)
				}
			}
			var rows []aclRow
			err = a.kafka.run(cmd, func(ctx context.Context, c *kafkaConn) error {
				seen := map[string]bool{}
				for _, req := range reqs {
					resp, err := req.RequestWith(ctx, c.cl)
					if err != nil {
						return err
					}
					if err := aclError(resp.ErrorCode, resp.ErrorMessage); err != nil {
						return err
					}
					for _, r := range resp.Resources {
						for _, e := range r.ACLs {
							b := auth.ACL{ResourceType: r.ResourceType, ResourceName: r.ResourceName, PatternType: r.ResourcePatternType,
								Principal: e.Principal, Host: e.Host, Operation: e.Operation, Permission: e.PermissionType}
							if !seen[b.Key()] {
								seen[b.Key()] = true
								rows = append(rows, aclRowOf(b))
							}
						}
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			sort.Slice(rows, func(i, j int) bool { return rows[i].key() < rows[j].key() })
			if a.output == "json" {
				if rows == nil {
					rows = []aclRow{}
				}
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no ACLs")
				return nil
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "RESOURCE\tNAME\tPATTERN\tPRINCIPAL\tHOST\tOPERATION\tPERMISSION")
			for _, r := range rows {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ResourceType, r.ResourceName, r.PatternType, r.Principal, r.Host, r.Operation, r.Permission)
			}
			return w.Flush()
		},
	}
	f.add(cmd.Flags(), true)
	return cmd
}

// aclRow is an ACL as listed, with Kafka's names.
type aclRow struct {
	ResourceType string `json:"resource_type"`
	ResourceName string `json:"resource_name"`
	PatternType  string `json:"pattern_type"`
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Operation    string `json:"operation"`
	Permission   string `json:"permission"`
}

func aclRowOf(b auth.ACL) aclRow {
	return aclRow{ResourceType: b.ResourceType.String(), ResourceName: b.ResourceName, PatternType: b.PatternType.String(),
		Principal: b.Principal, Host: b.Host, Operation: b.Operation.String(), Permission: b.Permission.String()}
}

func (r aclRow) key() string {
	return strings.Join([]string{r.ResourceType, r.ResourceName, r.PatternType, r.Principal, r.Host, r.Operation, r.Permission}, "\x00")
}

// aclError turns an ACL API error code into an error with advice.
func aclError(code int16, msg *string) error {
	err := kerr.ErrorForCode(code)
	if err == nil {
		return nil
	}
	if errors.Is(err, kerr.SecurityDisabled) {
		return fmt.Errorf("%w: the broker does not enforce ACLs (it has no authenticating listener; see docs/security.md)", err)
	}
	if errors.Is(err, kerr.ClusterAuthorizationFailed) {
		return fmt.Errorf("%w: managing ACLs needs ALTER (listing needs DESCRIBE) on the cluster; log in as a super user", err)
	}
	if msg != nil && *msg != "" {
		return fmt.Errorf("%w: %s", err, *msg)
	}
	return err
}
