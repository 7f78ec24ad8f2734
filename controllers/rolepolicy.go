package controllers

import (
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// dangerousVerbs are RBAC verbs that let a holder gain more than the role says.
var dangerousVerbs = []string{"*", "escalate", "bind", "impersonate"}

// RolePolicy decides which ClusterRoles offerings may grant.
//
// A ClusterRole is grantable when it is named in the operator's
// --allowed-cluster-roles flag, or when it carries the label
// service.offering.dev/grantable=true and holds no escalate, bind or
// impersonate verb, no wildcard verb or resource ("*", or "*/<subresource>",
// which RBAC matches against that subresource of every resource), no write
// (create, update, patch) on RoleBindings, and no aggregation rule (whose
// rules could grow after validation). cluster-admin is grantable only when
// named in the flag.
//
// A role that may write RoleBindings lets the consumer bind its own subjects
// in the granted namespace; revocation removes only the operator's bindings,
// so those would keep access to a namespace kept after suspension, expiry or
// revocation. Such a role is granted only when a cluster admin names it in
// --allowed-cluster-roles, accepting that (docs/security.md).
type RolePolicy struct {
	allowed map[string]bool
}

// NewRolePolicy returns a RolePolicy that allows the named roles explicitly.
func NewRolePolicy(allowed []string) *RolePolicy {
	p := &RolePolicy{allowed: map[string]bool{}}
	for _, r := range allowed {
		p.allowed[r] = true
	}
	return p
}

// Check returns nil when role may be granted, or an error whose message says why not.
func (p *RolePolicy) Check(role *rbacv1.ClusterRole) error {
	if p.allowed[role.Name] {
		return nil
	}
	if role.Name == "cluster-admin" {
		return fmt.Errorf("ClusterRole cluster-admin is never granted unless named in --allowed-cluster-roles")
	}
	if role.Labels[v1alpha1.LabelGrantable] != "true" {
		return fmt.Errorf("ClusterRole %s is not grantable: label it %s=true or name it in --allowed-cluster-roles",
			role.Name, v1alpha1.LabelGrantable)
	}
	if role.AggregationRule != nil {
		return fmt.Errorf("ClusterRole %s is aggregated, so its permissions can grow after validation; "+
			"name it in --allowed-cluster-roles to grant it", role.Name)
	}
	for _, rule := range role.Rules {
		for _, v := range rule.Verbs {
			if slices.Contains(dangerousVerbs, v) {
				return fmt.Errorf("ClusterRole %s holds the verb %q, which could escalate privileges; "+
					"name it in --allowed-cluster-roles to grant it anyway", role.Name, v)
			}
		}
		if verb, ok := writesRoleBindings(rule); ok {
			return fmt.Errorf("ClusterRole %s may %s RoleBindings, so the consumer could bind its own subjects in the granted namespace "+
				"and keep access after revocation; grant a role without it, or name it in --allowed-cluster-roles to grant it anyway",
				role.Name, verb)
		}
		if r, ok := wildcardResource(rule.Resources); ok {
			return fmt.Errorf("ClusterRole %s holds the wildcard resource %q; name it in --allowed-cluster-roles to grant it anyway",
				role.Name, r)
		}
	}
	return nil
}

// wildcardResource returns the first resource that RBAC matches against every
// resource: "*", or "*/<subresource>" (for example "*/exec" or "*/token").
func wildcardResource(resources []string) (string, bool) {
	for _, r := range resources {
		if r == "*" || strings.HasPrefix(r, "*/") {
			return r, true
		}
	}
	return "", false
}

// writesRoleBindings returns the verb by which rule lets its holder create or
// change RoleBindings (in any API group matching rbac.authorization.k8s.io).
func writesRoleBindings(rule rbacv1.PolicyRule) (string, bool) {
	if !slices.Contains(rule.APIGroups, rbacv1.GroupName) && !slices.Contains(rule.APIGroups, "*") {
		return "", false
	}
	if !slices.Contains(rule.Resources, "rolebindings") {
		return "", false
	}
	for _, v := range rule.Verbs {
		if v == "create" || v == "update" || v == "patch" {
			return v, true
		}
	}
	return "", false
}
