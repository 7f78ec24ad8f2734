package plugin

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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

// TestServiceLevelTargets: status shows the targets a request is measured
// against, and names the plan whose defaults stand in for the agreement's.
func TestServiceLevelTargets(t *testing.T) {
	d := func(x time.Duration) *metav1.Duration { return &metav1.Duration{Duration: x} }
	for _, tc := range []struct {
		sl   *v1alpha1.RequestServiceLevel
		want string
	}{
		{nil, ""},
		{&v1alpha1.RequestServiceLevel{}, ""},
		{&v1alpha1.RequestServiceLevel{ApprovalTarget: d(4 * time.Hour)}, "approval 4h0m0s"},
		{&v1alpha1.RequestServiceLevel{ApprovalTarget: d(time.Hour), FulfilmentTarget: d(30 * time.Second), Plan: "small"},
			"approval 1h0m0s, fulfilment 30s (plan small's default where the agreement sets none)"},
	} {
		if got := serviceLevelTargets(tc.sl); got != tc.want {
			t.Errorf("serviceLevelTargets(%+v) = %q, want %q", tc.sl, got, tc.want)
		}
	}
}
