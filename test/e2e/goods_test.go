//go:build e2e

package e2e

import (
	"strings"
	"testing"
)

// TestGoodsLifecycle walks the goods story through kubectl alone: delivery,
// acceptance (the copies become the consumer's: they survive the request's
// deletion, with no owner reference or managed label left, so the garbage
// collector of kube-controller-manager leaves them alone), and rejection
// (the copies are removed).
func TestGoodsLifecycle(t *testing.T) {
	startOperator(t)
	const ns = "e2e-goods"
	applyManifest(t, `
apiVersion: v1
kind: Namespace
metadata:
  name: e2e-goods-provider
  labels:
    service.offering.dev/provider-namespace: "true"
---
apiVersion: v1
kind: Namespace
metadata:
  name: e2e-goods
---
apiVersion: v1
kind: Secret
metadata:
  name: device-credentials
  namespace: e2e-goods-provider
stringData:
  password: not-a-real-password-e2e
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: device-config
  namespace: e2e-goods-provider
data:
  mode: active-passive
---
apiVersion: service.offering.dev/v1alpha1
kind: ServiceOffering
metadata:
  name: e2e-devices
spec:
  provider:
    name: E2E Hardware
  providerNamespace: e2e-goods-provider
  goods:
  - name: device
    sources:
    - kind: Secret
      name: device-credentials
    - kind: ConfigMap
      name: device-config
---
apiVersion: service.offering.dev/v1alpha1
kind: ServiceAgreement
metadata:
  name: devices
  namespace: e2e-goods
spec:
  offering: e2e-devices
  consumer:
    name: E2E Goods Team
    subjects:
    - kind: Group
      name: e2e-goods-team
  entitlements:
    goods:
    - name: device
      maxQuantity: 2
---
apiVersion: service.offering.dev/v1alpha1
kind: ConsumptionRequest
metadata:
  name: keep-it
  namespace: e2e-goods
spec:
  agreement: devices
  goods:
    name: device
---
apiVersion: service.offering.dev/v1alpha1
kind: ConsumptionRequest
metadata:
  name: send-back
  namespace: e2e-goods
spec:
  agreement: devices
  goods:
    name: device
`)
	for _, r := range []string{"keep-it", "send-back"} {
		mustKubectl(t, "wait", "-n", ns, "--for=condition=Transferred", "consumptionrequest/"+r, "--timeout=60s")
	}
	copies := func(request string) []string {
		out := mustKubectl(t, "get", "-n", ns, "consumptionrequest/"+request, "-o", `jsonpath={range .status.delivered[*]}{.kind}/{.name}{" "}{end}`)
		return strings.Fields(out)
	}
	kept := copies("keep-it")
	if len(kept) != 2 {
		t.Fatalf("keep-it delivered %v, want a Secret and a ConfigMap", kept)
	}

	// Accept, then delete the request: the copies stay and carry nothing of the operator.
	mustKubectl(t, "patch", "-n", ns, "consumptionrequest/keep-it", "--type=merge", "-p", `{"spec":{"goods":{"decision":"Accept"}}}`)
	mustKubectl(t, "wait", "-n", ns, "--for=condition=Accepted", "consumptionrequest/keep-it", "--timeout=60s")
	mustKubectl(t, "delete", "-n", ns, "consumptionrequest/keep-it", "--timeout=60s")
	for _, c := range kept {
		out := mustKubectl(t, "get", "-n", ns, strings.ToLower(c), "-o",
			`jsonpath={.metadata.ownerReferences}|{.metadata.labels.app\.kubernetes\.io/managed-by}|{.metadata.finalizers}`)
		if out != "||" {
			t.Errorf("%s still carries the operator's marks after acceptance: %q", c, out)
		}
	}
	if pw := mustKubectl(t, "get", "-n", ns, strings.ToLower(kept[0]), "-o", "jsonpath={.data}"); strings.Contains(strings.ToLower(kept[0]), "secret") && pw == "" {
		t.Error("the accepted Secret copy lost its data")
	}

	// Reject: the copies are removed and the quantity returned.
	returned := copies("send-back")
	mustKubectl(t, "patch", "-n", ns, "consumptionrequest/send-back", "--type=merge", "-p", `{"spec":{"goods":{"decision":"Reject"}}}`)
	mustKubectl(t, "wait", "-n", ns, "--for=jsonpath={.status.phase}=Rejected", "consumptionrequest/send-back", "--timeout=60s")
	for _, c := range returned {
		mustKubectl(t, "wait", "-n", ns, "--for=delete", strings.ToLower(c), "--timeout=60s")
	}
	// The Secret's data never shows in the request's status or events.
	status := mustKubectl(t, "get", "-n", ns, "consumptionrequests", "-o", "yaml")
	events := mustKubectl(t, "get", "events", "-n", ns, "-o", "yaml")
	for _, leak := range []string{"not-a-real-password-e2e", "bm90LWEtcmVhbC1wYXNzd29yZC1lMmU="} {
		if strings.Contains(status, leak) || strings.Contains(events, leak) {
			t.Errorf("the Secret's data leaked into status or events")
		}
	}
}
