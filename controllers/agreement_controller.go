package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// AgreementReconciler drives the lifecycle of ServiceAgreements and rolls up
// the requests made under them. Revoking and restoring access is the request
// controller's job: it watches agreements and acts on their phase.
type AgreementReconciler struct {
	client.Client
	// APIReader confirms, with a live read, that a request holding an allocation is really gone.
	APIReader client.Reader
	Recorder  recorder.EventRecorder
	Options   Options
}

// +kubebuilder:rbac:groups=service.offering.dev,resources=serviceagreements,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=service.offering.dev,resources=serviceagreements/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=service.offering.dev,resources=serviceagreements/finalizers,verbs=update

// Reconcile computes an agreement's phase, conditions and usage.
func (r *AgreementReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var agr v1alpha1.ServiceAgreement
	if err := r.Get(ctx, req.NamespacedName, &agr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	now := r.Options.Clock.Now()

	requests, err := requestsUnder(ctx, r.Client, &agr)
	if err != nil {
		return ctrl.Result{}, err
	}

	if !agr.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, &agr, requests, now)
	}
	if !controllerutil.ContainsFinalizer(&agr, v1alpha1.Finalizer) {
		patch := client.MergeFrom(agr.DeepCopy())
		controllerutil.AddFinalizer(&agr, v1alpha1.Finalizer)
		if err := r.Patch(ctx, &agr, patch); err != nil {
			return ctrl.Result{}, err
		}
	}

	var off v1alpha1.ServiceOffering
	offErr := r.Get(ctx, types.NamespacedName{Name: string(agr.Spec.Offering)}, &off)
	if offErr != nil && !apierrors.IsNotFound(offErr) {
		return ctrl.Result{}, offErr
	}
	var offering *v1alpha1.ServiceOffering
	if offErr == nil {
		offering = &off
	}
	lc := evaluateLifecycle(&agr, offering, now)

	held, err := r.reconcileLedger(ctx, &agr, requests, now)
	if err != nil {
		return ctrl.Result{}, err
	}

	status, sl := agreementStatus(&agr, offering, requests, held, lc, now)
	if err := r.writeStatus(ctx, &agr, status); err != nil {
		return endOnConflict(ctrl.Result{}, err)
	}
	setAgreementGauges(&agr, requests, sl, status.Usage)
	if lc.Phase != agr.Status.Phase && agr.Status.Phase != "" {
		r.Recorder.Eventf(&agr, nil, eventType(lc.Phase == v1alpha1.AgreementActive), "Phase"+string(lc.Phase), "Reconcile",
			"agreement is now %s: %s", lc.Phase, lc.Message)
	}
	if was := meta.FindStatusCondition(agr.Status.Conditions, v1alpha1.ConditionServiceLevelsMet); sl.levels != nil &&
		sl.status == metav1.ConditionFalse && (was == nil || was.Status != metav1.ConditionFalse) {
		r.Recorder.Eventf(&agr, nil, corev1.EventTypeWarning, v1alpha1.ReasonObjectiveMissed, "Measure", "%s", sl.message)
	}
	next := lc.RequeueAfter
	if sl.next > 0 && (next == 0 || sl.next < next) {
		next = sl.next
	}
	return ctrl.Result{RequeueAfter: next}, nil
}

// writeStatus applies the status fields the agreement controller owns. The
// ledger (allocations and consumption) is written with optimistic
// concurrency (updateLedger) and left out.
func (r *AgreementReconciler) writeStatus(ctx context.Context, agr *v1alpha1.ServiceAgreement, status *v1alpha1.ServiceAgreementStatus) error {
	current := agr.Status.DeepCopy()
	current.Allocations, current.Consumption = nil, nil
	status.Allocations, status.Consumption = nil, nil
	if equality.Semantic.DeepEqual(current, status) {
		return nil
	}
	return applyStatus(ctx, r.Client, agr, status)
}

// reconcileDelete reports the agreement Terminating while its requests still
// hold grants (the request controller revokes them and then updates the
// requests, which requeues this agreement), and then lets it go.
func (r *AgreementReconciler) reconcileDelete(ctx context.Context, agr *v1alpha1.ServiceAgreement, requests []v1alpha1.ConsumptionRequest, now time.Time) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(agr, v1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	holding := 0
	for i := range requests {
		if holdsAccess(&requests[i]) {
			holding++
		}
	}
	if holding > 0 {
		lc := lifecycle{Phase: v1alpha1.AgreementTerminating, Reason: v1alpha1.ReasonTerminating,
			Message: fmt.Sprintf("revoking access: %d request(s) still hold grants", holding)}
		status, _ := agreementStatus(agr, nil, requests, nil, lc, now)
		return endOnConflict(ctrl.Result{}, r.writeStatus(ctx, agr, status))
	}
	if err := releaseAgreement(ctx, r.Options.ledger(r.Client, r.APIReader), agr); err != nil {
		return ctrl.Result{}, err
	}
	// The resourceVersion makes the patch fail, rather than take the finalizer
	// of a successor of the same name, when agr was read from a stale cache.
	patch := client.MergeFromWithOptions(agr.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(agr, v1alpha1.Finalizer)
	if err := r.Patch(ctx, agr, patch); err != nil && !apierrors.IsNotFound(err) {
		return endOnConflict(ctrl.Result{}, err)
	}
	deleteAgreementGauges(agr)
	r.Recorder.Eventf(agr, nil, "Normal", "Terminated", "Delete", "all access granted under the agreement was revoked")
	return ctrl.Result{}, nil
}

// reconcileLedger brings the record of consumption up to date
// (recordConsumption), moves grants held before the upgrade into slots
// (migrateGrants), releases the grants of requests that no longer exist (for
// example, a request whose finalizer was removed by hand), and a second slot
// a request holds of one entitlement, and returns the grants held per item.
// Because the cache may simply not have seen a new request yet, absence is
// confirmed with a live read before anything is released. Goods and runs are
// consumed: a request that is gone without giving them back (rejected,
// returned, never ran) keeps them counted.
func (r *AgreementReconciler) reconcileLedger(ctx context.Context, agr *v1alpha1.ServiceAgreement, requests []v1alpha1.ConsumptionRequest,
	now time.Time,
) (map[v1alpha1.ItemName]int32, error) {
	if err := r.recordConsumption(ctx, agr, requests, now); err != nil {
		return nil, err
	}
	l := r.Options.ledger(r.Client, r.APIReader)
	if err := migrateGrants(ctx, l, agr); err != nil {
		return nil, err
	}
	held, slots, err := grantsHeld(ctx, l, agr)
	if err != nil || len(slots) == 0 {
		return held, err
	}
	known := make(map[string]bool, len(requests))
	for i := range requests {
		known[string(requests[i].UID)] = true
	}
	stale, err := staleSlots(slots, func(uid, name string) (bool, error) {
		if known[uid] {
			return false, nil
		}
		var live v1alpha1.ConsumptionRequest
		err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: agr.Namespace, Name: name}, &live)
		if apierrors.IsNotFound(err) || err == nil && string(live.UID) != uid {
			return true, nil
		}
		return false, err
	})
	for _, l := range stale {
		ctrl.LoggerFrom(ctx).Info("releasing a grant no request holds", "lease", l.Name, "request", l.Labels[v1alpha1.LabelRequestName])
		if err := r.Delete(ctx, l, client.Preconditions{UID: &l.UID}); client.IgnoreNotFound(err) != nil {
			return nil, err
		}
		held[v1alpha1.ItemName(l.Labels[v1alpha1.LabelItem])]--
	}
	return held, err
}

func eventType(normal bool) string {
	if normal {
		return "Normal"
	}
	return "Warning"
}

// SetupWithManager registers the controller and its watches.
func (r *AgreementReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.ServiceAgreement{}, builder.WithPredicates(notOwnRollup())).
		Named("serviceagreement").
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Options.MaxConcurrentReconciles}).
		Watches(&v1alpha1.ServiceOffering{}, handler.EnqueueRequestsFromMapFunc(r.agreementsForOffering)).
		// A grant claimed or released changes the usage.
		Watches(&coordinationv1.Lease{}, enqueueAfter(r.Options.RollupDelay, func(_ context.Context, o client.Object) []reconcile.Request {
			ns, name, ok := strings.Cut(o.GetAnnotations()[v1alpha1.AnnotationAgreement], "/")
			// Only the operator's own slots: a tenant may write labelled Leases in its namespace.
			if o.GetLabels()[v1alpha1.LabelClaim] == "" || !ok || o.GetNamespace() != grantKeyNamespace(r.Options.OperatorNamespace) {
				return nil
			}
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}}
		})).
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
				!equality.Semantic.DeepEqual(o.Status.Consumption, n.Status.Consumption)
		},
	}
}

func (r *AgreementReconciler) agreementsForOffering(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1alpha1.ServiceAgreementList
	if err := r.List(ctx, &list, client.MatchingFields{indexAgreementOffering: o.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing agreements for offering", "offering", o.GetName())
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return out
}
