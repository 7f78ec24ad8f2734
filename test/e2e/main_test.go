//go:build e2e

// Package e2e holds the end-to-end tests of offering-operator: a real local
// control plane (etcd, kube-apiserver with RBAC, kube-controller-manager with
// the garbage collector, namespace, resource quota, service account, job and
// TTL controllers, kube-scheduler, and a node simulated by kwok) started by
// hack/local-cluster.sh, the CRDs installed with kubectl, the manager binary
// run as a process, everything driven through kubectl, the kubectl-offering
// plugin and HTTP.
//
// Run:
//
//	make test-e2e
//	# or
//	KUBEBUILDER_ASSETS=$(hack/control-plane.sh) OPERATOR_BINARY=$PWD/bin/manager \
//	    go test -tags e2e ./test/e2e/... -count=1 -v
//
// Environment:
//
//	KUBEBUILDER_ASSETS  directory with etcd, kube-apiserver, kube-controller-manager,
//	                    kube-scheduler, kubectl and kwok (default: the output of
//	                    hack/control-plane.sh)
//	OPERATOR_BINARY     the manager binary (default: bin/manager in the repository)
//	PLUGIN_BINARY       the kubectl-offering plugin (default: bin/kubectl-offering)
//	E2E_KEEP            "always": keep the cluster and the work dir after the run;
//	                    "on-failure": keep them when a test failed. Default: remove.
//	                    Either way, cluster logs and operator logs of a failed run are
//	                    kept in the work dir, whose path is printed.
package e2e

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	// repoRoot is the repository root (the directory holding go.mod).
	repoRoot string
	// assetsDir holds the control-plane binaries; kubectlBin is its kubectl.
	assetsDir  string
	kubectlBin string
	// workDir is the run's temporary directory: cluster state, operator logs.
	workDir string
	// stateDir is the local cluster's state directory (hack/local-cluster.sh).
	stateDir string
	// kubeconfig is the admin kubeconfig (user in group system:masters).
	kubeconfig string
	// operatorBinary is the manager binary startOperator runs.
	operatorBinary string
	// clusterScript is hack/local-cluster.sh.
	clusterScript string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) (code int) {
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...)
	}
	fail := func(format string, args ...any) int {
		logf("setup failed: "+format, args...)
		return 1
	}

	var err error
	if repoRoot, err = findRepoRoot(); err != nil {
		return fail("%v", err)
	}
	clusterScript = filepath.Join(repoRoot, "hack", "local-cluster.sh")

	assetsDir = os.Getenv("KUBEBUILDER_ASSETS")
	if assetsDir == "" {
		out, err := exec.Command(filepath.Join(repoRoot, "hack", "control-plane.sh")).Output()
		if err != nil {
			return fail("KUBEBUILDER_ASSETS is not set and hack/control-plane.sh failed: %v", err)
		}
		assetsDir = strings.TrimSpace(string(out))
	}
	kubectlBin = filepath.Join(assetsDir, "kubectl")
	if _, err := os.Stat(kubectlBin); err != nil {
		return fail("no kubectl in KUBEBUILDER_ASSETS=%s: %v", assetsDir, err)
	}

	operatorBinary = os.Getenv("OPERATOR_BINARY")
	if operatorBinary == "" {
		operatorBinary = filepath.Join(repoRoot, "bin", "manager")
	}

	if workDir, err = os.MkdirTemp("", "offering-e2e-"); err != nil {
		return fail("%v", err)
	}
	stateDir = filepath.Join(workDir, "cluster")
	kubeconfig = filepath.Join(stateDir, "kubeconfig")
	logf("work dir %s", workDir)

	keep := os.Getenv("E2E_KEEP")
	// Whatever happens (a failed test, a panic, the -timeout alarm, a signal),
	// a reaper outside this process stops the cluster once this process is gone.
	startReaper(logf)
	defer func() {
		failed := code != 0
		if r := recover(); r != nil {
			failed = true
			logf("panic: %v", r)
			code = 1
		}
		if keep == "always" || (failed && keep == "on-failure") {
			logf("keeping the cluster: source <(%s env %s)", clusterScript, stateDir)
			logf("stop it with: %s down %s", clusterScript, stateDir)
			return
		}
		if failed {
			saveClusterLogs(logf)
		}
		teardown := exec.Command(clusterScript, "down", stateDir)
		teardown.Stdout, teardown.Stderr = os.Stderr, os.Stderr
		if err := teardown.Run(); err != nil {
			logf("tearing down the cluster: %v", err)
		}
		if failed {
			logf("logs of the failed run are in %s", workDir)
		} else {
			_ = os.RemoveAll(workDir)
		}
	}()

	start := time.Now()
	up := exec.Command(clusterScript, "up", stateDir)
	up.Env = append(os.Environ(), "KUBEBUILDER_ASSETS="+assetsDir)
	up.Stdout, up.Stderr = os.Stderr, os.Stderr
	if err := up.Run(); err != nil {
		return fail("starting the local cluster: %v", err)
	}
	logf("local cluster up in %s", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	crds := filepath.Join(repoRoot, "config", "crd", "bases")
	out, err := runKubectl("", 2*time.Minute, "apply", "--server-side", "-f", crds)
	if err != nil {
		return fail("installing the CRDs: %v", err)
	}
	logf("CRDs applied:\n%s", strings.TrimSpace(out))
	if _, err := runKubectl("", 2*time.Minute, "wait", "--for=condition=Established", "--timeout=90s", "-f", crds); err != nil {
		return fail("waiting for the CRDs: %v", err)
	}
	logf("CRDs established in %s", time.Since(start).Round(time.Millisecond))
	if err := installAdmission(); err != nil {
		return fail("%v", err)
	}
	logf("admission policy active")

	return m.Run()
}

// installAdmission applies config/admission and waits until the API server
// admits requests through it.
func installAdmission() error {
	if out, err := runKubectl("", 2*time.Minute, "apply", "--server-side", "-k", filepath.Join(repoRoot, "config", "admission")); err != nil {
		return fmt.Errorf("installing the admission policy: %w\n%s", err, out)
	}
	wait := exec.Command(filepath.Join(repoRoot, "hack", "wait-for-admission.sh"), "--kubeconfig", kubeconfig)
	wait.Env = append(os.Environ(), "KUBECTL="+kubectlBin)
	if out, err := wait.CombinedOutput(); err != nil {
		return fmt.Errorf("waiting for the admission policy: %w\n%s", err, out)
	}
	return nil
}

// startReaper starts a detached shell that runs `hack/local-cluster.sh down`
// once this test process has exited, however it exits. After a normal
// teardown the state dir is gone and the reaper has nothing to do.
func startReaper(logf func(string, ...any)) {
	if os.Getenv("E2E_KEEP") != "" {
		return
	}
	script := `while kill -0 "$0" 2>/dev/null; do sleep 1; done; [ -d "$2" ] && exec "$1" down "$2"; exit 0`
	cmd := exec.Command("bash", "-c", script, fmt.Sprint(os.Getpid()), clusterScript, stateDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0); err == nil {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	}
	if err := cmd.Start(); err != nil {
		logf("cannot start the cluster reaper (the cluster may outlive a crashed run): %v", err)
		return
	}
	_ = cmd.Process.Release()
}

// saveClusterLogs copies the control plane's logs out of the state dir before
// `down` removes it.
func saveClusterLogs(logf func(string, ...any)) {
	logs, _ := filepath.Glob(filepath.Join(stateDir, "*.log"))
	if len(logs) == 0 {
		return
	}
	dst := filepath.Join(workDir, "cluster-logs")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		logf("saving cluster logs: %v", err)
		return
	}
	for _, l := range logs {
		if err := copyFile(l, filepath.Join(dst, filepath.Base(l))); err != nil {
			logf("saving %s: %v", l, err)
		}
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
