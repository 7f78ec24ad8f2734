package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

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
	if err := r.ensureFinalizer(ctx, &agr); err != nil {
		return ctrl.Result{}, err
	}

	offering, pin, err := r.offeringOf(ctx, &agr)
	if err != nil {
		return ctrl.Result{}, err
	}
	lc := evaluateLifecycle(&agr, offering, now)

	held, err := r.reconcileLedger(ctx, &agr, requests, now)
	if err != nil {
		return ctrl.Result{}, err
	}

	status, sl := agreementStatus(&agr, offering, requests, held, lc, now)
	pin.report(&agr, status, lc, now)
	if err := r.writeStatus(ctx, &agr, status); err != nil {
		return endOnConflict(ctrl.Result{}, err)
	}
	setAgreementGauges(&agr, requests, sl, status.Usage)
	setAgreementEnd(&agr, status)
	r.announce(&agr, status, lc, sl)
	// Look again at the next boundary: the end (an expiry or an automatic
	// renewal), the opening of the renewal notice, a service-level deadline.
	return ctrl.Result{RequeueAfter: soonest(lc.RequeueAfter, sl.next, evaluateNotice(&agr, now).opensIn)}, nil
}

// announce sends the events of what changed with the status just written:
// the phase, a missed objective, the renewal notice, a renewal.
func (r *AgreementReconciler) announce(agr *v1alpha1.ServiceAgreement, status *v1alpha1.ServiceAgreementStatus, lc lifecycle, sl slRollup) {
	if lc.Phase != agr.Status.Phase && agr.Status.Phase != "" {
		r.Recorder.Eventf(agr, nil, eventType(lc.Phase == v1alpha1.AgreementActive), "Phase"+string(lc.Phase), "Reconcile",
			"agreement is now %s: %s", lc.Phase, lc.Message)
	}
	if was := meta.FindStatusCondition(agr.Status.Conditions, v1alpha1.ConditionServiceLevelsMet); sl.levels != nil &&
		sl.status == metav1.ConditionFalse && (was == nil || was.Status != metav1.ConditionFalse) {
		r.Recorder.Eventf(agr, nil, corev1.EventTypeWarning, v1alpha1.ReasonObjectiveMissed, "Measure", "%s", sl.message)
	}
	if c := meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionExpiringSoon); c != nil && c.Status == metav1.ConditionTrue &&
		!meta.IsStatusConditionTrue(agr.Status.Conditions, v1alpha1.ConditionExpiringSoon) {
		r.Recorder.Eventf(agr, nil, corev1.EventTypeWarning, v1alpha1.ConditionExpiringSoon, "Notify", "%s", c.Message)
	}
	if was, is := agr.Status.ValidUntil, status.ValidUntil; was != nil && is != nil && is.After(was.Time) && lc.Phase != v1alpha1.AgreementExpired {
		how := "spec.validUntil was extended"
		if status.Renewals > agr.Status.Renewals {
			how = "renewed by spec.autoRenew"
		}
		r.Recorder.Eventf(agr, nil, corev1.EventTypeNormal, "Renewed", "Renew", "%s: the agreement now ends at %s", how, is.UTC().Format(time.RFC3339))
	}
}

// soonest is the shortest of the positive durations, zero when none is.
func soonest(ds ...time.Duration) time.Duration {
	var next time.Duration
	for _, d := range ds {
		if d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	return next
}

// offeringOf reads the agreement's offering: nil when it does not exist; with
// the spec of the revision the agreement is pinned to (effectiveOffering),
// or the live offering and why when that revision does not exist.
func (r *AgreementReconciler) offeringOf(ctx context.Context, agr *v1alpha1.ServiceAgreement) (*v1alpha1.ServiceOffering, revisionPin, error) {
	var off v1alpha1.ServiceOffering
	if err := r.Get(ctx, types.NamespacedName{Name: string(agr.Spec.Offering)}, &off); err != nil {
		return nil, revisionPin{}, client.IgnoreNotFound(err)
	}
	eff, _, reason, msg, err := effectiveOffering(ctx, r.Client, agr, &off)
	if err != nil || reason != "" {
		return &off, revisionPin{reason: reason, message: msg}, err
	}
	return eff, revisionPin{}, nil
}

// writeStatus applies the status fields the agreement controller owns. The
// ledger (allocations and consumption, written with optimistic concurrency
// by updateLedger) and the service-level history are the request
// controller's and are left out.
func (r *AgreementReconciler) writeStatus(ctx context.Context, agr *v1alpha1.ServiceAgreement, status *v1alpha1.ServiceAgreementStatus) error {
	current := agr.Status.DeepCopy()
	current.Allocations, current.Consumption, current.ServiceLevelHistory = nil, nil, nil
	status.Allocations, status.Consumption, status.ServiceLevelHistory = nil, nil, nil
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
		lc, retry := terminatingWhileHolding(r.Options.fleet, requests, holding) // request_placement.go
		status, _ := agreementStatus(agr, nil, requests, nil, lc, now)
		return endOnConflict(ctrl.Result{RequeueAfter: retry}, r.writeStatus(ctx, agr, status))
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
