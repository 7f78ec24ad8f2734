package controllers

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// reconciler is what every controller works with.
type reconciler struct {
	// Client reads from the cache and writes to the API server; Secrets and
	// ConfigMaps, cached without content, are read live (liveContent).
	client.Client
	// APIReader reads live where the cache cannot be trusted or does not hold
	// the object: confirming that an entitlement is exhausted or that a
	// request holding an allocation is gone, a namespace that already exists,
	// provider namespaces and goods sources.
	APIReader client.Reader
	Recorder  recorder.EventRecorder
	Options   Options
}

// OfferingReconciler validates ServiceOfferings and rolls up their relationships.
type OfferingReconciler struct {
	reconciler
	Policy *RolePolicy
}

// AgreementReconciler drives the lifecycle of ServiceAgreements and rolls up
// the requests made under them. Revoking and restoring access is the request
// controller's job: it watches agreements and acts on their phase.
type AgreementReconciler struct {
	reconciler
}

// RequestReconciler admits, approves and fulfils ConsumptionRequests, and
// revokes what was granted when a request is deleted or its agreement ends.
type RequestReconciler struct {
	reconciler
	Policy *RolePolicy
}

// ensureFinalizer adds the operator's finalizer to obj unless it holds it:
// from then on obj is not deleted before the operator has undone what it did
// for it.
func (r *reconciler) ensureFinalizer(ctx context.Context, obj client.Object) error {
	if controllerutil.ContainsFinalizer(obj, v1alpha1.Finalizer) {
		return nil
	}
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	controllerutil.AddFinalizer(obj, v1alpha1.Finalizer)
	return r.Patch(ctx, obj, patch)
}
