package controllers

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

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

func TestComputeUsage(t *testing.T) {
	agr := &v1alpha1.ServiceAgreement{
		Spec: v1alpha1.ServiceAgreementSpec{Entitlements: v1alpha1.Entitlements{
			Resources: []v1alpha1.ResourceEntitlement{{Name: "limited", MaxGrants: ptr.To[int32](2)}, {Name: "free"}},
		}},
		Status: v1alpha1.ServiceAgreementStatus{Allocations: []v1alpha1.Allocation{
			{Request: "a", UID: "1", Kind: v1alpha1.ItemKindResource, Item: "limited", Quantity: 1},
			{Request: "b", UID: "2", Kind: v1alpha1.ItemKindResource, Item: "limited", Quantity: 1},
		}},
	}
	admitted := &metav1.Time{}
	req := func(item string, phase v1alpha1.RequestPhase) v1alpha1.ConsumptionRequest {
		return v1alpha1.ConsumptionRequest{
			Spec:   v1alpha1.ConsumptionRequestSpec{Resource: &v1alpha1.ResourceRequest{Name: v1alpha1.ItemName(item)}},
			Status: v1alpha1.ConsumptionRequestStatus{Phase: phase, AdmittedAt: admitted},
		}
	}
	requests := []v1alpha1.ConsumptionRequest{
		req("free", v1alpha1.RequestFulfilled), req("free", v1alpha1.RequestRevoked),
		req("free", v1alpha1.RequestDenied), req("free", v1alpha1.RequestFailed),
		{Spec: v1alpha1.ConsumptionRequestSpec{Resource: &v1alpha1.ResourceRequest{Name: "free"}}}, // not admitted
	}
	usage := computeUsage(agr, requests)
	if len(usage) != 2 || usage[0].Used != 2 || *usage[0].Limit != 2 || usage[1].Used != 2 || usage[1].Limit != nil {
		t.Fatalf("usage %+v", usage)
	}
	if ex := exhaustedItems(usage); len(ex) != 1 || !strings.Contains(ex[0], "limited (2 of 2)") {
		t.Errorf("exhausted %v", ex)
	}
	counts := countRequests(requests)
	if counts.Total != 5 || counts.Fulfilled != 1 || counts.Revoked != 1 || counts.Denied != 1 || counts.Failed != 1 || counts.Pending != 1 {
		t.Errorf("counts %+v", counts)
	}
}
