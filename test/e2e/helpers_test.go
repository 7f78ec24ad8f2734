//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/offering-operator/offering-operator/internal/testutil"
)

// kubectlTimeout bounds every kubectl call made through the helpers.
const kubectlTimeout = 2 * time.Minute

// kubectl runs the control plane's kubectl against the test cluster and returns
// its standard output. On failure the error holds the exit status and standard
// error (for example the API server's validation message).
func kubectl(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return kubectlInput(t, "", args...)
}

// kubectlInput is kubectl with stdin, for example `kubectlInput(t, yaml, "apply", "-f", "-")`.
func kubectlInput(t testing.TB, stdin string, args ...string) (string, error) {
	t.Helper()
	t.Logf("kubectl %s", strings.Join(args, " "))
	return runKubectl(stdin, kubectlTimeout, args...)
}

// mustKubectl is kubectl that fails the test on error.
func mustKubectl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := kubectl(t, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// applyManifest applies YAML with server-side apply and fails the test on error.
func applyManifest(t testing.TB, manifest string) string {
	t.Helper()
	out, err := kubectlInput(t, manifest, "apply", "--server-side", "--field-manager=e2e", "-f", "-")
	if err != nil {
		t.Fatalf("applying manifest: %v\n%s", err, manifest)
	}
	return out
}

func runKubectl(stdin string, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectlBin, args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: timed out after %s: %s",
			strings.Join(args, " "), timeout, strings.TrimSpace(stderr.String()))
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s",
			strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// eventually waits for what a user would observe.
var eventually = testutil.Eventually

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Operator is a manager process started by startOperator.
type Operator struct {
	// MetricsPort serves https://127.0.0.1:MetricsPort/metrics (authn/authz).
	MetricsPort int
	// ProbePort serves http://127.0.0.1:ProbePort/healthz and /readyz.
	ProbePort int
	// LogPath is the file holding the process's stdout and stderr.
	LogPath string
	// Args are the command-line arguments it was started with.
	Args []string

	t        testing.TB
	cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
	exitCode int
	stopErr  error
}

var operatorSeq struct {
	sync.Mutex
	n int
}

// startOperator runs OPERATOR_BINARY against the test cluster with the admin
// kubeconfig, free metrics and probe ports on 127.0.0.1, no leader election and
// extraArgs, and waits until /readyz answers 200. The process is stopped when
// the test ends; its log is printed when the test failed.
func startOperator(t testing.TB, extraArgs ...string) *Operator {
	t.Helper()
	op := launchOperator(t, extraArgs...)
	if err := op.WaitReady(60 * time.Second); err != nil {
		t.Fatalf("operator did not become ready: %v\n--- operator log (tail) ---\n%s", err, op.LogTail(60))
	}
	return op
}

// launchOperator starts the manager like startOperator but does not wait for it.
func launchOperator(t testing.TB, extraArgs ...string) *Operator {
	t.Helper()
	if _, err := os.Stat(operatorBinary); err != nil {
		if os.Getenv("OPERATOR_BINARY") == "" {
			t.Skipf("no manager binary at %s (build it with `make build` or set OPERATOR_BINARY)", operatorBinary)
		}
		t.Fatalf("OPERATOR_BINARY: %v", err)
	}
	operatorSeq.Lock()
	operatorSeq.n++
	seq := operatorSeq.n
	operatorSeq.Unlock()

	op := &Operator{
		MetricsPort: freePort(t),
		ProbePort:   freePort(t),
		t:           t,
		done:        make(chan struct{}),
	}
	for op.ProbePort == op.MetricsPort {
		op.ProbePort = freePort(t)
	}
	name := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_")
	op.LogPath = filepath.Join(workDir, fmt.Sprintf("operator-%02d-%s.log", seq, name))
	op.Args = append([]string{
		"--kubeconfig=" + kubeconfig,
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", op.MetricsPort),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", op.ProbePort),
		"--leader-elect=false",
	}, extraArgs...)

	logFile, err := os.Create(op.LogPath)
	if err != nil {
		t.Fatalf("creating the operator log: %v", err)
	}
	op.cmd = exec.Command(operatorBinary, op.Args...)
	op.cmd.Dir = workDir
	op.cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	op.cmd.Stdout, op.cmd.Stderr = logFile, logFile
	// Should this test process die, the operator goes with it.
	op.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := op.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("starting %s: %v", operatorBinary, err)
	}
	logFile.Close() // the child holds its own copy
	t.Logf("operator pid %d: %s %s (log %s)", op.cmd.Process.Pid, operatorBinary, strings.Join(op.Args, " "), op.LogPath)
	go func() {
		op.waitErr = op.cmd.Wait()
		close(op.done)
	}()

	t.Cleanup(func() {
		if !op.Exited() {
			if code, err := op.Stop(); err != nil || code != 0 {
				t.Logf("operator stop at cleanup: exit code %d, %v", code, err)
			}
		}
		if t.Failed() {
			t.Logf("--- operator log %s (tail) ---\n%s", op.LogPath, op.LogTail(80))
		}
	})
	return op
}

// Exited reports whether the process has exited.
func (op *Operator) Exited() bool {
	select {
	case <-op.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has exited.
func (op *Operator) Done() <-chan struct{} { return op.done }

// ExitCode is the exit code of an exited process (-1 when killed by a signal).
func (op *Operator) ExitCode() int {
	<-op.done
	if op.cmd.ProcessState == nil {
		return -1
	}
	return op.cmd.ProcessState.ExitCode()
}

// Stop sends SIGTERM and waits up to 15 s for the process to exit; it then
// kills it and returns an error. It returns the exit code (-1 when the
// process died from a signal). Calling Stop again returns the same result.
func (op *Operator) Stop() (int, error) {
	return op.StopWithin(15 * time.Second)
}

// StopWithin is Stop with another grace period.
func (op *Operator) StopWithin(grace time.Duration) (int, error) {
	op.stopOnce.Do(func() {
		if op.Exited() {
			op.exitCode = op.ExitCode()
			op.stopErr = fmt.Errorf("operator had already exited (code %d) before Stop", op.exitCode)
			return
		}
		start := time.Now()
		if err := op.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			op.stopErr = fmt.Errorf("sending SIGTERM: %w", err)
		}
		select {
		case <-op.done:
			op.exitCode = op.ExitCode()
			op.t.Logf("operator exited with code %d %s after SIGTERM", op.exitCode, time.Since(start).Round(time.Millisecond))
		case <-time.After(grace):
			_ = op.cmd.Process.Kill()
			<-op.done
			op.exitCode = op.ExitCode()
			op.stopErr = fmt.Errorf("operator did not exit within %s of SIGTERM; killed it", grace)
		}
	})
	return op.exitCode, op.stopErr
}

// WaitReady polls /readyz on the probe port until it answers 200.
func (op *Operator) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if op.Exited() {
			return fmt.Errorf("operator exited with code %d", op.ExitCode())
		}
		code, _, err := op.Probe("/readyz")
		if err == nil && code == http.StatusOK {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("/readyz answered %d", code)
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("timed out after %s: %w", timeout, last)
}

// Probe GETs path (/healthz, /readyz) on the probe port.
func (op *Operator) Probe(path string) (int, string, error) {
	return httpGet(fmt.Sprintf("http://127.0.0.1:%d%s", op.ProbePort, path), "")
}

// Metrics GETs https://127.0.0.1:MetricsPort/metrics, with bearerToken when not empty.
func (op *Operator) Metrics(bearerToken string) (int, string, error) {
	return httpGet(fmt.Sprintf("https://127.0.0.1:%d/metrics", op.MetricsPort), bearerToken)
}

// Logs returns everything the process has written so far.
func (op *Operator) Logs() string {
	b, err := os.ReadFile(op.LogPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", op.LogPath, err)
	}
	return string(b)
}

// LogTail returns the last n lines of the log.
func (op *Operator) LogTail(n int) string {
	lines := strings.Split(strings.TrimRight(op.Logs(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var insecureClient = &http.Client{
	Timeout: 10 * time.Second,
	Transport: &http.Transport{
		// The metrics endpoint serves a self-signed certificate.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // test against a local self-signed server
	},
}

func httpGet(url, bearerToken string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if bearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+bearerToken)
	}
	resp, err := insecureClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// createMetricsReader creates (idempotently) a ServiceAccount allowed to GET
// /metrics and returns a fresh token for it.
func createMetricsReader(t testing.TB) string {
	t.Helper()
	applyManifest(t, `
apiVersion: v1
kind: Namespace
metadata:
  name: e2e-metrics
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: metrics-reader
  namespace: e2e-metrics
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: e2e-metrics-reader
rules:
- nonResourceURLs: ["/metrics"]
  verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: e2e-metrics-reader
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: e2e-metrics-reader
subjects:
- kind: ServiceAccount
  name: metrics-reader
  namespace: e2e-metrics
`)
	token := strings.TrimSpace(mustKubectl(t, "create", "token", "metrics-reader", "-n", "e2e-metrics", "--duration=1h"))
	if token == "" {
		t.Fatal("kubectl create token returned nothing")
	}
	return token
}
