package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// goodsWorld is a fixture with a provider namespace holding a Secret and a
// ConfigMap, and an offering item "kit" that delivers both.
type goodsWorld struct {
	*fixture
	provider    string
	secretName  string
	cmName      string
	secretValue string
}

const goodsItem = "kit"

type goodsOption func(item *v1alpha1.GoodsItem, ent *v1alpha1.GoodsEntitlement)

func withMaxQuantity(n int32) goodsOption {
	return func(_ *v1alpha1.GoodsItem, e *v1alpha1.GoodsEntitlement) { e.MaxQuantity = &n }
}

func withImplicitAcceptance() goodsOption {
	return func(i *v1alpha1.GoodsItem, _ *v1alpha1.GoodsEntitlement) { i.Acceptance = v1alpha1.AcceptanceImplicit }
}

func withDeadline(d time.Duration, p v1alpha1.DeadlinePolicy) goodsOption {
	return func(i *v1alpha1.GoodsItem, _ *v1alpha1.GoodsEntitlement) {
		i.AcceptanceDeadline = &metav1.Duration{Duration: d}
		i.DeadlinePolicy = p
	}
}

func newGoodsWorld(t *testing.T, goodsOpts []goodsOption, opts ...fixtureOption) *goodsWorld {
	t.Helper()
	requireAPIServer(t)
	w := &goodsWorld{provider: uniq("provider"), secretName: "device-credentials", cmName: "device-config",
		secretValue: uniq("s3cr3t-value-never-shown")}
	mustCreate(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.provider}})
	mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: w.secretName, Namespace: w.provider},
		Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"password": []byte(w.secretValue), "username": []byte("admin")}})
	mustCreate(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: w.cmName, Namespace: w.provider},
		Data: map[string]string{"model": "HA-2000", "mode": "active-passive"}})
	withGoods := func(f *fixture) {
		item := v1alpha1.GoodsItem{Name: goodsItem, Acceptance: v1alpha1.AcceptanceRequired, Sources: []v1alpha1.GoodsSource{
			{Kind: v1alpha1.GoodsSourceSecret, Name: v1alpha1.ObjectName(w.secretName)},
			{Kind: v1alpha1.GoodsSourceConfigMap, Name: v1alpha1.ObjectName(w.cmName)},
		}}
		ent := v1alpha1.GoodsEntitlement{Name: goodsItem}
		for _, o := range goodsOpts {
			o(&item, &ent)
		}
		f.offering.Spec.ProviderNamespace = v1alpha1.NamespaceName(w.provider)
		f.offering.Spec.Goods = []v1alpha1.GoodsItem{item}
		f.agreement.Spec.Entitlements.Goods = []v1alpha1.GoodsEntitlement{ent}
	}
	w.fixture = newFixture(t, append([]fixtureOption{withGoods}, opts...)...)
	return w
}

func (w *goodsWorld) goodsRequest(name string, qty int32) *v1alpha1.ConsumptionRequest {
	return makeRequest(name, w.ns).goods(goodsItem, qty).obj()
}

// copies returns the (expected) copies of the two sources for cr.
func (w *goodsWorld) copies(cr *v1alpha1.ConsumptionRequest) (*corev1.Secret, *corev1.ConfigMap) {
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: cr.Namespace,
		Name: goodsCopyName(cr, v1alpha1.GoodsSource{Kind: v1alpha1.GoodsSourceSecret, Name: v1alpha1.ObjectName(w.secretName)})}}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: cr.Namespace,
		Name: goodsCopyName(cr, v1alpha1.GoodsSource{Kind: v1alpha1.GoodsSourceConfigMap, Name: v1alpha1.ObjectName(w.cmName)})}}
	return sec, cm
}

// decide sets spec.goods.decision as the consumer.
func decide(t *testing.T, cr *v1alpha1.ConsumptionRequest, d v1alpha1.GoodsDecision) {
	t.Helper()
	get(t, cr)
	patch := client.MergeFrom(cr.DeepCopy())
	cr.Spec.Goods.Decision = d
	if err := userClient(t, consumerUser).Patch(testCtx, cr, patch); err != nil {
		t.Fatalf("consumer deciding %s: %v", d, err)
	}
}

// assertHandedOver checks that obj exists and carries nothing of the operator's management.
func assertHandedOver(t *testing.T, obj client.Object) {
	t.Helper()
	get(t, obj)
	for _, k := range goodsLabelKeys {
		if _, ok := obj.GetLabels()[k]; ok {
			t.Errorf("%T %s still has label %s", obj, obj.GetName(), k)
		}
	}
	if len(obj.GetOwnerReferences()) != 0 || len(obj.GetFinalizers()) != 0 {
		t.Errorf("%T %s: ownerReferences %v finalizers %v", obj, obj.GetName(), obj.GetOwnerReferences(), obj.GetFinalizers())
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		t.Errorf("%T %s is being deleted", obj, obj.GetName())
	}
}

func TestGoodsDelivery(t *testing.T) {
	w := newGoodsWorld(t, nil)
	cr := w.goodsRequest("pair", 2)
	mustCreate(t, cr)
	waitPhase(t, cr, v1alpha1.RequestDelivered)
	waitCondition(t, cr, v1alpha1.ConditionTransferred, metav1.ConditionTrue)
	ready := waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionFalse)
	if ready.Reason != v1alpha1.ReasonAwaitingAcceptance {
		t.Errorf("Ready reason %s, want AwaitingAcceptance", ready.Reason)
	}
	if c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionAccepted); c == nil || c.Status != metav1.ConditionFalse {
		t.Errorf("Accepted %+v", c)
	}
	if cr.Status.TransferredAt == nil || cr.Status.FulfilledAt == nil || cr.Status.AcceptedAt != nil || cr.Status.AcceptBy != nil {
		t.Errorf("timestamps %+v", cr.Status)
	}

	sec, cm := w.copies(cr)
	want := []v1alpha1.DeliveredObject{
		{Kind: v1alpha1.GoodsSourceSecret, Name: sec.Name, Namespace: w.ns},
		{Kind: v1alpha1.GoodsSourceConfigMap, Name: cm.Name, Namespace: w.ns},
	}
	if fmt.Sprint(cr.Status.Delivered) != fmt.Sprint(want) {
		t.Errorf("delivered %v, want %v", cr.Status.Delivered, want)
	}
	if !strings.HasPrefix(sec.Name, "pair-device-credentials-") {
		t.Errorf("copy name %s", sec.Name)
	}
	get(t, sec)
	get(t, cm)
	var src corev1.Secret
	if err := admin.Get(testCtx, client.ObjectKey{Namespace: w.provider, Name: w.secretName}, &src); err != nil {
		t.Fatal(err)
	}
	if string(sec.Data["password"]) != w.secretValue || string(sec.Data["username"]) != "admin" || sec.Type != corev1.SecretTypeOpaque {
		t.Errorf("secret copy data differs from the source")
	}
	if cm.Data["model"] != "HA-2000" || cm.Data["mode"] != "active-passive" {
		t.Errorf("configmap copy data %v", cm.Data)
	}
	a := sec.Annotations
	if a[v1alpha1.AnnotationSource] != w.provider+"/"+w.secretName || a[v1alpha1.AnnotationSourceResourceVersion] != src.ResourceVersion ||
		a[v1alpha1.AnnotationRequest] != w.ns+"/pair" {
		t.Errorf("provenance annotations %v", a)
	}
	if cm.Annotations[v1alpha1.AnnotationSource] != w.provider+"/"+w.cmName {
		t.Errorf("configmap provenance %v", cm.Annotations)
	}
	for _, obj := range []client.Object{sec, cm} {
		l := obj.GetLabels()
		if l[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue || l[v1alpha1.LabelRequestUID] != string(cr.UID) ||
			l[v1alpha1.LabelItem] != goodsItem || l[v1alpha1.LabelOffering] != w.offering.Name {
			t.Errorf("%T labels %v", obj, l)
		}
		if refs := obj.GetOwnerReferences(); len(refs) != 1 || refs[0].UID != cr.UID {
			t.Errorf("%T owner references %v", obj, refs)
		}
	}

	eventually(t, 10*time.Second, "agreement counts the delivery", func() error {
		get(t, w.agreement)
		st := w.agreement.Status
		if st.Goods.Delivered != 1 || len(st.Usage) != 2 || st.Usage[1].Used != 2 {
			return fmt.Errorf("goods %+v usage %+v", st.Goods, st.Usage)
		}
		return nil
	})

	// Deleting the request before acceptance removes the copies.
	if err := admin.Delete(testCtx, cr); err != nil {
		t.Fatal(err)
	}
	gone(t, cr)
	gone(t, sec)
	gone(t, cm)
}

func TestGoodsDriftRepairedBeforeAcceptance(t *testing.T) {
	w := newGoodsWorld(t, nil)
	cr := w.goodsRequest("drift", 1)
	mustCreate(t, cr)
	waitPhase(t, cr, v1alpha1.RequestDelivered)
	sec, cm := w.copies(cr)

	get(t, sec)
	sec.Data["password"] = []byte("tampered")
	if err := admin.Update(testCtx, sec); err != nil {
		t.Fatal(err)
	}
	get(t, cm)
	oldUID := cm.UID
	if err := admin.Delete(testCtx, cm); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "copies restored", func() error {
		get(t, sec)
		if string(sec.Data["password"]) != w.secretValue {
			return fmt.Errorf("secret data not restored")
		}
		again := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: cm.Namespace, Name: cm.Name}}
		if err := admin.Get(testCtx, client.ObjectKeyFromObject(again), again); err != nil {
			return err
		}
		if again.UID == oldUID || again.Data["model"] != "HA-2000" {
			return fmt.Errorf("configmap not recreated")
		}
		return nil
	})
	get(t, cr)
	if cr.Status.Phase != v1alpha1.RequestDelivered {
		t.Errorf("phase %s", cr.Status.Phase)
	}
}

func TestGoodsAcceptThenRequestDeletionKeepsThem(t *testing.T) {
	w := newGoodsWorld(t, nil)
	cr := w.goodsRequest("keep", 1)
	mustCreate(t, cr)
	waitPhase(t, cr, v1alpha1.RequestDelivered)
	decide(t, cr, v1alpha1.GoodsAccept)
	waitPhase(t, cr, v1alpha1.RequestAccepted)
	c := waitCondition(t, cr, v1alpha1.ConditionAccepted, metav1.ConditionTrue)
	if c.Reason != v1alpha1.ReasonAcceptedByConsumer {
		t.Errorf("Accepted reason %s", c.Reason)
	}
	waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionTrue)
	if cr.Status.AcceptedAt == nil || len(cr.Status.Delivered) != 2 {
		t.Errorf("status %+v", cr.Status)
	}
	sec, cm := w.copies(cr)
	assertHandedOver(t, sec)
	assertHandedOver(t, cm)
	if sec.Annotations[v1alpha1.AnnotationSource] == "" {
		t.Error("provenance annotations were removed on acceptance")
	}
	eventually(t, 10*time.Second, "agreement counts the acceptance", func() error {
		get(t, w.agreement)
		if g := w.agreement.Status.Goods; g.Accepted != 1 || g.Delivered != 0 {
			return fmt.Errorf("goods %+v", g)
		}
		return nil
	})

	// The operator no longer manages them: the consumer's edits stay.
	sec.Data["password"] = []byte("rotated-by-consumer")
	if err := admin.Update(testCtx, sec); err != nil {
		t.Fatal(err)
	}
	if err := admin.Delete(testCtx, cr); err != nil {
		t.Fatal(err)
	}
	gone(t, cr)
	consistently(t, 2*time.Second, "accepted copies stay", func() error {
		for _, obj := range []client.Object{&corev1.Secret{ObjectMeta: sec.ObjectMeta}, &corev1.ConfigMap{ObjectMeta: cm.ObjectMeta}} {
			if ok, err := exists(obj); !ok || err != nil || !obj.GetDeletionTimestamp().IsZero() {
				return fmt.Errorf("%T %s: exists %v: %w", obj, obj.GetName(), ok, err)
			}
		}
		return nil
	})
	get(t, sec)
	if string(sec.Data["password"]) != "rotated-by-consumer" {
		t.Error("the consumer's edit of an accepted copy was reverted")
	}
}

func TestGoodsRejectionReturnsThemAndReleasesEntitlement(t *testing.T) {
	w := newGoodsWorld(t, []goodsOption{withMaxQuantity(2)})
	cr := w.goodsRequest("unwanted", 2)
	mustCreate(t, cr)
	waitPhase(t, cr, v1alpha1.RequestDelivered)
	sec, cm := w.copies(cr)
	get(t, sec)

	full := w.goodsRequest("too-many", 1)
	mustCreate(t, full)
	waitPhase(t, full, v1alpha1.RequestDenied)

	decide(t, cr, v1alpha1.GoodsReject)
	waitPhase(t, cr, v1alpha1.RequestRejected)
	gone(t, sec)
	gone(t, cm)
	for _, typ := range []string{v1alpha1.ConditionTransferred, v1alpha1.ConditionAccepted, v1alpha1.ConditionReady} {
		if c := waitCondition(t, cr, typ, metav1.ConditionFalse); c.Reason != v1alpha1.ReasonRejectedByConsumer {
			t.Errorf("%s reason %s", typ, c.Reason)
		}
	}
	if len(cr.Status.Delivered) != 0 {
		t.Errorf("delivered still recorded: %v", cr.Status.Delivered)
	}
	eventually(t, 10*time.Second, "allocation released", func() error {
		get(t, w.agreement)
		if n := len(w.agreement.Status.Allocations); n != 0 {
			return fmt.Errorf("%d allocations", n)
		}
		if w.agreement.Status.Goods.Returned != 1 {
			return fmt.Errorf("goods %+v", w.agreement.Status.Goods)
		}
		return nil
	})
	again := w.goodsRequest("second-try", 2)
	mustCreate(t, again)
	waitPhase(t, again, v1alpha1.RequestDelivered)

	// A rejected request stays rejected and can be deleted cleanly.
	if err := admin.Delete(testCtx, cr); err != nil {
		t.Fatal(err)
	}
	gone(t, cr)
}

func TestGoodsImplicitAcceptance(t *testing.T) {
	w := newGoodsWorld(t, []goodsOption{withImplicitAcceptance()})
	cr := w.goodsRequest("implicit", 1)
	mustCreate(t, cr)
	waitPhase(t, cr, v1alpha1.RequestAccepted)
	c := waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionTrue)
	if c.Reason != v1alpha1.ReasonAcceptedImplicitly {
		t.Errorf("Ready reason %s", c.Reason)
	}
	waitCondition(t, cr, v1alpha1.ConditionTransferred, metav1.ConditionTrue)
	sec, cm := w.copies(cr)
	assertHandedOver(t, sec)
	assertHandedOver(t, cm)
	if string(sec.Data["password"]) != w.secretValue {
		t.Error("secret copy data differs from the source")
	}
}

func TestGoodsAgreementExpiry(t *testing.T) {
	until := testClock.Now().Add(time.Hour)
	w := newGoodsWorld(t, nil, withValidUntil(until))
	accepted := w.goodsRequest("accepted", 1)
	mustCreate(t, accepted)
	waitPhase(t, accepted, v1alpha1.RequestDelivered)
	decide(t, accepted, v1alpha1.GoodsAccept)
	waitPhase(t, accepted, v1alpha1.RequestAccepted)
	pending := w.goodsRequest("pending", 1)
	mustCreate(t, pending)
	waitPhase(t, pending, v1alpha1.RequestDelivered)
	aSec, aCM := w.copies(accepted)
	pSec, pCM := w.copies(pending)

	testClock.Step(2 * time.Hour)
	touch(t, w.agreement)
	waitCondition(t, w.agreement, v1alpha1.ConditionActive, metav1.ConditionFalse)
	waitPhase(t, pending, v1alpha1.RequestRevoked)
	gone(t, pSec)
	gone(t, pCM)
	if c := waitCondition(t, pending, v1alpha1.ConditionTransferred, metav1.ConditionFalse); c.Reason != v1alpha1.ReasonRevoked {
		t.Errorf("Transferred reason %s", c.Reason)
	}

	consistently(t, time.Second, "accepted goods stay", func() error {
		get(t, accepted)
		if accepted.Status.Phase != v1alpha1.RequestAccepted {
			return fmt.Errorf("accepted request is now %s", accepted.Status.Phase)
		}
		return nil
	})
	assertHandedOver(t, aSec)
	assertHandedOver(t, aCM)

	// Deleting the ended agreement lets it go, and still leaves accepted goods alone.
	if err := admin.Delete(testCtx, w.agreement); err != nil {
		t.Fatal(err)
	}
	gone(t, w.agreement)
	assertHandedOver(t, aSec)
	assertHandedOver(t, aCM)
}

func TestGoodsAcceptanceDeadline(t *testing.T) {
	for _, policy := range []v1alpha1.DeadlinePolicy{v1alpha1.DeadlineReturn, v1alpha1.DeadlineAccept} {
		t.Run(string(policy), func(t *testing.T) {
			w := newGoodsWorld(t, []goodsOption{withDeadline(time.Hour, policy), withMaxQuantity(1)})
			cr := w.goodsRequest("deadline", 1)
			mustCreate(t, cr)
			waitPhase(t, cr, v1alpha1.RequestDelivered)
			if cr.Status.AcceptBy == nil || cr.Status.AcceptBy.Sub(cr.Status.TransferredAt.Time) != time.Hour {
				t.Fatalf("acceptBy %v transferredAt %v", cr.Status.AcceptBy, cr.Status.TransferredAt)
			}
			consistently(t, time.Second, "waits for the decision", func() error {
				get(t, cr)
				if cr.Status.Phase != v1alpha1.RequestDelivered {
					return fmt.Errorf("phase %s before the deadline", cr.Status.Phase)
				}
				return nil
			})
			sec, cm := w.copies(cr)

			testClock.Step(2 * time.Hour)
			touch(t, cr)
			if policy == v1alpha1.DeadlineReturn {
				waitPhase(t, cr, v1alpha1.RequestRejected)
				gone(t, sec)
				gone(t, cm)
				eventually(t, 10*time.Second, "allocation released", func() error {
					get(t, w.agreement)
					if n := len(w.agreement.Status.Allocations); n != 0 {
						return fmt.Errorf("%d allocations", n)
					}
					return nil
				})
			} else {
				waitPhase(t, cr, v1alpha1.RequestAccepted)
				assertHandedOver(t, sec)
				assertHandedOver(t, cm)
			}
			c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionAccepted)
			if c == nil || c.Reason != v1alpha1.ReasonAcceptanceDeadlinePassed {
				t.Errorf("Accepted condition %+v", c)
			}
		})
	}
}

func TestGoodsSecretNeverInStatusOrEvents(t *testing.T) {
	w := newGoodsWorld(t, nil)
	cr := w.goodsRequest("secretive", 1)
	mustCreate(t, cr)
	waitPhase(t, cr, v1alpha1.RequestDelivered)
	sec, _ := w.copies(cr)
	// Drift (a repair event), then acceptance: every path that reports something.
	get(t, sec)
	sec.Data["password"] = []byte("tampered")
	if err := admin.Update(testCtx, sec); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "secret restored", func() error {
		get(t, sec)
		if string(sec.Data["password"]) != w.secretValue {
			return fmt.Errorf("not restored")
		}
		return nil
	})
	decide(t, cr, v1alpha1.GoodsAccept)
	waitPhase(t, cr, v1alpha1.RequestAccepted)

	check := func(what string, v any) {
		t.Helper()
		assertNotLeaked(t, w.secretValue, what, v)
	}
	var events eventsv1.EventList
	var coreEvents corev1.EventList
	eventually(t, 10*time.Second, "events recorded", func() error {
		if err := admin.List(testCtx, &events, client.InNamespace(w.ns)); err != nil {
			return err
		}
		if err := admin.List(testCtx, &coreEvents, client.InNamespace(w.ns)); err != nil {
			return err
		}
		reasons := map[string]bool{}
		for _, e := range events.Items {
			reasons[e.Reason] = true
		}
		if !reasons["Delivered"] || !reasons["Accepted"] || !reasons["Repaired"] {
			return fmt.Errorf("event reasons %v", reasons)
		}
		return nil
	})
	check("events.k8s.io events", events)
	check("core events", coreEvents)
	for _, ns := range []string{w.provider} {
		var more eventsv1.EventList
		if err := admin.List(testCtx, &more, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		check("provider namespace events", more)
	}
	get(t, cr)
	check("request status", cr.Status)
	get(t, w.agreement)
	check("agreement status", w.agreement.Status)
	if logs := managerLogs.String(); len(logs) == 0 {
		t.Error("no manager logs captured: the log check would prove nothing")
	} else {
		check("the manager's logs (all levels)", logs)
	}
}

func TestGoodsOnlyIntoTheRequestsNamespace(t *testing.T) {
	w := newGoodsWorld(t, nil)
	cr := w.goodsRequest("here", 1)
	mustCreate(t, cr)
	waitPhase(t, cr, v1alpha1.RequestDelivered)

	for _, d := range cr.Status.Delivered {
		if d.Namespace != w.ns {
			t.Errorf("delivered into %s", d.Namespace)
		}
	}
	// Across the whole cluster, every copy made for the request is in its namespace.
	sel := client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)}
	var secrets corev1.SecretList
	var cms corev1.ConfigMapList
	if err := admin.List(testCtx, &secrets, sel); err != nil {
		t.Fatal(err)
	}
	if err := admin.List(testCtx, &cms, sel); err != nil {
		t.Fatal(err)
	}
	if len(secrets.Items) != 1 || len(cms.Items) != 1 {
		t.Fatalf("%d secrets and %d configmaps, want one each", len(secrets.Items), len(cms.Items))
	}
	for _, obj := range []client.Object{&secrets.Items[0], &cms.Items[0]} {
		if obj.GetNamespace() != w.ns {
			t.Errorf("%T %s/%s is outside the request's namespace", obj, obj.GetNamespace(), obj.GetName())
		}
	}

	// A request in another namespace cannot use this agreement to get goods delivered anywhere.
	other := uniq("elsewhere")
	mustCreate(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}})
	stray := makeRequest("here", other).goods(goodsItem, 1).obj()
	mustCreate(t, stray)
	c := waitCondition(t, stray, v1alpha1.ConditionReady, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonAgreementNotFound {
		t.Errorf("stray request: %s", c.Reason)
	}
	consistently(t, time.Second, "nothing delivered for the stray request", func() error {
		var s corev1.SecretList
		if err := admin.List(testCtx, &s, client.MatchingLabels{v1alpha1.LabelRequestUID: string(stray.UID)}); err != nil {
			return err
		}
		if len(s.Items) != 0 {
			return fmt.Errorf("copies were made: %d", len(s.Items))
		}
		return nil
	})

}

func TestGoodsNeverOverwriteForeignObject(t *testing.T) {
	w := newGoodsWorld(t, nil, withManualApproval())
	cr := w.goodsRequest("blocked", 1)
	mustCreate(t, cr)
	waitPhase(t, cr, v1alpha1.RequestAwaitingApproval)
	// The consumer already has a Secret of the copy's name.
	sec, cm := w.copies(cr)
	squat := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: sec.Namespace, Name: sec.Name}, StringData: map[string]string{"mine": "yes"}}
	mustCreate(t, squat)

	get(t, cr)
	patch := client.MergeFromWithOptions(cr.DeepCopy(), client.MergeFromWithOptimisticLock{})
	cr.Status.Conditions = append(cr.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionApproved, Status: metav1.ConditionTrue,
		Reason: "ApprovedByProvider", Message: "ok", LastTransitionTime: metav1.Now()})
	if err := userClient(t, approverUser).Status().Patch(testCtx, cr, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "conflict reported", func() error {
		get(t, cr)
		c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Reason != v1alpha1.ReasonCopyConflict {
			return fmt.Errorf("ready %+v", c)
		}
		return nil
	})
	get(t, squat)
	if string(squat.Data["mine"]) != "yes" || len(squat.Data) != 1 || squat.Labels[v1alpha1.LabelManagedBy] != "" {
		t.Errorf("the consumer's Secret was changed: labels %v keys %d", squat.Labels, len(squat.Data))
	}
	// Deleting the request never deletes the consumer's object.
	if err := admin.Delete(testCtx, cr); err != nil {
		t.Fatal(err)
	}
	gone(t, cr)
	get(t, squat)
	if ok, _ := exists(cm); ok && cm.Labels[v1alpha1.LabelRequestUID] == string(cr.UID) {
		t.Error("a copy of the deleted request remains")
	}
}

func TestGoodsCounting(t *testing.T) {
	mk := func(phase v1alpha1.RequestPhase, goods bool) v1alpha1.ConsumptionRequest {
		cr := v1alpha1.ConsumptionRequest{Status: v1alpha1.ConsumptionRequestStatus{Phase: phase}}
		if goods {
			cr.Spec.Goods = &v1alpha1.GoodsRequest{Name: "kit"}
		} else {
			cr.Spec.Resource = &v1alpha1.ResourceRequest{Name: "space"}
		}
		return cr
	}
	got := countGoods([]v1alpha1.ConsumptionRequest{
		mk(v1alpha1.RequestDelivered, true), mk(v1alpha1.RequestAccepted, true), mk(v1alpha1.RequestAccepted, true),
		mk(v1alpha1.RequestRejected, true), mk(v1alpha1.RequestFulfilled, false), mk(v1alpha1.RequestPending, true),
	})
	if got != (v1alpha1.GoodsCounts{Delivered: 1, Accepted: 2, Returned: 1}) {
		t.Errorf("countGoods %+v", got)
	}
}

func TestGoodsDecision(t *testing.T) {
	now := time.Now()
	at := metav1.NewTime(now.Add(-2 * time.Hour))
	item := func(opts ...goodsOption) *v1alpha1.GoodsItem {
		i := &v1alpha1.GoodsItem{Name: "kit", Acceptance: v1alpha1.AcceptanceRequired}
		for _, o := range opts {
			o(i, &v1alpha1.GoodsEntitlement{})
		}
		return i
	}
	req := func(d v1alpha1.GoodsDecision) *v1alpha1.ConsumptionRequest {
		return makeRequest("", "").goods("kit", 0).decision(d).obj()
	}
	cases := []struct {
		name           string
		cr             *v1alpha1.ConsumptionRequest
		item           *v1alpha1.GoodsItem
		transferred    *metav1.Time
		accept, reject bool
		reason         string
		deadline       bool
	}{
		{"no decision", req(""), item(), &at, false, false, "", false},
		{"accept", req(v1alpha1.GoodsAccept), item(), &at, true, false, v1alpha1.ReasonAcceptedByConsumer, false},
		{"reject", req(v1alpha1.GoodsReject), item(), nil, false, true, v1alpha1.ReasonRejectedByConsumer, false},
		{"implicit", req(""), item(withImplicitAcceptance()), nil, true, false, v1alpha1.ReasonAcceptedImplicitly, false},
		{"deadline ahead", req(""), item(withDeadline(3*time.Hour, v1alpha1.DeadlineReturn)), &at, false, false, "", true},
		{"deadline passed, return", req(""), item(withDeadline(time.Hour, v1alpha1.DeadlineReturn)), &at, false, true, v1alpha1.ReasonAcceptanceDeadlinePassed, false},
		{"deadline passed, default policy returns", req(""), item(withDeadline(time.Hour, "")), &at, false, true, v1alpha1.ReasonAcceptanceDeadlinePassed, false},
		{"deadline passed, accept", req(""), item(withDeadline(time.Hour, v1alpha1.DeadlineAccept)), &at, true, false, v1alpha1.ReasonAcceptanceDeadlinePassed, false},
		{"reject beats deadline accept", req(v1alpha1.GoodsReject), item(withDeadline(time.Hour, v1alpha1.DeadlineAccept)), &at, false, true, v1alpha1.ReasonRejectedByConsumer, false},
		{"deadline not started before delivery", req(""), item(withDeadline(time.Hour, v1alpha1.DeadlineReturn)), nil, false, false, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := decideGoods(c.cr, c.item, c.transferred, now)
			if o.accept != c.accept || o.reject != c.reject || o.reason != c.reason || (o.deadline != nil) != c.deadline {
				t.Errorf("got %+v", o)
			}
		})
	}
}

func TestGoodsDeniedAfterDeliveryTakesThemBack(t *testing.T) {
	w := newGoodsWorld(t, nil, withManualApproval())
	cr := w.goodsRequest("late-deny", 1)
	mustCreate(t, cr)
	waitPhase(t, cr, v1alpha1.RequestAwaitingApproval)
	addCondition := func(user, typ string) {
		t.Helper()
		get(t, cr)
		patch := client.MergeFromWithOptions(cr.DeepCopy(), client.MergeFromWithOptimisticLock{})
		meta.SetStatusCondition(&cr.Status.Conditions, metav1.Condition{Type: typ, Status: metav1.ConditionTrue,
			Reason: "ByProvider", Message: "test", LastTransitionTime: metav1.Now()})
		if err := userClient(t, user).Status().Patch(testCtx, cr, patch); err != nil {
			t.Fatal(err)
		}
	}
	addCondition(approverUser, v1alpha1.ConditionApproved)
	waitPhase(t, cr, v1alpha1.RequestDelivered)
	sec, cm := w.copies(cr)
	get(t, sec)

	addCondition(providerUser, v1alpha1.ConditionDenied)
	waitPhase(t, cr, v1alpha1.RequestDenied)
	gone(t, sec)
	gone(t, cm)
	if len(cr.Status.Delivered) != 0 {
		t.Errorf("delivered still recorded: %v", cr.Status.Delivered)
	}
}
