//go:build e2e

package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAdmissionPolicyAddsTheFinalizer checks config/admission: the API server
// itself puts the operator's finalizer on a request as it is created, so the
// operator never has to patch a new request, and it still removes the
// finalizer when the request is deleted.
func TestAdmissionPolicyAddsTheFinalizer(t *testing.T) {
	const ns = "e2e-admission"
	mustKubectl(t, "create", "namespace", ns)
	t.Cleanup(func() { _, _ = kubectl(t, "delete", "namespace", ns, "--wait=false") })
	request := `
apiVersion: service.offering.dev/v1alpha1
kind: ConsumptionRequest
metadata:
  name: early
  namespace: e2e-admission
spec:
  agreement: nobody-signed-this
  resource:
    name: sandbox
`
	// No operator runs yet: whatever the create returns was set in admission
	// (TestMain waited for the policy to be active).
	out, err := kubectlInput(t, request, "create", "--field-manager=consumer", "-f", "-", "-o", "jsonpath={.metadata.finalizers}")
	if err != nil {
		t.Fatalf("creating the request: %v", err)
	}
	if !strings.Contains(out, "service.offering.dev/finalizer") {
		t.Fatalf("created without the operator's finalizer: %q", out)
	}
	t.Logf("finalizers at creation: %s", out)

	token := createMetricsReader(t)
	op := startOperator(t)
	// The operator takes the request as it is: it says why it cannot be served.
	eventually(t, 60*time.Second, "the request to be reconciled", func() error {
		o, err := kubectl(t, "get", "consumptionrequest", "early", "-n", ns, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].reason}`)
		if err != nil {
			return err
		}
		if o == "" {
			return fmt.Errorf("no Ready condition yet")
		}
		return nil
	})
	if n := requestPatches(t, op, token); n != 0 {
		t.Fatalf("the operator patched consumptionrequests %v times; the finalizer was already there, want 0", n)
	}

	mustKubectl(t, "delete", "consumptionrequest", "early", "-n", ns, "--wait=false")
	eventually(t, 60*time.Second, "the deleted request to be released by the operator", func() error {
		o, err := kubectl(t, "get", "consumptionrequest", "-n", ns, "-o", "name")
		if err != nil {
			return err
		}
		if strings.TrimSpace(o) != "" {
			return fmt.Errorf("still there: %s", o)
		}
		return nil
	})
	if n := requestPatches(t, op, token); n != 1 {
		t.Fatalf("consumptionrequests patched %v times, want 1 (the finalizer's removal)", n)
	}
}

var requestPatchLine = regexp.MustCompile(`(?m)^offering_operator_api_requests_total\{code="[^"]*",resource="consumptionrequests",verb="patch"\} (\S+)$`)

// requestPatches is the operator's count of PATCH calls on consumptionrequests,
// whatever their answer.
func requestPatches(t testing.TB, op *Operator, token string) float64 {
	t.Helper()
	// /readyz can answer before the metrics server listens: wait for it.
	var body string
	eventually(t, 30*time.Second, "the metrics endpoint to answer", func() error {
		code, b, err := op.Metrics(token)
		if err == nil && code != 200 {
			err = fmt.Errorf("status %d", code)
		}
		body = b
		return err
	})
	total := 0.0
	for _, m := range requestPatchLine.FindAllStringSubmatch(body, -1) {
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		total += v
	}
	return total
}
