package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// TestLeaderHandOverMidBurst runs two managers with leader election (3s
// leases, not released on cancel), sends a burst of requests against an
// entitlement a little smaller than the burst, and kills the leader in the
// middle of it: nothing it sends reaches the API server any more, in-flight
// reconciles included. The standby, which wrote nothing while it was not
// leading, takes over and finishes. Every version of every request is
// watched: each reaches its terminal phase (Fulfilled, or Denied once the
// entitlement is used up) exactly once and never leaves it; each granted
// request has exactly one namespace and one set of children; the ledger
// holds exactly the granted requests.
func TestLeaderHandOverMidBurst(t *testing.T) {
	if admin == nil {
		t.Skip("integration test: run without -short, through `make test`")
	}
	const n, grants = 50, 45
	ctx := context.Background()
	w := newWorld(t) // its request is the first of the burst
	editAgreement(t, w, func(agr *v1alpha1.ServiceAgreement) {
		agr.Spec.Entitlements.Resources[0].MaxGrants = ptr.To[int32](grants)
	})
	log := watchRequests(t, w.ns)

	id := "offering-operator-test-" + w.ns
	leader := runOperator(t, operatorOptions{leaderElectionID: id})
	waitElected(t, leader, "the first manager leading")
	standby := runOperator(t, operatorOptions{leaderElectionID: id})

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- admin.Create(ctx, sibling(w, fmt.Sprintf("burst-%02d", i)))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	eventually(t, 60*time.Second, "a fifth of the burst decided", func() error {
		log.check(t)
		leader.running(t)
		standby.running(t)
		if d := len(decided(log)); d < n/5 {
			return fmt.Errorf("%d of %d decided (%s)", d, n, phaseCounts(w))
		}
		return nil
	})
	select {
	case <-standby.mgr.Elected():
		t.Fatal("two managers leading at once")
	default:
	}
	standbyWrites := standby.writes.Load()
	leader.kill(t)
	killedAt, decidedAtKill := time.Now(), len(decided(log))
	if decidedAtKill == n {
		t.Fatal("the burst was over before the leader was killed: the test tested nothing")
	}
	if standbyWrites != 0 {
		t.Fatalf("the standby wrote %d times while not leading", standbyWrites)
	}
	waitElected(t, standby, "the standby taking over")
	tookOver := time.Since(killedAt)

	var list v1alpha1.ConsumptionRequestList
	standby.settle(t, 60*time.Second, "every request decided", func() error {
		if err := admin.List(ctx, &list, client.InNamespace(w.ns)); err != nil {
			return err
		}
		done := 0
		for i := range list.Items {
			if terminal(&list.Items[i]) {
				done++
			}
		}
		if done != n || len(list.Items) != n {
			return fmt.Errorf("%d of %d requests decided", done, len(list.Items))
		}
		return nil
	})
	standby.stop(t)
	log.check(t)
	t.Logf("the leader was killed with %d of %d requests decided; the standby led %s later and decided the other %d",
		decidedAtKill, n, tookOver.Round(100*time.Millisecond), n-decidedAtKill)

	var granted []types.UID
	for i := range list.Items {
		cr := &list.Items[i]
		assertTerminalOnce(t, cr, log.history(cr.UID))
		if cr.Status.Phase == v1alpha1.RequestFulfilled {
			granted = append(granted, cr.UID)
			assertOneGrant(t, cr)
		} else {
			assertNothingHeld(t, w, cr)
		}
	}
	if len(granted) != grants {
		t.Errorf("%d requests granted, want exactly %d", len(granted), grants)
	}
	var nss corev1.NamespaceList
	if err := admin.List(ctx, &nss, client.MatchingLabels{v1alpha1.LabelRequestNamespace: w.ns}); err != nil || len(nss.Items) != grants {
		t.Errorf("%d granted namespaces in all (%v), want %d", len(nss.Items), err, grants)
	}
	assertAllocations(t, w, granted...)
}

func waitElected(t *testing.T, op *operator, what string) {
	t.Helper()
	select {
	case <-op.mgr.Elected():
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out after 30s waiting for %s", what)
	}
}

// terminal reports whether a request reached the end of a burst: granted
// and Ready, or denied.
func terminal(cr *v1alpha1.ConsumptionRequest) bool {
	switch cr.Status.Phase {
	case v1alpha1.RequestFulfilled:
		return meta.IsStatusConditionTrue(cr.Status.Conditions, v1alpha1.ConditionReady)
	case v1alpha1.RequestDenied:
		return true
	}
	return false
}

// decided returns the names of the requests whose latest version seen is terminal.
func decided(l *requestLog) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, versions := range l.versions {
		if cr := versions[len(versions)-1]; terminal(cr) {
			out = append(out, cr.Name)
		}
	}
	return out
}

// assertTerminalOnce checks a request's history: it went through its final
// phase exactly once, at the end, never went through another terminal
// phase, and its fulfilment was recorded once.
func assertTerminalOnce(t *testing.T, final *v1alpha1.ConsumptionRequest, history []*v1alpha1.ConsumptionRequest) {
	t.Helper()
	seen := phases(history)
	if len(seen) == 0 || seen[len(seen)-1] != final.Status.Phase {
		t.Errorf("%s: phases seen %v, final %s", final.Name, seen, final.Status.Phase)
		return
	}
	for _, p := range seen[:len(seen)-1] {
		if p == v1alpha1.RequestFulfilled || p == v1alpha1.RequestDenied || p == v1alpha1.RequestRevoked {
			t.Errorf("%s: phases seen %v: it left a terminal phase", final.Name, seen)
		}
	}
	var first *metav1.Time
	ready := false
	for _, v := range history {
		if r := meta.IsStatusConditionTrue(v.Status.Conditions, v1alpha1.ConditionReady); r {
			ready = true
		} else if ready {
			t.Errorf("%s at resourceVersion %s: Ready again False (phase %s)", final.Name, v.ResourceVersion, v.Status.Phase)
		}
		if f := v.Status.FulfilledAt; f != nil && first == nil {
			first = f
		}
	}
	if first != nil && (final.Status.FulfilledAt == nil || !first.Equal(final.Status.FulfilledAt)) {
		t.Errorf("%s: fulfilledAt was %v, then %v: fulfilled twice", final.Name, first, final.Status.FulfilledAt)
	}
}

// assertOneGrant checks that a granted request has exactly one namespace, the
// one its status names, with one RoleBinding, quota, LimitRange and NetworkPolicy.
func assertOneGrant(t *testing.T, cr *v1alpha1.ConsumptionRequest) {
	t.Helper()
	ctx := context.Background()
	owned := client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)}
	var nss corev1.NamespaceList
	if err := admin.List(ctx, &nss, owned); err != nil || len(nss.Items) != 1 || cr.Status.Grant == nil || nss.Items[0].Name != cr.Status.Grant.Namespace {
		t.Errorf("%s: namespaces %v (%v), grant %+v: want exactly the granted one", cr.Name, names(&nss), err, cr.Status.Grant)
		return
	}
	lists := []client.ObjectList{&rbacv1.RoleBindingList{}, &corev1.ResourceQuotaList{}, &corev1.LimitRangeList{}, &networkingv1.NetworkPolicyList{}}
	for _, l := range lists {
		if err := admin.List(ctx, l, client.InNamespace(cr.Status.Grant.Namespace)); err != nil || meta.LenList(l) != 1 {
			t.Errorf("%s: %T has %d items (%v), want 1", cr.Name, l, meta.LenList(l), err)
		}
	}
	if len(cr.Status.Grant.RoleBindings) != 1 {
		t.Errorf("%s: status.grant.roleBindings %v, want one", cr.Name, cr.Status.Grant.RoleBindings)
	}
}

// phaseCounts summarises the phases of w's requests, for failure messages.
func phaseCounts(w *world) string {
	var list v1alpha1.ConsumptionRequestList
	if err := admin.List(context.Background(), &list, client.InNamespace(w.ns)); err != nil {
		return err.Error()
	}
	counts := map[v1alpha1.RequestPhase]int{}
	for _, cr := range list.Items {
		counts[cr.Status.Phase]++
	}
	return fmt.Sprint(counts)
}
