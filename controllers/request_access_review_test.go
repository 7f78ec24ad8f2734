package controllers

import (
	"context"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

func TestRepresentativeAttributes(t *testing.T) {
	role := &rbacv1.ClusterRole{Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"one"}, Verbs: []string{"get"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"list", "get"}},
	}}
	a := representativeAttributes(role, "ns")
	if a == nil || a.Group != "apps" || a.Resource != "deployments" || a.Verb != "list" || a.Namespace != "ns" {
		t.Errorf("attributes %+v", a)
	}
	if representativeAttributes(&rbacv1.ClusterRole{Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/x"}, Verbs: []string{"get"}}}}, "ns") != nil {
		t.Error("a role without resource rules has nothing to check")
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
		r := &RequestReconciler{reconciler: reconciler{Client: c, APIReader: c, Recorder: events.NewFakeRecorder(10),
			Options: Options{VerifyTimeout: 30 * time.Second}}}
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
		r := &RequestReconciler{reconciler: reconciler{Client: c}}
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
