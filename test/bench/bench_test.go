//go:build bench

// Package bench is the performance harness behind `make bench`: it starts a
// local control plane, runs the operator as its own process, generates load
// and prints a table of figures. See docs/performance.md.
package bench

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"math"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
	"github.com/offering-operator/offering-operator/internal/apicalls"
)

// Sizes, overridable from the environment for quick runs.
var (
	burstSize     = envInt("BENCH_BURST", 1000)
	steadyRate    = envInt("BENCH_STEADY_RATE", 20)
	steadySeconds = envInt("BENCH_STEADY_SECONDS", 120)
	scaleSize     = envInt("BENCH_SCALE", 10000)
	sweepSize     = envInt("BENCH_SWEEP", 200)
	workers       = envInt("BENCH_WORKERS", 16)
	// traceSlow prints the versions of the slowest requests of each run as the watch saw them.
	traceSlow = os.Getenv("BENCH_TRACE_SLOW") != ""
)

// envInt reads a size from the environment; 0 skips a scenario where that makes sense.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v >= 0 {
		return v
	}
	return def
}

// report collects the lines of the final table.
type report struct {
	mu   sync.Mutex
	rows [][2]string
}

func (r *report) add(k, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, [2]string{k, fmt.Sprintf(format, args...)})
	fmt.Printf("bench: %s: %s\n", k, fmt.Sprintf(format, args...))
}

func (r *report) print() {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "FIGURE\tVALUE")
	for _, row := range r.rows {
		fmt.Fprintf(w, "%s\t%s\n", row[0], row[1])
	}
	_ = w.Flush()
}

type env struct {
	t          *testing.T
	dir        string
	kubeconfig string
	cfg        *rest.Config
	c          client.WithWatch
	ns         string
	// sent counts the load generator's writes by content type.
	sent contentTypes
}

func TestBenchmark(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make bench`")
	}
	if err := v1alpha1.AddToScheme(scheme.Scheme); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: t.TempDir(), ns: "bench-consumer"}
	start := time.Now()
	e.kubeconfig = startCluster(t, e.dir)
	kubectl(t, e.kubeconfig, "apply", "--server-side", "-f", repoRoot(t)+"/config/crd/bases")
	kubectl(t, e.kubeconfig, "wait", "--for=condition=Established", "--timeout=60s", "-f", repoRoot(t)+"/config/crd/bases")
	if os.Getenv("BENCH_NO_ADMISSION_POLICY") == "" {
		kubectl(t, e.kubeconfig, "apply", "--server-side", "-k", repoRoot(t)+"/config/admission")
		waitForAdmission(t, e.kubeconfig)
	}
	var err error
	e.cfg, err = clientcmd.BuildConfigFromFlags("", e.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	e.cfg.QPS, e.cfg.Burst = 2000, 4000
	// The load generator's watch is the measurement, not part of the load:
	// no gzip of its stream, which the raw burst, without a watch, never pays.
	e.cfg.DisableCompression = true
	e.cfg.Wrap(e.sent.wrap)
	if e.c, err = client.NewWithWatch(e.cfg, client.Options{Scheme: scheme.Scheme}); err != nil {
		t.Fatal(err)
	}
	e.setupWorld()
	rep := &report{}
	rep.add("machine", "%d CPUs; sizes: burst %d, steady %d/s for %ds, scale %d, sweep %d, load workers %d",
		runtime.NumCPU(), burstSize, steadyRate, steadySeconds, scaleSize, sweepSize, workers)

	mgr := startManager(t, e.kubeconfig, e.dir)

	// 1 and 4: two operator bursts and two raw-client baselines, in the order
	// operator, raw, raw, operator. The machine's speed drifts (the same raw
	// burst took from 8.8 s to 14.4 s between runs) and each burst leaves its
	// objects in the cluster for the next; in this order both weigh on the two
	// sides alike, and the ratio is that of the sums. The first pair is
	// profiled, the second is not, so both sides pay the same profiling cost.
	beforeFams := mgr.metrics(t)
	before := apiCalls(beforeFams)
	profPath := e.dir + "/burst.cpu.pprof"
	profDone := make(chan error, 1)
	go func() { profDone <- fetch(nil, mgr.pprofURL("profile?seconds=10"), profPath) }()
	apiProfPath := e.dir + "/burst.apiserver.cpu.pprof"
	apiProfDone := make(chan error, 1)
	go func() {
		apiProfDone <- fetch(e.apiServerClient(), e.cfg.Host+"/debug/pprof/profile?seconds=10", apiProfPath)
	}()
	cpuBefore := e.cpuTimes(mgr)
	wall, lat := e.burst("burst", burstSize)
	cpuBurst := cpuDiff(cpuBefore, e.cpuTimes(mgr))
	after := apiCalls(mgr.metrics(t))
	if err := <-profDone; err == nil {
		keepProfile(profPath, "BENCH_PROFILE_OUT")
		fmt.Printf("bench: manager CPU profile, first 10s of the burst (go tool pprof -top):\n%s\n", topOf(profPath, 25))
	}
	if err := <-apiProfDone; err == nil {
		keepProfile(apiProfPath, "BENCH_APISERVER_PROFILE_OUT")
		fmt.Printf("bench: kube-apiserver CPU profile, first 10s of the burst (go tool pprof -top):\n%s\n", topOf(apiProfPath, 25))
	} else {
		fmt.Printf("bench: no kube-apiserver profile: %v\n", err)
	}
	rawProfPath := e.dir + "/raw.apiserver.cpu.pprof"
	rawProfDone := make(chan error, 1)
	go func() {
		rawProfDone <- fetch(e.apiServerClient(), e.cfg.Host+"/debug/pprof/profile?seconds=10", rawProfPath)
	}()
	cpuBefore = e.cpuTimes(mgr)
	sentBefore := e.sent.snapshot()
	base := e.baseline("raw", burstSize)
	cpuRaw := cpuDiff(cpuBefore, e.cpuTimes(mgr))
	rep.add("1. burst: raw client's writes by content type", "%s", e.sent.since(sentBefore))
	if err := <-rawProfDone; err == nil {
		keepProfile(rawProfPath, "BENCH_APISERVER_RAW_PROFILE_OUT")
		fmt.Printf("bench: kube-apiserver CPU profile, first 10s of the raw client's burst (go tool pprof -top):\n%s\n", topOf(rawProfPath, 25))
	}
	cpuBefore = e.cpuTimes(mgr)
	base2 := e.baseline("raw2", burstSize)
	cpuRaw2 := cpuDiff(cpuBefore, e.cpuTimes(mgr))
	before2 := apiCalls(mgr.metrics(t))
	cpuBefore = e.cpuTimes(mgr)
	wall2, lat2 := e.burst("burst2", burstSize)
	cpuBurst2 := cpuDiff(cpuBefore, e.cpuTimes(mgr))
	afterFams2 := mgr.metrics(t)
	after2 := apiCalls(afterFams2)

	rep.add("1. burst: operator, all Ready", "%s for %d requests (%.0f grants/s); creation-to-Ready p50 %s p99 %s",
		wall.Round(time.Millisecond), burstSize, float64(burstSize)/wall.Seconds(), pct(lat, 50), pct(lat, 99))
	rep.add("1. burst: raw client, same children", "%s for %d sets of 6 objects", base.Round(time.Millisecond), burstSize)
	rep.add("1. burst: CPU, operator", "%s", cpuBurst)
	rep.add("1. burst: CPU, raw client", "%s", cpuRaw)
	rep.add("1. burst: second pair, raw first", "raw client %s (%s); operator %s, creation-to-Ready p50 %s p99 %s (%s)",
		base2.Round(time.Millisecond), cpuRaw2, wall2.Round(time.Millisecond), pct(lat2, 50), pct(lat2, 99), cpuBurst2)
	rep.add("1. burst: ratio operator/raw", "%.2f over both pairs (target <= 1.5); %.2f in the first, %.2f in the second",
		(wall+wall2).Seconds()/(base+base2).Seconds(), wall.Seconds()/base.Seconds(), wall2.Seconds()/base2.Seconds())
	c := diffCalls(before, after)
	c2 := diffCalls(before2, after2)
	grants := float64(2 * burstSize)
	per := func(v float64) float64 { return v / grants }
	rep.add("4. writes per grant", "%.2f stored writes (target <= 7.1: 6 children + 1 status, events included), plus %.2f SubjectAccessReviews (answered, not stored): %.2f calls; %.3f writes refused (conflicts, errors); live GETs per grant %.2f (both operator bursts)",
		per(c.writes+c2.writes), per(c.reviews+c2.reviews), per(c.writes+c2.writes+c.reviews+c2.reviews), per(c.refused+c2.refused), per(c.gets+c2.gets))
	rep.add("4. writes by verb and resource", "%s (first burst); %s (second burst)", c.byKind, c2.byKind)
	requestReconciles := map[string]string{"controller": "consumptionrequest"}
	rep.add("4. reconciles per grant", "%.2f request reconciles", per(sum(afterFams2, "controller_runtime_reconcile_total", requestReconciles)-
		sum(beforeFams, "controller_runtime_reconcile_total", requestReconciles)))

	// 1b: the same burst under an agreement with maxGrants equal to it, right
	// after the second unlimited burst, which it is compared with.
	limWall, limLat := e.burst(limitedAgreement, burstSize)
	rep.add("1b. burst: limited (maxGrants = burst), all Ready", "%s for %d requests, creation-to-Ready p50 %s p99 %s; %.2f times the second unlimited burst (target <= 1.2)",
		limWall.Round(time.Millisecond), burstSize, pct(limLat, 50), pct(limLat, 99), limWall.Seconds()/wall2.Seconds())

	// 2: steady rate.
	if steadySeconds > 0 && steadyRate > 0 {
		lat = e.steady("steady", steadyRate, time.Duration(steadySeconds)*time.Second)
		rep.add("2. steady: creation-to-Ready", "%d requests at %d/s: p50 %s p95 %s p99 %s (target p99 <= 300ms)",
			len(lat), steadyRate, pct(lat, 50), pct(lat, 95), pct(lat, 99))
	}
	e.steadyHigh(rep)

	// 6: resize in place (test/bench/resize_test.go).
	if resizeSize > 0 {
		e.resize(rep, mgr, resizeSize)
	}

	// 5: concurrency sweep, each point on a fresh manager.
	mgr.stop()
	for _, c := range []int{1, 2, 4, 8, 16, 32} {
		if sweepSize == 0 {
			break
		}
		m := startManager(t, e.kubeconfig, e.dir, fmt.Sprintf("--max-concurrent-reconciles=%d", c))
		// The burst starts once the new manager has synced its caches and
		// passed over the requests already there: otherwise each point
		// measures a restart over thousands of grants more than its workers.
		before := e.countRequests()
		_, pass := e.passOver(m, before)
		w, l := e.burst(fmt.Sprintf("sweep-%d", c), sweepSize)
		rep.add(fmt.Sprintf("5. sweep: MaxConcurrentReconciles=%d", c), "%s for %d requests (%.0f/s), p99 %s; the new manager had passed over the %d requests before it in %s",
			w.Round(time.Millisecond), sweepSize, float64(sweepSize)/w.Seconds(), pct(l, 99), before, pass.Round(time.Millisecond))
		m.stop()
	}

	// 3: scale to scaleSize granted requests, memory, then a restart; then
	// the same at scaleLargeSize (test/bench/scale_test.go).
	e.scalePoint(rep, "3", "scale", scaleSize, 150, "BENCH_HEAP_PROFILE_OUT")
	if scaleLargeSize > 0 {
		e.scalePoint(rep, "3b", "scalelarge", scaleLargeSize, 400, "BENCH_HEAP_PROFILE_LARGE_OUT")
	}

	// The API server's own latency over the whole run.
	rep.add("API server request latency", "%s", e.apiServerLatency())
	rep.add("total bench time", "%s", time.Since(start).Round(time.Second))
	fmt.Println()
	rep.print()
}

// setupWorld creates the consumer namespace, two grantable roles, an offering
// whose item creates every kind of child, and an unlimited agreement.
func (e *env) setupWorld() {
	t, ctx := e.t, context.Background()
	must(t, e.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}))
	for _, name := range []string{"bench-edit", "bench-view"} {
		must(t, e.c.Create(ctx, &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.LabelGrantable: "true"}},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps", "pods"}, Verbs: []string{"get", "list", "create"}}},
		}))
	}
	must(t, e.c.Create(ctx, &v1alpha1.ServiceOffering{
		ObjectMeta: metav1.ObjectMeta{Name: "bench"},
		Spec: v1alpha1.ServiceOfferingSpec{
			Provider: v1alpha1.Provider{Name: "Bench"}, ProviderNamespace: "default",
			Resources: []v1alpha1.ResourceItem{{
				Name: "space", ClusterRoles: []v1alpha1.ClusterRoleName{"bench-edit", "bench-view"},
				Quota:            corev1.ResourceList{corev1.ResourcePods: resource.MustParse("10")},
				Limits:           []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, DefaultRequest: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}},
				NetworkIsolation: v1alpha1.NetworkIsolationNamespace, RevocationPolicy: v1alpha1.RevocationPolicyDelete,
			}},
		},
	}))
	// The limited agreement allows exactly one burst: every grant is claimed
	// against the limit (1b).
	for name, limit := range map[string]*int32{"bench": nil, limitedAgreement: ptr.To(int32(burstSize))} {
		must(t, e.c.Create(ctx, &v1alpha1.ServiceAgreement{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
			Spec: v1alpha1.ServiceAgreementSpec{
				Offering:       "bench",
				Consumer:       v1alpha1.Consumer{Name: "Bench", Subjects: []v1alpha1.Subject{{Kind: v1alpha1.SubjectGroup, Name: "bench-team"}}},
				Entitlements:   v1alpha1.Entitlements{Resources: []v1alpha1.ResourceEntitlement{{Name: "space", MaxGrants: limit}}},
				ApprovalPolicy: v1alpha1.ApprovalAutomatic,
			},
		}))
	}
}

// limitedAgreement has maxGrants equal to the burst; the run of that name
// requests under it.
const limitedAgreement = "limited"

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// readyWatcher records, from watch events, when each request of a run first becomes Ready.
type readyWatcher struct {
	mu      sync.Mutex
	readyAt map[string]time.Time
	notify  chan struct{}
	// restarts counts the watches the server ended before the run did.
	restarts int
	// trace holds every version of each request seen, with BENCH_TRACE_SLOW.
	trace map[string][]string
}

func (e *env) watchReady(run string) (*readyWatcher, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	rw := &readyWatcher{readyAt: map[string]time.Time{}, notify: make(chan struct{}, 1), trace: map[string][]string{}}
	sel := []client.ListOption{client.InNamespace(e.ns), client.MatchingLabels{"bench-run": run}}
	seen := func(cr *v1alpha1.ConsumptionRequest) {
		if traceSlow {
			var conds []string
			for _, c := range cr.Status.Conditions {
				conds = append(conds, c.Type+"="+string(c.Status)+"/"+c.Reason)
			}
			rw.mu.Lock()
			rw.trace[cr.Name] = append(rw.trace[cr.Name], fmt.Sprintf("%s rv=%s finalizers=%v %v",
				time.Now().Format("15:04:05.000"), cr.ResourceVersion, cr.Finalizers, conds))
			rw.mu.Unlock()
		}
		if !meta.IsStatusConditionTrue(cr.Status.Conditions, v1alpha1.ConditionReady) {
			return
		}
		rw.mu.Lock()
		if _, ok := rw.readyAt[cr.Name]; !ok {
			rw.readyAt[cr.Name] = time.Now()
		}
		rw.mu.Unlock()
		select {
		case rw.notify <- struct{}{}:
		default:
		}
	}
	// Watch from the start (every request of the run is created after this).
	// When the server ends the watch, list what was missed and watch again
	// from the list's resourceVersion, as a reflector would: no Ready is lost.
	w, err := e.c.Watch(ctx, &v1alpha1.ConsumptionRequestList{}, sel...)
	if err != nil {
		e.t.Fatal(err)
	}
	go func() {
		for ctx.Err() == nil {
			for ev := range w.ResultChan() {
				if ev.Type != watch.Added && ev.Type != watch.Modified {
					continue
				}
				if cr, ok := ev.Object.(*v1alpha1.ConsumptionRequest); ok {
					seen(cr)
				}
			}
			if ctx.Err() != nil {
				return
			}
			rw.mu.Lock()
			rw.restarts++
			rw.mu.Unlock()
			var list v1alpha1.ConsumptionRequestList
			if err := e.c.List(ctx, &list, sel...); err != nil {
				time.Sleep(time.Second)
				continue
			}
			for i := range list.Items {
				seen(&list.Items[i])
			}
			opts := append([]client.ListOption{&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}}}, sel...)
			if w, err = e.c.Watch(ctx, &v1alpha1.ConsumptionRequestList{}, opts...); err != nil {
				time.Sleep(time.Second)
				w = watch.NewEmptyWatch()
			}
		}
	}()
	return rw, func() {
		cancel() // ends the current watch too
		rw.mu.Lock()
		defer rw.mu.Unlock()
		if rw.restarts > 0 {
			fmt.Printf("bench: the watch of run %s was restarted %d time(s)\n", run, rw.restarts)
		}
	}
}

func (rw *readyWatcher) count() int {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return len(rw.readyAt)
}

func (e *env) request(run string, i int) *v1alpha1.ConsumptionRequest {
	agreement := v1alpha1.AgreementName("bench")
	if run == limitedAgreement {
		agreement = limitedAgreement
	}
	return &v1alpha1.ConsumptionRequest{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%05d", run, i), Namespace: e.ns, Labels: map[string]string{"bench-run": run}},
		Spec:       v1alpha1.ConsumptionRequestSpec{Agreement: agreement, Resource: &v1alpha1.ResourceRequest{Name: "space"}},
	}
}

// burst creates n requests with the load workers and waits until all are
// Ready. It returns the wall time from the first create to the last Ready,
// and each request's creation-to-Ready latency.
func (e *env) burst(run string, n int) (time.Duration, []time.Duration) {
	rw, stop := e.watchReady(run)
	defer stop()
	created := make([]time.Time, n)
	start := time.Now()
	parallel(n, func(i int) {
		created[i] = time.Now()
		must(e.t, e.c.Create(context.Background(), e.request(run, i)))
	})
	e.waitAll(rw, n, 10*time.Minute)
	return e.latencies(rw, run, created, start)
}

func (e *env) latencies(rw *readyWatcher, run string, created []time.Time, start time.Time) (time.Duration, []time.Duration) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	var last time.Time
	lat := make([]time.Duration, 0, len(created))
	for i, c := range created {
		at := rw.readyAt[fmt.Sprintf("%s-%05d", run, i)]
		if at.After(last) {
			last = at
		}
		lat = append(lat, at.Sub(c))
	}
	if traceSlow {
		names := make([]int, len(created))
		for i := range names {
			names[i] = i
		}
		key := func(i int) time.Duration { return rw.readyAt[fmt.Sprintf("%s-%05d", run, i)].Sub(created[i]) }
		sort.Slice(names, func(a, b int) bool { return key(names[a]) > key(names[b]) })
		for _, i := range names[:min(3, len(names))] {
			name := fmt.Sprintf("%s-%05d", run, i)
			fmt.Printf("bench: slow request %s created %s, Ready after %s:\n  %s\n", name, created[i].Format("15:04:05.000"), key(i), strings.Join(rw.trace[name], "\n  "))
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return last.Sub(start), lat
}

func (e *env) waitAll(rw *readyWatcher, n int, timeout time.Duration) {
	deadline := time.After(timeout)
	for rw.count() < n {
		select {
		case <-rw.notify:
		case <-time.After(time.Second):
		case <-deadline:
			e.t.Fatalf("only %d of %d requests Ready after %s", rw.count(), n, timeout)
		}
	}
}

// steady creates rate requests per second for d, each on its own schedule;
// run names them.
func (e *env) steady(run string, rate int, d time.Duration) []time.Duration {
	n := int(float64(rate) * d.Seconds())
	rw, stop := e.watchReady(run)
	defer stop()
	created := make([]time.Time, n)
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			created[i] = time.Now()
			must(e.t, e.c.Create(context.Background(), e.request(run, i)))
		}(i)
	}
	wg.Wait()
	e.waitAll(rw, n, 5*time.Minute)
	_, lat := e.latencies(rw, run, created, start)
	return lat
}

// baseline creates, with a plain client and the same workers, the six
// children a grant has, for n grants, as the operator writes them: the same
// six labels with values of the same length (managed-by names the baseline,
// which keeps its objects out of the manager's caches), the namespace's
// agreement annotation and a grant marker of the same length, and names of
// the same shape.
func (e *env) baseline(run string, n int) time.Duration {
	ctx := context.Background()
	subjects := []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "bench-team"}}
	start := time.Now()
	parallel(n, func(i int) {
		name := fmt.Sprintf("%s-%05d", run, i)
		ns := fmt.Sprintf("%s-%s-%06x", e.ns, name, i)
		lbl := map[string]string{
			v1alpha1.LabelManagedBy:        "offering-baseline",
			v1alpha1.LabelRequestNamespace: e.ns,
			v1alpha1.LabelRequestName:      name,
			v1alpha1.LabelRequestUID:       string(uuid.NewUUID()),
			v1alpha1.LabelOffering:         "bench",
			v1alpha1.LabelItem:             "space",
		}
		// A value of the size of the operator's marker (43 characters of base64url).
		marker := sha256.Sum256([]byte(lbl[v1alpha1.LabelRequestUID] + ns))
		must(e.t, e.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: lbl,
			Annotations: map[string]string{v1alpha1.AnnotationAgreement: e.ns + "/bench",
				v1alpha1.AnnotationGrantMarker: base64.RawURLEncoding.EncodeToString(marker[:])}}}))
		for _, role := range []string{"bench-edit", "bench-view"} {
			must(e.t, e.c.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("offering-%s-%06x", role, i), Namespace: ns, Labels: lbl},
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}, Subjects: subjects}))
		}
		must(e.t, e.c.Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "offering-quota", Namespace: ns, Labels: lbl},
			Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("10")}}}))
		must(e.t, e.c.Create(ctx, &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "offering-limits", Namespace: ns, Labels: lbl},
			Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, DefaultRequest: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}}}))
		must(e.t, e.c.Create(ctx, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "offering-isolation", Namespace: ns, Labels: lbl},
			Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}}}}}))
	})
	return time.Since(start)
}

// parallel runs fn(0..n-1) on the load workers.
func parallel(n int, fn func(int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

func (e *env) countRequests() int {
	var list v1alpha1.ConsumptionRequestList
	must(e.t, e.c.List(context.Background(), &list, client.InNamespace(e.ns)))
	return len(list.Items)
}

func (e *env) countGranted() int {
	var list v1alpha1.ConsumptionRequestList
	must(e.t, e.c.List(context.Background(), &list, client.InNamespace(e.ns)))
	n := 0
	for i := range list.Items {
		if meta.IsStatusConditionTrue(list.Items[i].Status.Conditions, v1alpha1.ConditionReady) {
			n++
		}
	}
	return n
}

// countCached is the number of objects the manager caches: requests,
// agreements, offerings, ClusterRoles, and the managed children.
func (e *env) countCached() int {
	ctx := context.Background()
	managed := client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}
	count := func(list client.ObjectList, opts ...client.ListOption) int {
		must(e.t, e.c.List(ctx, list, opts...))
		return meta.LenList(list)
	}
	return count(&v1alpha1.ConsumptionRequestList{}) + count(&v1alpha1.ServiceAgreementList{}) + count(&v1alpha1.ServiceOfferingList{}) +
		count(&rbacv1.ClusterRoleList{}) + count(&corev1.NamespaceList{}, managed) + count(&rbacv1.RoleBindingList{}, managed) +
		count(&corev1.ResourceQuotaList{}, managed) + count(&corev1.LimitRangeList{}, managed) + count(&networkingv1.NetworkPolicyList{}, managed)
}

// fullPass waits until the restarted manager has reconciled every request
// once and its queue is empty; it returns the time to the first reconcile
// (caches synced), to the full pass, and the API calls made meanwhile.
func (e *env) fullPass(m *manager, requests int) (time.Duration, time.Duration, map[string]float64) {
	synced, pass := e.passOver(m, requests)
	time.Sleep(3 * time.Second) // roll-ups are batched: give them time to (not) write
	return synced, pass, apiCalls(m.metrics(e.t))
}

// passOver waits until a freshly started manager has reconciled requests
// requests and its queue is empty; it returns the time from its start to the
// first reconcile (caches synced) and to the end of that pass.
func (e *env) passOver(m *manager, requests int) (time.Duration, time.Duration) {
	var synced time.Duration
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		fams := m.metrics(e.t)
		done := sum(fams, "controller_runtime_reconcile_total", map[string]string{"controller": "consumptionrequest"})
		if synced == 0 && done > 0 {
			synced = time.Since(m.started)
		}
		depth := sum(fams, "workqueue_depth", map[string]string{"name": "consumptionrequest"})
		if done >= float64(requests) && depth == 0 {
			return synced, time.Since(m.started)
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Fatalf("no full pass over %d requests within 5 minutes", requests)
	return 0, 0
}

// calls are the API calls of an interval, from two scrapes of
// offering_operator_api_requests_total.
type calls struct {
	// writes are calls that change what the API server stores (create,
	// update, patch, apply, delete), reviews excluded.
	writes float64
	// reviews are SubjectAccessReviews (and other *reviews): POSTs whose
	// answer is computed by the API server and never stored.
	reviews float64
	// gets are live GETs (not from the cache).
	gets float64
	// refused are writes and reviews the API server did not carry out: a
	// 409 conflict, another error status, or no answer. Not in writes.
	refused float64
	// byKind lists every write and review by verb and resource, and the
	// status code of those refused.
	byKind string
}

func diffCalls(before, after map[string]float64) calls {
	var c calls
	var parts []string
	for k, v := range after {
		d := v - before[k]
		if d <= 0 {
			continue
		}
		// k is "verb resource", with " code" after it when the call was refused (apiCalls).
		f := strings.Fields(k)
		write := apicalls.IsWrite(f[0])
		switch {
		case write && len(f) > 2:
			c.refused += d
		case write && strings.HasSuffix(f[1], "reviews"):
			c.reviews += d
		case write:
			c.writes += d
		case f[0] == "get":
			c.gets += d
		}
		if write {
			parts = append(parts, fmt.Sprintf("%s=%.0f", k, d))
		}
	}
	sort.Strings(parts)
	c.byKind = "[" + strings.Join(parts, ", ") + "]"
	return c
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	return sorted[i].Round(time.Millisecond)
}

// apiServerLatency summarises apiserver_request_duration_seconds for mutating
// and read verbs, from the API server's own metrics.
func (e *env) apiServerLatency() string {
	fams := scrape(e.t, e.cfg.Host+"/metrics", e.apiServerClient())
	f := fams["apiserver_request_duration_seconds"]
	if f == nil {
		return "no apiserver_request_duration_seconds"
	}
	type agg struct {
		count   uint64
		sum     float64
		buckets map[float64]uint64
	}
	groups := map[string]*agg{"write": {buckets: map[float64]uint64{}}, "read": {buckets: map[float64]uint64{}}}
	for _, m := range f.GetMetric() {
		verb := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == "verb" {
				verb = l.GetValue()
			}
		}
		g := groups["read"]
		switch verb {
		case "WATCH", "CONNECT":
			continue
		case "POST", "PUT", "PATCH", "DELETE", "APPLY":
			g = groups["write"]
		}
		h := m.GetHistogram()
		g.count += h.GetSampleCount()
		g.sum += h.GetSampleSum()
		for _, b := range h.GetBucket() {
			g.buckets[b.GetUpperBound()] += b.GetCumulativeCount()
		}
	}
	var out []string
	for _, name := range []string{"write", "read"} {
		g := groups[name]
		if g.count == 0 {
			continue
		}
		bounds := make([]float64, 0, len(g.buckets))
		for b := range g.buckets {
			bounds = append(bounds, b)
		}
		sort.Float64s(bounds)
		q := func(p float64) string {
			target := uint64(math.Ceil(p * float64(g.count)))
			for _, b := range bounds {
				if g.buckets[b] >= target {
					return fmt.Sprintf("<=%gs", b)
				}
			}
			return "+Inf"
		}
		out = append(out, fmt.Sprintf("%s: %d requests, mean %.1fms, p50 %s, p99 %s", name, g.count, 1000*g.sum/float64(g.count), q(0.5), q(0.99)))
	}
	return strings.Join(out, "; ")
}

// apiServerClient is an HTTP client with the admin's credentials, for the
// API server's /metrics and /debug/pprof.
func (e *env) apiServerClient() *http.Client {
	tr, err := rest.TransportFor(e.cfg)
	must(e.t, err)
	if ht, ok := tr.(*http.Transport); ok && ht.TLSClientConfig == nil {
		ht.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}
