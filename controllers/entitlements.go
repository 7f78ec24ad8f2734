package controllers

import (
	"context"
	"fmt"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// requestsUnder lists, from the cache, the requests that name agr.
func requestsUnder(ctx context.Context, c client.Reader, agr *v1alpha1.ServiceAgreement) ([]v1alpha1.ConsumptionRequest, error) {
	var list v1alpha1.ConsumptionRequestList
	if err := c.List(ctx, &list, client.InNamespace(agr.Namespace), client.MatchingFields{indexRequestAgreement: agr.Name}); err != nil {
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
	e := agr.Spec.Entitlements
	switch kind {
	case v1alpha1.ItemKindResource:
		for _, x := range e.Resources {
			if x.Name == name {
				return x.MaxGrants, true
			}
		}
	case v1alpha1.ItemKindGoods:
		for _, x := range e.Goods {
			if x.Name == name {
				return x.MaxQuantity, true
			}
		}
	case v1alpha1.ItemKindAction:
		for _, x := range e.Actions {
			if x.Name == name {
				return x.MaxRuns, true
			}
		}
	}
	return nil, false
}

// allocated sums the quantity allocated to an item in the agreement's ledger.
func allocated(agr *v1alpha1.ServiceAgreement, kind v1alpha1.ItemKind, name v1alpha1.ItemName) int32 {
	var n int32
	for _, a := range agr.Status.Allocations {
		if a.Kind == kind && a.Item == name {
			n += a.Quantity
		}
	}
	return n
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

// admit claims the entitlement for a request. Unlimited entitlements need no
// claim. Limited ones are claimed by adding an allocation to the agreement's
// ledger with a patch that carries the agreement's resourceVersion: two
// concurrent claims cannot both succeed, and a claim computed from a stale
// cache fails with a conflict and is retried on a live read. So an
// entitlement is never over-granted, whatever the cache shows. Exhaustion is
// confirmed on a live read before it is reported, because it is final.
func admit(ctx context.Context, c client.Client, live client.Reader, agr *v1alpha1.ServiceAgreement, cr *v1alpha1.ConsumptionRequest) (admission, error) {
	kind, name, qty := requestedItem(cr)
	limit, _ := entitlement(agr, kind, name)
	if limit == nil {
		return admission{Admitted: true}, nil
	}
	var out admission
	cur := agr
	fresh := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if fresh {
			cur = &v1alpha1.ServiceAgreement{}
			if err := live.Get(ctx, client.ObjectKeyFromObject(agr), cur); err != nil {
				return err
			}
		}
		if hasAllocation(cur, string(cr.UID)) {
			out = admission{Admitted: true}
			return nil
		}
		used := allocated(cur, kind, name)
		if used+qty > *limit {
			if !fresh {
				// The cache may be behind a release: confirm on a live read.
				fresh = true
				return apierrors.NewConflict(v1alpha1.GroupVersion.WithResource("serviceagreements").GroupResource(), agr.Name,
					fmt.Errorf("confirming exhaustion"))
			}
			out = admission{Admitted: false, Used: used, Limit: *limit}
			return nil
		}
		next := cur.DeepCopy()
		next.Status.Allocations = append(next.Status.Allocations, v1alpha1.Allocation{
			Request: cr.Name, UID: string(cr.UID), Kind: kind, Item: name, Quantity: qty,
		})
		sort.Slice(next.Status.Allocations, func(i, j int) bool {
			return next.Status.Allocations[i].Request < next.Status.Allocations[j].Request
		})
		err := c.Status().Patch(ctx, next, client.MergeFromWithOptions(cur, client.MergeFromWithOptimisticLock{}))
		fresh = true
		if err == nil {
			out = admission{Admitted: true}
		}
		return err
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
	cur := agr
	fresh := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if fresh {
			cur = &v1alpha1.ServiceAgreement{}
			if err := live.Get(ctx, client.ObjectKeyFromObject(agr), cur); err != nil {
				return err
			}
		}
		wasFresh := fresh
		fresh = true
		kept := make([]v1alpha1.Allocation, 0, len(cur.Status.Allocations))
		for _, a := range cur.Status.Allocations {
			if !drop[a.UID] {
				kept = append(kept, a)
			}
		}
		if len(kept) == len(cur.Status.Allocations) {
			if !wasFresh {
				return apierrors.NewConflict(v1alpha1.GroupVersion.WithResource("serviceagreements").GroupResource(), agr.Name,
					fmt.Errorf("confirming there is nothing to release"))
			}
			return nil
		}
		next := cur.DeepCopy()
		next.Status.Allocations = kept
		return c.Status().Patch(ctx, next, client.MergeFromWithOptions(cur, client.MergeFromWithOptimisticLock{}))
	})
	return client.IgnoreNotFound(err)
}

// releasesEntitlement reports whether a request in its current state gives its entitlement back.
func releasesEntitlement(cr *v1alpha1.ConsumptionRequest) bool {
	switch cr.Status.Phase {
	case v1alpha1.RequestDenied, v1alpha1.RequestRejected:
		return true
	case v1alpha1.RequestFailed:
		// A failed grant or delivery gives nothing; a failed action was still performed.
		return cr.Spec.Action == nil
	}
	return false
}

// holdsAccess reports whether a request still holds anything granted under
// its agreement: a grant, or delivered goods not accepted yet.
func holdsAccess(cr *v1alpha1.ConsumptionRequest) bool {
	return (cr.Status.Grant != nil && (cr.Status.Grant.Namespace != "" || len(cr.Status.Grant.RoleBindings) > 0)) || holdsDelivery(cr)
}

// computeUsage reports, for every entitlement, how much is in use. Limited
// entitlements are read from the allocation ledger, which admission enforces;
// unlimited ones are counted from the requests.
func computeUsage(agr *v1alpha1.ServiceAgreement, requests []v1alpha1.ConsumptionRequest) []v1alpha1.EntitlementUsage {
	counted := map[string]int32{}
	for i := range requests {
		cr := &requests[i]
		if cr.Status.AdmittedAt == nil || releasesEntitlement(cr) {
			continue
		}
		kind, name, qty := requestedItem(cr)
		counted[string(kind)+"/"+string(name)] += qty
	}
	usage := func(kind v1alpha1.ItemKind, name v1alpha1.ItemName, limit *int32) v1alpha1.EntitlementUsage {
		u := v1alpha1.EntitlementUsage{Kind: kind, Item: name, Limit: limit}
		if limit != nil {
			u.Used = allocated(agr, kind, name)
		} else {
			u.Used = counted[string(kind)+"/"+string(name)]
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
