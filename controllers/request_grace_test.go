package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

func withGracePeriod(d time.Duration) fixtureOption {
	return func(f *fixture) { f.offering.Spec.Resources[0].GracePeriod = &metav1.Duration{Duration: d} }
}

// expireIntoGrace lets the fixture's agreement expire and waits until the
// request's access is revoked with its namespace kept until the deadline.
func expireIntoGrace(t *testing.T, f *fixture, cr *v1alpha1.ConsumptionRequest, step time.Duration, deadline time.Time) {
	t.Helper()
	rbName := cr.Status.Grant.RoleBindings[0]
	testClock.Step(step)
	touch(t, f.agreement)
	waitPhase(t, cr, v1alpha1.RequestRevoked)
	c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionReady)
	if c == nil || c.Reason != v1alpha1.ReasonGracePeriod || !strings.Contains(c.Message, deadline.UTC().Format(time.RFC3339)) {
		t.Fatalf("Ready during the grace period: %+v", c)
	}
	if g := cr.Status.Grant; g == nil || g.RetainedUntil == nil || !g.RetainedUntil.Equal(&metav1.Time{Time: deadline}) || len(g.RoleBindings) > 0 {
		t.Fatalf("grant during the grace period: %+v, want retainedUntil %v and no RoleBindings", g, deadline)
	}
	gone(t, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: cr.Status.Grant.Namespace, Name: rbName}})
	var ns corev1.Namespace
	if err := admin.Get(testCtx, nsKey(cr.Status.Grant.Namespace), &ns); err != nil || !ns.DeletionTimestamp.IsZero() {
		t.Fatalf("the namespace must be kept during the grace period: %v %v", err, ns.DeletionTimestamp)
	}
	waitEvent(t, cr, "Revoked", "kept with its data until "+deadline.UTC().Format(time.RFC3339))
}

func TestRenewalWithinExpiryGraceKeepsData(t *testing.T) {
	until := testClock.Now().Add(time.Hour).Truncate(time.Second)
	f := newFixture(t, withValidUntil(until), withGracePeriod(48*time.Hour))
	cr := f.grantedRequest("late-renewal")
	ns := cr.Status.Grant.Namespace
	data := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "state"}, Data: map[string]string{"orders": "42"}}
	mustCreate(t, data)
	var nsBefore corev1.Namespace
	if err := admin.Get(testCtx, nsKey(ns), &nsBefore); err != nil {
		t.Fatal(err)
	}

	expireIntoGrace(t, f, cr, 2*time.Hour, until.Add(48*time.Hour))

	extend(t, f.agreement, testClock.Now().Add(30*24*time.Hour))
	waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionTrue)
	if cr.Status.Grant.Namespace != ns || cr.Status.Grant.RetainedUntil != nil || len(cr.Status.Grant.RoleBindings) == 0 {
		t.Fatalf("grant after the renewal: %+v", cr.Status.Grant)
	}
	var nsAfter corev1.Namespace
	if err := admin.Get(testCtx, nsKey(ns), &nsAfter); err != nil || nsAfter.UID != nsBefore.UID {
		t.Fatalf("namespace %s after the renewal: %v (uid %s, was %s)", ns, err, nsAfter.UID, nsBefore.UID)
	}
	got := &corev1.ConfigMap{}
	if err := admin.Get(testCtx, client.ObjectKeyFromObject(data), got); err != nil || got.Data["orders"] != "42" {
		t.Fatalf("the consumer's data did not survive the grace period: %v %v", err, got.Data)
	}
}

func TestExpiryGraceRunsOut(t *testing.T) {
	until := testClock.Now().Add(time.Hour).Truncate(time.Second)
	f := newFixture(t, withValidUntil(until), withGracePeriod(3*time.Hour))
	cr := f.grantedRequest("never-renewed")
	ns := cr.Status.Grant.Namespace

	expireIntoGrace(t, f, cr, 2*time.Hour, until.Add(3*time.Hour))

	// The grace period passes without a renewal: the namespace is deleted.
	testClock.Step(3 * time.Hour)
	touch(t, cr)
	gone(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	eventually(t, 20*time.Second, "grant released", func() error {
		get(t, cr)
		if cr.Status.Grant != nil {
			return fmt.Errorf("grant still recorded: %+v", cr.Status.Grant)
		}
		return nil
	})
	if c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Reason != v1alpha1.ReasonRevoked {
		t.Errorf("Ready after the grace period: %+v", c)
	}
}
