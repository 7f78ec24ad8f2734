package controllers

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// recordDecision emits an event naming who approved or denied cr (typ is
// Approved or Denied), from status.decision, which admission stamps from the
// identity that wrote the condition (config/admission/request_decider.yaml).
// It is called once, when the operator first acts on a person's decision.
func (r *RequestReconciler) recordDecision(cr *v1alpha1.ConsumptionRequest, s *requestState, typ string) {
	by := "an identity that was not recorded (the admission policy offering-operator-request-decider is not installed)"
	if d := cr.Status.Decision; d != nil && string(d.Type) == typ {
		by = d.By.Username
	}
	msg := ""
	if c := meta.FindStatusCondition(cr.Status.Conditions, typ); c != nil && c.Message != "" {
		msg = ": " + c.Message
	}
	eventType := corev1.EventTypeNormal
	if typ == v1alpha1.ConditionDenied {
		eventType = corev1.EventTypeWarning
	}
	s.tell(relatedAgreement(cr, s), eventType, typ, "Decide", "%s by %s%s", typ, by, truncate(msg, 512))
}
