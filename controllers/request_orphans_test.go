package controllers

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// The orphan sweep: whatever removed a request without its finalizer (an
// administrator, an outage of the admission policy, etcd surgery), the
// operator revokes what the request was granted.

// stripAndDelete removes cr's finalizer and deletes it at the resourceVersion
// the strip left, as an administrator can despite the admission policy: the
// request is gone at once, without the operator seeing it being deleted. It
// retries when the operator put the finalizer back in between.
func stripAndDelete(t *testing.T, cr *v1alpha1.ConsumptionRequest) {
	t.Helper()
	for range 20 {
		get(t, cr)
		patch := client.MergeFromWithOptions(cr.DeepCopy(), client.MergeFromWithOptimisticLock{})
		cr.Finalizers = nil
		if err := admin.Patch(testCtx, cr, patch); err != nil {
			if apierrors.IsConflict(err) {
				continue
			}
			t.Fatal(err)
		}
		rv := cr.ResourceVersion
		err := admin.Delete(testCtx, cr, client.Preconditions{ResourceVersion: &rv})
		if err == nil {
			gone(t, cr)
			return
		}
		if !apierrors.IsConflict(err) {
			t.Fatal(err)
		}
	}
	t.Fatal("the finalizer came back before every delete")
}

// waitNoRoleBindings waits until no RoleBinding of the request uid is left.
func waitNoRoleBindings(t *testing.T, cr *v1alpha1.ConsumptionRequest) {
	t.Helper()
	eventually(t, 20*time.Second, "the orphaned RoleBindings to be deleted", func() error {
		var rbs rbacv1.RoleBindingList
		if err := admin.List(testCtx, &rbs, client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)}); err != nil {
			return err
		}
		if n := len(rbs.Items); n != 0 {
			return fmt.Errorf("%d RoleBindings left", n)
		}
		return nil
	})
}

// TestStrippedDeletionLeavesNoAccess: a granted request is deleted with its
// finalizer stripped. Its RoleBindings and its namespace (policy Delete) go
// all the same, and an OrphanRevoked event says so.
func TestStrippedDeletionLeavesNoAccess(t *testing.T) {
	f := newFixture(t)
	cr := f.grantedRequest("stripped")
	ns := cr.Status.Grant.Namespace
	stripAndDelete(t, cr)

	waitNoRoleBindings(t, cr)
	eventually(t, 20*time.Second, "the orphaned namespace to be deleted", func() error {
		var nsObj corev1.Namespace
		if err := admin.Get(testCtx, nsKey(ns), &nsObj); err != nil {
			return client.IgnoreNotFound(err)
		}
		if nsObj.DeletionTimestamp.IsZero() {
			return fmt.Errorf("namespace %s is not being deleted", ns)
		}
		return nil
	})
	waitEvent(t, cr, "OrphanRevoked", ns)
}

// TestStrippedDeletionRetainsTheNamespace: with the item's policy Retain, the
// orphan's namespace is released to the provider as on a normal revocation:
// no RoleBinding, no request UID, still there.
func TestStrippedDeletionRetainsTheNamespace(t *testing.T) {
	f := newFixture(t, withRevocation(v1alpha1.RevocationPolicyRetain))
	cr := f.grantedRequest("stripped-retain")
	ns := cr.Status.Grant.Namespace
	stripAndDelete(t, cr)

	waitNoRoleBindings(t, cr)
	eventually(t, 20*time.Second, "the orphaned namespace to be released", func() error {
		var nsObj corev1.Namespace
		if err := admin.Get(testCtx, nsKey(ns), &nsObj); err != nil {
			return err
		}
		if !nsObj.DeletionTimestamp.IsZero() {
			return fmt.Errorf("namespace %s is being deleted; its policy is Retain", ns)
		}
		if uid, ok := nsObj.Labels[v1alpha1.LabelRequestUID]; ok {
			return fmt.Errorf("namespace %s still carries request UID %s", ns, uid)
		}
		return nil
	})
}

// TestStrippedDeletionReturnsGoodsNotAccepted: goods delivered but not
// accepted are the provider's until accepted; an orphaned delivery is
// returned.
func TestStrippedDeletionReturnsGoodsNotAccepted(t *testing.T) {
	w := newGoodsWorld(t, nil)
	cr := w.goodsRequest("stripped-goods", 1)
	mustCreate(t, cr)
	waitPhase(t, cr, v1alpha1.RequestDelivered)
	sec, cm := w.copies(cr)
	stripAndDelete(t, cr)

	for _, obj := range []client.Object{sec, cm} {
		eventually(t, 20*time.Second, "the orphaned copy to be removed", func() error {
			ok, err := exists(obj)
			if err == nil && ok {
				err = fmt.Errorf("%T %s still there", obj, obj.GetName())
			}
			return err
		})
	}
}

// orphanedNamespace plants what a request granted, for a request that does
// not exist: a namespace and a RoleBinding with the labels and UID the
// operator writes, as an outage during a stripped deletion leaves them; the
// namespace carries the grant marker when marked.
func orphanedNamespace(t *testing.T, f *fixture, marked bool) (*corev1.Namespace, *rbacv1.RoleBinding) {
	t.Helper()
	ghost := &v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: uniq("ghost"), UID: types.UID(uniq("ghost-uid"))}}
	labels := childLabels(ghost, f.offering.Name, "space")
	// The namespace gets the operator's labels only once its RoleBinding
	// exists, as an orphan is found with both: a sweep fired by the bare
	// namespace would delete it before the RoleBinding is made, and the
	// RoleBinding, in a namespace already being deleted (which nothing
	// deletes in envtest), would be left to the namespace controller.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: uniq("orphan")}}
	mustCreate(t, ns)
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "offering-orphan", Labels: labels},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: f.role},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "dev-" + f.ns}}}
	mustCreate(t, rb)
	patch := client.MergeFrom(ns.DeepCopy())
	ns.Labels = labels
	if marked {
		var key corev1.Secret
		if err := admin.Get(testCtx, client.ObjectKey{Namespace: operatorNamespace, Name: GrantKeySecret}, &key); err != nil {
			t.Fatal(err)
		}
		ns.Annotations = map[string]string{v1alpha1.AnnotationGrantMarker: grantMarker(key.Data["key"], ghost.UID, ns.Name)}
	}
	if err := admin.Patch(testCtx, ns, patch); err != nil {
		t.Fatal(err)
	}
	return ns, rb
}

// TestOrphanFoundFromItsOwnEvents: objects of a request that never reached
// the operator's cache are found from their own events and revoked, when the
// namespace carries the operator's grant marker. A namespace with the labels
// but no marker was not made by the operator: it is left alone.
func TestOrphanFoundFromItsOwnEvents(t *testing.T) {
	f := newFixture(t)
	planted, plantedRB := orphanedNamespace(t, f, false)
	ns, rb := orphanedNamespace(t, f, true)
	eventually(t, 20*time.Second, "the orphaned RoleBinding to be deleted", func() error {
		ok, err := exists(rb)
		if err == nil && ok {
			err = fmt.Errorf("RoleBinding %s/%s still there", rb.Namespace, rb.Name)
		}
		return err
	})
	eventually(t, 20*time.Second, "the orphaned namespace to be deleted", func() error {
		get(t, ns)
		if ns.DeletionTimestamp.IsZero() {
			return fmt.Errorf("namespace %s is not being deleted", ns.Name)
		}
		return nil
	})
	get(t, planted)
	get(t, plantedRB)
	if !planted.DeletionTimestamp.IsZero() || !plantedRB.DeletionTimestamp.IsZero() {
		t.Fatalf("namespace %s without the grant marker was revoked", planted.Name)
	}
}
