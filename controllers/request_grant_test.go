package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

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

// TestRoleBindingsAllOrNothing: the bindings of an item are written together
// (in parallel), and only after every role passed the policy, so that a role
// turned dangerous never leaves the item's other roles bound.
func TestRoleBindingsAllOrNothing(t *testing.T) {
	grantable := map[string]string{v1alpha1.LabelGrantable: "true"}
	safe := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "safe", Labels: grantable},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}}}
	other := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "other", Labels: grantable},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}}}
	dangerous := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "dangerous", Labels: grantable},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"roles"}, Verbs: []string{"escalate"}}}}
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(safe, other, dangerous).Build()
	r := &RequestReconciler{reconciler: reconciler{Client: c, APIReader: c}, Policy: NewRolePolicy(nil)}
	cr := &v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{Name: "req", Namespace: "team", UID: "uid-1"}}
	agr := &v1alpha1.ServiceAgreement{Spec: v1alpha1.ServiceAgreementSpec{
		Consumer: v1alpha1.Consumer{Subjects: []v1alpha1.Subject{{Kind: v1alpha1.SubjectGroup, Name: "devs"}}}}}
	lbls := map[string]string{v1alpha1.LabelRequestUID: "uid-1"}
	count := func() int {
		var list rbacv1.RoleBindingList
		if err := c.List(context.Background(), &list, client.InNamespace("granted")); err != nil {
			t.Fatal(err)
		}
		return len(list.Items)
	}

	refused := &v1alpha1.ResourceItem{ClusterRoles: []v1alpha1.ClusterRoleName{"safe", "dangerous"}}
	names, wrote, err := r.ensureRoleBindings(context.Background(), cr, agr, refused, "granted", lbls)
	if err == nil || wrote || len(names) != 0 || count() != 0 {
		t.Fatalf("with a refused role: names %v wrote %v err %v, %d bindings; want an error and nothing bound", names, wrote, err, count())
	}

	both := &v1alpha1.ResourceItem{ClusterRoles: []v1alpha1.ClusterRoleName{"safe", "other"}}
	names, wrote, err = r.ensureRoleBindings(context.Background(), cr, agr, both, "granted", lbls)
	if err != nil || !wrote || len(names) != 2 || count() != 2 {
		t.Fatalf("names %v wrote %v err %v, %d bindings; want both bound", names, wrote, err, count())
	}
	if names[0] != roleBindingName("safe") || names[1] != roleBindingName("other") {
		t.Errorf("names %v are not in the item's order", names)
	}
	if _, wrote, err = r.ensureRoleBindings(context.Background(), cr, agr, both, "granted", lbls); err != nil || wrote {
		t.Errorf("second pass wrote %v, err %v; want nothing written", wrote, err)
	}
}
