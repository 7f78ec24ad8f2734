package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Placement: which cluster of the fleet a grant is made in. An item without
// placement grants in the hub, as before fleets. With one, the request's
// spec.resource.cluster chooses among the clusters it allows; otherwise the
// operator picks the reachable allowed cluster holding the fewest grants,
// then the first by name. The choice is recorded in status.cluster before
// anything is made there, and never changes: a request's grant does not
// move. The whole grant (namespace, RoleBindings, quota, limits, network
// policy) is then made, verified, repaired and revoked with the member's
// client, by the same code as in the hub.

// clusterRetry is how soon a request waiting on a member cluster (not
// reachable, not registered) is looked at again; the fleet also requeues
// it when the cluster comes back.
const clusterRetry = 5 * time.Second

// grant makes the request's grant in the cluster it is placed in.
func (r *RequestReconciler) grant(ctx context.Context, cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement, item *v1alpha1.ResourceItem, s *requestState) stepOutcome {
	m, o := r.place(ctx, cr, item, s)
	if o.kind != proceed {
		return o
	}
	if m == nil {
		return r.grantHere(ctx, cr, agr, item, s)
	}
	ctx, cancel := context.WithTimeout(ctx, r.Options.fleet.timeout)
	defer cancel()
	kept := s.status.Grant.DeepCopy()
	o = r.in(m).grantHere(ctx, cr, agr, item, s)
	if o.kind == transient && isUnreachableError(o.err) {
		metricMemberErrors.WithLabelValues(m.name).Inc()
		s.status.Grant = kept // what was granted there is not lost
		return clusterUnreachable(s, m.name, o.err)
	}
	if o.kind == ready {
		o.message += " in member cluster " + m.name
	}
	return o
}

// in is the request reconciler acting in member m: the same steps, with the
// member's client and cache; events and status stay in the hub.
func (r *RequestReconciler) in(m *member) *RequestReconciler {
	t := *r
	t.Client = m.client
	t.APIReader = m.cl.GetAPIReader()
	return &t
}

// clusterUnreachable: the request waits for its member cluster; what it
// holds is kept.
func clusterUnreachable(s *requestState, cluster string, err error) stepOutcome {
	phase := v1alpha1.RequestProvisioning
	if s.status.Phase == v1alpha1.RequestFulfilled || s.status.Phase == v1alpha1.RequestRevoked {
		phase = s.status.Phase
	}
	return waitFor(phase, v1alpha1.ReasonClusterUnreachable,
		fmt.Sprintf("member cluster %s is unreachable: %v; what was granted there is kept, and the request is looked at again when it answers", cluster, err)).
		after(clusterRetry)
}

// place returns the member the request's grant is made in (nil: the hub),
// choosing and recording it the first time. It proceeds only when that
// cluster can be used now.
func (r *RequestReconciler) place(ctx context.Context, cr *v1alpha1.ConsumptionRequest, item *v1alpha1.ResourceItem, s *requestState) (*member, stepOutcome) {
	name := cr.Status.Cluster
	if name == "" {
		var o stepOutcome
		if name, o = r.choose(ctx, cr, item); o.kind != proceed || name == "" {
			return nil, o
		}
		if err := r.recordPlacement(ctx, cr, s, name); err != nil {
			return nil, errored(err)
		}
	}
	m := r.Options.fleet.get(name)
	if err := m.unreachable(); err != nil {
		return nil, clusterUnreachable(s, name, err)
	}
	return m, stepOutcome{}
}

// choose picks the cluster of a request not placed yet: "" for the hub.
func (r *RequestReconciler) choose(ctx context.Context, cr *v1alpha1.ConsumptionRequest, item *v1alpha1.ResourceItem) (string, stepOutcome) {
	asked := string(cr.Spec.Resource.Cluster)
	p := item.Placement
	if p == nil {
		if asked != "" {
			return "", r.notAllowed(cr, fmt.Sprintf("resource item %s is granted only in the operator's own cluster; leave spec.resource.cluster out", item.Name))
		}
		return "", stepOutcome{}
	}
	candidates, err := r.Options.fleet.matching(p)
	if err != nil {
		return "", stall(v1alpha1.RequestProvisioning, v1alpha1.ReasonClusterNotAllowed, err.Error()).fulfilment()
	}
	if asked != "" {
		return r.chosen(cr, item, candidates, asked)
	}
	var reachable []*member
	for _, m := range candidates {
		if m.unreachable() == nil {
			reachable = append(reachable, m)
		}
	}
	if len(reachable) == 0 {
		msg := fmt.Sprintf("no registered member cluster matches the placement of resource item %s; the request waits for one", item.Name)
		if len(candidates) > 0 {
			msg = fmt.Sprintf("none of the %d member cluster(s) the placement of resource item %s allows is reachable; the request waits", len(candidates), item.Name)
		}
		return "", waitFor(v1alpha1.RequestProvisioning, v1alpha1.ReasonClusterUnreachable, msg).fulfilment().after(clusterRetry)
	}
	return r.leastUsed(ctx, reachable)
}

// chosen checks the cluster a request asks for against its item's placement.
func (r *RequestReconciler) chosen(cr *v1alpha1.ConsumptionRequest, item *v1alpha1.ResourceItem, candidates []*member, asked string) (string, stepOutcome) {
	for _, m := range candidates {
		if m.name == asked {
			return asked, stepOutcome{}
		}
	}
	// A cluster named by the placement but not registered (yet) is waited for.
	if item.Placement.ClusterSelector == nil && allows(item.Placement, labels.Nothing(), asked, nil) {
		return "", waitFor(v1alpha1.RequestProvisioning, v1alpha1.ReasonClusterUnreachable,
			fmt.Sprintf("member cluster %s is not registered; the request waits for it", asked)).fulfilment().after(clusterRetry)
	}
	return "", r.notAllowed(cr, fmt.Sprintf("spec.resource.cluster %s is not a cluster the placement of resource item %s allows; "+
		"create a new request naming one of them, or none", asked, item.Name))
}

// notAllowed: the request asks for a cluster it may not have. It fails for
// good (spec.resource.cluster is immutable): nothing is granted, and its
// entitlement is released.
func (r *RequestReconciler) notAllowed(cr *v1alpha1.ConsumptionRequest, msg string) stepOutcome {
	r.Recorder.Eventf(cr, nil, corev1.EventTypeWarning, v1alpha1.ReasonClusterNotAllowed, "Place", "%s", msg)
	return stall(v1alpha1.RequestFailed, v1alpha1.ReasonClusterNotAllowed, msg).fulfilment()
}

// leastUsed is the cluster holding the fewest grants, then the first by name.
func (r *RequestReconciler) leastUsed(ctx context.Context, members []*member) (string, stepOutcome) {
	best, fewest := "", -1
	for _, m := range members { // sorted by name
		placed, err := placedIn(ctx, r.Client, m.name)
		if err != nil {
			return "", errored(err)
		}
		if fewest < 0 || len(placed) < fewest {
			best, fewest = m.name, len(placed)
		}
	}
	return best, stepOutcome{}
}

// recordPlacement writes the chosen cluster into the request's status before
// anything is made there, so that a crash or a conflict afterwards cannot
// make a second grant in another cluster.
func (r *RequestReconciler) recordPlacement(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState, name string) error {
	obj := cr.DeepCopy()
	obj.Status.Cluster = name
	if err := r.Status().Update(ctx, obj, client.FieldOwner(FieldOwner)); err != nil {
		return err
	}
	cr.ResourceVersion = obj.ResourceVersion
	cr.Status.Cluster = name
	s.status.Cluster = name
	r.Recorder.Eventf(cr, nil, corev1.EventTypeNormal, "Placed", "Place", "the grant is placed in member cluster %s", name)
	return nil
}

// errClusterUnreachable: what was granted in a member cluster cannot be
// revoked now; it is tried again until the cluster answers.
type errClusterUnreachable struct {
	cluster string
	err     error
}

func (e *errClusterUnreachable) Error() string {
	return fmt.Sprintf("member cluster %s is unreachable: %v", e.cluster, e.err)
}

func (e *errClusterUnreachable) Unwrap() error { return e.err }

// revokeInMember revokes a grant placed in a member cluster: its
// RoleBindings, then (when final) its namespace, with the member's client.
func (r *RequestReconciler) revokeInMember(ctx context.Context, cr *v1alpha1.ConsumptionRequest, final bool, policy v1alpha1.RevocationPolicy) error {
	name := cr.Status.Cluster
	m := r.Options.fleet.get(name)
	if err := m.unreachable(); err != nil {
		return &errClusterUnreachable{cluster: name, err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, r.Options.fleet.timeout)
	defer cancel()
	t := r.in(m)
	err := t.revokeRoleBindings(ctx, cr)
	if err == nil && final {
		err = t.revokeNamespaces(ctx, cr, policy)
	}
	if isUnreachableError(err) {
		metricMemberErrors.WithLabelValues(name).Inc()
		return &errClusterUnreachable{cluster: name, err: err}
	}
	return err
}

// revokeFailed is the outcome of a revocation that failed: waiting for its
// member cluster when that did not answer, a transient error otherwise.
func revokeFailed(s *requestState, err error) stepOutcome {
	var unreachable *errClusterUnreachable
	if errors.As(err, &unreachable) {
		return clusterUnreachable(s, unreachable.cluster, unreachable.err)
	}
	return errored(err)
}

// whereGranted is the request reconciler acting in the cluster the
// request's grant is placed in, to read what is there; it does not proceed
// while that member cannot be used.
func (r *RequestReconciler) whereGranted(cr *v1alpha1.ConsumptionRequest) (*RequestReconciler, stepOutcome) {
	if cr.Status.Cluster == "" {
		return r, stepOutcome{}
	}
	m := r.Options.fleet.get(cr.Status.Cluster)
	if err := m.unreachable(); err != nil {
		return nil, waitFor("", v1alpha1.ReasonClusterUnreachable, fmt.Sprintf("member cluster %s is unreachable: %v", cr.Status.Cluster, err)).after(clusterRetry)
	}
	return r.in(m), stepOutcome{}
}

// pendingRevocation reports whether err is a revocation waiting for an
// unreachable member cluster, and records it on the request.
func (r *RequestReconciler) pendingRevocation(cr *v1alpha1.ConsumptionRequest, err error) bool {
	var unreachable *errClusterUnreachable
	if !errors.As(err, &unreachable) {
		return false
	}
	r.Recorder.Eventf(cr, nil, corev1.EventTypeWarning, v1alpha1.ReasonRevocationPending, "Revoke",
		"%v: access granted there is revoked once it answers; the request keeps its finalizer until then", err)
	return true
}

// terminatingWhileHolding is the lifecycle of an agreement being deleted
// while holding requests still hold grants. When some of those grants sit in
// member clusters that do not answer, it says so (RevocationPending), and
// the agreement is looked at again after the returned delay.
func terminatingWhileHolding(f *fleet, requests []v1alpha1.ConsumptionRequest, holding int) (lifecycle, time.Duration) {
	lc := lifecycle{Phase: v1alpha1.AgreementTerminating, Reason: v1alpha1.ReasonTerminating,
		Message: fmt.Sprintf("revoking access: %d request(s) still hold grants", holding)}
	waiting, clusters := 0, map[string]bool{}
	for i := range requests {
		cr := &requests[i]
		if c := cr.Status.Cluster; c != "" && holdsAccess(cr) && f.get(c).unreachable() != nil {
			waiting++
			clusters[c] = true
		}
	}
	if waiting == 0 {
		return lc, 0
	}
	lc.Reason = v1alpha1.ReasonRevocationPending
	lc.Message += fmt.Sprintf("; %d of them in member cluster(s) %s, which do not answer: their revocation is retried until they do",
		waiting, strings.Join(slices.Sorted(maps.Keys(clusters)), ", "))
	return lc, clusterRetry
}
