package fleet

import (
	"path/filepath"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/offering-operator/offering-operator/internal/testutil"
)

// TestMemberRoleIsPartOfTheOperatorRole: every permission the member
// manifest (config/member) gives the operator in a member cluster is one its
// generated role (config/rbac/role.yaml) gives it in the hub, so that
// registering a member never gives the operator more than it has at home.
func TestMemberRoleIsPartOfTheOperatorRole(t *testing.T) {
	member := roleNamed(t, filepath.Join("..", "..", "config", "member"), "offering-operator-member")
	operator := roleNamed(t, filepath.Join("..", "..", "config", "rbac"), "offering-operator-manager")
	for _, rule := range member.Rules {
		for _, group := range rule.APIGroups {
			for _, res := range rule.Resources {
				for _, verb := range rule.Verbs {
					if !slices.ContainsFunc(operator.Rules, func(r rbacv1.PolicyRule) bool {
						return slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, res) && slices.Contains(r.Verbs, verb) && len(r.ResourceNames) == 0
					}) {
						t.Errorf("config/member allows %s %s.%s, which the generated role does not", verb, res, group)
					}
				}
			}
		}
	}
	if len(member.Rules) == 0 {
		t.Fatal("the member role has no rules")
	}
}

func roleNamed(t *testing.T, dir, name string) *rbacv1.ClusterRole {
	t.Helper()
	roles, err := testutil.LoadClusterRoles(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no ClusterRole %s in %s", name, dir)
	return nil
}
