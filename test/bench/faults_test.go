//go:build bench

package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// The faults scenario (TestFaults, `make bench-faults`, part of `make bench`):
// a burst of requests against agreements whose entitlements cover nine
// tenths of them, while the control plane and the manager fail: the leading
// manager is killed twice (two replicas with leader election), kube-apiserver
// is killed and started again once, and etcd is stopped for a few seconds.
// Each fault comes once the requests decided so far pass a share of the
// burst, so that every fault meets work in flight whatever the machine's
// speed. The report: every request ends Fulfilled or Denied exactly once,
// exactly the entitled number granted, each with one namespace and one set
// of children, nothing orphaned, and the time from the last fault to full
// convergence. See docs/performance.md#under-faults.
var (
	// faultsRequests sizes the burst (0 skips the scenario); the entitlements
	// cover nine tenths of it.
	faultsRequests = envInt("BENCH_FAULTS_REQUESTS", 1000)
	// etcdStop is how long etcd is stopped.
	etcdStop = time.Duration(envInt("BENCH_FAULTS_ETCD_STOP_SECONDS", 5)) * time.Second
	// pauseLeader adds a fault: the leader is stopped (SIGSTOP) until
	// another process leads, then resumed, its reconciles still in flight.
	pauseLeader = os.Getenv("BENCH_FAULTS_PAUSE_LEADER") != ""
)

// faultsAgreements is how many agreements share the burst and its entitlement.
const faultsAgreements = 3

// leaseName is the manager's leader-election Lease (main.go).
const leaseName = "offering-operator.service.offering.dev"

func TestFaults(t *testing.T) {
	if faultsRequests == 0 {
		t.Skip("BENCH_FAULTS_REQUESTS=0")
	}
	e := newFaultsEnv(t)
	n, granted := faultsRequests, faultsRequests*9/10
	limits := e.setupFaults(n, granted)
	rep := &report{}
	rep.add("F. machine", "%d CPUs; load average %s at the start; %d requests, %d agreements with maxGrants %v (%d in all)",
		runtime.NumCPU(), loadAverage(), n, faultsAgreements, limits, granted)

	// Two replicas with leader election, as the chart runs them; each is
	// restarted when its process ends, as a kubelet would.
	args := []string{"--leader-elect=true", "--leader-election-namespace=" + metav1.NamespaceDefault}
	replicas := []*replica{e.startReplica("replica-a", args...), e.startReplica("replica-b", args...)}
	if _, err := waitLeader(replicas, nil, 2*time.Minute); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := e.recordRequests(ctx)
	start := time.Now()
	created := make(chan burstResult, 1)
	go func() { created <- e.createBurst(n) }()

	faults := e.faultSchedule(replicas)
	var lastFault time.Time
	var ends []time.Time
	for _, f := range faults {
		decided, err := h.waitDecided(int(f.share*float64(n)), n, 10*time.Minute)
		if err != nil {
			t.Fatalf("before %s: %v", f.name, err)
		}
		if decided == n {
			t.Fatalf("the burst was decided before %s: the fault met no work", f.name)
		}
		at := time.Since(start)
		end, detail, err := f.inject()
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		lastFault = end
		rep.add("F. fault: "+f.name, "at %s into the burst, %d of %d requests decided: %s", at.Round(100*time.Millisecond), decided, n, detail)
		ends = append(ends, end)
	}
	burst := <-created

	converged, err := e.waitConverged(h, n, granted, 10*time.Minute)
	if err != nil {
		e.reportFaults(rep, h, replicas, granted, burst)
		t.Fatalf("no convergence %s after the last fault: %v", time.Since(lastFault).Round(time.Second), err)
	}
	lastFinal := h.lastDecided()
	// Nothing may change its outcome afterwards: watch for a while longer.
	time.Sleep(10 * time.Second)
	if problems := e.convergence(n, granted); len(problems) > 0 {
		t.Errorf("converged, then no longer: %s", strings.Join(problems, "; "))
	}
	cancel()
	e.reportFaults(rep, h, replicas, granted, burst)
	rep.add("F. convergence", "last request decided %s after the last fault; everything converged (outcomes, children, no orphans, ledger) %s after it; burst created to converged %s",
		lastFinal.Sub(lastFault).Round(100*time.Millisecond), converged.Sub(lastFault).Round(100*time.Millisecond), converged.Sub(start).Round(100*time.Millisecond))
	rep.add("F. recovery", "the first request decided after each fault's end came %s later", h.resumedAfter(ends))
	rep.add("F. machine after", "load average %s", loadAverage())
	fmt.Println()
	rep.print()
}

// newFaultsEnv starts a control plane of its own (the scenario kills parts
// of it), with the CRDs and the admission policies, and a client for it.
func newFaultsEnv(t *testing.T) *env {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make bench-faults`")
	}
	if err := v1alpha1.AddToScheme(scheme.Scheme); err != nil {
		t.Fatal(err)
	}
	logf.SetLogger(logr.Discard()) // the scenario reports what it sees; client-side logs are noise
	e := &env{t: t, dir: t.TempDir(), ns: "faults"}
	e.kubeconfig = startCluster(t, e.dir)
	kubectl(t, e.kubeconfig, "apply", "--server-side", "-f", repoRoot(t)+"/config/crd/bases")
	kubectl(t, e.kubeconfig, "wait", "--for=condition=Established", "--timeout=60s", "-f", repoRoot(t)+"/config/crd/bases")
	kubectl(t, e.kubeconfig, "apply", "--server-side", "-k", repoRoot(t)+"/config/admission")
	waitForAdmission(t, e.kubeconfig)
	var err error
	if e.cfg, err = clientcmd.BuildConfigFromFlags("", e.kubeconfig); err != nil {
		t.Fatal(err)
	}
	e.cfg.QPS, e.cfg.Burst = 2000, 4000
	e.cfg.DisableCompression = true
	if e.c, err = client.NewWithWatch(e.cfg, client.Options{Scheme: scheme.Scheme}); err != nil {
		t.Fatal(err)
	}
	return e
}

// setupFaults creates the world of setupWorld and the agreements of the
// burst, whose maxGrants sum to granted; each agreement gets more requests
// than its limit. It returns the limits.
func (e *env) setupFaults(n, granted int) []int {
	e.setupWorld()
	limits := make([]int, faultsAgreements)
	for i := range limits {
		limits[i] = granted / faultsAgreements
		if i < granted%faultsAgreements {
			limits[i]++
		}
		if requests := (n + faultsAgreements - 1 - i) / faultsAgreements; requests < limits[i] {
			e.t.Fatalf("agreement %d gets %d requests, fewer than its %d grants: raise BENCH_FAULTS_REQUESTS", i, requests, limits[i])
		}
		must(e.t, e.c.Create(context.Background(), &v1alpha1.ServiceAgreement{
			ObjectMeta: metav1.ObjectMeta{Name: faultsAgreement(i), Namespace: e.ns},
			Spec: v1alpha1.ServiceAgreementSpec{
				Offering:       "bench",
				Consumer:       v1alpha1.Consumer{Name: "Bench", Subjects: []v1alpha1.Subject{{Kind: v1alpha1.SubjectGroup, Name: "bench-team"}}},
				Entitlements:   v1alpha1.Entitlements{Resources: []v1alpha1.ResourceEntitlement{{Name: "space", MaxGrants: ptr.To(int32(limits[i]))}}},
				ApprovalPolicy: v1alpha1.ApprovalAutomatic,
			},
		}))
	}
	return limits
}

func faultsAgreement(i int) string { return fmt.Sprintf("faults-%d", i%faultsAgreements) }

// createBurst creates the n requests of the burst with the load workers,
// each retried until the API server has it (a create that timed out may
// have been stored: AlreadyExists then ends its retries). It returns how
// many creates were retried and how long the burst took to create.
func (e *env) createBurst(n int) burstResult {
	start := time.Now()
	var retries atomic.Int64
	deadline := time.Now().Add(10 * time.Minute)
	parallel(n, func(i int) {
		cr := e.request("faults", i)
		cr.Spec.Agreement = v1alpha1.AgreementName(faultsAgreement(i))
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			err := e.c.Create(ctx, cr.DeepCopy())
			cancel()
			if err == nil || apierrors.IsAlreadyExists(err) {
				return
			}
			if time.Now().After(deadline) {
				e.t.Errorf("creating %s: %v", cr.Name, err)
				return
			}
			retries.Add(1)
			time.Sleep(250 * time.Millisecond)
		}
	})
	return burstResult{retries: retries.Load(), took: time.Since(start)}
}

type burstResult struct {
	retries int64
	took    time.Duration
}

// fault is one failure of the scenario: injected once share of the burst is
// decided; inject returns when the fault is over (what follows is recovery)
// and says what happened.
type fault struct {
	name   string
	share  float64
	inject func() (end time.Time, detail string, err error)
}

func (e *env) faultSchedule(replicas []*replica) []fault {
	killLeader := func() (time.Time, string, error) {
		leader, err := waitLeader(replicas, nil, 2*time.Minute)
		if err != nil {
			return time.Time{}, "", err
		}
		killed := time.Now()
		process := leader.kill()
		next, err := waitLeader(replicas, process, 2*time.Minute)
		if err != nil {
			return killed, "", err
		}
		who := "the other replica, " + next.name
		if next == leader {
			who = "a new process of " + next.name // restarted, it won the lease
		}
		return killed, fmt.Sprintf("SIGKILL to the leader, %s; %s led %s later", leader.name, who, time.Since(killed).Round(100*time.Millisecond)), nil
	}
	faults := []fault{
		{name: "leader killed", share: 0.05, inject: killLeader},
		{name: "kube-apiserver killed and started again", share: 0.25, inject: e.restartAPIServer},
		{name: fmt.Sprintf("etcd stopped for %s", etcdStop), share: 0.5, inject: e.pauseEtcd},
		{name: "leader killed again", share: 0.75, inject: killLeader},
	}
	if pauseLeader {
		paused := fault{name: "leader paused until deposed", share: 0.62, inject: func() (time.Time, string, error) { return e.pauseLeader(replicas) }}
		faults = append(faults[:3], append([]fault{paused}, faults[3:]...)...)
	}
	return faults
}

// pauseLeader stops the leading process (SIGSTOP) until another process
// leads, then resumes it (SIGCONT): a deposed leader whose reconciles were
// in flight, as after a long garbage-collection pause or a frozen VM. Its
// late writes meet the new leader's.
func (e *env) pauseLeader(replicas []*replica) (time.Time, string, error) {
	leader, err := waitLeader(replicas, nil, 2*time.Minute)
	if err != nil {
		return time.Time{}, "", err
	}
	leader.mu.Lock()
	m := leader.cur
	leader.mu.Unlock()
	pid := m.cmd.Process.Pid
	resume := func() { _ = syscall.Kill(pid, syscall.SIGCONT) }
	e.t.Cleanup(resume)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return time.Time{}, "", err
	}
	paused := time.Now()
	next, err := waitLeader(replicas, m, 2*time.Minute)
	resume()
	if err != nil {
		return time.Now(), "", err
	}
	return time.Now(), fmt.Sprintf("SIGSTOP to the leader, %s; %s led %s later, and the paused process was resumed then",
		leader.name, next.name, time.Since(paused).Round(100*time.Millisecond)), nil
}

// pidOf reads the PID of a control-plane process from the pid file
// hack/local-cluster.sh keeps for it.
func (e *env) pidOf(name string) (int, error) {
	b, err := os.ReadFile(filepath.Join(e.dir, name+".pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// restartAPIServer kills kube-apiserver (SIGKILL, as a crash or an OOM kill
// would) and starts it again at once with the same command line, as
// hack/local-cluster.sh would; the fault is over when it is started, and the
// detail says when it answered /readyz again.
func (e *env) restartAPIServer() (time.Time, string, error) {
	pid, err := e.pidOf("kube-apiserver")
	if err != nil {
		return time.Time{}, "", err
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return time.Time{}, "", err
	}
	argv := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return time.Time{}, "", err
	}
	// Its listening port is free once the process is gone.
	for syscall.Kill(pid, 0) == nil && time.Since(killed) < 30*time.Second {
		time.Sleep(20 * time.Millisecond)
	}
	logf, err := os.OpenFile(filepath.Join(e.dir, "kube-apiserver.log"), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return time.Time{}, "", err
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own session, as launch in hack/local-cluster.sh: `down` stops its group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return time.Time{}, "", err
	}
	go func() { _ = cmd.Wait() }()
	started := time.Now()
	if err := os.WriteFile(filepath.Join(e.dir, "kube-apiserver.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600); err != nil {
		return started, "", err
	}
	ready, err := e.waitAPIServerReady(3 * time.Minute)
	if err != nil {
		return started, "", err
	}
	return started, fmt.Sprintf("SIGKILL, started again %s later; /readyz answered ok %s after the kill",
		started.Sub(killed).Round(10*time.Millisecond), ready.Sub(killed).Round(100*time.Millisecond)), nil
}

func (e *env) waitAPIServerReady(timeout time.Duration) (time.Time, error) {
	c := e.apiServerClient()
	c.Timeout = 2 * time.Second
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := c.Get(e.cfg.Host + "/readyz"); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == "ok" {
				return time.Now(), nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("kube-apiserver not ready within %s", timeout)
}

// pauseEtcd stops etcd with SIGSTOP and resumes it with SIGCONT after
// etcdStop: the process keeps its sockets and its state but answers
// nothing, as under a stalled disk or a partition. Callers hang until their
// own timeouts instead of being refused at once, which a killed and
// restarted etcd would do (kube-apiserver's restart covers refused
// connections already).
func (e *env) pauseEtcd() (time.Time, string, error) {
	pid, err := e.pidOf("etcd")
	if err != nil {
		return time.Time{}, "", err
	}
	resume := func() { _ = syscall.Kill(pid, syscall.SIGCONT) }
	e.t.Cleanup(resume) // never leave it stopped, whatever fails
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return time.Time{}, "", err
	}
	stopped := time.Now()
	time.Sleep(etcdStop)
	resume()
	resumed := time.Now()
	return resumed, fmt.Sprintf("SIGSTOP, SIGCONT %s later", resumed.Sub(stopped).Round(10*time.Millisecond)), nil
}

// replica is one replica of the manager, started again whenever its process
// ends (killed by the scenario, or exited on its own, as a manager does when
// it loses its lease), one second later, as a kubelet restarts a container.
type replica struct {
	name       string
	kubeconfig string
	dir        string
	args       []string
	ports      manager // the ports every process of the replica listens on

	mu       sync.Mutex
	cur      *manager
	killed   bool // the current process was killed by the scenario
	stopping bool
	starts   int
	// exits says how each process ended, in order.
	exits []string
	done  chan struct{}
}

func (e *env) startReplica(name string, args ...string) *replica {
	r := &replica{name: name, kubeconfig: e.kubeconfig, dir: e.dir, args: args, done: make(chan struct{}),
		ports: manager{metricsPort: freePort(e.t), pprofPort: freePort(e.t), probePort: freePort(e.t)}}
	go r.supervise()
	e.t.Cleanup(r.stop)
	return r
}

func (r *replica) supervise() {
	defer close(r.done)
	for {
		r.mu.Lock()
		if r.stopping {
			r.mu.Unlock()
			return
		}
		m := &manager{metricsPort: r.ports.metricsPort, pprofPort: r.ports.pprofPort, probePort: r.ports.probePort}
		err := m.launch(r.kubeconfig, r.dir, r.args...)
		r.cur, r.killed = m, false
		r.starts++
		r.mu.Unlock()
		if err == nil {
			err = m.cmd.Wait()
		}
		r.mu.Lock()
		why := "exited on its own"
		if r.killed {
			why = "killed by the scenario"
		}
		r.exits = append(r.exits, fmt.Sprintf("%s: %s (%v; last log line: %s)", time.Now().Format("15:04:05.0"), why, err, lastLine(m.logPath)))
		stopping := r.stopping
		r.mu.Unlock()
		if stopping {
			return
		}
		time.Sleep(time.Second)
	}
}

// kill sends SIGKILL to the replica's current process and returns it.
func (r *replica) kill() *manager {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.killed = true
	if r.cur != nil && r.cur.cmd.Process != nil {
		_ = r.cur.cmd.Process.Kill()
	}
	return r.cur
}

func (r *replica) stop() {
	r.mu.Lock()
	r.stopping = true
	m := r.cur
	r.mu.Unlock()
	if m != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		if m != nil && m.cmd.Process != nil {
			_ = m.cmd.Process.Kill()
		}
		<-r.done
	}
}

// leader returns the replica's current process if it says it holds the
// lease (controller-runtime's leader_election_master_status), else nil.
func (r *replica) leader() *manager {
	r.mu.Lock()
	m := r.cur
	r.mu.Unlock()
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", r.ports.metricsPort))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || !strings.Contains(string(body), `leader_election_master_status{name="`+leaseName+`"} 1`) {
		return nil
	}
	return m
}

// waitLeader waits until exactly one replica leads, in a process other than
// not, and returns it.
func waitLeader(replicas []*replica, not *manager, timeout time.Duration) (*replica, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var leaders []*replica
		for _, r := range replicas {
			if m := r.leader(); m != nil && m != not {
				leaders = append(leaders, r)
			}
		}
		if len(leaders) == 1 {
			return leaders[0], nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("no single new leader within %s", timeout)
}

func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	last := lines[len(lines)-1]
	if len(last) > 300 {
		last = last[:300] + "..."
	}
	return last
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return err.Error()
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}

// version is what the scenario keeps of one version of a request.
type version struct {
	rv          string
	uid         string
	phase       v1alpha1.RequestPhase
	ready       bool
	fulfilled   bool // condition Fulfilled True
	denied      bool // condition Denied True
	fulfilledAt string
	grant       string
}

// final reports whether the version shows an outcome: granted (phase,
// Fulfilled and Ready) or denied (phase and Denied), and not both.
func (v version) final() bool {
	granted := v.phase == v1alpha1.RequestFulfilled && v.fulfilled && v.ready && !v.denied
	return granted || v.phase == v1alpha1.RequestDenied && v.denied && !v.fulfilled
}

func versionOf(cr *v1alpha1.ConsumptionRequest) version {
	v := version{rv: cr.ResourceVersion, uid: string(cr.UID), phase: cr.Status.Phase,
		ready:     meta.IsStatusConditionTrue(cr.Status.Conditions, v1alpha1.ConditionReady),
		fulfilled: meta.IsStatusConditionTrue(cr.Status.Conditions, v1alpha1.ConditionFulfilled),
		denied:    meta.IsStatusConditionTrue(cr.Status.Conditions, v1alpha1.ConditionDenied)}
	if cr.Status.FulfilledAt != nil {
		v.fulfilledAt = cr.Status.FulfilledAt.UTC().Format(time.RFC3339Nano)
	}
	if cr.Status.Grant != nil {
		v.grant = cr.Status.Grant.Namespace
	}
	return v
}

// requestHistory holds every version of every request of the burst seen by
// a watch that resumes where it stopped, and lists again (a possible gap,
// counted) only when the API server no longer has that point.
type requestHistory struct {
	mu        sync.Mutex
	versions  map[string][]version
	decidedAt map[string]time.Time // when each request was first seen final
	resumed   int                  // watches resumed from their last version
	relisted  int                  // watches started again from a list
	notify    chan struct{}
}

func (e *env) recordRequests(ctx context.Context) *requestHistory {
	h := &requestHistory{versions: map[string][]version{}, decidedAt: map[string]time.Time{}, notify: make(chan struct{}, 1)}
	rv := h.relist(ctx, e)
	go func() {
		for ctx.Err() == nil {
			w, err := e.c.Watch(ctx, &v1alpha1.ConsumptionRequestList{}, client.InNamespace(e.ns),
				&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
			expired := apierrors.IsResourceExpired(err) || apierrors.IsGone(err)
			if err == nil {
				rv, expired = h.consume(w, rv)
			} else if !expired {
				time.Sleep(200 * time.Millisecond)
			}
			if ctx.Err() != nil {
				return
			}
			h.mu.Lock()
			if expired {
				h.relisted++
			} else {
				h.resumed++
			}
			h.mu.Unlock()
			if expired {
				rv = h.relist(ctx, e)
			}
		}
	}()
	return h
}

// relist records the versions a list returns, retrying until the API server
// answers, and returns the list's resourceVersion.
func (h *requestHistory) relist(ctx context.Context, e *env) string {
	for ctx.Err() == nil {
		var list v1alpha1.ConsumptionRequestList
		if err := e.c.List(ctx, &list, client.InNamespace(e.ns), client.MatchingLabels{"bench-run": "faults"}); err != nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		for i := range list.Items {
			h.record(&list.Items[i])
		}
		return list.ResourceVersion
	}
	return ""
}

// consume records a watch's events until it ends; it returns the last
// resourceVersion seen and whether the API server said it is too old.
func (h *requestHistory) consume(w watch.Interface, rv string) (string, bool) {
	defer w.Stop()
	for ev := range w.ResultChan() {
		if ev.Type == watch.Error {
			status, ok := ev.Object.(*metav1.Status)
			return rv, ok && status.Code == http.StatusGone
		}
		cr, ok := ev.Object.(*v1alpha1.ConsumptionRequest)
		if !ok {
			continue
		}
		rv = cr.ResourceVersion
		if ev.Type == watch.Added || ev.Type == watch.Modified {
			h.record(cr)
		}
	}
	return rv, false
}

func (h *requestHistory) record(cr *v1alpha1.ConsumptionRequest) {
	if cr.Labels["bench-run"] != "faults" {
		return
	}
	v := versionOf(cr)
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := h.versions[cr.Name]
	if len(seen) > 0 && seen[len(seen)-1].rv == v.rv {
		return
	}
	h.versions[cr.Name] = append(seen, v)
	if _, ok := h.decidedAt[cr.Name]; !ok && v.final() {
		h.decidedAt[cr.Name] = time.Now()
		select {
		case h.notify <- struct{}{}:
		default:
		}
	}
}

// decided counts the requests whose latest version seen is final.
func (h *requestHistory) decided() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := 0
	for _, vs := range h.versions {
		if vs[len(vs)-1].final() {
			d++
		}
	}
	return d
}

// waitDecided waits until at least want requests are decided and returns how many are.
func (h *requestHistory) waitDecided(want, n int, timeout time.Duration) (int, error) {
	deadline := time.After(timeout)
	for {
		if d := h.decided(); d >= want {
			return d, nil
		}
		select {
		case <-h.notify:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			return 0, fmt.Errorf("only %d of %d requests decided after %s, %d wanted", h.decided(), n, timeout, want)
		}
	}
}

// lastDecided is when the last request was first seen final.
func (h *requestHistory) lastDecided() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	var last time.Time
	for _, at := range h.decidedAt {
		if at.After(last) {
			last = at
		}
	}
	return last
}

// resumedAfter says, for each time, how long after it the first request
// was decided.
func (h *requestHistory) resumedAfter(ends []time.Time) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var parts []string
	for _, end := range ends {
		var first time.Time
		for _, at := range h.decidedAt {
			if at.After(end) && (first.IsZero() || at.Before(first)) {
				first = at
			}
		}
		if first.IsZero() {
			parts = append(parts, "never")
			continue
		}
		parts = append(parts, first.Sub(end).Round(100*time.Millisecond).String())
	}
	return strings.Join(parts, ", ")
}

// violations checks every request's history: final exactly once and never
// left afterwards, one fulfilment time and one granted namespace, and a
// denied request never held a grant.
func (h *requestHistory) violations() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for name, vs := range h.versions {
		first := -1
		for i, v := range vs {
			if first < 0 && v.final() {
				first = i
			}
		}
		switch {
		case first < 0:
			out = append(out, fmt.Sprintf("%s never final: %s", name, phasesOf(vs)))
			continue
		case len(vs) > 0 && vs[0].uid != vs[len(vs)-1].uid:
			out = append(out, fmt.Sprintf("%s was created twice", name))
		}
		f := vs[first]
		if f.phase == v1alpha1.RequestDenied {
			for _, v := range vs {
				if v.grant != "" || v.fulfilledAt != "" {
					out = append(out, fmt.Sprintf("%s was denied after it held namespace %q", name, v.grant))
					break
				}
			}
		}
		for _, v := range vs[first+1:] {
			if !v.final() || v.phase != f.phase || v.fulfilledAt != f.fulfilledAt || v.grant != f.grant {
				out = append(out, fmt.Sprintf("%s left its outcome: %s", name, phasesOf(vs)))
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

func phasesOf(vs []version) string {
	var parts []string
	for _, v := range vs {
		parts = append(parts, fmt.Sprintf("%s/ready=%t@%s", v.phase, v.ready, v.rv))
	}
	return strings.Join(parts, " ")
}

// waitConverged waits until convergence finds nothing wrong and returns when.
func (e *env) waitConverged(h *requestHistory, n, granted int, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	var problems []string
	for time.Now().Before(deadline) {
		if problems = e.convergence(n, granted); len(problems) == 0 {
			return time.Now(), nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(problems) > 20 {
		problems = append(problems[:20], fmt.Sprintf("and %d more", len(problems)-20))
	}
	return time.Time{}, fmt.Errorf("%d decided by the watch; %s", h.decided(), strings.Join(problems, "; "))
}

// convergence lists, live, the requests of the burst and everything the
// operator holds for them, and returns what is not yet as it must end: every
// request Fulfilled and Ready or Denied; exactly granted of them Fulfilled;
// each with one namespace (the one its status names, not terminating) and in
// it one RoleBinding per role of the offering, one quota, one LimitRange and
// one NetworkPolicy; one grant slot each; and no object of the operator's
// labelled for any other request (an orphan).
func (e *env) convergence(n, granted int) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var problems []string
	var requests v1alpha1.ConsumptionRequestList
	if err := e.c.List(ctx, &requests, client.InNamespace(e.ns), client.MatchingLabels{"bench-run": "faults"}); err != nil {
		return []string{err.Error()}
	}
	grants := map[string]string{} // granted request UID -> its namespace
	undecided := 0
	for i := range requests.Items {
		cr := &requests.Items[i]
		switch v := versionOf(cr); {
		case !v.final():
			undecided++
		case v.phase == v1alpha1.RequestFulfilled && v.grant != "":
			grants[v.uid] = v.grant
		}
	}
	if len(requests.Items) != n || undecided > 0 || len(grants) != granted {
		problems = append(problems, fmt.Sprintf("%d requests, %d not decided, %d granted (want %d, 0, %d)", len(requests.Items), undecided, len(grants), n, granted))
	}
	held, err := e.heldByRequest(ctx)
	if err != nil {
		return append(problems, err.Error())
	}
	for uid, objs := range held {
		ns, ok := grants[uid]
		if !ok {
			problems = append(problems, fmt.Sprintf("orphaned: %v for request %s, which is not granted", objs, uid))
			continue
		}
		want := fmt.Sprintf("Namespace/%s Quota/%s LimitRange/%s NetworkPolicy/%s Lease", ns, ns, ns, ns)
		for range 2 { // the two roles of the offering (setupWorld)
			want += " RoleBinding/" + ns
		}
		if got := strings.Join(objs, " "); sortedFields(got) != sortedFields(want) {
			problems = append(problems, fmt.Sprintf("request %s holds %s, want %s", uid, got, want))
		}
	}
	for uid := range grants {
		if _, ok := held[uid]; !ok {
			problems = append(problems, fmt.Sprintf("granted request %s holds nothing", uid))
		}
	}
	sort.Strings(problems)
	return problems
}

func sortedFields(s string) string {
	f := strings.Fields(s)
	sort.Strings(f)
	return strings.Join(f, " ")
}

// heldByRequest lists everything the operator labelled for a request of the
// burst's namespace (namespaces, RoleBindings, quotas, LimitRanges,
// NetworkPolicies, grant slots), as "Kind/namespace" by request UID; a
// terminating namespace shows as "Terminating/name".
func (e *env) heldByRequest(ctx context.Context) (map[string][]string, error) {
	mine := client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelRequestNamespace: e.ns}
	held := map[string][]string{}
	var nss corev1.NamespaceList
	if err := e.c.List(ctx, &nss, mine); err != nil {
		return nil, err
	}
	for _, ns := range nss.Items {
		kind := "Namespace"
		if ns.DeletionTimestamp != nil {
			kind = "Terminating"
		}
		held[ns.Labels[v1alpha1.LabelRequestUID]] = append(held[ns.Labels[v1alpha1.LabelRequestUID]], kind+"/"+ns.Name)
	}
	children := map[string]client.ObjectList{"RoleBinding": &rbacv1.RoleBindingList{}, "Quota": &corev1.ResourceQuotaList{},
		"LimitRange": &corev1.LimitRangeList{}, "NetworkPolicy": &networkingv1.NetworkPolicyList{}}
	for kind, list := range children {
		if err := e.c.List(ctx, list, mine); err != nil {
			return nil, err
		}
		if err := meta.EachListItem(list, func(o k8sruntime.Object) error {
			obj := o.(client.Object)
			uid := obj.GetLabels()[v1alpha1.LabelRequestUID]
			held[uid] = append(held[uid], kind+"/"+obj.GetNamespace())
			return nil
		}); err != nil {
			return nil, err
		}
	}
	var slots coordinationv1.LeaseList
	if err := e.c.List(ctx, &slots, client.MatchingLabels{v1alpha1.LabelRequestNamespace: e.ns}, client.HasLabels{v1alpha1.LabelClaim}); err != nil {
		return nil, err
	}
	for _, s := range slots.Items {
		uid := ptr.Deref(s.Spec.HolderIdentity, "")
		held[uid] = append(held[uid], "Lease")
	}
	return held, nil
}

// reportFaults adds the outcome of the burst to the report and fails the
// test on any request that was not final exactly once.
func (e *env) reportFaults(rep *report, h *requestHistory, replicas []*replica, granted int, burst burstResult) {
	violations := h.violations()
	for _, v := range violations {
		e.t.Errorf("%s", v)
	}
	var requests v1alpha1.ConsumptionRequestList
	must(e.t, e.c.List(context.Background(), &requests, client.InNamespace(e.ns), client.MatchingLabels{"bench-run": "faults"}))
	phases := map[v1alpha1.RequestPhase]int{}
	for _, cr := range requests.Items {
		phases[cr.Status.Phase]++
	}
	h.mu.Lock()
	versions := 0
	for _, vs := range h.versions {
		versions += len(vs)
	}
	rep.add("F. requests", "%d created (%d creates retried), the last %s into the burst; Fulfilled %d (want %d), Denied %d; %d not final exactly once; %d versions watched, the watch resumed %d times and started again from a list %d times",
		len(requests.Items), burst.retries, burst.took.Round(100*time.Millisecond), phases[v1alpha1.RequestFulfilled], granted, phases[v1alpha1.RequestDenied], len(violations), versions, h.resumed, h.relisted)
	h.mu.Unlock()
	held, err := e.heldByRequest(context.Background())
	must(e.t, err)
	counts := map[string]int{}
	for _, objs := range held {
		for _, o := range objs {
			counts[strings.SplitN(o, "/", 2)[0]]++
		}
	}
	rep.add("F. children", "%d namespaces, %d RoleBindings, %d quotas, %d LimitRanges, %d NetworkPolicies, %d grant slots, %d terminating namespaces, held for %d requests",
		counts["Namespace"], counts["RoleBinding"], counts["Quota"], counts["LimitRange"], counts["NetworkPolicy"], counts["Lease"], counts["Terminating"], len(held))
	for _, r := range replicas {
		r.mu.Lock()
		rep.add("F. manager "+r.name, "%d processes; ends: %s", r.starts, strings.Join(r.exits, "; "))
		r.mu.Unlock()
	}
}
