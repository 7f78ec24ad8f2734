package plugin

import (
	"testing"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// TestPlanCell: status and report show the plan granted, and the one asked
// for while a change waits.
func TestPlanCell(t *testing.T) {
	for _, tc := range []struct {
		granted, wanted v1alpha1.PlanName
		want            string
	}{
		{"", "", ""},
		{"small", "", "small"},
		{"small", "small", "small"},
		{"", "large", "large"},
		{"small", "large", "small -> large"},
	} {
		cr := &v1alpha1.ConsumptionRequest{Spec: v1alpha1.ConsumptionRequestSpec{Resource: &v1alpha1.ResourceRequest{Name: "space", Plan: tc.wanted}}}
		if tc.granted != "" {
			cr.Status.Grant = &v1alpha1.AccessGrant{Plan: tc.granted}
		}
		if got := planCell(cr); got != tc.want {
			t.Errorf("granted %q, asked %q: %q, want %q", tc.granted, tc.wanted, got, tc.want)
		}
	}
}
