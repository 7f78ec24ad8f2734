package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// The objects the operator creates for a request (namespaces and their
// children, goods copies, action Jobs and Secrets): how they are marked,
// recognised, written and deleted.

// childLabels are the labels of every object created for a request: they
// scope the operator's caches and map events back to the request.
func childLabels(cr *v1alpha1.ConsumptionRequest, offering string, item v1alpha1.ItemName) map[string]string {
	return map[string]string{
		v1alpha1.LabelManagedBy:        v1alpha1.ManagedByValue,
		v1alpha1.LabelRequestNamespace: cr.Namespace,
		v1alpha1.LabelRequestName:      cr.Name,
		v1alpha1.LabelRequestUID:       string(cr.UID),
		v1alpha1.LabelOffering:         offering,
		v1alpha1.LabelItem:             string(item),
	}
}

// isOurs reports whether obj is an object the operator still manages for cr:
// it carries both the managed-by label and cr's UID. Accepted goods carry
// neither and are never touched.
func isOurs(obj client.Object, cr *v1alpha1.ConsumptionRequest) bool {
	l := obj.GetLabels()
	return l[v1alpha1.LabelManagedBy] == v1alpha1.ManagedByValue && l[v1alpha1.LabelRequestUID] == string(cr.UID)
}

func hasOwnerRef(obj client.Object, uid types.UID) bool {
	for _, o := range obj.GetOwnerReferences() {
		if o.UID == uid {
			return true
		}
	}
	return false
}

// subset reports whether every key of want is in have with the same value.
func subset(want, have map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// deleteWithUID deletes obj only if it is still the object that was read, so
// that a successor created under the same name is never deleted by mistake.
func deleteWithUID(ctx context.Context, c client.Client, obj client.Object) error {
	uid := obj.GetUID()
	err := c.Delete(ctx, obj, client.Preconditions{UID: &uid})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// ensureChild creates desired if it does not exist, or brings an existing
// object back to it. It writes nothing when the object already matches.
// inSync reports whether an existing object matches; compatible (optional)
// reports whether it can be updated in place (otherwise it is deleted and
// created again, for immutable fields); overwrite copies the desired fields
// onto it. The cache only holds objects carrying the operator's labels, so
// an object found by create but not by the cache is read live and taken
// over: it sits in a namespace the operator owns.
func ensureChild[T client.Object](ctx context.Context, c client.Client, live client.Reader, desired T, have T,
	inSync func(T) bool, compatible func(T) bool, overwrite func(T),
) (bool, error) {
	key := client.ObjectKeyFromObject(desired)
	err := c.Get(ctx, key, have)
	if apierrors.IsNotFound(err) {
		err = c.Create(ctx, desired)
		if !apierrors.IsAlreadyExists(err) {
			return err == nil, err
		}
		err = live.Get(ctx, key, have)
	}
	if err != nil {
		return false, err
	}
	if inSync(have) {
		return false, nil
	}
	if compatible != nil && !compatible(have) {
		if err := deleteWithUID(ctx, c, have); err != nil {
			return false, err
		}
		desired.SetResourceVersion("")
		return true, c.Create(ctx, desired)
	}
	overwrite(have)
	lbls := have.GetLabels()
	if lbls == nil {
		lbls = map[string]string{}
	}
	maps.Copy(lbls, desired.GetLabels())
	have.SetLabels(lbls)
	return true, c.Update(ctx, have)
}

// redact reduces an API error to its status reason and code, so that nothing
// an API server echoes back about a Secret's contents reaches status, events
// or logs. The result is still an API status error: apierrors.IsConflict and
// the like keep working on it.
func redact(err error) error {
	var status apierrors.APIStatus
	if err == nil || !errors.As(err, &status) {
		return err
	}
	st := status.Status()
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Reason: st.Reason, Code: st.Code,
		Message: fmt.Sprintf("%s (HTTP %d)", st.Reason, st.Code),
	}}
}
