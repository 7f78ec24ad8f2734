package controllers

import (
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

func TestRolePolicy(t *testing.T) {
	labelled := map[string]string{v1alpha1.LabelGrantable: "true"}
	rule := func(verbs, resources []string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{APIGroups: []string{""}, Verbs: verbs, Resources: resources}
	}
	cases := []struct {
		name    string
		role    rbacv1.ClusterRole
		allowed []string
		wantErr string
	}{
		{"labelled narrow role", rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "ok", Labels: labelled},
			Rules: []rbacv1.PolicyRule{rule([]string{"get"}, []string{"pods"})}}, nil, ""},
		{"unlabelled", rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "plain"}}, nil, "not grantable"},
		{"cluster-admin even if labelled", rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "cluster-admin", Labels: labelled}}, nil, "never granted"},
		{"cluster-admin explicitly allowed", rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "cluster-admin"}}, []string{"cluster-admin"}, ""},
		{"escalate", rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "e", Labels: labelled},
			Rules: []rbacv1.PolicyRule{rule([]string{"escalate"}, []string{"roles"})}}, nil, "escalate"},
		{"bind", rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "b", Labels: labelled},
			Rules: []rbacv1.PolicyRule{rule([]string{"bind"}, []string{"roles"})}}, nil, "bind"},
		{"impersonate", rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "i", Labels: labelled},
			Rules: []rbacv1.PolicyRule{rule([]string{"impersonate"}, []string{"users"})}}, nil, "impersonate"},
		{"wildcard verb", rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "w", Labels: labelled},
			Rules: []rbacv1.PolicyRule{rule([]string{"*"}, []string{"pods"})}}, nil, "\"*\""},
		{"wildcard resource", rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "wr", Labels: labelled},
			Rules: []rbacv1.PolicyRule{rule([]string{"get"}, []string{"*"})}}, nil, "wildcard resource"},
		{"aggregated", rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "agg", Labels: labelled},
			AggregationRule: &rbacv1.AggregationRule{}}, nil, "aggregated"},
		{"writes RoleBindings", rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "rb", Labels: labelled},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"rbac.authorization.k8s.io"}, Verbs: []string{"get", "create"}, Resources: []string{"rolebindings"}}}},
			nil, "may create RoleBindings"},
		{"patches RoleBindings in any group", rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "rbp", Labels: labelled},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Verbs: []string{"patch"}, Resources: []string{"rolebindings", "roles"}}}},
			nil, "may patch RoleBindings"},
		{"reads RoleBindings", rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "rbr", Labels: labelled},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"rbac.authorization.k8s.io"}, Verbs: []string{"get", "list", "delete"}, Resources: []string{"rolebindings"}}}},
			nil, ""},
		{"writes RoleBindings, allowed", rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "rb"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"rbac.authorization.k8s.io"}, Verbs: []string{"create"}, Resources: []string{"rolebindings"}}}},
			[]string{"rb"}, ""},
		{"powerful but allowed", rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "edit"},
			Rules: []rbacv1.PolicyRule{rule([]string{"impersonate"}, []string{"serviceaccounts"})}}, []string{"edit"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := NewRolePolicy(tc.allowed).Check(&tc.role)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
