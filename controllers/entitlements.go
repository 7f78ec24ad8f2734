package controllers

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// requestsUnder lists, from the cache, the requests that name agr. The items
// share their maps and slices with the cache, which is not copied (a busy
// agreement would otherwise copy all its requests at each roll-up): callers
// only read them.
func requestsUnder(ctx context.Context, c client.Reader, agr *v1alpha1.ServiceAgreement) ([]v1alpha1.ConsumptionRequest, error) {
	var list v1alpha1.ConsumptionRequestList
	if err := c.List(ctx, &list, client.InNamespace(agr.Namespace), client.MatchingFields{indexRequestAgreement: agr.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// requestedItem returns the kind and name of the item a request asks for, and its quantity.
func requestedItem(cr *v1alpha1.ConsumptionRequest) (v1alpha1.ItemKind, v1alpha1.ItemName, int32) {
	switch {
	case cr.Spec.Resource != nil:
		return v1alpha1.ItemKindResource, cr.Spec.Resource.Name, 1
	case cr.Spec.Goods != nil:
		q := cr.Spec.Goods.Quantity
		if q < 1 {
			q = 1
		}
		return v1alpha1.ItemKindGoods, cr.Spec.Goods.Name, q
	case cr.Spec.Action != nil:
		return v1alpha1.ItemKindAction, cr.Spec.Action.Name, 1
	}
	return "", "", 0
}

func findResourceItem(off *v1alpha1.ServiceOffering, name v1alpha1.ItemName) *v1alpha1.ResourceItem {
	for i := range off.Spec.Resources {
		if off.Spec.Resources[i].Name == name {
			return &off.Spec.Resources[i]
		}
	}
	return nil
}

func findGoodsItem(off *v1alpha1.ServiceOffering, name v1alpha1.ItemName) *v1alpha1.GoodsItem {
	for i := range off.Spec.Goods {
		if off.Spec.Goods[i].Name == name {
			return &off.Spec.Goods[i]
		}
	}
	return nil
}

func findActionItem(off *v1alpha1.ServiceOffering, name v1alpha1.ItemName) *v1alpha1.ActionItem {
	for i := range off.Spec.Actions {
		if off.Spec.Actions[i].Name == name {
			return &off.Spec.Actions[i]
		}
	}
	return nil
}

// offers reports whether the offering has the item.
func offers(off *v1alpha1.ServiceOffering, kind v1alpha1.ItemKind, name v1alpha1.ItemName) bool {
	switch kind {
	case v1alpha1.ItemKindResource:
		return findResourceItem(off, name) != nil
	case v1alpha1.ItemKindGoods:
		return findGoodsItem(off, name) != nil
	case v1alpha1.ItemKindAction:
		return findActionItem(off, name) != nil
	}
	return false
}

// entitlement returns the limit of the agreement's entitlement for an item
// (nil: unlimited) and whether the agreement includes the item at all.
func entitlement(agr *v1alpha1.ServiceAgreement, kind v1alpha1.ItemKind, name v1alpha1.ItemName) (*int32, bool) {
	limit, _, included := entitlementTerms(agr, kind, name)
	return limit, included
}

// entitlementTerms finds the agreement's entitlement for an item: its limit
// (nil: unlimited), its period (nil: none; resources have none) and whether
// the agreement includes the item at all.
func entitlementTerms(agr *v1alpha1.ServiceAgreement, kind v1alpha1.ItemKind, name v1alpha1.ItemName) (*int32, *metav1.Duration, bool) {
	e := agr.Spec.Entitlements
	switch kind {
	case v1alpha1.ItemKindResource:
		for _, x := range e.Resources {
			if x.Name == name {
				return x.MaxGrants, nil, true
			}
		}
	case v1alpha1.ItemKindGoods:
		for _, x := range e.Goods {
			if x.Name == name {
				return x.MaxQuantity, x.Period, true
			}
		}
	case v1alpha1.ItemKindAction:
		for _, x := range e.Actions {
			if x.Name == name {
				return x.MaxRuns, x.Period, true
			}
		}
	}
	return nil, nil, false
}

// entitles reports whether the agreement includes the item.
func entitles(agr *v1alpha1.ServiceAgreement, kind v1alpha1.ItemKind, name v1alpha1.ItemName) bool {
	_, included := entitlement(agr, kind, name)
	return included
}

func hasAllocation(agr *v1alpha1.ServiceAgreement, uid string) bool {
	for _, a := range agr.Status.Allocations {
		if a.UID == uid {
			return true
		}
	}
	return false
}

// admission is the outcome of claiming an entitlement.
type admission struct {
	Admitted bool
	// Used and Limit describe the entitlement when it was exhausted.
	Used, Limit int32
}

// ledgerState is the part of an agreement's status the ledger writes: the
// allocations in flight and the record of consumption.
type ledgerState struct {
	allocations []v1alpha1.Allocation
	consumption []v1alpha1.ItemConsumption
}

// ledgerChange decides, on one read of an agreement, what its ledger
// becomes: the new state, or nil to leave it as it is. confirm=true (with
// nil) asks for the decision to be taken again on a live read before it stands.
type ledgerChange func(cur *v1alpha1.ServiceAgreement) (next *ledgerState, confirm bool)

// updateLedger applies change to agr's ledger with optimistic
// concurrency: the patch carries the agreement's resourceVersion, so two
// concurrent changes cannot both succeed. The first attempt uses agr as
// given, which may come from a cache that lags; a conflict, or a decision
// that asks to be confirmed, is retried on a live read.
func updateLedger(ctx context.Context, c client.Client, live client.Reader, agr *v1alpha1.ServiceAgreement, change ledgerChange) error {
	cur, fresh := agr, false
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if fresh {
			cur = &v1alpha1.ServiceAgreement{}
			if err := live.Get(ctx, client.ObjectKeyFromObject(agr), cur); err != nil {
				return err
			}
		}
		next, confirm := change(cur)
		wasFresh := fresh
		fresh = true
		if next == nil {
			if confirm && !wasFresh {
				return apierrors.NewConflict(v1alpha1.GroupVersion.WithResource("serviceagreements").GroupResource(), agr.Name,
					fmt.Errorf("confirming on a live read"))
			}
			return nil
		}
		patched := cur.DeepCopy()
		patched.Status.Allocations, patched.Status.Consumption = next.allocations, next.consumption
		return c.Status().Patch(ctx, patched, client.MergeFromWithOptions(cur, client.MergeFromWithOptimisticLock{}))
	})
}

// claimEntitlement claims the entitlement for a request. Unlimited grants
// need no claim; limited ones are claimed as slots (claimGrant). Goods and
// runs, limited or not, are claimed by adding an allocation to the
// agreement's ledger (updateLedger), which the record of consumption is
// made from: a claim computed from a stale cache fails with a conflict and
// is retried on a live read, so an entitlement is never over-granted,
// whatever the cache shows. Exhaustion is confirmed on a live read before it
// is reported, because it is final.
func claimEntitlement(ctx context.Context, l ledger, agr *v1alpha1.ServiceAgreement, cr *v1alpha1.ConsumptionRequest, now time.Time) (admission, error) {
	kind, name, qty := requestedItem(cr)
	limit, _ := entitlement(agr, kind, name)
	if kind == v1alpha1.ItemKindResource {
		if limit == nil {
			return admission{Admitted: true}, nil
		}
		return claimGrant(ctx, l, agr, cr, name, *limit)
	}
	var out admission
	err := updateLedger(ctx, l.c, l.live, agr, func(cur *v1alpha1.ServiceAgreement) (*ledgerState, bool) {
		if hasAllocation(cur, string(cr.UID)) {
			out = admission{Admitted: true}
			return nil, false
		}
		period := currentPeriod(cur, kind, name, now)
		if n := used(&cur.Status, kind, name, period); limit != nil && n+qty > *limit {
			out = admission{Admitted: false, Used: n, Limit: *limit}
			return nil, true
		}
		next := append(slices.Clone(cur.Status.Allocations), v1alpha1.Allocation{
			Request: cr.Name, UID: string(cr.UID), Kind: kind, Item: name, Quantity: qty, PeriodStart: period,
		})
		sort.Slice(next, func(i, j int) bool { return next[i].Request < next[j].Request })
		out = admission{Admitted: true} // stands only if the write succeeds; an error is returned otherwise
		return &ledgerState{allocations: next, consumption: cur.Status.Consumption}, false
	})
	return out, err
}

// releaseAllocations removes the allocations held by the given request UIDs.
// agr may be read from a cache that is behind a claim: finding nothing to
// release on it is confirmed on a live read.
func releaseAllocations(ctx context.Context, c client.Client, live client.Reader, agr *v1alpha1.ServiceAgreement, uids ...string) error {
	drop := make(map[string]bool, len(uids))
	for _, u := range uids {
		drop[u] = true
	}
	err := updateLedger(ctx, c, live, agr, func(cur *v1alpha1.ServiceAgreement) (*ledgerState, bool) {
		kept := make([]v1alpha1.Allocation, 0, len(cur.Status.Allocations))
		for _, a := range cur.Status.Allocations {
			if !drop[a.UID] {
				kept = append(kept, a)
			}
		}
		if len(kept) == len(cur.Status.Allocations) {
			return nil, true
		}
		return &ledgerState{allocations: kept, consumption: cur.Status.Consumption}, false
	})
	return client.IgnoreNotFound(err)
}

// releasesEntitlement reports whether a request in its current state gives its entitlement back.
func releasesEntitlement(cr *v1alpha1.ConsumptionRequest) bool {
	switch cr.Status.Phase {
	case v1alpha1.RequestDenied, v1alpha1.RequestRejected:
		return true
	case v1alpha1.RequestFailed:
		// A failed grant or delivery gives nothing, nor does an action that never
		// ran (refused parameters); an action that ran was performed, whatever its outcome.
		return cr.Spec.Action == nil || !actionStarted(cr)
	}
	return false
}

// consumed reports whether a request consumed its entitlement for good, so
// that deleting it gives nothing back: goods the consumer accepted (they are
// the consumer's now), or an action that started (its Job was created, or a
// manual action was handed to the provider). Grants are held, not consumed.
func consumed(cr *v1alpha1.ConsumptionRequest) bool {
	switch {
	case cr.Spec.Goods != nil:
		return cr.Status.AcceptedAt != nil
	case cr.Spec.Action != nil:
		return actionStarted(cr)
	}
	return false
}

// holdsAccess reports whether a request still holds anything granted under
// its agreement: a grant, or delivered goods not accepted yet.
func holdsAccess(cr *v1alpha1.ConsumptionRequest) bool {
	return (cr.Status.Grant != nil && (cr.Status.Grant.Namespace != "" || len(cr.Status.Grant.RoleBindings) > 0)) || holdsDelivery(cr)
}

// computeUsage reports, for every entitlement, how much is in use. Limited
// grants are the slots held (claims.go); goods and runs are read from the
// ledger, in the current period of a periodic entitlement; unlimited grants
// are counted from the requests.
func computeUsage(agr *v1alpha1.ServiceAgreement, requests []v1alpha1.ConsumptionRequest, held map[v1alpha1.ItemName]int32, now time.Time) []v1alpha1.EntitlementUsage {
	counted := map[v1alpha1.ItemName]int32{}
	for i := range requests {
		cr := &requests[i]
		if cr.Spec.Resource == nil || cr.Status.AdmittedAt == nil || releasesEntitlement(cr) {
			continue
		}
		counted[cr.Spec.Resource.Name]++
	}
	usage := func(kind v1alpha1.ItemKind, name v1alpha1.ItemName, limit *int32) v1alpha1.EntitlementUsage {
		u := v1alpha1.EntitlementUsage{Kind: kind, Item: name, Limit: limit}
		switch {
		case kind != v1alpha1.ItemKindResource:
			period := currentPeriod(agr, kind, name, now)
			u.Used = used(&agr.Status, kind, name, period)
			if p := entitlementPeriod(agr, kind, name); period != nil {
				u.Period, u.PeriodEnds = p.DeepCopy(), &metav1.Time{Time: period.Add(p.Duration)}
			}
		case limit != nil:
			u.Used = held[name]
		default:
			u.Used = counted[name]
		}
		return u
	}
	e := agr.Spec.Entitlements
	out := make([]v1alpha1.EntitlementUsage, 0, len(e.Resources)+len(e.Goods)+len(e.Actions))
	for _, x := range e.Resources {
		out = append(out, usage(v1alpha1.ItemKindResource, x.Name, x.MaxGrants))
	}
	for _, x := range e.Goods {
		out = append(out, usage(v1alpha1.ItemKindGoods, x.Name, x.MaxQuantity))
	}
	for _, x := range e.Actions {
		out = append(out, usage(v1alpha1.ItemKindAction, x.Name, x.MaxRuns))
	}
	return out
}

// exhaustedItems names the entitlements that are fully used.
func exhaustedItems(usage []v1alpha1.EntitlementUsage) []string {
	var out []string
	for _, u := range usage {
		if u.Limit != nil && u.Used >= *u.Limit {
			out = append(out, fmt.Sprintf("%s/%s (%d of %d)", u.Kind, u.Item, u.Used, *u.Limit))
		}
	}
	return out
}

// countRequests counts requests by phase.
func countRequests(requests []v1alpha1.ConsumptionRequest) v1alpha1.RequestCounts {
	var c v1alpha1.RequestCounts
	for i := range requests {
		c.Total++
		switch requests[i].Status.Phase {
		case "", v1alpha1.RequestPending:
			c.Pending++
		case v1alpha1.RequestAwaitingApproval:
			c.AwaitingApproval++
		case v1alpha1.RequestProvisioning:
			c.Provisioning++
		case v1alpha1.RequestFulfilled, v1alpha1.RequestDelivered, v1alpha1.RequestAccepted:
			c.Fulfilled++
		case v1alpha1.RequestDenied:
			c.Denied++
		case v1alpha1.RequestFailed:
			c.Failed++
		case v1alpha1.RequestRevoked:
			c.Revoked++
		}
	}
	return c
}
