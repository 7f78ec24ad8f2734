//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestRenewalAndExpiryGrace walks renewal as a provider and a consumer see
// it, with the real clock and kube-controller-manager deleting namespaces:
// an agreement within its notice reports ExpiringSoon; at its end, an item
// with a grace period keeps its namespace and data without access while an
// item whose grace runs out loses its namespace; a late renewal gives access
// to the same namespace back with the data intact.
func TestRenewalAndExpiryGrace(t *testing.T) {
	startOperator(t)
	const ns = "e2e-renew"
	until := time.Now().UTC().Add(40 * time.Second).Truncate(time.Second).Format(time.RFC3339)
	applyManifest(t, fmt.Sprintf(`
apiVersion: v1
kind: Namespace
metadata:
  name: e2e-renew
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: e2e-renew-workloads
  labels:
    service.offering.dev/grantable: "true"
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "create", "update", "delete"]
---
apiVersion: service.offering.dev/v1alpha1
kind: ServiceOffering
metadata:
  name: e2e-renewal
spec:
  provider:
    name: E2E Platform
  providerNamespace: default
  resources:
  - name: kept
    clusterRoles: [e2e-renew-workloads]
    revocationPolicy: Delete
    gracePeriod: 1h
  - name: brief
    clusterRoles: [e2e-renew-workloads]
    revocationPolicy: Delete
    gracePeriod: 5s
---
apiVersion: service.offering.dev/v1alpha1
kind: ServiceAgreement
metadata:
  name: e2e-renewing
  namespace: e2e-renew
spec:
  offering: e2e-renewal
  consumer:
    name: E2E Team
    subjects:
    - kind: User
      name: e2e-dev
  entitlements:
    resources:
    - name: kept
    - name: brief
  validUntil: %q
  renewBefore: 1h
---
apiVersion: service.offering.dev/v1alpha1
kind: ConsumptionRequest
metadata:
  name: kept
  namespace: e2e-renew
spec:
  agreement: e2e-renewing
  resource:
    name: kept
---
apiVersion: service.offering.dev/v1alpha1
kind: ConsumptionRequest
metadata:
  name: brief
  namespace: e2e-renew
spec:
  agreement: e2e-renewing
  resource:
    name: brief
`, until))
	// A second agreement with the same end, renewed inside its notice.
	applyManifest(t, fmt.Sprintf(`
apiVersion: service.offering.dev/v1alpha1
kind: ServiceAgreement
metadata:
  name: e2e-early
  namespace: e2e-renew
spec:
  offering: e2e-renewal
  consumer:
    name: E2E Team
    subjects:
    - kind: User
      name: e2e-dev
  entitlements:
    resources:
    - name: kept
  validUntil: %q
  renewBefore: 1h
---
apiVersion: service.offering.dev/v1alpha1
kind: ConsumptionRequest
metadata:
  name: early
  namespace: e2e-renew
spec:
  agreement: e2e-early
  resource:
    name: kept
`, until))
	for _, r := range []string{"consumptionrequest/kept", "consumptionrequest/brief", "consumptionrequest/early"} {
		mustKubectl(t, "wait", "-n", ns, "--for=condition=Ready", r, "--timeout=30s")
	}
	kept := grantedNamespace(t, ns, "kept")
	brief := grantedNamespace(t, ns, "brief")
	keptUID := mustKubectl(t, "get", "namespace", kept, "-o", "jsonpath={.metadata.uid}")
	briefUID := mustKubectl(t, "get", "namespace", brief, "-o", "jsonpath={.metadata.uid}")
	mustKubectl(t, "create", "configmap", "orders", "-n", kept, "--from-literal=count=42", "--as=e2e-dev")

	// Within the notice: the agreement says so, in a column and an event.
	mustKubectl(t, "wait", "-n", ns, "--for=condition=ExpiringSoon", "serviceagreement/e2e-renewing", "--timeout=30s")
	if out := mustKubectl(t, "get", "-n", ns, "serviceagreement/e2e-renewing"); !strings.Contains(out, "EXPIRING") {
		t.Errorf("kubectl get lacks the EXPIRING column:\n%s", out)
	}
	// Renewed inside the notice: no longer ExpiringSoon, access never interrupted.
	early := grantedNamespace(t, ns, "early")
	stopWatchingEarly := keepsAccess(t, early)
	mustKubectl(t, "wait", "-n", ns, "--for=condition=ExpiringSoon", "serviceagreement/e2e-early", "--timeout=30s")
	renewed := time.Now().UTC().Add(72 * time.Hour).Truncate(time.Second).Format(time.RFC3339)
	mustKubectl(t, "patch", "-n", ns, "serviceagreement/e2e-early", "--type=merge", "-p", fmt.Sprintf(`{"spec":{"validUntil":%q}}`, renewed))
	mustKubectl(t, "wait", "-n", ns, "--for=condition=ExpiringSoon=False", "serviceagreement/e2e-early", "--timeout=30s")
	eventually(t, 20*time.Second, "an ExpiringSoon event", func() error {
		if out, _ := kubectl(t, "get", "events", "-n", ns, "--field-selector", "reason=ExpiringSoon", "-o", "name"); strings.TrimSpace(out) == "" {
			return fmt.Errorf("none yet")
		}
		return nil
	})

	// The end passes: access goes at once; kept's namespace stays, brief's is deleted after five seconds.
	mustKubectl(t, "wait", "-n", ns, "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}=GracePeriod", "consumptionrequest/kept", "--timeout=90s")
	canI(t, kept, "no")
	if phase := mustKubectl(t, "get", "namespace", kept, "-o", "jsonpath={.status.phase}"); phase != "Active" {
		t.Errorf("namespace %s in the grace period is %q, want Active", kept, phase)
	}
	if out, _ := kubectlOffering(t, "status", "kept", "-n", ns); !strings.Contains(out, "Retained until:") || !strings.Contains(out, "renews ServiceAgreement e2e-renewing") {
		t.Errorf("kubectl offering status in the grace period:\n%s", out)
	}
	mustKubectl(t, "wait", "--for=delete", "namespace/"+brief, "--timeout=90s")
	// The old end has passed: the agreement renewed in time kept its access throughout.
	mustKubectl(t, "wait", "-n", ns, "--for=condition=Ready", "consumptionrequest/early", "--timeout=5s")
	stopWatchingEarly()

	// A late renewal: access to the same namespace comes back with its data.
	renewed = time.Now().UTC().Add(72 * time.Hour).Truncate(time.Second).Format(time.RFC3339)
	mustKubectl(t, "patch", "-n", ns, "serviceagreement/e2e-renewing", "--type=merge", "-p", fmt.Sprintf(`{"spec":{"validUntil":%q}}`, renewed))
	mustKubectl(t, "wait", "-n", ns, "--for=condition=Ready", "consumptionrequest/kept", "--timeout=60s")
	mustKubectl(t, "wait", "-n", ns, "--for=condition=ExpiringSoon=False", "serviceagreement/e2e-renewing", "--timeout=30s")
	canI(t, kept, "yes")
	if uid := mustKubectl(t, "get", "namespace", kept, "-o", "jsonpath={.metadata.uid}"); uid != keptUID {
		t.Errorf("namespace %s was replaced across the renewal", kept)
	}
	if out := mustKubectl(t, "get", "configmap", "orders", "-n", kept, "-o", "jsonpath={.data.count}", "--as=e2e-dev"); out != "42" {
		t.Errorf("the consumer's data did not survive the grace period: %q", out)
	}
	// brief's grace ran out: it is granted again, in a namespace created afresh.
	mustKubectl(t, "wait", "-n", ns, "--for=condition=Ready", "consumptionrequest/brief", "--timeout=90s")
	if uid := mustKubectl(t, "get", "namespace", grantedNamespace(t, ns, "brief"), "-o", "jsonpath={.metadata.uid}"); uid == briefUID {
		t.Errorf("namespace %s outlived its grace period", brief)
	}
}

// grantedNamespace is the namespace granted to a request.
func grantedNamespace(t *testing.T, ns, request string) string {
	t.Helper()
	granted := strings.TrimSpace(mustKubectl(t, "get", "-n", ns, "consumptionrequest/"+request, "-o", "jsonpath={.status.grant.namespace}"))
	if granted == "" {
		t.Fatalf("no granted namespace in the status of %s", request)
	}
	return granted
}
