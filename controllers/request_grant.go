package controllers

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Access grant: a namespace (deterministic name, marked as the operator's;
// an existing namespace is never adopted), RoleBindings of the offering's
// ClusterRoles for the agreement's subjects, ResourceQuota, LimitRange and
// NetworkPolicy. Drift is repaired from events. The access review that
// follows lives in request_access_review.go.

// waitRetry is how soon a request that waits on something not watched (a
// namespace still terminating, an authorizer catching up) is looked at again.
const waitRetry = time.Second

// grantHere creates or repairs everything an access item gives in the
// cluster of r's client, then verifies that the consumer's subjects really
// can use it. grant (request_placement.go) picks the cluster.
func (r *RequestReconciler) grantHere(ctx context.Context, cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement, item *v1alpha1.ResourceItem, s *requestState) stepOutcome {
	nsName := grantedNamespace(cr, item)
	lbls := childLabels(cr, string(agr.Spec.Offering), item.Name)
	if isReservedNamespace(nsName) {
		return r.fail(cr, v1alpha1.ReasonNamespaceConflict, fmt.Sprintf("namespace %s is reserved for the platform and is never granted", nsName))
	}
	phase := v1alpha1.RequestProvisioning
	if s.status.Phase == v1alpha1.RequestFulfilled {
		phase = v1alpha1.RequestFulfilled
	}
	wrote, o := r.ensureNamespace(ctx, cr, agr, item, nsName, lbls)
	if o.kind != proceed {
		return o.orPhase(phase)
	}
	grant, w, err := r.ensureNamespaceChildren(ctx, cr, agr, item, nsName, lbls)
	s.status.Grant = grant
	if err != nil {
		return failing(phase, v1alpha1.ReasonGrantFailed, err.Error(), err).fulfilment()
	}
	wrote = wrote || w
	if wrote && !s.resizing && meta.IsStatusConditionTrue(cr.Status.Conditions, v1alpha1.ConditionFulfilled) {
		r.Recorder.Eventf(cr, nil, corev1.EventTypeNormal, "Repaired", "Grant", "repaired drift in the grant of namespace %s", nsName)
	}
	return r.verifyAccess(ctx, cr, agr, item, nsName, wrote, s).orPhase(phase).
		with(v1alpha1.ConditionFulfilled, metav1.ConditionTrue, v1alpha1.ReasonGranted,
			fmt.Sprintf("namespace %s granted with %d RoleBinding(s)", nsName, len(grant.RoleBindings)))
}

// ensureNamespaceChildren creates or repairs the granted namespace's
// children. They do not depend on each other: they are written in parallel,
// so that a grant costs one round trip after the namespace.
func (r *RequestReconciler) ensureNamespaceChildren(ctx context.Context, cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement,
	item *v1alpha1.ResourceItem, nsName string, lbls map[string]string,
) (*v1alpha1.AccessGrant, bool, error) {
	grant := &v1alpha1.AccessGrant{Namespace: nsName}
	var mu sync.Mutex
	wrote := false
	g, gctx := errgroup.WithContext(ctx)
	step := func(fn func(context.Context) (bool, error)) {
		g.Go(func() error {
			w, err := fn(gctx)
			mu.Lock()
			wrote = wrote || w
			mu.Unlock()
			return err
		})
	}
	step(func(ctx context.Context) (bool, error) {
		names, w, err := r.ensureRoleBindings(ctx, cr, agr, item, nsName, lbls)
		mu.Lock()
		grant.RoleBindings = names
		mu.Unlock()
		return w, err
	})
	grant.ResourceQuota = nameIf(len(item.Quota) > 0, quotaName)
	step(func(ctx context.Context) (bool, error) { return r.ensureQuota(ctx, item, nsName, lbls) })
	grant.LimitRange = nameIf(len(item.Limits) > 0, limitRangeName)
	step(func(ctx context.Context) (bool, error) { return r.ensureLimitRange(ctx, item, nsName, lbls) })
	grant.NetworkPolicy = nameIf(item.NetworkIsolation != v1alpha1.NetworkIsolationNone, networkPolicyName)
	step(func(ctx context.Context) (bool, error) { return r.ensureNetworkPolicy(ctx, item, nsName, lbls) })
	err := g.Wait()
	return grant, wrote, err
}

func nameIf(cond bool, name string) string {
	if cond {
		return name
	}
	return ""
}

// fail ends a request for good: it gave nothing, so its entitlement is released.
func (r *RequestReconciler) fail(cr *v1alpha1.ConsumptionRequest, reason, msg string) stepOutcome {
	r.Recorder.Eventf(cr, nil, corev1.EventTypeWarning, "Failed", "Grant", "%s", msg)
	return stall(v1alpha1.RequestFailed, reason, msg).fulfilment()
}

// ensureNamespace creates the granted namespace, or repairs its labels and
// annotations. A namespace that exists and was not created by the operator
// for this very request is never adopted: the request fails. One still
// terminating from an earlier grant is waited for. It proceeds otherwise.
func (r *RequestReconciler) ensureNamespace(ctx context.Context, cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement, item *v1alpha1.ResourceItem,
	name string, lbls map[string]string,
) (bool, stepOutcome) {
	desiredLabels := map[string]string{}
	maps.Copy(desiredLabels, item.Namespace.Labels)
	maps.Copy(desiredLabels, lbls)
	desiredAnn := map[string]string{}
	maps.Copy(desiredAnn, item.Namespace.Annotations)
	desiredAnn[v1alpha1.AnnotationAgreement] = agr.Namespace + "/" + agr.Name

	ns, created, err := r.createNamespace(ctx, cr, name, desiredLabels, desiredAnn)
	if err != nil {
		return false, failing("", v1alpha1.ReasonGrantFailed, err.Error(), err).fulfilment()
	}
	if created {
		return true, stepOutcome{}
	}
	if o := r.namespaceRefusal(cr, ns); o.kind != proceed {
		return false, o
	}
	if subset(desiredLabels, ns.Labels) && subset(desiredAnn, ns.Annotations) {
		return false, stepOutcome{}
	}
	patch := client.MergeFrom(ns.DeepCopy())
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	if ns.Annotations == nil {
		ns.Annotations = map[string]string{}
	}
	maps.Copy(ns.Labels, desiredLabels)
	maps.Copy(ns.Annotations, desiredAnn)
	if err := r.Patch(ctx, ns, patch); err != nil {
		return true, failing("", v1alpha1.ReasonGrantFailed, err.Error(), err).fulfilment()
	}
	return true, stepOutcome{}
}

// createNamespace creates the namespace with the operator's marker, or reads
// the one that exists (live, when the cache does not show it).
func (r *RequestReconciler) createNamespace(ctx context.Context, cr *v1alpha1.ConsumptionRequest, name string, lbls, ann map[string]string,
) (ns *corev1.Namespace, created bool, err error) {
	ns = &corev1.Namespace{}
	err = r.Get(ctx, types.NamespacedName{Name: name}, ns)
	if !apierrors.IsNotFound(err) {
		return ns, false, err
	}
	ann = maps.Clone(ann)
	ann[v1alpha1.AnnotationGrantMarker] = grantMarker(r.Options.grantKey, cr.UID, name)
	ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls, Annotations: ann}}
	err = r.Create(ctx, ns)
	if err == nil || !apierrors.IsAlreadyExists(err) {
		return ns, err == nil, err
	}
	// It exists but the cache does not show it as ours: look at the real thing.
	ns = &corev1.Namespace{}
	return ns, false, r.APIReader.Get(ctx, types.NamespacedName{Name: name}, ns)
}

// namespaceRefusal says why an existing namespace is not the request's to
// use: never adopted (the request fails) or still being deleted (it waits).
func (r *RequestReconciler) namespaceRefusal(cr *v1alpha1.ConsumptionRequest, ns *corev1.Namespace) stepOutcome {
	name := ns.Name
	terminating := func(msg string) stepOutcome {
		return waitFor(v1alpha1.RequestProvisioning, v1alpha1.ReasonNamespaceTerminating, msg).fulfilment().after(waitRetry)
	}
	if ns.Labels[v1alpha1.LabelRequestUID] != string(cr.UID) || ns.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue {
		if !ns.DeletionTimestamp.IsZero() && ns.Labels[v1alpha1.LabelManagedBy] == v1alpha1.ManagedByValue {
			return terminating(fmt.Sprintf("namespace %s from an earlier grant is still being deleted", name))
		}
		return r.fail(cr, v1alpha1.ReasonNamespaceConflict, fmt.Sprintf("namespace %s already exists and was not created by offering-operator for this request; "+
			"it is never adopted: delete it or request another name", name))
	}
	if !ns.DeletionTimestamp.IsZero() {
		return terminating(fmt.Sprintf("namespace %s is being deleted; it is created again once it is gone", name))
	}
	// Labels can be written by anyone who may create namespaces: one the
	// request has not recorded yet is taken only with the operator's marker.
	if recorded := cr.Status.Grant != nil && cr.Status.Grant.Namespace == name; !recorded && !markedFor(r.Options.grantKey, ns, cr.UID) {
		return r.fail(cr, v1alpha1.ReasonNamespaceConflict, fmt.Sprintf("namespace %s has offering-operator's labels for this request but was not created by offering-operator "+
			"(no valid %s annotation); it is never adopted: delete it or request another name", name, v1alpha1.AnnotationGrantMarker))
	}
	return stepOutcome{}
}

func rbacSubjects(agr *v1alpha1.ServiceAgreement) []rbacv1.Subject {
	out := make([]rbacv1.Subject, 0, len(agr.Spec.Consumer.Subjects))
	for _, s := range agr.Spec.Consumer.Subjects {
		switch s.Kind {
		case v1alpha1.SubjectServiceAccount:
			out = append(out, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: s.Name, Namespace: string(s.Namespace)})
		case v1alpha1.SubjectGroup:
			out = append(out, rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: s.Name})
		default:
			out = append(out, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: s.Name})
		}
	}
	return out
}

// ensureRoleBindings binds each of the item's ClusterRoles to the agreement's
// subjects, and removes bindings of roles the item no longer names. A role
// that is missing or not grantable is never bound.
func (r *RequestReconciler) ensureRoleBindings(ctx context.Context, cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement, item *v1alpha1.ResourceItem,
	ns string, lbls map[string]string,
) ([]string, bool, error) {
	// Every role is checked before any binding is written, so that a refused
	// role never leaves the others granted.
	desired, err := r.desiredRoleBindings(ctx, agr, item, ns, lbls)
	if err != nil {
		return nil, false, err
	}
	names, wrote, err := r.writeRoleBindings(ctx, desired, lbls)
	if err != nil {
		return names, wrote, err
	}
	// Remove bindings of roles the offering no longer names.
	var existing rbacv1.RoleBindingList
	if err := r.List(ctx, &existing, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)}); err != nil {
		return names, wrote, err
	}
	for i := range existing.Items {
		rb := &existing.Items[i]
		if contains(names, rb.Name) {
			continue
		}
		if err := deleteWithUID(ctx, r.Client, rb); err != nil {
			return names, wrote, err
		}
		wrote = true
	}
	return names, wrote, nil
}

// desiredRoleBindings are the bindings of the item's roles, each checked
// against the role policy.
func (r *RequestReconciler) desiredRoleBindings(ctx context.Context, agr *v1alpha1.ServiceAgreement, item *v1alpha1.ResourceItem,
	ns string, lbls map[string]string,
) ([]*rbacv1.RoleBinding, error) {
	subjects := rbacSubjects(agr)
	desired := make([]*rbacv1.RoleBinding, 0, len(item.ClusterRoles))
	for _, roleName := range item.ClusterRoles {
		var role rbacv1.ClusterRole
		if err := r.Get(ctx, types.NamespacedName{Name: string(roleName)}, &role); err != nil {
			return nil, fmt.Errorf("ClusterRole %s: %w", roleName, err)
		}
		if err := r.Policy.Check(&role); err != nil {
			return nil, err
		}
		desired = append(desired, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: roleBindingName(string(roleName)), Namespace: ns, Labels: lbls},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: string(roleName)},
			Subjects:   subjects,
		})
	}
	return desired, nil
}

// writeRoleBindings creates or repairs the bindings in parallel (one round
// trip, not one per role). It returns the names of those in place.
func (r *RequestReconciler) writeRoleBindings(ctx context.Context, desired []*rbacv1.RoleBinding, lbls map[string]string) ([]string, bool, error) {
	done := make([]bool, len(desired))
	written := make([]bool, len(desired))
	g, gctx := errgroup.WithContext(ctx)
	for i, want := range desired {
		g.Go(func() error {
			w, err := ensureChild(gctx, r.Client, r.APIReader, want, &rbacv1.RoleBinding{},
				func(have *rbacv1.RoleBinding) bool {
					return equality.Semantic.DeepEqual(have.Subjects, want.Subjects) && subset(lbls, have.Labels)
				},
				func(have *rbacv1.RoleBinding) bool { return have.RoleRef == want.RoleRef },
				func(have *rbacv1.RoleBinding) { have.Subjects = want.Subjects })
			done[i], written[i] = err == nil, w
			return err
		})
	}
	err := g.Wait()
	wrote := false
	names := make([]string, 0, len(desired))
	for i, want := range desired {
		if done[i] {
			names = append(names, want.Name)
		}
		wrote = wrote || written[i]
	}
	return names, wrote, err
}

func (r *RequestReconciler) ensureQuota(ctx context.Context, item *v1alpha1.ResourceItem, ns string, lbls map[string]string) (bool, error) {
	desired := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: quotaName, Namespace: ns, Labels: lbls},
		Spec: corev1.ResourceQuotaSpec{Hard: item.Quota}}
	return ensureOptional(ctx, r, len(item.Quota) > 0, desired, func(o *corev1.ResourceQuota) *corev1.ResourceQuotaSpec { return &o.Spec })
}

func (r *RequestReconciler) ensureLimitRange(ctx context.Context, item *v1alpha1.ResourceItem, ns string, lbls map[string]string) (bool, error) {
	desired := &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: limitRangeName, Namespace: ns, Labels: lbls},
		Spec: corev1.LimitRangeSpec{Limits: item.Limits}}
	return ensureOptional(ctx, r, len(item.Limits) > 0, desired, func(o *corev1.LimitRange) *corev1.LimitRangeSpec { return &o.Spec })
}

func (r *RequestReconciler) ensureNetworkPolicy(ctx context.Context, item *v1alpha1.ResourceItem, ns string, lbls map[string]string) (bool, error) {
	desired := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: networkPolicyName, Namespace: ns, Labels: lbls},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}}},
		},
	}
	return ensureOptional(ctx, r, item.NetworkIsolation != v1alpha1.NetworkIsolationNone, desired,
		func(o *networkingv1.NetworkPolicy) *networkingv1.NetworkPolicySpec { return &o.Spec })
}

// ensureOptional brings an optional child of a grant (quota, limit range,
// network policy) to desired, or removes it when the item no longer asks for
// it. spec points at an object's spec, the part the operator owns.
func ensureOptional[T client.Object, S any](ctx context.Context, r *RequestReconciler, wanted bool, desired T, spec func(T) *S) (bool, error) {
	empty := func() T { return reflect.New(reflect.TypeFor[T]().Elem()).Interface().(T) }
	if !wanted {
		return r.ensureAbsent(ctx, empty(), desired.GetNamespace(), desired.GetName())
	}
	return ensureChild(ctx, r.Client, r.APIReader, desired, empty(),
		func(have T) bool {
			return equality.Semantic.DeepEqual(*spec(have), *spec(desired)) && subset(desired.GetLabels(), have.GetLabels())
		}, nil,
		func(have T) { *spec(have) = *spec(desired) })
}

// ensureAbsent deletes an object the operator created that the item no longer asks for.
func (r *RequestReconciler) ensureAbsent(ctx context.Context, obj client.Object, ns, name string) (bool, error) {
	if err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, obj); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return true, deleteWithUID(ctx, r.Client, obj)
}
