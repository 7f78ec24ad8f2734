package controllers

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// agreementStatus computes an agreement's status, the one place its phase and
// conditions are written: each condition from its own setter below, from the
// lifecycle (agreement_lifecycle.go), the usage and the service-level
// roll-up. A Terminating agreement reports only its phase, Active, Ready and
// its counts while its requests' grants are revoked.
func agreementStatus(agr *v1alpha1.ServiceAgreement, offering *v1alpha1.ServiceOffering, requests []v1alpha1.ConsumptionRequest,
	held map[v1alpha1.ItemName]int32, lc lifecycle, now time.Time,
) (*v1alpha1.ServiceAgreementStatus, slRollup) {
	status := agr.Status.DeepCopy()
	status.Phase = lc.Phase
	c := agreementConditions{conds: &status.Conditions, gen: agr.Generation, now: metav1.NewTime(now)}
	c.setActive(lc)
	ready := c.setReady(agr, offering, lc)
	status.Requests = countRequests(requests)
	status.Goods = countGoods(requests)
	status.Actions = countActions(requests)
	if lc.Phase == v1alpha1.AgreementTerminating {
		status.Conditions = keepConditions(status.Conditions, v1alpha1.ConditionReady, v1alpha1.ConditionActive, v1alpha1.ConditionEntitlementsExhausted)
		return status, slRollup{}
	}
	recordEnd(status, agr, now)
	c.setExpiringSoon(evaluateNotice(agr, now))
	status.Usage = computeUsage(agr, requests, held, now)
	c.setEntitlementsExhausted(exhaustedItems(status.Usage))
	sl := rollupServiceLevels(agr, requests, now)
	status.ServiceLevels = sl.levels
	c.setServiceLevelsMet(sl)
	// Expired, or Active with entitlements the offering does not have: a person must act.
	setStalled(c.conds, lc.Phase == v1alpha1.AgreementExpired || (lc.Phase == v1alpha1.AgreementActive && !ready), c.gen, c.now)
	status.Conditions = keepConditions(status.Conditions, v1alpha1.ConditionReady, v1alpha1.ConditionActive,
		v1alpha1.ConditionEntitlementsExhausted, v1alpha1.ConditionServiceLevelsMet, v1alpha1.ConditionExpiringSoon, v1alpha1.ConditionStalled)
	status.UsageSummary = usageSummary(status.Usage)
	status.ObservedGeneration = agr.Generation
	return status, sl
}

// agreementConditions holds an agreement's conditions while its status is computed.
type agreementConditions struct {
	conds *[]metav1.Condition
	gen   int64
	now   metav1.Time
}

func (c agreementConditions) set(typ string, status metav1.ConditionStatus, reason, msg string) {
	setCondition(c.conds, typ, status, reason, msg, c.gen, c.now)
}

// setActive: the agreement is in force.
func (c agreementConditions) setActive(lc lifecycle) {
	c.set(v1alpha1.ConditionActive, boolStatus(lc.Phase == v1alpha1.AgreementActive), lc.Reason, lc.Message)
}

// setReady: the agreement is in force and every entitlement names an item
// of the offering. It returns Ready's status.
func (c agreementConditions) setReady(agr *v1alpha1.ServiceAgreement, offering *v1alpha1.ServiceOffering, lc lifecycle) bool {
	reason, msg := lc.Reason, lc.Message
	ready := lc.Phase == v1alpha1.AgreementActive
	if ready && offering != nil {
		if unknown := unknownEntitlements(agr, offering); unknown != "" {
			ready, reason, msg = false, v1alpha1.ReasonEntitlementUnknownItem, unknown
		}
	}
	c.set(v1alpha1.ConditionReady, boolStatus(ready), reason, msg)
	return ready
}

// setEntitlementsExhausted: some entitlements are fully used.
func (c agreementConditions) setEntitlementsExhausted(exhausted []string) {
	if len(exhausted) > 0 {
		c.set(v1alpha1.ConditionEntitlementsExhausted, metav1.ConditionTrue, v1alpha1.ReasonExhausted,
			fmt.Sprintf("fully used: %v; further requests for them are denied", exhausted))
		return
	}
	c.set(v1alpha1.ConditionEntitlementsExhausted, metav1.ConditionFalse, v1alpha1.ReasonAvailable, "every entitlement has room left")
}

// setServiceLevelsMet: the agreement meets its service-level objective.
// Absent while the agreement has no service levels.
func (c agreementConditions) setServiceLevelsMet(sl slRollup) {
	if sl.levels == nil {
		meta.RemoveStatusCondition(c.conds, v1alpha1.ConditionServiceLevelsMet)
		return
	}
	c.set(v1alpha1.ConditionServiceLevelsMet, sl.status, sl.reason, sl.message)
}
