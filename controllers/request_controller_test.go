package controllers

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

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
