//go:build bench

package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// repoRoot is the repository root, two levels up from this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// startCluster starts a local control plane (hack/local-cluster.sh) in dir
// and returns its kubeconfig; it is stopped when the test ends.
func startCluster(t testing.TB, dir string) string {
	t.Helper()
	script := filepath.Join(repoRoot(t), "hack", "local-cluster.sh")
	cmd := exec.Command(script, "up", dir)
	// The API server's CPU profile of the burst is part of the report.
	cmd.Env = append(os.Environ(), "APISERVER_PROFILING=true")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("starting the local cluster: %v", err)
	}
	t.Cleanup(func() {
		down := exec.Command(script, "down", dir)
		down.Stdout, down.Stderr = os.Stderr, os.Stderr
		_ = down.Run()
	})
	return filepath.Join(dir, "kubeconfig")
}

func kubectl(t testing.TB, kubeconfig string, args ...string) string {
	t.Helper()
	bin := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	out, err := exec.Command(bin, append([]string{"--kubeconfig", kubeconfig}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// waitForAdmission waits until new requests get the finalizer from the
// admission policy (hack/wait-for-admission.sh).
func waitForAdmission(t testing.TB, kubeconfig string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot(t), "hack", "wait-for-admission.sh"), "--kubeconfig", kubeconfig)
	cmd.Env = append(os.Environ(), "KUBECTL="+filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("waiting for the admission policy: %v\n%s", err, out)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// manager is the operator running as its own process.
type manager struct {
	cmd         *exec.Cmd
	metricsPort int
	pprofPort   int
	probePort   int
	logPath     string
	started     time.Time
}

func startManager(t testing.TB, kubeconfig, dir string, args ...string) *manager {
	t.Helper()
	m := &manager{metricsPort: freePort(t), pprofPort: freePort(t), probePort: freePort(t)}
	if err := m.launch(kubeconfig, dir, args...); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", m.probePort))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("manager not ready; log %s", m.logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(m.stop)
	return m
}

// launch starts the manager's process on m's ports, with its log in a new
// file in dir, and returns without waiting for it to be ready.
func (m *manager) launch(kubeconfig, dir string, args ...string) error {
	bin := os.Getenv("OPERATOR_BINARY")
	if bin == "" {
		return errors.New("OPERATOR_BINARY is not set: run `make bench`")
	}
	m.logPath = filepath.Join(dir, fmt.Sprintf("manager-%d.log", time.Now().UnixNano()))
	logf, err := os.Create(m.logPath)
	if err != nil {
		return err
	}
	defer logf.Close() // the process holds its own copy
	all := append([]string{
		"--kubeconfig", kubeconfig, "--leader-elect=false", "--metrics-secure=false",
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", m.metricsPort),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", m.probePort),
		fmt.Sprintf("--pprof-bind-address=127.0.0.1:%d", m.pprofPort),
		"--zap-log-level=error",
	}, strings.Fields(os.Getenv("BENCH_MANAGER_ARGS"))...)
	all = append(all, args...)
	m.cmd = exec.Command(bin, all...)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	m.started = time.Now()
	return m.cmd.Start()
}

func (m *manager) stop() {
	if m.cmd.ProcessState != nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = m.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = m.cmd.Process.Kill()
		<-done
	}
}

// metrics scrapes the manager's metrics endpoint.
func (m *manager) metrics(t testing.TB) map[string]*dto.MetricFamily {
	t.Helper()
	return scrape(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", m.metricsPort), nil)
}

func scrape(t testing.TB, url string, client *http.Client) map[string]*dto.MetricFamily {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bufio.NewReader(resp.Body))
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return fams
}

// sum adds the values of a counter or gauge family whose labels match all of want.
func sum(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f, ok := fams[name]
	if !ok {
		return 0
	}
	var total float64
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total
}

// apiCalls returns offering_operator_api_requests_total by "verb resource"
// for the calls the API server carried out (2xx), and by "verb resource code"
// for the others (a 409 conflict, a 403, "error" when no answer came).
func apiCalls(fams map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	f, ok := fams["offering_operator_api_requests_total"]
	if !ok {
		return out
	}
	for _, m := range f.GetMetric() {
		var verb, resource, code string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "verb":
				verb = l.GetValue()
			case "resource":
				resource = l.GetValue()
			case "code":
				code = l.GetValue()
			}
		}
		key := verb + " " + resource
		if !strings.HasPrefix(code, "2") {
			key += " " + code
		}
		out[key] += m.GetCounter().GetValue()
	}
	return out
}

func (m *manager) pprofURL(profile string) string {
	return fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/%s", m.pprofPort, profile)
}

// fetch saves what url returns (a profile) into path.
func fetch(c *http.Client, url, path string) error {
	if c == nil {
		c = &http.Client{Timeout: 60 * time.Second}
	}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// keepProfile copies a profile to the file named by the environment variable env, when set.
func keepProfile(path, env string) {
	if out := os.Getenv(env); out != "" {
		if b, err := os.ReadFile(path); err == nil {
			_ = os.WriteFile(out, b, 0o600)
		}
	}
}

// topOf runs `go tool pprof -top` on a profile and returns its first lines.
func topOf(path string, lines int, flags ...string) string {
	args := append([]string{"tool", "pprof", "-top", "-nodecount=20"}, flags...)
	out, err := exec.Command("go", append(args, path)...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("pprof: %v", err)
	}
	all := strings.Split(string(out), "\n")
	if len(all) > lines {
		all = all[:lines]
	}
	return strings.Join(all, "\n")
}

// profileTotal is the total of a heap profile's in-use space, in bytes, as
// pprof's header gives it ("... of 149180000B total").
func profileTotal(path string) (float64, error) {
	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=1", "-sample_index=inuse_space", "-unit=B", path).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pprof: %v: %s", err, out)
	}
	m := regexp.MustCompile(`of ([0-9.]+)B total`).FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no total in pprof's output: %s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// cpuTimes are the CPU seconds (user + system) each process of the run has
// used so far: the control plane's, the manager's and this load generator's.
func (e *env) cpuTimes(m *manager) map[string]float64 {
	out := map[string]float64{}
	for _, name := range []string{"kube-apiserver", "etcd", "kube-controller-manager"} {
		b, err := os.ReadFile(filepath.Join(e.dir, name+".pid"))
		if err != nil {
			continue
		}
		if s, err := procCPU(strings.TrimSpace(string(b))); err == nil {
			out[name] = s
		}
	}
	if m != nil && m.cmd.Process != nil {
		if s, err := procCPU(fmt.Sprint(m.cmd.Process.Pid)); err == nil {
			out["manager"] = s
		}
	}
	if s, err := procCPU("self"); err == nil {
		out["load generator"] = s
	}
	return out
}

// procCPU reads utime + stime of a process from /proc/PID/stat, in seconds
// (USER_HZ is 100 on Linux).
func procCPU(pid string) (float64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count fields after its ')'.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc/%s/stat", pid)
	}
	var utime, stime float64
	if _, err := fmt.Sscan(fields[11], &utime); err != nil {
		return 0, err
	}
	if _, err := fmt.Sscan(fields[12], &stime); err != nil {
		return 0, err
	}
	return (utime + stime) / 100, nil
}

// cpuDiff formats the CPU seconds used between two cpuTimes readings.
func cpuDiff(before, after map[string]float64) string {
	var parts []string
	total := 0.0
	for _, name := range []string{"kube-apiserver", "etcd", "kube-controller-manager", "manager", "load generator"} {
		if a, ok := after[name]; ok {
			d := a - before[name]
			total += d
			parts = append(parts, fmt.Sprintf("%s %.1f", name, d))
		}
	}
	return fmt.Sprintf("%.1f CPU-s: %s", total, strings.Join(parts, ", "))
}
