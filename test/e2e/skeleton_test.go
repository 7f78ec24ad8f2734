//go:build e2e

package e2e

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

var crdNames = []string{
	"serviceofferings.service.offering.dev",
	"serviceagreements.service.offering.dev",
	"consumptionrequests.service.offering.dev",
}

func TestCRDsEstablished(t *testing.T) {
	for _, crd := range crdNames {
		mustKubectl(t, "wait", "--for=condition=Established", "--timeout=60s", "crd/"+crd)
	}
	// The short names and the "offering" category resolve.
	for _, res := range []string{"sof", "sag", "creq", "offering"} {
		mustKubectl(t, "get", res, "-A")
	}
}

func TestExplainServiceOffering(t *testing.T) {
	out := mustKubectl(t, "explain", "serviceoffering.spec", "--recursive")
	for _, field := range []string{"provider", "providerNamespace", "resources", "goods", "actions"} {
		if !strings.Contains(out, field) {
			t.Errorf("kubectl explain serviceoffering.spec --recursive does not mention %q:\n%s", field, out)
		}
	}
}

// A minimal valid ServiceOffering, independent of config/samples.
const inlineOffering = `
apiVersion: service.offering.dev/v1alpha1
kind: ServiceOffering
metadata:
  name: e2e-skeleton
spec:
  provider:
    name: E2E Provider
  providerNamespace: e2e-skeleton-provider
  actions:
  - name: support
    type: Manual
`

func TestApplyInlineServiceOffering(t *testing.T) {
	applyManifest(t, inlineOffering)
	t.Cleanup(func() {
		_, _ = kubectl(t, "delete", "serviceoffering", "e2e-skeleton", "--ignore-not-found", "--wait=false")
	})
	out := mustKubectl(t, "get", "serviceoffering", "e2e-skeleton", "-o", "jsonpath={.spec.providerNamespace}")
	if out != "e2e-skeleton-provider" {
		t.Errorf("spec.providerNamespace = %q, want e2e-skeleton-provider", out)
	}
	// An offering with no item at all is refused by the CRD's validation.
	_, err := kubectlInput(t, `
apiVersion: service.offering.dev/v1alpha1
kind: ServiceOffering
metadata:
  name: e2e-skeleton-empty
spec:
  provider:
    name: E2E Provider
  providerNamespace: e2e-skeleton-provider
`, "apply", "--server-side", "-f", "-")
	if err == nil || !strings.Contains(err.Error(), "at least one item") {
		t.Errorf("applying an offering without items: got %v, want a validation error", err)
	}
}

func TestApplySamples(t *testing.T) {
	files := sampleFiles(t)
	if err := applySamples(t, files); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Remove the samples' own objects; the prerequisites may stay. Never wait:
		// finalizers of an operator that is not running must not block the run.
		args := []string{"delete", "--ignore-not-found", "--wait=false"}
		for _, f := range files {
			if filepath.Base(f) != "prerequisites.yaml" {
				args = append(args, "-f", f)
			}
		}
		if _, err := kubectl(t, args...); err != nil {
			t.Logf("cleaning up the samples: %v", err)
		}
	})
	out := mustKubectl(t, "get", "offering", "-A")
	t.Logf("kubectl get offering -A:\n%s", out)
	if !strings.Contains(out, "serviceoffering") {
		t.Errorf("kubectl get offering -A shows no ServiceOffering:\n%s", out)
	}
}

func TestManager(t *testing.T) {
	op := startOperator(t)

	for _, path := range []string{"/healthz", "/readyz"} {
		code, body, err := op.Probe(path)
		if err != nil || code != http.StatusOK {
			t.Errorf("GET %s on the probe port: %d %q %v, want 200", path, code, body, err)
		}
	}

	// The metrics endpoint is HTTPS with authentication and authorization:
	// anonymous requests are refused, a token allowed to GET /metrics gets them.
	// The metrics server may start listening a moment after /readyz is ok.
	var code int
	eventually(t, 30*time.Second, "the metrics endpoint answering", func() error {
		var err error
		code, _, err = op.Metrics("")
		return err
	})
	if code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Errorf("anonymous GET /metrics answered %d, want 401 or 403", code)
	}
	token := createMetricsReader(t)
	eventually(t, 30*time.Second, "GET /metrics with a metrics-reader token", func() error {
		code, body, err := op.Metrics(token)
		switch {
		case err != nil:
			return err
		case code != http.StatusOK:
			return errors.New("answered " + http.StatusText(code) + ": " + strings.TrimSpace(body))
		case !strings.Contains(body, "controller_runtime_reconcile_total"):
			return errors.New("200 but no controller_runtime_reconcile_total in the body")
		}
		return nil
	})

	start := time.Now()
	exit, err := op.Stop()
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("stopping the operator: %v", err)
	}
	if exit != 0 {
		t.Errorf("operator exited with code %d after SIGTERM, want 0", exit)
	}
	if elapsed > 15*time.Second {
		t.Errorf("operator took %s to exit after SIGTERM, want at most 15s", elapsed)
	}
}

// sampleFiles lists the YAML files of config/samples in the order to apply
// them: prerequisites.yaml first, the kustomization left out. It skips the
// test when the directory does not exist.
func sampleFiles(t testing.TB) []string {
	t.Helper()
	dir := filepath.Join(repoRoot, "config", "samples")
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		t.Skip("config/samples does not exist yet")
	}
	var files []string
	for _, pattern := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	kept := files[:0]
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" && base != "kustomization.yml" {
			kept = append(kept, f)
		}
	}
	files = kept
	sort.SliceStable(files, func(i, j int) bool {
		pi := strings.HasPrefix(filepath.Base(files[i]), "prerequisites")
		pj := strings.HasPrefix(filepath.Base(files[j]), "prerequisites")
		if pi != pj {
			return pi
		}
		return files[i] < files[j]
	})
	if len(files) == 0 {
		t.Skip("config/samples holds no YAML files")
	}
	return files
}

// applySamples applies the sample files in order with `kubectl apply`; a
// namespace created by an earlier file can take a moment to be usable, so
// the apply is retried a few times.
func applySamples(t testing.TB, files []string) error {
	t.Helper()
	args := []string{"apply"}
	for _, f := range files {
		args = append(args, "-f", f)
	}
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var out string
		if out, err = kubectl(t, args...); err == nil {
			t.Logf("samples applied:\n%s", strings.TrimSpace(out))
			return nil
		}
		t.Logf("applying the samples (attempt %d): %v", attempt, err)
		time.Sleep(time.Second)
	}
	return err
}
