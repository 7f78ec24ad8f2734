package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// +kubebuilder:rbac:groups=service.offering.dev,resources=consumptionrequests,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=service.offering.dev,resources=consumptionrequests/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=service.offering.dev,resources=consumptionrequests/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=resourcequotas;limitranges,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=rolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles,verbs=bind
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete

// Reconcile moves a request one step towards the state its agreement allows.
func (r *RequestReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var cr v1alpha1.ConsumptionRequest
	if err := r.Get(ctx, req.NamespacedName, &cr); err != nil {
		if apierrors.IsNotFound(err) {
			// Gone: whatever was created for it and is still there is an orphan (request_orphans.go).
			return ctrl.Result{}, r.sweepOrphans(ctx, req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	if !cr.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, &cr)
	}
	if err := r.ensureFinalizer(ctx, &cr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}

	s := newRequestState(&cr, r.Options.Clock.Now())
	result, err := setRequestStatus(s, r.runSteps(ctx, &cr, s))
	result = r.measureServiceLevel(&cr, s, result)
	s.status.ObservedGeneration = cr.Generation
	if err != nil {
		// The conditions say what failed; observedGeneration advances only on success.
		s.status.ObservedGeneration = cr.Status.ObservedGeneration
	}
	if werr := r.writeStatus(ctx, &cr, s); werr != nil {
		if err == nil {
			err = werr
		}
		return endOnConflict(result, err)
	}
	// Events and metrics once the status that records them is written, so
	// that a retry, a stale copy or a restart does not tell or count them twice.
	r.recordTransition(&cr, s)
	for _, t := range observeRequestTransition(&cr, &cr.Status, &s.status) {
		c := meta.FindStatusCondition(s.status.Conditions, v1alpha1.ConditionWithinServiceLevel)
		r.Recorder.Eventf(&cr, nil, corev1.EventTypeWarning, "ServiceLevelBreached", "Measure",
			"%s target of ServiceAgreement %s missed: %s", t, cr.Spec.Agreement, c.Message)
	}
	return result, err
}

// requestStep is one step of a request that is not being deleted. It does
// its work and says what it found; it writes no condition itself.
type requestStep func(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState) stepOutcome

// requestSteps are the steps of a request, in order: a step that does not
// proceed ends the reconcile with its outcome.
func (r *RequestReconciler) requestSteps() []requestStep {
	return []requestStep{
		r.followSettled,  // request_controller.go: denied, finished or running work
		r.checkAgreement, // request_admission.go: the agreement exists and is in force
		r.admit,          // request_admission.go: the item is entitled and offered; the entitlement is claimed
		r.approve,        // request_approval.go: the agreement's approval policy
		r.fulfil,         // request_grant.go, request_goods.go, request_actions.go
	}
}

// runSteps runs the steps until one does not proceed, and returns what
// they found together.
func (r *RequestReconciler) runSteps(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState) stepOutcome {
	var found stepOutcome
	for _, step := range r.requestSteps() {
		found = step(ctx, cr, s).over(found)
		if found.kind != proceed {
			break
		}
	}
	return found
}

// followSettled handles requests whose course no longer depends on their
// agreement. It proceeds for the others.
func (r *RequestReconciler) followSettled(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState) stepOutcome {
	// Denied is final: whoever denied it, nothing is granted.
	denied := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionDenied)
	switch {
	case goodsSettled(cr):
		// Accepted goods belong to the consumer and returned goods are gone:
		// nothing is left to do, whatever happens to the agreement.
		return stepOutcome{kind: settled}
	case denied != nil && denied.Status == metav1.ConditionTrue:
		if s.status.Phase != v1alpha1.RequestDenied {
			r.recordDecision(cr, s, v1alpha1.ConditionDenied)
		}
		return r.finishDenied(ctx, cr, s, denied.Reason, denied.Message)
	case s.status.Phase == v1alpha1.RequestFailed:
		return stepOutcome{kind: settled}
	case cr.Spec.Action != nil && s.status.Phase == v1alpha1.RequestFulfilled:
		// A completed action is done, whatever happens to the agreement later.
		return stepOutcome{kind: settled}
	case actionStarted(cr):
		// Work already started is finished, even if the agreement is suspended or ends meanwhile.
		if o := r.followAction(ctx, cr, s); o.kind != proceed {
			return o
		}
		return stepOutcome{kind: settled}
	}
	return stepOutcome{}
}

// fulfil hands an approved request to the step for its kind of item.
func (r *RequestReconciler) fulfil(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState) stepOutcome {
	agr, off := s.agreement, s.offering
	kind, name, _ := requestedItem(cr)
	if kind == v1alpha1.ItemKindResource {
		// request_plans.go: under the plan and revision it may have now.
		return r.grantPlanned(ctx, cr, agr, name, s)
	}
	if !offers(off, kind, name) {
		return itemNotOffered(off.Name, kind, name)
	}
	if s.revision > 0 {
		s.status.OfferingRevision = s.revision
	}
	switch kind {
	case v1alpha1.ItemKindGoods:
		return r.deliver(ctx, cr, agr, off, findGoodsItem(off, name), s)
	case v1alpha1.ItemKindAction:
		return r.runAction(ctx, cr, agr, off, findActionItem(off, name), s)
	}
	return stall(v1alpha1.RequestProvisioning, v1alpha1.ReasonUnsupportedItemKind,
		fmt.Sprintf("this version of offering-operator does not fulfil %s items yet; the request stays approved and waits", kind)).fulfilment()
}

// itemNotOffered: the provider removed the item after admission; what was
// granted or delivered is kept.
func itemNotOffered(offering string, kind v1alpha1.ItemKind, name v1alpha1.ItemName) stepOutcome {
	return stall(v1alpha1.RequestProvisioning, v1alpha1.ReasonItemNotOffered,
		fmt.Sprintf("ServiceOffering %s no longer has %s item %s; the request waits", offering, kind, name)).fulfilment()
}

// offeringFor reads the offering of a request: the one recorded in its
// status, or its agreement's; with the spec of the revision the agreement is
// pinned to, when it is and that revision exists. It is nil when the
// offering cannot be read.
func (r *RequestReconciler) offeringFor(ctx context.Context, cr *v1alpha1.ConsumptionRequest) *v1alpha1.ServiceOffering {
	var agr v1alpha1.ServiceAgreement
	agrErr := r.Get(ctx, types.NamespacedName{Namespace: cr.Namespace, Name: string(cr.Spec.Agreement)}, &agr)
	name := cr.Status.Offering
	if name == "" {
		if agrErr != nil {
			return nil
		}
		name = string(agr.Spec.Offering)
	}
	var off v1alpha1.ServiceOffering
	if err := r.Get(ctx, types.NamespacedName{Name: name}, &off); err != nil {
		return nil
	}
	if agrErr != nil || string(agr.Spec.Offering) != name {
		return &off
	}
	if eff, _, _, _, err := effectiveOffering(ctx, r.Client, &agr, &off); err == nil && eff != nil {
		return eff
	}
	return &off
}
