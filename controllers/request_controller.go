package controllers

import (
	"context"
	"fmt"
	"maps"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
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

// RequestReconciler admits, approves and fulfils ConsumptionRequests, and
// revokes what was granted when a request is deleted or its agreement ends.
type RequestReconciler struct {
	client.Client
	// APIReader is used where the cache cannot be trusted: confirming that an
	// entitlement is exhausted, and looking at a namespace that already exists.
	APIReader client.Reader
	Policy    *RolePolicy
	Recorder  recorder.EventRecorder
	Options   Options
}

// +kubebuilder:rbac:groups=service.offering.dev,resources=consumptionrequests,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=service.offering.dev,resources=consumptionrequests/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=service.offering.dev,resources=consumptionrequests/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=resourcequotas;limitranges,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=rolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles,verbs=bind
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete

// Reconcile moves a request one step towards the state its agreement allows.
func (r *RequestReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var cr v1alpha1.ConsumptionRequest
	if err := r.Get(ctx, req.NamespacedName, &cr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !cr.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, &cr)
	}
	if !controllerutil.ContainsFinalizer(&cr, v1alpha1.Finalizer) {
		patch := client.MergeFrom(cr.DeepCopy())
		controllerutil.AddFinalizer(&cr, v1alpha1.Finalizer)
		if err := r.Patch(ctx, &cr, patch); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}

	s := newRequestState(&cr, r.Options.Clock.Now())
	result, err := r.reconcileNormal(ctx, &cr, s)
	result = r.measureServiceLevel(&cr, s, result)
	s.own(v1alpha1.ConditionStalled)
	setStalled(&s.status.Conditions, requestStalled(s.status.Phase, meta.FindStatusCondition(s.status.Conditions, v1alpha1.ConditionReady)), s.gen, s.now)
	s.status.ObservedGeneration = cr.Generation
	if err != nil {
		// The conditions say what failed; observedGeneration advances only on success.
		s.status.ObservedGeneration = cr.Status.ObservedGeneration
	}
	if werr := r.writeStatus(ctx, &cr, s); werr != nil {
		if err == nil {
			err = werr
		}
		return endOnConflict(result, err)
	}
	// Metrics and breach events once the status that records them is written,
	// so that a retry or a restart does not count them twice.
	for _, t := range observeRequestTransition(&cr, &cr.Status, &s.status) {
		c := meta.FindStatusCondition(s.status.Conditions, v1alpha1.ConditionWithinServiceLevel)
		r.Recorder.Eventf(&cr, nil, corev1.EventTypeWarning, "ServiceLevelBreached", "Measure",
			"%s target of ServiceAgreement %s missed: %s", t, cr.Spec.Agreement, c.Message)
	}
	return result, err
}

// measureServiceLevel compares the request with its agreement's targets and
// records WithinServiceLevel. While the request is open the targets are the
// agreement's; once it has its verdict they stay as recorded. An open request
// is requeued for when its next target falls due, so that a breach is
// reported when it happens, not when the request finally completes.
func (r *RequestReconciler) measureServiceLevel(cr *v1alpha1.ConsumptionRequest, s *requestState, result ctrl.Result) ctrl.Result {
	approval, fulfilment := slTargets(s.agreement)
	if prev := s.status.ServiceLevel; prev != nil && (s.agreement == nil || !isOpen(s.status.Phase)) {
		approval, fulfilment = prev.ApprovalTarget, prev.FulfilmentTarget
	}
	var v slVerdict
	if in, measured := slInput(cr, &s.status, approval, fulfilment); measured {
		v = measureRequest(in, s.now.Time)
	}
	if v.status == "" {
		s.status.ServiceLevel = nil
		meta.RemoveStatusCondition(&s.status.Conditions, v1alpha1.ConditionWithinServiceLevel)
		s.own(v1alpha1.ConditionWithinServiceLevel)
		return result
	}
	s.status.ServiceLevel = v.level
	s.set(v1alpha1.ConditionWithinServiceLevel, v.status, v.reason, v.message)
	if v.next > 0 && (result.RequeueAfter == 0 || v.next < result.RequeueAfter) {
		result.RequeueAfter = v.next
	}
	return result
}

// requestState is the status being built for a request during one reconcile.
type requestState struct {
	status v1alpha1.ConsumptionRequestStatus
	now    metav1.Time
	gen    int64
	// owned are the condition types the operator writes on this request.
	owned []string
	// agreement is the request's agreement, when this reconcile read it.
	agreement *v1alpha1.ServiceAgreement
}

func newRequestState(cr *v1alpha1.ConsumptionRequest, now time.Time) *requestState {
	s := &requestState{status: *cr.Status.DeepCopy(), now: metav1.NewTime(now), gen: cr.Generation}
	kind, name, _ := requestedItem(cr)
	s.status.Item = fmt.Sprintf("%s/%s", kind, name)
	s.owned = []string{v1alpha1.ConditionReady, v1alpha1.ConditionFulfilled}
	switch kind {
	case v1alpha1.ItemKindResource:
		s.owned = append(s.owned, v1alpha1.ConditionAccessVerified)
	case v1alpha1.ItemKindGoods:
		s.owned = append(s.owned, v1alpha1.ConditionTransferred, v1alpha1.ConditionAccepted)
	}
	// A manual action's Fulfilled is the provider's, like a manual approval.
	if isManualAction(cr) {
		s.disown(v1alpha1.ConditionFulfilled)
	}
	// Approved and Denied are the operator's only when it wrote them itself;
	// a provider's decision is never taken over.
	if c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionApproved); c != nil && c.Reason == v1alpha1.ReasonAutoApproved {
		s.owned = append(s.owned, v1alpha1.ConditionApproved)
	}
	if c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionDenied); c != nil && isAdmissionReason(c.Reason) {
		s.owned = append(s.owned, v1alpha1.ConditionDenied)
	}
	return s
}

func (s *requestState) set(typ string, status metav1.ConditionStatus, reason, msg string) {
	setCondition(&s.status.Conditions, typ, status, reason, msg, s.gen, s.now)
	s.own(typ)
}

// own makes a condition type the operator's to write (or to remove).
func (s *requestState) own(typ string) {
	for _, t := range s.owned {
		if t == typ {
			return
		}
	}
	s.owned = append(s.owned, typ)
}

// disown gives up a condition type: the operator no longer writes it.
func (s *requestState) disown(typ string) {
	kept := s.owned[:0]
	for _, t := range s.owned {
		if t != typ {
			kept = append(kept, t)
		}
	}
	s.owned = kept
}

// notReady records a phase and a Ready=False condition with its reason.
func (s *requestState) notReady(phase v1alpha1.RequestPhase, reason, msg string) {
	s.status.Phase = phase
	s.set(v1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
}

func isAdmissionReason(reason string) bool {
	switch reason {
	case v1alpha1.ReasonItemNotEntitled, v1alpha1.ReasonItemNotOffered, v1alpha1.ReasonEntitlementExhausted,
		v1alpha1.ReasonRequestedNameNotAllowed:
		return true
	}
	return false
}

// writeStatus writes the status when the operator's part of it changed.
//
// It is an update of the status subresource with the resourceVersion the
// status was computed from, not a server-side apply: the API server does the
// same ownership bookkeeping for both, but parses an apply as YAML and merges
// it, which made the request's one status write cost about 6 ms of API server
// CPU against 4.7 ms for the update (docs/performance.md). Ownership stays
// the same: the update carries every condition of another writer exactly as
// the server holds it, so its field manager keeps it, and a write computed
// from a stale copy fails with a conflict instead of overwriting a decision
// made meanwhile.
func (r *RequestReconciler) writeStatus(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState) error {
	desired := s.status.DeepCopy()
	desired.Conditions = keepConditions(s.status.Conditions, s.owned...)
	current := cr.Status.DeepCopy()
	current.Conditions = keepConditions(cr.Status.Conditions, s.owned...)
	if equality.Semantic.DeepEqual(current, desired) {
		return nil
	}
	obj := &v1alpha1.ConsumptionRequest{TypeMeta: cr.TypeMeta, ObjectMeta: *cr.ObjectMeta.DeepCopy(), Spec: *cr.Spec.DeepCopy()}
	obj.Status = *desired
	obj.Status.Conditions = statusConditions(cr.Status.Conditions, s.status.Conditions, s.owned)
	return client.IgnoreNotFound(r.Status().Update(ctx, obj, client.FieldOwner(FieldOwner)))
}

func (r *RequestReconciler) reconcileNormal(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState) (ctrl.Result, error) {
	if result, done, err := r.reconcileSettled(ctx, cr, s); done {
		return result, err
	}

	var agr v1alpha1.ServiceAgreement
	if err := r.Get(ctx, types.NamespacedName{Namespace: cr.Namespace, Name: string(cr.Spec.Agreement)}, &agr); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		if holdsAccess(cr) || s.status.AdmittedAt != nil || s.status.Phase == v1alpha1.RequestRevoked {
			// The entitlement went with the agreement: a new agreement of the same name admits the request afresh.
			s.status.AdmittedAt = nil
			return r.revokeAndReport(ctx, cr, nil, r.offeringFor(ctx, cr), s, true,
				fmt.Sprintf("ServiceAgreement %s no longer exists", cr.Spec.Agreement))
		}
		s.notReady(v1alpha1.RequestPending, v1alpha1.ReasonAgreementNotFound,
			fmt.Sprintf("ServiceAgreement %s does not exist in namespace %s; the request waits for it", cr.Spec.Agreement, cr.Namespace))
		return ctrl.Result{}, nil
	}
	s.status.Offering = string(agr.Spec.Offering)
	s.agreement = &agr
	var off v1alpha1.ServiceOffering
	offErr := r.Get(ctx, types.NamespacedName{Name: string(agr.Spec.Offering)}, &off)
	if offErr != nil && !apierrors.IsNotFound(offErr) {
		return ctrl.Result{}, offErr
	}

	if active, final, why := agreementInForce(&agr, r.Options.Clock.Now()); !active || offErr != nil {
		if offErr != nil {
			why = fmt.Sprintf("ServiceOffering %s does not exist", agr.Spec.Offering)
		}
		if s.status.AdmittedAt != nil {
			return r.revokeAndReport(ctx, cr, &agr, offeringOrNil(&off, offErr), s, final, why)
		}
		s.notReady(v1alpha1.RequestPending, v1alpha1.ReasonAgreementNotActive, why+"; the request waits until it is Active")
		return ctrl.Result{}, nil
	}

	if s.status.AdmittedAt == nil {
		ok, err := r.admit(ctx, cr, &agr, &off, s)
		if err != nil || !ok {
			return ctrl.Result{}, err
		}
	}

	if !r.approve(cr, &agr, s) {
		return ctrl.Result{}, nil
	}

	return r.fulfil(ctx, cr, &agr, &off, s)
}

// reconcileSettled handles requests whose course no longer depends on their
// agreement. done is false for the others.
func (r *RequestReconciler) reconcileSettled(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState) (ctrl.Result, bool, error) {
	// Denied is final: whoever denied it, nothing is granted.
	denied := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionDenied)
	switch {
	case goodsSettled(cr):
		// Accepted goods belong to the consumer and returned goods are gone:
		// nothing is left to do, whatever happens to the agreement.
		return ctrl.Result{}, true, nil
	case denied != nil && denied.Status == metav1.ConditionTrue:
		if s.status.Phase != v1alpha1.RequestDenied {
			r.recordDecision(cr, v1alpha1.ConditionDenied)
		}
		return ctrl.Result{}, true, r.finishDenied(ctx, cr, s, denied.Reason, denied.Message)
	case s.status.Phase == v1alpha1.RequestFailed:
		return ctrl.Result{}, true, nil
	case cr.Spec.Action != nil && s.status.Phase == v1alpha1.RequestFulfilled:
		// A completed action is done, whatever happens to the agreement later.
		return ctrl.Result{}, true, nil
	case actionStarted(cr):
		// Work already started is finished, even if the agreement is suspended or ends meanwhile.
		result, err := r.followAction(ctx, cr, s)
		return result, true, err
	}
	return ctrl.Result{}, false, nil
}

// fulfil hands an approved request to the step for its kind of item.
func (r *RequestReconciler) fulfil(ctx context.Context, cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement, off *v1alpha1.ServiceOffering,
	s *requestState,
) (ctrl.Result, error) {
	kind, name, _ := requestedItem(cr)
	if !offers(off, kind, name) {
		// The provider removed the item after admission: report it, keep what was granted or delivered.
		msg := fmt.Sprintf("ServiceOffering %s no longer has %s item %s; the request waits", off.Name, kind, name)
		s.notReady(v1alpha1.RequestProvisioning, v1alpha1.ReasonItemNotOffered, msg)
		s.set(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, v1alpha1.ReasonItemNotOffered, msg)
		return ctrl.Result{}, nil
	}
	switch kind {
	case v1alpha1.ItemKindResource:
		return r.grant(ctx, cr, agr, findResourceItem(off, name), s)
	case v1alpha1.ItemKindGoods:
		return r.deliver(ctx, cr, agr, off, findGoodsItem(off, name), s)
	case v1alpha1.ItemKindAction:
		return r.runAction(ctx, cr, agr, off, findActionItem(off, name), s)
	default:
		s.status.Phase = v1alpha1.RequestProvisioning
		msg := fmt.Sprintf("this version of offering-operator does not fulfil %s items yet; the request stays approved and waits", kind)
		s.set(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, v1alpha1.ReasonUnsupportedItemKind, msg)
		s.set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonUnsupportedItemKind, msg)
		return ctrl.Result{}, nil
	}
}

func offeringOrNil(off *v1alpha1.ServiceOffering, err error) *v1alpha1.ServiceOffering {
	if err != nil {
		return nil
	}
	return off
}

// agreementInForce reports whether the agreement is Active now, and if not,
// whether the end is final (expired or being deleted: everything is revoked)
// or temporary (suspended or pending: namespaces are kept), and why. The spec
// is consulted as well as the status, so that a suspension takes effect even
// before the agreement controller has reported it.
func agreementInForce(agr *v1alpha1.ServiceAgreement, now time.Time) (active, final bool, why string) {
	name := agr.Name
	switch {
	case !agr.DeletionTimestamp.IsZero():
		return false, true, fmt.Sprintf("ServiceAgreement %s is being deleted", name)
	case agr.Spec.ValidUntil != nil && !now.Before(agr.Spec.ValidUntil.Time):
		return false, true, fmt.Sprintf("ServiceAgreement %s expired at %s", name, agr.Spec.ValidUntil.UTC().Format(time.RFC3339))
	case agr.Spec.Suspended:
		return false, false, fmt.Sprintf("ServiceAgreement %s is suspended", name)
	case agr.Spec.ValidFrom != nil && now.Before(agr.Spec.ValidFrom.Time):
		return false, false, fmt.Sprintf("ServiceAgreement %s is not valid before %s", name, agr.Spec.ValidFrom.UTC().Format(time.RFC3339))
	case agr.Status.Phase != v1alpha1.AgreementActive:
		phase := agr.Status.Phase
		if phase == "" {
			phase = "not yet reconciled"
		}
		msg := fmt.Sprintf("ServiceAgreement %s is %s", name, phase)
		if c := meta.FindStatusCondition(agr.Status.Conditions, v1alpha1.ConditionActive); c != nil && c.Message != "" {
			msg += ": " + c.Message
		}
		return false, false, msg
	}
	return true, false, ""
}

// admit checks the request against its agreement and claims the entitlement.
// It returns false when the request was denied.
func (r *RequestReconciler) admit(ctx context.Context, cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement, off *v1alpha1.ServiceOffering, s *requestState) (bool, error) {
	kind, name, _ := requestedItem(cr)
	if _, included := entitlement(agr, kind, name); !included {
		return false, r.deny(ctx, cr, s, v1alpha1.ReasonItemNotEntitled,
			fmt.Sprintf("ServiceAgreement %s does not include %s %s", agr.Name, kind, name))
	}
	if !offers(off, kind, name) {
		return false, r.deny(ctx, cr, s, v1alpha1.ReasonItemNotOffered,
			fmt.Sprintf("ServiceOffering %s has no %s item named %s", off.Name, kind, name))
	}
	if kind == v1alpha1.ItemKindResource && cr.Spec.Resource.NamespaceName != "" && !findResourceItem(off, name).Namespace.AllowRequestedName {
		return false, r.deny(ctx, cr, s, v1alpha1.ReasonRequestedNameNotAllowed,
			fmt.Sprintf("resource %s does not allow choosing the namespace name; remove spec.resource.namespaceName", name))
	}
	res, err := admit(ctx, r.Client, r.APIReader, agr, cr)
	if err != nil {
		return false, err
	}
	if !res.Admitted {
		return false, r.deny(ctx, cr, s, v1alpha1.ReasonEntitlementExhausted,
			fmt.Sprintf("the entitlement for %s %s is used up (%d of %d in use); release one or ask the provider for more",
				kind, name, res.Used, res.Limit))
	}
	s.status.AdmittedAt = &s.now
	return true, nil
}

// deny refuses a request at admission. Nothing was created for it.
func (r *RequestReconciler) deny(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState, reason, msg string) error {
	s.set(v1alpha1.ConditionDenied, metav1.ConditionTrue, reason, msg)
	r.Recorder.Eventf(cr, nil, corev1.EventTypeWarning, "Denied", "Admit", "%s", msg)
	return r.finishDenied(ctx, cr, s, reason, msg)
}

// finishDenied releases whatever a denied request held and reports it.
func (r *RequestReconciler) finishDenied(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState, reason, msg string) error {
	// Goods delivered before a provider denied the request are taken back.
	if _, err := r.removeCopies(ctx, cr, nil); err != nil {
		return err
	}
	s.status.Delivered = nil
	if err := r.releaseEntitlement(ctx, cr); err != nil {
		return err
	}
	s.notReady(v1alpha1.RequestDenied, reason, msg)
	s.set(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, reason, "the request was denied")
	return nil
}

// approve applies the agreement's approval policy. It returns true when the request is approved.
func (r *RequestReconciler) approve(cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement, s *requestState) bool {
	if c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionApproved); c != nil && c.Status == metav1.ConditionTrue {
		if s.status.ApprovedAt == nil {
			t := c.LastTransitionTime
			s.status.ApprovedAt = &t
			r.recordDecision(cr, v1alpha1.ConditionApproved)
		}
		return true
	}
	if agr.Spec.ApprovalPolicy == v1alpha1.ApprovalManual {
		s.notReady(v1alpha1.RequestAwaitingApproval, v1alpha1.ReasonAwaitingApproval,
			fmt.Sprintf("ServiceAgreement %s requires a provider to approve this request: add the condition Approved=True "+
				"(or Denied=True) through the status subresource", agr.Name))
		return false
	}
	s.set(v1alpha1.ConditionApproved, metav1.ConditionTrue, v1alpha1.ReasonAutoApproved,
		fmt.Sprintf("ServiceAgreement %s approves requests automatically", agr.Name))
	s.status.ApprovedAt = &s.now
	return true
}

// releaseEntitlement gives the request's allocation back to its agreement.
func (r *RequestReconciler) releaseEntitlement(ctx context.Context, cr *v1alpha1.ConsumptionRequest) error {
	var agr v1alpha1.ServiceAgreement
	if err := r.Get(ctx, types.NamespacedName{Namespace: cr.Namespace, Name: string(cr.Spec.Agreement)}, &agr); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !hasAllocation(&agr, string(cr.UID)) {
		return nil
	}
	return releaseAllocations(ctx, r.Client, r.APIReader, &agr, string(cr.UID))
}

// reconcileDelete revokes everything granted for a request, gives its
// entitlement back, and only then lets the request go.
func (r *RequestReconciler) reconcileDelete(ctx context.Context, cr *v1alpha1.ConsumptionRequest) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(cr, v1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	policy := v1alpha1.RevocationPolicyDelete
	if off := r.offeringFor(ctx, cr); off != nil && cr.Spec.Resource != nil {
		if item := findResourceItem(off, cr.Spec.Resource.Name); item != nil && item.RevocationPolicy != "" {
			policy = item.RevocationPolicy
		}
	}
	cancelled, err := r.cancelAction(ctx, cr)
	if err != nil {
		return ctrl.Result{}, err
	}
	if cancelled {
		r.Recorder.Eventf(cr, nil, corev1.EventTypeNormal, "ActionCancelled", "Delete", "the request was deleted: its running Job was cancelled")
	}
	if err := r.revoke(ctx, cr, true, policy); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.releaseEntitlement(ctx, cr); err != nil {
		return ctrl.Result{}, err
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

func (r *RequestReconciler) offeringFor(ctx context.Context, cr *v1alpha1.ConsumptionRequest) *v1alpha1.ServiceOffering {
	name := cr.Status.Offering
	if name == "" {
		var agr v1alpha1.ServiceAgreement
		if err := r.Get(ctx, types.NamespacedName{Namespace: cr.Namespace, Name: string(cr.Spec.Agreement)}, &agr); err != nil {
			return nil
		}
		name = string(agr.Spec.Offering)
	}
	var off v1alpha1.ServiceOffering
	if err := r.Get(ctx, types.NamespacedName{Name: name}, &off); err != nil {
		return nil
	}
	return &off
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
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Namespace{}, byLabels).
		Watches(&rbacv1.RoleBinding{}, byLabels).
		Watches(&corev1.ResourceQuota{}, byLabels, builder.WithPredicates(quotaChanged())).
		Watches(&corev1.LimitRange{}, byLabels).
		Watches(&networkingv1.NetworkPolicy{}, byLabels).
		Watches(&corev1.Secret{}, byLabels).
		Watches(&corev1.ConfigMap{}, byLabels).
		Watches(&batchv1.Job{}, byLabels).
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
	out := make([]reconcile.Request, 0, len(requests))
	for i := range requests {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&requests[i])})
	}
	return out
}

func (r *RequestReconciler) requestsForOffering(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1alpha1.ConsumptionRequestList
	if err := r.List(ctx, &list, client.MatchingFields{indexRequestOffering: o.GetName()}, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing requests for offering", "offering", o.GetName())
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return out
}
