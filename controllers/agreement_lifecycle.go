package controllers

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// An agreement's lifecycle: whether it is in force at a given time. The
// agreement controller reports it (evaluateLifecycle); the request controller
// acts on it (agreementInForce). Both read the agreement's own terms through
// agreementTerms, so the rule is written once.

// agreementTerms is the phase the agreement's own terms give it at now:
// Terminating (being deleted), Expired, Suspended, Pending (not valid yet),
// or "" when they put it in force.
func agreementTerms(agr *v1alpha1.ServiceAgreement, now time.Time) v1alpha1.AgreementPhase {
	spec := agr.Spec
	switch {
	case !agr.DeletionTimestamp.IsZero():
		return v1alpha1.AgreementTerminating
	case ended(agr, now):
		return v1alpha1.AgreementExpired
	case spec.Suspended:
		return v1alpha1.AgreementSuspended
	case spec.ValidFrom != nil && now.Before(spec.ValidFrom.Time):
		return v1alpha1.AgreementPending
	}
	return ""
}

// ended reports whether the agreement's current end (agreementEnd) has passed.
func ended(agr *v1alpha1.ServiceAgreement, now time.Time) bool {
	end, _ := agreementEnd(agr, now)
	return end != nil && !now.Before(*end)
}

// endText is the agreement's current end as RFC 3339, "" when open-ended.
func endText(agr *v1alpha1.ServiceAgreement, now time.Time) string {
	if end, _ := agreementEnd(agr, now); end != nil {
		return end.UTC().Format(time.RFC3339)
	}
	return ""
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
	// The next boundary is the current end: an expiry, or an automatic renewal.
	var next time.Duration
	if end, _ := agreementEnd(agr, now); end != nil {
		next = end.Sub(now)
	}
	switch agreementTerms(agr, now) {
	case v1alpha1.AgreementTerminating:
		return lifecycle{Phase: v1alpha1.AgreementTerminating, Reason: v1alpha1.ReasonTerminating, Message: "the agreement is being deleted"}
	case v1alpha1.AgreementExpired:
		return lifecycle{Phase: v1alpha1.AgreementExpired, Reason: v1alpha1.ReasonExpired,
			Message: fmt.Sprintf("the agreement expired at %s; extend spec.validUntil to restore it", endText(agr, now))}
	case v1alpha1.AgreementSuspended:
		return lifecycle{Phase: v1alpha1.AgreementSuspended, Reason: v1alpha1.ReasonSuspended,
			Message: "spec.suspended is true: access is revoked and new requests wait", RequeueAfter: next}
	case v1alpha1.AgreementPending:
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
	if end := endText(agr, now); end != "" {
		msg += " until " + end
	}
	return lifecycle{Phase: v1alpha1.AgreementActive, Reason: v1alpha1.ReasonActive, Message: msg, RequeueAfter: next}
}

// agreementInForce reports whether the agreement is Active now, and if not,
// whether the end is final (expired or being deleted: everything is revoked)
// or temporary (suspended or pending: namespaces are kept), and why. The
// terms are read as well as the status, so that a suspension takes effect
// even before the agreement controller has reported it.
func agreementInForce(agr *v1alpha1.ServiceAgreement, now time.Time) (active, final bool, why string) {
	name := agr.Name
	switch agreementTerms(agr, now) {
	case v1alpha1.AgreementTerminating:
		return false, true, fmt.Sprintf("ServiceAgreement %s is being deleted", name)
	case v1alpha1.AgreementExpired:
		return false, true, fmt.Sprintf("ServiceAgreement %s expired at %s", name, endText(agr, now))
	case v1alpha1.AgreementSuspended:
		return false, false, fmt.Sprintf("ServiceAgreement %s is suspended", name)
	case v1alpha1.AgreementPending:
		return false, false, fmt.Sprintf("ServiceAgreement %s is not valid before %s", name, agr.Spec.ValidFrom.UTC().Format(time.RFC3339))
	}
	if phase := agr.Status.Phase; phase != v1alpha1.AgreementActive {
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
