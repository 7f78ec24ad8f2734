package controllers

import (
	"fmt"
	"math"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Renewal and notice: an agreement ends at spec.validUntil, moved on by
// spec.autoRenew each time it is reached. The current end is computed from
// the spec and the clock alone, never from a record, so that the agreement
// and request controllers agree on it at every instant: an automatic renewal
// happens at the very moment of the end, with no window in which the
// agreement is Expired and access is revoked. Renewing by hand is a change of
// spec.validUntil, which the grant steps see as no change at all.

// agreementEnd is when the agreement ends as seen at now, and how many
// automatic renewals moved it past spec.validUntil. It is nil when the
// agreement is open-ended.
func agreementEnd(agr *v1alpha1.ServiceAgreement, now time.Time) (*time.Time, int32) {
	spec := agr.Spec
	if spec.ValidUntil == nil {
		return nil, 0
	}
	end := spec.ValidUntil.Time
	if spec.AutoRenew == nil || spec.AutoRenew.Duration <= 0 || now.Before(end) {
		return &end, 0
	}
	period := spec.AutoRenew.Duration
	// The end reached at now is renewed: the first end after now. A gap
	// longer than a time.Duration holds (centuries) takes more than one
	// round; the count saturates at what int32 holds.
	var periods int64
	for !now.Before(end) {
		elapsed := now.Sub(end)
		whole := elapsed / period
		end = end.Add(whole * period).Add(period)
		periods += int64(whole) + 1
	}
	return &end, int32(min(periods, math.MaxInt32))
}

// notice is an agreement's ExpiringSoon verdict at a time.
type notice struct {
	// set is false when the agreement declares no renewBefore: the condition is absent.
	set             bool
	due             bool
	reason, message string
	// opensIn is the time until the notice window opens; zero when it is
	// open or there is none.
	opensIn time.Duration
}

// evaluateNotice says whether an agreement is within its notice period at now.
func evaluateNotice(agr *v1alpha1.ServiceAgreement, now time.Time) notice {
	end, _ := agreementEnd(agr, now)
	spec := agr.Spec
	if spec.RenewBefore == nil || end == nil {
		return notice{}
	}
	at := end.UTC().Format(time.RFC3339)
	opens := end.Add(-spec.RenewBefore.Duration)
	switch {
	case spec.AutoRenew != nil:
		return notice{set: true, reason: v1alpha1.ReasonAutoRenews,
			message: fmt.Sprintf("the agreement renews itself for %s at %s (spec.autoRenew)", spec.AutoRenew.Duration, at)}
	case !now.Before(*end):
		return notice{set: true, reason: v1alpha1.ReasonExpired,
			message: fmt.Sprintf("the agreement expired at %s; extend spec.validUntil to restore it", at)}
	case !now.Before(opens):
		return notice{set: true, due: true, reason: v1alpha1.ReasonRenewalDue,
			message: fmt.Sprintf("the agreement expires at %s (in %s); to renew it, extend spec.validUntil or set spec.autoRenew: access continues without interruption",
				at, end.Sub(now).Round(time.Minute))}
	}
	return notice{set: true, reason: v1alpha1.ReasonNotDue, opensIn: opens.Sub(now),
		message: fmt.Sprintf("the agreement expires at %s; the renewal notice opens at %s", at, opens.UTC().Format(time.RFC3339))}
}

// setExpiringSoon: the agreement ends within its notice period. Absent
// while the agreement declares no renewBefore.
func (c agreementConditions) setExpiringSoon(n notice) {
	if !n.set {
		meta.RemoveStatusCondition(c.conds, v1alpha1.ConditionExpiringSoon)
		return
	}
	c.set(v1alpha1.ConditionExpiringSoon, boolStatus(n.due), n.reason, n.message)
}

// recordEnd writes the agreement's current end and renewal count into its status.
func recordEnd(status *v1alpha1.ServiceAgreementStatus, agr *v1alpha1.ServiceAgreement, now time.Time) {
	end, renewals := agreementEnd(agr, now)
	status.ValidUntil, status.Renewals = nil, renewals
	if end != nil {
		t := metav1.NewTime(*end)
		status.ValidUntil = &t
	}
}
