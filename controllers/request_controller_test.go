package controllers

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

func TestResourceGrantCreatesEverythingAndVerifiesAccess(t *testing.T) {
	f := newFixture(t)
	cr := f.grantedRequest("space-1")

	if cr.Status.Phase != v1alpha1.RequestFulfilled {
		t.Fatalf("phase %q, want Fulfilled", cr.Status.Phase)
	}
	for _, typ := range []string{v1alpha1.ConditionApproved, v1alpha1.ConditionFulfilled, v1alpha1.ConditionAccessVerified} {
		waitCondition(t, cr, typ, metav1.ConditionTrue)
	}
	g := cr.Status.Grant
	if g == nil || g.Namespace != grantNamespaceName(cr, nil) {
		t.Fatalf("grant %+v, want namespace %s", g, grantNamespaceName(cr, nil))
	}
	if cr.Status.Item != "Resource/space" || cr.Status.Offering != f.offering.Name {
		t.Errorf("item %q offering %q", cr.Status.Item, cr.Status.Offering)
	}
	if cr.Status.ApprovedAt == nil || cr.Status.FulfilledAt == nil || cr.Status.FulfilmentDuration == nil || cr.Status.AdmittedAt == nil {
		t.Errorf("timestamps missing: %+v", cr.Status)
	}

	var ns corev1.Namespace
	if err := admin.Get(testCtx, nsKey(g.Namespace), &ns); err != nil {
		t.Fatal(err)
	}
	if ns.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue || ns.Labels[v1alpha1.LabelRequestUID] != string(cr.UID) {
		t.Errorf("namespace labels %v", ns.Labels)
	}
	if len(g.RoleBindings) != 1 {
		t.Fatalf("role bindings %v", g.RoleBindings)
	}
	var rb rbacv1.RoleBinding
	if err := admin.Get(testCtx, client.ObjectKey{Namespace: g.Namespace, Name: g.RoleBindings[0]}, &rb); err != nil {
		t.Fatal(err)
	}
	if rb.RoleRef.Name != f.role || len(rb.Subjects) != 2 {
		t.Errorf("role binding %+v", rb)
	}
	var quota corev1.ResourceQuota
	if err := admin.Get(testCtx, client.ObjectKey{Namespace: g.Namespace, Name: quotaName}, &quota); err != nil {
		t.Fatal(err)
	}
	if q := quota.Spec.Hard[corev1.ResourcePods]; q.Cmp(resource.MustParse("10")) != 0 {
		t.Errorf("quota %v", quota.Spec.Hard)
	}
	if err := admin.Get(testCtx, client.ObjectKey{Namespace: g.Namespace, Name: limitRangeName}, &corev1.LimitRange{}); err != nil {
		t.Error(err)
	}
	if err := admin.Get(testCtx, client.ObjectKey{Namespace: g.Namespace, Name: networkPolicyName}, &networkingv1.NetworkPolicy{}); err != nil {
		t.Error(err)
	}

	// The consumer's subject really can work in the namespace, and not elsewhere.
	for ns, want := range map[string]bool{g.Namespace: true, "default": false} {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               "dev-" + f.ns,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Resource: "pods"},
		}}
		if err := admin.Create(testCtx, sar); err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed != want {
			t.Errorf("user can create pods in %s: %v, want %v", ns, sar.Status.Allowed, want)
		}
	}

	// The agreement counts the grant.
	eventually(t, 10*time.Second, "agreement usage", func() error {
		get(t, f.agreement)
		u := f.agreement.Status.Usage
		if len(u) != 1 || u[0].Used != 1 || f.agreement.Status.Requests.Fulfilled != 1 {
			return fmt.Errorf("usage %+v requests %+v", u, f.agreement.Status.Requests)
		}
		return nil
	})
}

func TestDriftIsRepaired(t *testing.T) {
	f := newFixture(t)
	cr := f.grantedRequest("drift")
	ns, rbName := cr.Status.Grant.Namespace, cr.Status.Grant.RoleBindings[0]

	// A deleted RoleBinding comes back.
	rb := &rbacv1.RoleBinding{}
	if err := admin.Get(testCtx, client.ObjectKey{Namespace: ns, Name: rbName}, rb); err != nil {
		t.Fatal(err)
	}
	oldUID := rb.UID
	if err := admin.Delete(testCtx, rb); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "RoleBinding recreated", func() error {
		var again rbacv1.RoleBinding
		if err := admin.Get(testCtx, client.ObjectKey{Namespace: ns, Name: rbName}, &again); err != nil {
			return err
		}
		if again.UID == oldUID {
			return fmt.Errorf("not recreated yet")
		}
		return nil
	})

	// An edited quota and RoleBinding subjects are put back.
	var quota corev1.ResourceQuota
	if err := admin.Get(testCtx, client.ObjectKey{Namespace: ns, Name: quotaName}, &quota); err != nil {
		t.Fatal(err)
	}
	quota.Spec.Hard[corev1.ResourcePods] = resource.MustParse("1000")
	if err := admin.Update(testCtx, &quota); err != nil {
		t.Fatal(err)
	}
	if err := admin.Get(testCtx, client.ObjectKey{Namespace: ns, Name: rbName}, rb); err != nil {
		t.Fatal(err)
	}
	rb.Subjects = append(rb.Subjects, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "intruder"})
	if err := admin.Update(testCtx, rb); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "quota and subjects restored", func() error {
		if err := admin.Get(testCtx, client.ObjectKey{Namespace: ns, Name: quotaName}, &quota); err != nil {
			return err
		}
		if q := quota.Spec.Hard[corev1.ResourcePods]; q.Cmp(resource.MustParse("10")) != 0 {
			return fmt.Errorf("quota pods %s", q.String())
		}
		if err := admin.Get(testCtx, client.ObjectKey{Namespace: ns, Name: rbName}, rb); err != nil {
			return err
		}
		if len(rb.Subjects) != 2 {
			return fmt.Errorf("subjects %v", rb.Subjects)
		}
		return nil
	})

	// A deleted NetworkPolicy comes back.
	if err := admin.Delete(testCtx, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: networkPolicyName}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "NetworkPolicy recreated", func() error {
		return admin.Get(testCtx, client.ObjectKey{Namespace: ns, Name: networkPolicyName}, &networkingv1.NetworkPolicy{})
	})
}

func TestEntitlementIsNeverOverGranted(t *testing.T) {
	f := newFixture(t, withMaxGrants(3))
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- admin.Create(testCtx, f.resourceRequest(fmt.Sprintf("burst-%02d", i)))
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var final map[v1alpha1.RequestPhase]int
	eventually(t, 60*time.Second, "every request decided", func() error {
		var list v1alpha1.ConsumptionRequestList
		if err := admin.List(testCtx, &list, client.InNamespace(f.ns)); err != nil {
			return err
		}
		final = map[v1alpha1.RequestPhase]int{}
		for _, cr := range list.Items {
			final[cr.Status.Phase]++
		}
		if final[v1alpha1.RequestFulfilled]+final[v1alpha1.RequestDenied] != n {
			return fmt.Errorf("phases %v", final)
		}
		return nil
	})
	if final[v1alpha1.RequestFulfilled] != 3 || final[v1alpha1.RequestDenied] != n-3 {
		t.Fatalf("phases %v, want exactly 3 Fulfilled and %d Denied", final, n-3)
	}
	// Denied requests name the reason, and created nothing.
	var list v1alpha1.ConsumptionRequestList
	if err := admin.List(testCtx, &list, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	for _, cr := range list.Items {
		if cr.Status.Phase != v1alpha1.RequestDenied {
			continue
		}
		c := waitCondition(t, &cr, v1alpha1.ConditionDenied, metav1.ConditionTrue)
		if c.Reason != v1alpha1.ReasonEntitlementExhausted || !strings.Contains(c.Message, "3 of 3") {
			t.Errorf("denied %s: %s %q", cr.Name, c.Reason, c.Message)
		}
		if ok, _ := exists(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: grantNamespaceName(&cr, nil)}}); ok {
			t.Errorf("denied request %s has a namespace", cr.Name)
		}
	}
	eventually(t, 10*time.Second, "agreement reports exhaustion", func() error {
		get(t, f.agreement)
		if len(f.agreement.Status.Allocations) != 3 {
			return fmt.Errorf("allocations %d", len(f.agreement.Status.Allocations))
		}
		return nil
	})
	waitCondition(t, f.agreement, v1alpha1.ConditionEntitlementsExhausted, metav1.ConditionTrue)

	// Deleting a granted request gives its entitlement back.
	for _, cr := range list.Items {
		if cr.Status.Phase == v1alpha1.RequestFulfilled {
			if err := admin.Delete(testCtx, &cr); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	waitCondition(t, f.agreement, v1alpha1.ConditionEntitlementsExhausted, metav1.ConditionFalse)
	again := f.resourceRequest("after-release")
	mustCreate(t, again)
	waitCondition(t, again, v1alpha1.ConditionReady, metav1.ConditionTrue)
}

func TestManualApproval(t *testing.T) {
	f := newFixture(t, withManualApproval())
	cr := f.resourceRequest("needs-approval")
	mustCreate(t, cr)
	waitPhase(t, cr, v1alpha1.RequestAwaitingApproval)

	// The operator never approves a manual request by itself.
	consistently(t, time.Second, "request stays unapproved", func() error {
		get(t, cr)
		if cr.Status.Phase != v1alpha1.RequestAwaitingApproval || cr.Status.Grant != nil {
			return fmt.Errorf("phase %s grant %+v", cr.Status.Phase, cr.Status.Grant)
		}
		return nil
	})

	approvedCond := metav1.Condition{Type: v1alpha1.ConditionApproved, Status: metav1.ConditionTrue,
		Reason: "ApprovedByProvider", Message: "ticket OPS-1", LastTransitionTime: metav1.Now()}

	// A consumer cannot approve: it may not write status.
	consumer := userClient(t, consumerUser)
	bad := cr.DeepCopy()
	bad.Status.Conditions = append(bad.Status.Conditions, approvedCond)
	if err := consumer.Status().Update(testCtx, bad); !apierrors.IsForbidden(err) {
		t.Fatalf("consumer approving: got %v, want Forbidden", err)
	}
	// A consumer can create requests, but not edit the agreement.
	get(t, f.agreement)
	agr := f.agreement.DeepCopy()
	agr.Spec.ApprovalPolicy = v1alpha1.ApprovalAutomatic
	if err := consumer.Update(testCtx, agr); !apierrors.IsForbidden(err) {
		t.Fatalf("consumer editing agreement: got %v, want Forbidden", err)
	}

	// An approver approves through the status subresource.
	approver := userClient(t, approverUser)
	get(t, cr)
	patch := client.MergeFromWithOptions(cr.DeepCopy(), client.MergeFromWithOptimisticLock{})
	cr.Status.Conditions = append(cr.Status.Conditions, approvedCond)
	if err := approver.Status().Patch(testCtx, cr, patch); err != nil {
		t.Fatalf("approver approving: %v", err)
	}
	waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionTrue)
	c := waitCondition(t, cr, v1alpha1.ConditionApproved, metav1.ConditionTrue)
	if c.Reason != "ApprovedByProvider" || c.Message != "ticket OPS-1" {
		t.Errorf("the approver's condition was overwritten: %+v", c)
	}
	if cr.Status.ApprovedAt == nil {
		t.Error("approvedAt not recorded")
	}

	// A provider denies another request; nothing is granted.
	denied := f.resourceRequest("to-deny")
	mustCreate(t, denied)
	waitPhase(t, denied, v1alpha1.RequestAwaitingApproval)
	provider := userClient(t, providerUser)
	patch = client.MergeFromWithOptions(denied.DeepCopy(), client.MergeFromWithOptimisticLock{})
	denied.Status.Conditions = append(denied.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionDenied,
		Status: metav1.ConditionTrue, Reason: "NoCapacity", Message: "rack full", LastTransitionTime: metav1.Now()})
	if err := provider.Status().Patch(testCtx, denied, patch); err != nil {
		t.Fatalf("provider denying: %v", err)
	}
	waitPhase(t, denied, v1alpha1.RequestDenied)
	if ok, _ := exists(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: grantNamespaceName(denied, nil)}}); ok {
		t.Error("a denied request got a namespace")
	}
}

func TestSuspensionRevokesAndRestores(t *testing.T) {
	f := newFixture(t)
	cr := f.grantedRequest("suspend-me")
	ns, rbName := cr.Status.Grant.Namespace, cr.Status.Grant.RoleBindings[0]

	setSuspended(t, f.agreement, true)
	waitPhase(t, cr, v1alpha1.RequestRevoked)
	gone(t, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rbName}})
	var nsObj corev1.Namespace
	if err := admin.Get(testCtx, nsKey(ns), &nsObj); err != nil || !nsObj.DeletionTimestamp.IsZero() {
		t.Fatalf("suspension must keep the namespace: %v %v", err, nsObj.DeletionTimestamp)
	}
	waitCondition(t, f.agreement, v1alpha1.ConditionActive, metav1.ConditionFalse)
	if f.agreement.Status.Phase != v1alpha1.AgreementSuspended {
		t.Errorf("agreement phase %s", f.agreement.Status.Phase)
	}

	setSuspended(t, f.agreement, false)
	waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionTrue)
	if err := admin.Get(testCtx, client.ObjectKey{Namespace: ns, Name: rbName}, &rbacv1.RoleBinding{}); err != nil {
		t.Fatalf("RoleBinding not restored: %v", err)
	}
}

func setSuspended(t *testing.T, agr *v1alpha1.ServiceAgreement, v bool) {
	t.Helper()
	get(t, agr)
	patch := client.MergeFrom(agr.DeepCopy())
	agr.Spec.Suspended = v
	if err := admin.Patch(testCtx, agr, patch); err != nil {
		t.Fatal(err)
	}
}

func TestExpiryRevokesEverything(t *testing.T) {
	until := testClock.Now().Add(time.Hour)
	f := newFixture(t, withValidUntil(until))
	cr := f.grantedRequest("expiring")
	ns := cr.Status.Grant.Namespace

	// Two hours pass. Other tests' agreements have no validUntil, so they are not affected.
	testClock.Step(2 * time.Hour)
	touch(t, f.agreement)
	waitCondition(t, f.agreement, v1alpha1.ConditionActive, metav1.ConditionFalse)
	if f.agreement.Status.Phase != v1alpha1.AgreementExpired {
		t.Fatalf("phase %s", f.agreement.Status.Phase)
	}
	waitPhase(t, cr, v1alpha1.RequestRevoked)
	gone(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	if cr.Status.Grant != nil {
		t.Errorf("grant still recorded: %+v", cr.Status.Grant)
	}
}

// touch changes an annotation so that controllers look at obj again.
func touch(t *testing.T, obj client.Object) {
	t.Helper()
	get(t, obj)
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	a := obj.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a["test/touched"] = time.Now().String()
	obj.SetAnnotations(a)
	if err := admin.Patch(testCtx, obj, patch); err != nil {
		t.Fatal(err)
	}
}

// TestNamespaceWithForgedLabelsIsNeverAdopted: someone who may create
// namespaces sees a request waiting for approval, creates its namespace first
// with the operator's labels for that request and a RoleBinding of their own,
// and waits for the grant. Without the operator's marker the namespace is
// refused, and nothing is granted in it.
func TestNamespaceWithForgedLabelsIsNeverAdopted(t *testing.T) {
	f, cr := awaitingApproval(t, "forged")
	forged := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: grantNamespaceName(cr, nil),
		Labels: childLabels(cr, f.offering.Name, f.offering.Spec.Resources[0].Name),
		Annotations: map[string]string{v1alpha1.AnnotationAgreement: cr.Namespace + "/" + string(cr.Spec.Agreement),
			v1alpha1.AnnotationGrantMarker: "forged"}}}
	mustCreate(t, forged)
	planted := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "planted", Namespace: forged.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "someone-else"}}}
	mustCreate(t, planted)
	approveAsProvider(t, cr)
	waitPhase(t, cr, v1alpha1.RequestFailed)
	c := waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonNamespaceConflict || !strings.Contains(c.Message, "never adopted") ||
		!strings.Contains(c.Message, v1alpha1.AnnotationGrantMarker) {
		t.Errorf("ready %s %q, want NamespaceConflict naming the marker", c.Reason, c.Message)
	}
	if cr.Status.Grant != nil && cr.Status.Grant.Namespace != "" {
		t.Errorf("the forged namespace was recorded as granted: %+v", cr.Status.Grant)
	}
	var rbs rbacv1.RoleBindingList
	if err := admin.List(testCtx, &rbs, client.InNamespace(forged.Name)); err != nil {
		t.Fatal(err)
	}
	if len(rbs.Items) != 1 || rbs.Items[0].Name != "planted" {
		t.Errorf("RoleBindings in the forged namespace: %v, want only the planted one", rbs.Items)
	}
}

// awaitingApproval creates a resource request under manual approval and
// waits until it waits for the approval: it has its UID, nothing is granted.
func awaitingApproval(t *testing.T, name string) (*fixture, *v1alpha1.ConsumptionRequest) {
	t.Helper()
	f := newFixture(t, withManualApproval())
	cr := f.resourceRequest(name)
	mustCreate(t, cr)
	waitPhase(t, cr, v1alpha1.RequestAwaitingApproval)
	get(t, cr)
	return f, cr
}

// testGrantKey is the key the test manager signs its namespaces with.
func testGrantKey(t *testing.T) []byte {
	t.Helper()
	var sec corev1.Secret
	if err := admin.Get(testCtx, client.ObjectKey{Namespace: operatorNamespace, Name: GrantKeySecret}, &sec); err != nil {
		t.Fatal(err)
	}
	return sec.Data["key"]
}

// TestMarkedNamespaceIsAdopted: the namespace the operator created for a
// request just before a crash (its marker is valid, the request has not
// recorded it yet) is taken up again, and the grant completes in it.
func TestMarkedNamespaceIsAdopted(t *testing.T) {
	f, cr := awaitingApproval(t, "after-crash")
	name := grantNamespaceName(cr, nil)
	mustCreate(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
		Labels:      childLabels(cr, f.offering.Name, f.offering.Spec.Resources[0].Name),
		Annotations: map[string]string{v1alpha1.AnnotationGrantMarker: grantMarker(testGrantKey(t), cr.UID, name)}}})
	approveAsProvider(t, cr)
	waitPhase(t, cr, v1alpha1.RequestFulfilled)
	if cr.Status.Grant == nil || cr.Status.Grant.Namespace != name || len(cr.Status.Grant.RoleBindings) == 0 {
		t.Errorf("grant %+v, want namespace %s with its RoleBindings", cr.Status.Grant, name)
	}
}

func TestExistingNamespaceIsNeverAdopted(t *testing.T) {
	f := newFixture(t)
	cr := f.resourceRequest("squatted")
	squat := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: grantNamespaceName(cr, nil), Labels: map[string]string{"owner": "someone-else"}}}
	mustCreate(t, squat)
	mustCreate(t, cr)
	waitPhase(t, cr, v1alpha1.RequestFailed)
	c := waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonNamespaceConflict || !strings.Contains(c.Message, "never adopted") {
		t.Errorf("ready %s %q", c.Reason, c.Message)
	}
	if st := waitCondition(t, cr, v1alpha1.ConditionStalled, metav1.ConditionTrue); st.Reason != v1alpha1.ReasonNamespaceConflict {
		t.Errorf("Stalled reason %s, want %s", st.Reason, v1alpha1.ReasonNamespaceConflict)
	}
	var rbs rbacv1.RoleBindingList
	if err := admin.List(testCtx, &rbs, client.InNamespace(squat.Name)); err != nil {
		t.Fatal(err)
	}
	if len(rbs.Items) != 0 {
		t.Errorf("RoleBindings were created in a namespace not ours: %v", rbs.Items)
	}
	get(t, squat)
	if _, ok := squat.Labels[v1alpha1.LabelManagedBy]; ok {
		t.Error("the namespace was labelled as managed")
	}
	// A failed grant gives the entitlement back: deleting the request does not hang and leaves the namespace.
	if err := admin.Delete(testCtx, cr); err != nil {
		t.Fatal(err)
	}
	gone(t, cr)
	get(t, squat)
	if !squat.DeletionTimestamp.IsZero() {
		t.Error("a namespace not ours was deleted")
	}
}

func TestRequestedNamespaceName(t *testing.T) {
	f := newFixture(t, withAllowRequestedName())
	cr := f.resourceRequest("named")
	cr.Spec.Resource.NamespaceName = v1alpha1.NamespaceName(uniq(f.ns + "-my-space"))
	mustCreate(t, cr)
	waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionTrue)
	if cr.Status.Grant.Namespace != string(cr.Spec.Resource.NamespaceName) {
		t.Errorf("granted %s, asked for %s", cr.Status.Grant.Namespace, cr.Spec.Resource.NamespaceName)
	}

	// Without allowRequestedName, asking for a name is denied with a reason.
	g := newFixture(t)
	cr2 := g.resourceRequest("named")
	cr2.Spec.Resource.NamespaceName = "whatever-name"
	mustCreate(t, cr2)
	c := waitCondition(t, cr2, v1alpha1.ConditionDenied, metav1.ConditionTrue)
	if c.Reason != v1alpha1.ReasonRequestedNameNotAllowed {
		t.Errorf("reason %s", c.Reason)
	}
}

func TestDeletionRevokesRoleBindingsBeforeNamespace(t *testing.T) {
	f := newFixture(t)
	cr := f.grantedRequest("delete-me")
	ns := cr.Status.Grant.Namespace
	before := len(deletes.snapshot())

	if err := admin.Delete(testCtx, cr); err != nil {
		t.Fatal(err)
	}
	gone(t, cr)
	gone(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})

	var order []string
	for _, e := range deletes.snapshot()[before:] {
		if strings.Contains(e, ns) {
			order = append(order, e)
		}
	}
	rbAt, nsAt := -1, -1
	for i, e := range order {
		if strings.HasPrefix(e, "*v1.RoleBinding") && rbAt < 0 {
			rbAt = i
		}
		if strings.HasPrefix(e, "*v1.Namespace") {
			nsAt = i
		}
	}
	if rbAt < 0 || nsAt < 0 || rbAt > nsAt {
		t.Fatalf("revocation order %v: want the RoleBinding deleted before the namespace", order)
	}
}

func TestRetainPolicyKeepsNamespace(t *testing.T) {
	f := newFixture(t, withRevocation(v1alpha1.RevocationPolicyRetain))
	cr := f.grantedRequest("retained")
	ns, rbName := cr.Status.Grant.Namespace, cr.Status.Grant.RoleBindings[0]
	if err := admin.Delete(testCtx, cr); err != nil {
		t.Fatal(err)
	}
	gone(t, cr)
	gone(t, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rbName}})
	var nsObj corev1.Namespace
	if err := admin.Get(testCtx, nsKey(ns), &nsObj); err != nil || !nsObj.DeletionTimestamp.IsZero() {
		t.Fatalf("retained namespace: %v %v", err, nsObj.DeletionTimestamp)
	}
	if _, ok := nsObj.Labels[v1alpha1.LabelRequestUID]; ok {
		t.Error("retained namespace still claims the deleted request")
	}
}

func TestPendingRequestWaitsAndDeletesCleanly(t *testing.T) {
	ns := uniq("lonely")
	mustCreate(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	cr := &v1alpha1.ConsumptionRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: ns},
		Spec:       v1alpha1.ConsumptionRequestSpec{Agreement: "missing", Resource: &v1alpha1.ResourceRequest{Name: "space"}},
	}
	mustCreate(t, cr)
	c := waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonAgreementNotFound || cr.Status.Phase != v1alpha1.RequestPending {
		t.Errorf("ready %s phase %s", c.Reason, cr.Status.Phase)
	}
	if err := admin.Delete(testCtx, cr); err != nil {
		t.Fatal(err)
	}
	gone(t, cr)
}

func TestAgreementDeletionRevokesThenLetsGo(t *testing.T) {
	f := newFixture(t)
	cr := f.grantedRequest("held")
	ns := cr.Status.Grant.Namespace

	if err := admin.Delete(testCtx, f.agreement); err != nil {
		t.Fatal(err)
	}
	gone(t, f.agreement)
	if ok, _ := exists(f.agreement); ok {
		t.Fatal("agreement still exists")
	}
	waitPhase(t, cr, v1alpha1.RequestRevoked)
	gone(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
}

// TestItemRemovedFromOfferingAfterGrant: a provider removes an item that a
// request already holds. The request reports it (no crash, no hot loop) and
// keeps what it was granted: nothing is taken away by an edit of the catalogue.
func TestItemRemovedFromOfferingAfterGrant(t *testing.T) {
	f := newFixture(t)
	cr := f.grantedRequest("orphaned-item")
	ns, rb := cr.Status.Grant.Namespace, cr.Status.Grant.RoleBindings[0]

	get(t, f.offering)
	patch := client.MergeFrom(f.offering.DeepCopy())
	f.offering.Spec.Resources[0].Name = "renamed"
	if err := admin.Patch(testCtx, f.offering, patch); err != nil {
		t.Fatal(err)
	}
	c := waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonItemNotOffered || !strings.Contains(c.Message, "no longer has Resource item space") {
		t.Errorf("Ready %s %q", c.Reason, c.Message)
	}
	if err := admin.Get(testCtx, client.ObjectKey{Namespace: ns, Name: rb}, &rbacv1.RoleBinding{}); err != nil {
		t.Errorf("the grant was taken away: %v", err)
	}
}
