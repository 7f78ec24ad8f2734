package controllers

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// applyStatus writes status to obj's status subresource with server-side apply,
// as FieldOwner. Only the fields present in status are owned by the operator.
// The agreement and offering roll-ups use it: they are recomputed in full from
// the cache and carry no resourceVersion, because a conflict on every write of
// a busy agreement (its ledger changes with each admission) would only delay
// them. A request's status is an update instead (RequestReconciler.writeStatus).
func applyStatus(ctx context.Context, c client.Client, obj client.Object, status any) error {
	gvk, err := apiutil.GVKForObject(obj, c.Scheme())
	if err != nil {
		return err
	}
	st, err := runtime.DefaultUnstructuredConverter.ToUnstructured(status)
	if err != nil {
		return fmt.Errorf("converting status: %w", err)
	}
	pruneNulls(st)
	u := &unstructured.Unstructured{Object: map[string]any{"status": st}}
	u.SetGroupVersionKind(gvk)
	u.SetName(obj.GetName())
	u.SetNamespace(obj.GetNamespace())
	// The UID makes the apply fail rather than create or touch a successor of the same name.
	u.SetUID(obj.GetUID())
	return c.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(FieldOwner), client.ForceOwnership)
}

// pruneNulls removes null values and empty objects, which the converter
// produces for empty structs and which the API server rejects for
// object-typed fields. Leaving a field out of an apply only gives up owning it.
func pruneNulls(m map[string]any) {
	for k, v := range m {
		switch x := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			pruneNulls(x)
			if len(x) == 0 {
				delete(m, k)
			}
		case []any:
			for _, e := range x {
				if em, ok := e.(map[string]any); ok {
					pruneNulls(em)
				}
			}
		}
	}
}

// setCondition sets a condition on conds, keeping lastTransitionTime when the status does not change.
func setCondition(conds *[]metav1.Condition, typ string, status metav1.ConditionStatus, reason, msg string, gen int64, now metav1.Time) {
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: truncate(msg, 32768),
		ObservedGeneration: gen, LastTransitionTime: now,
	})
}

// keepConditions returns the conditions of conds whose type is in types, in that order.
func keepConditions(conds []metav1.Condition, types ...string) []metav1.Condition {
	out := make([]metav1.Condition, 0, len(types))
	for _, t := range types {
		if c := meta.FindStatusCondition(conds, t); c != nil {
			out = append(out, *c)
		}
	}
	return out
}

// statusConditions is the whole condition list of a status update: the types
// in owned as the operator computed them (desired), every other type exactly as
// the server holds it (current), so that an update never changes, and never
// takes over, a condition another writer owns. The order of desired is kept,
// and other writers' conditions it lacks come last.
func statusConditions(current, desired []metav1.Condition, owned []string) []metav1.Condition {
	out := make([]metav1.Condition, 0, len(desired)+len(current))
	for _, c := range desired {
		if slices.Contains(owned, c.Type) {
			out = append(out, c)
		} else if cur := meta.FindStatusCondition(current, c.Type); cur != nil {
			out = append(out, *cur)
		}
	}
	for _, c := range current {
		if !slices.Contains(owned, c.Type) && meta.FindStatusCondition(out, c.Type) == nil {
			out = append(out, c)
		}
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func boolStatus(b bool) metav1.ConditionStatus {
	if b {
		return metav1.ConditionTrue
	}
	return metav1.ConditionFalse
}

// endOnConflict turns a conflict on a write into a quiet end of the
// reconcile: the object changed since the cache copy was read, and that newer
// version is on its way to the cache (or already there), whose event
// reconciles the object again from fresh data. Other errors are returned as they are.
func endOnConflict(result ctrl.Result, err error) (ctrl.Result, error) {
	if !apierrors.IsConflict(err) {
		return result, err
	}
	return result, nil
}

// needsAttention are the Ready=False reasons of a request that is not final
// but will not move on without a person.
var needsAttention = map[string]bool{
	v1alpha1.ReasonAccessDenied:               true,
	v1alpha1.ReasonCopyConflict:               true,
	v1alpha1.ReasonSourceNotFound:             true,
	v1alpha1.ReasonSourceNotAllowed:           true,
	v1alpha1.ReasonItemNotOffered:             true,
	v1alpha1.ReasonUnsupportedItemKind:        true,
	v1alpha1.ReasonUnsafeParameterExpansion:   true,
	v1alpha1.ReasonProviderNamespaceForbidden: true,
	v1alpha1.ReasonSecretNotReadable:          true,
}

// requestStalled reports whether a request is Stalled: a final outcome that is
// not what was asked for, or a wait only a person can end. The same cases are
// Degraded in the Argo CD health check (config/gitops/argocd).
func requestStalled(phase v1alpha1.RequestPhase, ready *metav1.Condition) bool {
	if ready == nil {
		return false
	}
	switch phase {
	case v1alpha1.RequestDenied, v1alpha1.RequestFailed:
		return true
	case v1alpha1.RequestRejected:
		return ready.Reason != v1alpha1.ReasonRejectedByConsumer
	}
	return ready.Status == metav1.ConditionFalse && needsAttention[ready.Reason]
}

// setStalled sets Stalled=True with the Ready condition's reason and message
// when stalled, and removes it otherwise (absent means not stalled).
func setStalled(conds *[]metav1.Condition, stalled bool, gen int64, now metav1.Time) {
	ready := meta.FindStatusCondition(*conds, v1alpha1.ConditionReady)
	if !stalled || ready == nil {
		meta.RemoveStatusCondition(conds, v1alpha1.ConditionStalled)
		return
	}
	setCondition(conds, v1alpha1.ConditionStalled, metav1.ConditionTrue, ready.Reason, ready.Message, gen, now)
}
