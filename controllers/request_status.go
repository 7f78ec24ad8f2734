package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// The status of a request is computed here, and only here, from the outcome
// of its steps (request_outcome.go): setRequestStatus writes the phase and
// every condition the steps found, Ready and Stalled from the outcome's kind;
// measureServiceLevel writes WithinServiceLevel; writeStatus sends it.

// requestState is the status being built for a request during one reconcile.
type requestState struct {
	status v1alpha1.ConsumptionRequestStatus
	now    metav1.Time
	gen    int64
	// owned are the condition types the operator writes on this request.
	owned []string
	// agreement is the request's agreement, when this reconcile read it.
	agreement *v1alpha1.ServiceAgreement
	// offering is the agreement's offering, when this reconcile read it:
	// under a Pinned agreement, with the pinned revision's spec.
	offering *v1alpha1.ServiceOffering
	// revision is the number of the offering's revision offering holds; 0
	// when not known (the offering's latest is not recorded yet).
	revision int32
	// told are the Events of what the steps found, sent by recordTransition
	// once the status that records it is written.
	told []pendingEvent
	// resizing says that this reconcile applies a plan change: what it
	// writes to the grant is the change, not drift repaired.
	resizing bool
}

// pendingEvent is an Event about the request, waiting for its status write.
type pendingEvent struct {
	related                         runtime.Object
	eventtype, reason, action, note string
}

// tell records an Event about the request, to be sent once the status of
// this reconcile is written. A reconcile from a stale copy finds the same
// transition again, but its write fails with a conflict and its Events go
// with it: each transition is told once.
func (s *requestState) tell(related runtime.Object, eventtype, reason, action, format string, args ...any) {
	s.told = append(s.told, pendingEvent{related, eventtype, reason, action, fmt.Sprintf(format, args...)})
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

// setRequestStatus turns the outcome of a reconcile into the request's phase
// and conditions, and into the requeue. Ready is True only for a ready
// outcome; Stalled is True exactly for a stalled one, so a new reason is
// Stalled or not by the kind of outcome its step returns, never by a list.
// An outcome without a Ready reason (a settled request, an error before any
// finding) leaves Ready and Stalled as they are.
func setRequestStatus(s *requestState, o stepOutcome) (ctrl.Result, error) {
	s.own(v1alpha1.ConditionStalled)
	if o.kind == settled {
		return ctrl.Result{}, nil
	}
	if o.phase != "" {
		s.status.Phase = o.phase
	}
	for _, typ := range foundConditions {
		if v, ok := o.found[typ]; ok {
			s.set(typ, v.status, v.reason, v.message)
		}
	}
	if o.reason != "" {
		s.set(v1alpha1.ConditionReady, boolStatus(o.kind == ready), o.reason, o.message)
		setStalled(&s.status.Conditions, o.kind == stalled, s.gen, s.now)
	}
	return ctrl.Result{RequeueAfter: o.requeue}, o.err
}

// recordTransition sends the Events of a reconcile whose status write just
// succeeded: those the steps told (granted, decided, delivered, accepted,
// returned, action started and finished, revoked), each where it first
// records the fact in the status, and the one phase no step reports itself,
// waiting for a provider's decision.
func (r *RequestReconciler) recordTransition(cr *v1alpha1.ConsumptionRequest, s *requestState) {
	if s.status.Phase == v1alpha1.RequestAwaitingApproval && cr.Status.Phase != v1alpha1.RequestAwaitingApproval {
		r.Recorder.Eventf(cr, relatedAgreement(cr, s), corev1.EventTypeNormal, v1alpha1.ReasonAwaitingApproval, "Approve",
			"ServiceAgreement %s requires a provider to approve or deny this request", cr.Spec.Agreement)
	}
	for _, e := range s.told {
		r.Recorder.Eventf(cr, e.related, e.eventtype, e.reason, e.action, "%s", e.note)
	}
}

// recordFulfilment stamps when the request was first fulfilled and how long it took.
func recordFulfilment(cr *v1alpha1.ConsumptionRequest, s *requestState) (first bool, took time.Duration) {
	if s.status.FulfilledAt != nil {
		return false, 0
	}
	s.status.FulfilledAt = &s.now
	d := s.now.Sub(cr.CreationTimestamp.Time).Round(time.Millisecond)
	s.status.FulfilmentDuration = &metav1.Duration{Duration: d}
	return true, d
}

// measureServiceLevel compares the request with its targets and records
// WithinServiceLevel. While the request is open the targets are the
// agreement's, and its requested plan's defaults where the agreement sets
// none; once it ends they stay as recorded. Once it was fulfilled its verdict
// is final: a plan change (a resize), even one that asks a provider again,
// never re-measures it. An open request is requeued for when its next target
// falls due, so that a breach is reported when it happens, not when the
// request finally completes.
func (r *RequestReconciler) measureServiceLevel(cr *v1alpha1.ConsumptionRequest, s *requestState, result ctrl.Result) ctrl.Result {
	if cr.Status.FulfilledAt != nil && s.status.ServiceLevel != nil &&
		meta.FindStatusCondition(s.status.Conditions, v1alpha1.ConditionWithinServiceLevel) != nil {
		s.own(v1alpha1.ConditionWithinServiceLevel)
		return result
	}
	approval, fulfilment, from := requestTargets(s.agreement, measuredPlan(cr, s.offering))
	if prev := s.status.ServiceLevel; prev != nil && (s.agreement == nil || !isOpen(s.status.Phase)) {
		approval, fulfilment, from = prev.ApprovalTarget, prev.FulfilmentTarget, prev.Plan
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
	if v.level.Plan = from; from != "" {
		v.message += fmt.Sprintf(" (where the agreement sets no target, plan %s's default applies)", from)
	}
	s.status.ServiceLevel = v.level
	s.set(v1alpha1.ConditionWithinServiceLevel, v.status, v.reason, v.message)
	if v.next > 0 && (result.RequeueAfter == 0 || v.next < result.RequeueAfter) {
		result.RequeueAfter = v.next
	}
	return result
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
// it, which costs it more CPU on the operator's busiest write
// (docs/performance.md, "Figures behind the code"). Ownership stays
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
