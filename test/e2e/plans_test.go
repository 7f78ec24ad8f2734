//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestResizeAndRevisionMove walks a plan change and a revision move as the
// consumer and the provider do them, with the shipped roles and
// kube-controller-manager counting the quota's usage: a resize up; a resize
// down blocked while the namespace holds more than the smaller plan allows,
// applied once the consumer has deleted enough; an agreement pinned to
// revision 1 that an offering edit leaves alone while an agreement on Latest
// follows it; the provider moving the pin, which changes the grant in place.
// The consumer's access never drops. The operator keeps one revision of
// history: revision 1 stays while the pinned grant is on it, and goes once
// nothing uses it.
func TestResizeAndRevisionMove(t *testing.T) {
	startOperator(t, "--offering-revision-history=1")
	const ns = "e2e-plans"
	bindShippedRole(t, "consumer", "e2e-dev")
	bindShippedRole(t, "provider", "e2e-provider")
	applyManifest(t, `
apiVersion: v1
kind: Namespace
metadata:
  name: e2e-plans
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: e2e-plans-workloads
  labels:
    service.offering.dev/grantable: "true"
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "create", "delete"]
---
apiVersion: service.offering.dev/v1alpha1
kind: ServiceOffering
metadata:
  name: e2e-plans
spec:
  provider:
    name: E2E Platform
  providerNamespace: default
  resources:
  - name: space
    clusterRoles: [e2e-plans-workloads]
    defaultPlan: small
    plans:
    - {name: small, quota: {count/configmaps: "2"}}
    - {name: large, quota: {count/configmaps: "5"}}
---
apiVersion: service.offering.dev/v1alpha1
kind: ServiceAgreement
metadata:
  name: e2e-latest
  namespace: e2e-plans
spec:
  offering: e2e-plans
  consumer:
    name: E2E Team
    subjects:
    - kind: User
      name: e2e-dev
  entitlements:
    resources:
    - name: space
---
apiVersion: service.offering.dev/v1alpha1
kind: ServiceAgreement
metadata:
  name: e2e-pinned
  namespace: e2e-plans
spec:
  offering: e2e-plans
  revisionPolicy: Pinned
  revision: 1
  consumer:
    name: E2E Team
    subjects:
    - kind: User
      name: e2e-dev
  entitlements:
    resources:
    - name: space
`)
	consumerApply(t, ns, "grow", "e2e-latest")
	consumerApply(t, ns, "held", "e2e-pinned")
	for _, r := range []string{"consumptionrequest/grow", "consumptionrequest/held"} {
		mustKubectl(t, "wait", "-n", ns, "--for=condition=Ready", r, "--timeout=60s")
	}
	grow, held := grantedNamespace(t, ns, "grow"), grantedNamespace(t, ns, "held")
	growUID := mustKubectl(t, "get", "namespace", grow, "-o", "jsonpath={.metadata.uid}")
	canI(t, grow, "yes")

	t.Run("resize", func(t *testing.T) {
		defer keepsAccess(t, grow)()
		resize(t, ns, "grow", "large")
		waitGranted(t, ns, "grow", "large", grow, "5")
		canI(t, grow, "yes")
		for i := range 3 {
			mustKubectl(t, "create", "configmap", fmt.Sprintf("data-%d", i), "-n", grow, "--from-literal=k=v", "--as=e2e-dev")
		}

		// Three ConfigMaps do not fit the small plan's two: the change waits, the grant stays large.
		resize(t, ns, "grow", "small")
		mustKubectl(t, "wait", "-n", ns, "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}=DowngradeBlocked",
			"consumptionrequest/grow", "--timeout=30s")
		if msg := readyMessage(t, ns, "grow"); !strings.Contains(msg, "count/configmaps: 3 used, 2 allowed") {
			t.Errorf("DowngradeBlocked does not name the usage: %s", msg)
		}
		if hard := quotaHard(t, grow); hard != "5" {
			t.Errorf("a blocked downgrade changed the quota to %s", hard)
		}
		if out, code := kubectlOffering(t, "status", "grow", "-n", ns); code != 0 || !strings.Contains(out, "large -> small") {
			t.Errorf("kubectl offering status while the downgrade waits (exit %d):\n%s", code, out)
		}
		canI(t, grow, "yes")

		// Usage drops: the change is applied without anyone touching the request again.
		for i := range 2 {
			mustKubectl(t, "delete", "configmap", fmt.Sprintf("data-%d", i), "-n", grow, "--as=e2e-dev")
		}
		waitGranted(t, ns, "grow", "small", grow, "2")
		canI(t, grow, "yes")
		if uid := mustKubectl(t, "get", "namespace", grow, "-o", "jsonpath={.metadata.uid}"); uid != growUID {
			t.Errorf("namespace %s was replaced by the resize", grow)
		}
	})

	t.Run("revision move", func(t *testing.T) {
		defer keepsAccess(t, held)()
		heldUID := mustKubectl(t, "get", "namespace", held, "-o", "jsonpath={.metadata.uid}")
		mustKubectl(t, "patch", "serviceoffering/e2e-plans", "--type=json", "--as=e2e-provider",
			"-p", `[{"op":"replace","path":"/spec/resources/0/plans/0/quota/count~1configmaps","value":"3"}]`)
		mustKubectl(t, "wait", "--for=jsonpath={.status.latestRevision}=2", "serviceoffering/e2e-plans", "--timeout=30s")
		// The agreement on Latest follows the edit; the pinned one stays on revision 1.
		waitGranted(t, ns, "grow", "small", grow, "3")
		if rev := mustKubectl(t, "get", "-n", ns, "consumptionrequest/held", "-o", "jsonpath={.status.offeringRevision}"); rev != "1" {
			t.Errorf("the pinned request is on revision %s, want 1", rev)
		}
		if hard := quotaHard(t, held); hard != "2" {
			t.Errorf("an offering edit changed the pinned grant's quota to %s", hard)
		}
		if _, err := kubectl(t, "get", "serviceofferingrevision/e2e-plans-r1"); err != nil {
			t.Errorf("revision 1 was collected while an agreement pins it: %v", err)
		}
		if out, code := kubectlOffering(t, "diff", "e2e-plans", "1", "2", "--as=e2e-provider"); code != 0 || !addsLine(out, `count/configmaps: "3"`) {
			t.Errorf("kubectl offering diff e2e-plans 1 2 (exit %d):\n%s", code, out)
		}

		mustKubectl(t, "patch", "-n", ns, "serviceagreement/e2e-pinned", "--type=merge", "-p", `{"spec":{"revision":2}}`, "--as=e2e-provider")
		mustKubectl(t, "wait", "-n", ns, "--for=jsonpath={.status.offeringRevision}=2", "consumptionrequest/held", "--timeout=30s")
		waitGranted(t, ns, "held", "small", held, "3")
		canI(t, held, "yes")
		if uid := mustKubectl(t, "get", "namespace", held, "-o", "jsonpath={.metadata.uid}"); uid != heldUID {
			t.Errorf("namespace %s was replaced by the move", held)
		}
		// Nothing is on revision 1 any more: it is collected, the latest is kept.
		mustKubectl(t, "wait", "--for=delete", "serviceofferingrevision/e2e-plans-r1", "--timeout=30s")
		mustKubectl(t, "get", "serviceofferingrevision/e2e-plans-r2")
		eventually(t, 20*time.Second, "kubectl offering revisions to count both agreements on revision 2", func() error {
			out, _ := kubectlOffering(t, "revisions", "e2e-plans", "--as=e2e-provider")
			if !hasRow(out, "2", "yes", "2") {
				return fmt.Errorf("no row 2 (latest) with 2 agreements:\n%s", out)
			}
			return nil
		})
	})
}

// bindShippedRole applies the shipped ClusterRole of the persona under a
// name of this test's own and binds user to it; both go when the test ends.
func bindShippedRole(t *testing.T, persona, user string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "config", "rbac", persona+"_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	role := "e2e-plans-" + persona
	manifest := strings.Replace(string(raw), "name: offering-operator-"+persona, "name: "+role, 1)
	if !strings.Contains(manifest, "name: "+role) {
		t.Fatalf("config/rbac/%s_role.yaml does not name offering-operator-%s", persona, persona)
	}
	applyManifest(t, manifest)
	mustKubectl(t, "create", "clusterrolebinding", role, "--clusterrole="+role, "--user="+user)
	t.Cleanup(func() {
		_, _ = kubectl(t, "delete", "clusterrolebinding/"+role, "clusterrole/"+role, "--ignore-not-found")
	})
}

// consumerApply files a request for the agreement's item as the consumer.
func consumerApply(t *testing.T, ns, name, agreement string) {
	t.Helper()
	if out, err := kubectlInput(t, fmt.Sprintf(`
apiVersion: service.offering.dev/v1alpha1
kind: ConsumptionRequest
metadata:
  name: %s
  namespace: %s
spec:
  agreement: %s
  resource:
    name: space
`, name, ns, agreement), "create", "--as=e2e-dev", "-f", "-"); err != nil {
		t.Fatalf("the consumer cannot file request %s: %v\n%s", name, err, out)
	}
}

// resize changes a request's plan as the consumer.
func resize(t *testing.T, ns, request, plan string) {
	t.Helper()
	mustKubectl(t, "patch", "-n", ns, "consumptionrequest/"+request, "--type=merge", "--as=e2e-dev",
		"-p", fmt.Sprintf(`{"spec":{"resource":{"plan":%q}}}`, plan))
}

// waitGranted waits until the request is Ready under plan and its namespace's
// quota allows configmaps.
func waitGranted(t *testing.T, ns, request, plan, granted, configmaps string) {
	t.Helper()
	eventually(t, 60*time.Second, fmt.Sprintf("%s granted under plan %s with %s ConfigMaps", request, plan, configmaps), func() error {
		got := mustKubectl(t, "get", "-n", ns, "consumptionrequest/"+request, "-o",
			`jsonpath={.status.grant.plan}/{.status.conditions[?(@.type=="Ready")].status}`)
		if want := plan + "/True"; got != want {
			return fmt.Errorf("plan/Ready %s, want %s (%s)", got, want, readyMessage(t, ns, request))
		}
		if hard := quotaHard(t, granted); hard != configmaps {
			return fmt.Errorf("quota allows %s ConfigMaps", hard)
		}
		return nil
	})
}

func readyMessage(t *testing.T, ns, request string) string {
	t.Helper()
	return mustKubectl(t, "get", "-n", ns, "consumptionrequest/"+request, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].message}`)
}

// quotaHard is the number of ConfigMaps the granted namespace's quota allows.
func quotaHard(t *testing.T, granted string) string {
	t.Helper()
	return mustKubectl(t, "get", "resourcequotas", "-n", granted, "-o", `go-template={{range .items}}{{index .spec.hard "count/configmaps"}}{{end}}`)
}

// addsLine says whether the unified diff out adds a line holding text.
func addsLine(out, text string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "+") && !strings.HasPrefix(line, "+++") && strings.Contains(line, text) {
			return true
		}
	}
	return false
}

// hasRow says whether the table out has a row whose first cells are cells.
func hasRow(out string, cells ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		if fields := strings.Fields(line); len(fields) >= len(cells) && slices.Equal(fields[:len(cells)], cells) {
			return true
		}
	}
	return false
}

// keepsAccess asks, every second until the returned function is called,
// whether the consumer may still create ConfigMaps in the granted
// namespace, and fails the test on any answer but yes.
func keepsAccess(t *testing.T, granted string) (stop func()) {
	t.Helper()
	done, finished := make(chan struct{}), make(chan struct{})
	var lost []string
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			out, err := runKubectl("", 10*time.Second, "auth", "can-i", "create", "configmaps", "-n", granted, "--as=e2e-dev")
			if got := strings.TrimSpace(out); got != "yes" {
				lost = append(lost, fmt.Sprintf("%s: %q (%v)", time.Now().Format(time.TimeOnly), got, err))
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		if len(lost) > 0 {
			t.Errorf("the consumer lost access to %s: %v", granted, lost)
		}
	}
}
