//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHelmChartInstallsAWorkingOperator installs charts/offering-operator with
// helm (CRDs, RBAC and admission policies from the chart), runs the manager
// binary as the chart's ServiceAccount with the chart's leader election (there
// is no kubelet to run its Deployment), and has a consumer bound to the
// chart's consumer role request a namespace, which the operator grants. Then
// `helm uninstall` leaves the CRDs in place (crds.keep).
func TestHelmChartInstallsAWorkingOperator(t *testing.T) {
	helmBin := os.Getenv("HELM")
	if helmBin == "" {
		helmBin = filepath.Join(repoRoot, "bin", "helm")
	}
	if _, err := os.Stat(helmBin); err != nil {
		t.Fatalf("no helm (make test-e2e builds bin/helm): %v", err)
	}
	const release, ns = "offering-operator", "chart-system"
	helm := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(helmBin, append(args, "--kubeconfig", kubeconfig)...)
		out, err := cmd.CombinedOutput()
		t.Logf("helm %s\n%s", strings.Join(args, " "), out)
		if err != nil {
			t.Fatalf("helm %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
	// TestMain applied the CRDs and the admission policy with kubectl; the
	// release takes them over, with their fields: kubectl's kustomize writes
	// the policy's folded CEL expression back with other whitespace.
	helm("install", release, filepath.Join(repoRoot, "charts", "offering-operator"), "--namespace", ns,
		"--create-namespace", "--take-ownership", "--force-conflicts", "--set", "providerNamespaces={chart-provider}")
	t.Cleanup(func() {
		helm("uninstall", release, "--namespace", ns, "--wait")
		if _, err := kubectl(t, "get", "crd", "consumptionrequests.service.offering.dev"); err != nil {
			t.Errorf("helm uninstall removed the CRDs despite crds.keep: %v", err)
		}
		// The next tests expect the policy TestMain installed.
		if err := installAdmission(); err != nil {
			t.Error(err)
		}
	})
	for _, obj := range []string{
		"deployment/offering-operator-controller-manager", "service/offering-operator-controller-manager-metrics-service",
		"serviceaccount/offering-operator-controller-manager", "role/offering-operator-leader-election",
	} {
		mustKubectl(t, "get", "-n", ns, obj)
	}
	owner := mustKubectl(t, "get", "mutatingadmissionpolicy", "offering-operator-request-finalizer",
		"-o", "jsonpath={.metadata.annotations.meta\\.helm\\.sh/release-name}")
	if owner != release {
		t.Errorf("the admission policy belongs to release %q, want %q", owner, release)
	}

	// The manager's identity: a token of the chart's ServiceAccount.
	token := strings.TrimSpace(mustKubectl(t, "create", "token", "offering-operator-controller-manager", "-n", ns, "--duration=1h"))
	saConfig := filepath.Join(t.TempDir(), "kubeconfig")
	raw := mustKubectl(t, "config", "view", "--raw", "--minify")
	if err := os.WriteFile(saConfig, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"config", "set-credentials", "chart-manager", "--token=" + token},
		{"config", "set-context", "--current", "--user=chart-manager"},
	} {
		if out, err := exec.Command(kubectlBin, append(args, "--kubeconfig", saConfig)...).CombinedOutput(); err != nil {
			t.Fatalf("kubectl %s: %v\n%s", args[0:2], err, out)
		}
	}
	t.Setenv("POD_NAMESPACE", ns)
	startOperator(t, "--kubeconfig="+saConfig, "--leader-elect=true", "--leader-election-namespace="+ns,
		"--provider-namespaces=chart-provider")
	eventually(t, 60*time.Second, "the manager holds the chart's leader-election Lease", func() error {
		_, err := kubectl(t, "get", "lease", "-n", ns, "offering-operator.service.offering.dev")
		return err
	})

	applyManifest(t, `
apiVersion: v1
kind: Namespace
metadata:
  name: chart-provider
---
apiVersion: v1
kind: Namespace
metadata:
  name: chart-team
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: chart-workloads
  labels:
    service.offering.dev/grantable: "true"
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "create"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: chart-dev-consumer
  namespace: chart-team
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: offering-operator-consumer
subjects:
- kind: User
  name: chart-dev
  apiGroup: rbac.authorization.k8s.io
---
apiVersion: service.offering.dev/v1alpha1
kind: ServiceOffering
metadata:
  name: chart-space
spec:
  provider:
    name: Chart Platform
  providerNamespace: chart-provider
  resources:
  - name: sandbox
    clusterRoles: [chart-workloads]
    revocationPolicy: Delete
---
apiVersion: service.offering.dev/v1alpha1
kind: ServiceAgreement
metadata:
  name: chart-agreement
  namespace: chart-team
spec:
  offering: chart-space
  consumer:
    name: Chart Team
    subjects:
    - kind: User
      name: chart-dev
  entitlements:
    resources:
    - name: sandbox
`)
	// The consumer, with only the chart's consumer role, asks.
	if out, err := kubectlInput(t, `
apiVersion: service.offering.dev/v1alpha1
kind: ConsumptionRequest
metadata:
  name: chart-sandbox
  namespace: chart-team
spec:
  agreement: chart-agreement
  resource:
    name: sandbox
`, "create", "--as=chart-dev", "-f", "-"); err != nil {
		t.Fatalf("the consumer cannot create a request: %v\n%s", err, out)
	}
	mustKubectl(t, "wait", "-n", "chart-team", "consumptionrequest/chart-sandbox", "--for=condition=Ready", "--timeout=60s")
	granted := mustKubectl(t, "get", "-n", "chart-team", "consumptionrequest/chart-sandbox", "-o", "jsonpath={.status.grant.namespace}")
	if granted == "" {
		t.Fatal("the request is Ready but names no granted namespace")
	}
	mustKubectl(t, "create", "configmap", "hello", "-n", granted, "--from-literal=k=v", "--as=chart-dev")

	mustKubectl(t, "delete", "-n", "chart-team", "consumptionrequest/chart-sandbox", "--wait", "--timeout=60s")
	mustKubectl(t, "delete", "-n", "chart-team", "serviceagreement/chart-agreement", "--wait", "--timeout=60s")
	mustKubectl(t, "delete", "serviceoffering/chart-space", "--wait", "--timeout=60s")
}
