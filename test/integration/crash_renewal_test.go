package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Expiry with a grace period and renewal, crashed on at every write. The
// managers here tell the real time: the tests move the agreement's
// validUntil instead of a clock.

// withGrace gives the world's access item a grace period of an hour.
func withGrace(_ *world, off *v1alpha1.ServiceOffering, _ *v1alpha1.ServiceAgreement) []client.Object {
	off.Spec.Resources[0].GracePeriod = &metav1.Duration{Duration: time.Hour}
	return nil
}

// setValidUntil sets the world's agreement's validUntil, as its provider does.
func (w *world) setValidUntil(t *testing.T, until time.Time) {
	t.Helper()
	var agr v1alpha1.ServiceAgreement
	ctx := context.Background()
	if err := admin.Get(ctx, client.ObjectKey{Namespace: w.ns, Name: "agreement"}, &agr); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(agr.DeepCopy())
	agr.Spec.ValidUntil = &metav1.Time{Time: until}
	if err := admin.Patch(ctx, &agr, patch); err != nil {
		t.Fatal(err)
	}
}

// inGrace is reached when the request's access is revoked and its namespace kept.
func (w *world) inGrace() error {
	cr, err := w.current()
	if err != nil {
		return err
	}
	if c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Reason != v1alpha1.ReasonGracePeriod ||
		cr.Status.Grant == nil || cr.Status.Grant.RetainedUntil == nil {
		return fmt.Errorf("not in the grace period yet (phase %s)", cr.Status.Phase)
	}
	return nil
}

// namespaceUID is the UID of the request's granted namespace.
func (w *world) namespaceUID(t *testing.T) types.UID {
	t.Helper()
	var ns corev1.Namespace
	if err := admin.Get(context.Background(), client.ObjectKey{Name: w.get(t).Status.Grant.Namespace}, &ns); err != nil {
		t.Fatal(err)
	}
	return ns.UID
}

// assertInGrace checks the state of an expiry in the grace period: no
// RoleBinding, the very namespace kept, the allocation held.
func (w *world) assertInGrace(t *testing.T, k int64, nsUID types.UID) {
	t.Helper()
	cr := w.get(t)
	var rbs rbacv1.RoleBindingList
	if err := admin.List(context.Background(), &rbs, client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)}); err != nil || len(rbs.Items) != 0 {
		t.Fatalf("fault %d: RoleBindings left %d (%v)", k, len(rbs.Items), err)
	}
	var ns corev1.Namespace
	if err := admin.Get(context.Background(), client.ObjectKey{Name: cr.Status.Grant.Namespace}, &ns); err != nil ||
		ns.UID != nsUID || !ns.DeletionTimestamp.IsZero() {
		t.Fatalf("fault %d: namespace %s not kept as it was: %v (uid %s, was %s; deleting %v)", k, cr.Status.Grant.Namespace, err, ns.UID, nsUID, ns.DeletionTimestamp)
	}
	w.assertAllocation(t, k, cr.UID, true)
}

// TestCrashAtEveryWriteOnExpiryGrace crashes the manager at every write while
// an agreement expires into its item's grace period: whatever write the crash
// hit, access ends and the namespace stays.
func TestCrashAtEveryWriteOnExpiryGrace(t *testing.T) {
	crashAtEveryWrite(t, "an expiry into the grace period", 30, func(t *testing.T) path {
		w := newWorld(t, withGrace)
		settle(t, "the request Ready", path{reached: w.ready})
		nsUID := w.namespaceUID(t)
		w.setValidUntil(t, time.Now().Add(-time.Second))
		return path{reached: w.inGrace, check: func(t *testing.T, k int64) { w.assertInGrace(t, k, nsUID) }}
	})
}

// TestCrashAtEveryWriteOnRenewal crashes the manager at every write while an
// agreement in its grace period is renewed: access comes back in the very
// namespace, with exactly the children of a grant.
func TestCrashAtEveryWriteOnRenewal(t *testing.T) {
	crashAtEveryWrite(t, "a renewal in the grace period", 30, func(t *testing.T) path {
		w := newWorld(t, withGrace)
		settle(t, "the request Ready", path{reached: w.ready})
		nsUID := w.namespaceUID(t)
		w.setValidUntil(t, time.Now().Add(-time.Second))
		settle(t, "the request in its grace period", path{reached: w.inGrace})
		w.setValidUntil(t, time.Now().Add(24*time.Hour))
		return path{reached: w.ready, check: func(t *testing.T, k int64) {
			w.assertGranted(t, k)
			if uid := w.namespaceUID(t); uid != nsUID {
				t.Fatalf("fault %d: the namespace was replaced (uid %s, was %s)", k, uid, nsUID)
			}
		}}
	})
}
