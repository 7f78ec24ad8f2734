package integration

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// TestWatchNamespacesServesOnlyThose: an operator started with
// --watch-namespaces grants the requests of the namespaces it serves and,
// once it has gone quiet, has not touched another namespace's agreement or
// request: no status, no finalizer, no granted namespace. Started without the
// flag, the next operator grants that request too.
func TestWatchNamespacesServesOnlyThose(t *testing.T) {
	if admin == nil {
		t.Skip("integration test: run without -short, through `make test`")
	}
	ctx := context.Background()
	served, other := newWorld(t), newWorld(t)
	op := runOperator(t, operatorOptions{namespaces: []string{served.ns}})
	op.settle(t, 60*time.Second, "the served namespace's request granted", func() error {
		return requestReady(served.request)
	})
	var agr v1alpha1.ServiceAgreement
	if err := admin.Get(ctx, client.ObjectKey{Namespace: other.ns, Name: "agreement"}, &agr); err != nil {
		t.Fatal(err)
	}
	if agr.Status.Phase != "" || len(agr.Status.Conditions) != 0 || len(agr.Finalizers) != 0 {
		t.Errorf("the agreement of a namespace not served was written: phase %q, conditions %+v, finalizers %v",
			agr.Status.Phase, agr.Status.Conditions, agr.Finalizers)
	}
	cr := other.get(t)
	if cr.Status.Phase != "" || len(cr.Status.Conditions) != 0 || slices.Contains(cr.Finalizers, v1alpha1.Finalizer) {
		t.Errorf("the request of a namespace not served was written: phase %q, conditions %+v, finalizers %v",
			cr.Status.Phase, cr.Status.Conditions, cr.Finalizers)
	}
	var nss corev1.NamespaceList
	if err := admin.List(ctx, &nss, client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)}); err != nil {
		t.Fatal(err)
	}
	if len(nss.Items) != 0 {
		t.Errorf("%d namespace(s) granted for a request not served", len(nss.Items))
	}
	op.stop(t)

	all := runOperator(t, operatorOptions{})
	all.settle(t, 60*time.Second, "every namespace's request granted", func() error {
		if err := requestReady(other.request); err != nil {
			return fmt.Errorf("not served before: %w", err)
		}
		return requestReady(served.request)
	})
}
