package plugin_test

// Tests of what makes the plugin look and behave like kubectl: -o through
// cli-runtime's printers, --no-headers, -A, --dry-run, status, version and
// shell completion.

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
	"github.com/offering-operator/offering-operator/internal/plugin"
	"github.com/offering-operator/offering-operator/internal/testutil"
)

func TestOutputFormats(t *testing.T) {
	integration(t)
	f := newFixture(t, v1alpha1.ApprovalManual)
	newRequest(t, f, "db", resourceSpec("dedicated-server"), awaiting())

	// -o name prints kubectl's group-qualified name of what was created.
	r := kubectlOffering(t, "request", "rack-space", "--agreement", f.agreement, "-n", f.ns, "--name", "rack-a", "-o", "name")
	expectCode(t, r, plugin.ExitOK)
	if got := strings.TrimSpace(r.stdout); got != "consumptionrequest.service.offering.dev/rack-a" {
		t.Errorf("-o name printed %q", got)
	}
	// -o jsonpath and go-template work on the plugin's own views too.
	r = kubectlOffering(t, "catalog", "-n", f.ns, "-o", "jsonpath={.items[*].item}")
	expectCode(t, r, plugin.ExitOK)
	if r.stdout != "rack-space dedicated-server ha-device installation" {
		t.Errorf("-o jsonpath printed %q", r.stdout)
	}
	r = kubectlOffering(t, "report", f.agreement, "-n", f.ns, "-o", "go-template={{.kind}} {{.apiVersion}} {{range .requests}}{{.name}} {{end}}")
	expectCode(t, r, plugin.ExitOK)
	if r.stdout != "Report "+plugin.OutputGroupVersion+" db rack-a " {
		t.Errorf("-o go-template printed %q", r.stdout)
	}
	// name applies to API objects only; an unknown format names the allowed ones.
	r = kubectlOffering(t, "catalog", "-n", f.ns, "-o", "name")
	expectCode(t, r, plugin.ExitUsage)
	contains(t, "stderr", r.stderr, "jsonpath", "go-template", "backstage")

	// --no-headers drops the header; -A adds kubectl's NAMESPACE column.
	r = kubectlOffering(t, "catalog", "-n", f.ns, "--no-headers")
	expectCode(t, r, plugin.ExitOK)
	if strings.Contains(r.stdout, "AGREEMENT") || len(strings.Split(strings.TrimSpace(r.stdout), "\n")) != 4 {
		t.Errorf("--no-headers printed:\n%s", r.stdout)
	}
	other := newFixture(t, v1alpha1.ApprovalAutomatic)
	r = kubectlOffering(t, "catalog", "-A")
	expectCode(t, r, plugin.ExitOK)
	row(t, r.stdout, "NAMESPACE", "AGREEMENT", "OFFERING", "KIND", "ITEM")
	row(t, r.stdout, f.ns, f.agreement, f.offering, "resource", "rack-space")
	row(t, r.stdout, other.ns, other.agreement, other.offering, "action", "installation")
	// Naming an offering keeps its agreements' items only.
	r = kubectlOffering(t, "catalog", "-A", other.offering, "-o", "jsonpath={.items[*].namespace}")
	expectCode(t, r, plugin.ExitOK)
	if r.stdout != strings.TrimSpace(strings.Repeat(other.ns+" ", 4)) {
		t.Errorf("catalog -A %s covered %q", other.offering, r.stdout)
	}
}

func TestRequestDryRun(t *testing.T) {
	integration(t)
	f := newFixture(t, v1alpha1.ApprovalAutomatic)
	ctx := testContext(t)

	// --dry-run=client -o yaml writes a manifest and creates nothing.
	r := kubectlOffering(t, "request", "ha-device", "--agreement", f.agreement, "-n", f.ns, "--quantity", "2", "--dry-run=client", "-o", "yaml")
	expectCode(t, r, plugin.ExitOK)
	var manifest map[string]any
	must(t, yaml.Unmarshal([]byte(r.stdout), &manifest))
	if _, ok := manifest["status"]; ok {
		t.Errorf("the manifest has a status:\n%s", r.stdout)
	}
	contains(t, "manifest", r.stdout, "apiVersion: service.offering.dev/v1alpha1", "kind: ConsumptionRequest",
		"namespace: "+f.ns, "agreement: "+f.agreement, "name: ha-device-", "quantity: 2")
	if strings.Contains(r.stdout, "creationTimestamp") || strings.Contains(r.stdout, "generateName") {
		t.Errorf("the manifest has server-set or generated fields:\n%s", r.stdout)
	}
	var l v1alpha1.ConsumptionRequestList
	must(t, k8sClient.List(ctx, &l, client.InNamespace(f.ns)))
	if len(l.Items) != 0 {
		t.Fatalf("--dry-run=client created %d requests", len(l.Items))
	}
	// The manifest is what a GitOps tool would apply: the API server takes it.
	var cr v1alpha1.ConsumptionRequest
	must(t, yaml.Unmarshal([]byte(r.stdout), &cr))
	must(t, k8sClient.Create(ctx, &cr))
	if cr.Spec.Goods == nil || cr.Spec.Goods.Quantity != 2 || cr.Namespace != f.ns {
		t.Errorf("applied manifest: %+v", cr.Spec)
	}

	// Without -o, kubectl's one line; --dry-run=server validates and stores nothing.
	r = kubectlOffering(t, "request", "rack-space", "--agreement", f.agreement, "-n", f.ns, "--name", "rack-b", "--dry-run=client")
	expectCode(t, r, plugin.ExitOK)
	contains(t, "stdout", r.stdout, "consumptionrequest.service.offering.dev/rack-b created (dry run)")
	r = kubectlOffering(t, "request", "rack-space", "--agreement", f.agreement, "-n", f.ns, "--name", "rack-c", "--dry-run=server", "-o", "name")
	expectCode(t, r, plugin.ExitOK)
	contains(t, "stdout", r.stdout, "consumptionrequest.service.offering.dev/rack-c")
	for _, name := range []string{"rack-b", "rack-c"} {
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: name}, &cr); !apierrors.IsNotFound(err) {
			t.Errorf("a dry run stored %s: %v", name, err)
		}
	}
	r = kubectlOffering(t, "request", "rack-space", "--agreement", f.agreement, "-n", f.ns, "--dry-run=client", "--wait")
	expectCode(t, r, plugin.ExitUsage)
}

func TestStatus(t *testing.T) {
	integration(t)
	f := newFixture(t, v1alpha1.ApprovalManual)
	ctx := testContext(t)
	setAgreementStatus(t, f, v1alpha1.ServiceAgreementStatus{
		Phase:      v1alpha1.AgreementActive,
		Conditions: []metav1.Condition{cond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonActive, "in force")},
	})
	db := newRequest(t, f, "db", resourceSpec("dedicated-server"), awaiting())
	seen := metav1.NewTime(time.Now().Add(-15 * time.Minute).Truncate(time.Second))
	must(t, k8sClient.Create(ctx, &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "db.awaiting", Namespace: f.ns},
		InvolvedObject: corev1.ObjectReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ConsumptionRequest",
			Namespace: f.ns, Name: db.Name, UID: db.UID},
		Type: corev1.EventTypeNormal, Reason: "AwaitingApproval", Message: "a provider must approve this request",
		Source: corev1.EventSource{Component: "offering-operator"}, FirstTimestamp: seen, LastTimestamp: seen, Count: 2,
	}))

	r := kubectlOffering(t, "status", "db", "-n", f.ns)
	expectCode(t, r, plugin.ExitOK)
	contains(t, "status", r.stdout,
		"Ready=False, AwaitingApproval: ServiceAgreement acme-payments requires a provider to approve this request",
		"kubectl offering approve db -n "+f.ns,
		f.agreement+", phase Active (Ready=True, Active)",
		"Conditions:", "Events:", "Timing:")
	row(t, r.stdout, "Phase:", "AwaitingApproval")
	row(t, r.stdout, "Item:", "resource", "dedicated-server")
	row(t, r.stdout, "Normal", "AwaitingApproval", "15m", "(x2)", "offering-operator", "a", "provider")
	if got := row(t, r.stdout, "Fulfilled", "False", "AwaitingApproval"); !relativeAge.MatchString(got[3]) {
		t.Errorf("condition row without a relative age: %v", got)
	}

	// What was granted is shown once the operator reports it.
	rack := newRequest(t, f, "rack-a", resourceSpec("rack-space"), v1alpha1.ConsumptionRequestStatus{
		Phase:      v1alpha1.RequestFulfilled,
		Conditions: []metav1.Condition{cond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonGranted, "access granted")},
		Cluster:    "member-eu",
		Grant:      &v1alpha1.AccessGrant{Namespace: "payments-rack-a", RoleBindings: []string{"view", "edit"}, ResourceQuota: "quota"},
	})
	r = kubectlOffering(t, "status", rack.Name, "-n", f.ns, "-o", "json")
	expectCode(t, r, plugin.ExitOK)
	var st plugin.RequestStatus
	must(t, json.Unmarshal([]byte(r.stdout), &st))
	if st.Grant == nil || st.Grant.Namespace != "payments-rack-a" || st.Cluster != "member-eu" || st.Why != "Ready=True, Granted: access granted" ||
		st.Next != "" || st.Agreement.Phase != v1alpha1.AgreementActive || len(st.Events) != 0 {
		t.Errorf("status -o json: %+v", st)
	}
	r = kubectlOffering(t, "status", rack.Name, "-n", f.ns)
	row(t, r.stdout, "Namespace:", "payments-rack-a")
	row(t, r.stdout, "Cluster:", "member-eu")
	row(t, r.stdout, "RoleBindings:", "view,", "edit")

	// A request whose agreement expired within the item's grace period says
	// until when its namespace is kept, and how to get it back.
	deadline := metav1.NewTime(time.Now().Add(48 * time.Hour).Truncate(time.Second))
	late := newRequest(t, f, "rack-b", resourceSpec("rack-space"), v1alpha1.ConsumptionRequestStatus{
		Phase:      v1alpha1.RequestRevoked,
		Conditions: []metav1.Condition{cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonGracePeriod, "access is revoked")},
		Grant:      &v1alpha1.AccessGrant{Namespace: "payments-rack-b", ResourceQuota: "quota", RetainedUntil: &deadline},
	})
	r = kubectlOffering(t, "status", late.Name, "-n", f.ns)
	expectCode(t, r, plugin.ExitOK)
	contains(t, "status in the grace period", r.stdout,
		"a provider renews ServiceAgreement "+f.agreement+" (extends spec.validUntil) before "+deadline.UTC().Format(time.RFC3339)+
			" to get namespace payments-rack-b back with its data")
	row(t, r.stdout, "Retained", "until:", deadline.UTC().Format(time.RFC3339), "(then", "deleted,", "unless", "the", "agreement", "is", "renewed)")

	r = kubectlOffering(t, "status", "no-such-request", "-n", f.ns)
	expectCode(t, r, plugin.ExitError)
	contains(t, "stderr", r.stderr, "not found")
}

func TestVersion(t *testing.T) {
	integration(t)
	r := kubectlOffering(t, "version")
	expectCode(t, r, plugin.ExitOK)
	row(t, r.stdout, "Client", "Version:", plugin.Version())
	if got := row(t, r.stdout, "Server", "Version:"); len(got) != 3 || !strings.HasPrefix(got[2], "v") {
		t.Errorf("server version row: %v", got)
	}
	row(t, r.stdout, "Offering", "API:", v1alpha1.GroupVersion.String(), "(served)")

	r = kubectlOffering(t, "version", "--client", "-o", "json")
	expectCode(t, r, plugin.ExitOK)
	var v plugin.VersionInfo
	must(t, json.Unmarshal([]byte(r.stdout), &v))
	if v.Client.Version == "" || v.Client.GoVersion == "" || v.Server != "" || v.API != nil {
		t.Errorf("version --client: %+v", v)
	}
}

func TestCompletion(t *testing.T) {
	integration(t)
	f := newFixture(t, v1alpha1.ApprovalManual)
	newRequest(t, f, "db", resourceSpec("dedicated-server"), awaiting())
	newRequest(t, f, "ha-pair", goodsSpec("ha-device", 2), v1alpha1.ConsumptionRequestStatus{})

	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"approve", "-n", f.ns, ""}, []string{"db", "ha-pair"}},
		{[]string{"accept", "-n", f.ns, "h"}, []string{"ha-pair"}},
		{[]string{"status", "-n", f.ns, ""}, []string{"db", "ha-pair"}},
		{[]string{"report", "-n", f.ns, ""}, []string{f.agreement}},
		{[]string{"request", "-n", f.ns, "--agreement", ""}, []string{f.agreement}},
		{[]string{"request", "-n", f.ns, "--agreement", f.agreement, ""}, []string{"dedicated-server", "ha-device", "installation", "rack-space"}},
		{[]string{"request", "-n", f.ns, "--agreement", f.agreement, "rack-space", ""}, nil},
		{[]string{"catalog", f.offering}, []string{f.offering}},
		{[]string{"catalog", f.offering, f.offering}, nil},
		{[]string{"catalog", "-o", "b"}, []string{"backstage"}},
	} {
		if got := completions(t, tc.args...); strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("completing %v: got %v, want %v", tc.args, got, tc.want)
		}
	}
}

// completions runs cobra's __complete, as kubectl_complete-offering does, and
// returns the candidates (without the directive line).
func completions(t *testing.T, args ...string) []string {
	t.Helper()
	r := kubectlOffering(t, append([]string{"__complete"}, args...)...)
	expectCode(t, r, plugin.ExitOK)
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if l != "" && !strings.HasPrefix(l, ":") {
			out = append(out, strings.SplitN(l, "\t", 2)[0])
		}
	}
	return out
}

// yamlDocuments splits a YAML stream into documents.
func yamlDocuments(t *testing.T, s string) []map[string]any {
	t.Helper()
	objs, err := testutil.DecodeObjects([]byte(s))
	if err != nil {
		t.Fatalf("decoding YAML: %v", err)
	}
	docs := make([]map[string]any, len(objs))
	for i, u := range objs {
		docs[i] = u.Object
	}
	return docs
}

// TestRequestWaitDeleted: --wait watches the request, so a deletion while
// waiting ends the wait at once with a clear error rather than at the timeout.
func TestRequestWaitDeleted(t *testing.T) {
	integration(t)
	f := newFixture(t, v1alpha1.ApprovalAutomatic)
	ctx := testContext(t)
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				cr := &v1alpha1.ConsumptionRequest{}
				if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "short-lived"}, cr); err == nil {
					time.Sleep(time.Second) // while the plugin watches (a deletion before is caught by the first list)
					return k8sClient.Delete(ctx, cr)
				}
			}
			return errors.New("the request never appeared")
		}()
	}()
	start := time.Now()
	r := kubectlOffering(t, "request", "rack-space", "--agreement", f.agreement, "-n", f.ns, "--name", "short-lived", "--wait", "--timeout", "40s")
	must(t, <-done)
	expectCode(t, r, plugin.ExitError)
	contains(t, "stderr", r.stderr, "request short-lived was deleted while waiting")
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the wait took %s: it did not see the deletion", took)
	}
}
