//go:build e2e

package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestDeployManifestsPassServerSideDryRun builds config/default with kubectl's
// kustomize and asks the API server to validate every object (server-side
// dry-run), as `make deploy` would apply them.
func TestDeployManifestsPassServerSideDryRun(t *testing.T) {
	built := mustKubectl(t, "kustomize", filepath.Join(repoRoot, "config", "default"))
	for _, kind := range []string{"kind: Deployment", "kind: CustomResourceDefinition", "kind: ClusterRole", "kind: ServiceAccount"} {
		if !strings.Contains(built, kind) {
			t.Errorf("config/default lacks %s", kind)
		}
	}
	for _, hardening := range []string{"runAsNonRoot: true", "readOnlyRootFilesystem: true", "allowPrivilegeEscalation: false", "RuntimeDefault"} {
		if !strings.Contains(built, hardening) {
			t.Errorf("the Deployment lacks %s", hardening)
		}
	}
	// A dry run creates nothing, so the namespaced objects need their namespace for real.
	mustKubectl(t, "create", "namespace", "offering-operator-system")
	// --force-conflicts: the Helm chart's test ran before this one in the same
	// cluster and left its label values on the CRDs it keeps (crds.keep), so a
	// plain apply would stop at the first field Helm owns instead of validating.
	out, err := kubectlInput(t, built, "apply", "--server-side", "--force-conflicts", "--dry-run=server",
		"--field-manager=e2e-dry-run", "-f", "-")
	if err != nil {
		t.Fatalf("server-side dry-run of config/default: %v", err)
	}
	if n := strings.Count(out, "(server dry run)"); n < 15 {
		t.Errorf("only %d objects validated:\n%s", n, out)
	}
}
