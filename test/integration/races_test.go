package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
	"github.com/offering-operator/offering-operator/controllers"
	"github.com/offering-operator/offering-operator/internal/plugin"
)

// TestSuccessorNeverRevokedByPredecessor recreates a request under the same
// name (a new UID) after its predecessor was revoked, so that the successor
// is granted the very same namespace and RoleBinding names. Then a manager
// whose cache still shows the predecessor being deleted (as a lagging cache,
// or a deposed leader, would) runs the predecessor's cleanup: it must not
// delete anything of the successor, nor take its finalizer away. Admission on
// stale reads is covered by TestAdmissionNeverOverGrantsOnStaleReads and
// TestEntitlementIsNeverOverGranted (controllers/).
func TestSuccessorNeverRevokedByPredecessor(t *testing.T) {
	if admin == nil {
		t.Skip("integration test: run without -short, through `make test`")
	}
	ctx := context.Background()
	w := newWorld(t)
	op := runOperator(t, operatorOptions{})
	op.settle(t, 30*time.Second, "the predecessor Ready", func() error { return requestReady(w.request) })
	op.stop(t)

	// The predecessor as the API server shows it once deleted: a deletion timestamp, the finalizer, the grant.
	if err := admin.Delete(ctx, w.request); err != nil {
		t.Fatal(err)
	}
	stale := &v1alpha1.ConsumptionRequest{}
	if err := admin.Get(ctx, client.ObjectKeyFromObject(w.request), stale); err != nil || stale.DeletionTimestamp.IsZero() {
		t.Fatalf("the predecessor being deleted: %v %v", err, stale.DeletionTimestamp)
	}
	op = runOperator(t, operatorOptions{})
	op.settle(t, 30*time.Second, "the predecessor revoked and released", w.gone)
	op.stop(t)
	finishNamespaceDeletion(t, stale.Status.Grant.Namespace)

	succ := sibling(w, w.request.Name)
	mustCreateObj(t, succ)
	op = runOperator(t, operatorOptions{})
	op.settle(t, 30*time.Second, "the successor Ready", func() error { return requestReady(succ) })
	op.stop(t)
	if succ.Status.Grant.Namespace != stale.Status.Grant.Namespace || succ.UID == stale.UID {
		t.Fatalf("the successor (%s) got namespace %s, the predecessor (%s) had %s: the race needs the same", succ.UID,
			succ.Status.Grant.Namespace, stale.UID, stale.Status.Grant.Namespace)
	}
	before := grantObjects(t, succ)

	log := watchRequests(t, w.ns)
	var served atomic.Bool
	op = runOperator(t, operatorOptions{get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if cr, ok := obj.(*v1alpha1.ConsumptionRequest); ok && key == client.ObjectKeyFromObject(stale) && served.CompareAndSwap(false, true) {
			stale.DeepCopyInto(cr)
			return nil
		}
		return c.Get(ctx, key, obj, opts...)
	}})
	op.settle(t, 30*time.Second, "the stale predecessor reconciled", func() error {
		if !served.Load() {
			return errors.New("the stale predecessor was not read yet")
		}
		return requestReady(succ)
	})
	op.stop(t)
	log.check(t)

	if after := grantObjects(t, succ); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the successor's objects changed under the predecessor's cleanup:\nbefore %v\nafter  %v", before, after)
	}
	for _, v := range log.history(succ.UID) {
		if !controllerutil.ContainsFinalizer(v, v1alpha1.Finalizer) || !v.DeletionTimestamp.IsZero() {
			t.Errorf("the successor lost its finalizer (resourceVersion %s: finalizers %v, deletionTimestamp %v)",
				v.ResourceVersion, v.Finalizers, v.DeletionTimestamp)
		}
	}
	assertAllocations(t, w, succ.UID)
}

// grantObjects returns "kind/namespace/name" -> UID of the namespace granted
// to cr and of every object in it, failing if any is being deleted.
func grantObjects(t *testing.T, cr *v1alpha1.ConsumptionRequest) map[string]types.UID {
	t.Helper()
	ctx := context.Background()
	out := map[string]types.UID{}
	ns := cr.Status.Grant.Namespace
	var nsObj corev1.Namespace
	if err := admin.Get(ctx, client.ObjectKey{Name: ns}, &nsObj); err != nil {
		t.Fatal(err)
	}
	objs := []client.Object{&nsObj}
	lists := []client.ObjectList{&rbacv1.RoleBindingList{}, &corev1.ResourceQuotaList{}, &corev1.LimitRangeList{}, &networkingv1.NetworkPolicyList{}}
	for _, l := range lists {
		if err := admin.List(ctx, l, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		if err := meta.EachListItem(l, func(o runtime.Object) error {
			objs = append(objs, o.(client.Object))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range objs {
		kind := strings.TrimPrefix(fmt.Sprintf("%T", o), "*")
		if !o.GetDeletionTimestamp().IsZero() {
			t.Errorf("%s %s is being deleted", kind, o.GetName())
		}
		out[kind+"/"+o.GetNamespace()+"/"+o.GetName()] = o.GetUID()
	}
	return out
}

// finishNamespaceDeletion does the namespace controller's work, which
// envtest does not run: it empties a namespace being deleted and finalizes
// it, so that its name is free again.
func finishNamespaceDeletion(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	for _, obj := range []client.Object{&rbacv1.RoleBinding{}, &corev1.ResourceQuota{}, &corev1.LimitRange{}, &networkingv1.NetworkPolicy{}} {
		if err := admin.DeleteAllOf(ctx, obj, client.InNamespace(name)); err != nil {
			t.Fatal(err)
		}
	}
	var ns corev1.Namespace
	if err := admin.Get(ctx, client.ObjectKey{Name: name}, &ns); err != nil {
		t.Fatal(err)
	}
	if ns.DeletionTimestamp.IsZero() {
		t.Fatalf("namespace %s is not being deleted", name)
	}
	ns.Spec.Finalizers = nil
	if err := admin.SubResource("finalize").Update(ctx, &ns); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "namespace "+name+" gone", func() error {
		err := admin.Get(ctx, client.ObjectKey{Name: name}, &corev1.Namespace{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err == nil {
			err = errors.New("still there")
		}
		return err
	})
}

// TestApprovalSurvivesConcurrentStatusWrites has approvers approve many
// requests under a Manual agreement while the operator writes the same
// requests' status, in three interleavings, a third of the requests each:
// the approval races the operator's first reconcile; it races the rewrites
// caused by the agreement being suspended and reactivated over and over
// (which go on during the whole test); or it lands while a status write the
// operator computed before it is held back, so that the stale write lands
// after the approval. Approvers write as kubectl-offering does (server-side
// apply of the one condition, field manager kubectl-offering) or as a script
// would (a merge patch of the conditions with optimistic locking), retrying
// on conflicts. Every version of every request is watched: once approved, a
// request stays approved with the approver's reason and message, the
// operator never owns the Approved condition, and every request ends granted.
func TestApprovalSurvivesConcurrentStatusWrites(t *testing.T) {
	if admin == nil {
		t.Skip("integration test: run without -short, through `make test`")
	}
	const n = 42
	ctx := context.Background()
	w := newWorld(t)
	editAgreement(t, w, func(agr *v1alpha1.ServiceAgreement) {
		agr.Spec.ApprovalPolicy = v1alpha1.ApprovalManual
		agr.Spec.Entitlements.Resources[0].MaxGrants = nil
	})
	if err := admin.Delete(ctx, w.request); err != nil { // not reconciled yet: gone at once
		t.Fatal(err)
	}
	log := watchRequests(t, w.ns)
	// The operator's status writes of some requests are held back until they are approved.
	var holds sync.Map // request name -> *hold
	op := runOperator(t, operatorOptions{beforeWrite: func(r *http.Request) error {
		prefix := apiPath(w.ns, "consumptionrequests", "")
		if r.Method != http.MethodPut || !strings.HasPrefix(r.URL.Path, prefix) || !strings.HasSuffix(r.URL.Path, "/status") {
			return nil
		}
		if h, ok := holds.Load(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, prefix), "/status")); ok {
			return h.(*hold).beforeWrite(r)
		}
		return nil
	}})

	// The operator rewrites every request's status at each suspension and reactivation.
	churnCtx, stopChurn := context.WithCancel(ctx)
	churnDone := make(chan error, 1)
	var toggles atomic.Int64
	go func() {
		suspended := false
		for churnCtx.Err() == nil {
			suspended = !suspended
			if err := patchAgreement(w, func(agr *v1alpha1.ServiceAgreement) { agr.Spec.Suspended = suspended }); err != nil {
				churnDone <- err
				return
			}
			toggles.Add(1)
			time.Sleep(100 * time.Millisecond)
		}
		churnDone <- patchAgreement(w, func(agr *v1alpha1.ServiceAgreement) { agr.Spec.Suspended = false })
	}()

	var conflicts atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 50 * time.Millisecond) // requests arrive over two seconds
			cr := sibling(w, fmt.Sprintf("approve-%02d", i))
			var h *hold
			if i%3 == 2 {
				h = newHold(func(*http.Request) bool { return true })
				holds.Store(cr.Name, h)
				defer h.let()
			}
			if err := admin.Create(ctx, cr); err != nil {
				errs <- err
				return
			}
			switch i % 3 {
			case 0: // right away, racing the operator's first reconcile (finalizer, admission, first status)
				time.Sleep(time.Duration(i%5) * 10 * time.Millisecond)
			case 1: // once the operator reported on it, racing its rewrites
				if err := waitReported(log, cr.Name); err != nil {
					errs <- err
					return
				}
			case 2: // while a status write the operator computed before the approval waits to land
				if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
					return h.held.Load() > 0, nil
				}); err != nil {
					errs <- fmt.Errorf("%s: no status write held: %w", cr.Name, err)
					return
				}
			}
			// The approver thinks between reading the request and writing its decision.
			errs <- approve(ctx, cr, i/3%2 == 0, time.Duration(i%7)*10*time.Millisecond, &conflicts)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	stopChurn()
	if err := <-churnDone; err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	var list v1alpha1.ConsumptionRequestList
	op.settle(t, 60*time.Second, "every request granted", func() error {
		if err := admin.List(ctx, &list, client.InNamespace(w.ns)); err != nil {
			return err
		}
		ready := 0
		for i := range list.Items {
			if requestReady(&list.Items[i]) == nil {
				ready++
			}
		}
		if ready != n || len(list.Items) != n {
			return fmt.Errorf("%d of %d requests Ready", ready, len(list.Items))
		}
		return nil
	})
	op.stop(t)
	log.check(t)
	t.Logf("%d approvals (%d of them before a stale status write of the operator's landed) raced %d suspensions and reactivations; approvers retried %d conflicts",
		n, n/3, toggles.Load(), conflicts.Load())

	for i := range list.Items {
		cr := &list.Items[i]
		want := "ticket " + cr.Name
		c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionApproved)
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != plugin.ReasonApprovedByProvider || c.Message != want || cr.Status.ApprovedAt == nil {
			t.Errorf("%s: Approved %+v, approvedAt %v: the approver's decision was lost or changed", cr.Name, c, cr.Status.ApprovedAt)
		}
		for _, mf := range cr.ManagedFields {
			if mf.Manager == controllers.FieldOwner && mf.FieldsV1 != nil && strings.Contains(mf.FieldsV1.GetRawString(), `k:{\"type\":\"Approved\"}`) {
				t.Errorf("%s: the operator owns the Approved condition (%s)", cr.Name, mf.Operation)
			}
		}
		approved := false
		for _, v := range log.history(cr.UID) {
			c := meta.FindStatusCondition(v.Status.Conditions, v1alpha1.ConditionApproved)
			switch {
			case c != nil && (c.Status != metav1.ConditionTrue || c.Reason != plugin.ReasonApprovedByProvider || c.Message != want):
				t.Errorf("%s at resourceVersion %s: Approved %+v is not the approver's", cr.Name, v.ResourceVersion, c)
			case c != nil:
				approved = true
			case approved:
				t.Errorf("%s at resourceVersion %s (phase %s): the approval was lost", cr.Name, v.ResourceVersion, v.Status.Phase)
			}
		}
	}
}

// waitReported waits, on the watch, until the operator has written a phase on the request.
func waitReported(log *requestLog, name string) error {
	return wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		cr := log.latest(name)
		return cr != nil && cr.Status.Phase != "", nil
	})
}

// approve adds Approved=True to a request as a provider would, thinking for
// a while after reading it, and retrying on conflicts: with ssa, as `kubectl offering approve` does
// (internal/plugin/approve.go), otherwise as TestManualApproval's approver
// does (a merge patch of the conditions read, with optimistic locking).
func approve(ctx context.Context, cr *v1alpha1.ConsumptionRequest, ssa bool, think time.Duration, conflicts *atomic.Int64) error {
	backoff := wait.Backoff{Steps: 100, Duration: 5 * time.Millisecond, Factor: 1.2, Cap: 100 * time.Millisecond, Jitter: 0.5}
	return retry.OnError(backoff, apierrors.IsConflict, func() error {
		var cur v1alpha1.ConsumptionRequest
		if err := admin.Get(ctx, client.ObjectKeyFromObject(cr), &cur); err != nil {
			return err
		}
		time.Sleep(think)
		cond := metav1.Condition{Type: v1alpha1.ConditionApproved, Status: metav1.ConditionTrue, ObservedGeneration: cur.Generation,
			LastTransitionTime: metav1.NewTime(time.Now().Truncate(time.Second)), Reason: plugin.ReasonApprovedByProvider, Message: "ticket " + cur.Name}
		var err error
		if ssa {
			u := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": v1alpha1.GroupVersion.String(),
				"kind":       "ConsumptionRequest",
				"metadata":   map[string]any{"name": cur.Name, "namespace": cur.Namespace, "resourceVersion": cur.ResourceVersion},
				"status": map[string]any{"conditions": []any{map[string]any{
					"type": cond.Type, "status": string(cond.Status), "observedGeneration": cond.ObservedGeneration,
					"lastTransitionTime": cond.LastTransitionTime.UTC().Format(time.RFC3339), "reason": cond.Reason, "message": cond.Message,
				}}},
			}}
			err = admin.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(plugin.FieldManager))
		} else {
			patch := client.MergeFromWithOptions(cur.DeepCopy(), client.MergeFromWithOptimisticLock{})
			meta.SetStatusCondition(&cur.Status.Conditions, cond)
			err = admin.Status().Patch(ctx, &cur, patch, client.FieldOwner("provider-script"))
		}
		if apierrors.IsConflict(err) {
			conflicts.Add(1)
		}
		if err != nil {
			return fmt.Errorf("approving %s: %w", cur.Name, err)
		}
		return nil
	})
}
