package controllers

import (
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

func TestQuotaStatusIsNeitherCachedNorWatched(t *testing.T) {
	q := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "q", Labels: map[string]string{"a": "b"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager"}}},
		Spec:   corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("10")}},
		Status: corev1.ResourceQuotaStatus{Used: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("3")}},
	}
	out, err := stripQuotaStatus(q.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	cached := out.(*corev1.ResourceQuota)
	if len(cached.Status.Used) != 0 || len(cached.ManagedFields) != 0 || !cached.Spec.Hard.Pods().Equal(resource.MustParse("10")) {
		t.Fatalf("cached quota = %+v, want its spec without status or managedFields", cached)
	}

	p := quotaChanged()
	usage := q.DeepCopy()
	usage.Status.Used = corev1.ResourceList{corev1.ResourcePods: resource.MustParse("4")}
	if p.Update(event.UpdateEvent{ObjectOld: q, ObjectNew: usage}) {
		t.Error("a usage-only update passes the predicate")
	}
	edited := q.DeepCopy()
	edited.Spec.Hard[corev1.ResourcePods] = resource.MustParse("100")
	relabelled := q.DeepCopy()
	relabelled.Labels = nil
	deleting := q.DeepCopy()
	deleting.DeletionTimestamp = &metav1.Time{}
	for name, n := range map[string]*corev1.ResourceQuota{"spec": edited, "labels": relabelled, "deletion": deleting} {
		if !p.Update(event.UpdateEvent{ObjectOld: q, ObjectNew: n}) {
			t.Errorf("a %s change is filtered out", name)
		}
	}
}

func TestCachedMetadataSharesRepeatedStrings(t *testing.T) {
	obj := func(name string) *corev1.Namespace {
		// Fresh strings, as a decoder would allocate them for every object.
		s := func(v string) string { return string([]byte(v)) }
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name:          name,
			Labels:        map[string]string{s(v1alpha1.LabelManagedBy): s(v1alpha1.ManagedByValue), s(v1alpha1.LabelRequestName): s(name)},
			Annotations:   map[string]string{s(v1alpha1.AnnotationAgreement): s("team/agreement")},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "offering-operator"}},
		}}
	}
	outA, err := forCache(obj("a"))
	if err != nil {
		t.Fatal(err)
	}
	outB, _ := forCache(obj("b"))
	a, b := outA.(*corev1.Namespace), outB.(*corev1.Namespace)
	if len(a.ManagedFields) != 0 {
		t.Error("managedFields are cached")
	}
	if a.Labels[v1alpha1.LabelRequestName] != "a" || b.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue ||
		a.Annotations[v1alpha1.AnnotationAgreement] != "team/agreement" {
		t.Fatalf("metadata changed: %v %v", a.Labels, a.Annotations)
	}
	key := func(m map[string]string, k string) string {
		for kk := range m {
			if kk == k {
				return kk
			}
		}
		return ""
	}
	same := func(x, y string) bool { return unsafe.StringData(x) == unsafe.StringData(y) }
	if !same(key(a.Labels, v1alpha1.LabelManagedBy), key(b.Labels, v1alpha1.LabelManagedBy)) ||
		!same(a.Labels[v1alpha1.LabelManagedBy], b.Labels[v1alpha1.LabelManagedBy]) ||
		!same(key(a.Annotations, v1alpha1.AnnotationAgreement), key(b.Annotations, v1alpha1.AnnotationAgreement)) {
		t.Error("a repeated label key, label value or annotation key is stored twice")
	}
	if out, err := forCache(toolscache.DeletedFinalStateUnknown{Key: "a"}); err != nil || out == nil {
		t.Errorf("a tombstone: %v, %v", out, err)
	}
}

// TestCacheOptionsWatchNamespaces: --watch-namespaces scopes the cache of
// agreements and requests to those namespaces, and nothing else: offerings
// and the managed objects stay cluster-wide, with their label selector.
func TestCacheOptionsWatchNamespaces(t *testing.T) {
	all := CacheOptions()
	scoped := CacheOptions("team-a", "team-b")
	// Requests are configured either way (requestForCache); agreements only when scoped.
	if len(scoped.ByObject) != len(all.ByObject)+1 {
		t.Fatalf("scoped cache configures %d kinds, want %d", len(scoped.ByObject), len(all.ByObject)+1)
	}
	for obj, by := range scoped.ByObject {
		switch obj.(type) {
		case *v1alpha1.ServiceAgreement, *v1alpha1.ConsumptionRequest:
			if len(by.Namespaces) != 2 || by.Label != nil {
				t.Errorf("%T: namespaces %v, label %v; want team-a and team-b, no label", obj, by.Namespaces, by.Label)
			}
			for _, ns := range []string{"team-a", "team-b"} {
				if _, ok := by.Namespaces[ns]; !ok {
					t.Errorf("%T: %s not cached", obj, ns)
				}
			}
		case *v1alpha1.ServiceOffering:
			t.Errorf("offerings are cluster-scoped, yet scoped: %v", by.Namespaces)
		default:
			if len(by.Namespaces) != 0 || by.Label == nil {
				t.Errorf("%T: namespaces %v, label %v; want every namespace, managed objects only", obj, by.Namespaces, by.Label)
			}
		}
	}
	for obj, by := range all.ByObject {
		switch obj.(type) {
		case *v1alpha1.ServiceAgreement, *v1alpha1.ConsumptionRequest:
			if len(by.Namespaces) != 0 || by.Label != nil {
				t.Errorf("%T scoped without --watch-namespaces: namespaces %v, label %v", obj, by.Namespaces, by.Label)
			}
		}
	}
	for _, opts := range [2]map[client.Object]cache.ByObject{all.ByObject, scoped.ByObject} {
		for obj, by := range opts {
			if _, ok := obj.(*v1alpha1.ConsumptionRequest); ok && by.Transform == nil {
				t.Error("requests are cached whole: no transform")
			}
		}
	}
}
