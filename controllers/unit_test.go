package controllers

import (
	"regexp"
	"slices"
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

func TestSplitString(t *testing.T) {
	for in, want := range map[string][]string{
		"":                        nil,
		"  sh  -c\t'echo a b'  ":  {"sh", "-c", "'echo a b'"},
		`a "b \" c" d\ e 'f"g' h`: {"a", `"b \" c"`, `d\ e`, `'f"g'`, "h"},
		`unclosed 'x y`:           {"unclosed", "'x y"},
	} {
		if got := splitString(in); !slices.Equal(got, want) {
			t.Errorf("splitString(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnsafeExpansion(t *testing.T) {
	params := []v1alpha1.ActionParameterSpec{{Name: "RACK"}, {Name: "TOKEN", Secret: true}}
	cases := []struct {
		name          string
		command, args []string
		unsafe        string // the parameter named in the refusal, "" when safe
	}{
		{"sh -c with $(RACK)", []string{"sh", "-c", "install $(RACK)"}, nil, "RACK"},
		{"secret parameter", []string{"sh", "-c", "login $(TOKEN)"}, nil, "TOKEN"},
		{"bash with option clusters", []string{"/bin/bash", "-euo", "pipefail", "-c", "x=$(RACK)"}, nil, "RACK"},
		{"-ec cluster", []string{"/bin/sh", "-ec", "echo $(RACK)"}, nil, "RACK"},
		{"script in args", []string{"sh"}, []string{"-c", "echo $(RACK)"}, "RACK"},
		{"no command: args are the command line", nil, []string{"sh", "-c", "echo $(RACK)"}, "RACK"},
		{"busybox sh", []string{"busybox", "sh", "-c", "echo $(RACK)"}, nil, "RACK"},
		{"env with an assignment", []string{"/usr/bin/env", "-i", "LANG=C", "bash", "-c", "echo $(RACK)"}, nil, "RACK"},
		{"after --", []string{"sh", "-c", "--", "echo $(RACK)"}, nil, "RACK"},
		{"the shell reads the variable", []string{"sh", "-c", `install "$RACK"`}, nil, ""},
		{"escaped by $$", []string{"sh", "-c", "echo $$(RACK)"}, nil, ""},
		{"an undeclared variable", []string{"sh", "-c", "echo $(HOME)"}, nil, ""},
		{"value as a positional parameter", []string{"sh", "-c", `install "$1"`, "sh", "$(RACK)"}, nil, ""},
		{"a script file", []string{"sh", "/scripts/install.sh", "$(RACK)"}, nil, ""},
		{"not a shell", []string{"/bin/installer", "--rack", "$(RACK)"}, nil, ""},
		{"no -c", []string{"sh", "-e"}, []string{"$(RACK)"}, ""},
		{"nothing", nil, nil, ""},
		// other interpreters' inline code; fix is how the refusal says to read the value
		{"python -c", []string{"python3", "-c", "import sys; install('$(RACK)')"}, nil, "RACK"},
		{"python with a flag cluster", []string{"/usr/bin/python3.12", "-uc", "print('$(RACK)')"}, nil, "RACK"},
		{"python reads the environment", []string{"python3", "-c", `import os; install(os.environ["RACK"])`}, nil, ""},
		{"python module", []string{"python3", "-m", "installer", "$(RACK)"}, nil, ""},
		{"python script file", []string{"python3", "-W", "ignore", "/app/install.py", "$(RACK)"}, nil, ""},
		{"perl -e", []string{"perl", "-e", "print '$(RACK)'"}, nil, "RACK"},
		{"perl -ne cluster", []string{"perl", "-lne", "print if /$(RACK)/", "/data/list"}, nil, "RACK"},
		{"perl -I before -e", []string{"perl", "-I", "/lib", "-e", "use X; X::go('$(RACK)')"}, nil, "RACK"},
		{"perl script with the value as argument", []string{"perl", "/app/install.pl", "$(RACK)"}, nil, ""},
		{"ruby -e", []string{"ruby", "-rjson", "-e", "puts '$(RACK)'"}, nil, "RACK"},
		{"node --eval=", []string{"node", "--eval=install('$(RACK)')"}, nil, "RACK"},
		{"node -p", []string{"nodejs", "-p", "'$(RACK)'.length"}, nil, "RACK"},
		{"php -r", []string{"php", "-r", "echo '$(RACK)';"}, nil, "RACK"},
		{"awk program", []string{"awk", "-F:", "-v", "x=1", "{ print \"$(RACK)\" }", "/etc/passwd"}, nil, "RACK"},
		{"awk value as an assignment", []string{"awk", "-v", "rack=$(RACK)", "{ print rack }"}, nil, ""},
		{"awk program file", []string{"gawk", "-f", "/app/x.awk", "$(RACK)"}, nil, ""},
		{"through timeout", []string{"timeout", "-s", "KILL", "30s", "sh", "-c", "echo $(RACK)"}, nil, "RACK"},
		{"through tini and nice", []string{"tini", "--", "nice", "-n", "5", "bash", "-c", "echo $(RACK)"}, nil, "RACK"},
		{"through nohup, value as argument", []string{"nohup", "/bin/installer", "$(RACK)"}, nil, ""},
		{"env -u NAME before the shell", []string{"env", "-u", "HOME", "sh", "-c", "echo $(RACK)"}, nil, "RACK"},
		{"env -C DIR before the shell", []string{"env", "-C", "/work", "bash", "-c", "run $(RACK)"}, nil, "RACK"},
		{"env -S splits a shell line", []string{"/usr/bin/env", "-S", "sh -c 'echo $(RACK)'"}, nil, "RACK"},
		{"env -S with the program quoted", []string{"env", "-S", `"/bin/sh" -e -c 'echo $(RACK)'`}, nil, "RACK"},
		{"python through env --split-string=", []string{"env", "--split-string=python3 -c 'print(\"$(RACK)\")'"}, nil, "RACK"},
		{"perl through an env -iS cluster", []string{"env", "-iSperl -e 'print q($(RACK))'"}, nil, "RACK"},
		{"env -S, the shell reads the variable", []string{"env", "-S", `sh -c 'install "$RACK"'`}, nil, ""},
		{"env -S, value as an argument", []string{"env", "-S", "/bin/installer --rack", "$(RACK)"}, nil, ""},
		{"env -u takes the value, not a program", []string{"env", "-u", "sh", "/bin/installer", "-c", "$(RACK)"}, nil, ""},
	}
	fixes := map[string]string{"python": `os.environ["RACK"]`, "perl": `$ENV{RACK}`, "ruby": `ENV["RACK"]`,
		"node": `process.env.RACK`, "php": `getenv("RACK")`, "awk": `ENVIRON["RACK"]`}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			item := &v1alpha1.ActionItem{Name: "install", Type: v1alpha1.ActionAutomated, Parameters: params,
				Job: &v1alpha1.ActionJob{Image: "busybox", Command: c.command, Args: c.args}}
			got := unsafeExpansion(item)
			switch {
			case c.unsafe == "" && got != "":
				t.Errorf("refused: %s", got)
			case c.unsafe != "" && !strings.Contains(got, "$("+c.unsafe+")"):
				t.Errorf("not refused for $(%s): %q", c.unsafe, got)
			case c.unsafe != "":
				fix := `"$` + c.unsafe + `"`
				for lang, f := range fixes {
					if strings.HasPrefix(c.name, lang) {
						fix = f
					}
				}
				if !strings.Contains(got, fix) {
					t.Errorf("the refusal does not say how to fix it (%s): %q", fix, got)
				}
			}
		})
	}
	// Without parameters nothing is a consumer's value.
	if got := unsafeExpansion(&v1alpha1.ActionItem{Job: &v1alpha1.ActionJob{Command: []string{"sh", "-c", "echo $(RACK)"}}}); got != "" {
		t.Errorf("refused without parameters: %s", got)
	}
}
