package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// sourceRecheckInterval is how often an offering whose provider namespace or
// goods sources are missing is checked again. Secrets and ConfigMaps are not
// watched, so that the operator does not cache every Secret of the cluster.
const sourceRecheckInterval = 30 * time.Second

// +kubebuilder:rbac:groups=service.offering.dev,resources=serviceofferings,verbs=get;list;watch
// +kubebuilder:rbac:groups=service.offering.dev,resources=serviceofferings/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=service.offering.dev,resources=serviceofferingrevisions,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets;configmaps,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile validates an offering's references and rolls up its agreements and requests.
func (r *OfferingReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var off v1alpha1.ServiceOffering
	if err := r.Get(ctx, req.NamespacedName, &off); err != nil {
		if apierrors.IsNotFound(err) {
			forgetOffering(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	reason, msg, recheck, err := r.validate(ctx, &off)
	if err != nil {
		return ctrl.Result{}, err
	}
	status := off.Status.DeepCopy()
	if status.LatestRevision, err = r.ensureRevision(ctx, &off); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.rollup(ctx, &off, status); err != nil {
		return ctrl.Result{}, err
	}
	setOfferingConditions(&off, status, reason, msg, metav1.NewTime(r.Options.Clock.Now()))
	if !equality.Semantic.DeepEqual(&off.Status, status) {
		if err := applyStatus(ctx, r.Client, &off, status); err != nil {
			return endOnConflict(ctrl.Result{}, err)
		}
	}
	r.reportReadiness(&off, status)
	if err := r.collectRevisions(ctx, &off, status.LatestRevision); err != nil {
		return ctrl.Result{}, err
	}
	if recheck {
		return ctrl.Result{RequeueAfter: sourceRecheckInterval}, nil
	}
	return ctrl.Result{}, nil
}

// reportReadiness publishes whether the offering is Ready, once its status is
// written, and emits an Event when it turns not Ready (a Warning with the
// reason, also when the reason changes) or Ready again (Normal): status is
// compared with the status it replaced, so each transition is told once.
func (r *OfferingReconciler) reportReadiness(off *v1alpha1.ServiceOffering, status *v1alpha1.ServiceOfferingStatus) {
	cur := meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionReady)
	if cur == nil {
		return
	}
	ready := cur.Status == metav1.ConditionTrue
	setOfferingReady(off.Name, ready)
	prev := meta.FindStatusCondition(off.Status.Conditions, v1alpha1.ConditionReady)
	switch {
	case !ready && (prev == nil || prev.Status != cur.Status || prev.Reason != cur.Reason):
		r.Recorder.Eventf(off, nil, corev1.EventTypeWarning, cur.Reason, "Validate", "not Ready: %s", cur.Message)
	case ready && prev != nil && prev.Status != metav1.ConditionTrue:
		r.Recorder.Eventf(off, nil, corev1.EventTypeNormal, v1alpha1.ConditionReady, "Validate", "Ready again: %s", cur.Message)
	}
}
