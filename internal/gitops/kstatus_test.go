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

// TestKstatusNeverReportsFailed records a limit of the current status: kstatus
// reports Failed only for a Stalled=True condition, which the operator does
// not write, so final outcomes (a denied or failed request, an expired
// agreement, an invalid offering) read InProgress until a Flux health check
// times out.
func TestKstatusNeverReportsFailed(t *testing.T) {
	for _, cases := range [][]healthCase{offeringCases(), agreementCases(), requestCases()} {
		for _, tc := range cases {
			res, err := status.Compute(&unstructured.Unstructured{Object: tc.obj()})
			if err != nil {
				t.Fatalf("%s: status.Compute: %v", tc.name, err)
			}
			if res.Status == status.FailedStatus {
				t.Errorf("%s: kstatus = Failed; the operator now writes Stalled: update the expectations and docs/gitops.md", tc.name)
			}
		}
	}
}
