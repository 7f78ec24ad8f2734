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

// TestRevisionCell: status shows the revision a request is on, and the one
// its pinned agreement moved to while the move waits.
func TestRevisionCell(t *testing.T) {
	pinned := func(n int32) *v1alpha1.ServiceAgreement {
		return &v1alpha1.ServiceAgreement{Spec: v1alpha1.ServiceAgreementSpec{RevisionPolicy: v1alpha1.RevisionPolicyPinned, Revision: n}}
	}
	for _, tc := range []struct {
		on   int32
		agr  *v1alpha1.ServiceAgreement
		want string
	}{
		{0, pinned(2), ""},
		{3, &v1alpha1.ServiceAgreement{}, "3"},
		{2, pinned(2), "2"},
		{1, pinned(2), "1 -> 2"},
	} {
		cr := &v1alpha1.ConsumptionRequest{Status: v1alpha1.ConsumptionRequestStatus{OfferingRevision: tc.on}}
		if got := revisionCell(cr, tc.agr); got != tc.want {
			t.Errorf("on %d, agreement %+v: %q, want %q", tc.on, tc.agr.Spec, got, tc.want)
		}
	}
}
