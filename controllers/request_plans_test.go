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

// movePin moves the agreement's pin to revision n as the provider would.
func movePin(t *testing.T, agr *v1alpha1.ServiceAgreement, n int32) {
	t.Helper()
	get(t, agr)
	patch := client.MergeFrom(agr.DeepCopy())
	agr.Spec.Revision = n
	if err := userClient(t, providerUser).Patch(testCtx, agr, patch); err != nil {
		t.Fatalf("provider moving the pin to revision %d: %v", n, err)
	}
}

// waitOnRevision waits until the request is Ready under revision n and plan, with a quota of pods.
func waitOnRevision(t *testing.T, cr *v1alpha1.ConsumptionRequest, n int32, plan v1alpha1.PlanName, pods string) {
	t.Helper()
	waitPlan(t, cr, plan, pods)
	eventually(t, 10*time.Second, fmt.Sprintf("request %s on revision %d", cr.Name, n), func() error {
		get(t, cr)
		if cr.Status.OfferingRevision != n {
			return fmt.Errorf("on revision %d", cr.Status.OfferingRevision)
		}
		return quotaAllows(cr, pods)
	})
}

// assertKept checks that a refused move left the request on revision n
// with plan and a quota of pods.
func assertKept(t *testing.T, cr *v1alpha1.ConsumptionRequest, n int32, plan v1alpha1.PlanName, pods string) {
	t.Helper()
	get(t, cr)
	if g := cr.Status.Grant; g == nil || g.Plan != plan || cr.Status.OfferingRevision != n || cr.Status.Phase != v1alpha1.RequestFulfilled {
		t.Errorf("a refused move changed request %s: revision %d, phase %s, grant %+v", cr.Name, cr.Status.OfferingRevision, cr.Status.Phase, g)
	}
	if err := quotaAllows(cr, pods); err != nil {
		t.Errorf("a refused move changed the quota of %s: %v", cr.Name, err)
	}
}

// TestRevisionMoveIsRefusedLikeAPlanChange: the provider moves a pinned
// agreement to a revision whose plan small is smaller than the namespace
// uses and which no longer offers plan large. Each grant keeps its
// revision's terms, with the reason a plan change would get, until usage
// drops or the consumer picks a plan the new revision offers.
func TestRevisionMoveIsRefusedLikeAPlanChange(t *testing.T) {
	f := newFixture(t, withPlans(), withPin(1))
	small := f.grantedRequest(uniq("small"))
	waitPlan(t, small, "small", "10")
	bindings := roleBindingUIDs(t, small.Status.Grant.Namespace)
	large := f.resourceRequest(uniq("large"))
	large.Spec.Resource.Plan = "large"
	mustCreate(t, large)
	waitPlan(t, large, "large", "40")

	editOffering(t, f.offering, func(s *v1alpha1.ServiceOfferingSpec) {
		s.Resources[0].Plans[0].Quota = corev1.ResourceList{corev1.ResourcePods: resource.MustParse("4")}
		s.Resources[0].Plans = s.Resources[0].Plans[:2]
	})
	setQuotaUsage(t, small, "6")
	movePin(t, f.agreement, 2)

	msg := waitReadyReason(t, small, v1alpha1.ReasonDowngradeBlocked)
	if !strings.Contains(msg, "pods: 6 used, 4 allowed") || !strings.Contains(msg, "revision 1") {
		t.Errorf("DowngradeBlocked message of a move does not name the usage and the kept revision: %s", msg)
	}
	assertKept(t, small, 1, "small", "10")
	msg = waitReadyReason(t, large, v1alpha1.ReasonPlanNotAllowed)
	if !strings.Contains(msg, "no plan large") || !strings.Contains(msg, "keeps plan large of revision 1") {
		t.Errorf("PlanNotAllowed message of a move: %s", msg)
	}
	assertKept(t, large, 1, "large", "40")

	setQuotaUsage(t, small, "2")
	waitOnRevision(t, small, 2, "small", "4")
	if got := roleBindingUIDs(t, small.Status.Grant.Namespace); fmt.Sprint(got) != fmt.Sprint(bindings) {
		t.Errorf("RoleBindings changed by the move: %v, were %v", got, bindings)
	}
	changePlan(t, large, "medium")
	waitOnRevision(t, large, 2, "medium", "20")
}

// TestRevisionMoveWithoutTheItemKeepsTheGrant: a move to a revision whose
// item (without plans) allows less than the namespace uses waits; a move to
// a revision that no longer offers the granted item keeps the grant on its
// revision's terms (drift still repaired) and says how to fix it.
func TestRevisionMoveWithoutTheItemKeepsTheGrant(t *testing.T) {
	f := newFixture(t, withPin(1))
	cr := f.grantedRequest(uniq("kept"))
	editOffering(t, f.offering, func(s *v1alpha1.ServiceOfferingSpec) {
		s.Resources[0].Quota = corev1.ResourceList{corev1.ResourcePods: resource.MustParse("4")}
	})
	editOffering(t, f.offering, func(s *v1alpha1.ServiceOfferingSpec) { s.Resources[0].Name = "other" })
	setQuotaUsage(t, cr, "6")
	movePin(t, f.agreement, 2)
	msg := waitReadyReason(t, cr, v1alpha1.ReasonDowngradeBlocked)
	if !strings.Contains(msg, "more than the quota of space of revision 2 allows (pods: 6 used, 4 allowed); the request keeps its grant of revision 1") {
		t.Errorf("DowngradeBlocked message of a move of an item without plans: %s", msg)
	}
	assertQuota(t, cr, "10")

	movePin(t, f.agreement, 3)
	msg = waitReadyReason(t, cr, v1alpha1.ReasonItemNotOffered)
	if !strings.Contains(msg, "revision 3") || !strings.Contains(msg, "keeps its grant under revision 1") {
		t.Errorf("ItemNotOffered message of a move does not say what is kept and why: %s", msg)
	}
	get(t, cr)
	if cr.Status.OfferingRevision != 1 || cr.Status.Phase != v1alpha1.RequestFulfilled {
		t.Errorf("the move changed the request: revision %d, phase %s", cr.Status.OfferingRevision, cr.Status.Phase)
	}
	assertQuota(t, cr, "10")
	old := roleBindingOf(t, cr, f.role)
	if err := admin.Delete(testCtx, old); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the kept grant's RoleBinding to be repaired", func() error {
		var rb rbacv1.RoleBinding
		if err := admin.Get(testCtx, client.ObjectKeyFromObject(old), &rb); err != nil {
			return err
		}
		if rb.UID == old.UID {
			return fmt.Errorf("not replaced yet")
		}
		return nil
	})

	movePin(t, f.agreement, 1)
	waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionTrue)
}

// TestMoveNeverChangesTheGrantedNamespace: a revision whose item no longer
// allows the requested namespace name would grant another namespace; the
// move is refused before anything is read or written.
func TestMoveNeverChangesTheGrantedNamespace(t *testing.T) {
	cr := makeRequest("named", "team").resource("space").obj()
	cr.Spec.Resource.NamespaceName = "team-dev"
	cr.Status.Grant = &v1alpha1.AccessGrant{Namespace: "team-dev"}
	agr := makeAgreement("agreement", "team", "offering").resourceEntitlement("space").obj()
	item := &v1alpha1.ResourceItem{Name: "space"}
	held := heldTerms{item: &v1alpha1.ResourceItem{Name: "space"}, revision: 1, following: 2, moved: true}
	o := (&RequestReconciler{}).planChangeRefusal(t.Context(), cr, agr, item, "", "", held)
	if o.kind != stalled || o.reason != v1alpha1.ReasonPlanChangeNotAllowed || !strings.Contains(o.message, "would move to namespace") {
		t.Errorf("move to an item without requested names: %+v", o)
	}
	item.Namespace.AllowRequestedName = true
	if o := (&RequestReconciler{}).planChangeRefusal(t.Context(), cr, agr, item, "", "", held); o.kind != proceed {
		t.Errorf("move keeping the namespace refused: %+v", o)
	}
}
