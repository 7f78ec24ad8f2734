package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Admission: a request is checked against its agreement (it exists and is in
// force, includes the item, which the offering has, and has entitlement
// left) and claims its entitlement. A refused request is Denied with a reason
// a person can act on, and nothing is created for it.

// checkAgreement reads the request's agreement and offering into s. While
// the agreement is missing or not in force, a request that was admitted has
// its access revoked and one that was not waits.
func (r *RequestReconciler) checkAgreement(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState) stepOutcome {
	var agr v1alpha1.ServiceAgreement
	if err := r.Get(ctx, types.NamespacedName{Namespace: cr.Namespace, Name: string(cr.Spec.Agreement)}, &agr); err != nil {
		if !apierrors.IsNotFound(err) {
			return errored(err)
		}
		if holdsAccess(cr) || s.status.AdmittedAt != nil || s.status.Phase == v1alpha1.RequestRevoked {
			// The entitlement went with the agreement: a new agreement of the same name admits the request afresh.
			s.status.AdmittedAt = nil
			return r.revokeAndReport(ctx, cr, r.offeringFor(ctx, cr), s, true,
				fmt.Sprintf("ServiceAgreement %s no longer exists", cr.Spec.Agreement))
		}
		return waitFor(v1alpha1.RequestPending, v1alpha1.ReasonAgreementNotFound,
			fmt.Sprintf("ServiceAgreement %s does not exist in namespace %s; the request waits for it", cr.Spec.Agreement, cr.Namespace))
	}
	s.status.Offering = string(agr.Spec.Offering)
	s.agreement = &agr
	var off v1alpha1.ServiceOffering
	offErr := r.Get(ctx, types.NamespacedName{Name: string(agr.Spec.Offering)}, &off)
	if offErr != nil && !apierrors.IsNotFound(offErr) {
		return errored(offErr)
	}
	var pinned stepOutcome
	if offErr == nil {
		s.offering = &off
		if pinned = r.followRevision(ctx, s); pinned.kind == transient {
			return pinned
		}
	}
	if active, final, why := agreementInForce(&agr, r.Options.Clock.Now()); !active || offErr != nil {
		if offErr != nil {
			why = fmt.Sprintf("ServiceOffering %s does not exist", agr.Spec.Offering)
		}
		if s.status.AdmittedAt != nil {
			return r.revokeAndReport(ctx, cr, s.offering, s, final, why)
		}
		return waitFor(v1alpha1.RequestPending, v1alpha1.ReasonAgreementNotActive, why+"; the request waits until it is Active")
	}
	return pinned
}

// followRevision puts into s the offering the request is fulfilled from:
// the live offering, or the revision its agreement is pinned to
// (effectiveOffering). A pin to a revision that does not exist stalls the
// request; what it was granted or delivered is kept, and is revoked from
// the live offering's spec should the agreement end meanwhile.
func (r *RequestReconciler) followRevision(ctx context.Context, s *requestState) stepOutcome {
	eff, n, reason, msg, err := effectiveOffering(ctx, r.Client, s.agreement, s.offering)
	switch {
	case err != nil:
		return errored(err)
	case reason != "" && s.status.AdmittedAt != nil:
		return stall("", reason, msg+"; what the request holds is kept as it is")
	case reason != "":
		return stall(v1alpha1.RequestPending, reason, msg+"; the request waits")
	}
	s.offering, s.revision = eff, n
	return stepOutcome{}
}

// admit checks a request that was not admitted yet against its agreement and
// offering, and claims the entitlement.
func (r *RequestReconciler) admit(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState) stepOutcome {
	if s.status.AdmittedAt != nil {
		return stepOutcome{}
	}
	if reason, msg := admissionRefusal(cr, s.agreement, s.offering); reason != "" {
		return r.deny(ctx, cr, s, reason, msg)
	}
	res, err := claimEntitlement(ctx, r.Options.ledger(r.Client, r.APIReader), s.agreement, cr, s.now.Time)
	if err != nil {
		return errored(err)
	}
	if !res.Admitted {
		kind, name, _ := requestedItem(cr)
		return r.deny(ctx, cr, s, v1alpha1.ReasonEntitlementExhausted,
			fmt.Sprintf("the entitlement for %s %s is used up (%d of %d in use); release one or ask the provider for more",
				kind, name, res.Used, res.Limit))
	}
	s.status.AdmittedAt = &s.now
	return stepOutcome{}
}

// admissionRefusal returns why the agreement and offering refuse the
// request, before any entitlement is counted: reason "" admits it so far.
func admissionRefusal(cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement, off *v1alpha1.ServiceOffering) (reason, msg string) {
	kind, name, _ := requestedItem(cr)
	// "" for any request but a resource one that asks for a namespace name.
	nameRefusal := requestedNameRefusal(cr, findResourceItem(off, name))
	planMsg := planRefusal(cr, agr, findResourceItem(off, name))
	switch {
	case !entitles(agr, kind, name):
		return v1alpha1.ReasonItemNotEntitled, fmt.Sprintf("ServiceAgreement %s does not include %s %s", agr.Name, kind, name)
	case !offers(off, kind, name):
		return v1alpha1.ReasonItemNotOffered, fmt.Sprintf("ServiceOffering %s has no %s item named %s", off.Name, kind, name)
	case nameRefusal != "":
		return v1alpha1.ReasonRequestedNameNotAllowed, nameRefusal
	case planMsg != "":
		return v1alpha1.ReasonPlanNotAllowed, planMsg
	}
	return "", ""
}

// deny refuses a request at admission. Nothing was created for it.
func (r *RequestReconciler) deny(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState, reason, msg string) stepOutcome {
	r.Recorder.Eventf(cr, nil, corev1.EventTypeWarning, "Denied", "Admit", "%s", msg)
	o := r.finishDenied(ctx, cr, s, reason, msg)
	return o.with(v1alpha1.ConditionDenied, metav1.ConditionTrue, reason, msg)
}

// finishDenied releases whatever a denied request held and reports it.
func (r *RequestReconciler) finishDenied(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState, reason, msg string) stepOutcome {
	// Goods delivered before a provider denied the request are taken back.
	if _, err := r.removeCopies(ctx, cr, nil); err != nil {
		return errored(err)
	}
	s.status.Delivered = nil
	if err := r.releaseEntitlement(ctx, cr); err != nil {
		return errored(err)
	}
	return stall(v1alpha1.RequestDenied, reason, msg).with(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, reason, "the request was denied")
}
