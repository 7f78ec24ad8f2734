package controllers

import (
	"regexp"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func TestEvaluateLifecycle(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(d)} }
	ready := &v1alpha1.ServiceOffering{Status: v1alpha1.ServiceOfferingStatus{Conditions: []metav1.Condition{
		{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonValid}}}}
	notReady := &v1alpha1.ServiceOffering{Status: v1alpha1.ServiceOfferingStatus{Conditions: []metav1.Condition{
		{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonClusterRoleNotFound, Message: "ClusterRole x does not exist"}}}}
	deleting := metav1.NewTime(now)

	cases := []struct {
		name        string
		spec        v1alpha1.ServiceAgreementSpec
		off         *v1alpha1.ServiceOffering
		deleting    bool
		phase       v1alpha1.AgreementPhase
		reason      string
		requeue     time.Duration
		msgContains string
	}{
		{name: "active open-ended", off: ready, phase: v1alpha1.AgreementActive, reason: v1alpha1.ReasonActive},
		{name: "active until", spec: v1alpha1.ServiceAgreementSpec{ValidUntil: at(time.Hour)}, off: ready,
			phase: v1alpha1.AgreementActive, reason: v1alpha1.ReasonActive, requeue: time.Hour},
		{name: "not yet valid", spec: v1alpha1.ServiceAgreementSpec{ValidFrom: at(30 * time.Minute)}, off: ready,
			phase: v1alpha1.AgreementPending, reason: v1alpha1.ReasonNotYetValid, requeue: 30 * time.Minute},
		{name: "valid from now", spec: v1alpha1.ServiceAgreementSpec{ValidFrom: at(0)}, off: ready,
			phase: v1alpha1.AgreementActive, reason: v1alpha1.ReasonActive},
		{name: "expired exactly at validUntil", spec: v1alpha1.ServiceAgreementSpec{ValidUntil: at(0)}, off: ready,
			phase: v1alpha1.AgreementExpired, reason: v1alpha1.ReasonExpired},
		{name: "expired beats suspended", spec: v1alpha1.ServiceAgreementSpec{ValidUntil: at(-time.Second), Suspended: true}, off: ready,
			phase: v1alpha1.AgreementExpired, reason: v1alpha1.ReasonExpired},
		{name: "suspended requeues at expiry", spec: v1alpha1.ServiceAgreementSpec{Suspended: true, ValidUntil: at(2 * time.Hour)}, off: ready,
			phase: v1alpha1.AgreementSuspended, reason: v1alpha1.ReasonSuspended, requeue: 2 * time.Hour},
		{name: "offering missing", phase: v1alpha1.AgreementPending, reason: v1alpha1.ReasonOfferingNotFound},
		{name: "offering not ready", off: notReady, phase: v1alpha1.AgreementPending, reason: v1alpha1.ReasonOfferingNotReady,
			msgContains: "ClusterRole x does not exist"},
		{name: "terminating", off: ready, deleting: true, phase: v1alpha1.AgreementTerminating, reason: v1alpha1.ReasonTerminating},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			agr := &v1alpha1.ServiceAgreement{Spec: tc.spec}
			agr.Spec.Offering = "o"
			if tc.deleting {
				agr.DeletionTimestamp = &deleting
			}
			got := evaluateLifecycle(agr, tc.off, now)
			if got.Phase != tc.phase || got.Reason != tc.reason || got.RequeueAfter != tc.requeue {
				t.Errorf("got %s/%s requeue %s, want %s/%s requeue %s", got.Phase, got.Reason, got.RequeueAfter, tc.phase, tc.reason, tc.requeue)
			}
			if !strings.Contains(got.Message, tc.msgContains) {
				t.Errorf("message %q does not contain %q", got.Message, tc.msgContains)
			}
		})
	}
}

func TestRequestedNameRefusal(t *testing.T) {
	allow := &v1alpha1.ResourceItem{Namespace: v1alpha1.NamespaceTemplate{AllowRequestedName: true}}
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
	} {
		cr := &v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "r"},
			Spec: v1alpha1.ConsumptionRequestSpec{Resource: &v1alpha1.ResourceRequest{Name: "x", NamespaceName: v1alpha1.NamespaceName(tc.asked)}}}
		got := requestedNameRefusal(cr, tc.item)
		if (got == "") != (tc.want == "") || !strings.Contains(got, tc.want) {
			t.Errorf("requestedNameRefusal(%q, %+v) = %q, want %q", tc.asked, tc.item, got, tc.want)
		}
	}
}

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

func TestComputeUsage(t *testing.T) {
	agr := &v1alpha1.ServiceAgreement{
		Spec: v1alpha1.ServiceAgreementSpec{Entitlements: v1alpha1.Entitlements{
			Resources: []v1alpha1.ResourceEntitlement{{Name: "limited", MaxGrants: ptr.To[int32](2)}, {Name: "free"}},
		}},
		Status: v1alpha1.ServiceAgreementStatus{Allocations: []v1alpha1.Allocation{
			{Request: "a", UID: "1", Kind: v1alpha1.ItemKindResource, Item: "limited", Quantity: 1},
			{Request: "b", UID: "2", Kind: v1alpha1.ItemKindResource, Item: "limited", Quantity: 1},
		}},
	}
	admitted := &metav1.Time{}
	req := func(item string, phase v1alpha1.RequestPhase) v1alpha1.ConsumptionRequest {
		return v1alpha1.ConsumptionRequest{
			Spec:   v1alpha1.ConsumptionRequestSpec{Resource: &v1alpha1.ResourceRequest{Name: v1alpha1.ItemName(item)}},
			Status: v1alpha1.ConsumptionRequestStatus{Phase: phase, AdmittedAt: admitted},
		}
	}
	requests := []v1alpha1.ConsumptionRequest{
		req("free", v1alpha1.RequestFulfilled), req("free", v1alpha1.RequestRevoked),
		req("free", v1alpha1.RequestDenied), req("free", v1alpha1.RequestFailed),
		{Spec: v1alpha1.ConsumptionRequestSpec{Resource: &v1alpha1.ResourceRequest{Name: "free"}}}, // not admitted
	}
	usage := computeUsage(agr, requests)
	if len(usage) != 2 || usage[0].Used != 2 || *usage[0].Limit != 2 || usage[1].Used != 2 || usage[1].Limit != nil {
		t.Fatalf("usage %+v", usage)
	}
	if ex := exhaustedItems(usage); len(ex) != 1 || !strings.Contains(ex[0], "limited (2 of 2)") {
		t.Errorf("exhausted %v", ex)
	}
	counts := countRequests(requests)
	if counts.Total != 5 || counts.Fulfilled != 1 || counts.Revoked != 1 || counts.Denied != 1 || counts.Failed != 1 || counts.Pending != 1 {
		t.Errorf("counts %+v", counts)
	}
}

func TestRepresentativeAttributes(t *testing.T) {
	role := &rbacv1.ClusterRole{Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"one"}, Verbs: []string{"get"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"list", "get"}},
	}}
	a := representativeAttributes(role, "ns")
	if a == nil || a.Group != "apps" || a.Resource != "deployments" || a.Verb != "list" || a.Namespace != "ns" {
		t.Errorf("attributes %+v", a)
	}
	if representativeAttributes(&rbacv1.ClusterRole{Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/x"}, Verbs: []string{"get"}}}}, "ns") != nil {
		t.Error("a role without resource rules has nothing to check")
	}
}

func TestPruneNulls(t *testing.T) {
	var typedNil map[string]any
	m := map[string]any{
		"keep":  "x",
		"null":  nil,
		"typed": typedNil,
		"empty": map[string]any{"inner": nil},
		"deep":  map[string]any{"a": map[string]any{}, "b": int64(1)},
		"list":  []any{map[string]any{"x": nil, "y": "z"}},
	}
	pruneNulls(m)
	if _, ok := m["null"]; ok {
		t.Error("null kept")
	}
	if _, ok := m["typed"]; ok {
		t.Error("typed nil map kept")
	}
	if _, ok := m["empty"]; ok {
		t.Error("object emptied by pruning kept")
	}
	if d := m["deep"].(map[string]any); len(d) != 1 || d["b"] != int64(1) {
		t.Errorf("deep %v", d)
	}
	if l := m["list"].([]any)[0].(map[string]any); len(l) != 1 || l["y"] != "z" {
		t.Errorf("list %v", l)
	}
	if m["keep"] != "x" {
		t.Error("value lost")
	}
}

func TestStatusConditionsKeepOtherWriters(t *testing.T) {
	cond := func(typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: typ + " " + reason}
	}
	// The server holds a provider's Approved and Fulfilled (a manual action) and the operator's Ready.
	current := []metav1.Condition{
		cond(v1alpha1.ConditionApproved, metav1.ConditionTrue, "ApprovedByProvider"),
		cond(v1alpha1.ConditionReady, metav1.ConditionFalse, "Provisioning"),
		cond(v1alpha1.ConditionFulfilled, metav1.ConditionTrue, "Done"),
	}
	// The operator's computed list changed the provider's Approved (it must not
	// reach the server), dropped the provider's Fulfilled (it must stay), and
	// sets Ready and a new condition of its own.
	desired := []metav1.Condition{
		cond(v1alpha1.ConditionApproved, metav1.ConditionFalse, "Stale"),
		cond(v1alpha1.ConditionReady, metav1.ConditionTrue, "Fulfilled"),
		cond(v1alpha1.ConditionWithinServiceLevel, metav1.ConditionTrue, "TargetsMet"),
	}
	got := statusConditions(current, desired, []string{v1alpha1.ConditionReady, v1alpha1.ConditionWithinServiceLevel})
	want := []metav1.Condition{current[0], desired[1], desired[2], current[2]}
	if len(got) != len(want) {
		t.Fatalf("got %d conditions %+v, want %+v", len(got), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("condition %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	// An owned condition the operator removed is gone; nothing else is.
	got = statusConditions(current, []metav1.Condition{current[0], current[2]}, []string{v1alpha1.ConditionReady})
	if len(got) != 2 || got[0].Type != v1alpha1.ConditionApproved || got[1].Type != v1alpha1.ConditionFulfilled {
		t.Errorf("after removing Ready: %+v", got)
	}
}

func TestRequestStalled(t *testing.T) {
	ready := func(status metav1.ConditionStatus, reason string) *metav1.Condition {
		return &metav1.Condition{Type: v1alpha1.ConditionReady, Status: status, Reason: reason}
	}
	cases := []struct {
		phase v1alpha1.RequestPhase
		ready *metav1.Condition
		want  bool
	}{
		{v1alpha1.RequestFulfilled, ready(metav1.ConditionTrue, v1alpha1.ReasonGranted), false},
		{v1alpha1.RequestPending, ready(metav1.ConditionFalse, v1alpha1.ReasonAgreementNotActive), false},
		{v1alpha1.RequestAwaitingApproval, ready(metav1.ConditionFalse, v1alpha1.ReasonAwaitingApproval), false},
		{v1alpha1.RequestProvisioning, ready(metav1.ConditionFalse, v1alpha1.ReasonProvisioning), false},
		{v1alpha1.RequestProvisioning, ready(metav1.ConditionFalse, v1alpha1.ReasonAccessDenied), true},
		{v1alpha1.RequestProvisioning, ready(metav1.ConditionFalse, v1alpha1.ReasonSourceNotFound), true},
		{v1alpha1.RequestDelivered, ready(metav1.ConditionFalse, v1alpha1.ReasonAwaitingAcceptance), false},
		{v1alpha1.RequestDenied, ready(metav1.ConditionFalse, v1alpha1.ReasonEntitlementExhausted), true},
		{v1alpha1.RequestFailed, ready(metav1.ConditionFalse, v1alpha1.ReasonActionFailed), true},
		{v1alpha1.RequestRejected, ready(metav1.ConditionFalse, v1alpha1.ReasonRejectedByConsumer), false},
		{v1alpha1.RequestRejected, ready(metav1.ConditionFalse, v1alpha1.ReasonAcceptanceDeadlinePassed), true},
		{v1alpha1.RequestRevoked, ready(metav1.ConditionFalse, v1alpha1.ReasonRevoked), false},
		{v1alpha1.RequestFailed, nil, false},
	}
	for _, tc := range cases {
		reason := "<none>"
		if tc.ready != nil {
			reason = tc.ready.Reason
		}
		if got := requestStalled(tc.phase, tc.ready); got != tc.want {
			t.Errorf("requestStalled(%s, %s) = %v, want %v", tc.phase, reason, got, tc.want)
		}
	}
}
