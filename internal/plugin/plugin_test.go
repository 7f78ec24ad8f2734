package plugin_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
	"github.com/offering-operator/offering-operator/internal/plugin"
)

// TestHelp needs no API server.
func TestHelp(t *testing.T) {
	r := kubectlOffering(t, "--help")
	expectCode(t, r, plugin.ExitOK)
	contains(t, "--help", r.stdout, "kubectl offering", "catalog", "request", "approve", "deny", "accept", "reject", "report",
		"status", "version", "kubectl_complete-offering",
		"Exit codes:", "3  refused", "--namespace", "--kubeconfig", "--context", "--as ")
	row(t, r.stdout, "complete", "Mark", "a", "manual", "service", "action")
	r = kubectlOffering(t, "approve", "--help")
	expectCode(t, r, plugin.ExitOK)
	contains(t, "approve --help", r.stdout, "Exit codes:", "--reason", "--message", "kubectl offering approve")
	r = kubectlOffering(t, "complete", "--help")
	expectCode(t, r, plugin.ExitOK)
	contains(t, "complete --help", r.stdout, "Exit codes:", "--failed", "--reason", "--message", "AwaitingProvider",
		"kubectl offering complete support-ticket -n team-payments")
}

// TestUsageErrors needs no API server: usage is checked before connecting.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bogus"},
		{"catalog", "--bogus"},
		{"catalog", "-o", "xml"},
		{"request"},
		{"request", "rack-space"}, // no --agreement
		{"request", "rack-space", "--agreement", "a", "--kind", "thing"},
		{"request", "installation", "--agreement", "a", "--param", "NOVALUE"},
		{"approve"},
		{"approve", "a", "b"},
		{"approve", "a", "--reason", "not a reason"},
		{"approve", "a", "--reason", v1alpha1.ReasonAutoApproved},
		{"deny", "a"}, // no --message
		{"complete"},
		{"complete", "a", "b"},
		{"complete", "a", "--failed"}, // no --message
		{"complete", "a", "--failed", "--message", "m", "--reason", "Broken"},
		{"complete", "a", "--reason", v1alpha1.ReasonActionFailed},
		{"complete", "a", "--reason", "not a reason"},
		{"accept"},
		{"report"},
		{"report", "a", "-o", "name"}, // name is for API objects
		{"status"},
		{"status", "a", "b"},
		{"version", "extra"},
		{"request", "rack-space", "--agreement", "a", "--dry-run=sometimes"},
		{"request", "rack-space", "--agreement", "a", "--dry-run=client", "--wait"},
		{"request", "rack-space", "--agreement", "a", "-o", "wide"},
	} {
		r := kubectlOffering(t, args...)
		expectCode(t, r, plugin.ExitUsage)
		contains(t, "stderr", r.stderr, "error: ", "--help")
	}
}

func TestRequestCreatesTheRightObject(t *testing.T) {
	integration(t)
	f := newFixture(t, v1alpha1.ApprovalAutomatic)
	ctx := testContext(t)

	// The kind is inferred from the offering; the name generated from the item.
	r := kubectlOffering(t, "request", "rack-space", "--agreement", f.agreement, "-n", f.ns)
	expectCode(t, r, plugin.ExitOK)
	name := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(name, "rack-space-") {
		t.Fatalf("request name %q, want generated from rack-space-", name)
	}
	cr := getRequest(t, f, name)
	if cr.Spec.Agreement != v1alpha1.AgreementName(f.agreement) || cr.Spec.Resource == nil || cr.Spec.Resource.Name != "rack-space" ||
		cr.Spec.Goods != nil || cr.Spec.Action != nil {
		t.Errorf("unexpected spec: %+v", cr.Spec)
	}

	r = kubectlOffering(t, "request", "dedicated-server", "--agreement", f.agreement, "-n", f.ns, "--namespace-name", "payments-db", "--name", "db")
	expectCode(t, r, plugin.ExitOK)
	if strings.TrimSpace(r.stdout) != "db" {
		t.Errorf("printed %q, want db", r.stdout)
	}
	if cr = getRequest(t, f, "db"); cr.Spec.Resource == nil || cr.Spec.Resource.NamespaceName != "payments-db" {
		t.Errorf("unexpected spec: %+v", cr.Spec)
	}

	r = kubectlOffering(t, "request", "ha-device", "--agreement", f.agreement, "-n", f.ns, "--quantity", "2", "--name", "ha-pair")
	expectCode(t, r, plugin.ExitOK)
	if cr = getRequest(t, f, "ha-pair"); cr.Spec.Goods == nil || cr.Spec.Goods.Name != "ha-device" || cr.Spec.Goods.Quantity != 2 || cr.Spec.Goods.Decision != "" {
		t.Errorf("unexpected spec: %+v", cr.Spec.Goods)
	}

	// -o json prints the created object.
	r = kubectlOffering(t, "request", "installation", "--agreement", f.agreement, "-n", f.ns,
		"--param", "RACK=rack-a", "--param", "DEVICE=ha-device-1", "-o", "json")
	expectCode(t, r, plugin.ExitOK)
	var printed v1alpha1.ConsumptionRequest
	must(t, json.Unmarshal([]byte(r.stdout), &printed))
	if printed.Kind != "ConsumptionRequest" || printed.APIVersion != v1alpha1.GroupVersion.String() || printed.Name == "" {
		t.Errorf("printed object lacks kind, apiVersion or name: %+v", printed.TypeMeta)
	}
	cr = getRequest(t, f, printed.Name)
	want := []v1alpha1.ParameterValue{{Name: "RACK", Value: "rack-a"}, {Name: "DEVICE", Value: "ha-device-1"}}
	if cr.Spec.Action == nil || cr.Spec.Action.Name != "installation" || len(cr.Spec.Action.Parameters) != 2 ||
		cr.Spec.Action.Parameters[0] != want[0] || cr.Spec.Action.Parameters[1] != want[1] {
		t.Errorf("unexpected action: %+v", cr.Spec.Action)
	}
	// The plugin is the field manager of what it creates.
	if !managedBy(cr.ManagedFields, plugin.FieldManager, "") {
		t.Errorf("request not created by field manager %s: %+v", plugin.FieldManager, cr.ManagedFields)
	}

	// An ambiguous name needs --kind; with it, the kind is taken.
	r = kubectlOffering(t, "request", "backup", "--agreement", f.agreement, "-n", f.ns)
	expectCode(t, r, plugin.ExitUsage)
	contains(t, "stderr", r.stderr, "--kind")
	r = kubectlOffering(t, "request", "backup", "--agreement", f.agreement, "-n", f.ns, "--kind", "action", "--name", "backup-1")
	expectCode(t, r, plugin.ExitOK)
	if cr = getRequest(t, f, "backup-1"); cr.Spec.Action == nil || cr.Spec.Action.Name != "backup" {
		t.Errorf("unexpected spec: %+v", cr.Spec)
	}

	// Flags of another kind of item, and unknown items, are usage errors; nothing is created.
	var before v1alpha1.ConsumptionRequestList
	must(t, k8sClient.List(ctx, &before, client.InNamespace(f.ns)))
	for _, args := range [][]string{
		{"rack-space", "--quantity", "2"},
		{"ha-device", "--param", "A=b"},
		{"installation", "--namespace-name", "x"},
		{"no-such-item"},
	} {
		r = kubectlOffering(t, append([]string{"request", "--agreement", f.agreement, "-n", f.ns}, args...)...)
		expectCode(t, r, plugin.ExitUsage)
	}
	var after v1alpha1.ConsumptionRequestList
	must(t, k8sClient.List(ctx, &after, client.InNamespace(f.ns)))
	if len(after.Items) != len(before.Items) {
		t.Errorf("refused requests created objects: %d before, %d after", len(before.Items), len(after.Items))
	}

	// A missing agreement is "not found": exit 1.
	r = kubectlOffering(t, "request", "rack-space", "--agreement", "no-such-agreement", "-n", f.ns)
	expectCode(t, r, plugin.ExitError)
	contains(t, "stderr", r.stderr, "not found")
}

func TestRequestWait(t *testing.T) {
	integration(t)
	f := newFixture(t, v1alpha1.ApprovalAutomatic)
	ctx := testContext(t)

	// Stand in for the operator: make the request Ready shortly after it appears.
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				var cr v1alpha1.ConsumptionRequest
				if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "rack-a"}, &cr); err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				cr.Status = v1alpha1.ConsumptionRequestStatus{
					Phase:      v1alpha1.RequestFulfilled,
					Conditions: []metav1.Condition{cond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonGranted, "access granted")},
				}
				return k8sClient.Status().Update(ctx, &cr)
			}
			return nil
		}()
	}()
	r := kubectlOffering(t, "request", "rack-space", "--agreement", f.agreement, "-n", f.ns, "--name", "rack-a", "--wait", "--timeout", "30s")
	must(t, <-done)
	expectCode(t, r, plugin.ExitOK)
	contains(t, "stdout", r.stdout, "rack-a")
	contains(t, "stderr", r.stderr, "phase Fulfilled", "Ready=True (Granted)")

	// Nothing makes this one Ready: the wait times out with exit 1 and reports the phase.
	r = kubectlOffering(t, "request", "rack-space", "--agreement", f.agreement, "-n", f.ns, "--wait", "--timeout", "1s")
	expectCode(t, r, plugin.ExitError)
	contains(t, "stderr", r.stderr, "timed out after 1s")
}

func TestApproveManualRequest(t *testing.T) {
	integration(t)
	f := newFixture(t, v1alpha1.ApprovalManual)
	newRequest(t, f, "db", resourceSpec("dedicated-server"), awaiting())

	r := kubectlOffering(t, "approve", "db", "-n", f.ns, "--message", "capacity confirmed")
	expectCode(t, r, plugin.ExitOK)
	contains(t, "stdout", r.stdout, "consumptionrequest/db approved")

	cr := getRequest(t, f, "db")
	c := findCondition(t, cr, v1alpha1.ConditionApproved)
	if c.Status != metav1.ConditionTrue || c.Reason != plugin.ReasonApprovedByProvider || c.ObservedGeneration != cr.Generation {
		t.Errorf("unexpected Approved condition: %+v", c)
	}
	contains(t, "Approved message", c.Message, "approved by "+testUser, "capacity confirmed")
	// The operator's conditions are untouched and still the operator's.
	if ready := findCondition(t, cr, v1alpha1.ConditionReady); ready.Reason != v1alpha1.ReasonAwaitingApproval {
		t.Errorf("Ready condition changed: %+v", ready)
	}
	findCondition(t, cr, v1alpha1.ConditionFulfilled)
	if !managedBy(cr.ManagedFields, plugin.FieldManager, `k:{\"type\":\"Approved\"}`) {
		t.Errorf("the Approved condition is not owned by %s: %s", plugin.FieldManager, dumpManaged(cr.ManagedFields))
	}
	if managedBy(cr.ManagedFields, plugin.FieldManager, `k:{\"type\":\"Ready\"}`) {
		t.Errorf("%s took ownership of the Ready condition: %s", plugin.FieldManager, dumpManaged(cr.ManagedFields))
	}
	if !managedBy(cr.ManagedFields, operatorManager, `k:{\"type\":\"Ready\"}`) {
		t.Errorf("the operator lost ownership of the Ready condition: %s", dumpManaged(cr.ManagedFields))
	}

	// A decision is final: a second approve or a deny is refused.
	r = kubectlOffering(t, "approve", "db", "-n", f.ns)
	expectCode(t, r, plugin.ExitRefused)
	contains(t, "stderr", r.stderr, "already has a decision")
	r = kubectlOffering(t, "deny", "db", "-n", f.ns, "--message", "changed my mind")
	expectCode(t, r, plugin.ExitRefused)

	// A request that does not wait for approval is refused.
	newRequest(t, f, "pending", resourceSpec("dedicated-server"), v1alpha1.ConsumptionRequestStatus{
		Phase:      v1alpha1.RequestPending,
		Conditions: []metav1.Condition{cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonAgreementNotActive, "waiting")},
	})
	r = kubectlOffering(t, "approve", "pending", "-n", f.ns)
	expectCode(t, r, plugin.ExitRefused)
	contains(t, "stderr", r.stderr, "not AwaitingApproval", "Pending")

	// A request that does not exist: exit 1.
	r = kubectlOffering(t, "approve", "no-such-request", "-n", f.ns)
	expectCode(t, r, plugin.ExitError)
	contains(t, "stderr", r.stderr, "not found")
}

func TestApproveAutomaticIsRefused(t *testing.T) {
	integration(t)
	f := newFixture(t, v1alpha1.ApprovalAutomatic)
	newRequest(t, f, "rack-a", resourceSpec("rack-space"), v1alpha1.ConsumptionRequestStatus{
		Phase: v1alpha1.RequestProvisioning,
		Conditions: []metav1.Condition{
			cond(v1alpha1.ConditionApproved, metav1.ConditionTrue, v1alpha1.ReasonAutoApproved, "approved automatically"),
			cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonProvisioning, "granting"),
		},
	})
	before := getRequest(t, f, "rack-a")
	for _, args := range [][]string{{"approve", "rack-a"}, {"deny", "rack-a", "--message", "no"}} {
		r := kubectlOffering(t, append(args, "-n", f.ns)...)
		expectCode(t, r, plugin.ExitRefused)
		contains(t, "stderr", r.stderr, "approves requests automatically", "approvalPolicy Automatic")
	}
	if after := getRequest(t, f, "rack-a"); after.ResourceVersion != before.ResourceVersion {
		t.Errorf("a refused approval changed the request")
	}
}

func TestDeny(t *testing.T) {
	integration(t)
	f := newFixture(t, v1alpha1.ApprovalManual)
	newRequest(t, f, "db", resourceSpec("dedicated-server"), awaiting())

	r := kubectlOffering(t, "deny", "db", "-n", f.ns, "--message", "no capacity in fra-1")
	expectCode(t, r, plugin.ExitOK)
	contains(t, "stdout", r.stdout, "consumptionrequest/db denied")
	cr := getRequest(t, f, "db")
	c := findCondition(t, cr, v1alpha1.ConditionDenied)
	if c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonDeniedByProvider {
		t.Errorf("unexpected Denied condition: %+v", c)
	}
	contains(t, "Denied message", c.Message, "denied by "+testUser, "no capacity in fra-1")
	if len(cr.Status.Conditions) != 3 {
		t.Errorf("want Ready, Fulfilled and Denied, got %+v", cr.Status.Conditions)
	}
	r = kubectlOffering(t, "approve", "db", "-n", f.ns)
	expectCode(t, r, plugin.ExitRefused)
	contains(t, "stderr", r.stderr, "Denied=True")
}

// awaitingProvider is the status of a manual action request that waits for a provider.
func awaitingProvider(typ v1alpha1.ActionType) v1alpha1.ConsumptionRequestStatus {
	return v1alpha1.ConsumptionRequestStatus{
		Phase:  v1alpha1.RequestProvisioning,
		Action: &v1alpha1.ActionRun{Type: typ, StartedAt: &metav1.Time{Time: time.Now().Truncate(time.Second)}},
		Conditions: []metav1.Condition{
			cond(v1alpha1.ConditionApproved, metav1.ConditionTrue, v1alpha1.ReasonAutoApproved, "approved automatically"),
			cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonAwaitingProvider, "manual action backup waits for a provider"),
		},
	}
}

func actionSpec(item string) v1alpha1.ConsumptionRequestSpec {
	return v1alpha1.ConsumptionRequestSpec{Action: &v1alpha1.ActionRequest{Name: v1alpha1.ItemName(item)}}
}

func TestCompleteManualAction(t *testing.T) {
	integration(t)
	f := newFixture(t, v1alpha1.ApprovalAutomatic)
	newRequest(t, f, "backup-1", actionSpec("backup"), awaitingProvider(v1alpha1.ActionManual))

	r := kubectlOffering(t, "complete", "backup-1", "-n", f.ns, "--message", "restored to rack-a")
	expectCode(t, r, plugin.ExitOK)
	contains(t, "stdout", r.stdout, "consumptionrequest/backup-1 action completed")

	cr := getRequest(t, f, "backup-1")
	c := findCondition(t, cr, v1alpha1.ConditionFulfilled)
	if c.Status != metav1.ConditionTrue || c.Reason != plugin.ReasonCompleted || c.ObservedGeneration != cr.Generation {
		t.Errorf("unexpected Fulfilled condition: %+v", c)
	}
	contains(t, "Fulfilled message", c.Message, "completed by "+testUser, "restored to rack-a")
	// The operator's conditions are untouched and still the operator's.
	if len(cr.Status.Conditions) != 3 {
		t.Errorf("want Approved, Ready and Fulfilled, got %+v", cr.Status.Conditions)
	}
	if ready := findCondition(t, cr, v1alpha1.ConditionReady); ready.Reason != v1alpha1.ReasonAwaitingProvider {
		t.Errorf("Ready condition changed: %+v", ready)
	}
	if approved := findCondition(t, cr, v1alpha1.ConditionApproved); approved.Reason != v1alpha1.ReasonAutoApproved {
		t.Errorf("Approved condition changed: %+v", approved)
	}
	if cr.Status.Phase != v1alpha1.RequestProvisioning || cr.Status.Action == nil || cr.Status.Action.Type != v1alpha1.ActionManual {
		t.Errorf("phase or status.action changed: %s %+v", cr.Status.Phase, cr.Status.Action)
	}
	if !managedBy(cr.ManagedFields, plugin.FieldManager, `k:{\"type\":\"Fulfilled\"}`) {
		t.Errorf("the Fulfilled condition is not owned by %s: %s", plugin.FieldManager, dumpManaged(cr.ManagedFields))
	}
	for _, typ := range []string{"Ready", "Approved"} {
		if managedBy(cr.ManagedFields, plugin.FieldManager, `k:{\"type\":\"`+typ+`\"}`) {
			t.Errorf("%s took ownership of the %s condition: %s", plugin.FieldManager, typ, dumpManaged(cr.ManagedFields))
		}
		if !managedBy(cr.ManagedFields, operatorManager, `k:{\"type\":\"`+typ+`\"}`) {
			t.Errorf("the operator lost ownership of the %s condition: %s", typ, dumpManaged(cr.ManagedFields))
		}
	}

	// Marking is final: a second complete, or a failure, is refused and changes nothing.
	before := getRequest(t, f, "backup-1")
	r = kubectlOffering(t, "complete", "backup-1", "-n", f.ns)
	expectCode(t, r, plugin.ExitRefused)
	contains(t, "stderr", r.stderr, "already marked completed", "Fulfilled=True")
	r = kubectlOffering(t, "complete", "backup-1", "-n", f.ns, "--failed", "--message", "changed my mind")
	expectCode(t, r, plugin.ExitRefused)
	if after := getRequest(t, f, "backup-1"); after.ResourceVersion != before.ResourceVersion {
		t.Errorf("a refused complete changed the request")
	}

	// Once the operator has recorded the outcome, the request is refused too.
	newRequest(t, f, "backup-done", actionSpec("backup"), v1alpha1.ConsumptionRequestStatus{
		Phase:      v1alpha1.RequestFailed,
		Conditions: []metav1.Condition{cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonActionFailed, "failed")},
	})
	r = kubectlOffering(t, "complete", "backup-done", "-n", f.ns)
	expectCode(t, r, plugin.ExitRefused)
	contains(t, "stderr", r.stderr, "already Failed")

	// A request that does not exist: exit 1.
	r = kubectlOffering(t, "complete", "no-such-request", "-n", f.ns)
	expectCode(t, r, plugin.ExitError)
	contains(t, "stderr", r.stderr, "not found")
}

func TestCompleteFailed(t *testing.T) {
	integration(t)
	f := newFixture(t, v1alpha1.ApprovalAutomatic)
	newRequest(t, f, "backup-1", actionSpec("backup"), awaitingProvider(v1alpha1.ActionManual))
	before := getRequest(t, f, "backup-1")

	// --failed needs --message: a usage error, nothing written.
	r := kubectlOffering(t, "complete", "backup-1", "-n", f.ns, "--failed")
	expectCode(t, r, plugin.ExitUsage)
	contains(t, "stderr", r.stderr, "--message")
	if after := getRequest(t, f, "backup-1"); after.ResourceVersion != before.ResourceVersion {
		t.Errorf("a refused complete changed the request")
	}

	r = kubectlOffering(t, "complete", "backup-1", "-n", f.ns, "--failed", "--message", "tape library offline")
	expectCode(t, r, plugin.ExitOK)
	contains(t, "stdout", r.stdout, "consumptionrequest/backup-1 action failed")
	cr := getRequest(t, f, "backup-1")
	c := findCondition(t, cr, v1alpha1.ConditionFulfilled)
	if c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonActionFailed {
		t.Errorf("unexpected Fulfilled condition: %+v", c)
	}
	contains(t, "Fulfilled message", c.Message, "failed by "+testUser, "tape library offline")

	r = kubectlOffering(t, "complete", "backup-1", "-n", f.ns)
	expectCode(t, r, plugin.ExitRefused)
	contains(t, "stderr", r.stderr, "already marked failed")
}

func TestCompleteIsRefused(t *testing.T) {
	integration(t)
	f := newFixture(t, v1alpha1.ApprovalManual)
	ctx := testContext(t)

	// An automated action: its Job decides.
	newRequest(t, f, "install-1", actionSpec("installation"), awaitingProvider(v1alpha1.ActionAutomated))
	// Not an action request.
	newRequest(t, f, "rack-a", resourceSpec("rack-space"), v1alpha1.ConsumptionRequestStatus{
		Phase:      v1alpha1.RequestProvisioning,
		Conditions: []metav1.Condition{cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonProvisioning, "granting")},
	})
	// A manual action still waiting for approval.
	waiting := awaiting()
	waiting.Item = "backup"
	newRequest(t, f, "backup-1", actionSpec("backup"), waiting)

	for _, tc := range []struct {
		name string
		want []string
	}{
		{"install-1", []string{"action installation", "is Automated"}},
		{"rack-a", []string{"not an action request"}},
		{"backup-1", []string{"does not wait for a provider", "AwaitingApproval"}},
	} {
		before := getRequest(t, f, tc.name)
		for _, args := range [][]string{{"complete", tc.name}, {"complete", tc.name, "--failed", "--message", "no"}} {
			r := kubectlOffering(t, append(args, "-n", f.ns)...)
			expectCode(t, r, plugin.ExitRefused)
			contains(t, "stderr", r.stderr, tc.want...)
		}
		if after := getRequest(t, f, tc.name); after.ResourceVersion != before.ResourceVersion {
			t.Errorf("a refused complete changed %s", tc.name)
		}
	}

	// The action's type cannot be found when the agreement's offering cannot be read: exit 1.
	agr := &v1alpha1.ServiceAgreement{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: f.ns},
		Spec: v1alpha1.ServiceAgreementSpec{
			Offering: "no-such-offering",
			Consumer: v1alpha1.Consumer{Name: "Team Payments", Subjects: []v1alpha1.Subject{{Kind: v1alpha1.SubjectGroup, Name: "team-payments"}}},
		},
	}
	must(t, k8sClient.Create(ctx, agr))
	orphan := actionSpec("backup")
	orphan.Agreement = "orphan"
	newRequest(t, f, "backup-2", orphan, awaitingProvider(v1alpha1.ActionManual))
	r := kubectlOffering(t, "complete", "backup-2", "-n", f.ns)
	expectCode(t, r, plugin.ExitError)
	contains(t, "stderr", r.stderr, "reading ServiceOffering no-such-offering", "not found")
}

func TestAcceptAndReject(t *testing.T) {
	integration(t)
	f := newFixture(t, v1alpha1.ApprovalAutomatic)
	delivered := v1alpha1.ConsumptionRequestStatus{
		Phase:      v1alpha1.RequestDelivered,
		Conditions: []metav1.Condition{cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonAwaitingAcceptance, "accept or reject")},
	}
	newRequest(t, f, "ha-pair", goodsSpec("ha-device", 2), delivered)
	newRequest(t, f, "ha-spare", goodsSpec("ha-device", 1), delivered)
	newRequest(t, f, "rack-a", resourceSpec("rack-space"), v1alpha1.ConsumptionRequestStatus{})

	r := kubectlOffering(t, "accept", "ha-pair", "-n", f.ns)
	expectCode(t, r, plugin.ExitOK)
	contains(t, "stdout", r.stdout, "consumptionrequest/ha-pair goods accepted")
	if cr := getRequest(t, f, "ha-pair"); cr.Spec.Goods.Decision != v1alpha1.GoodsAccept || cr.Spec.Goods.Quantity != 2 {
		t.Errorf("unexpected goods: %+v", cr.Spec.Goods)
	}
	for _, verb := range []string{"accept", "reject"} {
		r = kubectlOffering(t, verb, "ha-pair", "-n", f.ns)
		expectCode(t, r, plugin.ExitRefused)
		contains(t, "stderr", r.stderr, "already has the decision Accept")
	}

	r = kubectlOffering(t, "reject", "ha-spare", "-n", f.ns)
	expectCode(t, r, plugin.ExitOK)
	if cr := getRequest(t, f, "ha-spare"); cr.Spec.Goods.Decision != v1alpha1.GoodsReject {
		t.Errorf("unexpected goods: %+v", cr.Spec.Goods)
	}
	r = kubectlOffering(t, "reject", "ha-spare", "-n", f.ns)
	expectCode(t, r, plugin.ExitRefused)

	r = kubectlOffering(t, "accept", "rack-a", "-n", f.ns)
	expectCode(t, r, plugin.ExitRefused)
	contains(t, "stderr", r.stderr, "not a goods request")

	r = kubectlOffering(t, "accept", "no-such-request", "-n", f.ns)
	expectCode(t, r, plugin.ExitError)
}

func TestCatalog(t *testing.T) {
	integration(t)
	f := newFixture(t, v1alpha1.ApprovalAutomatic)
	setAgreementStatus(t, f, v1alpha1.ServiceAgreementStatus{
		Phase: v1alpha1.AgreementActive,
		Usage: []v1alpha1.EntitlementUsage{
			{Kind: v1alpha1.ItemKindResource, Item: "rack-space", Used: 1, Limit: ptr.To[int32](2)},
			{Kind: v1alpha1.ItemKindGoods, Item: "ha-device", Used: 2, Limit: ptr.To[int32](4)},
		},
	})

	r := kubectlOffering(t, "catalog", "-n", f.ns)
	expectCode(t, r, plugin.ExitOK)
	row(t, r.stdout, "AGREEMENT", "OFFERING", "KIND", "ITEM", "LIMIT", "USED", "PHASE", "DESCRIPTION")
	if got := row(t, r.stdout, f.agreement, f.offering, "resource", "rack-space"); strings.Join(got[4:], " ") != "2 1 Active A namespace on shared racks." {
		t.Errorf("rack-space row: %v", got)
	}
	if got := row(t, r.stdout, f.agreement, f.offering, "goods", "ha-device"); got[4] != "4" || got[5] != "2" {
		t.Errorf("ha-device row: %v", got)
	}
	if got := row(t, r.stdout, f.agreement, f.offering, "action", "installation"); got[4] != "3" || got[5] != "0" {
		t.Errorf("installation row: %v", got)
	}

	r = kubectlOffering(t, "catalog", "-n", f.ns, "-o", "json")
	expectCode(t, r, plugin.ExitOK)
	var cat plugin.Catalog
	must(t, json.Unmarshal([]byte(r.stdout), &cat))
	if cat.Namespace != f.ns || len(cat.Items) != 4 {
		t.Fatalf("catalog: %+v", cat)
	}
	if e := cat.Items[0]; e.Item != "rack-space" || e.Kind != v1alpha1.ItemKindResource || e.Used != 1 || e.Limit == nil || *e.Limit != 2 ||
		e.Phase != v1alpha1.AgreementActive || e.Description == "" {
		t.Errorf("first entry: %+v", e)
	}

	r = kubectlOffering(t, "catalog", "-n", f.ns, "-o", "yaml")
	expectCode(t, r, plugin.ExitOK)
	contains(t, "yaml", r.stdout, "item: rack-space", "kind: Resource")

	// An empty namespace is not an error.
	r = kubectlOffering(t, "catalog", "-n", "default")
	expectCode(t, r, plugin.ExitOK)
	contains(t, "stderr", r.stderr, "No agreements")
}

func TestReport(t *testing.T) {
	integration(t)
	f := newFixture(t, v1alpha1.ApprovalManual)
	now := time.Now().UTC().Truncate(time.Second)
	ctx := testContext(t)
	var agr v1alpha1.ServiceAgreement
	must(t, k8sClient.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: f.agreement}, &agr))
	agr.Spec.ServiceLevels = &v1alpha1.ServiceLevels{ServiceLevelTargets: v1alpha1.ServiceLevelTargets{ApprovalTime: &metav1.Duration{Duration: time.Hour},
		FulfilmentTime: &metav1.Duration{Duration: 30 * time.Second}}, Objective: "99.5"}
	ends := metav1.NewTime(now.Add(48 * time.Hour))
	agr.Spec.ValidUntil, agr.Spec.RenewBefore = &ends, &metav1.Duration{Duration: 720 * time.Hour}
	must(t, k8sClient.Update(ctx, &agr))
	setAgreementStatus(t, f, v1alpha1.ServiceAgreementStatus{
		ServiceLevels: &v1alpha1.AgreementServiceLevels{
			Window: &metav1.Duration{Duration: 720 * time.Hour}, Objective: "99.5",
			ServiceLevelCounts: v1alpha1.ServiceLevelCounts{Measured: 1, Breached: 1}, Compliance: "0", Open: 1,
			RecentBreaches: []v1alpha1.ServiceLevelBreach{{Request: "rack-a", Item: "Resource/rack-space", Target: v1alpha1.TargetFulfilment,
				Limit: metav1.Duration{Duration: 30 * time.Second}, BreachedAt: metav1.NewTime(now.Add(-time.Minute)),
				Took: &metav1.Duration{Duration: 72 * time.Second}}},
		},
		Phase: v1alpha1.AgreementActive,
		Conditions: []metav1.Condition{
			cond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonActive, "the agreement is in force"),
			cond(v1alpha1.ConditionEntitlementsExhausted, metav1.ConditionFalse, v1alpha1.ReasonAvailable, "entitlement left"),
			cond(v1alpha1.ConditionExpiringSoon, metav1.ConditionTrue, v1alpha1.ReasonRenewalDue, "the agreement expires soon"),
		},
		ValidUntil: &ends,
		Usage: []v1alpha1.EntitlementUsage{{Kind: v1alpha1.ItemKindResource, Item: "rack-space", Used: 1, Limit: ptr.To[int32](2)},
			{Kind: v1alpha1.ItemKindAction, Item: "installation", Used: 1, Limit: ptr.To[int32](3),
				Period: &metav1.Duration{Duration: 720 * time.Hour}, PeriodEnds: &metav1.Time{Time: now.Add(24 * time.Hour)}}},
		Requests: v1alpha1.RequestCounts{Total: 2, Fulfilled: 1, AwaitingApproval: 1},
	})
	newRequest(t, f, "rack-a", resourceSpec("rack-space"), v1alpha1.ConsumptionRequestStatus{
		Phase:              v1alpha1.RequestFulfilled,
		Conditions:         []metav1.Condition{cond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonGranted, "granted")},
		ApprovedAt:         &metav1.Time{Time: now.Add(-time.Minute)},
		FulfilledAt:        &metav1.Time{Time: now},
		FulfilmentDuration: &metav1.Duration{Duration: 72 * time.Second},
		ServiceLevel:       &v1alpha1.RequestServiceLevel{Breached: []v1alpha1.ServiceLevelTarget{v1alpha1.TargetFulfilment}},
	})
	cr := getRequest(t, f, "rack-a")
	cr.Status.Conditions = append(cr.Status.Conditions, cond(v1alpha1.ConditionWithinServiceLevel, metav1.ConditionFalse,
		v1alpha1.ReasonTargetBreached, "missed the fulfilment target"))
	must(t, k8sClient.Status().Update(ctx, cr, client.FieldOwner(operatorManager)))
	newRequest(t, f, "db", resourceSpec("dedicated-server"), awaiting())
	// A request under another agreement is not part of the report.
	elsewhere := resourceSpec("rack-space")
	elsewhere.Agreement = "another-agreement"
	newRequest(t, f, "elsewhere", elsewhere, v1alpha1.ConsumptionRequestStatus{})

	r := kubectlOffering(t, "report", f.agreement, "-n", f.ns)
	expectCode(t, r, plugin.ExitOK)
	contains(t, "report", r.stdout, "Agreement:", f.ns+"/"+f.agreement, "Offering:", f.offering, "Approval:", "Manual", "Phase:", "Active",
		"Conditions:", "Usage:", "Requests by phase:", "Service levels:", "Requests:",
		"approval 1h0m0s, fulfilment 30s, objective 99.5%", "0% of 1 measured (0 within target, 1 breached); 1 open, 0 at risk",
		"ends "+ends.UTC().Format(time.RFC3339)+", notice 720h0m0s before; EXPIRING SOON: extend spec.validUntil or set spec.autoRenew")
	row(t, r.stdout, "ExpiringSoon", "True", "RenewalDue")
	row(t, r.stdout, "rack-a", "Resource/rack-space", "Fulfilment", "30s", now.Add(-time.Minute).Format(time.RFC3339), "1m12s")
	row(t, r.stdout, "Ready", "True", "Active", "the", "agreement")
	row(t, r.stdout, "resource", "rack-space", "1/2")
	row(t, r.stdout, "resource", "dedicated-server", "0/1")
	row(t, r.stdout, "action", "installation", "1/3", "720h0m0s", now.Add(24*time.Hour).Format(time.RFC3339))
	if got := row(t, r.stdout, "2", "0", "1", "0", "1"); len(got) != 8 {
		t.Errorf("requests by phase: %v", got)
	}
	// The last column is kubectl's relative AGE.
	if got := row(t, r.stdout, "rack-a", "resource"); strings.Join(got[1:len(got)-1], " ") !=
		"resource rack-space - Fulfilled Granted "+now.Add(-time.Minute).Format(time.RFC3339)+" "+now.Format(time.RFC3339)+" 1m12s breached:fulfilment" ||
		!relativeAge.MatchString(got[len(got)-1]) {
		t.Errorf("rack-a row: %v", got)
	}
	if got := row(t, r.stdout, "db"); strings.Join(got[1:len(got)-1], " ") != "resource dedicated-server - AwaitingApproval AwaitingApproval - - - -" ||
		!relativeAge.MatchString(got[len(got)-1]) {
		t.Errorf("db row: %v", got)
	}

	r = kubectlOffering(t, "report", f.agreement, "-n", f.ns, "-o", "json")
	expectCode(t, r, plugin.ExitOK)
	var rep plugin.Report
	must(t, json.Unmarshal([]byte(r.stdout), &rep))
	if rep.Agreement != f.agreement || rep.Phase != v1alpha1.AgreementActive || len(rep.Conditions) != 3 || rep.RequestsBy.Total != 2 ||
		rep.Renewal.Ends == nil || rep.Renewal.ExpiringSoon == nil || rep.Renewal.RenewBefore == nil ||
		len(rep.Requests) != 2 || len(rep.Usage) != 4 || rep.ServiceLevels == nil || rep.ServiceLevels.Breached != 1 ||
		rep.ServiceLevelTargets == nil || rep.ServiceLevelTargets.Objective != "99.5" {
		t.Fatalf("report: %+v", rep)
	}
	// Oldest first; both were created within a second or two, so find rack-a by name.
	q := rep.Requests[0]
	if q.Name != "rack-a" {
		q = rep.Requests[1]
	}
	if q.Name != "rack-a" || q.FulfilmentDuration == nil || q.FulfilmentDuration.Duration != 72*time.Second || q.ReadyReason != v1alpha1.ReasonGranted ||
		q.ServiceLevel != v1alpha1.ReasonTargetBreached || len(q.Breached) != 1 {
		t.Errorf("rack-a: %+v", q)
	}

	r = kubectlOffering(t, "report", "no-such-agreement", "-n", f.ns)
	expectCode(t, r, plugin.ExitError)
	contains(t, "stderr", r.stderr, "not found")
}

// relativeAge is kubectl's AGE of something created in the last minutes.
var relativeAge = regexp.MustCompile(`^[0-9]+(s|m[0-9]*s?)$`)

// managedBy reports whether manager manages field (as it appears in the managed fields' JSON, "" for any field).
func managedBy(entries []metav1.ManagedFieldsEntry, manager, field string) bool {
	for _, e := range entries {
		if e.Manager != manager {
			continue
		}
		if field == "" || (e.FieldsV1 != nil && strings.Contains(e.FieldsV1.GetRawString(), field)) {
			return true
		}
	}
	return false
}

func dumpManaged(entries []metav1.ManagedFieldsEntry) string {
	var b strings.Builder
	for _, e := range entries {
		raw := ""
		if e.FieldsV1 != nil {
			raw = e.FieldsV1.GetRawString()
		}
		b.WriteString(e.Manager + " " + string(e.Operation) + " " + e.Subresource + " " + raw + "\n")
	}
	return b.String()
}
