package controllers

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

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
