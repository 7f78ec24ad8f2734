package integration

import (
	"context"
	"fmt"
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// A resize in place (a change of plan on a granted request), crashed on at
// every write.

// withPlans gives the world's access item the plans small (its default)
// and large in place of its own quota and limits.
func withPlans(_ *world, off *v1alpha1.ServiceOffering, _ *v1alpha1.ServiceAgreement) []client.Object {
	item := &off.Spec.Resources[0]
	pods := func(n string) corev1.ResourceList {
		return corev1.ResourceList{corev1.ResourcePods: resource.MustParse(n)}
	}
	larger := []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, DefaultRequest: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}
	item.Plans = []v1alpha1.Plan{{Name: "small", Quota: pods("3"), Limits: item.Limits}, {Name: "large", Quota: pods("6"), Limits: larger}}
	item.DefaultPlan, item.Quota, item.Limits = "small", nil, nil
	return nil
}

// setPlan changes the world's request's plan, as its consumer does.
func (w *world) setPlan(t *testing.T, plan v1alpha1.PlanName) {
	t.Helper()
	cr := w.get(t)
	patch := client.MergeFrom(cr.DeepCopy())
	cr.Spec.Resource.Plan = plan
	if err := admin.Patch(context.Background(), cr, patch); err != nil {
		t.Fatal(err)
	}
}

// resizedTo is reached when the request is Ready under the plan.
func (w *world) resizedTo(plan v1alpha1.PlanName) func() error {
	return func() error {
		if err := w.ready(); err != nil {
			return err
		}
		cr, err := w.current()
		if err != nil {
			return err
		}
		if cr.Status.Grant == nil || cr.Status.Grant.Plan != plan {
			return fmt.Errorf("not granted under plan %s yet", plan)
		}
		return nil
	}
}

// grantUIDs are the UIDs of the request's namespace and RoleBindings.
func (w *world) grantUIDs(t *testing.T) map[string]types.UID {
	t.Helper()
	cr := w.get(t)
	out := map[string]types.UID{}
	var ns corev1.Namespace
	if err := admin.Get(context.Background(), client.ObjectKey{Name: cr.Status.Grant.Namespace}, &ns); err != nil {
		t.Fatal(err)
	}
	out["namespace"] = ns.UID
	var rbs rbacv1.RoleBindingList
	if err := admin.List(context.Background(), &rbs, client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)}); err != nil {
		t.Fatal(err)
	}
	for _, rb := range rbs.Items {
		out["RoleBinding "+rb.Name] = rb.UID
	}
	return out
}

// TestCrashAtEveryWriteOnResize crashes the manager at every write while a
// granted request moves to a larger plan: whatever write the crash hit, the
// quota ends at the new plan's, and the namespace and RoleBindings are the
// very objects of the grant.
func TestCrashAtEveryWriteOnResize(t *testing.T) {
	crashAtEveryWrite(t, "a resize in place", 30, func(t *testing.T) path {
		w := newWorld(t, withPlans)
		settle(t, "the request Ready under plan small", path{reached: w.resizedTo("small")})
		before := w.grantUIDs(t)
		w.setPlan(t, "large")
		return path{reached: w.resizedTo("large"), check: func(t *testing.T, k int64) {
			w.assertGranted(t, k)
			if after := w.grantUIDs(t); !maps.Equal(after, before) {
				t.Fatalf("fault %d: the resize replaced granted objects: %v, were %v", k, after, before)
			}
			var q corev1.ResourceQuota
			if err := admin.Get(context.Background(), client.ObjectKey{Namespace: w.get(t).Status.Grant.Namespace, Name: "offering-quota"}, &q); err != nil ||
				q.Spec.Hard.Pods().Cmp(resource.MustParse("6")) != 0 {
				t.Fatalf("fault %d: quota %v (%v), want the large plan's", k, q.Spec.Hard, err)
			}
		}}
	})
}
