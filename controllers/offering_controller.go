package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// sourceRecheckInterval is how often an offering whose provider namespace or
// goods sources are missing is checked again. Secrets and ConfigMaps are not
// watched, so that the operator does not cache every Secret of the cluster.
const sourceRecheckInterval = 30 * time.Second

// OfferingReconciler validates ServiceOfferings and rolls up their relationships.
type OfferingReconciler struct {
	client.Client
	// APIReader reads objects the cache does not hold (provider namespaces, goods sources).
	APIReader client.Reader
	Policy    *RolePolicy
	Recorder  recorder.EventRecorder
	Options   Options
}

// +kubebuilder:rbac:groups=service.offering.dev,resources=serviceofferings,verbs=get;list;watch
// +kubebuilder:rbac:groups=service.offering.dev,resources=serviceofferings/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets;configmaps,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile validates an offering's references and rolls up its agreements and requests.
func (r *OfferingReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var off v1alpha1.ServiceOffering
	if err := r.Get(ctx, req.NamespacedName, &off); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	now := metav1.NewTime(r.Options.Clock.Now())
	status := off.Status.DeepCopy()

	reason, msg, recheck, err := r.validate(ctx, &off)
	if err != nil {
		return ctrl.Result{}, err
	}
	setCondition(&status.Conditions, v1alpha1.ConditionReady, boolStatus(reason == v1alpha1.ReasonValid), reason, msg, off.Generation, now)
	if err := r.rollup(ctx, &off, status); err != nil {
		return ctrl.Result{}, err
	}
	status.ObservedGeneration = off.Generation
	// Every reason an offering is not Ready needs a person: a missing or forbidden role, namespace or source.
	setStalled(&status.Conditions, reason != v1alpha1.ReasonValid, off.Generation, now)
	status.Conditions = keepConditions(status.Conditions, v1alpha1.ConditionReady, v1alpha1.ConditionStalled)

	if !equality.Semantic.DeepEqual(&off.Status, status) {
		if err := applyStatus(ctx, r.Client, &off, status); err != nil {
			return endOnConflict(ctrl.Result{}, err)
		}
	}
	if recheck {
		return ctrl.Result{RequeueAfter: sourceRecheckInterval}, nil
	}
	return ctrl.Result{}, nil
}

// validate checks what the schema cannot: roles exist and are grantable,
// the provider namespace exists and a cluster admin marked it
// (providerNamespace), every action's Job template reads parameters only from
// the environment and runs as an allowed ServiceAccount (actionRefusal), and
// the goods sources exist. The
// provider namespace is checked only when the offering has goods or actions,
// the only items that use it. It returns the Ready reason
// and message, and whether to look again later (for objects not watched).
func (r *OfferingReconciler) validate(ctx context.Context, off *v1alpha1.ServiceOffering) (reason, msg string, recheck bool, err error) {
	for _, item := range off.Spec.Resources {
		for _, name := range item.ClusterRoles {
			var role rbacv1.ClusterRole
			if err := r.Get(ctx, types.NamespacedName{Name: string(name)}, &role); err != nil {
				if apierrors.IsNotFound(err) {
					return v1alpha1.ReasonClusterRoleNotFound,
						fmt.Sprintf("resources[%s]: ClusterRole %s does not exist", item.Name, name), false, nil
				}
				return "", "", false, err
			}
			if err := r.Policy.Check(&role); err != nil {
				return v1alpha1.ReasonClusterRoleForbidden, fmt.Sprintf("resources[%s]: %v", item.Name, err), false, nil
			}
		}
	}
	if len(off.Spec.Goods) == 0 && len(off.Spec.Actions) == 0 {
		return v1alpha1.ReasonValid, "all referenced ClusterRoles exist and are grantable", false, nil
	}
	ns, reason, msg, err := r.Options.providerNamespace(ctx, r.APIReader, string(off.Spec.ProviderNamespace))
	if err != nil || reason != "" {
		// Namespaces are not watched: a missing or unmarked one is looked at again.
		return reason, msg, true, err
	}
	for i := range off.Spec.Actions {
		if reason, msg := r.Options.actionRefusal(ns, &off.Spec.Actions[i]); reason != "" {
			return reason, fmt.Sprintf("actions[%s]: %s", off.Spec.Actions[i].Name, msg), true, nil
		}
	}
	for _, item := range off.Spec.Goods {
		for _, src := range item.Sources {
			obj := &metav1.PartialObjectMetadata{}
			obj.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(string(src.Kind)))
			key := types.NamespacedName{Namespace: string(off.Spec.ProviderNamespace), Name: string(src.Name)}
			if err := r.APIReader.Get(ctx, key, obj); err != nil {
				if apierrors.IsNotFound(err) {
					return v1alpha1.ReasonGoodsSourceNotFound,
						fmt.Sprintf("goods[%s]: %s %s/%s does not exist", item.Name, src.Kind, key.Namespace, key.Name), true, nil
				}
				return "", "", false, err
			}
		}
	}
	return v1alpha1.ReasonValid, "all referenced ClusterRoles, the provider namespace and the goods sources exist and are allowed", false, nil
}

func (r *OfferingReconciler) rollup(ctx context.Context, off *v1alpha1.ServiceOffering, status *v1alpha1.ServiceOfferingStatus) error {
	// Read only: the items share their contents with the cache (no copy).
	var agreements v1alpha1.ServiceAgreementList
	if err := r.List(ctx, &agreements, client.MatchingFields{indexAgreementOffering: off.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	var requests v1alpha1.ConsumptionRequestList
	if err := r.List(ctx, &requests, client.MatchingFields{indexRequestOffering: off.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	status.Agreements = int32(len(agreements.Items))
	status.ServiceLevels = rollupOfferingServiceLevels(agreements.Items)
	status.ActiveConsumers = 0
	for i := range agreements.Items {
		if agreements.Items[i].Status.Phase == v1alpha1.AgreementActive {
			status.ActiveConsumers++
		}
	}
	status.OpenRequests = 0
	for i := range requests.Items {
		if isOpen(requests.Items[i].Status.Phase) {
			status.OpenRequests++
		}
	}
	return nil
}

// isOpen reports whether a request in phase p still waits for something.
func isOpen(p v1alpha1.RequestPhase) bool {
	switch p {
	case "", v1alpha1.RequestPending, v1alpha1.RequestAwaitingApproval, v1alpha1.RequestProvisioning, v1alpha1.RequestDelivered:
		return true
	}
	return false
}

// SetupWithManager registers the controller and its watches.
func (r *OfferingReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.ServiceOffering{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("serviceoffering").
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Options.MaxConcurrentReconciles}).
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
	if err := r.List(ctx, &list, client.MatchingFields{indexOfferingRole: o.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing offerings for ClusterRole", "clusterRole", o.GetName())
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: list.Items[i].Name}})
	}
	return out
}
