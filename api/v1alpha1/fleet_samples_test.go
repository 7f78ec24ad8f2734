package v1alpha1_test

import (
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// fleetSamplesDir holds what make demo applies for its member cluster: the
// member's ClusterRoles (applied in the member) and the request placed there
// (applied in the hub).
const fleetSamplesDir = samplesDir + "/fleet"

// clusterRoles decodes the ClusterRoles of a sample file, by name.
func clusterRoles(t *testing.T, file string) map[string]rbacv1.ClusterRole {
	t.Helper()
	out := map[string]rbacv1.ClusterRole{}
	for _, u := range decodeDocuments(t, file) {
		if u.GetKind() != "ClusterRole" {
			continue
		}
		var cr rbacv1.ClusterRole
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &cr, true); err != nil {
			t.Fatalf("%s: %v", filepath.Base(file), err)
		}
		out[cr.Name] = cr
	}
	return out
}

// sampleObject decodes the one object of kind in a sample file.
func sampleObject[T any](t *testing.T, file, kind string) *T {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, u := range decodeDocuments(t, file) {
		if u.GetKind() == kind {
			found = append(found, u)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: want one %s, found %d", filepath.Base(file), kind, len(found))
	}
	var obj T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(found[0].Object, &obj, true); err != nil {
		t.Fatalf("%s: %v", filepath.Base(file), err)
	}
	return &obj
}

// TestFleetSamplesTellTheMemberStory checks the demo's member cluster story
// before the demo runs it: the fleet request names an entitled item with a
// placement, and every role that item binds is in the member's file, labelled
// grantable and alike to the hub's copy (the offering is validated against
// the hub's, the grant against the member's).
func TestFleetSamplesTellTheMemberStory(t *testing.T) {
	off := sampleObject[v1alpha1.ServiceOffering](t, filepath.Join(samplesDir, "service_v1alpha1_serviceoffering.yaml"), "ServiceOffering")
	agr := sampleObject[v1alpha1.ServiceAgreement](t, filepath.Join(samplesDir, "service_v1alpha1_serviceagreement.yaml"), "ServiceAgreement")
	req := sampleObject[v1alpha1.ConsumptionRequest](t, filepath.Join(fleetSamplesDir, "service_v1alpha1_consumptionrequest_fleet.yaml"), "ConsumptionRequest")
	hubRoles := clusterRoles(t, filepath.Join(samplesDir, prerequisitesFile))
	memberRoles := clusterRoles(t, filepath.Join(fleetSamplesDir, "member_prerequisites.yaml"))

	if req.Spec.Resource == nil || req.Namespace != agr.Namespace || string(req.Spec.Agreement) != agr.Name {
		t.Fatalf("the fleet request must ask for a resource under %s/%s", agr.Namespace, agr.Name)
	}
	i := slices.IndexFunc(off.Spec.Resources, func(r v1alpha1.ResourceItem) bool { return r.Name == req.Spec.Resource.Name })
	if i < 0 {
		t.Fatalf("the fleet request asks for %s, which the offering does not have", req.Spec.Resource.Name)
	}
	item := off.Spec.Resources[i]
	if item.Placement == nil {
		t.Errorf("resource item %s has no placement: it would be granted in the hub", item.Name)
	}
	if !slices.ContainsFunc(agr.Spec.Entitlements.Resources, func(e v1alpha1.ResourceEntitlement) bool { return e.Name == item.Name }) {
		t.Errorf("the agreement does not entitle %s", item.Name)
	}
	for _, role := range item.ClusterRoles {
		if role == "view" {
			continue // a Kubernetes default role, in every cluster
		}
		m, ok := memberRoles[string(role)]
		if !ok {
			t.Errorf("ClusterRole %s of %s is not in the member's file", role, item.Name)
			continue
		}
		if m.Labels[v1alpha1.LabelGrantable] != "true" {
			t.Errorf("the member's ClusterRole %s is not labelled %s=true", role, v1alpha1.LabelGrantable)
		}
		if h := hubRoles[string(role)]; !reflect.DeepEqual(h.Rules, m.Rules) {
			t.Errorf("ClusterRole %s differs between the hub's %s and the member's file", role, prerequisitesFile)
		}
	}
}
