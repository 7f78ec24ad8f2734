package controllers

import (
	"context"
	"maps"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// What each controller watches, and how an event becomes the reconcile of
// the objects it concerns.

// SetupWithManager registers the controller and its watches.
func (r *AgreementReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.ServiceAgreement{}, builder.WithPredicates(notOwnRollup())).
		Named("serviceagreement").
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Options.MaxConcurrentReconciles}).
		Watches(&v1alpha1.ServiceOffering{}, handler.EnqueueRequestsFromMapFunc(r.agreementsForOffering)).
		// A grant claimed or released changes the usage.
		Watches(&coordinationv1.Lease{}, enqueueAfter(r.Options.RollupDelay, r.agreementOfSlot)).
		Watches(&v1alpha1.ConsumptionRequest{}, enqueueAfter(r.Options.RollupDelay, func(_ context.Context, o client.Object) []reconcile.Request {
			cr := o.(*v1alpha1.ConsumptionRequest)
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: cr.Namespace, Name: string(cr.Spec.Agreement)}}}
		})).
		Complete(r)
}

// notOwnRollup lets through every change of an agreement except a write of
// its roll-up alone (phase, conditions, counts, usage, service levels): the
// controller's own status writes would otherwise trigger a second reconcile
// at once, around the batching of roll-ups. Spec, metadata and the ledger
// written by the request controller still count.
func notOwnRollup() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.(*v1alpha1.ServiceAgreement), e.ObjectNew.(*v1alpha1.ServiceAgreement)
			return o.Generation != n.Generation || !o.DeletionTimestamp.Equal(n.DeletionTimestamp) ||
				!equality.Semantic.DeepEqual(o.Finalizers, n.Finalizers) ||
				!equality.Semantic.DeepEqual(o.Labels, n.Labels) || !equality.Semantic.DeepEqual(o.Annotations, n.Annotations) ||
				!equality.Semantic.DeepEqual(o.Status.Allocations, n.Status.Allocations) ||
				!equality.Semantic.DeepEqual(o.Status.ServiceLevelHistory, n.Status.ServiceLevelHistory) ||
				!equality.Semantic.DeepEqual(o.Status.Consumption, n.Status.Consumption)
		},
	}
}

// agreementOfSlot maps a grant slot (claims.go) to its agreement. Only the
// operator's own slots count: a tenant may write labelled Leases in its namespace.
func (r *AgreementReconciler) agreementOfSlot(_ context.Context, o client.Object) []reconcile.Request {
	ns, name, ok := strings.Cut(o.GetAnnotations()[v1alpha1.AnnotationAgreement], "/")
	if o.GetLabels()[v1alpha1.LabelClaim] == "" || !ok || o.GetNamespace() != grantKeyNamespace(r.Options.OperatorNamespace) {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}}
}

func (r *AgreementReconciler) agreementsForOffering(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1alpha1.ServiceAgreementList
	if !r.listIndexed(ctx, &list, indexAgreementOffering, o.GetName()) {
		return nil
	}
	return requestsOf(list.Items)
}

// SetupWithManager registers the controller and its watches.
func (r *RequestReconciler) SetupWithManager(mgr ctrl.Manager) error {
	byLabels := handler.EnqueueRequestsFromMapFunc(requestForLabels)
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.ConsumptionRequest{}).
		Named("consumptionrequest").
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Options.MaxConcurrentReconciles}).
		Watches(&v1alpha1.ServiceAgreement{}, handler.EnqueueRequestsFromMapFunc(r.requestsForAgreement),
			builder.WithPredicates(agreementStateChanged())).
		Watches(&v1alpha1.ServiceOffering{}, handler.EnqueueRequestsFromMapFunc(r.requestsForOffering),
			builder.WithPredicates(predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, latestRevisionChanged()))).
		Watches(&corev1.Namespace{}, byLabels).
		Watches(&rbacv1.RoleBinding{}, byLabels).
		Watches(&corev1.ResourceQuota{}, byLabels, builder.WithPredicates(quotaChanged())).
		Watches(&corev1.LimitRange{}, byLabels).
		Watches(&networkingv1.NetworkPolicy{}, byLabels).
		Watches(&corev1.Secret{}, byLabels).
		Watches(&corev1.ConfigMap{}, byLabels).
		Watches(&batchv1.Job{}, byLabels).
		// The grants' objects in member clusters, and requests to look at
		// again when a member comes or goes (fleet.go).
		WatchesRawSource(source.Channel(r.Options.fleet.events, byLabels)).
		Complete(r)
}

// quotaChanged drops the updates of a ResourceQuota that change only its
// status (kube-controller-manager recounting usage; the cache does not even
// hold the status): they cannot make a grant drift.
func quotaChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*corev1.ResourceQuota)
			n, ok2 := e.ObjectNew.(*corev1.ResourceQuota)
			if !ok1 || !ok2 {
				return true
			}
			return !equality.Semantic.DeepEqual(o.Spec, n.Spec) || !maps.Equal(o.Labels, n.Labels) ||
				!maps.Equal(o.Annotations, n.Annotations) || !o.DeletionTimestamp.Equal(n.DeletionTimestamp) ||
				!equality.Semantic.DeepEqual(o.OwnerReferences, n.OwnerReferences)
		},
	}
}

// latestRevisionChanged passes the offering updates that record a new
// latest revision, so that requests following Latest record it.
func latestRevisionChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.(*v1alpha1.ServiceOffering), e.ObjectNew.(*v1alpha1.ServiceOffering)
			return o.Status.LatestRevision != n.Status.LatestRevision
		},
	}
}

// agreementStateChanged passes agreement events that can change what its
// requests hold: spec changes, deletion, phase changes. Roll-up-only status
// updates are filtered out, so they do not fan out to every request.
func agreementStateChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.(*v1alpha1.ServiceAgreement), e.ObjectNew.(*v1alpha1.ServiceAgreement)
			return o.Generation != n.Generation || o.Status.Phase != n.Status.Phase ||
				!o.DeletionTimestamp.Equal(n.DeletionTimestamp)
		},
	}
}

func (r *RequestReconciler) requestsForAgreement(ctx context.Context, o client.Object) []reconcile.Request {
	requests, err := requestsUnder(ctx, r.Client, o.(*v1alpha1.ServiceAgreement))
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing requests for agreement", "agreement", client.ObjectKeyFromObject(o))
		return nil
	}
	return requestsOf(requests)
}

func (r *RequestReconciler) requestsForOffering(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1alpha1.ConsumptionRequestList
	if !r.listIndexed(ctx, &list, indexRequestOffering, o.GetName(), client.UnsafeDisableDeepCopy) {
		return nil
	}
	return requestsOf(list.Items)
}

// SetupWithManager registers the controller and its watches.
func (r *OfferingReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.ServiceOffering{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("serviceoffering").
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Options.MaxConcurrentReconciles}).
		Owns(&v1alpha1.ServiceOfferingRevision{}).
		Watches(&rbacv1.ClusterRole{}, handler.EnqueueRequestsFromMapFunc(r.offeringsForRole)).
		Watches(&v1alpha1.ServiceAgreement{}, enqueueAfter(r.Options.RollupDelay, func(_ context.Context, o client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: string(o.(*v1alpha1.ServiceAgreement).Spec.Offering)}}}
		})).
		Watches(&v1alpha1.ConsumptionRequest{}, enqueueAfter(r.Options.RollupDelay, func(_ context.Context, o client.Object) []reconcile.Request {
			if off := o.(*v1alpha1.ConsumptionRequest).Status.Offering; off != "" {
				return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: off}}}
			}
			return nil
		})).
		Complete(r)
}

func (r *OfferingReconciler) offeringsForRole(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1alpha1.ServiceOfferingList
	if !r.listIndexed(ctx, &list, indexOfferingRole, o.GetName()) {
		return nil
	}
	return requestsOf(list.Items)
}

// enqueueAfter maps events to requests like handler.EnqueueRequestsFromMapFunc,
// but adds them after delay. The work queue merges the same key added several
// times within the delay, so a burst of events becomes one reconcile: this is
// how roll-ups are batched.
func enqueueAfter(delay time.Duration, fn handler.MapFunc) handler.EventHandler {
	add := func(ctx context.Context, obj client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		for _, r := range fn(ctx, obj) {
			q.AddAfter(r, delay)
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.ObjectNew, q)
			if e.ObjectOld != nil {
				add(ctx, e.ObjectOld, q)
			}
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
	}
}

// requestForLabels maps an object the operator created to the
// ConsumptionRequest it was created for, from its labels.
func requestForLabels(_ context.Context, obj client.Object) []reconcile.Request {
	l := obj.GetLabels()
	ns, name := l[v1alpha1.LabelRequestNamespace], l[v1alpha1.LabelRequestName]
	if ns == "" || name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}}
}

// listIndexed lists into list the objects whose index holds value, for a
// watch event; it logs and reports false when the list fails.
func (r *reconciler) listIndexed(ctx context.Context, list client.ObjectList, index, value string, opts ...client.ListOption) bool {
	if err := r.List(ctx, list, append(opts, client.MatchingFields{index: value})...); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing the objects a watch event concerns", "index", index, "value", value)
		return false
	}
	return true
}

// requestsOf maps objects to the reconcile requests of their keys.
func requestsOf[T any, PT interface {
	*T
	client.Object
}](items []T) []reconcile.Request {
	out := make([]reconcile.Request, 0, len(items))
	for i := range items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(PT(&items[i]))})
	}
	return out
}
