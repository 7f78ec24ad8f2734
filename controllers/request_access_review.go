package controllers

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Assurance: after a grant, the API server is asked (SubjectAccessReview)
// whether the agreement's subjects really can act in the granted namespace.

// verifyAccess asks the API server whether every subject of the agreement can
// use the granted namespace. It asks only when something was written or the
// grant is not verified yet.
func (r *RequestReconciler) verifyAccess(ctx context.Context, cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement, item *v1alpha1.ResourceItem,
	ns string, wrote bool, s *requestState,
) stepOutcome {
	prev := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionAccessVerified)
	if !wrote && prev != nil && prev.Status == metav1.ConditionTrue && prev.ObservedGeneration == cr.Generation && holdsAccess(cr) && len(cr.Status.Grant.RoleBindings) > 0 {
		return r.granted(cr, s, ns)
	}
	var bindings []string
	if s.status.Grant != nil {
		bindings = s.status.Grant.RoleBindings
	}
	denied, err := r.reviewAccess(ctx, agr, item, ns, wrote, bindings)
	if err != nil {
		return errored(err)
	}
	if denied == "" {
		return r.granted(cr, s, ns).with(v1alpha1.ConditionAccessVerified, metav1.ConditionTrue, v1alpha1.ReasonVerified,
			fmt.Sprintf("SubjectAccessReview confirms all %d subject(s) can use namespace %s", len(agr.Spec.Consumer.Subjects), ns))
	}
	// The authorizer may not have seen fresh RoleBindings yet: retry for a while before reporting.
	since := s.now.Time
	if prev != nil && prev.Status != metav1.ConditionTrue {
		since = prev.LastTransitionTime.Time
	}
	if s.now.Sub(since) < r.Options.VerifyTimeout {
		return waitFor(v1alpha1.RequestProvisioning, v1alpha1.ReasonProvisioning, "verifying access: "+denied).
			with(v1alpha1.ConditionAccessVerified, metav1.ConditionUnknown, v1alpha1.ReasonReconciling, "waiting for the authorizer: "+denied).
			after(authorizerRetry(s.now.Sub(since)))
	}
	s.tell(relatedNamespace(ns), corev1.EventTypeWarning, "AccessDenied", "Verify", "%s", denied)
	return stall(v1alpha1.RequestProvisioning, v1alpha1.ReasonAccessDenied, denied).
		with(v1alpha1.ConditionAccessVerified, metav1.ConditionFalse, v1alpha1.ReasonAccessDenied, denied).after(r.Options.VerifyTimeout)
}

// granted: access is granted and verified.
func (r *RequestReconciler) granted(cr *v1alpha1.ConsumptionRequest, s *requestState, ns string) stepOutcome {
	if first, d := recordFulfilment(cr, s); first {
		s.tell(relatedNamespace(ns), corev1.EventTypeNormal, "Granted", "Grant", "access to namespace %s granted and verified in %s", ns, d)
	}
	return readyAs(v1alpha1.RequestFulfilled, v1alpha1.ReasonGranted, fmt.Sprintf("access to namespace %s is granted and verified", ns))
}

// reviewAccess asks whether the agreement's subjects can use the granted
// namespace. For bindings written in this very reconcile (fresh) it first waits
// for the cache to hold them, and asks again after each of freshGrantPauses
// before taking a denial for an answer: recording a wait would cost a status
// write and another reconcile per grant.
func (r *RequestReconciler) reviewAccess(ctx context.Context, agr *v1alpha1.ServiceAgreement, item *v1alpha1.ResourceItem,
	ns string, fresh bool, bindings []string,
) (string, error) {
	if !fresh {
		return r.accessReview(ctx, agr, item, ns)
	}
	r.awaitCached(ctx, ns, bindings)
	denied, err := r.accessReview(ctx, agr, item, ns)
	for _, pause := range freshGrantPauses {
		if err != nil || denied == "" {
			break
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(pause):
		}
		denied, err = r.accessReview(ctx, agr, item, ns)
	}
	return denied, err
}

// cacheWaitLimit bounds awaitCached, and cachePoll is how often it looks.
const (
	cacheWaitLimit = 250 * time.Millisecond
	cachePoll      = 5 * time.Millisecond
)

// awaitCached waits, for at most cacheWaitLimit, until the manager's cache
// holds the named RoleBindings of a grant that were just written. The API
// server's authorizer learns of new bindings through a watch as well: asked
// before the watch has delivered them, it mostly denies, and each denial costs
// another review; waiting for the cache first makes those repeats rarer
// (docs/performance.md, "Figures behind the code").
func (r *RequestReconciler) awaitCached(ctx context.Context, ns string, names []string) {
	deadline := time.Now().Add(cacheWaitLimit)
	for _, name := range names {
		for {
			err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &rbacv1.RoleBinding{})
			if !apierrors.IsNotFound(err) || time.Now().After(deadline) {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(cachePoll):
			}
		}
	}
}

// freshGrantPauses are the pauses between the access reviews of a grant
// whose bindings were just written, before a denial is recorded. They are
// short, because a worker waits through them.
var freshGrantPauses = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}

// authorizerRetry is how soon access is checked again after the authorizer
// denied it, waited since the first denial: the API server's authorizer
// usually sees fresh RoleBindings within a few hundred milliseconds, so the
// first retries come quickly and then back off to waitRetry.
func authorizerRetry(waited time.Duration) time.Duration {
	return min(waitRetry, max(100*time.Millisecond, waited/2))
}

// accessReview returns "" when every subject of the agreement can act in
// ns, or a message naming the first subject and permission that fails. It
// asks one SubjectAccessReview per subject, in parallel, for a representative
// permission of the first bound role that has a resource rule (its first verb
// and resource): that proves the bindings reach the subject and that no other
// authorizer denies it, at one call per subject.
func (r *RequestReconciler) accessReview(ctx context.Context, agr *v1alpha1.ServiceAgreement, item *v1alpha1.ResourceItem, ns string) (string, error) {
	type check struct {
		attrs *authorizationv1.ResourceAttributes
		role  v1alpha1.ClusterRoleName
		subj  v1alpha1.Subject
	}
	var checks []check
	for _, roleName := range item.ClusterRoles {
		var role rbacv1.ClusterRole
		if err := r.Get(ctx, types.NamespacedName{Name: string(roleName)}, &role); err != nil {
			return "", err
		}
		if attrs := representativeAttributes(&role, ns); attrs != nil {
			for _, subj := range agr.Spec.Consumer.Subjects {
				checks = append(checks, check{attrs: attrs, role: roleName, subj: subj})
			}
			break // one review per subject: the first role with a resource rule stands for the grant
		}
	}
	denials := make([]string, len(checks))
	g, gctx := errgroup.WithContext(ctx)
	for i, c := range checks {
		g.Go(func() error {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{ResourceAttributes: c.attrs}}
			switch c.subj.Kind {
			case v1alpha1.SubjectServiceAccount:
				sar.Spec.User = "system:serviceaccount:" + string(c.subj.Namespace) + ":" + c.subj.Name
				sar.Spec.Groups = []string{"system:serviceaccounts", "system:serviceaccounts:" + string(c.subj.Namespace), "system:authenticated"}
			case v1alpha1.SubjectGroup:
				sar.Spec.Groups = []string{c.subj.Name}
			default:
				sar.Spec.User = c.subj.Name
			}
			if err := r.Create(gctx, sar); err != nil {
				return err
			}
			if !sar.Status.Allowed {
				denials[i] = fmt.Sprintf("%s %s cannot %s %s in namespace %s (ClusterRole %s): %s",
					c.subj.Kind, c.subj.Name, c.attrs.Verb, c.attrs.Resource, ns, c.role, sar.Status.Reason)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	for _, d := range denials {
		if d != "" {
			return d, nil
		}
	}
	return "", nil
}

func representativeAttributes(role *rbacv1.ClusterRole, ns string) *authorizationv1.ResourceAttributes {
	for _, rule := range role.Rules {
		if len(rule.Verbs) == 0 || len(rule.Resources) == 0 || len(rule.ResourceNames) > 0 {
			continue
		}
		a := &authorizationv1.ResourceAttributes{Namespace: ns, Verb: rule.Verbs[0], Resource: rule.Resources[0]}
		if len(rule.APIGroups) > 0 && rule.APIGroups[0] != "*" {
			a.Group = rule.APIGroups[0]
		}
		if a.Verb == "*" {
			a.Verb = "get"
		}
		if a.Resource == "*" {
			a.Resource = "pods"
		}
		return a
	}
	return nil
}
