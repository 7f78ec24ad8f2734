package controllers

import (
	"testing"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// TestAdmissionNeverOverGrantsOnStaleReads calls admit with an agreement read
// before another request claimed the last grant, as a lagging cache would
// return it: the claim must fail on the resourceVersion, be retried on a live
// read, and be refused. Re-admitting a request that already holds a claim is
// idempotent.
func TestAdmissionNeverOverGrantsOnStaleReads(t *testing.T) {
	f := newFixture(t, withMaxGrants(1))
	get(t, f.agreement)
	stale := f.agreement.DeepCopy()

	// Real requests (so that the allocations are not collected as stale), under
	// another agreement name so that the controller leaves them alone.
	newReq := func(name string) *v1alpha1.ConsumptionRequest {
		cr := f.resourceRequest(name)
		cr.Spec.Agreement = "not-this-one"
		mustCreate(t, cr)
		return cr
	}
	first, second := newReq("first"), newReq("second")

	res, err := claimEntitlement(testCtx, admin, admin, stale, first)
	if err != nil || !res.Admitted {
		t.Fatalf("first claim: %+v %v", res, err)
	}
	res, err = claimEntitlement(testCtx, admin, admin, stale, second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Admitted || res.Used != 1 || res.Limit != 1 {
		t.Fatalf("second claim on a stale read: %+v, want refused with 1 of 1 used", res)
	}
	res, err = claimEntitlement(testCtx, admin, admin, stale, first)
	if err != nil || !res.Admitted {
		t.Fatalf("re-admitting the holder: %+v %v", res, err)
	}
	get(t, f.agreement)
	if n := len(f.agreement.Status.Allocations); n != 1 {
		t.Fatalf("%d allocations, want 1: %+v", n, f.agreement.Status.Allocations)
	}

	// Releasing on a stale read works too, and frees the grant for the other request.
	if err := releaseAllocations(testCtx, admin, admin, stale, string(first.UID)); err != nil {
		t.Fatal(err)
	}
	res, err = claimEntitlement(testCtx, admin, admin, stale, second)
	if err != nil || !res.Admitted {
		t.Fatalf("claim after release: %+v %v", res, err)
	}
}
