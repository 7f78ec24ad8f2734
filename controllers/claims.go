package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Grants held under a limited resource entitlement are claimed as slots: a
// small Lease per grant, named after the entitlement and a slot number below
// maxGrants, in the operator's own namespace (grantKeyNamespace), where no
// tenant may write: the built-in edit and admin roles include Leases, so a
// slot in the consumer's namespace could be deleted by the consumer. The API server creates an
// object of a given name once, so two requests cannot hold one slot and no
// more grants than slots can be held, whatever the caches show; a claim is
// one create, whose cost does not depend on the grants already held, and
// concurrent claims meet only when they pick the same slot. Each request
// starts looking at a slot derived from its UID, so a burst spreads over the
// slots. See docs/reliability.md#the-ledger.

// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;delete

// ledger is where the slots are: the operator's namespace, read through the
// cache c (which may lag) and live.
type ledger struct {
	c    client.Client
	live client.Reader
	ns   string
}

// ledger returns the operator's ledger, read through the cache c and live.
func (o Options) ledger(c client.Client, live client.Reader) ledger {
	return ledger{c: c, live: live, ns: grantKeyNamespace(o.OperatorNamespace)}
}

// Field indexes of the claim Leases.
const (
	indexClaimEntitlement = "claim.entitlement"
	indexClaimHolder      = "claim.holder"
	indexClaimAgreement   = "claim.agreement"
)

// claimKey identifies one limited entitlement of one agreement (by UID, so a
// successor of the same name starts with no grants held).
func claimKey(agr *v1alpha1.ServiceAgreement, name v1alpha1.ItemName) string {
	sum := sha256.Sum256([]byte(string(agr.UID) + "/" + string(name)))
	return hex.EncodeToString(sum[:])[:16]
}

// slotName is the Lease of one slot of an entitlement.
func slotName(key string, slot int) string {
	return "grant-" + key + "-" + strconv.Itoa(slot)
}

// slotNumber returns the slot a claim Lease holds, or -1.
func slotNumber(l *coordinationv1.Lease) int {
	i := strings.LastIndexByte(l.Name, '-')
	n, err := strconv.Atoi(l.Name[i+1:])
	if i < 0 || err != nil {
		return -1
	}
	return n
}

// holder returns the UID of the request holding a claim Lease.
func holder(l *coordinationv1.Lease) string {
	return ptr.Deref(l.Spec.HolderIdentity, "")
}

func slotLease(ns string, agr *v1alpha1.ServiceAgreement, cr *v1alpha1.ConsumptionRequest, name v1alpha1.ItemName, key string, slot int) *coordinationv1.Lease {
	lbls := childLabels(cr, string(agr.Spec.Offering), name)
	lbls[v1alpha1.LabelClaim] = key
	lbls[v1alpha1.LabelAgreementUID] = string(agr.UID)
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name: slotName(key, slot), Namespace: ns, Labels: lbls,
			Annotations: map[string]string{v1alpha1.AnnotationAgreement: agr.Namespace + "/" + agr.Name},
		},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(string(cr.UID))},
	}
}

// heldSlots lists the claim Leases of an entitlement, from the cache or live.
func heldSlots(ctx context.Context, r client.Reader, ns, key string, live bool) ([]coordinationv1.Lease, error) {
	var list coordinationv1.LeaseList
	var sel client.ListOption = client.MatchingFields{indexClaimEntitlement: key}
	if live {
		sel = client.MatchingLabels{v1alpha1.LabelClaim: key}
	}
	if err := r.List(ctx, &list, client.InNamespace(ns), sel); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// startSlot is where a request starts looking for a free slot.
func startSlot(uid string, limit int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(uid))
	return int(h.Sum32() % uint32(limit))
}

// claimGrant claims a slot of a limited resource entitlement for cr. It
// looks for a free slot on the cache and creates it; a slot the cache showed
// free but that is taken is read live (it may be cr's own, claimed before a
// restart). Exhaustion is final, so it is confirmed on a live list.
func claimGrant(ctx context.Context, l ledger, agr *v1alpha1.ServiceAgreement, cr *v1alpha1.ConsumptionRequest, name v1alpha1.ItemName, limit int32) (admission, error) {
	key, uid := claimKey(agr, name), string(cr.UID)
	cached, err := heldSlots(ctx, l.c, l.ns, key, false)
	if err != nil {
		return admission{}, err
	}
	taken := make(map[int]bool, len(cached))
	for i := range cached {
		if holder(&cached[i]) == uid {
			return admission{Admitted: true}, nil
		}
		taken[slotNumber(&cached[i])] = true
	}
	if n := int(limit); len(cached) < n {
		start := startSlot(uid, n)
		for k := range n {
			slot := (start + k) % n
			if taken[slot] {
				continue
			}
			ours, err := takeSlot(ctx, l.c, l.live, slotLease(l.ns, agr, cr, name, key, slot))
			if err != nil || ours {
				return admission{Admitted: ours}, err
			}
		}
	}
	return confirmExhausted(ctx, l, key, uid, limit)
}

// takeSlot creates a slot's Lease; it reports whether cr holds the slot.
func takeSlot(ctx context.Context, c client.Client, live client.Reader, l *coordinationv1.Lease) (bool, error) {
	err := c.Create(ctx, l)
	if err == nil {
		return true, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return false, err
	}
	var cur coordinationv1.Lease
	if err := live.Get(ctx, client.ObjectKeyFromObject(l), &cur); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return holder(&cur) == holder(l), nil
}

// confirmExhausted lists the entitlement's slots live: cr may hold one
// already, every slot may be taken (refused, final), or slots were freed
// meanwhile (a conflict, so that the claim is tried again).
func confirmExhausted(ctx context.Context, l ledger, key, uid string, limit int32) (admission, error) {
	held, err := heldSlots(ctx, l.live, l.ns, key, true)
	if err != nil {
		return admission{}, err
	}
	for i := range held {
		if holder(&held[i]) == uid {
			return admission{Admitted: true}, nil
		}
	}
	if used := int32(len(held)); used >= limit {
		return admission{Used: used, Limit: limit}, nil
	}
	return admission{}, apierrors.NewConflict(coordinationv1.Resource("leases"), key,
		fmt.Errorf("a slot was freed while claiming; trying again"))
}

// releaseGrants deletes the slots held by the request with the given UID.
// The cache may not show a claim made just before: finding none there is
// confirmed on a live list.
func releaseGrants(ctx context.Context, l ledger, uid string) error {
	var list coordinationv1.LeaseList
	if err := l.c.List(ctx, &list, client.InNamespace(l.ns), client.MatchingFields{indexClaimHolder: uid}); err != nil {
		return err
	}
	if len(list.Items) == 0 {
		if err := l.live.List(ctx, &list, client.InNamespace(l.ns),
			client.MatchingLabels{v1alpha1.LabelRequestUID: uid}, client.HasLabels{v1alpha1.LabelClaim}); err != nil {
			return err
		}
	}
	return l.delete(ctx, list.Items)
}

// delete deletes slots, each only if it is still the one that was read.
func (l ledger) delete(ctx context.Context, slots []coordinationv1.Lease) error {
	for i := range slots {
		s := &slots[i]
		if err := l.c.Delete(ctx, s, client.Preconditions{UID: &s.UID}); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return nil
}

// grantsHeld counts, from the cache, the slots held under each limited
// resource entitlement of agr, and lists them all.
func grantsHeld(ctx context.Context, l ledger, agr *v1alpha1.ServiceAgreement) (map[v1alpha1.ItemName]int32, []coordinationv1.Lease, error) {
	var list coordinationv1.LeaseList
	if err := l.c.List(ctx, &list, client.InNamespace(l.ns), client.MatchingFields{indexClaimAgreement: string(agr.UID)}); err != nil {
		return nil, nil, err
	}
	held := map[v1alpha1.ItemName]int32{}
	for i := range list.Items {
		held[v1alpha1.ItemName(list.Items[i].Labels[v1alpha1.LabelItem])]++
	}
	return held, list.Items, nil
}

// staleSlots returns the slots to release: those whose request is gone, and
// all but the first slot a request holds of one entitlement (a claim retried
// after a crash may, rarely, take a second one).
func staleSlots(slots []coordinationv1.Lease, gone func(uid, name string) (bool, error)) ([]*coordinationv1.Lease, error) {
	sort.Slice(slots, func(i, j int) bool { return slots[i].Name < slots[j].Name })
	seen := map[string]bool{}
	var out []*coordinationv1.Lease
	for i := range slots {
		l := &slots[i]
		key := l.Labels[v1alpha1.LabelClaim] + "/" + holder(l)
		if seen[key] {
			out = append(out, l)
			continue
		}
		seen[key] = true
		g, err := gone(holder(l), l.Labels[v1alpha1.LabelRequestName])
		if err != nil {
			return out, err
		}
		if g {
			out = append(out, l)
		}
	}
	return out, nil
}

// setupClaimIndexes indexes the slot Leases by entitlement, holder and agreement.
func setupClaimIndexes(ctx context.Context, idx client.FieldIndexer) error {
	by := map[string]func(l *coordinationv1.Lease) string{
		indexClaimEntitlement: func(l *coordinationv1.Lease) string { return l.Labels[v1alpha1.LabelClaim] },
		indexClaimHolder:      holder,
		indexClaimAgreement:   func(l *coordinationv1.Lease) string { return l.Labels[v1alpha1.LabelAgreementUID] },
	}
	for name, f := range by {
		if err := idx.IndexField(ctx, &coordinationv1.Lease{}, name, func(o client.Object) []string {
			if v := f(o.(*coordinationv1.Lease)); v != "" {
				return []string{v}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// claimSelector selects the grant slots: managed by the operator, with a claim.
func claimSelector() labels.Selector {
	req, err := labels.NewRequirement(v1alpha1.LabelClaim, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant key: cannot fail
	}
	return labels.SelectorFromSet(labels.Set{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}).Add(*req)
}

// releaseAgreement deletes the slots still held under an agreement that is
// going away (its requests have given up their grants by then).
func releaseAgreement(ctx context.Context, l ledger, agr *v1alpha1.ServiceAgreement) error {
	_, slots, err := grantsHeld(ctx, l, agr)
	if err != nil {
		return err
	}
	return l.delete(ctx, slots)
}

// migrateGrants moves the grants an agreement's allocation ledger held
// before grants were slots (status.allocations of kind Resource) into slots,
// then drops them from the ledger: an upgrade keeps every grant held. A
// grant whose slot cannot be found (maxGrants was lowered below the grants
// held) stays in the ledger and is tried again.
func migrateGrants(ctx context.Context, l ledger, agr *v1alpha1.ServiceAgreement) error {
	var moved []string
	for _, a := range agr.Status.Allocations {
		limit, _ := entitlement(agr, a.Kind, a.Item)
		if a.Kind != v1alpha1.ItemKindResource || limit == nil {
			continue
		}
		holder := &v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{Name: a.Request, Namespace: agr.Namespace, UID: types.UID(a.UID)}}
		res, err := claimGrant(ctx, l, agr, holder, a.Item, *limit)
		if err != nil {
			return err
		}
		if !res.Admitted {
			ctrl.LoggerFrom(ctx).Info("a grant held before the upgrade finds no slot; it stays in the ledger", "request", a.Request)
			continue
		}
		moved = append(moved, a.UID)
	}
	if len(moved) == 0 {
		return nil
	}
	return releaseAllocations(ctx, l.c, l.live, agr, moved...)
}
