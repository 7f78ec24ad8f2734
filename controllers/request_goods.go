package controllers

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Goods are delivered as copies of the offering's source objects (Secrets and
// ConfigMaps in the provider namespace) into the request's own namespace,
// never anywhere else. Until the consumer accepts them the copies are the
// operator's: labelled as managed (so they are in the label-scoped cache and
// watched), owned by the request, repaired on drift and removed when the
// request is deleted, rejected or the agreement ends. On acceptance the
// operator lets go for good: it strips its labels, owner reference and
// finalizer, so the copies drop out of its cache and nothing it does later
// (deleting the request, ending the agreement) ever touches them again.
//
// Secret contents are never written to status, events or logs: messages name
// objects only, and API errors about copies are reported by their reason.
//
// The requested quantity is counted against the agreement's maxQuantity; one
// set of copies is delivered whatever the quantity.

// +kubebuilder:rbac:groups="",resources=secrets;configmaps,verbs=get;list;watch;create;update;patch;delete

// goodsSourceRecheck is how soon a delivery waiting for a missing source (or
// for a conflicting object to go away) is tried again: sources and foreign
// objects are not watched.
const goodsSourceRecheck = 30 * time.Second

// goodsCopyName is the name of the copy of src delivered for cr:
// "<request name>-<source name>-<hash>". The hash covers the request's UID and
// the source's kind and name, so that a later request of the same name never
// collides with copies an earlier one handed over.
func goodsCopyName(cr *v1alpha1.ConsumptionRequest, src v1alpha1.GoodsSource) string {
	return derivedName(cr.Name+"-"+string(src.Name), string(cr.UID)+"/"+string(src.Kind)+"/"+string(src.Name), 253)
}

// goodsLabelKeys are the labels the operator puts on a copy and strips on acceptance.
var goodsLabelKeys = []string{
	v1alpha1.LabelManagedBy, v1alpha1.LabelRequestNamespace, v1alpha1.LabelRequestName,
	v1alpha1.LabelRequestUID, v1alpha1.LabelOffering, v1alpha1.LabelItem,
}

// goodsSettled reports whether a goods request is finished: accepted (the
// consumer owns the goods) or returned. Nothing is done for it any more, not
// even when its agreement ends.
func goodsSettled(cr *v1alpha1.ConsumptionRequest) bool {
	return cr.Spec.Goods != nil && (cr.Status.Phase == v1alpha1.RequestAccepted || cr.Status.Phase == v1alpha1.RequestRejected)
}

// holdsDelivery reports whether a goods request has copies in the consumer's
// namespace that are still the operator's (delivered, not accepted).
func holdsDelivery(cr *v1alpha1.ConsumptionRequest) bool {
	return cr.Spec.Goods != nil && len(cr.Status.Delivered) > 0 && cr.Status.Phase != v1alpha1.RequestAccepted
}

// goodsOutcome is what the consumer's decision, the acceptance policy and the
// deadline ask for.
type goodsOutcome struct {
	accept, reject bool
	// asked is true when the consumer's own decision asks for it.
	asked       bool
	reason, msg string
	// deadline is the acceptance deadline, when there is one and it has not passed.
	deadline *metav1.Time
}

func decideGoods(cr *v1alpha1.ConsumptionRequest, item *v1alpha1.GoodsItem, transferredAt *metav1.Time, now time.Time) goodsOutcome {
	switch {
	case cr.Spec.Goods.Decision == v1alpha1.GoodsReject:
		return goodsOutcome{reject: true, asked: true, reason: v1alpha1.ReasonRejectedByConsumer, msg: "the consumer rejected the goods"}
	case cr.Spec.Goods.Decision == v1alpha1.GoodsAccept:
		return goodsOutcome{accept: true, asked: true, reason: v1alpha1.ReasonAcceptedByConsumer, msg: "the consumer accepted the goods"}
	case item.Acceptance == v1alpha1.AcceptanceImplicit:
		return goodsOutcome{accept: true, reason: v1alpha1.ReasonAcceptedImplicitly, msg: "the goods need no acceptance: delivery is acceptance"}
	case item.AcceptanceDeadline == nil || transferredAt == nil:
		return goodsOutcome{}
	}
	deadline := metav1.NewTime(transferredAt.Add(item.AcceptanceDeadline.Duration))
	if now.Before(deadline.Time) {
		return goodsOutcome{deadline: &deadline}
	}
	msg := fmt.Sprintf("the consumer did not accept or reject the goods by the acceptance deadline %s", deadline.UTC().Format(time.RFC3339))
	if item.DeadlinePolicy == v1alpha1.DeadlineAccept {
		return goodsOutcome{accept: true, reason: v1alpha1.ReasonAcceptanceDeadlinePassed, msg: msg + "; the goods are treated as accepted"}
	}
	return goodsOutcome{reject: true, reason: v1alpha1.ReasonAcceptanceDeadlinePassed, msg: msg + "; the goods are returned"}
}

// deliver copies the goods into the request's namespace, repairs them until
// they are accepted, and carries out the consumer's decision, the acceptance
// policy and the acceptance deadline.
func (r *RequestReconciler) deliver(ctx context.Context, cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement, off *v1alpha1.ServiceOffering,
	item *v1alpha1.GoodsItem, s *requestState,
) stepOutcome {
	decision := decideGoods(cr, item, s.status.TransferredAt, s.now.Time)
	if decision.reject {
		return r.returnGoods(ctx, cr, s, decision)
	}
	phase := v1alpha1.RequestProvisioning
	if s.status.Phase == v1alpha1.RequestDelivered {
		phase = v1alpha1.RequestDelivered
	}
	delivered, wrote, accepted, o := r.ensureCopies(ctx, cr, agr, off, item, s.status.TransferredAt != nil)
	if o.kind != proceed {
		if s.status.TransferredAt == nil && o.reason != "" {
			o = o.with(v1alpha1.ConditionTransferred, metav1.ConditionFalse, o.reason, o.message)
		}
		return o.orPhase(phase)
	}
	s.status.Delivered = delivered
	what, first := r.recordDelivery(cr, item, s, delivered, wrote)
	if first {
		decision = decideGoods(cr, item, s.status.TransferredAt, s.now.Time)
	}
	if accepted && !decision.accept {
		// The copies were already handed over (this request's state is behind the cluster's).
		decision = goodsOutcome{accept: true, reason: v1alpha1.ReasonAcceptedByConsumer, msg: "the goods were accepted"}
	}
	if decision.accept {
		o = r.acceptGoods(ctx, cr, s, delivered, decision.reason, decision.msg)
	} else {
		o = awaitDecision(item, s, decision)
	}
	return o.orPhase(phase).with(v1alpha1.ConditionTransferred, metav1.ConditionTrue, v1alpha1.ReasonDelivered, what).
		with(v1alpha1.ConditionFulfilled, metav1.ConditionTrue, v1alpha1.ReasonDelivered, what)
}

// recordDelivery records the copies as delivered and says what they are, and
// whether they were transferred just now.
func (r *RequestReconciler) recordDelivery(cr *v1alpha1.ConsumptionRequest, item *v1alpha1.GoodsItem, s *requestState,
	delivered []v1alpha1.DeliveredObject, wrote bool,
) (what string, first bool) {
	names := make([]string, 0, len(delivered))
	for _, d := range delivered {
		names = append(names, string(d.Kind)+" "+d.Name)
	}
	what = fmt.Sprintf("%s delivered into namespace %s", strings.Join(names, ", "), cr.Namespace)
	if s.status.TransferredAt == nil {
		s.status.TransferredAt = &s.now
		recordFulfilment(cr, s)
		s.tell(relatedAgreement(cr, s), corev1.EventTypeNormal, "Delivered", "Deliver", "goods %s: %s", item.Name, what)
		return what, true
	}
	if wrote {
		s.tell(relatedAgreement(cr, s), corev1.EventTypeNormal, "Repaired", "Deliver", "repaired drift in the delivered goods %s", item.Name)
	}
	return what, false
}

// awaitDecision: the goods are delivered and wait for the consumer's
// decision, until the acceptance deadline if there is one.
func awaitDecision(item *v1alpha1.GoodsItem, s *requestState, decision goodsOutcome) stepOutcome {
	s.status.AcceptBy = decision.deadline
	msg := fmt.Sprintf("goods %s are delivered and wait for the consumer's decision: set spec.goods.decision to Accept or Reject", item.Name)
	var requeue time.Duration
	if decision.deadline != nil {
		policy := item.DeadlinePolicy
		if policy == "" {
			policy = v1alpha1.DeadlineReturn
		}
		msg += fmt.Sprintf(" by %s (then: %s)", decision.deadline.UTC().Format(time.RFC3339), policy)
		requeue = decision.deadline.Sub(s.now.Time)
	}
	return waitFor(v1alpha1.RequestDelivered, v1alpha1.ReasonAwaitingAcceptance, msg).
		with(v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonAwaitingAcceptance, msg).after(requeue)
}

// ensureCopies creates or repairs the copy of every source, and removes copies
// of sources the item no longer names. accepted is true when a copy was
// already handed over to the consumer for this request. A source that cannot
// be delivered stalls the request; it is looked at again after
// goodsSourceRecheck, since sources are not watched.
func (r *RequestReconciler) ensureCopies(ctx context.Context, cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement, off *v1alpha1.ServiceOffering,
	item *v1alpha1.GoodsItem, transferred bool,
) (delivered []v1alpha1.DeliveredObject, wrote, accepted bool, o stepOutcome) {
	lbls := childLabels(cr, string(agr.Spec.Offering), item.Name)
	keep := map[string]bool{}
	for _, src := range item.Sources {
		obj, kept, w, acc, o := r.deliverSource(ctx, cr, agr, off, src, lbls, transferred)
		if o.kind != proceed {
			return delivered, wrote, accepted, o
		}
		wrote, accepted = wrote || w, accepted || acc
		if kept {
			keep[string(src.Kind)+"/"+obj.Name] = true
			delivered = append(delivered, obj)
		}
	}
	if accepted {
		return delivered, wrote, accepted, stepOutcome{}
	}
	// Remove copies of sources the item no longer names.
	n, err := r.removeCopies(ctx, cr, func(kind v1alpha1.GoodsSourceKind, name string) bool { return keep[string(kind)+"/"+name] })
	if err != nil {
		return delivered, wrote || n > 0, accepted, deliveryError(err)
	}
	return delivered, wrote || n > 0, accepted, stepOutcome{}
}

// deliveryError is an error delivering goods: a conflict (the cache is
// behind) is retried without a report, others are reported as DeliveryFailed.
func deliveryError(err error) stepOutcome {
	if apierrors.IsConflict(err) {
		return errored(err)
	}
	return failing("", v1alpha1.ReasonDeliveryFailed, err.Error(), err).fulfilment()
}

// deliverSource delivers the copy of one source. A source gone after
// delivery leaves the copy as it was delivered.
func (r *RequestReconciler) deliverSource(ctx context.Context, cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement,
	off *v1alpha1.ServiceOffering, src v1alpha1.GoodsSource, lbls map[string]string, transferred bool,
) (obj v1alpha1.DeliveredObject, kept, wrote, accepted bool, o stepOutcome) {
	source, o := r.readSource(ctx, string(off.Spec.ProviderNamespace), src)
	name := goodsCopyName(cr, src)
	obj = v1alpha1.DeliveredObject{Kind: src.Kind, Name: name, Namespace: cr.Namespace}
	if o.reason == v1alpha1.ReasonSourceNotFound && transferred {
		existing := emptyObjectFor(src.Kind)
		if gerr := r.APIReader.Get(ctx, types.NamespacedName{Namespace: cr.Namespace, Name: name}, existing); gerr == nil &&
			(isOurs(existing, cr) || existing.GetAnnotations()[v1alpha1.AnnotationAcceptedFrom] == string(cr.UID)) {
			return obj, true, false, false, stepOutcome{}
		}
	}
	if o.kind != proceed {
		return obj, false, false, false, o
	}
	desired := desiredCopy(cr, agr, src, source, lbls)
	wrote, accepted, conflict, err := r.ensureCopy(ctx, cr, desired)
	if err != nil {
		return obj, false, false, false, deliveryError(fmt.Errorf("delivering %s %s/%s: %w", src.Kind, cr.Namespace, name, redact(err)))
	}
	if conflict {
		return obj, false, false, false, stall("", v1alpha1.ReasonCopyConflict,
			fmt.Sprintf("%s %s/%s already exists and was not delivered for this request; it is never overwritten: rename or delete it",
				src.Kind, cr.Namespace, name)).fulfilment().after(goodsSourceRecheck)
	}
	return obj, true, wrote, accepted, stepOutcome{}
}

// readSource reads a goods source live from the provider namespace: sources
// are not cached, so that the operator does not cache every Secret of the
// cluster. A provider namespace the operator may not use (the offering is
// not Ready then, but the request may be reconciled before its agreement
// shows it) is not read at all.
func (r *RequestReconciler) readSource(ctx context.Context, providerNS string, src v1alpha1.GoodsSource) (client.Object, stepOutcome) {
	unusable := func(reason, msg string) (client.Object, stepOutcome) {
		return nil, stall("", reason, msg).fulfilment().after(goodsSourceRecheck)
	}
	_, reason, why, err := r.Options.providerNamespace(ctx, r.APIReader, providerNS)
	if err != nil {
		return nil, deliveryError(err)
	}
	if reason != "" {
		return unusable(reason, fmt.Sprintf("goods source %s %s/%s is not read: %s; the request waits", src.Kind, providerNS, src.Name, why))
	}
	obj := emptyObjectFor(src.Kind)
	if obj == nil {
		return unusable(v1alpha1.ReasonSourceNotAllowed, fmt.Sprintf("goods source kind %q cannot be delivered", src.Kind))
	}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: providerNS, Name: string(src.Name)}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return unusable(v1alpha1.ReasonSourceNotFound,
				fmt.Sprintf("goods source %s %s/%s does not exist; the request waits for the provider to create it", src.Kind, providerNS, src.Name))
		}
		return nil, deliveryError(fmt.Errorf("reading goods source %s %s/%s: %w", src.Kind, providerNS, src.Name, redact(err)))
	}
	if sec, ok := obj.(*corev1.Secret); ok && sec.Type == corev1.SecretTypeServiceAccountToken {
		return unusable(v1alpha1.ReasonSourceNotAllowed,
			fmt.Sprintf("goods source Secret %s/%s is a ServiceAccount token, which is never copied", providerNS, src.Name))
	}
	return obj, stepOutcome{}
}

// desiredCopy is the copy of source in the request's namespace.
func desiredCopy(cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement, src v1alpha1.GoodsSource, source client.Object, lbls map[string]string) client.Object {
	om := metav1.ObjectMeta{
		Name:      goodsCopyName(cr, src),
		Namespace: cr.Namespace,
		Labels:    maps.Clone(lbls),
		Annotations: map[string]string{
			v1alpha1.AnnotationSource:                source.GetNamespace() + "/" + source.GetName(),
			v1alpha1.AnnotationSourceResourceVersion: source.GetResourceVersion(),
			v1alpha1.AnnotationRequest:               cr.Namespace + "/" + cr.Name,
			v1alpha1.AnnotationAgreement:             agr.Namespace + "/" + agr.Name,
		},
		OwnerReferences: []metav1.OwnerReference{requestOwnerRef(cr)},
	}
	switch s := source.(type) {
	case *corev1.Secret:
		return &corev1.Secret{ObjectMeta: om, Type: s.Type, Data: s.Data}
	case *corev1.ConfigMap:
		return &corev1.ConfigMap{ObjectMeta: om, Data: s.Data, BinaryData: s.BinaryData}
	}
	panic(fmt.Sprintf("unexpected goods source %T", source))
}

// requestOwnerRef makes the request the owner of a copy until it is accepted,
// so that garbage collection also removes copies of a request that is gone.
// It does not block the owner's deletion: the request's finalizer already
// removes the copies first.
func requestOwnerRef(cr *v1alpha1.ConsumptionRequest) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: v1alpha1.GroupVersion.String(), Kind: "ConsumptionRequest",
		Name: cr.Name, UID: cr.UID, Controller: ptr.To(true),
	}
}

// copyContentEqual reports whether have holds desired's content. recreate is
// true when have can only be brought back by deleting it (a Secret's type is immutable).
func copyContentEqual(have, desired client.Object) (equal, recreate bool) {
	switch d := desired.(type) {
	case *corev1.Secret:
		h := have.(*corev1.Secret)
		eq := h.Type == d.Type && equality.Semantic.DeepEqual(h.Data, d.Data)
		return eq, !eq && (h.Type != d.Type || ptr.Deref(h.Immutable, false))
	case *corev1.ConfigMap:
		h := have.(*corev1.ConfigMap)
		eq := equality.Semantic.DeepEqual(h.Data, d.Data) && equality.Semantic.DeepEqual(h.BinaryData, d.BinaryData)
		return eq, !eq && ptr.Deref(h.Immutable, false)
	}
	return false, false
}

// setCopyContent puts desired's content onto have.
func setCopyContent(have, desired client.Object) {
	switch d := desired.(type) {
	case *corev1.Secret:
		have.(*corev1.Secret).Data = d.Data
	case *corev1.ConfigMap:
		h := have.(*corev1.ConfigMap)
		h.Data, h.BinaryData = d.Data, d.BinaryData
	}
}

func emptyLike(obj client.Object) client.Object {
	switch obj.(type) {
	case *corev1.Secret:
		return &corev1.Secret{}
	case *corev1.ConfigMap:
		return &corev1.ConfigMap{}
	}
	panic(fmt.Sprintf("unexpected goods copy %T", obj))
}

// ensureCopy creates desired or repairs the existing copy. An object of that
// name that is not this request's managed copy is never overwritten: conflict
// is true, or accepted when it is a copy already handed over for this request.
func (r *RequestReconciler) ensureCopy(ctx context.Context, cr *v1alpha1.ConsumptionRequest, desired client.Object) (wrote, accepted, conflict bool, err error) {
	key := client.ObjectKeyFromObject(desired)
	have := emptyLike(desired)
	err = r.Get(ctx, key, have)
	if apierrors.IsNotFound(err) {
		err = r.Create(ctx, desired)
		if !apierrors.IsAlreadyExists(err) {
			return err == nil, false, false, err
		}
		// It exists but the cache does not show it as ours: look at the real thing.
		have = emptyLike(desired)
		err = r.APIReader.Get(ctx, key, have)
	}
	if err != nil {
		return false, false, false, err
	}
	if !isOurs(have, cr) {
		switch {
		case have.GetAnnotations()[v1alpha1.AnnotationAcceptedFrom] == string(cr.UID):
			return false, true, false, nil
		case have.GetAnnotations()[v1alpha1.AnnotationAcceptedFrom] == "" &&
			(have.GetLabels()[v1alpha1.LabelRequestUID] == string(cr.UID) || hasOwnerRef(have, cr.UID)):
			// Our copy with a label edited away: repaired below.
		default:
			return false, false, true, nil
		}
	}
	equal, recreate := copyContentEqual(have, desired)
	if recreate {
		if err := deleteWithUID(ctx, r.Client, have); err != nil {
			return false, false, false, err
		}
		return true, false, false, r.Create(ctx, desired)
	}
	if equal && subset(desired.GetLabels(), have.GetLabels()) && subset(desired.GetAnnotations(), have.GetAnnotations()) &&
		hasOwnerRef(have, cr.UID) {
		return false, false, false, nil
	}
	setCopyContent(have, desired)
	l, a := have.GetLabels(), have.GetAnnotations()
	if l == nil {
		l = map[string]string{}
	}
	if a == nil {
		a = map[string]string{}
	}
	maps.Copy(l, desired.GetLabels())
	maps.Copy(a, desired.GetAnnotations())
	have.SetLabels(l)
	have.SetAnnotations(a)
	if !hasOwnerRef(have, cr.UID) {
		have.SetOwnerReferences(append(have.GetOwnerReferences(), requestOwnerRef(cr)))
	}
	return true, false, false, r.Update(ctx, have)
}

// acceptGoods lets go of the copies for good: it removes the operator's
// labels, its owner reference and finalizer, so they drop out of the cache,
// are no longer reconciled and survive the request and the agreement.
func (r *RequestReconciler) acceptGoods(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState, delivered []v1alpha1.DeliveredObject, reason, msg string) stepOutcome {
	for _, d := range delivered {
		if err := r.letGo(ctx, cr, d); err != nil {
			return errored(fmt.Errorf("handing over %s %s/%s: %w", d.Kind, d.Namespace, d.Name, redact(err)))
		}
	}
	s.status.AcceptBy = nil
	if s.status.AcceptedAt == nil {
		s.status.AcceptedAt = &s.now
		s.tell(relatedAgreement(cr, s), corev1.EventTypeNormal, "Accepted", "Accept", "%s; %d object(s) handed over in namespace %s", msg, len(delivered), cr.Namespace)
	}
	msg += "; the consumer owns the delivered objects"
	return readyAs(v1alpha1.RequestAccepted, reason, msg).with(v1alpha1.ConditionAccepted, metav1.ConditionTrue, reason, msg)
}

func (r *RequestReconciler) letGo(ctx context.Context, cr *v1alpha1.ConsumptionRequest, d v1alpha1.DeliveredObject) error {
	if d.Namespace != cr.Namespace {
		return nil
	}
	obj := emptyObjectFor(d.Kind)
	if obj == nil {
		return nil
	}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: d.Namespace, Name: d.Name}, obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !isOurs(obj, cr) {
		return nil
	}
	patch := client.MergeFromWithOptions(obj.DeepCopyObject().(client.Object), client.MergeFromWithOptimisticLock{})
	l := obj.GetLabels()
	for _, k := range goodsLabelKeys {
		delete(l, k)
	}
	obj.SetLabels(l)
	a := obj.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[v1alpha1.AnnotationAcceptedFrom] = string(cr.UID)
	obj.SetAnnotations(a)
	refs := obj.GetOwnerReferences()[:0]
	for _, o := range obj.GetOwnerReferences() {
		if o.UID != cr.UID {
			refs = append(refs, o)
		}
	}
	obj.SetOwnerReferences(refs)
	controllerutil.RemoveFinalizer(obj, v1alpha1.Finalizer)
	return r.Patch(ctx, obj, patch)
}

func emptyObjectFor(kind v1alpha1.GoodsSourceKind) client.Object {
	switch kind {
	case v1alpha1.GoodsSourceSecret:
		return &corev1.Secret{}
	case v1alpha1.GoodsSourceConfigMap:
		return &corev1.ConfigMap{}
	}
	return nil
}

// returnGoods removes the copies and gives the entitlement back: the consumer
// rejected the goods, or the acceptance deadline returned them. Final.
func (r *RequestReconciler) returnGoods(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState, decision goodsOutcome) stepOutcome {
	n, err := r.removeCopies(ctx, cr, nil)
	if err != nil {
		return errored(err)
	}
	// Returning is final and happens once: release on a confirmed read, not
	// only when the cached agreement shows the allocation.
	var agr v1alpha1.ServiceAgreement
	if err := r.Get(ctx, types.NamespacedName{Namespace: cr.Namespace, Name: string(cr.Spec.Agreement)}, &agr); client.IgnoreNotFound(err) != nil {
		return errored(err)
	} else if err == nil {
		if err := releaseAllocations(ctx, r.Client, r.APIReader, &agr, string(cr.UID)); err != nil {
			return errored(err)
		}
	}
	s.status.Delivered = nil
	s.status.AcceptBy = nil
	if cr.Status.Phase != v1alpha1.RequestRejected {
		s.tell(relatedAgreement(cr, s), corev1.EventTypeNormal, "Returned", "Return", "%s; %d object(s) removed", decision.msg, n)
	}
	full := decision.msg + "; the delivered objects were removed and the entitlement given back"
	o := stall(v1alpha1.RequestRejected, decision.reason, full)
	if decision.asked {
		// The consumer's own decision was carried out.
		o = closeAs(v1alpha1.RequestRejected, decision.reason, full)
	}
	return o.fulfilment().with(v1alpha1.ConditionTransferred, metav1.ConditionFalse, decision.reason, full).with(v1alpha1.ConditionAccepted, metav1.ConditionFalse, decision.reason, full)
}

// goodsRevoked records that unaccepted goods were removed because the agreement is not in force.
func goodsRevoked(s *requestState, why string, o stepOutcome) stepOutcome {
	s.status.Delivered = nil
	s.status.TransferredAt = nil
	s.status.AcceptBy = nil
	msg := why + "; the delivered goods were not accepted and were removed"
	return o.with(v1alpha1.ConditionTransferred, metav1.ConditionFalse, v1alpha1.ReasonRevoked, msg).with(v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonRevoked, msg)
}

// removeCopies deletes the copies the operator still manages for cr, except
// those keep reports (nil: keep none). Copies are identified strictly by the
// managed-by label and the request's UID label, and each is confirmed on a
// live read and deleted with a UID and resourceVersion precondition, so that
// a copy the consumer has accepted (whose labels are gone) is never deleted,
// even when the cache is behind. It returns how many were deleted.
func (r *RequestReconciler) removeCopies(ctx context.Context, cr *v1alpha1.ConsumptionRequest, keep func(v1alpha1.GoodsSourceKind, string) bool) (int, error) {
	if cr.Spec.Goods == nil {
		return 0, nil
	}
	candidates := map[v1alpha1.DeliveredObject]bool{}
	sel := client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelRequestUID: string(cr.UID)}
	var secrets corev1.SecretList
	if err := r.List(ctx, &secrets, client.InNamespace(cr.Namespace), sel); err != nil {
		return 0, err
	}
	for i := range secrets.Items {
		candidates[v1alpha1.DeliveredObject{Kind: v1alpha1.GoodsSourceSecret, Name: secrets.Items[i].Name, Namespace: cr.Namespace}] = true
	}
	var cms corev1.ConfigMapList
	if err := r.List(ctx, &cms, client.InNamespace(cr.Namespace), sel); err != nil {
		return 0, err
	}
	for i := range cms.Items {
		candidates[v1alpha1.DeliveredObject{Kind: v1alpha1.GoodsSourceConfigMap, Name: cms.Items[i].Name, Namespace: cr.Namespace}] = true
	}
	// The cache may not list a copy created moments ago: also look at the recorded ones.
	for _, d := range cr.Status.Delivered {
		if d.Namespace == cr.Namespace {
			candidates[d] = true
		}
	}
	n := 0
	for d := range candidates {
		if keep != nil && keep(d.Kind, d.Name) {
			continue
		}
		obj := emptyObjectFor(d.Kind)
		if obj == nil {
			continue
		}
		if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: d.Namespace, Name: d.Name}, obj); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return n, redact(err)
		}
		if !isOurs(obj, cr) || !obj.GetDeletionTimestamp().IsZero() {
			continue
		}
		uid, rv := obj.GetUID(), obj.GetResourceVersion()
		err := r.Delete(ctx, obj, client.Preconditions{UID: &uid, ResourceVersion: &rv})
		switch {
		case apierrors.IsNotFound(err):
		case apierrors.IsConflict(err):
			// Changed since it was read (perhaps accepted): look again on the next reconcile.
			return n, fmt.Errorf("%s %s/%s changed while being removed; retrying", d.Kind, d.Namespace, d.Name)
		case err != nil:
			return n, redact(err)
		default:
			n++
		}
	}
	return n, nil
}

// countGoods counts goods requests by delivered (awaiting the decision), accepted and returned.
func countGoods(requests []v1alpha1.ConsumptionRequest) v1alpha1.GoodsCounts {
	var c v1alpha1.GoodsCounts
	for i := range requests {
		if requests[i].Spec.Goods == nil {
			continue
		}
		switch requests[i].Status.Phase {
		case v1alpha1.RequestDelivered:
			c.Delivered++
		case v1alpha1.RequestAccepted:
			c.Accepted++
		case v1alpha1.RequestRejected:
			c.Returned++
		}
	}
	return c
}
