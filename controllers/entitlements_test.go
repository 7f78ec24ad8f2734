package controllers

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// blindCache is a cache that has seen no claim Lease yet, the worst a
// lagging cache can do; everything else is read and written live.
type blindCache struct{ client.Client }

func (b blindCache) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if _, ok := list.(*coordinationv1.LeaseList); ok {
		return nil
	}
	return b.Client.List(ctx, list, opts...)
}

// claimRequests creates n real requests (so that their grants are not
// released as stale) under another agreement name, so that the controller
// leaves them alone.
func claimRequests(t *testing.T, f *fixture, n int) []*v1alpha1.ConsumptionRequest {
	t.Helper()
	out := make([]*v1alpha1.ConsumptionRequest, n)
	for i := range out {
		out[i] = f.resourceRequest(fmt.Sprintf("claimer-%d", i))
		out[i].Spec.Agreement = "not-this-one"
		mustCreate(t, out[i])
	}
	return out
}

// testLedger is the test manager's ledger, read through c.
func testLedger(c client.Client) ledger {
	return ledger{c: c, live: admin, ns: operatorNamespace}
}

func grantSlotsOf(t *testing.T, f *fixture) []coordinationv1.Lease {
	t.Helper()
	get(t, f.agreement)
	held, err := heldSlots(testCtx, admin, operatorNamespace, claimKey(f.agreement, "space"), true)
	if err != nil {
		t.Fatal(err)
	}
	return held
}

// TestAdmissionNeverOverGrantsOnStaleReads claims grants with a cache that
// shows none held: the slot's name refuses the second holder, exhaustion is
// confirmed live, and re-admitting a request that already holds a slot is
// idempotent.
func TestAdmissionNeverOverGrantsOnStaleReads(t *testing.T) {
	f := newFixture(t, withMaxGrants(1))
	get(t, f.agreement)
	l := testLedger(blindCache{admin})
	reqs := claimRequests(t, f, 2)
	first, second := reqs[0], reqs[1]

	res, err := claimEntitlement(testCtx, l, f.agreement, first, time.Now())
	if err != nil || !res.Admitted {
		t.Fatalf("first claim: %+v %v", res, err)
	}
	res, err = claimEntitlement(testCtx, l, f.agreement, second, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Admitted || res.Used != 1 || res.Limit != 1 {
		t.Fatalf("second claim on a stale read: %+v, want refused with 1 of 1 used", res)
	}
	res, err = claimEntitlement(testCtx, l, f.agreement, first, time.Now())
	if err != nil || !res.Admitted {
		t.Fatalf("re-admitting the holder: %+v %v", res, err)
	}
	if held := grantSlotsOf(t, f); len(held) != 1 || holder(&held[0]) != string(first.UID) {
		t.Fatalf("slots %+v, want one held by the first request", held)
	}

	// Releasing on a stale read works too, and frees the grant for the other request.
	if err := releaseGrants(testCtx, l, string(first.UID)); err != nil {
		t.Fatal(err)
	}
	res, err = claimEntitlement(testCtx, l, f.agreement, second, time.Now())
	if err != nil || !res.Admitted {
		t.Fatalf("claim after release: %+v %v", res, err)
	}
}

// TestConcurrentClaimsNeverOverGrant races many claims, each on a cache that
// shows nothing held, for fewer slots: exactly as many are admitted as there
// are slots, and the rest are refused.
func TestConcurrentClaimsNeverOverGrant(t *testing.T) {
	const slots, claimers = 5, 20
	f := newFixture(t, withMaxGrants(slots))
	get(t, f.agreement)
	reqs := claimRequests(t, f, claimers)
	var admitted, refused atomic.Int32
	var wg sync.WaitGroup
	for _, cr := range reqs {
		wg.Go(func() {
			for {
				res, err := claimEntitlement(testCtx, testLedger(blindCache{admin}), f.agreement, cr, time.Now())
				if apierrors.IsConflict(err) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if res.Admitted {
					admitted.Add(1)
				} else {
					refused.Add(1)
				}
				return
			}
		})
	}
	wg.Wait()
	if admitted.Load() != slots || refused.Load() != claimers-slots {
		t.Fatalf("%d admitted, %d refused; want %d and %d", admitted.Load(), refused.Load(), slots, claimers-slots)
	}
	if held := grantSlotsOf(t, f); len(held) != slots {
		t.Fatalf("%d slots held, want %d", len(held), slots)
	}
}

func TestComputeUsage(t *testing.T) {
	agr := &v1alpha1.ServiceAgreement{
		Spec: v1alpha1.ServiceAgreementSpec{Entitlements: v1alpha1.Entitlements{
			Resources: []v1alpha1.ResourceEntitlement{{Name: "limited", MaxGrants: ptr.To[int32](2)}, {Name: "free"}},
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
	usage := computeUsage(agr, requests, map[v1alpha1.ItemName]int32{"limited": 2}, time.Now())
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
