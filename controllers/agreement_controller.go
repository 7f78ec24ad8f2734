package controllers

import (
	"context"
	"fmt"
	"time"

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

	if err := r.releaseStaleAllocations(ctx, &agr, requests); err != nil {
		return ctrl.Result{}, err
	}

	status, sl := agreementStatus(&agr, offering, requests, lc, now)
	if err := r.writeStatus(ctx, &agr, status); err != nil {
		return endOnConflict(ctrl.Result{}, err)
	}
	setAgreementGauges(&agr, requests, sl)
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

// agreementStatus computes an agreement's status: phase, conditions, usage,
// counts and the service-level record.
func agreementStatus(agr *v1alpha1.ServiceAgreement, offering *v1alpha1.ServiceOffering, requests []v1alpha1.ConsumptionRequest,
	lc lifecycle, now time.Time,
) (*v1alpha1.ServiceAgreementStatus, slRollup) {
	status := agr.Status.DeepCopy()
	status.Phase = lc.Phase
	nowT := metav1.NewTime(now)
	gen := agr.Generation
	setCondition(&status.Conditions, v1alpha1.ConditionActive, boolStatus(lc.Phase == v1alpha1.AgreementActive), lc.Reason, lc.Message, gen, nowT)
	status.Usage = computeUsage(agr, requests)
	exhausted := exhaustedItems(status.Usage)
	if len(exhausted) > 0 {
		setCondition(&status.Conditions, v1alpha1.ConditionEntitlementsExhausted, metav1.ConditionTrue, v1alpha1.ReasonExhausted,
			fmt.Sprintf("fully used: %v; further requests for them are denied", exhausted), gen, nowT)
	} else {
		setCondition(&status.Conditions, v1alpha1.ConditionEntitlementsExhausted, metav1.ConditionFalse, v1alpha1.ReasonAvailable,
			"every entitlement has room left", gen, nowT)
	}
	readyReason, readyMsg := lc.Reason, lc.Message
	ready := lc.Phase == v1alpha1.AgreementActive
	if ready && offering != nil {
		if unknown := unknownEntitlements(agr, offering); unknown != "" {
			ready, readyReason, readyMsg = false, v1alpha1.ReasonEntitlementUnknownItem, unknown
		}
	}
	setCondition(&status.Conditions, v1alpha1.ConditionReady, boolStatus(ready), readyReason, readyMsg, gen, nowT)
	sl := rollupServiceLevels(agr, requests, now)
	status.ServiceLevels = sl.levels
	if sl.levels != nil {
		setCondition(&status.Conditions, v1alpha1.ConditionServiceLevelsMet, sl.status, sl.reason, sl.message, gen, nowT)
	}
	// Expired, or Active with entitlements the offering does not have: a person must act.
	setStalled(&status.Conditions, lc.Phase == v1alpha1.AgreementExpired || (lc.Phase == v1alpha1.AgreementActive && !ready), gen, nowT)
	status.Conditions = keepConditions(status.Conditions, v1alpha1.ConditionReady, v1alpha1.ConditionActive,
		v1alpha1.ConditionEntitlementsExhausted, v1alpha1.ConditionServiceLevelsMet, v1alpha1.ConditionStalled)
	if sl.levels == nil {
		meta.RemoveStatusCondition(&status.Conditions, v1alpha1.ConditionServiceLevelsMet)
	}
	status.UsageSummary = usageSummary(status.Usage)
	status.Requests = countRequests(requests)
	status.Goods = countGoods(requests)
	status.Actions = countActions(requests)
	status.ObservedGeneration = gen

	return status, sl
}

// writeStatus applies the status fields the agreement controller owns. The
// allocations are the request controller's and are left out.
func (r *AgreementReconciler) writeStatus(ctx context.Context, agr *v1alpha1.ServiceAgreement, status *v1alpha1.ServiceAgreementStatus) error {
	current := agr.Status.DeepCopy()
	current.Allocations = nil
	status.Allocations = nil
	if equality.Semantic.DeepEqual(current, status) {
		return nil
	}
	return applyStatus(ctx, r.Client, agr, status)
}

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
		status := agr.Status.DeepCopy()
		status.Phase = v1alpha1.AgreementTerminating
		nowT := metav1.NewTime(now)
		msg := fmt.Sprintf("revoking access: %d request(s) still hold grants", holding)
		setCondition(&status.Conditions, v1alpha1.ConditionActive, metav1.ConditionFalse, v1alpha1.ReasonTerminating, msg, agr.Generation, nowT)
		setCondition(&status.Conditions, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonTerminating, msg, agr.Generation, nowT)
		status.Conditions = keepConditions(status.Conditions, v1alpha1.ConditionReady, v1alpha1.ConditionActive, v1alpha1.ConditionEntitlementsExhausted)
		status.Requests = countRequests(requests)
		status.Goods = countGoods(requests)
		status.Actions = countActions(requests)
		// The request controller revokes and then updates the requests, which requeues this agreement.
		return endOnConflict(ctrl.Result{}, r.writeStatus(ctx, agr, status))
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

// releaseStaleAllocations drops allocations of requests that no longer exist
// (for example, a request whose finalizer was removed by hand). Because the
// cache may simply not have seen a new request yet, absence is confirmed with
// a live read before anything is released.
func (r *AgreementReconciler) releaseStaleAllocations(ctx context.Context, agr *v1alpha1.ServiceAgreement, requests []v1alpha1.ConsumptionRequest) error {
	if len(agr.Status.Allocations) == 0 {
		return nil
	}
	known := make(map[string]bool, len(requests))
	for i := range requests {
		known[string(requests[i].UID)] = true
	}
	var stale []string
	for _, a := range agr.Status.Allocations {
		if known[a.UID] {
			continue
		}
		var live v1alpha1.ConsumptionRequest
		err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: agr.Namespace, Name: a.Request}, &live)
		switch {
		case apierrors.IsNotFound(err), err == nil && string(live.UID) != a.UID:
			stale = append(stale, a.UID)
		case err != nil:
			return err
		}
	}
	if len(stale) == 0 {
		return nil
	}
	ctrl.LoggerFrom(ctx).Info("releasing allocations of requests that no longer exist", "uids", stale)
	return releaseAllocations(ctx, r.Client, r.APIReader, agr, stale...)
}

// lifecycle is the evaluated phase of an agreement.
type lifecycle struct {
	Phase        v1alpha1.AgreementPhase
	Reason       string
	Message      string
	RequeueAfter time.Duration
}

// evaluateLifecycle computes an agreement's phase at time now. It is pure, so
// that the lifecycle can be tested with any clock. RequeueAfter is the time
// until the next boundary (validFrom or validUntil), if any.
func evaluateLifecycle(agr *v1alpha1.ServiceAgreement, off *v1alpha1.ServiceOffering, now time.Time) lifecycle {
	spec := agr.Spec
	if !agr.DeletionTimestamp.IsZero() {
		return lifecycle{Phase: v1alpha1.AgreementTerminating, Reason: v1alpha1.ReasonTerminating, Message: "the agreement is being deleted"}
	}
	if spec.ValidUntil != nil && !now.Before(spec.ValidUntil.Time) {
		return lifecycle{Phase: v1alpha1.AgreementExpired, Reason: v1alpha1.ReasonExpired,
			Message: fmt.Sprintf("the agreement expired at %s; extend spec.validUntil to restore it", spec.ValidUntil.UTC().Format(time.RFC3339))}
	}
	var next time.Duration
	if spec.ValidUntil != nil {
		next = spec.ValidUntil.Sub(now)
	}
	if spec.Suspended {
		return lifecycle{Phase: v1alpha1.AgreementSuspended, Reason: v1alpha1.ReasonSuspended,
			Message: "spec.suspended is true: access is revoked and new requests wait", RequeueAfter: next}
	}
	if spec.ValidFrom != nil && now.Before(spec.ValidFrom.Time) {
		return lifecycle{Phase: v1alpha1.AgreementPending, Reason: v1alpha1.ReasonNotYetValid,
			Message:      fmt.Sprintf("the agreement becomes valid at %s", spec.ValidFrom.UTC().Format(time.RFC3339)),
			RequeueAfter: spec.ValidFrom.Sub(now)}
	}
	if off == nil {
		return lifecycle{Phase: v1alpha1.AgreementPending, Reason: v1alpha1.ReasonOfferingNotFound,
			Message: fmt.Sprintf("ServiceOffering %s does not exist", spec.Offering), RequeueAfter: next}
	}
	if !meta.IsStatusConditionTrue(off.Status.Conditions, v1alpha1.ConditionReady) {
		msg := fmt.Sprintf("ServiceOffering %s is not Ready", spec.Offering)
		if c := meta.FindStatusCondition(off.Status.Conditions, v1alpha1.ConditionReady); c != nil {
			msg += ": " + c.Message
		}
		return lifecycle{Phase: v1alpha1.AgreementPending, Reason: v1alpha1.ReasonOfferingNotReady, Message: msg, RequeueAfter: next}
	}
	msg := "the agreement is in force"
	if spec.ValidUntil != nil {
		msg += " until " + spec.ValidUntil.UTC().Format(time.RFC3339)
	}
	return lifecycle{Phase: v1alpha1.AgreementActive, Reason: v1alpha1.ReasonActive, Message: msg, RequeueAfter: next}
}

// unknownEntitlements names the entitlements whose item the offering does not have.
func unknownEntitlements(agr *v1alpha1.ServiceAgreement, off *v1alpha1.ServiceOffering) string {
	var missing []string
	for _, e := range agr.Spec.Entitlements.Resources {
		if findResourceItem(off, e.Name) == nil {
			missing = append(missing, "resource "+string(e.Name))
		}
	}
	for _, e := range agr.Spec.Entitlements.Goods {
		if findGoodsItem(off, e.Name) == nil {
			missing = append(missing, "goods "+string(e.Name))
		}
	}
	for _, e := range agr.Spec.Entitlements.Actions {
		if findActionItem(off, e.Name) == nil {
			missing = append(missing, "action "+string(e.Name))
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("entitlements name items that offering %s does not have: %v", off.Name, missing)
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
				!equality.Semantic.DeepEqual(o.Status.Allocations, n.Status.Allocations)
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
