package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Plans: an item with plans grants each request under one of them (the
// plan's quota and limits), and a granted request changes plan in place:
// the quota and limit range of the same namespace change, its RoleBindings
// and everything else stay. A change is checked before it is applied; until
// it can be, the request keeps the plan it has (status.grant.plan) and Ready
// says why.
//
// A provider's move of a pinned agreement to another revision changes the
// terms of every grant under it the same way, with the same checks: until
// the move can be applied, a grant keeps the terms of the revision it is on
// (status.offeringRevision), as it keeps them when the new revision no
// longer has its item.

// downgradeRetry is how soon a plan change blocked by the namespace's usage
// looks at the usage again: quota usage is not cached (stripQuotaStatus), so
// no event says that it dropped.
const downgradeRetry = 10 * time.Second

// grantPlanned grants a resource item under the plan and the revision the
// request may have now, and reports a change of either that waits over the
// grant's own outcome.
func (r *RequestReconciler) grantPlanned(ctx context.Context, cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement,
	name v1alpha1.ItemName, s *requestState,
) stepOutcome {
	held, err := r.heldTerms(ctx, cr, s, name)
	if err != nil {
		return errored(err)
	}
	granted, plan, change := r.planned(ctx, cr, agr, findResourceItem(s.offering, name), held)
	if change.kind == transient || granted == nil {
		return change
	}
	have, revision := grantedPlan(cr), held.revision
	if change.kind == proceed && s.revision > 0 {
		revision = s.revision
	}
	s.resizing = have != "" && plan != have || held.moved && revision != held.revision
	o := r.grant(ctx, cr, agr, granted, s)
	if s.resizing && (o.kind == ready || o.kind == waiting) {
		s.tell(relatedNamespace(s.status.Grant.Namespace), corev1.EventTypeNormal, "Resized", "Grant",
			"namespace %s resized in place from %s to %s", s.status.Grant.Namespace,
			termsName(have, cr.Status.OfferingRevision, held.moved), termsName(plan, revision, held.moved))
	}
	if g := s.status.Grant; g != nil {
		// A grant that failed half-way is recorded under the terms it had:
		// the change is checked and applied again.
		g.Plan, s.status.OfferingRevision = plan, revision
		if o.kind == transient {
			g.Plan, s.status.OfferingRevision = have, cr.Status.OfferingRevision
		}
	}
	if change.kind == proceed || o.kind != ready {
		return o
	}
	change.phase = o.phase
	return change.over(o)
}

// heldTerms are the terms a granted resource request keeps while a change
// of them cannot be applied: its item, as the revision it comes from has it.
type heldTerms struct {
	// item is nil when there are no terms to keep: the grant is left as it is.
	item     *v1alpha1.ResourceItem
	revision int32 // 0 while not known
	// following is the revision the request follows now; 0 while not known.
	following int32
	// moved says that the provider moved the request's pinned agreement to
	// another revision since the grant: the move is checked as a plan change is.
	moved bool
}

// heldTerms reads the terms the request holds: the item of the revision it
// was granted under when its pinned agreement moved or the item is gone
// from the revision it follows now (an agreement on Latest follows every
// other edit at once); the item it follows otherwise.
func (r *RequestReconciler) heldTerms(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState, name v1alpha1.ItemName) (heldTerms, error) {
	cur, on := findResourceItem(s.offering, name), cr.Status.OfferingRevision
	t := heldTerms{item: cur, revision: s.revision, following: s.revision}
	if t.revision == 0 {
		t.revision = on
	}
	if cr.Status.Grant == nil || on == 0 || on == s.revision {
		return t, nil
	}
	t.moved = s.agreement.Spec.RevisionPolicy == v1alpha1.RevisionPolicyPinned && s.revision > 0
	if !t.moved && cur != nil {
		return t, nil
	}
	old, err := offeringAt(ctx, r.Client, s.offering, on)
	if err != nil {
		return t, err
	}
	t.item, t.revision = nil, on
	if old != nil {
		t.item = findResourceItem(old, name)
	}
	return t, nil
}

// planned returns the item as granted under the terms the request may have
// now, its plan, and the outcome of a requested change that cannot be
// applied yet (proceed when there is none). The item is nil when the
// request has no terms to keep meanwhile: the grant is left as it is.
func (r *RequestReconciler) planned(ctx context.Context, cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement,
	item *v1alpha1.ResourceItem, held heldTerms,
) (*v1alpha1.ResourceItem, v1alpha1.PlanName, stepOutcome) {
	have := grantedPlan(cr)
	if item == nil {
		return keptItem(held.item, have), have, itemGone(cr, agr, held)
	}
	want := requestedPlan(cr, item)
	if want == have && !held.moved {
		return withPlan(item, findPlan(item, want)), want, stepOutcome{}
	}
	change := r.planChangeRefusal(ctx, cr, agr, item, have, want, held)
	if change.kind == proceed {
		return withPlan(item, findPlan(item, want)), want, change
	}
	return keptItem(held.item, have), have, change
}

// keptItem is the held item under plan have; nil when there is none, or it
// no longer has that plan.
func keptItem(item *v1alpha1.ResourceItem, have v1alpha1.PlanName) *v1alpha1.ResourceItem {
	if item == nil {
		return nil
	}
	kept := findPlan(item, have)
	if kept == nil && len(item.Plans) > 0 {
		return nil
	}
	return withPlan(item, kept)
}

// itemGone reports a resource item that the revision the request follows
// no longer has: what the request holds is kept, on the terms of the
// revision it was granted under when it can be read.
func itemGone(cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement, held heldTerms) stepOutcome {
	kind, name, _ := requestedItem(cr)
	o := itemNotOffered(string(agr.Spec.Offering), kind, name)
	if held.item == nil {
		return o
	}
	fix := "restore the item in the ServiceOffering"
	if agr.Spec.RevisionPolicy == v1alpha1.RevisionPolicyPinned {
		fix = fmt.Sprintf("move ServiceAgreement %s back to a revision that has it (spec.revision)", agr.Name)
	}
	in := ""
	if held.following > 0 {
		in = fmt.Sprintf(" in revision %d", held.following)
	}
	return stall("", v1alpha1.ReasonItemNotOffered, fmt.Sprintf("ServiceOffering %s no longer has %s item %s%s; "+
		"the request keeps its grant under revision %d: %s, or delete the request to release the grant",
		agr.Spec.Offering, kind, name, in, held.revision, fix))
}

// planChangeRefusal checks a move from plan have to plan want of item (and,
// when the agreement's pin moved, from held's revision to item's): the
// agreement allows want, have's upgradesTo allows the move, and the granted
// namespace's usage fits want's quota. It proceeds when the move may be made.
func (r *RequestReconciler) planChangeRefusal(ctx context.Context, cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement,
	item *v1alpha1.ResourceItem, have, want v1alpha1.PlanName, held heldTerms,
) stepOutcome {
	keeps := "; the request keeps " + termsName(have, held.revision, held.moved)
	if msg := planRefusal(cr, agr, item); msg != "" {
		return stall("", v1alpha1.ReasonPlanNotAllowed, msg+keeps)
	}
	if msg := pathRefusal(item, have, want); msg != "" {
		return stall("", v1alpha1.ReasonPlanChangeNotAllowed, msg+keeps)
	}
	if cr.Status.Grant == nil || cr.Status.Grant.Namespace == "" {
		return stepOutcome{}
	}
	ns := cr.Status.Grant.Namespace
	if other := grantNamespaceName(cr, item); other != ns {
		return stall("", v1alpha1.ReasonPlanChangeNotAllowed, fmt.Sprintf("item %s no longer allows the requested namespace name %s: "+
			"its grant would move to namespace %s%s", item.Name, ns, other, keeps))
	}
	over, err := r.usageOver(ctx, ns, withPlan(item, findPlan(item, want)).Quota)
	if err != nil {
		return errored(err)
	}
	if len(over) > 0 {
		target := termsName(want, held.following, held.moved)
		if want == "" {
			target = strings.Replace(target, "its grant", "the quota of "+string(item.Name), 1)
		}
		return waitFor("", v1alpha1.ReasonDowngradeBlocked, fmt.Sprintf("namespace %s uses more than %s allows (%s)%s; "+
			"it changes once usage has dropped", ns, target, strings.Join(over, ", "), keeps)).after(downgradeRetry)
	}
	return stepOutcome{}
}

// pathRefusal says why plan have's upgradesTo refuses a move to want; ""
// when it allows it, or the plan stays.
func pathRefusal(item *v1alpha1.ResourceItem, have, want v1alpha1.PlanName) string {
	from := findPlan(item, have)
	if have == want || from == nil || len(from.UpgradesTo) == 0 || slices.Contains(from.UpgradesTo, want) {
		return ""
	}
	return fmt.Sprintf("plan %s of %s changes only to %s, not to %s", have, item.Name, joinPlans(from.UpgradesTo), want)
}

// termsName names the terms of a grant: its plan (its grant, for an item
// without plans), "of revision n" when the revision matters.
func termsName(plan v1alpha1.PlanName, revision int32, withRevision bool) string {
	switch {
	case plan == "" && !withRevision:
		return "its current grant"
	case plan == "":
		return fmt.Sprintf("its grant of revision %d", revision)
	case withRevision:
		return fmt.Sprintf("plan %s of revision %d", plan, revision)
	}
	return "plan " + string(plan)
}

// planRefusal says why the agreement or the item refuses the plan a
// resource request names; "" when it is allowed (or the request is not
// for a resource item).
func planRefusal(cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement, item *v1alpha1.ResourceItem) string {
	if cr.Spec.Resource == nil || item == nil {
		return ""
	}
	want := requestedPlan(cr, item)
	switch {
	case len(item.Plans) == 0 && want != "":
		return fmt.Sprintf("item %s has no plans: remove spec.resource.plan", item.Name)
	case len(item.Plans) == 0:
		return ""
	case findPlan(item, want) == nil:
		names := make([]v1alpha1.PlanName, 0, len(item.Plans))
		for _, p := range item.Plans {
			names = append(names, p.Name)
		}
		return fmt.Sprintf("item %s has no plan %s; its plans are %s", item.Name, want, joinPlans(names))
	}
	for _, e := range agr.Spec.Entitlements.Resources {
		if e.Name == item.Name && len(e.Plans) > 0 && !slices.Contains(e.Plans, want) {
			return fmt.Sprintf("ServiceAgreement %s does not allow plan %s of %s; it allows %s", agr.Name, want, item.Name, joinPlans(e.Plans))
		}
	}
	return ""
}

// usageOver lists the resources whose usage in the namespace's quota,
// read live, exceeds hard.
func (r *RequestReconciler) usageOver(ctx context.Context, ns string, hard corev1.ResourceList) ([]string, error) {
	if len(hard) == 0 {
		return nil, nil
	}
	var q corev1.ResourceQuota
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: quotaName}, &q); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	var over []string
	for name, limit := range hard {
		if used, ok := q.Status.Used[name]; ok && used.Cmp(limit) > 0 {
			over = append(over, fmt.Sprintf("%s: %s used, %s allowed", name, used.String(), limit.String()))
		}
	}
	slices.Sort(over)
	return over, nil
}

// planChangeApproval asks a provider again when a request approved under a
// Manual agreement changes to a plan the approval does not cover: Approved
// turns False and the request waits, keeping its grant, for a new
// Approved=True (approve records the plan it covers). It proceeds otherwise.
func planChangeApproval(cr *v1alpha1.ConsumptionRequest, s *requestState, agr *v1alpha1.ServiceAgreement) stepOutcome {
	d := s.status.Decision
	approved := d.Plan
	if approved == "" {
		approved = grantedPlan(cr)
	}
	want := requestedPlanOf(cr, s.offering)
	if agr.Spec.ApprovalPolicy != v1alpha1.ApprovalManual || approved == "" || want == approved {
		return stepOutcome{}
	}
	s.status.ApprovedAt = nil
	msg := fmt.Sprintf("the change from plan %s to plan %s needs a provider's approval under ServiceAgreement %s: add the condition "+
		"Approved=True through the status subresource; the request keeps plan %s meanwhile", approved, want, agr.Name, approved)
	return waitFor("", v1alpha1.ReasonAwaitingApproval, msg).
		with(v1alpha1.ConditionApproved, metav1.ConditionFalse, v1alpha1.ReasonAwaitingApproval, msg)
}

// requestedPlanOf is the plan a request asks for under the offering: ""
// for any but a resource request, or when the item cannot be found.
func requestedPlanOf(cr *v1alpha1.ConsumptionRequest, off *v1alpha1.ServiceOffering) v1alpha1.PlanName {
	if cr.Spec.Resource == nil || off == nil {
		return ""
	}
	item := findResourceItem(off, cr.Spec.Resource.Name)
	if item == nil {
		return cr.Spec.Resource.Plan
	}
	return requestedPlan(cr, item)
}

// requestedPlan is the plan a resource request names, or its item's default.
func requestedPlan(cr *v1alpha1.ConsumptionRequest, item *v1alpha1.ResourceItem) v1alpha1.PlanName {
	if cr.Spec.Resource != nil && cr.Spec.Resource.Plan != "" {
		return cr.Spec.Resource.Plan
	}
	return item.DefaultPlan
}

// grantedPlan is the plan the request's namespace was last granted under.
func grantedPlan(cr *v1alpha1.ConsumptionRequest) v1alpha1.PlanName {
	if cr.Status.Grant == nil {
		return ""
	}
	return cr.Status.Grant.Plan
}

func findPlan(item *v1alpha1.ResourceItem, name v1alpha1.PlanName) *v1alpha1.Plan {
	for i := range item.Plans {
		if item.Plans[i].Name == name {
			return &item.Plans[i]
		}
	}
	return nil
}

// withPlan is the item with the plan's quota and limits (the item itself
// without a plan).
func withPlan(item *v1alpha1.ResourceItem, p *v1alpha1.Plan) *v1alpha1.ResourceItem {
	if p == nil {
		return item
	}
	out := *item
	out.Quota, out.Limits = p.Quota, p.Limits
	return &out
}

func joinPlans(names []v1alpha1.PlanName) string {
	s := make([]string, len(names))
	for i, n := range names {
		s[i] = string(n)
	}
	return strings.Join(s, ", ")
}
