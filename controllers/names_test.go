package controllers

import (
	"regexp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func TestGrantNamespaceName(t *testing.T) {
	req := func(ns, name, asked string) *v1alpha1.ConsumptionRequest {
		cr := &v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: v1alpha1.ConsumptionRequestSpec{Resource: &v1alpha1.ResourceRequest{Name: "x", NamespaceName: v1alpha1.NamespaceName(asked)}}}
		return cr
	}
	allow := &v1alpha1.ResourceItem{Namespace: v1alpha1.NamespaceTemplate{AllowRequestedName: true}}
	deny := &v1alpha1.ResourceItem{}

	if got := grantNamespaceName(req("team", "r", "wanted"), allow); got != "wanted" {
		t.Errorf("allowed requested name: %s", got)
	}
	if got := grantNamespaceName(req("team", "r", "wanted"), deny); got == "wanted" {
		t.Errorf("requested name used although not allowed")
	}
	a := grantNamespaceName(req("a-b", "c", ""), nil)
	b := grantNamespaceName(req("a", "b-c", ""), nil)
	if a == b {
		t.Errorf("a-b/c and a/b-c derive the same name %s", a)
	}
	long := grantNamespaceName(req(strings.Repeat("n", 63), strings.Repeat("r", 63), ""), nil)
	for _, n := range []string{a, b, long, grantNamespaceName(req("team.x", "UPPER_case", ""), nil)} {
		if len(n) > 63 || !dnsLabel.MatchString(n) {
			t.Errorf("%q is not a DNS label", n)
		}
	}
	first, second := grantNamespaceName(req("team", "r", ""), nil), grantNamespaceName(req("team", "r", ""), nil)
	if first != second {
		t.Error("name is not deterministic")
	}
	if rb := roleBindingName("system:aggregate-to-edit"); strings.ContainsAny(rb, ":/") || len(rb) > 253 {
		t.Errorf("role binding name %q", rb)
	}
}

func TestRequestedNameRefusal(t *testing.T) {
	allow := &v1alpha1.ResourceItem{Namespace: v1alpha1.NamespaceTemplate{AllowRequestedName: true}}
	prefixed := &v1alpha1.ResourceItem{Namespace: v1alpha1.NamespaceTemplate{AllowRequestedName: true, RequestedNamePrefix: "sbx-"}}
	for _, tc := range []struct {
		asked string
		item  *v1alpha1.ResourceItem
		want  string // part of the refusal; "" when allowed
	}{
		{"", nil, ""},
		{"", allow, ""},
		{"team-a-dev", allow, ""},
		{"team-a-dev", &v1alpha1.ResourceItem{}, "does not allow choosing"},
		{"team-a-dev", nil, "does not allow choosing"},
		{"team-a-", allow, `must start with "team-a-"`},
		{"team-ab", allow, `must start with "team-a-"`},
		{"team-b-dev", allow, `must start with "team-a-"`},
		{"colo-provider", allow, "(for example team-a-colo-provider)"},
		{"team-a-", allow, "(for example team-a-dev)"},
		// With a prefix the offering declares, the consumer's namespace stays in the name.
		{"sbx-team-a-dev", prefixed, ""},
		{"team-a-dev", prefixed, `must start with "sbx-team-a-" (for example sbx-team-a-dev)`},
		{"sbx-dev", prefixed, `must start with "sbx-team-a-"`},
		{"sbx-team-b-dev", prefixed, `must start with "sbx-team-a-"`},
		{"sbx-team-a-", prefixed, `must start with "sbx-team-a-"`},
	} {
		cr := &v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "r"},
			Spec: v1alpha1.ConsumptionRequestSpec{Resource: &v1alpha1.ResourceRequest{Name: "x", NamespaceName: v1alpha1.NamespaceName(tc.asked)}}}
		got := requestedNameRefusal(cr, tc.item)
		if (got == "") != (tc.want == "") || !strings.Contains(got, tc.want) {
			t.Errorf("requestedNameRefusal(%q, %+v) = %q, want %q", tc.asked, tc.item, got, tc.want)
		}
	}
}
