//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gitopsFieldManager is the field manager the GitOps tool of this test applies
// with (Flux's kustomize-controller, for example, uses its own name the same way).
const gitopsFieldManager = "e2e-gitops"

// TestGitOpsSamplesShowNoDiffAfterReconcile plays a GitOps tool: it applies
// config/samples with server-side apply, lets the operator reconcile them
// (finalizers, status, grants, deliveries, Jobs), then asks what the tool asks
// on every sync: `kubectl diff --server-side` with the same field manager must
// exit 0 and print nothing. A difference here means perpetual drift in Argo CD
// or Flux: a default that is not stable, or the operator writing a field of the
// spec or metadata that the manifests own.
func TestGitOpsSamplesShowNoDiffAfterReconcile(t *testing.T) {
	files := sampleFiles(t)
	startOperator(t, "--allowed-cluster-roles=view") // the sample offering grants view, as in `make demo`

	fileArgs := make([]string, 0, 2*len(files))
	for _, f := range files {
		fileArgs = append(fileArgs, "-f", f)
	}
	ssa := []string{"--server-side", "--field-manager=" + gitopsFieldManager}

	// A namespace created by the prerequisites can take a moment to be usable.
	eventually(t, 30*time.Second, "server-side apply of config/samples", func() error {
		_, err := kubectl(t, append(append([]string{"apply"}, ssa...), fileArgs...)...)
		return err
	})
	t.Cleanup(func() {
		// Delete the samples' own objects while the operator still runs, so that
		// its finalizers are removed and later tests find a clean cluster; the
		// prerequisites may stay (as in TestApplySamples).
		args := []string{"delete", "--ignore-not-found", "--timeout=120s"}
		for _, f := range files {
			if !strings.HasPrefix(filepath.Base(f), "prerequisites") {
				args = append(args, "-f", f)
			}
		}
		if _, err := kubectl(t, args...); err != nil {
			t.Errorf("cleaning up the samples: %v", err)
		}
	})

	// Reconciled: the offering and the agreement are Ready and Active, the
	// resource request holds its verified grant, the goods are delivered, and
	// every sample object's status is written for its current generation.
	mustKubectl(t, "wait", "--for=condition=Ready", "serviceoffering/colocation", "--timeout=60s")
	mustKubectl(t, "wait", "-n", "team-payments", "--for=condition=Active", "serviceagreement/acme-payments", "--timeout=60s")
	mustKubectl(t, "wait", "-n", "team-payments", "--for=condition=Ready", "consumptionrequest/rack-a", "--timeout=90s")
	mustKubectl(t, "wait", "-n", "team-payments", "--for=condition=Transferred", "consumptionrequest/ha-pair", "--timeout=60s")
	mustKubectl(t, "wait", "-n", "team-payments", "--for=condition=Ready", "consumptionrequest/install-ha", "--timeout=90s") // its Job ran on the simulated node
	const statusOf = `{range .items[*]}{.kind}/{.metadata.name} generation={.metadata.generation} observed={.status.observedGeneration} phase={.status.phase} finalizers={.metadata.finalizers}{"\n"}{end}`
	eventually(t, 60*time.Second, "every sample object reconciled at its generation", func() error {
		out, err := kubectl(t, "get", "serviceofferings,serviceagreements,consumptionrequests", "-A", "-o", "jsonpath="+statusOf)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var gen, observed string
			for _, field := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(field, "generation="); ok {
					gen = v
				}
				if v, ok := strings.CutPrefix(field, "observed="); ok {
					observed = v
				}
			}
			if gen == "" || gen != observed {
				return fmt.Errorf("not reconciled yet: %s", line)
			}
		}
		t.Logf("reconciled:\n%s", out)
		return nil
	})

	// What the GitOps tool sees on its next sync: nothing to do.
	diff, err := kubectl(t, append(append([]string{"diff"}, ssa...), fileArgs...)...)
	if err != nil || strings.TrimSpace(diff) != "" {
		t.Errorf("kubectl diff --server-side after the operator reconciled the samples: %v\n%s", err, diff)
	}

	// The control: a change to the spec made outside Git is seen (exit code 1),
	// so the empty diff above is a real comparison.
	mustKubectl(t, "patch", "serviceoffering/colocation", "--type=merge", "-p", `{"spec":{"description":"edited outside Git"}}`)
	diff, err = kubectl(t, append(append([]string{"diff", "--force-conflicts"}, ssa...), fileArgs...)...)
	if err == nil || !strings.Contains(diff, "edited outside Git") {
		t.Errorf("kubectl diff does not report a spec edited outside Git: %v\n%s", err, diff)
	}
}
