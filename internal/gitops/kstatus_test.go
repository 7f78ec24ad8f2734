package gitops

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// runKstatusCases checks how kstatus (status.Compute, which Flux's health
// checks and `kubectl wait`-like tools use) reads the operator's status.
func runKstatusCases(t *testing.T, cases []healthCase) {
	for _, tc := range cases {
		if tc.kstatus == "" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			res, err := status.Compute(&unstructured.Unstructured{Object: tc.obj()})
			if err != nil {
				t.Fatalf("status.Compute: %v", err)
			}
			if string(res.Status) != tc.kstatus {
				t.Errorf("kstatus = %s (%s), want %s", res.Status, res.Message, tc.kstatus)
			}
		})
	}
}

func TestKstatusServiceOffering(t *testing.T) { runKstatusCases(t, offeringCases()) }

func TestKstatusServiceAgreement(t *testing.T) { runKstatusCases(t, agreementCases()) }

func TestKstatusConsumptionRequest(t *testing.T) { runKstatusCases(t, requestCases()) }

// TestKstatusFailedIsArgoDegraded: the two health readers agree. kstatus
// reads Failed (from the operator's Stalled=True) exactly where the Argo CD
// health check reads Degraded, so Flux and Argo CD users see a final or
// stuck object the same way.
func TestKstatusFailedIsArgoDegraded(t *testing.T) {
	for _, cases := range [][]healthCase{offeringCases(), agreementCases(), requestCases()} {
		for _, tc := range cases {
			res, err := status.Compute(&unstructured.Unstructured{Object: tc.obj()})
			if err != nil {
				t.Fatalf("%s: status.Compute: %v", tc.name, err)
			}
			if failed, degraded := res.Status == status.FailedStatus, tc.argo == argoDegraded; failed != degraded {
				t.Errorf("%s: kstatus = %s but Argo CD reads %s", tc.name, res.Status, tc.argo)
			}
		}
	}
}
