package controllers

import (
	"context"
	"fmt"
	"sort"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Orphans: objects the operator created for a request that no longer exists.
// The finalizer normally keeps a request until what it was granted is
// revoked, and an admission policy keeps anyone but the operator from
// removing it; but a cluster administrator can still strip it, the policy
// can be missing, and the operator can be down while it happens. Nothing
// granted may outlive its request, whatever removed it.
//
// The sweep runs when a request is not found: after its delete event, and
// after an event of one of its objects (namespace, goods copy, action Job or
// Secret), which the watches map to the request by their labels. At start the
// informers list every managed object, so the sweep also finds what was
// orphaned while the operator was down. An object is an orphan when it carries
// the labels and request UID the operator writes and no request of that name
// with that UID exists, read live from the API server. It is then revoked:
//   - RoleBindings at once, whatever the item's policy;
//   - goods copies not accepted yet are returned (accepted goods carry no
//     label and are never touched);
//   - action Jobs are cancelled with their Pods, and their Secret copies deleted;
//   - the namespace per the item's revocation policy, read from the offering
//     its labels name: Retain releases it to the provider (without the
//     request's UID); Delete, or a policy that cannot be known any more (the
//     offering or the item is gone), deletes it, as the finalizer would.
//
// Labels alone can be written by whoever may edit an object, and must not
// lead the operator to delete what it did not create: a namespace counts
// only with the grant marker of its request UID (marker.go), and its
// RoleBindings are looked for only in such a namespace; Jobs, Secrets and
// ConfigMaps only under the name the operator derives from the request's
// UID (madeFor). Goods copies also carry an owner reference to their
// request, so on a cluster with the garbage collector they go with it even
// when the offering that names their sources is gone.

// orphan is what the labels of a request's objects tell of the request once
// it is gone, and the objects found.
type orphan struct {
	request  types.NamespacedName
	uid      types.UID
	offering string
	item     v1alpha1.ItemName
	found    []string
}

// ghost is a stand-in for the deleted request: its identity as the labels
// tell it, and a stub of every kind of item, so that the revocation steps
// look for every kind of object created for it.
func (o *orphan) ghost() *v1alpha1.ConsumptionRequest {
	return &v1alpha1.ConsumptionRequest{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ConsumptionRequest"},
		ObjectMeta: metav1.ObjectMeta{Namespace: o.request.Namespace, Name: o.request.Name, UID: o.uid},
		Spec: v1alpha1.ConsumptionRequestSpec{
			Resource: &v1alpha1.ResourceRequest{Name: o.item},
			Goods:    &v1alpha1.GoodsRequest{Name: o.item},
			Action:   &v1alpha1.ActionRequest{Name: o.item},
		},
	}
}

// sweepOrphans revokes what was created for requests named key that no
// longer exist (or exist under another UID).
func (r *RequestReconciler) sweepOrphans(ctx context.Context, key types.NamespacedName) error {
	orphans, err := r.orphansNamed(ctx, key)
	if err != nil {
		return err
	}
	for _, o := range orphans {
		var live v1alpha1.ConsumptionRequest
		err := r.APIReader.Get(ctx, key, &live)
		if err == nil && live.UID == o.uid {
			continue // the cache was behind: the request exists
		}
		if client.IgnoreNotFound(err) != nil {
			return err
		}
		if err := r.revokeOrphan(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

// orphansNamed finds, in the cache, the objects created for requests named
// key that are not being deleted, by request UID. RoleBindings and the other
// objects of a granted namespace are found through their namespace.
func (r *RequestReconciler) orphansNamed(ctx context.Context, key types.NamespacedName) ([]*orphan, error) {
	sel := client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue,
		v1alpha1.LabelRequestNamespace: key.Namespace, v1alpha1.LabelRequestName: key.Name}
	byUID := map[types.UID]*orphan{}
	for _, list := range []client.ObjectList{&corev1.NamespaceList{}, &corev1.SecretList{}, &corev1.ConfigMapList{}, &batchv1.JobList{}} {
		if err := r.List(ctx, list, sel); err != nil {
			return nil, err
		}
		err := meta.EachListItem(list, func(item runtime.Object) error {
			obj := item.(client.Object)
			l := obj.GetLabels()
			uid := types.UID(l[v1alpha1.LabelRequestUID])
			if uid == "" || !obj.GetDeletionTimestamp().IsZero() {
				return nil
			}
			o := byUID[uid]
			if o == nil {
				o = &orphan{request: key, uid: uid, offering: l[v1alpha1.LabelOffering], item: v1alpha1.ItemName(l[v1alpha1.LabelItem])}
			}
			if !r.madeFor(ctx, o, obj) {
				return nil
			}
			byUID[uid] = o
			o.found = append(o.found, objectDescription(obj))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	out := make([]*orphan, 0, len(byUID))
	for _, o := range byUID {
		sort.Strings(o.found)
		out = append(out, o)
	}
	return out, nil
}

// madeFor reports whether obj is one the operator made for the request o
// stands for: a namespace with its grant marker, or an object whose name is
// derived from the request's UID (an action Job or its Secret, a goods copy
// of one of the item's sources, which needs the offering to tell). Labels
// alone are anyone's to write: a namespace editor's labelled ConfigMaps cost
// the sweep a look, never a delete or an event.
func (r *RequestReconciler) madeFor(ctx context.Context, o *orphan, obj client.Object) bool {
	ghost := o.ghost()
	switch obj := obj.(type) {
	case *corev1.Namespace:
		return markedFor(r.Options.grantKey, obj, o.uid)
	case *batchv1.Job:
		return obj.Name == actionJobName(ghost)
	case *corev1.Secret:
		if obj.Name == actionSecretName(ghost) {
			return true
		}
	}
	var off v1alpha1.ServiceOffering
	if o.offering == "" || obj.GetNamespace() != ghost.Namespace || r.Get(ctx, types.NamespacedName{Name: o.offering}, &off) != nil {
		return false
	}
	item := findGoodsItem(&off, o.item)
	if item == nil {
		return false
	}
	for _, src := range item.Sources {
		if goodsCopyName(ghost, src) == obj.GetName() {
			return true
		}
	}
	return false
}

// objectDescription names an object for the OrphanRevoked event.
func objectDescription(obj client.Object) string {
	kind := strings.TrimPrefix(fmt.Sprintf("%T", obj), "*v1.")
	if obj.GetNamespace() == "" {
		return kind + " " + obj.GetName()
	}
	return kind + " " + obj.GetNamespace() + "/" + obj.GetName()
}

// revokeOrphan revokes what was created for the request o stands for:
// RoleBindings first, then goods copies, action Jobs and Secrets, then the
// namespace per the item's policy.
func (r *RequestReconciler) revokeOrphan(ctx context.Context, o *orphan) error {
	ghost := o.ghost()
	var nss corev1.NamespaceList
	if err := r.List(ctx, &nss, client.MatchingLabels{v1alpha1.LabelRequestUID: string(o.uid)}); err != nil {
		return err
	}
	var marked []*corev1.Namespace
	for i := range nss.Items {
		if ns := &nss.Items[i]; ns.DeletionTimestamp.IsZero() && markedFor(r.Options.grantKey, ns, o.uid) {
			marked = append(marked, ns)
		}
	}
	for _, ns := range marked {
		if err := r.deleteRoleBindingsIn(ctx, ns.Name, o.uid); err != nil {
			return err
		}
	}
	if _, err := r.removeCopies(ctx, ghost, nil); err != nil {
		return err
	}
	if _, err := r.cancelJobs(ctx, ghost); err != nil {
		return err
	}
	var off *v1alpha1.ServiceOffering
	if o.offering != "" {
		var got v1alpha1.ServiceOffering
		if err := r.Get(ctx, types.NamespacedName{Name: o.offering}, &got); client.IgnoreNotFound(err) != nil {
			return err
		} else if err == nil {
			off = &got
		}
	}
	policy := revocationPolicy(off, ghost)
	for _, ns := range marked {
		if err := r.endNamespace(ctx, ghost, ns, policy); err != nil {
			return err
		}
	}
	metricOrphansRevoked.Inc()
	ctrl.LoggerFrom(ctx).Info("revoked the objects of a deleted request", "request", o.request, "uid", o.uid, "objects", o.found)
	r.Recorder.Eventf(ghost, nil, corev1.EventTypeWarning, "OrphanRevoked", "Revoke",
		"ConsumptionRequest %s (UID %s) is gone without its finalizer having run: revoked %s (namespace policy %s)",
		o.request.Name, o.uid, strings.Join(o.found, ", "), policy)
	return nil
}

// deleteRoleBindingsIn deletes the RoleBindings of the request uid in
// namespace ns, listed live: the event that led here may be the namespace's,
// ahead of its RoleBindings' in the cache, and the namespace is deleted next.
func (r *RequestReconciler) deleteRoleBindingsIn(ctx context.Context, ns string, uid types.UID) error {
	var rbs rbacv1.RoleBindingList
	if err := r.APIReader.List(ctx, &rbs, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelRequestUID: string(uid)}); err != nil {
		return err
	}
	for i := range rbs.Items {
		if err := deleteWithUID(ctx, r.Client, &rbs.Items[i]); err != nil {
			return err
		}
	}
	return nil
}
