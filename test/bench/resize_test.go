//go:build bench

package bench

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// resizeSize is how many granted requests scenario 6 moves to a larger plan
// (0 skips it).
var resizeSize = envInt("BENCH_RESIZE", 200)

// setupPlans creates an offering whose item has the plans small and large
// (each with a quota and a limit range) and an unlimited agreement for it.
func (e *env) setupPlans() {
	t, ctx := e.t, context.Background()
	plan := func(name, pods, cpu string) v1alpha1.Plan {
		return v1alpha1.Plan{Name: v1alpha1.PlanName(name), Quota: corev1.ResourceList{corev1.ResourcePods: resource.MustParse(pods)},
			Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, DefaultRequest: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}}
	}
	must(t, e.c.Create(ctx, &v1alpha1.ServiceOffering{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-plans"},
		Spec: v1alpha1.ServiceOfferingSpec{
			Provider: v1alpha1.Provider{Name: "Bench"}, ProviderNamespace: "default",
			Resources: []v1alpha1.ResourceItem{{
				Name: "space", ClusterRoles: []v1alpha1.ClusterRoleName{"bench-edit", "bench-view"},
				Plans: []v1alpha1.Plan{plan("small", "10", "100m"), plan("large", "40", "200m")}, DefaultPlan: "small",
				NetworkIsolation: v1alpha1.NetworkIsolationNamespace, RevocationPolicy: v1alpha1.RevocationPolicyDelete,
			}},
		},
	}))
	must(t, e.c.Create(ctx, &v1alpha1.ServiceAgreement{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-plans", Namespace: e.ns},
		Spec: v1alpha1.ServiceAgreementSpec{
			Offering:       "bench-plans",
			Consumer:       v1alpha1.Consumer{Name: "Bench", Subjects: []v1alpha1.Subject{{Kind: v1alpha1.SubjectGroup, Name: "bench-team"}}},
			Entitlements:   v1alpha1.Entitlements{Resources: []v1alpha1.ResourceEntitlement{{Name: "space"}}},
			ApprovalPolicy: v1alpha1.ApprovalAutomatic,
		},
	}))
}

// resize grants n requests under plan small, moves them all to plan large
// and reports what the moves cost the API server.
func (e *env) resize(rep *report, mgr *manager, n int) {
	e.setupPlans()
	const run = "resize"
	rw, stop := e.watchReady(run)
	parallel(n, func(i int) {
		cr := e.request(run, i)
		cr.Spec.Agreement = "bench-plans"
		must(e.t, e.c.Create(context.Background(), cr))
	})
	e.waitAll(rw, n, 10*time.Minute)
	stop()
	time.Sleep(2 * time.Second) // the agreement's roll-ups of the grants
	before := apiCalls(mgr.metrics(e.t))
	start := time.Now()
	parallel(n, func(i int) {
		cr := e.request(run, i)
		patch := client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"resource":{"plan":"large"}}}`))
		must(e.t, e.c.Patch(context.Background(), cr, patch))
	})
	e.waitPlan(run, "large", n, 10*time.Minute)
	wall := time.Since(start)
	time.Sleep(2 * time.Second)
	c := diffCalls(before, apiCalls(mgr.metrics(e.t)))
	per := func(v float64) float64 { return v / float64(n) }
	rep.add("6. writes per resize", "%.2f stored writes, plus %.2f SubjectAccessReviews (answered, not stored): %.2f calls; %.3f writes refused; live GETs per resize %.2f; %d resizes in %s",
		per(c.writes), per(c.reviews), per(c.writes+c.reviews), per(c.refused), per(c.gets), n, wall.Round(time.Millisecond))
	rep.add("6. resize writes by verb and resource", "%s", c.byKind)
}

// waitPlan waits until the n requests of a run are Ready under the plan.
func (e *env) waitPlan(run string, plan v1alpha1.PlanName, n int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for got := 0; ; time.Sleep(500 * time.Millisecond) {
		var list v1alpha1.ConsumptionRequestList
		must(e.t, e.c.List(context.Background(), &list, client.InNamespace(e.ns), client.MatchingLabels{"bench-run": run}))
		got = 0
		for i := range list.Items {
			cr := &list.Items[i]
			if cr.Status.Grant != nil && cr.Status.Grant.Plan == plan && meta.IsStatusConditionTrue(cr.Status.Conditions, v1alpha1.ConditionReady) {
				got++
			}
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatal(fmt.Errorf("only %d of %d requests under plan %s after %s", got, n, plan, timeout))
		}
	}
}
