package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// withPlans gives the fixture's item the plans small (the default, ten
// pods), medium (twenty) and large (forty) in place of its own quota.
func withPlans(upgradesTo ...v1alpha1.PlanName) fixtureOption {
	return func(f *fixture) {
		item := &f.offering.Spec.Resources[0]
		pods := func(n string) corev1.ResourceList {
			return corev1.ResourceList{corev1.ResourcePods: resource.MustParse(n)}
		}
		item.Plans = []v1alpha1.Plan{
			{Name: "small", Quota: pods("10"), Limits: item.Limits, UpgradesTo: upgradesTo},
			{Name: "medium", Quota: pods("20")},
			{Name: "large", Quota: pods("40")},
		}
		item.DefaultPlan, item.Quota, item.Limits = "small", nil, nil
	}
}

func withAllowedPlans(plans ...v1alpha1.PlanName) fixtureOption {
	return func(f *fixture) { f.agreement.Spec.Entitlements.Resources[0].Plans = plans }
}

// changePlan changes the request's plan as the consumer would.
func changePlan(t *testing.T, cr *v1alpha1.ConsumptionRequest, plan v1alpha1.PlanName) {
	t.Helper()
	get(t, cr)
	patch := client.MergeFrom(cr.DeepCopy())
	cr.Spec.Resource.Plan = plan
	if err := userClient(t, consumerUser).Patch(testCtx, cr, patch); err != nil {
		t.Fatalf("consumer changing the plan to %s: %v", plan, err)
	}
}

// waitPlan waits until the request is Ready under the plan and its quota
// allows the pods.
func waitPlan(t *testing.T, cr *v1alpha1.ConsumptionRequest, plan v1alpha1.PlanName, pods string) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("request %s granted under plan %s", cr.Name, plan), func() error {
		get(t, cr)
		if g := cr.Status.Grant; g == nil || g.Plan != plan || !meta.IsStatusConditionTrue(cr.Status.Conditions, v1alpha1.ConditionReady) {
			return fmt.Errorf("grant %+v, conditions %+v", cr.Status.Grant, cr.Status.Conditions)
		}
		return quotaAllows(cr, pods)
	})
}

func quotaAllows(cr *v1alpha1.ConsumptionRequest, pods string) error {
	var q corev1.ResourceQuota
	if err := admin.Get(testCtx, types.NamespacedName{Namespace: cr.Status.Grant.Namespace, Name: quotaName}, &q); err != nil {
		return err
	}
	if got := q.Spec.Hard[corev1.ResourcePods]; got.Cmp(resource.MustParse(pods)) != 0 {
		return fmt.Errorf("quota allows %s pods, want %s", got.String(), pods)
	}
	return nil
}

// waitReadyReason waits until Ready is False with the reason, and returns its message.
func waitReadyReason(t *testing.T, cr *v1alpha1.ConsumptionRequest, reason string) string {
	t.Helper()
	var msg string
	eventually(t, 20*time.Second, fmt.Sprintf("request %s Ready reason %s", cr.Name, reason), func() error {
		get(t, cr)
		c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != reason {
			return fmt.Errorf("Ready is %+v", c)
		}
		msg = c.Message
		return nil
	})
	return msg
}

// setQuotaUsage writes the granted quota's usage, as the quota controller
// would (envtest runs none).
func setQuotaUsage(t *testing.T, cr *v1alpha1.ConsumptionRequest, pods string) {
	t.Helper()
	eventually(t, 10*time.Second, "quota usage written", func() error {
		var q corev1.ResourceQuota
		if err := admin.Get(testCtx, types.NamespacedName{Namespace: cr.Status.Grant.Namespace, Name: quotaName}, &q); err != nil {
			return err
		}
		q.Status.Hard = q.Spec.Hard
		q.Status.Used = corev1.ResourceList{corev1.ResourcePods: resource.MustParse(pods)}
		return admin.Status().Update(testCtx, &q)
	})
}

// roleBindingUIDs are the UIDs of the RoleBindings in the granted namespace.
func roleBindingUIDs(t *testing.T, ns string) map[string]types.UID {
	t.Helper()
	var list rbacv1.RoleBindingList
	if err := admin.List(testCtx, &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	out := map[string]types.UID{}
	for _, rb := range list.Items {
		out[rb.Name] = rb.UID
	}
	if len(out) == 0 {
		t.Fatalf("no RoleBindings in %s", ns)
	}
	return out
}

// TestResizeInPlace: the consumer moves a granted request to a larger plan
// and back; the quota changes in the same namespace, the RoleBindings are
// the same objects, and the move down waits while usage exceeds the smaller plan.
func TestResizeInPlace(t *testing.T) {
	t.Parallel() // waits for the blocked downgrade's retry (see parallel tests in suite_test.go)
	f := newFixture(t, withPlans())
	cr := f.grantedRequest(uniq("resize"))
	waitPlan(t, cr, "small", "10")
	ns := cr.Status.Grant.Namespace
	var before corev1.Namespace
	if err := admin.Get(testCtx, nsKey(ns), &before); err != nil {
		t.Fatal(err)
	}
	bindings := roleBindingUIDs(t, ns)

	changePlan(t, cr, "large")
	waitPlan(t, cr, "large", "40")

	setQuotaUsage(t, cr, "30")
	changePlan(t, cr, "small")
	msg := waitReadyReason(t, cr, v1alpha1.ReasonDowngradeBlocked)
	if !strings.Contains(msg, "pods: 30 used, 10 allowed") {
		t.Errorf("DowngradeBlocked message does not name the resource over the smaller plan: %s", msg)
	}
	if err := quotaAllows(cr, "40"); err != nil || cr.Status.Grant.Plan != "large" {
		t.Errorf("a blocked downgrade changed the grant: plan %s, %v", cr.Status.Grant.Plan, err)
	}
	setQuotaUsage(t, cr, "5")
	waitPlan(t, cr, "small", "10")

	var after corev1.Namespace
	if err := admin.Get(testCtx, nsKey(ns), &after); err != nil || after.UID != before.UID {
		t.Errorf("namespace %s was replaced by the resize (%v)", ns, err)
	}
	if got := roleBindingUIDs(t, ns); fmt.Sprint(got) != fmt.Sprint(bindings) {
		t.Errorf("RoleBindings changed by the resize: %v, were %v", got, bindings)
	}
}

// TestPlanNotAllowedByAgreement: a plan the agreement does not allow is
// denied to a new request and refused as a change, which keeps the grant.
func TestPlanNotAllowedByAgreement(t *testing.T) {
	f := newFixture(t, withPlans(), withAllowedPlans("small", "medium"))
	cr := f.grantedRequest(uniq("allowed"))
	changePlan(t, cr, "large")
	msg := waitReadyReason(t, cr, v1alpha1.ReasonPlanNotAllowed)
	if !strings.Contains(msg, "does not allow plan large") || !strings.Contains(msg, "keeps plan small") {
		t.Errorf("PlanNotAllowed message: %s", msg)
	}
	if err := quotaAllows(cr, "10"); err != nil || cr.Status.Phase != v1alpha1.RequestFulfilled {
		t.Errorf("a refused change touched the grant: phase %s, %v", cr.Status.Phase, err)
	}
	changePlan(t, cr, "medium")
	waitPlan(t, cr, "medium", "20")

	fresh := f.resourceRequest(uniq("fresh"))
	fresh.Spec.Resource.Plan = "large"
	if err := userClient(t, consumerUser).Create(testCtx, fresh); err != nil {
		t.Fatal(err)
	}
	c := waitCondition(t, fresh, v1alpha1.ConditionDenied, metav1.ConditionTrue)
	if c.Reason != v1alpha1.ReasonPlanNotAllowed {
		t.Errorf("new request under a plan not allowed: Denied %s (%s)", c.Reason, c.Message)
	}
}

// TestUpgradesToRestrictsMoves: a plan that declares upgradesTo moves only
// to the plans it names.
func TestUpgradesToRestrictsMoves(t *testing.T) {
	f := newFixture(t, withPlans("medium"))
	cr := f.grantedRequest(uniq("paths"))
	changePlan(t, cr, "large")
	msg := waitReadyReason(t, cr, v1alpha1.ReasonPlanChangeNotAllowed)
	if !strings.Contains(msg, "changes only to medium") {
		t.Errorf("PlanChangeNotAllowed message: %s", msg)
	}
	changePlan(t, cr, "medium")
	waitPlan(t, cr, "medium", "20")
	changePlan(t, cr, "large")
	waitPlan(t, cr, "large", "40")
}

// approveAs writes Approved=True as the approver would.
func approveAs(t *testing.T, cr *v1alpha1.ConsumptionRequest) {
	t.Helper()
	if err := patchStatusAs(t, approverUser, cr, func(cr *v1alpha1.ConsumptionRequest) {
		meta.SetStatusCondition(&cr.Status.Conditions, decisionCondition(v1alpha1.ConditionApproved, approvedInTest))
	}); err != nil {
		t.Fatalf("approving: %v", err)
	}
}

// TestPlanChangeAsksForApprovalAgain: under a Manual agreement a plan
// change waits for a provider's approval, keeping the grant it has.
func TestPlanChangeAsksForApprovalAgain(t *testing.T) {
	f := newFixture(t, withPlans(), withManualApproval())
	cr := f.resourceRequest(uniq("manual"))
	mustCreate(t, cr)
	waitPhase(t, cr, v1alpha1.RequestAwaitingApproval)
	approveAs(t, cr)
	waitPlan(t, cr, "small", "10")
	bindings := roleBindingUIDs(t, cr.Status.Grant.Namespace)

	changePlan(t, cr, "large")
	msg := waitReadyReason(t, cr, v1alpha1.ReasonAwaitingApproval)
	if !strings.Contains(msg, "from plan small to plan large") || cr.Status.Phase != v1alpha1.RequestFulfilled {
		t.Errorf("a plan change under a Manual agreement: phase %s, %s", cr.Status.Phase, msg)
	}
	if meta.IsStatusConditionTrue(cr.Status.Conditions, v1alpha1.ConditionApproved) {
		t.Errorf("Approved is still True while the change waits for approval")
	}
	if err := quotaAllows(cr, "10"); err != nil {
		t.Errorf("the change was applied before approval: %v", err)
	}
	approveAs(t, cr)
	waitPlan(t, cr, "large", "40")
	if cr.Status.Decision == nil || cr.Status.Decision.By.Username != approverUser || cr.Status.Decision.Plan != "large" {
		t.Errorf("the approval of the change is not recorded: %+v", cr.Status.Decision)
	}
	if got := roleBindingUIDs(t, cr.Status.Grant.Namespace); fmt.Sprint(got) != fmt.Sprint(bindings) {
		t.Errorf("RoleBindings changed by the approved resize: %v, were %v", got, bindings)
	}
}
