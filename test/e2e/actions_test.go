//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The automated actions below run on the local cluster's simulated node:
// kube-scheduler places each Job's pod, kwok reports it Running and ends it as
// the pod's annotations (the action's job.podAnnotations) say:
// kwok.offering.dev/exit-code and kwok.offering.dev/run-time
// (hack/kwok-stages.yaml). The job controller of kube-controller-manager
// counts the attempts, applies backoffLimit and activeDeadlineSeconds, and the
// operator reports the Job's outcome as the request's.
const actionsManifest = `
apiVersion: v1
kind: Namespace
metadata:
  name: e2e-actions-provider
  labels:
    service.offering.dev/provider-namespace: "true"
  annotations:
    service.offering.dev/action-service-accounts: default
---
apiVersion: v1
kind: Namespace
metadata:
  name: e2e-actions
---
apiVersion: service.offering.dev/v1alpha1
kind: ServiceOffering
metadata:
  name: e2e-actions
spec:
  provider:
    name: E2E Field Services
  providerNamespace: e2e-actions-provider
  actions:
  - name: install
    type: Automated
    parameters:
    - name: RACK
      required: true
    job:
      image: busybox:1.36
      command: [sh, -c, 'echo "installing in rack $RACK"']
      backoffLimit: 0
      timeout: 5m
      podAnnotations:
        kwok.offering.dev/run-time: 1s
  - name: flaky
    type: Automated
    job:
      image: busybox:1.36
      command: [sh, -c, 'exit 3']
      backoffLimit: 1
      timeout: 5m
      podAnnotations:
        kwok.offering.dev/exit-code: "3"
        kwok.offering.dev/run-time: 1s
  - name: slow
    type: Automated
    job:
      image: busybox:1.36
      command: [sleep, "3600"]
      timeout: 5s
      podAnnotations:
        kwok.offering.dev/run-time: 1h
  - name: migration
    type: Automated
    job:
      image: busybox:1.36
      command: [sleep, "3600"]
      timeout: 30m
      podAnnotations:
        kwok.offering.dev/run-time: 1h
---
apiVersion: service.offering.dev/v1alpha1
kind: ServiceAgreement
metadata:
  name: field-services
  namespace: e2e-actions
spec:
  offering: e2e-actions
  consumer:
    name: E2E Actions Team
    subjects:
    - kind: Group
      name: e2e-actions-team
  entitlements:
    actions:
    - name: install
    - name: flaky
    - name: slow
    - name: migration
`

// TestAutomatedActions: an action that succeeds, one that fails after its
// backoffLimit, one that exceeds its timeout, and one cancelled by deleting
// its request while its pod runs; each requested with `kubectl offering
// request` and checked with kubectl as a user would.
func TestAutomatedActions(t *testing.T) {
	startOperator(t)
	applyManifest(t, actionsManifest)
	mustKubectl(t, "wait", "--for=condition=Ready", "serviceoffering/e2e-actions", "--timeout=60s")
	const ns = "e2e-actions"

	t.Run("succeeds", func(t *testing.T) {
		t.Parallel()
		out, code := kubectlOffering(t, "request", "install", "--agreement", "field-services", "-n", ns,
			"--name", "install-ok", "--param", "RACK=rack-a", "--wait", "--timeout=120s")
		if code != 0 {
			t.Fatalf("kubectl offering request --wait exited %d, want 0 (fulfilled):\n%s", code, out)
		}
		got := requestState(t, ns, "install-ok")
		if got.phase != "Fulfilled" || got.reason != "ActionSucceeded" || got.attempts != "1" {
			t.Fatalf("request: %+v, want Fulfilled, ActionSucceeded after 1 attempt", got)
		}
		if got.fulfilment == "" {
			t.Error("a fulfilled action request has no fulfilmentDuration")
		}
		job := strings.TrimPrefix(got.job, "e2e-actions-provider/")
		if c := mustKubectl(t, "get", "-n", "e2e-actions-provider", "job/"+job, "-o",
			`jsonpath={.status.conditions[?(@.type=="Complete")].status}`); c != "True" {
			t.Errorf("Job %s: Complete=%q, want True", job, c)
		}
		pods := jobPods(t, job)
		if len(pods) != 1 || pods[0] != "Succeeded/0/kwok-node-0" {
			t.Errorf("pods of %s: %v, want one Succeeded with exit code 0 on kwok-node-0", job, pods)
		}
		env := mustKubectl(t, "get", "-n", "e2e-actions-provider", "job/"+job, "-o",
			`jsonpath={.spec.template.spec.containers[0].env[?(@.name=="RACK")].value}`)
		if env != "rack-a" {
			t.Errorf("the Job's RACK is %q, want the request's rack-a", env)
		}
	})

	t.Run("fails after its backoffLimit", func(t *testing.T) {
		t.Parallel()
		out, code := kubectlOffering(t, "request", "flaky", "--agreement", "field-services", "-n", ns,
			"--name", "flaky", "--wait", "--timeout=180s")
		if code != 3 {
			t.Fatalf("kubectl offering request --wait exited %d, want 3 (ended without being fulfilled):\n%s", code, out)
		}
		got := requestState(t, ns, "flaky")
		// backoffLimit 1: the first attempt and one retry.
		if got.phase != "Failed" || got.reason != "ActionFailed" || got.attempts != "2" || !strings.Contains(got.message, "BackoffLimitExceeded") {
			t.Fatalf("request: %+v, want Failed, ActionFailed (BackoffLimitExceeded) after 2 attempts", got)
		}
		pods := jobPods(t, strings.TrimPrefix(got.job, "e2e-actions-provider/"))
		if len(pods) != 2 || pods[0] != "Failed/3/kwok-node-0" || pods[1] != "Failed/3/kwok-node-0" {
			t.Errorf("pods: %v, want two Failed with exit code 3", pods)
		}
	})

	t.Run("exceeds its timeout", func(t *testing.T) {
		t.Parallel()
		out, code := kubectlOffering(t, "request", "slow", "--agreement", "field-services", "-n", ns,
			"--name", "slow", "--wait", "--timeout=120s")
		if code != 3 {
			t.Fatalf("kubectl offering request --wait exited %d, want 3 (ended without being fulfilled):\n%s", code, out)
		}
		got := requestState(t, ns, "slow")
		if got.phase != "Failed" || got.reason != "ActionTimedOut" || !strings.Contains(got.message, "DeadlineExceeded") {
			t.Fatalf("request: %+v, want Failed, ActionTimedOut (DeadlineExceeded)", got)
		}
		// The job controller deletes the pod that outlived the deadline; the simulated kubelet kills it.
		job := strings.TrimPrefix(got.job, "e2e-actions-provider/")
		eventually(t, 60*time.Second, "the timed-out pod is gone", func() error {
			if pods := jobPods(t, job); len(pods) != 0 {
				return fmt.Errorf("pods still there: %v", pods)
			}
			return nil
		})
	})

	t.Run("cancelled by deleting the request", func(t *testing.T) {
		t.Parallel()
		if out, code := kubectlOffering(t, "request", "migration", "--agreement", "field-services", "-n", ns, "--name", "migration"); code != 0 {
			t.Fatalf("kubectl offering request exited %d:\n%s", code, out)
		}
		var job string
		eventually(t, 90*time.Second, "the migration's pod runs", func() error {
			job = strings.TrimPrefix(requestState(t, ns, "migration").job, "e2e-actions-provider/")
			if job == "" {
				return errors.New("no Job yet")
			}
			if pods := jobPods(t, job); len(pods) != 1 || !strings.HasPrefix(pods[0], "Running/") {
				return fmt.Errorf("pods %v, want one Running", pods)
			}
			return nil
		})
		if got := requestState(t, ns, "migration"); got.phase != "Provisioning" || got.reason != "ActionRunning" {
			t.Fatalf("request while its pod runs: %+v, want Provisioning, ActionRunning", got)
		}
		mustKubectl(t, "delete", "-n", ns, "consumptionrequest/migration", "--timeout=60s")
		mustKubectl(t, "wait", "-n", "e2e-actions-provider", "--for=delete", "job/"+job, "--timeout=60s")
		eventually(t, 60*time.Second, "the cancelled pod is gone", func() error {
			if pods := jobPods(t, job); len(pods) != 0 {
				return fmt.Errorf("pods still there: %v", pods)
			}
			return nil
		})
	})
}

// actionRequest is what kubectl shows of an action request.
type actionRequest struct {
	phase, reason, message, attempts, job, fulfilment string
}

func requestState(t *testing.T, ns, name string) actionRequest {
	t.Helper()
	out := mustKubectl(t, "get", "-n", ns, "consumptionrequest/"+name, "-o", `jsonpath={.status.phase}|`+
		`{.status.conditions[?(@.type=="Ready")].reason}|{.status.conditions[?(@.type=="Ready")].message}|`+
		`{.status.action.attempts}|{.status.action.job}|{.status.fulfilmentDuration}`)
	f := strings.SplitN(out, "|", 6)
	if len(f) != 6 {
		t.Fatalf("consumptionrequest %s/%s: unexpected output %q", ns, name, out)
	}
	return actionRequest{phase: f[0], reason: f[1], message: f[2], attempts: f[3], job: f[4], fulfilment: f[5]}
}

// jobPods lists the pods of a Job in the provider namespace as
// PHASE/EXIT-CODE/NODE, oldest first.
func jobPods(t *testing.T, job string) []string {
	t.Helper()
	out := mustKubectl(t, "get", "pods", "-n", "e2e-actions-provider", "-l", "batch.kubernetes.io/job-name="+job,
		"--sort-by=.metadata.creationTimestamp", "-o",
		`jsonpath={range .items[*]}{.status.phase}/{.status.containerStatuses[0].state.terminated.exitCode}/{.spec.nodeName}{"\n"}{end}`)
	return strings.Fields(out)
}

// kubectlOffering runs `kubectl offering ARGS...` as a user does: kubectl
// finds the plugin (PLUGIN_BINARY, default bin/kubectl-offering) on PATH. It
// returns the combined output and the exit code.
func kubectlOffering(t *testing.T, args ...string) (string, int) {
	t.Helper()
	plugin := os.Getenv("PLUGIN_BINARY")
	if plugin == "" {
		plugin = filepath.Join(repoRoot, "bin", "kubectl-offering")
	}
	if filepath.Base(plugin) != "kubectl-offering" {
		t.Fatalf("PLUGIN_BINARY %s: kubectl finds a plugin by its name, kubectl-offering", plugin)
	}
	if _, err := os.Stat(plugin); err != nil {
		t.Fatalf("no plugin binary (build it with `make build` or set PLUGIN_BINARY): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t.Logf("kubectl offering %s", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, kubectlBin, append([]string{"offering"}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "PATH="+filepath.Dir(plugin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	default:
		t.Fatalf("kubectl offering %s: %v\n%s", strings.Join(args, " "), err, out)
		return "", -1
	}
}
