package integration

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// pinnedTo pins the world's agreement to revision n of its offering.
func pinnedTo(n int32) worldOption {
	return func(_ *world, _ *v1alpha1.ServiceOffering, agr *v1alpha1.ServiceAgreement) []client.Object {
		agr.Spec.RevisionPolicy, agr.Spec.Revision = v1alpha1.RevisionPolicyPinned, n
		return nil
	}
}

// editQuota sets the pods quota of the world's offering.
func (w *world) editQuota(t *testing.T, pods string) {
	t.Helper()
	var off v1alpha1.ServiceOffering
	if err := admin.Get(context.Background(), client.ObjectKey{Name: w.offering}, &off); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(off.DeepCopy())
	off.Spec.Resources[0].Quota = corev1.ResourceList{corev1.ResourcePods: resource.MustParse(pods)}
	if err := admin.Patch(context.Background(), &off, patch); err != nil {
		t.Fatal(err)
	}
}

// movePin pins the world's agreement to revision n.
func (w *world) movePin(t *testing.T, n int32) {
	t.Helper()
	var agr v1alpha1.ServiceAgreement
	if err := admin.Get(context.Background(), client.ObjectKey{Namespace: w.ns, Name: "agreement"}, &agr); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(agr.DeepCopy())
	agr.Spec.Revision = n
	if err := admin.Patch(context.Background(), &agr, patch); err != nil {
		t.Fatal(err)
	}
}

// grantedUnder is reached when the offering has recorded revision n as its
// latest, and the request is granted under revision rev with a quota of pods.
func (w *world) grantedUnder(latest, rev int32, pods string) func() error {
	return func() error {
		var off v1alpha1.ServiceOffering
		if err := admin.Get(context.Background(), client.ObjectKey{Name: w.offering}, &off); err != nil {
			return err
		}
		if off.Status.LatestRevision != latest || off.Status.ObservedGeneration != off.Generation {
			return fmt.Errorf("offering on revision %d (generation %d observed %d), want %d", off.Status.LatestRevision, off.Generation, off.Status.ObservedGeneration, latest)
		}
		if err := w.ready(); err != nil {
			return err
		}
		cr, err := w.current()
		if err != nil {
			return err
		}
		if cr.Status.OfferingRevision != rev {
			return fmt.Errorf("request on revision %d, want %d", cr.Status.OfferingRevision, rev)
		}
		var q corev1.ResourceQuota
		if err := admin.Get(context.Background(), client.ObjectKey{Namespace: cr.Status.Grant.Namespace, Name: "offering-quota"}, &q); err != nil {
			return err
		}
		if got := q.Spec.Hard[corev1.ResourcePods]; got.String() != pods {
			return fmt.Errorf("quota pods %s, want %s", got.String(), pods)
		}
		return nil
	}
}

// assertRevisions checks that the offering has exactly revisions 1..n, each
// once, and that the latest holds the offering's spec.
func (w *world) assertRevisions(t *testing.T, k int64, n int32) {
	t.Helper()
	var list v1alpha1.ServiceOfferingRevisionList
	if err := admin.List(context.Background(), &list, client.MatchingLabels{v1alpha1.LabelOffering: w.offering}); err != nil {
		t.Fatal(err)
	}
	seen := map[int32]bool{}
	for _, rev := range list.Items {
		seen[rev.Spec.Revision] = true
	}
	if len(list.Items) != int(n) || len(seen) != int(n) || !seen[n] {
		t.Fatalf("fault %d: %d revisions %v, want exactly 1 to %d", k, len(list.Items), seen, n)
	}
	var off v1alpha1.ServiceOffering
	if err := admin.Get(context.Background(), client.ObjectKey{Name: w.offering}, &off); err != nil {
		t.Fatal(err)
	}
	var latest v1alpha1.ServiceOfferingRevision
	if err := admin.Get(context.Background(), types.NamespacedName{Name: fmt.Sprintf("%s-r%d", w.offering, n)}, &latest); err != nil {
		t.Fatal(err)
	}
	if q := latest.Spec.OfferingSpec.Resources[0].Quota[corev1.ResourcePods]; q.Cmp(off.Spec.Resources[0].Quota[corev1.ResourcePods]) != 0 {
		t.Fatalf("fault %d: revision %d holds pods %s, the offering %v", k, n, q.String(), off.Spec.Resources[0].Quota)
	}
}

// roleBinding returns the UID of the world's grant's one RoleBinding.
func (w *world) roleBinding(t *testing.T) types.UID {
	t.Helper()
	var rbs rbacv1.RoleBindingList
	if err := admin.List(context.Background(), &rbs, client.MatchingLabels{v1alpha1.LabelRequestUID: string(w.get(t).UID)}); err != nil || len(rbs.Items) != 1 {
		t.Fatalf("RoleBindings of the grant: %d (%v), want 1", len(rbs.Items), err)
	}
	return rbs.Items[0].UID
}

// TestCrashAtEveryWriteOnOfferingEdit crashes at every write while an
// offering edit is recorded as a revision and reaches a grant that follows
// Latest: the edit makes exactly one new revision, whatever write the crash
// hit, and the grant ends on it.
func TestCrashAtEveryWriteOnOfferingEdit(t *testing.T) {
	crashAtEveryWrite(t, "an offering edit", 30, func(t *testing.T) path {
		w := newWorld(t)
		settle(t, "the request granted under revision 1", path{reached: w.grantedUnder(1, 1, "3")})
		w.editQuota(t, "5")
		return path{reached: w.grantedUnder(2, 2, "5"), check: func(t *testing.T, k int64) {
			w.assertGranted(t, k)
			w.assertRevisions(t, k, 2)
		}}
	})
}

// TestCrashAtEveryWriteOnRevisionMove crashes at every write while a pinned
// agreement is moved to a new revision: the quota is changed in place, the
// RoleBinding the new revision still offers is kept, and no revision is made.
func TestCrashAtEveryWriteOnRevisionMove(t *testing.T) {
	crashAtEveryWrite(t, "a revision move", 30, func(t *testing.T) path {
		w := newWorld(t, pinnedTo(1))
		settle(t, "the request granted under revision 1", path{reached: w.grantedUnder(1, 1, "3")})
		w.editQuota(t, "5")
		settle(t, "the edit recorded, the pinned grant unchanged", path{reached: w.grantedUnder(2, 1, "3")})
		rb := w.roleBinding(t)
		w.movePin(t, 2)
		return path{reached: w.grantedUnder(2, 2, "5"), check: func(t *testing.T, k int64) {
			w.assertGranted(t, k)
			w.assertRevisions(t, k, 2)
			if got := w.roleBinding(t); got != rb {
				t.Fatalf("fault %d: the RoleBinding was replaced by the move", k)
			}
		}}
	})
}
