package controllers

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// What was consumed stays consumed when the consumer deletes the request
// that consumed it: goods handed over and runs performed count against the
// agreement for its life, whatever happens to the request objects. The
// consumer does all of it, through its own role.

// deleteAsConsumer deletes cr as the consumer and waits until it is gone.
func deleteAsConsumer(t *testing.T, cr *v1alpha1.ConsumptionRequest) {
	t.Helper()
	if err := userClient(t, consumerUser).Delete(testCtx, cr); err != nil {
		t.Fatalf("consumer deleting %s: %v", cr.Name, err)
	}
	gone(t, cr)
}

// createAsConsumer creates cr as the consumer.
func createAsConsumer(t *testing.T, cr *v1alpha1.ConsumptionRequest) {
	t.Helper()
	if err := userClient(t, consumerUser).Create(testCtx, cr); err != nil {
		t.Fatalf("consumer creating %s: %v", cr.Name, err)
	}
}

// assertExhausted waits for cr to be denied because its entitlement is used up.
func assertExhausted(t *testing.T, cr *v1alpha1.ConsumptionRequest) {
	t.Helper()
	c := waitCondition(t, cr, v1alpha1.ConditionDenied, metav1.ConditionTrue)
	if c.Reason != v1alpha1.ReasonEntitlementExhausted {
		t.Fatalf("%s denied with %s (%s), want %s", cr.Name, c.Reason, c.Message, v1alpha1.ReasonEntitlementExhausted)
	}
}

// assertUsed waits for the agreement to report used of the item.
func assertUsed(t *testing.T, agr *v1alpha1.ServiceAgreement, kind v1alpha1.ItemKind, item string, used int32) {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("%s/%s used %d", kind, item, used), func() error {
		get(t, agr)
		for _, u := range agr.Status.Usage {
			if u.Kind == kind && string(u.Item) == item {
				if u.Used != used {
					return fmt.Errorf("usage %+v", u)
				}
				return nil
			}
		}
		return fmt.Errorf("no usage for %s/%s in %+v", kind, item, agr.Status.Usage)
	})
}

func TestAcceptedGoodsStayConsumedWhenTheRequestIsDeleted(t *testing.T) {
	w := newGoodsWorld(t, []goodsOption{withMaxQuantity(2)})
	cr := w.goodsRequest("accepted", 2)
	createAsConsumer(t, cr)
	waitPhase(t, cr, v1alpha1.RequestDelivered)
	decide(t, cr, v1alpha1.GoodsAccept)
	waitPhase(t, cr, v1alpha1.RequestAccepted)
	deleteAsConsumer(t, cr)

	assertUsed(t, w.agreement, v1alpha1.ItemKindGoods, goodsItem, 2)
	again := w.goodsRequest("asks-again", 1)
	createAsConsumer(t, again)
	assertExhausted(t, again)
}

func TestRejectedGoodsComeBackWhenTheRequestIsDeleted(t *testing.T) {
	w := newGoodsWorld(t, []goodsOption{withMaxQuantity(1)})
	cr := w.goodsRequest("rejected", 1)
	createAsConsumer(t, cr)
	waitPhase(t, cr, v1alpha1.RequestDelivered)
	decide(t, cr, v1alpha1.GoodsReject)
	waitPhase(t, cr, v1alpha1.RequestRejected)
	deleteAsConsumer(t, cr)

	assertUsed(t, w.agreement, v1alpha1.ItemKindGoods, goodsItem, 0)
	again := w.goodsRequest("asks-again", 1)
	createAsConsumer(t, again)
	waitPhase(t, again, v1alpha1.RequestDelivered)
}

// limitRuns sets maxRuns of both actions of the world's agreement to n.
func (w *actionWorld) limitRuns(t *testing.T, n int32) {
	t.Helper()
	get(t, w.agreement)
	patch := client.MergeFrom(w.agreement.DeepCopy())
	for i := range w.agreement.Spec.Entitlements.Actions {
		w.agreement.Spec.Entitlements.Actions[i].MaxRuns = ptr.To(n)
	}
	if err := admin.Patch(testCtx, w.agreement, patch); err != nil {
		t.Fatal(err)
	}
}

func TestPerformedRunsStayConsumedWhenTheRequestIsDeleted(t *testing.T) {
	w := newActionWorld(t)
	w.limitRuns(t, 1)

	// Automated: the Job ran to completion.
	cr := w.installRequest("ran")
	job, _ := w.startedJob(t, cr)
	finishJob(t, job, true, "CompletionsReached", "done")
	waitPhase(t, cr, v1alpha1.RequestFulfilled)
	deleteAsConsumer(t, cr)
	assertUsed(t, w.agreement, v1alpha1.ItemKindAction, installAction, 1)
	again := w.installRequest("runs-again")
	createAsConsumer(t, again)
	assertExhausted(t, again)

	// Manual: the provider performed it.
	manual := w.supportRequest("performed")
	createAsConsumer(t, manual)
	waitPhase(t, manual, v1alpha1.RequestProvisioning)
	markFulfilled(t, manual)
	waitPhase(t, manual, v1alpha1.RequestFulfilled)
	deleteAsConsumer(t, manual)
	assertUsed(t, w.agreement, v1alpha1.ItemKindAction, supportAction, 1)
	again = w.supportRequest("performed-again")
	createAsConsumer(t, again)
	assertExhausted(t, again)
}

func TestRunningJobDeletedStaysConsumed(t *testing.T) {
	w := newActionWorld(t)
	w.limitRuns(t, 1)
	cr := w.installRequest("cancelled-running")
	job, _ := w.startedJob(t, cr)
	deleteAsConsumer(t, cr)
	gone(t, job)
	assertUsed(t, w.agreement, v1alpha1.ItemKindAction, installAction, 1)
	again := w.installRequest("runs-again")
	createAsConsumer(t, again)
	assertExhausted(t, again)
}

// markFulfilled marks a manual action done, as the provider.
func markFulfilled(t *testing.T, cr *v1alpha1.ConsumptionRequest) {
	t.Helper()
	eventually(t, 10*time.Second, "provider marks the action done", func() error {
		get(t, cr)
		patch := client.MergeFromWithOptions(cr.DeepCopy(), client.MergeFromWithOptimisticLock{})
		meta.SetStatusCondition(&cr.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionFulfilled, Status: metav1.ConditionTrue,
			Reason: "ClosedByEngineer", Message: "done"})
		return userClient(t, providerUser).Status().Patch(testCtx, cr, patch)
	})
}

// TestRecordStaysSmall settles ten thousand requests over an agreement's
// life, spread over two items and many periods: the record keeps its
// counters exact and stays far below the API server's object size limit.
func TestRecordStaysSmall(t *testing.T) {
	anchor := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	agr := &v1alpha1.ServiceAgreement{Spec: v1alpha1.ServiceAgreementSpec{
		ValidFrom: &metav1.Time{Time: anchor},
		Entitlements: v1alpha1.Entitlements{
			Goods:   []v1alpha1.GoodsEntitlement{{Name: "kit", MaxQuantity: ptr.To[int32](10000)}},
			Actions: []v1alpha1.ActionEntitlement{{Name: "install", MaxRuns: ptr.To[int32](100), Period: &metav1.Duration{Duration: 720 * time.Hour}}},
		},
	}}
	var rec []v1alpha1.ItemConsumption
	const requests = 10000
	for i := range requests {
		at := anchor.Add(time.Duration(i) * time.Hour) // a request an hour, over more than a year
		kind, item := v1alpha1.ItemKindGoods, v1alpha1.ItemName("kit")
		if i%2 == 1 {
			kind, item = v1alpha1.ItemKindAction, "install"
		}
		period := currentPeriod(agr, kind, item, at)
		a := v1alpha1.Allocation{Request: fmt.Sprintf("request-with-a-rather-long-name-%05d", i), UID: fmt.Sprintf("%036d", i),
			Kind: kind, Item: item, Quantity: 1, PeriodStart: period}
		rec = settle(rec, a, period, metav1.Time{Time: at})
	}
	agr.Status.Consumption = rec
	size, err := json.Marshal(agr.Status)
	if err != nil {
		t.Fatal(err)
	}
	if len(size) > 16<<10 {
		t.Errorf("the record of %d requests takes %d bytes, want at most 16 KiB (the object limit is 1.5 MiB)", requests, len(size))
	}
	goods, runs := rec[findConsumption(rec, v1alpha1.ItemKindGoods, "kit")], rec[findConsumption(rec, v1alpha1.ItemKindAction, "install")]
	if goods.Total != requests/2 || goods.Consumed != requests/2 || goods.PeriodStart != nil {
		t.Errorf("goods record %+v", goods)
	}
	last := anchor.Add((requests - 1) * time.Hour)
	if runs.Total != requests/2 || len(runs.PreviousPeriods) != previousPeriodsKept || !runs.PeriodStart.Equal(currentPeriod(agr, v1alpha1.ItemKindAction, "install", last)) {
		t.Errorf("runs record: total %d, %d previous periods, period %v", runs.Total, len(runs.PreviousPeriods), runs.PeriodStart)
	}
	// A full period is 720 hours, every other one a run.
	if p := runs.PreviousPeriods[0]; p.Consumed != 360 {
		t.Errorf("last ended period %+v, want 360 runs", p)
	}
	if n := len(runs.RecentRequests); n != recentRequestsKept || runs.RecentRequests[0].UID != fmt.Sprintf("%036d", requests-1) {
		t.Errorf("recent requests %d, newest %+v", n, runs.RecentRequests[0])
	}
}

// TestPeriodsRenewRunsAndGoods: what was consumed in one period counts
// against the limit in that period only; in flight allocations count in
// the period they were claimed in, and without a period everything counts.
func TestPeriodsRenewRunsAndGoods(t *testing.T) {
	anchor := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	period := &metav1.Duration{Duration: 24 * time.Hour}
	agr := &v1alpha1.ServiceAgreement{Spec: v1alpha1.ServiceAgreementSpec{ValidFrom: &metav1.Time{Time: anchor},
		Entitlements: v1alpha1.Entitlements{Actions: []v1alpha1.ActionEntitlement{{Name: "install", MaxRuns: ptr.To[int32](2), Period: period}}}}}
	day1, day2 := anchor.Add(3*time.Hour), anchor.Add(27*time.Hour)
	p1, p2 := currentPeriod(agr, v1alpha1.ItemKindAction, "install", day1), currentPeriod(agr, v1alpha1.ItemKindAction, "install", day2)
	if !p1.Equal(&metav1.Time{Time: anchor}) || !p2.Equal(&metav1.Time{Time: anchor.Add(24 * time.Hour)}) {
		t.Fatalf("periods %v %v", p1, p2)
	}
	run := func(uid string, p *metav1.Time) v1alpha1.Allocation {
		return v1alpha1.Allocation{Request: uid, UID: uid, Kind: v1alpha1.ItemKindAction, Item: "install", Quantity: 1, PeriodStart: p}
	}
	agr.Status.Consumption = settle(nil, run("a", p1), p1, metav1.Time{Time: day1})
	agr.Status.Allocations = []v1alpha1.Allocation{run("b", p1)}
	if n := used(&agr.Status, v1alpha1.ItemKindAction, "install", p1); n != 2 {
		t.Errorf("day one: %d used, want 2", n)
	}
	if n := used(&agr.Status, v1alpha1.ItemKindAction, "install", p2); n != 0 {
		t.Errorf("day two: %d used, want 0: the entitlement renews", n)
	}
	// b settles on day two: it still counts in day one, which is kept.
	agr.Status.Consumption = settle(agr.Status.Consumption, run("b", p1), p2, metav1.Time{Time: day2})
	agr.Status.Allocations = nil
	it := agr.Status.Consumption[0]
	if it.Consumed != 0 || len(it.PreviousPeriods) != 1 || it.PreviousPeriods[0].Consumed != 2 || it.Total != 2 {
		t.Errorf("record %+v", it)
	}
	if n := used(&agr.Status, v1alpha1.ItemKindAction, "install", nil); n != 2 {
		t.Errorf("without a period: %d used, want the life's 2", n)
	}
	usage := computeUsage(agr, nil, nil, day2)
	if len(usage) != 1 || usage[0].Used != 0 || usage[0].Period == nil || !usage[0].PeriodEnds.Equal(&metav1.Time{Time: anchor.Add(48 * time.Hour)}) {
		t.Errorf("usage %+v", usage)
	}
	if s := usageSummary(usage); s != "Action/install 0/2 per 24h" {
		t.Errorf("summary %q", s)
	}
}

// TestUpgradeDerivesTheRecordFromRequests: an agreement written by the
// previous version has no record of consumption. On the first reconcile of
// this version the record is derived from the requests, so goods accepted
// before the upgrade stay counted once their request is deleted.
func TestUpgradeDerivesTheRecordFromRequests(t *testing.T) {
	w := newGoodsWorld(t, []goodsOption{withMaxQuantity(2)})
	cr := w.goodsRequest("before-upgrade", 1)
	createAsConsumer(t, cr)
	waitPhase(t, cr, v1alpha1.RequestDelivered)
	decide(t, cr, v1alpha1.GoodsAccept)
	waitPhase(t, cr, v1alpha1.RequestAccepted)
	assertUsed(t, w.agreement, v1alpha1.ItemKindGoods, goodsItem, 1)

	// The state the previous version left: no record, no allocation for
	// goods that were accepted.
	eventually(t, 10*time.Second, "the previous version's status written", func() error {
		get(t, w.agreement)
		patch := client.MergeFromWithOptions(w.agreement.DeepCopy(), client.MergeFromWithOptimisticLock{})
		w.agreement.Status.Allocations, w.agreement.Status.Consumption = nil, nil
		return userClient(t, operatorUser).Status().Patch(testCtx, w.agreement, patch)
	})
	eventually(t, 20*time.Second, "the record derived", func() error {
		get(t, w.agreement)
		for _, it := range w.agreement.Status.Consumption {
			if it.Kind == v1alpha1.ItemKindGoods && it.Total == 1 && len(it.RecentRequests) == 1 && it.RecentRequests[0].UID == string(cr.UID) {
				return nil
			}
		}
		return fmt.Errorf("consumption %+v allocations %+v", w.agreement.Status.Consumption, w.agreement.Status.Allocations)
	})
	deleteAsConsumer(t, cr)
	assertUsed(t, w.agreement, v1alpha1.ItemKindGoods, goodsItem, 1)
	again := w.goodsRequest("asks-too-much", 2)
	createAsConsumer(t, again)
	assertExhausted(t, again)
}
