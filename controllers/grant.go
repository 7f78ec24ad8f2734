package controllers

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// waitRetry is how soon a request that waits on something not watched (a
// namespace still terminating, an authorizer catching up) is looked at again.
const waitRetry = time.Second

// childLabels are the labels of every object created for a request: they
// scope the operator's caches and map events back to the request.
func childLabels(cr *v1alpha1.ConsumptionRequest, offering string, item v1alpha1.ItemName) map[string]string {
	return map[string]string{
		v1alpha1.LabelManagedBy:        v1alpha1.ManagedByValue,
		v1alpha1.LabelRequestNamespace: cr.Namespace,
		v1alpha1.LabelRequestName:      cr.Name,
		v1alpha1.LabelRequestUID:       string(cr.UID),
		v1alpha1.LabelOffering:         offering,
		v1alpha1.LabelItem:             string(item),
	}
}

// grant creates or repairs everything an access item gives, then verifies that
// the consumer's subjects really can use it.
func (r *RequestReconciler) grant(ctx context.Context, cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement, item *v1alpha1.ResourceItem, s *requestState) (ctrl.Result, error) {
	nsName := grantNamespaceName(cr, item)
	lbls := childLabels(cr, string(agr.Spec.Offering), item.Name)
	if isReservedNamespace(nsName) {
		r.fail(cr, s, v1alpha1.ReasonNamespaceConflict, fmt.Sprintf("namespace %s is reserved for the platform and is never granted", nsName))
		return ctrl.Result{}, nil
	}
	if s.status.Phase != v1alpha1.RequestFulfilled {
		s.status.Phase = v1alpha1.RequestProvisioning
	}

	wrote, waitMsg, conflict, err := r.ensureNamespace(ctx, cr, agr, item, nsName, lbls)
	if err != nil {
		s.set(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, v1alpha1.ReasonGrantFailed, err.Error())
		s.set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonGrantFailed, err.Error())
		return ctrl.Result{}, err
	}
	if conflict != "" {
		r.fail(cr, s, v1alpha1.ReasonNamespaceConflict, conflict)
		return ctrl.Result{}, nil
	}
	if waitMsg != "" {
		s.notReady(v1alpha1.RequestProvisioning, v1alpha1.ReasonNamespaceTerminating, waitMsg)
		s.set(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, v1alpha1.ReasonNamespaceTerminating, waitMsg)
		return ctrl.Result{RequeueAfter: waitRetry}, nil
	}

	// The namespace's children do not depend on each other: create or repair
	// them in parallel, so that a grant costs one round trip after the namespace.
	grant := &v1alpha1.AccessGrant{Namespace: nsName}
	var mu sync.Mutex
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
	if err := g.Wait(); err != nil {
		s.status.Grant = grant
		s.set(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, v1alpha1.ReasonGrantFailed, err.Error())
		s.set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonGrantFailed, err.Error())
		return ctrl.Result{}, err
	}
	s.status.Grant = grant
	if wrote && meta.IsStatusConditionTrue(cr.Status.Conditions, v1alpha1.ConditionFulfilled) {
		r.Recorder.Eventf(cr, nil, corev1.EventTypeNormal, "Repaired", "Grant", "repaired drift in the grant of namespace %s", nsName)
	}
	s.set(v1alpha1.ConditionFulfilled, metav1.ConditionTrue, v1alpha1.ReasonGranted,
		fmt.Sprintf("namespace %s granted with %d RoleBinding(s)", nsName, len(grant.RoleBindings)))

	return r.verifyAndReport(ctx, cr, agr, item, nsName, wrote, s)
}

func nameIf(cond bool, name string) string {
	if cond {
		return name
	}
	return ""
}

// fail marks a request Failed for good: it gave nothing, so its entitlement is released.
func (r *RequestReconciler) fail(cr *v1alpha1.ConsumptionRequest, s *requestState, reason, msg string) {
	s.notReady(v1alpha1.RequestFailed, reason, msg)
	s.set(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, reason, msg)
	r.Recorder.Eventf(cr, nil, corev1.EventTypeWarning, "Failed", "Grant", "%s", msg)
}

// ensureNamespace creates the granted namespace, or repairs its labels and
// annotations. A namespace that exists and was not created by the operator for
// this very request is never adopted: conflict says why. waitMsg is set when
// the namespace is still terminating from an earlier grant.
func (r *RequestReconciler) ensureNamespace(ctx context.Context, cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement, item *v1alpha1.ResourceItem,
	name string, lbls map[string]string,
) (wrote bool, waitMsg, conflict string, err error) {
	desiredLabels := map[string]string{}
	maps.Copy(desiredLabels, item.Namespace.Labels)
	maps.Copy(desiredLabels, lbls)
	desiredAnn := map[string]string{}
	maps.Copy(desiredAnn, item.Namespace.Annotations)
	desiredAnn[v1alpha1.AnnotationAgreement] = agr.Namespace + "/" + agr.Name

	var ns corev1.Namespace
	err = r.Get(ctx, types.NamespacedName{Name: name}, &ns)
	if apierrors.IsNotFound(err) {
		ann := maps.Clone(desiredAnn)
		ann[v1alpha1.AnnotationGrantMarker] = grantMarker(r.Options.grantKey, cr.UID, name)
		ns = corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: desiredLabels, Annotations: ann}}
		err = r.Create(ctx, &ns)
		if err == nil {
			return true, "", "", nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return false, "", "", err
		}
		// It exists but the cache does not show it as ours: look at the real thing.
		if err = r.APIReader.Get(ctx, types.NamespacedName{Name: name}, &ns); err != nil {
			return false, "", "", err
		}
	} else if err != nil {
		return false, "", "", err
	}
	if ns.Labels[v1alpha1.LabelRequestUID] != string(cr.UID) || ns.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue {
		if !ns.DeletionTimestamp.IsZero() && ns.Labels[v1alpha1.LabelManagedBy] == v1alpha1.ManagedByValue {
			return false, fmt.Sprintf("namespace %s from an earlier grant is still being deleted", name), "", nil
		}
		return false, "", fmt.Sprintf("namespace %s already exists and was not created by offering-operator for this request; "+
			"it is never adopted: delete it or request another name", name), nil
	}
	if !ns.DeletionTimestamp.IsZero() {
		return false, fmt.Sprintf("namespace %s is being deleted; it is created again once it is gone", name), "", nil
	}
	// Labels can be written by anyone who may create namespaces: one the
	// request has not recorded yet is taken only with the operator's marker.
	if recorded := cr.Status.Grant != nil && cr.Status.Grant.Namespace == name; !recorded && !markedFor(r.Options.grantKey, &ns, cr.UID) {
		return false, "", fmt.Sprintf("namespace %s has offering-operator's labels for this request but was not created by offering-operator "+
			"(no valid %s annotation); it is never adopted: delete it or request another name", name, v1alpha1.AnnotationGrantMarker), nil
	}
	if subset(desiredLabels, ns.Labels) && subset(desiredAnn, ns.Annotations) {
		return false, "", "", nil
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
	return true, "", "", r.Patch(ctx, &ns, patch)
}

// subset reports whether every key of want is in have with the same value.
func subset(want, have map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
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
	subjects := rbacSubjects(agr)
	// Every role is checked before any binding is written, so that a refused
	// role never leaves the others granted; then the bindings are written in
	// parallel (one round trip, not one per role).
	desired := make([]*rbacv1.RoleBinding, 0, len(item.ClusterRoles))
	for _, roleName := range item.ClusterRoles {
		var role rbacv1.ClusterRole
		if err := r.Get(ctx, types.NamespacedName{Name: string(roleName)}, &role); err != nil {
			return nil, false, fmt.Errorf("ClusterRole %s: %w", roleName, err)
		}
		if err := r.Policy.Check(&role); err != nil {
			return nil, false, err
		}
		desired = append(desired, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: roleBindingName(string(roleName)), Namespace: ns, Labels: lbls},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: string(roleName)},
			Subjects:   subjects,
		})
	}
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

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (r *RequestReconciler) ensureQuota(ctx context.Context, item *v1alpha1.ResourceItem, ns string, lbls map[string]string) (bool, error) {
	desired := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: quotaName, Namespace: ns, Labels: lbls},
		Spec:       corev1.ResourceQuotaSpec{Hard: item.Quota},
	}
	return ensureOptional(ctx, r, len(item.Quota) > 0, desired, func() *corev1.ResourceQuota { return &corev1.ResourceQuota{} },
		func(o *corev1.ResourceQuota) any { return o.Spec }, func(dst, src *corev1.ResourceQuota) { dst.Spec = src.Spec })
}

func (r *RequestReconciler) ensureLimitRange(ctx context.Context, item *v1alpha1.ResourceItem, ns string, lbls map[string]string) (bool, error) {
	desired := &corev1.LimitRange{
		ObjectMeta: metav1.ObjectMeta{Name: limitRangeName, Namespace: ns, Labels: lbls},
		Spec:       corev1.LimitRangeSpec{Limits: item.Limits},
	}
	return ensureOptional(ctx, r, len(item.Limits) > 0, desired, func() *corev1.LimitRange { return &corev1.LimitRange{} },
		func(o *corev1.LimitRange) any { return o.Spec }, func(dst, src *corev1.LimitRange) { dst.Spec = src.Spec })
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
		func() *networkingv1.NetworkPolicy { return &networkingv1.NetworkPolicy{} },
		func(o *networkingv1.NetworkPolicy) any { return o.Spec }, func(dst, src *networkingv1.NetworkPolicy) { dst.Spec = src.Spec })
}

// ensureOptional brings an optional child of a grant (quota, limit range,
// network policy) to desired, or removes it when the item no longer asks for it.
func ensureOptional[T client.Object](ctx context.Context, r *RequestReconciler, wanted bool, desired T, empty func() T,
	spec func(T) any, copySpec func(dst, src T),
) (bool, error) {
	if !wanted {
		return r.ensureAbsent(ctx, empty(), desired.GetNamespace(), desired.GetName())
	}
	return ensureChild(ctx, r.Client, r.APIReader, desired, empty(),
		func(have T) bool {
			return equality.Semantic.DeepEqual(spec(have), spec(desired)) && subset(desired.GetLabels(), have.GetLabels())
		}, nil,
		func(have T) { copySpec(have, desired) })
}

// ensureAbsent deletes an object the operator created that the item no longer asks for.
func (r *RequestReconciler) ensureAbsent(ctx context.Context, obj client.Object, ns, name string) (bool, error) {
	if err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, obj); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return true, deleteWithUID(ctx, r.Client, obj)
}

// deleteWithUID deletes obj only if it is still the object that was read, so
// that a successor created under the same name is never deleted by mistake.
func deleteWithUID(ctx context.Context, c client.Client, obj client.Object) error {
	uid := obj.GetUID()
	err := c.Delete(ctx, obj, client.Preconditions{UID: &uid})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// ensureChild creates desired if it does not exist, or brings an existing
// object back to it. It writes nothing when the object already matches.
// inSync reports whether an existing object matches; compatible (optional)
// reports whether it can be updated in place (otherwise it is deleted and
// created again, for immutable fields); overwrite copies the desired fields
// onto it. The cache only holds objects carrying the operator's labels, so
// an object found by create but not by the cache is read live and taken
// over: it sits in a namespace the operator owns.
func ensureChild[T client.Object](ctx context.Context, c client.Client, live client.Reader, desired T, have T,
	inSync func(T) bool, compatible func(T) bool, overwrite func(T),
) (bool, error) {
	key := client.ObjectKeyFromObject(desired)
	err := c.Get(ctx, key, have)
	if apierrors.IsNotFound(err) {
		err = c.Create(ctx, desired)
		if !apierrors.IsAlreadyExists(err) {
			return err == nil, err
		}
		err = live.Get(ctx, key, have)
	}
	if err != nil {
		return false, err
	}
	if inSync(have) {
		return false, nil
	}
	if compatible != nil && !compatible(have) {
		if err := deleteWithUID(ctx, c, have); err != nil {
			return false, err
		}
		desired.SetResourceVersion("")
		return true, c.Create(ctx, desired)
	}
	overwrite(have)
	lbls := have.GetLabels()
	if lbls == nil {
		lbls = map[string]string{}
	}
	maps.Copy(lbls, desired.GetLabels())
	have.SetLabels(lbls)
	return true, c.Update(ctx, have)
}

// verifyAndReport asks the API server whether every subject of the agreement
// can use the granted namespace, and sets AccessVerified and Ready. It asks
// only when something was written or the grant is not verified yet.
func (r *RequestReconciler) verifyAndReport(ctx context.Context, cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement, item *v1alpha1.ResourceItem,
	ns string, wrote bool, s *requestState,
) (ctrl.Result, error) {
	prev := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionAccessVerified)
	if !wrote && prev != nil && prev.Status == metav1.ConditionTrue && prev.ObservedGeneration == cr.Generation && holdsAccess(cr) && len(cr.Status.Grant.RoleBindings) > 0 {
		r.markFulfilled(cr, s, ns)
		return ctrl.Result{}, nil
	}
	var bindings []string
	if s.status.Grant != nil {
		bindings = s.status.Grant.RoleBindings
	}
	denied, err := r.reviewAccess(ctx, agr, item, ns, wrote, bindings)
	if err != nil {
		return ctrl.Result{}, err
	}
	if denied == "" {
		s.set(v1alpha1.ConditionAccessVerified, metav1.ConditionTrue, v1alpha1.ReasonVerified,
			fmt.Sprintf("SubjectAccessReview confirms all %d subject(s) can use namespace %s", len(agr.Spec.Consumer.Subjects), ns))
		r.markFulfilled(cr, s, ns)
		return ctrl.Result{}, nil
	}
	// The authorizer may not have seen fresh RoleBindings yet: retry for a while before reporting.
	since := s.now.Time
	if prev != nil && prev.Status != metav1.ConditionTrue {
		since = prev.LastTransitionTime.Time
	}
	if s.now.Sub(since) < r.Options.VerifyTimeout {
		s.set(v1alpha1.ConditionAccessVerified, metav1.ConditionUnknown, v1alpha1.ReasonReconciling, "waiting for the authorizer: "+denied)
		if prev != nil && prev.Status == metav1.ConditionUnknown {
			// keep the time the wait started
			s.status.Conditions = replaceTransitionTime(s.status.Conditions, v1alpha1.ConditionAccessVerified, prev.LastTransitionTime)
		}
		s.notReady(v1alpha1.RequestProvisioning, v1alpha1.ReasonProvisioning, "verifying access: "+denied)
		return ctrl.Result{RequeueAfter: authorizerRetry(s.now.Sub(since))}, nil
	}
	s.set(v1alpha1.ConditionAccessVerified, metav1.ConditionFalse, v1alpha1.ReasonAccessDenied, denied)
	s.notReady(v1alpha1.RequestProvisioning, v1alpha1.ReasonAccessDenied, denied)
	r.Recorder.Eventf(cr, nil, corev1.EventTypeWarning, "AccessDenied", "Verify", "%s", denied)
	return ctrl.Result{RequeueAfter: r.Options.VerifyTimeout}, nil
}

// reviewAccess asks whether the agreement's subjects can use the granted
// namespace. For bindings written in this very reconcile (fresh) it first waits
// for the cache to hold them, and asks again after each of freshGrantPauses
// before taking a denial for an answer: recording a wait would cost a status
// write and another reconcile per grant.
func (r *RequestReconciler) reviewAccess(ctx context.Context, agr *v1alpha1.ServiceAgreement, item *v1alpha1.ResourceItem,
	ns string, fresh bool, bindings []string,
) (string, error) {
	if !fresh {
		return r.accessReview(ctx, agr, item, ns)
	}
	r.awaitCached(ctx, ns, bindings)
	denied, err := r.accessReview(ctx, agr, item, ns)
	for _, pause := range freshGrantPauses {
		if err != nil || denied == "" {
			break
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(pause):
		}
		denied, err = r.accessReview(ctx, agr, item, ns)
	}
	return denied, err
}

// cacheWaitLimit bounds awaitCached, and cachePoll is how often it looks.
const (
	cacheWaitLimit = 250 * time.Millisecond
	cachePoll      = 5 * time.Millisecond
)

// awaitCached waits, for at most cacheWaitLimit, until the manager's cache
// holds the named RoleBindings of a grant that were just written. The API
// server's authorizer learns of new bindings through a watch as well: asked
// before the watch has delivered them, it mostly denies, and each denial costs
// another review. In the 1,000-request burst, 2-7 % of grants were asked again
// before this wait, 1-3 % after.
func (r *RequestReconciler) awaitCached(ctx context.Context, ns string, names []string) {
	deadline := time.Now().Add(cacheWaitLimit)
	for _, name := range names {
		for {
			err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &rbacv1.RoleBinding{})
			if !apierrors.IsNotFound(err) || time.Now().After(deadline) {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(cachePoll):
			}
		}
	}
}

// freshGrantPauses are the pauses between the access reviews of a grant
// whose bindings were just written, before a denial is recorded (350 ms in
// all, on one worker).
var freshGrantPauses = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}

// authorizerRetry is how soon access is checked again after the authorizer
// denied it, waited since the first denial: the API server's authorizer
// usually sees fresh RoleBindings within a few hundred milliseconds, so the
// first retries come quickly and then back off to waitRetry.
func authorizerRetry(waited time.Duration) time.Duration {
	return min(waitRetry, max(100*time.Millisecond, waited/2))
}

func replaceTransitionTime(conds []metav1.Condition, typ string, t metav1.Time) []metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			conds[i].LastTransitionTime = t
		}
	}
	return conds
}

func (r *RequestReconciler) markFulfilled(cr *v1alpha1.ConsumptionRequest, s *requestState, ns string) {
	s.status.Phase = v1alpha1.RequestFulfilled
	s.set(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonGranted,
		fmt.Sprintf("access to namespace %s is granted and verified", ns))
	if s.status.FulfilledAt == nil {
		s.status.FulfilledAt = &s.now
		d := s.now.Sub(cr.CreationTimestamp.Time).Round(time.Millisecond)
		s.status.FulfilmentDuration = &metav1.Duration{Duration: d}
		r.Recorder.Eventf(cr, nil, corev1.EventTypeNormal, "Granted", "Grant", "access to namespace %s granted and verified in %s", ns, d.Round(time.Millisecond))
	}
}

// accessReview returns "" when every subject of the agreement can act in
// ns, or a message naming the first subject and permission that fails. It
// asks one SubjectAccessReview per subject, in parallel, for a representative
// permission of the first bound role that has a resource rule (its first verb
// and resource): that proves the bindings reach the subject and that no other
// authorizer denies it, at one call per subject.
func (r *RequestReconciler) accessReview(ctx context.Context, agr *v1alpha1.ServiceAgreement, item *v1alpha1.ResourceItem, ns string) (string, error) {
	type check struct {
		attrs *authorizationv1.ResourceAttributes
		role  v1alpha1.ClusterRoleName
		subj  v1alpha1.Subject
	}
	var checks []check
	for _, roleName := range item.ClusterRoles {
		var role rbacv1.ClusterRole
		if err := r.Get(ctx, types.NamespacedName{Name: string(roleName)}, &role); err != nil {
			return "", err
		}
		if attrs := representativeAttributes(&role, ns); attrs != nil {
			for _, subj := range agr.Spec.Consumer.Subjects {
				checks = append(checks, check{attrs: attrs, role: roleName, subj: subj})
			}
			break // one review per subject: the first role with a resource rule stands for the grant
		}
	}
	denials := make([]string, len(checks))
	g, gctx := errgroup.WithContext(ctx)
	for i, c := range checks {
		g.Go(func() error {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{ResourceAttributes: c.attrs}}
			switch c.subj.Kind {
			case v1alpha1.SubjectServiceAccount:
				sar.Spec.User = "system:serviceaccount:" + string(c.subj.Namespace) + ":" + c.subj.Name
				sar.Spec.Groups = []string{"system:serviceaccounts", "system:serviceaccounts:" + string(c.subj.Namespace), "system:authenticated"}
			case v1alpha1.SubjectGroup:
				sar.Spec.Groups = []string{c.subj.Name}
			default:
				sar.Spec.User = c.subj.Name
			}
			if err := r.Create(gctx, sar); err != nil {
				return err
			}
			if !sar.Status.Allowed {
				denials[i] = fmt.Sprintf("%s %s cannot %s %s in namespace %s (ClusterRole %s): %s",
					c.subj.Kind, c.subj.Name, c.attrs.Verb, c.attrs.Resource, ns, c.role, sar.Status.Reason)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	for _, d := range denials {
		if d != "" {
			return d, nil
		}
	}
	return "", nil
}

func representativeAttributes(role *rbacv1.ClusterRole, ns string) *authorizationv1.ResourceAttributes {
	for _, rule := range role.Rules {
		if len(rule.Verbs) == 0 || len(rule.Resources) == 0 || len(rule.ResourceNames) > 0 {
			continue
		}
		a := &authorizationv1.ResourceAttributes{Namespace: ns, Verb: rule.Verbs[0], Resource: rule.Resources[0]}
		if len(rule.APIGroups) > 0 && rule.APIGroups[0] != "*" {
			a.Group = rule.APIGroups[0]
		}
		if a.Verb == "*" {
			a.Verb = "get"
		}
		if a.Resource == "*" {
			a.Resource = "pods"
		}
		return a
	}
	return nil
}

// revokeAndReport revokes a request's access because its agreement is not in
// force, and reports it. final revocations (agreement expired or deleted)
// remove the namespace per the item's policy; temporary ones (suspension)
// remove only the RoleBindings, so that access can be restored as it was.
func (r *RequestReconciler) revokeAndReport(ctx context.Context, cr *v1alpha1.ConsumptionRequest, _ *v1alpha1.ServiceAgreement, off *v1alpha1.ServiceOffering,
	s *requestState, final bool, why string,
) (ctrl.Result, error) {
	policy := v1alpha1.RevocationPolicyDelete
	if off != nil && cr.Spec.Resource != nil {
		if item := findResourceItem(off, cr.Spec.Resource.Name); item != nil && item.RevocationPolicy != "" {
			policy = item.RevocationPolicy
		}
	}
	hadAccess := holdsAccess(cr)
	if err := r.revoke(ctx, cr, final, policy); err != nil {
		return ctrl.Result{}, err
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
	s.notReady(v1alpha1.RequestRevoked, v1alpha1.ReasonRevoked, why+"; access is revoked")
	s.set(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, v1alpha1.ReasonRevoked, why)
	if cr.Spec.Resource != nil {
		s.set(v1alpha1.ConditionAccessVerified, metav1.ConditionFalse, v1alpha1.ReasonRevoked, "access was revoked")
	}
	if cr.Spec.Goods != nil {
		reportGoodsRevoked(s, why)
	}
	if hadAccess {
		r.Recorder.Eventf(cr, nil, corev1.EventTypeNormal, "Revoked", "Revoke", "%s; access is revoked", why)
	}
	return ctrl.Result{}, nil
}

// revoke removes what was granted for a request: its RoleBindings first, so
// that access ends at once, then (when final) the namespace according to the
// policy: Delete deletes it, Retain releases it to the provider.
func (r *RequestReconciler) revoke(ctx context.Context, cr *v1alpha1.ConsumptionRequest, final bool, policy v1alpha1.RevocationPolicy) error {
	// Goods not accepted yet are returned, whether the end is final or not; accepted goods are never touched.
	if _, err := r.removeCopies(ctx, cr, nil); err != nil {
		return err
	}
	if err := r.revokeRoleBindings(ctx, cr); err != nil {
		return err
	}
	if !final {
		return nil
	}
	owned := client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)}
	var nss corev1.NamespaceList
	if err := r.List(ctx, &nss, owned); err != nil {
		return err
	}
	for i := range nss.Items {
		ns := &nss.Items[i]
		if !ns.DeletionTimestamp.IsZero() {
			continue
		}
		if policy == v1alpha1.RevocationPolicyRetain {
			patch := client.MergeFrom(ns.DeepCopy())
			delete(ns.Labels, v1alpha1.LabelRequestUID)
			if ns.Annotations == nil {
				ns.Annotations = map[string]string{}
			}
			ns.Annotations["service.offering.dev/retained-from"] = cr.Namespace + "/" + cr.Name
			if err := r.Patch(ctx, ns, patch); client.IgnoreNotFound(err) != nil {
				return err
			}
			continue
		}
		if err := deleteWithUID(ctx, r.Client, ns); err != nil {
			return err
		}
		r.Recorder.Eventf(cr, nil, corev1.EventTypeNormal, "NamespaceDeleted", "Revoke", "deleted namespace %s", ns.Name)
	}
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
