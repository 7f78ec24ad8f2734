package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Expiry grace: when an agreement expires, a granted namespace whose item
// has revocationPolicy Delete and a gracePeriod loses its RoleBindings at
// once but is deleted only once the grace period has passed. Renewing the
// agreement before then grants access to the same namespace again, with its
// data. The deadline is computed from the agreement's end and the item, not
// recorded, so that a restart or a lost write cannot move it; the status
// shows it (status.grant.retainedUntil).

// graceUntil is when a request's namespace, kept after its agreement
// expired, is deleted; ok is false when no grace applies at now: the
// agreement did not expire (it is being deleted, or gone), the item keeps no
// namespace in grace, or the grace period has passed.
func graceUntil(agr *v1alpha1.ServiceAgreement, off *v1alpha1.ServiceOffering, cr *v1alpha1.ConsumptionRequest,
	held *v1alpha1.AccessGrant, now time.Time,
) (time.Time, bool) {
	if agr == nil || off == nil || cr.Spec.Resource == nil || held == nil || held.Namespace == "" ||
		agreementTerms(agr, now) != v1alpha1.AgreementExpired {
		return time.Time{}, false
	}
	item := findResourceItem(off, cr.Spec.Resource.Name)
	if item == nil || item.GracePeriod == nil || revocationPolicy(off, cr) != v1alpha1.RevocationPolicyDelete {
		return time.Time{}, false
	}
	end, _ := agreementEnd(agr, now)
	// Whole seconds, as the status records it: the deadline shown is the one kept.
	until := end.Add(item.GracePeriod.Duration).Truncate(time.Second)
	return until, now.Before(until)
}

// revokeInGrace revokes a request's access because its agreement expired,
// and keeps its namespace until the grace period has passed. The request
// waits for the agreement to be renewed, or for the deadline.
func (r *RequestReconciler) revokeInGrace(ctx context.Context, cr *v1alpha1.ConsumptionRequest, off *v1alpha1.ServiceOffering,
	s *requestState, why string, until time.Time,
) stepOutcome {
	if err := r.revoke(ctx, cr, false, revocationPolicy(off, cr)); err != nil {
		return revokeFailed(s, err)
	}
	g := s.status.Grant.DeepCopy()
	g.RoleBindings = nil
	deadline := metav1.NewTime(until)
	g.RetainedUntil = &deadline
	s.status.Grant = g
	msg := fmt.Sprintf("%s; access is revoked, and namespace %s is kept with its data until %s, then deleted unless ServiceAgreement %s is renewed",
		why, g.Namespace, until.UTC().Format(time.RFC3339), cr.Spec.Agreement)
	if cr.Status.Grant == nil || cr.Status.Grant.RetainedUntil == nil {
		s.tell(relatedGrant(cr, s), corev1.EventTypeWarning, "Revoked", "Revoke", "%s", msg)
	}
	return waitFor(v1alpha1.RequestRevoked, v1alpha1.ReasonGracePeriod, msg).after(until.Sub(s.now.Time)).
		with(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, v1alpha1.ReasonRevoked, why).
		with(v1alpha1.ConditionAccessVerified, metav1.ConditionFalse, v1alpha1.ReasonRevoked, "access was revoked")
}
