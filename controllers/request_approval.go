package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// approve applies the agreement's approval policy: Automatic approves at
// once; Manual waits for a provider's Approved or Denied condition, which
// the operator never writes itself.
func (r *RequestReconciler) approve(_ context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState) stepOutcome {
	agr := s.agreement
	if c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionApproved); c != nil && c.Status == metav1.ConditionTrue {
		if s.status.ApprovedAt == nil {
			t := c.LastTransitionTime
			s.status.ApprovedAt = &t
			r.recordDecision(cr, s, v1alpha1.ConditionApproved)
		}
		return stepOutcome{}
	}
	if agr.Spec.ApprovalPolicy == v1alpha1.ApprovalManual {
		return waitFor(v1alpha1.RequestAwaitingApproval, v1alpha1.ReasonAwaitingApproval,
			fmt.Sprintf("ServiceAgreement %s requires a provider to approve this request: add the condition Approved=True "+
				"(or Denied=True) through the status subresource", agr.Name))
	}
	s.status.ApprovedAt = &s.now
	return stepOutcome{}.with(v1alpha1.ConditionApproved, metav1.ConditionTrue, v1alpha1.ReasonAutoApproved,
		fmt.Sprintf("ServiceAgreement %s approves requests automatically", agr.Name))
}
