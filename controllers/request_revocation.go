package controllers

import (
	"context"
	"sort"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Revocation: deleting a request, or its agreement leaving force (suspended,
// expired, deleted), revokes what was granted: RoleBindings first, then the
// namespace per the offering's revocation policy; goods not accepted yet are
// taken back and a running action Job is cancelled. The finalizer makes
// sure nothing is orphaned.

// reconcileDelete revokes everything granted for a request, gives its
// entitlement back, and only then lets the request go.
func (r *RequestReconciler) reconcileDelete(ctx context.Context, cr *v1alpha1.ConsumptionRequest) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(cr, v1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	policy := revocationPolicy(r.offeringFor(ctx, cr), cr)
	cancelled, err := r.cancelAction(ctx, cr)
	if err != nil {
		return ctrl.Result{}, err
	}
	if cancelled {
		r.Recorder.Eventf(cr, nil, corev1.EventTypeNormal, "ActionCancelled", "Delete", "the request was deleted: its running Job was cancelled")
	}
	if err := r.revoke(ctx, cr, true, policy); err != nil {
		if r.pendingRevocation(cr, err) {
			return ctrl.Result{RequeueAfter: clusterRetry}, nil
		}
		return ctrl.Result{}, err
	}
	if err := r.recordServiceLevel(ctx, cr); err != nil {
		return ctrl.Result{}, err
	}
	if !consumed(cr) {
		if err := r.releaseEntitlement(ctx, cr); err != nil {
			return ctrl.Result{}, err
		}
	}
	// The resourceVersion makes the patch fail, rather than take the finalizer
	// of a successor of the same name, when cr was read from a stale cache.
	patch := client.MergeFromWithOptions(cr.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(cr, v1alpha1.Finalizer)
	if err := r.Patch(ctx, cr, patch); err != nil {
		return endOnConflict(ctrl.Result{}, client.IgnoreNotFound(err))
	}
	return ctrl.Result{}, nil
}

// releaseEntitlement gives the request's allocation back to its agreement.
func (r *RequestReconciler) releaseEntitlement(ctx context.Context, cr *v1alpha1.ConsumptionRequest) error {
	var agr v1alpha1.ServiceAgreement
	if err := r.Get(ctx, types.NamespacedName{Namespace: cr.Namespace, Name: string(cr.Spec.Agreement)}, &agr); err != nil {
		return client.IgnoreNotFound(err)
	}
	if cr.Spec.Resource != nil {
		return releaseGrants(ctx, r.Options.ledger(r.Client, r.APIReader), string(cr.UID))
	}
	if !hasAllocation(&agr, string(cr.UID)) {
		return nil
	}
	return releaseAllocations(ctx, r.Client, r.APIReader, &agr, string(cr.UID))
}

// revocationPolicy is what happens to a request's namespace when access is
// revoked for good: the item's policy, Delete when it has none or the
// offering cannot be read.
func revocationPolicy(off *v1alpha1.ServiceOffering, cr *v1alpha1.ConsumptionRequest) v1alpha1.RevocationPolicy {
	if off != nil && cr.Spec.Resource != nil {
		if item := findResourceItem(off, cr.Spec.Resource.Name); item != nil && item.RevocationPolicy != "" {
			return item.RevocationPolicy
		}
	}
	return v1alpha1.RevocationPolicyDelete
}

// revokeAndReport revokes a request's access because its agreement is not in
// force, and reports it. final revocations (agreement expired or deleted)
// remove the namespace per the item's policy; temporary ones (suspension)
// remove only the RoleBindings, so that access can be restored as it was.
// The request waits for its agreement to be in force again.
func (r *RequestReconciler) revokeAndReport(ctx context.Context, cr *v1alpha1.ConsumptionRequest, off *v1alpha1.ServiceOffering,
	s *requestState, final bool, why string,
) stepOutcome {
	if until, ok := graceUntil(s.agreement, off, cr, s.status.Grant, s.now.Time); ok && final {
		return r.revokeInGrace(ctx, cr, off, s, why, until) // request_grace.go
	}
	hadAccess := holdsAccess(cr)
	if err := r.revoke(ctx, cr, final, revocationPolicy(off, cr)); err != nil {
		return revokeFailed(s, err)
	}
	if s.status.Grant != nil {
		if final {
			s.status.Grant = nil
		} else {
			g := s.status.Grant.DeepCopy()
			g.RoleBindings = nil
			s.status.Grant = g
		}
	}
	o := waitFor(v1alpha1.RequestRevoked, v1alpha1.ReasonRevoked, why+"; access is revoked").
		with(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, v1alpha1.ReasonRevoked, why)
	if cr.Spec.Resource != nil {
		o = o.with(v1alpha1.ConditionAccessVerified, metav1.ConditionFalse, v1alpha1.ReasonRevoked, "access was revoked")
	}
	if cr.Spec.Goods != nil {
		o = goodsRevoked(s, why, o)
	}
	if hadAccess {
		s.tell(relatedGrant(cr, s), corev1.EventTypeNormal, "Revoked", "Revoke", "%s; access is revoked", why)
	}
	return o
}

// revoke removes what was granted for a request: its RoleBindings first, so
// that access ends at once, then (when final) the namespace according to the
// policy: Delete deletes it, Retain releases it to the provider.
func (r *RequestReconciler) revoke(ctx context.Context, cr *v1alpha1.ConsumptionRequest, final bool, policy v1alpha1.RevocationPolicy) error {
	// Goods not accepted yet are returned, whether the end is final or not; accepted goods are never touched.
	if _, err := r.removeCopies(ctx, cr, nil); err != nil {
		return err
	}
	if cr.Status.Cluster != "" {
		return r.revokeInMember(ctx, cr, final, policy) // request_placement.go
	}
	if err := r.revokeRoleBindings(ctx, cr); err != nil {
		return err
	}
	if !final {
		return nil
	}
	return r.revokeNamespaces(ctx, cr, policy)
}

// revokeNamespaces ends the namespaces granted for a request according to
// the policy.
func (r *RequestReconciler) revokeNamespaces(ctx context.Context, cr *v1alpha1.ConsumptionRequest, policy v1alpha1.RevocationPolicy) error {
	owned := client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)}
	var nss corev1.NamespaceList
	if err := r.List(ctx, &nss, owned); err != nil {
		return err
	}
	for i := range nss.Items {
		if ns := &nss.Items[i]; ns.DeletionTimestamp.IsZero() {
			if err := r.endNamespace(ctx, cr, ns, policy); err != nil {
				return err
			}
		}
	}
	return nil
}

// endNamespace ends a namespace granted to cr for good, according to the
// policy: Delete deletes it, Retain releases it to the provider (it keeps
// its labels but the request's UID, and says whose it was).
func (r *RequestReconciler) endNamespace(ctx context.Context, cr *v1alpha1.ConsumptionRequest, ns *corev1.Namespace, policy v1alpha1.RevocationPolicy) error {
	if policy == v1alpha1.RevocationPolicyRetain {
		patch := client.MergeFrom(ns.DeepCopy())
		delete(ns.Labels, v1alpha1.LabelRequestUID)
		if ns.Annotations == nil {
			ns.Annotations = map[string]string{}
		}
		ns.Annotations["service.offering.dev/retained-from"] = cr.Namespace + "/" + cr.Name
		return client.IgnoreNotFound(r.Patch(ctx, ns, patch))
	}
	if err := deleteWithUID(ctx, r.Client, ns); err != nil {
		return err
	}
	r.Recorder.Eventf(cr, nil, corev1.EventTypeNormal, "NamespaceDeleted", "Revoke", "deleted namespace %s", ns.Name)
	return nil
}

// revokeRoleBindings deletes the RoleBindings granted for a request.
func (r *RequestReconciler) revokeRoleBindings(ctx context.Context, cr *v1alpha1.ConsumptionRequest) error {
	var rbs rbacv1.RoleBindingList
	if err := r.List(ctx, &rbs, client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)}); err != nil {
		return err
	}
	deleted := make(map[types.NamespacedName]bool, len(rbs.Items))
	for i := range rbs.Items {
		if err := deleteWithUID(ctx, r.Client, &rbs.Items[i]); err != nil {
			return err
		}
		deleted[client.ObjectKeyFromObject(&rbs.Items[i])] = true
	}
	// The cache may not list a RoleBinding created moments ago: also delete the
	// recorded ones, read live, if they are still this request's. A successor of
	// the same name is granted the same names; its bindings are left alone.
	g := cr.Status.Grant
	if g == nil || g.Namespace == "" {
		return nil
	}
	for _, name := range g.RoleBindings {
		key := types.NamespacedName{Namespace: g.Namespace, Name: name}
		if deleted[key] {
			continue
		}
		var rb rbacv1.RoleBinding
		if err := r.APIReader.Get(ctx, key, &rb); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return err
		}
		if rb.Labels[v1alpha1.LabelRequestUID] != string(cr.UID) {
			continue
		}
		if err := deleteWithUID(ctx, r.Client, &rb); err != nil {
			return err
		}
	}
	return nil
}

// cancelAction deletes the action's Job (with its Pods: background
// propagation) and the copy of its secret parameters. It reports whether a
// running Job was cancelled.
func (r *RequestReconciler) cancelAction(ctx context.Context, cr *v1alpha1.ConsumptionRequest) (bool, error) {
	if cr.Spec.Action == nil {
		return false, nil
	}
	return r.cancelJobs(ctx, cr)
}

// cancelJobs deletes the Jobs and secret-parameter copies created for cr,
// those the cache lists and the one its status records. It reports whether a
// running Job was cancelled.
func (r *RequestReconciler) cancelJobs(ctx context.Context, cr *v1alpha1.ConsumptionRequest) (bool, error) {
	sel := client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelRequestUID: string(cr.UID)}
	jobs := map[types.NamespacedName]bool{}
	var list batchv1.JobList
	if err := r.List(ctx, &list, sel); err != nil {
		return false, err
	}
	for i := range list.Items {
		jobs[client.ObjectKeyFromObject(&list.Items[i])] = true
	}
	secrets := map[types.NamespacedName]bool{}
	if run := cr.Status.Action; run != nil && run.Job != "" {
		ns, name, _ := strings.Cut(run.Job, "/")
		jobs[types.NamespacedName{Namespace: ns, Name: name}] = true
		secrets[types.NamespacedName{Namespace: ns, Name: actionSecretName(cr)}] = true
	}
	var secList corev1.SecretList
	if err := r.List(ctx, &secList, sel); err != nil {
		return false, err
	}
	for i := range secList.Items {
		secrets[client.ObjectKeyFromObject(&secList.Items[i])] = true
	}
	cancelled, err := r.deleteActionJobs(ctx, cr, jobs)
	if err != nil {
		return cancelled, err
	}
	return cancelled, r.deleteActionSecrets(ctx, cr, secrets)
}

// deleteActionJobs deletes the given Jobs that were created for cr, with
// their Pods. It reports whether one of them was still running.
func (r *RequestReconciler) deleteActionJobs(ctx context.Context, cr *v1alpha1.ConsumptionRequest, jobs map[types.NamespacedName]bool) (bool, error) {
	cancelled := false
	keys := make([]types.NamespacedName, 0, len(jobs))
	for k := range jobs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		var job batchv1.Job
		if err := r.APIReader.Get(ctx, k, &job); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return cancelled, redact(err)
		}
		if !isOurs(&job, cr) || !job.DeletionTimestamp.IsZero() {
			continue
		}
		uid := job.UID
		err := r.Delete(ctx, &job, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &uid})
		if client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
			return cancelled, redact(err)
		}
		if !jobFinished(&job) {
			cancelled = true
		}
	}
	return cancelled, nil
}

// deleteActionSecrets deletes the given secret-parameter copies that were created for cr.
func (r *RequestReconciler) deleteActionSecrets(ctx context.Context, cr *v1alpha1.ConsumptionRequest, secrets map[types.NamespacedName]bool) error {
	for k := range secrets {
		var sec corev1.Secret
		if err := r.APIReader.Get(ctx, k, &sec); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return redact(err)
		}
		if !isOurs(&sec, cr) {
			continue
		}
		if err := deleteWithUID(ctx, r.Client, &sec); err != nil {
			return redact(err)
		}
	}
	return nil
}

func jobFinished(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
