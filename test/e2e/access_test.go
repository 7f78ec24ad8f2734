//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestAccessLifecycle walks the access-to-resources story as a user would,
// through kubectl alone, with kube-controller-manager running so that
// namespace deletion is real: grant, work in the namespace as the consumer,
// lose access on suspension, get it back, then revoke by deleting the
// request (Delete policy: the namespace disappears) and (Retain policy: it stays).
func TestAccessLifecycle(t *testing.T) {
	startOperator(t)
	const ns = "e2e-team"
	applyManifest(t, `
apiVersion: v1
kind: Namespace
metadata:
  name: e2e-team
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: e2e-workloads
  labels:
    service.offering.dev/grantable: "true"
rules:
- apiGroups: [""]
  resources: ["configmaps", "pods"]
  verbs: ["get", "list", "watch", "create", "update", "delete"]
---
apiVersion: service.offering.dev/v1alpha1
kind: ServiceOffering
metadata:
  name: e2e-space
spec:
  provider:
    name: E2E Platform
  providerNamespace: default
  resources:
  - name: sandbox
    clusterRoles: [e2e-workloads]
    quota:
      pods: "5"
    revocationPolicy: Delete
  - name: keepsake
    clusterRoles: [e2e-workloads]
    revocationPolicy: Retain
---
apiVersion: service.offering.dev/v1alpha1
kind: ServiceAgreement
metadata:
  name: e2e-agreement
  namespace: e2e-team
spec:
  offering: e2e-space
  consumer:
    name: E2E Team
    subjects:
    - kind: User
      name: e2e-dev
  entitlements:
    resources:
    - name: sandbox
      maxGrants: 2
    - name: keepsake
---
apiVersion: service.offering.dev/v1alpha1
kind: ConsumptionRequest
metadata:
  name: my-sandbox
  namespace: e2e-team
spec:
  agreement: e2e-agreement
  resource:
    name: sandbox
`)
	mustKubectl(t, "wait", "--for=condition=Ready", "serviceoffering/e2e-space", "--timeout=60s")
	mustKubectl(t, "wait", "-n", ns, "--for=condition=Active", "serviceagreement/e2e-agreement", "--timeout=60s")
	mustKubectl(t, "wait", "-n", ns, "--for=condition=Ready", "consumptionrequest/my-sandbox", "--timeout=60s")

	granted := strings.TrimSpace(mustKubectl(t, "get", "-n", ns, "consumptionrequest/my-sandbox", "-o", "jsonpath={.status.grant.namespace}"))
	if granted == "" {
		t.Fatal("no granted namespace in status")
	}
	// The consumer's subject can work in the granted namespace, and only there.
	mustKubectl(t, "create", "configmap", "hello", "-n", granted, "--from-literal=k=v", "--as=e2e-dev")
	if out, _ := kubectl(t, "auth", "can-i", "create", "pods", "-n", "default", "--as=e2e-dev"); strings.TrimSpace(out) != "no" {
		t.Errorf("e2e-dev can create pods in default: %q", out)
	}
	// What a user sees.
	wide := mustKubectl(t, "get", "-n", ns, "consumptionrequests", "-o", "wide")
	for _, want := range []string{"my-sandbox", "e2e-agreement", "Resource/sandbox", "Fulfilled", "True", granted} {
		if !strings.Contains(wide, want) {
			t.Errorf("kubectl get -o wide lacks %q:\n%s", want, wide)
		}
	}
	describe := mustKubectl(t, "describe", "-n", ns, "consumptionrequest/my-sandbox")
	for _, want := range []string{"AccessVerified", "Granted", "granted and verified"} {
		if !strings.Contains(describe, want) {
			t.Errorf("kubectl describe lacks %q:\n%s", want, describe)
		}
	}

	// Suspension revokes access but keeps the namespace; reactivation restores it.
	mustKubectl(t, "patch", "-n", ns, "serviceagreement/e2e-agreement", "--type=merge", "-p", `{"spec":{"suspended":true}}`)
	mustKubectl(t, "wait", "-n", ns, "--for=jsonpath={.status.phase}=Revoked", "consumptionrequest/my-sandbox", "--timeout=60s")
	canI(t, granted, "no")
	mustKubectl(t, "get", "namespace", granted)
	if out := mustKubectl(t, "get", "-n", ns, "serviceagreement/e2e-agreement", "-o", "jsonpath={.status.phase}"); out != "Suspended" {
		t.Errorf("agreement phase %q, want Suspended", out)
	}
	mustKubectl(t, "patch", "-n", ns, "serviceagreement/e2e-agreement", "--type=merge", "-p", `{"spec":{"suspended":false}}`)
	mustKubectl(t, "wait", "-n", ns, "--for=condition=Ready", "consumptionrequest/my-sandbox", "--timeout=60s")
	canI(t, granted, "yes")
	if out := mustKubectl(t, "get", "configmap", "hello", "-n", granted, "-o", "jsonpath={.data.k}", "--as=e2e-dev"); out != "v" {
		t.Errorf("the consumer's work did not survive the suspension: %q", out)
	}

	// Deleting the request revokes access, then the namespace is really gone
	// (the namespace controller of kube-controller-manager empties and removes it).
	mustKubectl(t, "delete", "-n", ns, "consumptionrequest/my-sandbox", "--timeout=60s")
	mustKubectl(t, "wait", "--for=delete", "namespace/"+granted, "--timeout=90s")

	// Retain: the namespace outlives the request, without the consumer's access.
	applyManifest(t, `
apiVersion: service.offering.dev/v1alpha1
kind: ConsumptionRequest
metadata:
  name: my-keepsake
  namespace: e2e-team
spec:
  agreement: e2e-agreement
  resource:
    name: keepsake
`)
	mustKubectl(t, "wait", "-n", ns, "--for=condition=Ready", "consumptionrequest/my-keepsake", "--timeout=60s")
	kept := strings.TrimSpace(mustKubectl(t, "get", "-n", ns, "consumptionrequest/my-keepsake", "-o", "jsonpath={.status.grant.namespace}"))
	mustKubectl(t, "delete", "-n", ns, "consumptionrequest/my-keepsake", "--timeout=60s")
	canI(t, kept, "no")
	if phase := mustKubectl(t, "get", "namespace", kept, "-o", "jsonpath={.status.phase}"); phase != "Active" {
		t.Errorf("retained namespace is %q, want Active", phase)
	}
}

// TestExistingNamespaceRefused: a request for a namespace that exists and was
// not created by the operator fails with a reason, and the namespace is untouched.
func TestExistingNamespaceRefused(t *testing.T) {
	startOperator(t)
	applyManifest(t, `
apiVersion: v1
kind: Namespace
metadata:
  name: e2e-team2-taken
---
apiVersion: v1
kind: Namespace
metadata:
  name: e2e-team2
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: e2e-workloads2
  labels:
    service.offering.dev/grantable: "true"
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create"]
---
apiVersion: service.offering.dev/v1alpha1
kind: ServiceOffering
metadata:
  name: e2e-named
spec:
  provider:
    name: E2E Platform
  providerNamespace: default
  resources:
  - name: named
    clusterRoles: [e2e-workloads2]
    namespace:
      allowRequestedName: true
---
apiVersion: service.offering.dev/v1alpha1
kind: ServiceAgreement
metadata:
  name: e2e-agreement
  namespace: e2e-team2
spec:
  offering: e2e-named
  consumer:
    name: E2E Team 2
    subjects:
    - kind: Group
      name: e2e-devs
  entitlements:
    resources:
    - name: named
---
apiVersion: service.offering.dev/v1alpha1
kind: ConsumptionRequest
metadata:
  name: squatter
  namespace: e2e-team2
spec:
  agreement: e2e-agreement
  resource:
    name: named
    namespaceName: e2e-team2-taken
`)
	mustKubectl(t, "wait", "-n", "e2e-team2", "--for=jsonpath={.status.phase}=Failed", "consumptionrequest/squatter", "--timeout=60s")
	reason := mustKubectl(t, "get", "-n", "e2e-team2", "consumptionrequest/squatter", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].reason}`)
	if reason != "NamespaceConflict" {
		t.Errorf("reason %q, want NamespaceConflict", reason)
	}
	if out := mustKubectl(t, "get", "rolebindings", "-n", "e2e-team2-taken", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("RoleBindings created in a namespace the operator does not own: %s", out)
	}
	mustKubectl(t, "delete", "-n", "e2e-team2", "consumptionrequest/squatter", "--timeout=60s")
	mustKubectl(t, "get", "namespace", "e2e-team2-taken")
}

// canI checks, with a bounded retry for the authorizer's cache, what e2e-dev may do in ns.
func canI(t *testing.T, ns, want string) {
	t.Helper()
	eventually(t, 20*time.Second, fmt.Sprintf("e2e-dev can-i create configmaps in %s = %s", ns, want), func() error {
		out, _ := kubectl(t, "auth", "can-i", "create", "configmaps", "-n", ns, "--as=e2e-dev")
		if got := strings.TrimSpace(out); got != want {
			return fmt.Errorf("got %q", got)
		}
		return nil
	})
}
