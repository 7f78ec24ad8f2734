package controllers

import (
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
