package controllers

import (
	"context"
	"testing"
	"time"
	"unsafe"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

func TestOmitEventsDropsOnlyTheNamedReasons(t *testing.T) {
	fake := events.NewFakeRecorder(10)
	rec := omitEvents(fake, []string{"Granted"})
	cr := &v1alpha1.ConsumptionRequest{}
	rec.Eventf(cr, nil, corev1.EventTypeNormal, "Granted", "Grant", "access to namespace %s granted", "a")
	rec.AnnotatedEventf(cr, nil, map[string]string{"k": "v"}, corev1.EventTypeNormal, "Granted", "Grant", "granted")
	rec.Eventf(cr, nil, corev1.EventTypeNormal, "Revoked", "Revoke", "access to namespace %s revoked", "a")
	rec.AnnotatedEventf(cr, nil, map[string]string{"k": "v"}, corev1.EventTypeWarning, "AccessDenied", "Verify", "denied")
	close(fake.Events)
	var got []string
	for e := range fake.Events {
		got = append(got, e)
	}
	want := []string{"Normal Revoked access to namespace a revoked", "Warning AccessDenied denied"}
	if len(got) != len(want) {
		t.Fatalf("events = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestOmitEventsWithNothingToOmitIsTheRecorderItself(t *testing.T) {
	fake := events.NewFakeRecorder(1)
	if rec := omitEvents(fake, nil); rec != fake {
		t.Fatalf("omitEvents(rec, nil) wraps the recorder: %T", rec)
	}
}

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

func TestAuthorizerRetryStartsFastAndBacksOff(t *testing.T) {
	for _, c := range []struct{ waited, want time.Duration }{
		{0, 100 * time.Millisecond},
		{150 * time.Millisecond, 100 * time.Millisecond},
		{400 * time.Millisecond, 200 * time.Millisecond},
		{1500 * time.Millisecond, 750 * time.Millisecond},
		{10 * time.Second, time.Second},
	} {
		if got := authorizerRetry(c.waited); got != c.want {
			t.Errorf("authorizerRetry(%s) = %s, want %s", c.waited, got, c.want)
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

// TestRoleBindingsAllOrNothing: the bindings of an item are written together
// (in parallel), and only after every role passed the policy, so that a role
// turned dangerous never leaves the item's other roles bound.
func TestRoleBindingsAllOrNothing(t *testing.T) {
	grantable := map[string]string{v1alpha1.LabelGrantable: "true"}
	safe := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "safe", Labels: grantable},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}}}
	other := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "other", Labels: grantable},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}}}
	dangerous := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "dangerous", Labels: grantable},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"roles"}, Verbs: []string{"escalate"}}}}
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(safe, other, dangerous).Build()
	r := &RequestReconciler{Client: c, APIReader: c, Policy: NewRolePolicy(nil)}
	cr := &v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{Name: "req", Namespace: "team", UID: "uid-1"}}
	agr := &v1alpha1.ServiceAgreement{Spec: v1alpha1.ServiceAgreementSpec{
		Consumer: v1alpha1.Consumer{Subjects: []v1alpha1.Subject{{Kind: v1alpha1.SubjectGroup, Name: "devs"}}}}}
	lbls := map[string]string{v1alpha1.LabelRequestUID: "uid-1"}
	count := func() int {
		var list rbacv1.RoleBindingList
		if err := c.List(context.Background(), &list, client.InNamespace("granted")); err != nil {
			t.Fatal(err)
		}
		return len(list.Items)
	}

	refused := &v1alpha1.ResourceItem{ClusterRoles: []v1alpha1.ClusterRoleName{"safe", "dangerous"}}
	names, wrote, err := r.ensureRoleBindings(context.Background(), cr, agr, refused, "granted", lbls)
	if err == nil || wrote || len(names) != 0 || count() != 0 {
		t.Fatalf("with a refused role: names %v wrote %v err %v, %d bindings; want an error and nothing bound", names, wrote, err, count())
	}

	both := &v1alpha1.ResourceItem{ClusterRoles: []v1alpha1.ClusterRoleName{"safe", "other"}}
	names, wrote, err = r.ensureRoleBindings(context.Background(), cr, agr, both, "granted", lbls)
	if err != nil || !wrote || len(names) != 2 || count() != 2 {
		t.Fatalf("names %v wrote %v err %v, %d bindings; want both bound", names, wrote, err, count())
	}
	if names[0] != roleBindingName("safe") || names[1] != roleBindingName("other") {
		t.Errorf("names %v are not in the item's order", names)
	}
	if _, wrote, err = r.ensureRoleBindings(context.Background(), cr, agr, both, "granted", lbls); err != nil || wrote {
		t.Errorf("second pass wrote %v, err %v; want nothing written", wrote, err)
	}
}

// TestFreshGrantReasksTheAuthorizer: bindings written in this reconcile that
// the authorizer does not see yet are asked about again (50, 100, 200 ms)
// before a wait is recorded; an older grant records the wait at once, keeps
// the time the wait began, and is denied once VerifyTimeout has passed.
func TestFreshGrantReasksTheAuthorizer(t *testing.T) {
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "edit-pods"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create"}}}}
	agr := &v1alpha1.ServiceAgreement{Spec: v1alpha1.ServiceAgreementSpec{
		Consumer: v1alpha1.Consumer{Subjects: []v1alpha1.Subject{{Kind: v1alpha1.SubjectGroup, Name: "devs"}}}}}
	item := &v1alpha1.ResourceItem{ClusterRoles: []v1alpha1.ClusterRoleName{"edit-pods"}}

	// run verifies a grant against an authorizer that denies the first
	// `denials` reviews; it returns the reviews asked and the outcome.
	// prev, when set, is the AccessVerified condition the request already has.
	var prev *metav1.Condition
	run := func(denials int, wrote bool) (int, *requestState, ctrl.Result) {
		reviews := 0
		c := interceptor.NewClient(fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(role).Build(), interceptor.Funcs{
			Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
				sar, ok := obj.(*authorizationv1.SubjectAccessReview)
				if !ok {
					return c.Create(ctx, obj, opts...)
				}
				reviews++
				sar.Status.Allowed = reviews > denials
				sar.Status.Reason = "not yet"
				return nil
			},
		})
		r := &RequestReconciler{Client: c, APIReader: c, Recorder: events.NewFakeRecorder(10),
			Options: Options{VerifyTimeout: 30 * time.Second}}
		cr := &v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{Name: "req", Namespace: "team", Generation: 1,
			CreationTimestamp: metav1.NewTime(time.Now().Add(-time.Second))}}
		if prev != nil {
			cr.Status.Conditions = []metav1.Condition{*prev}
		}
		s := newRequestState(cr, time.Now())
		res, err := setRequestStatus(s, r.verifyAccess(context.Background(), cr, agr, item, "granted", wrote, s))
		if err != nil {
			t.Fatal(err)
		}
		return reviews, s, res
	}
	verified := func(s *requestState) metav1.ConditionStatus {
		if c := meta.FindStatusCondition(s.status.Conditions, v1alpha1.ConditionAccessVerified); c != nil {
			return c.Status
		}
		return ""
	}

	start := time.Now()
	reviews, s, _ := run(2, true)
	if reviews != 3 || verified(s) != metav1.ConditionTrue || s.status.Phase != v1alpha1.RequestFulfilled {
		t.Errorf("fresh grant, authorizer two reviews behind: %d reviews, AccessVerified %q, phase %q; want 3, True, Fulfilled",
			reviews, verified(s), s.status.Phase)
	}
	if waited := time.Since(start); waited < 150*time.Millisecond {
		t.Errorf("the re-asks came after %s, want the 50 and 100 ms pauses", waited)
	}
	reviews, s, res := run(100, true)
	if reviews != 4 || verified(s) != metav1.ConditionUnknown || res.RequeueAfter != 100*time.Millisecond {
		t.Errorf("fresh grant, authorizer far behind: %d reviews, AccessVerified %q, requeue %s; want 4, Unknown, 100ms",
			reviews, verified(s), res.RequeueAfter)
	}
	reviews, s, _ = run(1, false)
	if reviews != 1 || verified(s) != metav1.ConditionUnknown {
		t.Errorf("grant from an earlier reconcile: %d reviews, AccessVerified %q; want 1 and the wait recorded", reviews, verified(s))
	}

	// Still denied once VerifyTimeout has passed since the wait began: access is denied.
	prev = &metav1.Condition{Type: v1alpha1.ConditionAccessVerified, Status: metav1.ConditionUnknown, Reason: v1alpha1.ReasonReconciling,
		LastTransitionTime: metav1.NewTime(time.Now().Add(-31 * time.Second))}
	reviews, s, res = run(100, false)
	c := meta.FindStatusCondition(s.status.Conditions, v1alpha1.ConditionAccessVerified)
	ready := meta.FindStatusCondition(s.status.Conditions, v1alpha1.ConditionReady)
	if reviews != 1 || c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonAccessDenied ||
		ready == nil || ready.Status != metav1.ConditionFalse || res.RequeueAfter != 30*time.Second {
		t.Errorf("after VerifyTimeout: %d reviews, AccessVerified %+v, Ready %+v, requeue %s; want AccessDenied, Ready False, 30s",
			reviews, c, ready, res.RequeueAfter)
	}
	// Within VerifyTimeout the wait keeps the time it began.
	prev.LastTransitionTime = metav1.NewTime(time.Now().Add(-10 * time.Second))
	_, s, res = run(100, false)
	c = meta.FindStatusCondition(s.status.Conditions, v1alpha1.ConditionAccessVerified)
	if c == nil || c.Status != metav1.ConditionUnknown || !c.LastTransitionTime.Equal(&prev.LastTransitionTime) || res.RequeueAfter != time.Second {
		t.Errorf("10 s into the wait: AccessVerified %+v, requeue %s; want Unknown since the wait began, and 1s", c, res.RequeueAfter)
	}
}

// TestAwaitCachedWaitsForTheBindings: the access review of a fresh grant
// waits until the cache holds the bindings just written, and never longer
// than cacheWaitLimit.
func TestAwaitCachedWaitsForTheBindings(t *testing.T) {
	gets := func(missing int) (int, time.Duration) {
		n := 0
		c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithInterceptorFuncs(interceptor.Funcs{
			Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
				n++
				if missing < 0 || n <= missing {
					return apierrors.NewNotFound(rbacv1.Resource("rolebindings"), key.Name)
				}
				return nil
			},
		}).Build()
		r := &RequestReconciler{Client: c}
		start := time.Now()
		r.awaitCached(context.Background(), "granted", []string{"edit", "view"})
		return n, time.Since(start)
	}
	if n, _ := gets(0); n != 2 {
		t.Errorf("bindings already cached: %d reads, want 2", n)
	}
	if n, d := gets(3); n != 5 || d < 3*cachePoll {
		t.Errorf("first binding seen on the fourth read: %d reads in %s, want 5 after at least %s", n, d, 3*cachePoll)
	}
	if n, d := gets(-1); d < cacheWaitLimit || d > cacheWaitLimit+time.Second || n < 2 {
		t.Errorf("bindings never cached: gave up after %s (%d reads), want about %s", d, n, cacheWaitLimit)
	}
}

// TestCacheOptionsWatchNamespaces: --watch-namespaces scopes the cache of
// agreements and requests to those namespaces, and nothing else: offerings
// and the managed objects stay cluster-wide, with their label selector.
func TestCacheOptionsWatchNamespaces(t *testing.T) {
	all := CacheOptions()
	scoped := CacheOptions("team-a", "team-b")
	if len(scoped.ByObject) != len(all.ByObject)+2 {
		t.Fatalf("scoped cache configures %d kinds, want %d", len(scoped.ByObject), len(all.ByObject)+2)
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
	for obj := range all.ByObject {
		switch obj.(type) {
		case *v1alpha1.ServiceAgreement, *v1alpha1.ConsumptionRequest:
			t.Errorf("%T scoped without --watch-namespaces", obj)
		}
	}
}
