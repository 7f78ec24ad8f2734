package integration

import (
	"context"
	"fmt"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// The orphan sweep after an outage: the request is deleted with its
// finalizer stripped (as a cluster administrator can) while no operator
// runs, so nothing sees it go. The next operator to start finds what the
// request left from the objects' labels and revokes it.

// stripAndDelete removes the request's finalizer and deletes it at once, as
// an administrator, and returns it as it was. No manager runs: nothing puts
// the finalizer back in between.
func (w *world) stripAndDelete(t *testing.T) *v1alpha1.ConsumptionRequest {
	t.Helper()
	ctx := context.Background()
	cr := w.get(t)
	before := cr.DeepCopy()
	patch := client.MergeFromWithOptions(cr.DeepCopy(), client.MergeFromWithOptimisticLock{})
	cr.Finalizers = nil
	if err := admin.Patch(ctx, cr, patch); err != nil {
		t.Fatal(err)
	}
	if err := admin.Delete(ctx, cr); err != nil {
		t.Fatal(err)
	}
	if err := w.gone(); err != nil {
		t.Fatalf("the request without its finalizer is not gone at once: %v", err)
	}
	return before
}

// roleBindingsOf counts the RoleBindings left for the request uid.
func roleBindingsOf(cr *v1alpha1.ConsumptionRequest) (int, error) {
	var rbs rbacv1.RoleBindingList
	err := admin.List(context.Background(), &rbs, client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)})
	return len(rbs.Items), err
}

// orphanRevoked is reached once cr's RoleBindings are gone and its namespace is being deleted.
func orphanRevoked(cr *v1alpha1.ConsumptionRequest) func() error {
	return func() error {
		if n, err := roleBindingsOf(cr); err != nil || n != 0 {
			if err == nil {
				err = fmt.Errorf("%d RoleBindings left", n)
			}
			return err
		}
		var ns corev1.Namespace
		err := admin.Get(context.Background(), client.ObjectKey{Name: cr.Status.Grant.Namespace}, &ns)
		if apierrors.IsNotFound(err) || err == nil && !ns.DeletionTimestamp.IsZero() {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("namespace %s still there", ns.Name)
		}
		return err
	}
}

// managedFor counts the Jobs and Secrets still managed for cr.
func managedFor(cr *v1alpha1.ConsumptionRequest) (int, error) {
	n := 0
	for _, list := range []client.ObjectList{&batchv1.JobList{}, &corev1.SecretList{}} {
		if err := admin.List(context.Background(), list, client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)}); err != nil {
			return n, err
		}
		n += meta.LenList(list)
	}
	return n, nil
}

// TestCrashAtEveryWriteOnOrphanSweep: a granted request is deleted without
// its finalizer while the operator is down; its grant stays. Every fresh
// manager then starts on that orphan, and the k-th write crashes it: the
// next one finishes the revocation (RoleBindings, namespace, the
// agreement's allocation), whatever write the crash hit. The last run, with
// no crash, is the sweep at start of an orphan made during an outage.
func TestCrashAtEveryWriteOnOrphanSweep(t *testing.T) {
	crashAtEveryWrite(t, "revoking an orphaned grant at start", 20, func(t *testing.T) path {
		w := newWorld(t)
		settle(t, "the request Ready", path{reached: w.ready})
		cr := w.stripAndDelete(t)
		if n, err := roleBindingsOf(cr); err != nil || n != 1 {
			t.Fatalf("while no operator runs, the orphan's RoleBindings: %d (%v), want the grant's 1", n, err)
		}
		return path{reached: orphanRevoked(cr), check: func(t *testing.T, k int64) { w.assertRevoked(t, k, cr) }}
	})
}

// TestCrashAtEveryWriteOnOrphanedAction: the same for an action whose Job
// was running: the Job and the copy of its secret parameters go.
func TestCrashAtEveryWriteOnOrphanedAction(t *testing.T) {
	crashAtEveryWrite(t, "cancelling an orphaned action at start", 20, func(t *testing.T) path {
		w := newWorld(t, withAction)
		settle(t, "the action's Job running", path{reached: w.jobRunning})
		cr := w.stripAndDelete(t)
		if n, err := managedFor(cr); err != nil || n == 0 {
			t.Fatalf("while no operator runs, the orphan's Job and Secret: %d objects (%v), want them there", n, err)
		}
		reached := func() error {
			n, err := managedFor(cr)
			if err == nil && n != 0 {
				err = fmt.Errorf("%d Jobs and Secrets of the request left", n)
			}
			return err
		}
		return path{reached: reached, check: func(t *testing.T, k int64) { w.assertActionCancelled(t, k, cr) }}
	})
}
