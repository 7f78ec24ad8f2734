package controllers

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// setOfferingConditions writes an offering's conditions, the one place they
// are written: Ready from the validation's reason and message, Stalled when
// it is not Ready, since every reason an offering is not Ready needs a
// person (a missing or forbidden role, namespace or source).
func setOfferingConditions(off *v1alpha1.ServiceOffering, status *v1alpha1.ServiceOfferingStatus, reason, msg string, now metav1.Time) {
	valid := reason == v1alpha1.ReasonValid
	setCondition(&status.Conditions, v1alpha1.ConditionReady, boolStatus(valid), reason, msg, off.Generation, now)
	setStalled(&status.Conditions, !valid, off.Generation, now)
	status.Conditions = keepConditions(status.Conditions, v1alpha1.ConditionReady, v1alpha1.ConditionStalled)
	status.ObservedGeneration = off.Generation
}

// rollup counts the offering's agreements, active consumers and open
// requests, and rolls up its service levels.
func (r *OfferingReconciler) rollup(ctx context.Context, off *v1alpha1.ServiceOffering, status *v1alpha1.ServiceOfferingStatus) error {
	// Read only: the items share their contents with the cache (no copy).
	var agreements v1alpha1.ServiceAgreementList
	if err := r.List(ctx, &agreements, client.MatchingFields{indexAgreementOffering: off.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	var requests v1alpha1.ConsumptionRequestList
	if err := r.List(ctx, &requests, client.MatchingFields{indexRequestOffering: off.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	status.Agreements = int32(len(agreements.Items))
	status.Revisions = revisionUsage(agreements.Items, status.LatestRevision)
	status.ServiceLevels = rollupOfferingServiceLevels(agreements.Items)
	status.ActiveConsumers = 0
	for i := range agreements.Items {
		if agreements.Items[i].Status.Phase == v1alpha1.AgreementActive {
			status.ActiveConsumers++
		}
	}
	status.OpenRequests = 0
	for i := range requests.Items {
		if isOpen(requests.Items[i].Status.Phase) {
			status.OpenRequests++
		}
	}
	return nil
}

// isOpen reports whether a request in phase p still waits for something.
func isOpen(p v1alpha1.RequestPhase) bool {
	switch p {
	case "", v1alpha1.RequestPending, v1alpha1.RequestAwaitingApproval, v1alpha1.RequestProvisioning, v1alpha1.RequestDelivered:
		return true
	}
	return false
}
