package controllers

import (
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// grantChildren are the cacheable children of one grant, built from fresh
// strings and maps as a decoder would allocate them for every object.
func grantChildren(request string, subject string) []client.Object {
	s := func(v string) string { return string([]byte(v)) }
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: s(name), Namespace: s("ns-" + request), Labels: map[string]string{
			s(v1alpha1.LabelManagedBy): s(v1alpha1.ManagedByValue), s(v1alpha1.LabelRequestName): s(request),
			s(v1alpha1.LabelRequestUID): s("uid-" + request),
		}}
	}
	return []client.Object{
		&rbacv1.RoleBinding{ObjectMeta: meta("edit"),
			RoleRef:  rbacv1.RoleRef{APIGroup: s(rbacv1.GroupName), Kind: s("ClusterRole"), Name: s("edit")},
			Subjects: []rbacv1.Subject{{Kind: s(rbacv1.GroupKind), APIGroup: s(rbacv1.GroupName), Name: s(subject)}}},
		&corev1.ResourceQuota{ObjectMeta: meta(quotaName),
			Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("10")}}},
		&corev1.LimitRange{ObjectMeta: meta(limitRangeName), Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type: corev1.LimitTypeContainer, DefaultRequest: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}}},
		&networkingv1.NetworkPolicy{ObjectMeta: meta(networkPolicyName), Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}}}}},
	}
}

func cached(t *testing.T, objs []client.Object) []client.Object {
	t.Helper()
	out := make([]client.Object, len(objs))
	for i, o := range objs {
		tr := sharedChildren
		if _, ok := o.(*corev1.ResourceQuota); ok {
			tr = stripQuotaStatus
		}
		c, err := tr(o.DeepCopyObject())
		if err != nil {
			t.Fatal(err)
		}
		out[i] = c.(client.Object)
	}
	return out
}

func sameMap(a, b map[string]string) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// content is what sharing may not change: everything but the managed fields.
func content(o client.Object) client.Object {
	c := o.DeepCopyObject().(client.Object)
	c.SetManagedFields(nil)
	return c
}

// TestCachedChildrenShareSpecsAndLabels: the children of two grants of one
// item hold one copy of each spec, the children of one grant one copy of
// their labels, and every cached object still equals what the API server sent.
func TestCachedChildrenShareSpecsAndLabels(t *testing.T) {
	inA, inB := grantChildren("a", "team"), grantChildren("b", "team")
	a, b := cached(t, inA), cached(t, inB)
	for i := range a {
		for _, pair := range [][2]client.Object{{inA[i], a[i]}, {inB[i], b[i]}} {
			if !equality.Semantic.DeepEqual(content(pair[0]), pair[1]) {
				t.Errorf("%T changed in the cache:\n%+v\n%+v", pair[0], pair[0], pair[1])
			}
		}
		if !sameMap(a[i].GetLabels(), a[0].GetLabels()) {
			t.Errorf("%T of one grant holds its own copy of the grant's labels", a[i])
		}
		if sameMap(a[i].GetLabels(), b[i].GetLabels()) {
			t.Errorf("%T of two grants share labels that differ", a[i])
		}
	}
	if &a[0].(*rbacv1.RoleBinding).Subjects[0] != &b[0].(*rbacv1.RoleBinding).Subjects[0] {
		t.Error("two RoleBindings of the same subjects hold a copy each")
	}
	if reflect.ValueOf(a[1].(*corev1.ResourceQuota).Spec.Hard).UnsafePointer() != reflect.ValueOf(b[1].(*corev1.ResourceQuota).Spec.Hard).UnsafePointer() {
		t.Error("two quotas of the same spec hold a copy each")
	}
	if &a[2].(*corev1.LimitRange).Spec.Limits[0] != &b[2].(*corev1.LimitRange).Spec.Limits[0] {
		t.Error("two limit ranges of the same spec hold a copy each")
	}
	if &a[3].(*networkingv1.NetworkPolicy).Spec.Ingress[0] != &b[3].(*networkingv1.NetworkPolicy).Spec.Ingress[0] {
		t.Error("two network policies of the same spec hold a copy each")
	}
	if unsafe.StringData(a[0].GetNamespace()) != unsafe.StringData(a[3].GetNamespace()) ||
		unsafe.StringData(a[1].GetName()) != unsafe.StringData(b[1].GetName()) {
		t.Error("a grant's namespace name or a child's name is held once per object")
	}
	// Different subjects: a copy of their own.
	other := cached(t, grantChildren("c", "other-team"))
	if &other[0].(*rbacv1.RoleBinding).Subjects[0] == &a[0].(*rbacv1.RoleBinding).Subjects[0] {
		t.Error("RoleBindings of different subjects share them")
	}
	// A client's read is a deep copy: changing it leaves the shared copies alone.
	readCopy := a[0].DeepCopyObject().(*rbacv1.RoleBinding)
	readCopy.Labels[v1alpha1.LabelRequestName] = "changed"
	readCopy.Subjects[0].Name = "changed"
	if b[0].(*rbacv1.RoleBinding).Subjects[0].Name != "team" || a[1].GetLabels()[v1alpha1.LabelRequestName] != "a" {
		t.Error("a read copy shares memory with the cache")
	}
	runtime.KeepAlive(b)
}

// TestSharedLabelSetsFollowTheCache: a label set is held only while a cached
// object points at it, and contents a tenant chose the size of are not held.
func TestSharedLabelSetsFollowTheCache(t *testing.T) {
	held := func(lbls map[string]string) bool {
		key, _ := labelKey(lbls)
		labelSets.Lock()
		defer labelSets.Unlock()
		return labelSets.m[key] != nil
	}
	gone := grantChildren("gone", "team")[0].GetLabels()
	func() {
		objs := cached(t, grantChildren("gone", "team"))
		if !held(gone) {
			t.Fatal("the label set of cached objects is not held")
		}
		runtime.KeepAlive(objs)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for held(gone) {
		if time.Now().After(deadline) {
			t.Fatal("the label set is held after its objects were collected")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}

	big := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "big", Namespace: "t",
		Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, "x": strings.Repeat("a", 63)}},
		Subjects: make([]rbacv1.Subject, 100)}
	for i := range big.Subjects {
		big.Subjects[i] = rbacv1.Subject{Kind: rbacv1.UserKind, Name: strings.Repeat("u", 60)}
	}
	for i := 0; i < 70; i++ {
		big.Labels[strings.Repeat("k", 60)+string(rune('a'+i%26))+string(rune('a'+i/26))] = strings.Repeat("v", 63)
	}
	if _, err := sharedChildren(big); err != nil {
		t.Fatal(err)
	}
	if _, ok := specKey(rbacv1.RoleBinding{RoleRef: big.RoleRef, Subjects: big.Subjects}); ok || held(big.Labels) {
		t.Error("contents above the size bound are held in the shared tables")
	}
}

// TestCachedRequestsShareRepeatedStrings: what requests have in common is
// held once, and a cached request keeps its content but for what the cache
// leaves out (requestForCache).
func TestCachedRequestsShareRepeatedStrings(t *testing.T) {
	s := func(v string) string { return string([]byte(v)) }
	req := func(name string) *v1alpha1.ConsumptionRequest {
		return &v1alpha1.ConsumptionRequest{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s("team"), Finalizers: []string{s("service.offering.dev/finalizer")}},
			Spec: v1alpha1.ConsumptionRequestSpec{Agreement: v1alpha1.AgreementName(s("bench")),
				Creator: &v1alpha1.UserInfo{Username: "alice", Groups: []string{"team"}}},
			Status: v1alpha1.ConsumptionRequestStatus{
				Phase: v1alpha1.RequestPhase(s("Fulfilled")), Item: s("Resource/space"), Offering: s("bench"),
				Conditions: []metav1.Condition{{Type: s("Ready"), Status: metav1.ConditionStatus(s("True")), Reason: s("Granted"), Message: s("granted " + name)}},
				Decision: &v1alpha1.RequestDecision{Type: v1alpha1.RequestDecisionType(s("Approved")), AgreementUID: s("uid"),
					ApprovalPolicy: v1alpha1.ApprovalPolicy(s("Automatic")), By: v1alpha1.UserInfo{Username: s("admin"), Groups: []string{s("system:authenticated")}}},
			},
		}
	}
	in := req("a")
	outA, err := requestForCache(in.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	outB, _ := requestForCache(req("b"))
	a, b := outA.(*v1alpha1.ConsumptionRequest), outB.(*v1alpha1.ConsumptionRequest)
	want := in.DeepCopy()
	want.Spec.Creator = nil
	if !equality.Semantic.DeepEqual(want, a) {
		t.Fatalf("the cached request changed:\n%+v\n%+v", want, a)
	}
	same := func(x, y string) bool { return unsafe.StringData(x) == unsafe.StringData(y) }
	ca, cb := a.Status.Conditions[0], b.Status.Conditions[0]
	if !same(ca.Type, cb.Type) || !same(string(ca.Status), string(cb.Status)) || !same(ca.Reason, cb.Reason) ||
		!same(string(a.Status.Phase), string(b.Status.Phase)) || !same(a.Status.Item, b.Status.Item) ||
		!same(a.Finalizers[0], b.Finalizers[0]) || !same(a.Status.Decision.By.Groups[0], b.Status.Decision.By.Groups[0]) ||
		!same(string(a.Spec.Agreement), string(b.Spec.Agreement)) {
		t.Error("a string requests have in common is held once per request")
	}
}
