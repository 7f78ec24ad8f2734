package controllers

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// The relationship's record: what was consumed of each goods and action
// item, kept in the agreement's status.consumption independent of the
// request objects. A goods or action request claims its share as an
// allocation (status.allocations) at admission; once it settles (goods
// accepted, action started, or the request gone without giving its share
// back) the agreement controller moves the allocation into the item's
// counters and keeps the request among the most recent. The record stays
// small whatever the number of requests: counters per item and period, a
// bounded history of periods and of requests.

const (
	// recentRequestsKept is how many of the most recent requests each item's record keeps.
	recentRequestsKept = 10
	// previousPeriodsKept is how many ended periods each item's record keeps.
	previousPeriodsKept = 12
)

// entitlementPeriod returns the period of a goods or action entitlement, or nil.
func entitlementPeriod(agr *v1alpha1.ServiceAgreement, kind v1alpha1.ItemKind, name v1alpha1.ItemName) *metav1.Duration {
	_, period, _ := entitlementTerms(agr, kind, name)
	return period
}

// currentPeriod returns the start of the period of an entitlement that
// holds at, or nil when the entitlement has no period. Periods follow each
// other from the agreement's validFrom, or its creation.
func currentPeriod(agr *v1alpha1.ServiceAgreement, kind v1alpha1.ItemKind, name v1alpha1.ItemName, at time.Time) *metav1.Time {
	p := entitlementPeriod(agr, kind, name)
	if p == nil || p.Duration <= 0 {
		return nil
	}
	anchor := agr.CreationTimestamp.Time
	if agr.Spec.ValidFrom != nil {
		anchor = agr.Spec.ValidFrom.Time
	}
	start := anchor
	if at.After(anchor) {
		start = anchor.Add(at.Sub(anchor) / p.Duration * p.Duration)
	}
	return &metav1.Time{Time: start.UTC().Truncate(time.Second)}
}

func samePeriod(a, b *metav1.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(b)
}

func findConsumption(rec []v1alpha1.ItemConsumption, kind v1alpha1.ItemKind, name v1alpha1.ItemName) int {
	for i := range rec {
		if rec[i].Kind == kind && rec[i].Item == name {
			return i
		}
	}
	return -1
}

// used returns how much of a goods or action entitlement counts against its
// limit in the period starting at period (nil: over the agreement's life):
// what settled into the record, and the allocations still in flight.
func used(st *v1alpha1.ServiceAgreementStatus, kind v1alpha1.ItemKind, name v1alpha1.ItemName, period *metav1.Time) int32 {
	var n int64
	if i := findConsumption(st.Consumption, kind, name); i >= 0 {
		switch it := &st.Consumption[i]; {
		case period == nil:
			n = it.Total
		case samePeriod(it.PeriodStart, period):
			n = int64(it.Consumed)
		}
	}
	for _, a := range st.Allocations {
		if a.Kind == kind && a.Item == name && (period == nil || a.PeriodStart == nil || a.PeriodStart.Equal(period)) {
			n += int64(a.Quantity)
		}
	}
	if n > int64(^uint32(0)>>1) {
		return int32(^uint32(0) >> 1)
	}
	return int32(n)
}

// rollPeriod starts a new period in an item's record, keeping the ended one
// among the previous periods.
func rollPeriod(it *v1alpha1.ItemConsumption, period *metav1.Time) {
	if period == nil || samePeriod(it.PeriodStart, period) {
		return
	}
	if it.PeriodStart != nil {
		it.PreviousPeriods = append([]v1alpha1.PeriodConsumption{{Start: *it.PeriodStart, Consumed: it.Consumed}}, it.PreviousPeriods...)
		if len(it.PreviousPeriods) > previousPeriodsKept {
			it.PreviousPeriods = it.PreviousPeriods[:previousPeriodsKept]
		}
	}
	it.PeriodStart, it.Consumed = period.DeepCopy(), 0
}

// settle moves one allocation into the record, in the period current at
// the time given; it returns the record (rec is not modified).
func settle(rec []v1alpha1.ItemConsumption, a v1alpha1.Allocation, period *metav1.Time, at metav1.Time) []v1alpha1.ItemConsumption {
	out := make([]v1alpha1.ItemConsumption, len(rec), len(rec)+1)
	for i := range rec {
		rec[i].DeepCopyInto(&out[i])
	}
	i := findConsumption(out, a.Kind, a.Item)
	if i < 0 {
		out = append(out, v1alpha1.ItemConsumption{Kind: a.Kind, Item: a.Item})
		i = len(out) - 1
	}
	it := &out[i]
	rollPeriod(it, period)
	switch {
	case a.PeriodStart == nil || samePeriod(a.PeriodStart, it.PeriodStart):
		it.Consumed += a.Quantity
	default:
		for j := range it.PreviousPeriods {
			if it.PreviousPeriods[j].Start.Equal(a.PeriodStart) {
				it.PreviousPeriods[j].Consumed += a.Quantity
			}
		}
	}
	it.Total += int64(a.Quantity)
	it.RecentRequests = append([]v1alpha1.ConsumedRequest{{Request: a.Request, UID: a.UID, Quantity: a.Quantity, At: at}}, it.RecentRequests...)
	if len(it.RecentRequests) > recentRequestsKept {
		it.RecentRequests = it.RecentRequests[:recentRequestsKept]
	}
	return out
}

// settledAllocations returns the UIDs of the goods and action allocations
// whose requests settled: consumed, or gone (confirmed on a live read, since
// the cache may not show a new request yet). A request deleted without
// giving its share back consumed it.
func (r *AgreementReconciler) settledAllocations(ctx context.Context, agr *v1alpha1.ServiceAgreement, requests []v1alpha1.ConsumptionRequest) (map[string]bool, error) {
	byUID := make(map[string]*v1alpha1.ConsumptionRequest, len(requests))
	for i := range requests {
		byUID[string(requests[i].UID)] = &requests[i]
	}
	settled := map[string]bool{}
	for _, a := range agr.Status.Allocations {
		if a.Kind == v1alpha1.ItemKindResource {
			continue
		}
		if cr := byUID[a.UID]; cr != nil {
			settled[a.UID] = consumed(cr)
			continue
		}
		var live v1alpha1.ConsumptionRequest
		err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: agr.Namespace, Name: a.Request}, &live)
		switch {
		case apierrors.IsNotFound(err), err == nil && string(live.UID) != a.UID:
			settled[a.UID] = true
		case err != nil:
			return nil, err
		default:
			settled[a.UID] = consumed(&live)
		}
	}
	return settled, nil
}

// recordConsumption brings the agreement's record up to date: on the first
// start of this version it is derived from the requests (deriveRecord), and
// settled allocations are moved into it. It writes only when something changed.
func (r *AgreementReconciler) recordConsumption(ctx context.Context, agr *v1alpha1.ServiceAgreement, requests []v1alpha1.ConsumptionRequest, now time.Time) error {
	settled, err := r.settledAllocations(ctx, agr, requests)
	if err != nil {
		return err
	}
	derive := agr.Status.Consumption == nil && (len(agr.Spec.Entitlements.Goods) > 0 || len(agr.Spec.Entitlements.Actions) > 0)
	if !derive && !anyTrue(settled) {
		return nil
	}
	at := metav1.NewTime(now.UTC().Truncate(time.Second))
	err = updateLedger(ctx, r.Client, r.APIReader, agr, func(cur *v1alpha1.ServiceAgreement) (*ledgerState, bool) {
		next := ledgerState{allocations: cur.Status.Allocations, consumption: cur.Status.Consumption}
		if cur.Status.Consumption == nil {
			next = deriveRecord(cur, requests)
		}
		kept := make([]v1alpha1.Allocation, 0, len(next.allocations))
		for _, a := range next.allocations {
			if !settled[a.UID] {
				kept = append(kept, a)
				continue
			}
			next.consumption = settle(next.consumption, a, currentPeriod(cur, a.Kind, a.Item, now), at)
		}
		next.allocations = kept
		return &next, false
	})
	if err == nil && anyTrue(settled) {
		ctrl.LoggerFrom(ctx).V(1).Info("recorded settled consumption", "agreement", agr.Name)
	}
	return err
}

func anyTrue(m map[string]bool) bool {
	for _, v := range m {
		if v {
			return true
		}
	}
	return false
}

// deriveRecord starts the record of an agreement written by a version that
// kept none: every goods or action request that was admitted and did not
// give its share back, and holds no allocation (unlimited items had none),
// gets one, to settle as any other; each goods and action entitlement gets
// its (empty) record, which marks the derivation done. Requests deleted
// before the upgrade are not known to anyone any more and are not counted.
func deriveRecord(agr *v1alpha1.ServiceAgreement, requests []v1alpha1.ConsumptionRequest) ledgerState {
	next := ledgerState{allocations: append([]v1alpha1.Allocation(nil), agr.Status.Allocations...)}
	for i := range requests {
		cr := &requests[i]
		kind, name, qty := requestedItem(cr)
		if kind == v1alpha1.ItemKindResource || kind == "" || cr.Status.AdmittedAt == nil || releasesEntitlement(cr) || hasAllocation(agr, string(cr.UID)) {
			continue
		}
		next.allocations = append(next.allocations, v1alpha1.Allocation{Request: cr.Name, UID: string(cr.UID), Kind: kind, Item: name,
			Quantity: qty, PeriodStart: currentPeriod(agr, kind, name, cr.Status.AdmittedAt.Time)})
	}
	for _, x := range agr.Spec.Entitlements.Goods {
		next.consumption = append(next.consumption, v1alpha1.ItemConsumption{Kind: v1alpha1.ItemKindGoods, Item: x.Name})
	}
	for _, x := range agr.Spec.Entitlements.Actions {
		next.consumption = append(next.consumption, v1alpha1.ItemConsumption{Kind: v1alpha1.ItemKindAction, Item: x.Name})
	}
	return next
}
