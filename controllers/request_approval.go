package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// unrecordedDecider is the decider the operator records when admission did
// not stamp one: the policy offering-operator-request-decider is not
// installed. With the policy, admission replaces it with the identity that
// wrote the decision, the operator's own for an automatic approval.
const unrecordedDecider = "unrecorded (the admission policy offering-operator-request-decider is not installed)"

// approve applies the agreement's approval policy: Automatic approves at
// once; Manual waits for a provider's Approved or Denied condition, which
// the operator never writes itself. An approval belongs to the agreement it
// was given under (by UID) and to its policy: status.decision records both
// when the operator first acts on it, and an approval that does not hold
// under the current agreement is disregarded (supersede).
func (r *RequestReconciler) approve(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState) stepOutcome {
	agr := s.agreement
	if c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionApproved); c != nil && c.Status == metav1.ConditionTrue {
		why := approvalSuperseded(s.status.Decision, agr)
		switch {
		case s.status.ApprovedAt == nil || s.status.Decision == nil || s.status.Decision.AgreementUID == "":
			// A decision the operator acts on for the first time, or one
			// recorded before approvals were bound: it belongs to this agreement.
			if s.status.ApprovedAt == nil {
				t := c.LastTransitionTime
				s.status.ApprovedAt = &t
				r.recordDecision(cr, s, v1alpha1.ConditionApproved)
			}
			bindDecision(cr, s, agr)
			return stepOutcome{}
		case why == "":
			return planChangeApproval(cr, s, agr)
		case agr.Spec.ApprovalPolicy == v1alpha1.ApprovalManual:
			return r.supersede(ctx, cr, s, why)
		}
		// Approved under another agreement that now approves automatically: approved anew below.
	}
	if agr.Spec.ApprovalPolicy == v1alpha1.ApprovalManual {
		msg := fmt.Sprintf("ServiceAgreement %s requires a provider to approve this request: add the condition Approved=True "+
			"(or Denied=True) through the status subresource", agr.Name)
		if c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionApproved); c != nil && c.Reason == v1alpha1.ReasonApprovalSuperseded {
			return waitFor(v1alpha1.RequestAwaitingApproval, v1alpha1.ReasonApprovalSuperseded, c.Message+"; "+msg)
		}
		if c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionApproved); c != nil && holdsAccess(cr) && c.Reason == v1alpha1.ReasonAwaitingApproval {
			// A plan change waits for approval (planChangeApproval); the grant is kept, and so is the phase.
			return waitFor("", v1alpha1.ReasonAwaitingApproval, c.Message)
		}
		return waitFor(v1alpha1.RequestAwaitingApproval, v1alpha1.ReasonAwaitingApproval, msg)
	}
	s.status.ApprovedAt = &s.now
	s.status.Decision = &v1alpha1.RequestDecision{Type: v1alpha1.DecisionApproved, By: v1alpha1.UserInfo{Username: unrecordedDecider}}
	bindDecision(cr, s, agr)
	return stepOutcome{}.with(v1alpha1.ConditionApproved, metav1.ConditionTrue, v1alpha1.ReasonAutoApproved,
		fmt.Sprintf("ServiceAgreement %s approves requests automatically", agr.Name))
}

// bindDecision records, with the request's approval, the agreement it was
// given under, that agreement's approval policy and the plan it covers.
func bindDecision(cr *v1alpha1.ConsumptionRequest, s *requestState, agr *v1alpha1.ServiceAgreement) {
	d := s.status.Decision.DeepCopy()
	if d == nil {
		d = &v1alpha1.RequestDecision{Type: v1alpha1.DecisionApproved, By: v1alpha1.UserInfo{Username: unrecordedDecider}}
	}
	d.AgreementUID, d.ApprovalPolicy = string(agr.UID), agr.Spec.ApprovalPolicy
	d.Plan = requestedPlanOf(cr, s.offering)
	s.status.Decision = d
}

// approvalSuperseded says why the recorded approval d does not hold under
// agr; "" when it does (or records no agreement yet). An approval holds
// under the agreement it was given under, and an automatic one only while
// that agreement still approves automatically.
func approvalSuperseded(d *v1alpha1.RequestDecision, agr *v1alpha1.ServiceAgreement) string {
	switch {
	case d == nil || d.AgreementUID == "":
		return ""
	case d.AgreementUID != string(agr.UID):
		return fmt.Sprintf("the request was approved under an earlier ServiceAgreement %s (UID %s), deleted since; "+
			"an approval does not carry over to the agreement created again under that name (UID %s)", agr.Name, d.AgreementUID, agr.UID)
	case d.ApprovalPolicy == v1alpha1.ApprovalAutomatic && agr.Spec.ApprovalPolicy == v1alpha1.ApprovalManual:
		return fmt.Sprintf("the request was approved automatically; ServiceAgreement %s now requires a person's approval", agr.Name)
	}
	return ""
}

// supersede disregards an approval that no longer holds: the request's
// Approved condition turns False and it waits for a provider's approval.
// Access it holds meanwhile is revoked as on suspension (RoleBindings; the
// namespace stays), so that nothing is held on an approval nobody gave.
func (r *RequestReconciler) supersede(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState, why string) stepOutcome {
	s.status.ApprovedAt = nil
	o := waitFor(v1alpha1.RequestAwaitingApproval, v1alpha1.ReasonApprovalSuperseded, why+"; a provider must approve it again")
	if holdsAccess(cr) || cr.Spec.Goods != nil && s.status.Phase == v1alpha1.RequestDelivered {
		o = r.revokeAndReport(ctx, cr, s.offering, s, false, why)
	}
	return o.with(v1alpha1.ConditionApproved, metav1.ConditionFalse, v1alpha1.ReasonApprovalSuperseded, why)
}
