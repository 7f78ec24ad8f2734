package integration

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// TestUnobservedStates covers states the controllers never see, or see only
// once they are over: a request created and deleted while no controller runs
// or while its first writes are held back, spec edits made while the
// controllers are stopped, and a suspension undone before it was acted on.
// In every case the final state is the one the latest spec asks for.
func TestUnobservedStates(t *testing.T) {
	if admin == nil {
		t.Skip("integration test: run without -short, through `make test`")
	}
	t.Run("RequestCreatedAndDeletedWhileStopped", testCreatedAndDeletedWhileStopped)
	t.Run("RequestDeletedWhileItsFirstWriteIsHeld", testDeletedWhileFirstWriteHeld)
	t.Run("RequestDeletedWhileItsClaimIsHeld", testDeletedWhileClaimHeld)
	t.Run("SpecEditsWhileStopped", testSpecEditsWhileStopped)
	t.Run("SuspendedAndReactivatedWhileStopped", testSuspendedAndReactivatedWhileStopped)
	t.Run("SuspendedAndReactivatedWhileRevocationIsHeld", testSuspendedAndReactivatedWhileRevocationHeld)
}

// testCreatedAndDeletedWhileStopped: a request that came and went while no
// controller ran leaves nothing; a sibling created afterwards gets the only grant.
func testCreatedAndDeletedWhileStopped(t *testing.T) {
	w := newWorld(t)
	ghost := w.request.DeepCopy()
	if err := admin.Delete(context.Background(), w.request); err != nil {
		t.Fatal(err)
	}
	if err := w.gone(); err != nil {
		t.Fatalf("a request nobody reconciled has no finalizer, it should be gone at once: %v", err)
	}
	survivor := sibling(w, "survivor")
	mustCreateObj(t, survivor)
	op := runOperator(t, operatorOptions{})
	// The entitlement is one grant: the survivor gets it only if the ghost holds nothing.
	op.settle(t, 30*time.Second, "the survivor Ready", func() error { return requestReady(survivor) })
	op.stop(t)
	assertNothingHeld(t, w, ghost)
	assertAllocations(t, w, survivor.UID)
}

// testDeletedWhileFirstWriteIsHeld: the controller has read the request and
// is adding its finalizer when the request is deleted; nothing is granted.
func testDeletedWhileFirstWriteHeld(t *testing.T) {
	w := newWorld(t)
	h := newHold(func(r *http.Request) bool {
		return r.Method == http.MethodPatch && r.URL.Path == apiPath(w.ns, "consumptionrequests", w.request.Name)
	})
	op := runOperator(t, operatorOptions{beforeWrite: h.beforeWrite})
	h.waitHeld(t, "the finalizer being added")
	if err := admin.Delete(context.Background(), w.request); err != nil {
		t.Fatal(err)
	}
	if err := w.gone(); err != nil {
		t.Fatalf("the request should be gone at once, adding its finalizer is held back: %v", err)
	}
	h.let()
	op.settle(t, 30*time.Second, "the agreement reporting no request", func() error { return agreementRollUp(w, 0) })
	op.stop(t)
	assertNothingHeld(t, w, w.request)
	assertAllocations(t, w)
}

// testDeletedWhileClaimIsHeld: the request has its finalizer and the
// controller is claiming its entitlement when the request is deleted. The
// reconcile in flight goes on with what it read (it may even grant), and the
// next one revokes all of it and lets the request go.
func testDeletedWhileClaimHeld(t *testing.T) {
	w := newWorld(t)
	h := newHold(func(r *http.Request) bool {
		// The claim creates a grant slot, a Lease in the operator's namespace ("default" out of a cluster).
		return r.Method == http.MethodPost && r.URL.Path == "/apis/coordination.k8s.io/v1/namespaces/default/leases"
	})
	op := runOperator(t, operatorOptions{beforeWrite: h.beforeWrite})
	h.waitHeld(t, "the entitlement being claimed")
	var cr v1alpha1.ConsumptionRequest
	if err := admin.Get(context.Background(), client.ObjectKeyFromObject(w.request), &cr); err != nil {
		t.Fatal(err)
	}
	if !controllerutil.ContainsFinalizer(&cr, v1alpha1.Finalizer) || cr.Status.AdmittedAt != nil {
		t.Fatalf("before the claim: finalizers %v admittedAt %v", cr.Finalizers, cr.Status.AdmittedAt)
	}
	if err := admin.Delete(context.Background(), &cr); err != nil {
		t.Fatal(err)
	}
	h.let()
	op.settle(t, 30*time.Second, "the request released", func() error {
		if err := w.gone(); err != nil {
			return err
		}
		return agreementRollUp(w, 0)
	})
	op.stop(t)
	assertNothingHeld(t, w, &cr)
	assertAllocations(t, w)
	var nss corev1.NamespaceList
	if err := admin.List(context.Background(), &nss, client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)}); err != nil {
		t.Fatal(err)
	}
	t.Logf("the reconcile in flight created %d namespace(s), all deleted since", len(nss.Items))
}

// testSpecEditsWhileStopped: while no controller runs, the offering swaps its
// ClusterRole, changes its quota twice and drops its LimitRange; the
// agreement changes its subject and its entitlement goes from one grant to
// three and then two, with two more requests waiting. The controllers, when
// they come back, apply the latest of each.
func testSpecEditsWhileStopped(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	op := runOperator(t, operatorOptions{})
	op.settle(t, 30*time.Second, "the request Ready", func() error { return requestReady(w.request) })
	op.stop(t)

	role2 := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: w.role + "-v2", Labels: map[string]string{v1alpha1.LabelGrantable: "true"}},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}}}
	mustCreateObj(t, role2)
	editOffering(t, w, func(item *v1alpha1.ResourceItem) {
		item.Quota = corev1.ResourceList{corev1.ResourcePods: resource.MustParse("5")}
	})
	editOffering(t, w, func(item *v1alpha1.ResourceItem) {
		item.ClusterRoles = []v1alpha1.ClusterRoleName{v1alpha1.ClusterRoleName(role2.Name)}
		item.Quota = corev1.ResourceList{corev1.ResourcePods: resource.MustParse("7")}
		item.Limits = nil
	})
	subject := "crash-user-" + w.ns + "-v2"
	editAgreement(t, w, func(agr *v1alpha1.ServiceAgreement) { agr.Spec.Entitlements.Resources[0].MaxGrants = ptr.To[int32](3) })
	more := []*v1alpha1.ConsumptionRequest{sibling(w, "more-1"), sibling(w, "more-2")}
	for _, cr := range more {
		mustCreateObj(t, cr)
	}
	editAgreement(t, w, func(agr *v1alpha1.ServiceAgreement) {
		agr.Spec.Entitlements.Resources[0].MaxGrants = ptr.To[int32](2)
		agr.Spec.Consumer.Subjects[0].Name = subject
	})

	op = runOperator(t, operatorOptions{})
	op.settle(t, 30*time.Second, "the grant brought to the latest spec", func() error {
		if err := requestReady(w.request); err != nil {
			return err
		}
		var rbs rbacv1.RoleBindingList
		if err := admin.List(ctx, &rbs, client.MatchingLabels{v1alpha1.LabelRequestUID: string(w.request.UID)}); err != nil {
			return err
		}
		if len(rbs.Items) != 1 || rbs.Items[0].RoleRef.Name != role2.Name || len(rbs.Items[0].Subjects) != 1 || rbs.Items[0].Subjects[0].Name != subject {
			return fmt.Errorf("RoleBindings %+v", rbs.Items)
		}
		decided := 0
		for _, cr := range more {
			if err := admin.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
				return err
			}
			if cr.Status.Phase == v1alpha1.RequestFulfilled || cr.Status.Phase == v1alpha1.RequestDenied {
				decided++
			}
		}
		if decided != len(more) {
			return fmt.Errorf("%d of %d further requests decided", decided, len(more))
		}
		return nil
	})
	op.stop(t)

	owned := client.MatchingLabels{v1alpha1.LabelRequestUID: string(w.request.UID)}
	var quotas corev1.ResourceQuotaList
	if err := admin.List(ctx, &quotas, owned); err != nil || len(quotas.Items) != 1 || !quotas.Items[0].Spec.Hard.Pods().Equal(resource.MustParse("7")) {
		t.Fatalf("quota %+v (%v), want exactly one with pods=7", quotas.Items, err)
	}
	var limits corev1.LimitRangeList
	if err := admin.List(ctx, &limits, owned); err != nil || len(limits.Items) != 0 {
		t.Fatalf("%d LimitRanges (%v), want none", len(limits.Items), err)
	}
	if err := admin.Get(ctx, client.ObjectKeyFromObject(w.request), w.request); err != nil {
		t.Fatal(err)
	}
	if g := w.request.Status.Grant; g == nil || g.LimitRange != "" || len(g.RoleBindings) != 1 {
		t.Fatalf("status.grant %+v does not reflect the latest offering", g)
	}
	// Two grants at most: the first request holds one, exactly one of the others gets the other.
	holders := []types.UID{w.request.UID}
	for _, cr := range more {
		switch cr.Status.Phase {
		case v1alpha1.RequestFulfilled:
			holders = append(holders, cr.UID)
		case v1alpha1.RequestDenied:
			if c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionDenied); c == nil || c.Reason != v1alpha1.ReasonEntitlementExhausted {
				t.Errorf("%s denied with %+v, want %s", cr.Name, c, v1alpha1.ReasonEntitlementExhausted)
			}
			assertNothingHeld(t, w, cr)
		}
	}
	assertAllocations(t, w, holders...)
	var agr v1alpha1.ServiceAgreement
	if err := admin.Get(ctx, client.ObjectKey{Namespace: w.ns, Name: "agreement"}, &agr); err != nil {
		t.Fatal(err)
	}
	if agr.Status.ObservedGeneration != agr.Generation || agr.Status.Phase != v1alpha1.AgreementActive {
		t.Fatalf("agreement observedGeneration %d of %d, phase %s", agr.Status.ObservedGeneration, agr.Generation, agr.Status.Phase)
	}
}

// testSuspendedAndReactivatedWhileStopped: the agreement is suspended and
// reactivated while no controller runs. The controllers only see an active
// agreement: access stays as it was, the very same RoleBinding.
func testSuspendedAndReactivatedWhileStopped(t *testing.T) {
	w := newWorld(t)
	op := runOperator(t, operatorOptions{})
	op.settle(t, 30*time.Second, "the request Ready", func() error { return requestReady(w.request) })
	op.stop(t)
	before := grantedRoleBinding(t, w)

	editAgreement(t, w, func(agr *v1alpha1.ServiceAgreement) { agr.Spec.Suspended = true })
	editAgreement(t, w, func(agr *v1alpha1.ServiceAgreement) { agr.Spec.Suspended = false })

	op = runOperator(t, operatorOptions{})
	op.settle(t, 30*time.Second, "the agreement observed", func() error { return agreementRollUp(w, 1) })
	op.stop(t)
	if err := requestReady(w.request); err != nil {
		t.Fatal(err)
	}
	if after := grantedRoleBinding(t, w); after.UID != before.UID {
		t.Fatalf("the RoleBinding was revoked and recreated (%s, then %s) for a suspension nobody saw", before.UID, after.UID)
	}
	w.assertGranted(t, 0)
}

// testSuspendedAndReactivatedWhileRevocationIsHeld: the controller sees the
// suspension and starts revoking, but its writes are held back until the
// agreement is active again. The stale revocation lands late; the
// controllers must then restore access and leave everything consistent.
func testSuspendedAndReactivatedWhileRevocationHeld(t *testing.T) {
	w := newWorld(t)
	h := newHold(func(r *http.Request) bool {
		return r.Method == http.MethodDelete && strings.Contains(r.URL.Path, "/rolebindings/")
	})
	h.armed.Store(false)
	op := runOperator(t, operatorOptions{beforeWrite: h.beforeWrite})
	op.settle(t, 30*time.Second, "the request Ready", func() error { return requestReady(w.request) })
	before := grantedRoleBinding(t, w)
	h.armed.Store(true)

	editAgreement(t, w, func(agr *v1alpha1.ServiceAgreement) { agr.Spec.Suspended = true })
	h.waitHeld(t, "the RoleBinding being revoked")
	editAgreement(t, w, func(agr *v1alpha1.ServiceAgreement) { agr.Spec.Suspended = false })
	h.let()

	op.settle(t, 30*time.Second, "access restored", func() error {
		if err := requestReady(w.request); err != nil {
			return err
		}
		return agreementRollUp(w, 1)
	})
	op.stop(t)
	w.assertGranted(t, 0)
	if after := grantedRoleBinding(t, w); after.UID == before.UID {
		t.Fatal("the held revocation never landed: the test did not test anything")
	}
}

func mustCreateObj(t *testing.T, obj client.Object) {
	t.Helper()
	if err := admin.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// requestReady refreshes cr and returns nil when it is Fulfilled and Ready.
func requestReady(cr *v1alpha1.ConsumptionRequest) error {
	if err := admin.Get(context.Background(), client.ObjectKeyFromObject(cr), cr); err != nil {
		return err
	}
	if cr.Status.Phase != v1alpha1.RequestFulfilled || !meta.IsStatusConditionTrue(cr.Status.Conditions, v1alpha1.ConditionReady) ||
		!meta.IsStatusConditionTrue(cr.Status.Conditions, v1alpha1.ConditionAccessVerified) {
		return fmt.Errorf("%s: phase %s, conditions %+v", cr.Name, cr.Status.Phase, cr.Status.Conditions)
	}
	return nil
}

// agreementRollUp returns nil when w's agreement is Active, has observed its
// latest generation and counts that many requests.
func agreementRollUp(w *world, requests int32) error {
	var agr v1alpha1.ServiceAgreement
	if err := admin.Get(context.Background(), client.ObjectKey{Namespace: w.ns, Name: "agreement"}, &agr); err != nil {
		return err
	}
	if agr.Status.Phase != v1alpha1.AgreementActive || agr.Status.ObservedGeneration != agr.Generation || agr.Status.Requests.Total != requests {
		return fmt.Errorf("agreement phase %s, generation %d observed %d, %d requests", agr.Status.Phase, agr.Generation,
			agr.Status.ObservedGeneration, agr.Status.Requests.Total)
	}
	return nil
}

// grantedRoleBinding returns the one RoleBinding of w's request.
func grantedRoleBinding(t *testing.T, w *world) *rbacv1.RoleBinding {
	t.Helper()
	var rbs rbacv1.RoleBindingList
	if err := admin.List(context.Background(), &rbs, client.MatchingLabels{v1alpha1.LabelRequestUID: string(w.request.UID)}); err != nil {
		t.Fatal(err)
	}
	if len(rbs.Items) != 1 {
		t.Fatalf("%d RoleBindings for the request, want 1", len(rbs.Items))
	}
	return &rbs.Items[0]
}

// assertNothingHeld checks that a request left nothing behind: no
// RoleBinding, no namespace that is not being deleted, no allocation, and no
// request of that UID.
func assertNothingHeld(t *testing.T, w *world, cr *v1alpha1.ConsumptionRequest) {
	t.Helper()
	ctx := context.Background()
	owned := client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)}
	var rbs rbacv1.RoleBindingList
	if err := admin.List(ctx, &rbs, owned); err != nil || len(rbs.Items) != 0 {
		t.Errorf("%s: %d RoleBindings left (%v)", cr.Name, len(rbs.Items), err)
	}
	var nss corev1.NamespaceList
	if err := admin.List(ctx, &nss, owned); err != nil {
		t.Fatal(err)
	}
	for _, ns := range nss.Items {
		if ns.DeletionTimestamp.IsZero() {
			t.Errorf("%s: namespace %s left behind", cr.Name, ns.Name)
		}
	}
	for _, uid := range w.grantHolders(t) {
		if uid == string(cr.UID) {
			t.Errorf("%s: grant slot still held", cr.Name)
		}
	}
	var now v1alpha1.ConsumptionRequest
	err := admin.Get(ctx, client.ObjectKeyFromObject(cr), &now)
	if err == nil && now.UID == cr.UID && !now.DeletionTimestamp.IsZero() {
		t.Errorf("%s: stuck in deletion with finalizers %v", cr.Name, now.Finalizers)
	} else if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

// assertAllocations checks that w's agreement holds exactly the allocations of uids.
func assertAllocations(t *testing.T, w *world, uids ...types.UID) {
	t.Helper()
	want := map[string]bool{}
	for _, u := range uids {
		want[string(u)] = true
	}
	held := w.grantHolders(t)
	got := map[string]bool{}
	for _, u := range held {
		got[u] = true
	}
	if len(held) != len(uids) || len(got) != len(want) {
		t.Fatalf("grant slots held by %v, want exactly %v", held, uids)
	}
	for u := range want {
		if !got[u] {
			t.Fatalf("grant slots held by %v, want exactly %v", held, uids)
		}
	}
}

func editOffering(t *testing.T, w *world, edit func(*v1alpha1.ResourceItem)) {
	t.Helper()
	var off v1alpha1.ServiceOffering
	if err := admin.Get(context.Background(), client.ObjectKey{Name: w.offering}, &off); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(off.DeepCopy())
	edit(&off.Spec.Resources[0])
	if err := admin.Patch(context.Background(), &off, patch); err != nil {
		t.Fatal(err)
	}
}

func editAgreement(t *testing.T, w *world, edit func(*v1alpha1.ServiceAgreement)) {
	t.Helper()
	if err := patchAgreement(w, edit); err != nil {
		t.Fatal(err)
	}
}

// patchAgreement edits w's agreement's spec with a merge patch made on a
// fresh read. The tests are the only writers of the spec; the operator's
// status writes, however frequent, do not make it fail.
func patchAgreement(w *world, edit func(*v1alpha1.ServiceAgreement)) error {
	var agr v1alpha1.ServiceAgreement
	if err := admin.Get(context.Background(), client.ObjectKey{Namespace: w.ns, Name: "agreement"}, &agr); err != nil {
		return err
	}
	patch := client.MergeFrom(agr.DeepCopy())
	edit(&agr)
	return admin.Patch(context.Background(), &agr, patch)
}
