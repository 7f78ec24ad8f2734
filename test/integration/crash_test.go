// Package integration holds tests that run whole managers against a real API
// server (envtest) and stop them on purpose: crash-at-every-write recovery.
package integration

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
	"github.com/offering-operator/offering-operator/controllers"
	"github.com/offering-operator/offering-operator/internal/admissiontest"
	"github.com/offering-operator/offering-operator/internal/testutil"
)

var (
	cfg   *rest.Config
	admin client.Client
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run the tests with `make test`")
		return 1
	}
	logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapLevelError)))
	if err := v1alpha1.AddToScheme(scheme.Scheme); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join("..", "..", "config", "crd", "bases")}, ErrorIfCRDPathMissing: true}
	var err error
	if cfg, err = env.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	// Managers and the test client are rate-limited as main.go sets the
	// manager (--kube-api-qps, --kube-api-burst), not client-go's 5/10.
	cfg.QPS, cfg.Burst = 200, 400
	if admin, err = client.New(cfg, client.Options{Scheme: scheme.Scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The admission policies of config/admission, as `make install` installs
	// them, but the optional one that adds the finalizer at creation: these
	// tests hold the operator's own first write (the finalizer) and need it.
	if err := admissiontest.Install(context.Background(), admin, filepath.Join("..", "..", "config", "admission"),
		"offering-operator-request-finalizer"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := admissiontest.Wait(context.Background(), cfg, admin, "admission-probe", time.Minute); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The grant marker key exists, as after the operator's first start: the
	// crash tests inject their faults into the writes of reconciles, and a
	// manager that failed to create the key at Setup would not start at all.
	key := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: controllers.GrantKeySecret},
		Data: map[string][]byte{"key": []byte(rand.Text())}}
	if err := admin.Create(context.Background(), key); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

var errInjected = errors.New("injected fault: the manager crashes here")

// faultyManager runs the controllers with a client whose k-th write fails and
// stops the manager at that moment, as a crash would. k <= 0 means no fault.
// Writes that spare names are never failed and not counted in k.
type faultyManager struct {
	// writes counts every write, faultable the ones k counts.
	writes, faultable atomic.Int64
	crashed           atomic.Bool
	cancel            context.CancelFunc
	done              chan error
	// log names the writes in order, for the report of a fault-free run.
	mu  sync.Mutex
	log []string
}

// describe names a write: the operation, the kind and the object.
func describe(op string, obj any) string {
	kind := fmt.Sprintf("%T", obj)
	if u, ok := obj.(interface{ GetKind() string }); ok && u.GetKind() != "" {
		kind = u.GetKind()
	}
	if o, ok := obj.(interface {
		GetNamespace() string
		GetName() string
	}); ok {
		return fmt.Sprintf("%s %s %s/%s", op, strings.TrimPrefix(kind, "*"), o.GetNamespace(), o.GetName())
	}
	return op + " " + kind
}

// writeLog returns the writes issued so far.
func (fm *faultyManager) writeLog() []string {
	fm.mu.Lock()
	defer fm.mu.Unlock()
	return slices.Clone(fm.log)
}

func startManager(t *testing.T, k int64, spare func(write string) bool) *faultyManager {
	t.Helper()
	fm := &faultyManager{done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	fm.cancel = cancel
	write := func(op string, obj any) error {
		w := describe(op, obj)
		spared := spare != nil && spare(w)
		if spared {
			w += " (spared)"
		}
		fm.mu.Lock()
		fm.log = append(fm.log, w)
		fm.mu.Unlock()
		fm.writes.Add(1)
		if !spared {
			if n := fm.faultable.Add(1); k > 0 && n == k {
				fm.crashed.Store(true)
				cancel()
				return errInjected
			}
		}
		if fm.crashed.Load() {
			return errInjected // nothing gets through once crashed
		}
		return nil
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache: controllers.CacheOptions(),
		// Managers follow each other in one process: their controllers share names.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		NewClient: func(config *rest.Config, options client.Options) (client.Client, error) {
			c, err := client.NewWithWatch(config, options)
			if err != nil {
				return nil, err
			}
			return interceptor.NewClient(c, interceptor.Funcs{
				Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
					if err := write("create", obj); err != nil {
						return err
					}
					return c.Create(ctx, obj, opts...)
				},
				Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
					if err := write("update", obj); err != nil {
						return err
					}
					return c.Update(ctx, obj, opts...)
				},
				Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
					if err := write("patch", obj); err != nil {
						return err
					}
					return c.Patch(ctx, obj, p, opts...)
				},
				Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
					if err := write("delete", obj); err != nil {
						return err
					}
					return c.Delete(ctx, obj, opts...)
				},
				SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
					if err := write("patch "+sub, obj); err != nil {
						return err
					}
					return c.SubResource(sub).Patch(ctx, obj, p, opts...)
				},
				SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
					if err := write("update "+sub, obj); err != nil {
						return err
					}
					return c.SubResource(sub).Update(ctx, obj, opts...)
				},
				SubResourceApply: func(ctx context.Context, c client.Client, sub string, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
					if err := write("apply "+sub, obj); err != nil {
						return err
					}
					return c.SubResource(sub).Apply(ctx, obj, opts...)
				},
			}), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := controllers.Setup(mgr, controllers.Options{MaxConcurrentReconciles: 2, RollupDelay: 20 * time.Millisecond, VerifyTimeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	go func() { fm.done <- mgr.Start(ctx) }()
	return fm
}

// stop cancels the manager and waits for it. A manager that crashed on an
// injected fault may report it; any other error is a failure.
func (fm *faultyManager) stop(t *testing.T) {
	t.Helper()
	fm.cancel()
	if err := <-fm.done; err != nil && !errors.Is(err, errInjected) {
		t.Errorf("manager exited with %v", err)
	}
}

// world is one isolated set of objects: a consumer namespace, a provider
// namespace, a role, an offering with one access item, an agreement with an
// entitlement of one grant, and a request for it. Options (withGoods,
// withAction) add an item of another kind and make the request ask for it.
type world struct {
	ns, provider, role, offering string
	request                      *v1alpha1.ConsumptionRequest
}

// worldOption changes a world's offering, agreement and request before they
// are created, and returns the objects they need, which are created first.
type worldOption func(w *world, off *v1alpha1.ServiceOffering, agr *v1alpha1.ServiceAgreement) []client.Object

var worldSeq atomic.Int64

func newWorld(t *testing.T, opts ...worldOption) *world {
	t.Helper()
	n := worldSeq.Add(1)
	w := &world{ns: fmt.Sprintf("crash-%d", n), provider: fmt.Sprintf("crash-%d-provider", n),
		role: fmt.Sprintf("crash-role-%d", n), offering: fmt.Sprintf("crash-offering-%d", n)}
	ctx := context.Background()
	off := &v1alpha1.ServiceOffering{ObjectMeta: metav1.ObjectMeta{Name: w.offering}, Spec: v1alpha1.ServiceOfferingSpec{
		Provider: v1alpha1.Provider{Name: "Crash"}, ProviderNamespace: v1alpha1.NamespaceName(w.provider),
		Resources: []v1alpha1.ResourceItem{{Name: "space", ClusterRoles: []v1alpha1.ClusterRoleName{v1alpha1.ClusterRoleName(w.role)},
			Quota:            corev1.ResourceList{corev1.ResourcePods: resource.MustParse("3")},
			Limits:           []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, DefaultRequest: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m")}}},
			NetworkIsolation: v1alpha1.NetworkIsolationNamespace, RevocationPolicy: v1alpha1.RevocationPolicyDelete}},
	}}
	agr := &v1alpha1.ServiceAgreement{ObjectMeta: metav1.ObjectMeta{Name: "agreement", Namespace: w.ns}, Spec: v1alpha1.ServiceAgreementSpec{
		Offering:       v1alpha1.OfferingName(w.offering),
		Consumer:       v1alpha1.Consumer{Name: "Crash", Subjects: []v1alpha1.Subject{{Kind: v1alpha1.SubjectUser, Name: "crash-user-" + w.ns}}},
		Entitlements:   v1alpha1.Entitlements{Resources: []v1alpha1.ResourceEntitlement{{Name: "space", MaxGrants: ptr.To[int32](1)}}},
		ApprovalPolicy: v1alpha1.ApprovalAutomatic,
	}}
	w.request = &v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{Name: "grant", Namespace: w.ns},
		Spec: v1alpha1.ConsumptionRequestSpec{Agreement: "agreement", Resource: &v1alpha1.ResourceRequest{Name: "space"}}}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.ns}},
		// Marked by a cluster admin: goods are read and action Jobs run (as default) only there.
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.provider,
			Labels:      map[string]string{v1alpha1.LabelProviderNamespace: "true"},
			Annotations: map[string]string{v1alpha1.AnnotationActionServiceAccounts: "default"}}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: w.role, Labels: map[string]string{v1alpha1.LabelGrantable: "true"}},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}}},
	}
	for _, o := range opts {
		objs = append(objs, o(w, off, agr)...)
	}
	for _, o := range append(objs, off, agr, w.request) {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatalf("creating %T: %v", o, err)
		}
	}
	return w
}

var eventually = testutil.Eventually

// path is a course the operator takes with a world, from where a test put it
// to an end state.
type path struct {
	// drive plays the actors other than the operator (the consumer, the job
	// controller) when the world's state calls for them; nil when there are none.
	drive func() error
	// reached returns nil once the end state is reached, otherwise what is missing.
	reached func() error
	// check compares the end state, after fault k, with that of a fault-free run.
	check func(t *testing.T, k int64)
	// spare names the writes that are not crashed on (nil: none).
	spare func(write string) bool
}

// agreementOrOfferingStatus names the writes of an agreement's or offering's
// own status (phase, readiness, roll-ups of their requests), which
// TestCrashAtEveryWriteOnGrant and ...OnRevoke crash on. The allocation ledger
// is written with a patch, not an apply: it is not spared.
func agreementOrOfferingStatus(write string) bool {
	return strings.HasPrefix(write, "apply status ServiceAgreement ") || strings.HasPrefix(write, "apply status ServiceOffering ")
}

// step drives the path once and reports whether its end is reached.
func (p path) step() error {
	if p.drive != nil {
		if err := p.drive(); err != nil {
			return err
		}
	}
	return p.reached()
}

// settle runs a fault-free manager along the paths, driving them, and stops
// it once they have all reached their end.
func settle(t *testing.T, what string, paths ...path) {
	t.Helper()
	m := startManager(t, 0, nil)
	defer m.stop(t)
	for _, p := range paths {
		eventually(t, 30*time.Second, what, p.step)
	}
}

// runUntilCrashOrQuiet runs a manager that fails its k-th write (spares aside)
// along p. It returns true when the fault fired, false when p reached its end
// with fewer than k writes (every step has then been covered), and the writes
// issued.
func runUntilCrashOrQuiet(t *testing.T, k int64, p path) (bool, []string) {
	t.Helper()
	fm := startManager(t, k, p.spare)
	defer fm.stop(t)
	quietSince, last := time.Now(), int64(-1)
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if fm.crashed.Load() {
			return true, fm.writeLog()
		}
		if n := fm.writes.Load(); n != last {
			last, quietSince = n, time.Now()
		}
		if err = p.step(); err == nil && time.Since(quietSince) > time.Second {
			return false, fm.writeLog()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("fault %d: neither crashed nor reached the end within 30s (writes %q): %v", k, fm.writeLog(), err)
	return false, nil
}

// crashAtEveryWrite fails the k-th write of a manager for k = 1, 2, ... while
// it takes the path that start sets up (afresh for every k), stops it there,
// and checks that a fresh manager (new cache) takes the path to the end state
// of a fault-free run, with nothing leaked or duplicated, until k passes the
// number of writes the path takes.
func crashAtEveryWrite(t *testing.T, what string, maxWrites int64, start func(t *testing.T) path) {
	t.Helper()
	if admin == nil {
		t.Skip("integration test: run without -short, through `make test`")
	}
	for k := int64(1); ; k++ {
		p := start(t)
		crashed, writes := runUntilCrashOrQuiet(t, k, p)
		settle(t, fmt.Sprintf("fault %d: %s after recovery", k, what), p)
		p.check(t, k)
		if !crashed {
			every := "every one"
			if p.spare != nil {
				every += " not marked spared"
			}
			t.Logf("%s took %d writes; %s was crashed on and recovered from:\n\t%s", what, len(writes), every, strings.Join(writes, "\n\t"))
			return
		}
		if k > maxWrites {
			t.Fatalf("more than %d writes for %s", maxWrites, what)
		}
	}
}

// current reads the world's request.
func (w *world) current() (*v1alpha1.ConsumptionRequest, error) {
	var cr v1alpha1.ConsumptionRequest
	err := admin.Get(context.Background(), client.ObjectKeyFromObject(w.request), &cr)
	return &cr, err
}

func (w *world) get(t *testing.T) *v1alpha1.ConsumptionRequest {
	t.Helper()
	cr, err := w.current()
	if err != nil {
		t.Fatal(err)
	}
	return cr
}

func (w *world) ready() error {
	cr, err := w.current()
	if err != nil {
		return err
	}
	if !meta.IsStatusConditionTrue(cr.Status.Conditions, v1alpha1.ConditionReady) {
		return fmt.Errorf("not Ready (phase %s)", cr.Status.Phase)
	}
	return nil
}

// inPhase is reached when the request is in phase p.
func (w *world) inPhase(p v1alpha1.RequestPhase) func() error {
	return func() error {
		cr, err := w.current()
		if err == nil && cr.Status.Phase != p {
			err = fmt.Errorf("phase %q, want %s", cr.Status.Phase, p)
		}
		return err
	}
}

func (w *world) gone() error {
	err := admin.Get(context.Background(), client.ObjectKeyFromObject(w.request), &v1alpha1.ConsumptionRequest{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		err = errors.New("still there")
	}
	return err
}

// deleteRequest deletes the world's request and returns it as it was.
func (w *world) deleteRequest(t *testing.T) *v1alpha1.ConsumptionRequest {
	t.Helper()
	cr := w.get(t)
	if err := admin.Delete(context.Background(), cr); err != nil {
		t.Fatal(err)
	}
	return cr
}

// assertAllocation checks the agreement's allocation ledger: exactly the
// request's allocation when held, otherwise none.
func (w *world) assertAllocation(t *testing.T, k int64, uid types.UID, held bool) {
	t.Helper()
	switch a := w.grantHolders(t); {
	case held && (len(a) != 1 || a[0] != string(uid)):
		t.Fatalf("fault %d: grant slots held by %v, want exactly the request's", k, a)
	case !held && len(a) != 0:
		t.Fatalf("fault %d: grant slot not released: %v", k, a)
	}
}

// grantHolders lists the UIDs of the requests holding grant slots (Leases
// in the operator's namespace, "default" out of a cluster) under w's agreement.
func (w *world) grantHolders(t *testing.T) []string {
	t.Helper()
	var slots coordinationv1.LeaseList
	if err := admin.List(context.Background(), &slots, client.InNamespace(metav1.NamespaceDefault),
		client.MatchingLabels{v1alpha1.LabelRequestNamespace: w.ns}, client.HasLabels{v1alpha1.LabelClaim}); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range slots.Items {
		out = append(out, ptr.Deref(s.Spec.HolderIdentity, ""))
	}
	return out
}

// assertGranted checks the state of a fault-free grant: one namespace for
// the request, exactly its children, one allocation.
func (w *world) assertGranted(t *testing.T, k int64) {
	t.Helper()
	ctx := context.Background()
	cr := w.get(t)
	if cr.Status.Phase != v1alpha1.RequestFulfilled || cr.Status.Grant == nil {
		t.Fatalf("fault %d: phase %s grant %+v", k, cr.Status.Phase, cr.Status.Grant)
	}
	owned := client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)}
	var nss corev1.NamespaceList
	if err := admin.List(ctx, &nss, owned); err != nil || len(nss.Items) != 1 || nss.Items[0].Name != cr.Status.Grant.Namespace {
		t.Fatalf("fault %d: namespaces for the request %v (%v), want exactly %s", k, names(&nss), err, cr.Status.Grant.Namespace)
	}
	for _, list := range []client.ObjectList{&rbacv1.RoleBindingList{}, &corev1.ResourceQuotaList{}, &corev1.LimitRangeList{}} {
		if err := admin.List(ctx, list, owned); err != nil || meta.LenList(list) != 1 {
			t.Fatalf("fault %d: %T count %d (%v), want 1", k, list, meta.LenList(list), err)
		}
	}
	w.assertAllocation(t, k, cr.UID, true)
}

// assertRevoked checks the state after cr, granted, was deleted: no
// RoleBinding, the namespace deleted, the allocation released.
func (w *world) assertRevoked(t *testing.T, k int64, cr *v1alpha1.ConsumptionRequest) {
	t.Helper()
	ctx := context.Background()
	var rbs rbacv1.RoleBindingList
	if err := admin.List(ctx, &rbs, client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)}); err != nil || len(rbs.Items) != 0 {
		t.Fatalf("fault %d: RoleBindings left %d (%v)", k, len(rbs.Items), err)
	}
	var ns corev1.Namespace
	if err := admin.Get(ctx, client.ObjectKey{Name: cr.Status.Grant.Namespace}, &ns); err == nil && ns.DeletionTimestamp.IsZero() {
		t.Fatalf("fault %d: namespace %s left behind", k, ns.Name)
	}
	w.assertAllocation(t, k, cr.UID, false)
}

func names(l *corev1.NamespaceList) []string {
	out := make([]string, 0, len(l.Items))
	for _, n := range l.Items {
		out = append(out, n.Name)
	}
	return out
}

// TestCrashAtEveryWriteOnGrant fails the k-th write of a manager for k = 1, 2, ...
// while it grants access, stops it there, and checks that a fresh manager
// (new cache) converges to the state of a fault-free grant, with nothing
// leaked or duplicated, until k passes the number of writes a grant takes.
func TestCrashAtEveryWriteOnGrant(t *testing.T) {
	crashAtEveryWrite(t, "a grant (with the offering's and agreement's status)", 60, func(t *testing.T) path {
		w := newWorld(t)
		return path{reached: w.ready, check: w.assertGranted}
	})
}

// TestCrashAtEveryWriteOnRevoke does the same while a request is deleted: the
// RoleBinding, the namespace and the allocation all go, and the request is
// released, whatever write the crash hit.
func TestCrashAtEveryWriteOnRevoke(t *testing.T) {
	crashAtEveryWrite(t, "a revocation", 30, func(t *testing.T) path {
		w := newWorld(t)
		settle(t, "the request Ready", path{reached: w.ready})
		cr := w.deleteRequest(t)
		return path{reached: w.gone, check: func(t *testing.T, k int64) { w.assertRevoked(t, k, cr) }}
	})
}

// TestConvergedObjectsCostNoWrites starts a fresh manager on objects that are
// already converged (all the worlds of this package, and one of its own in
// every state a request rests in: granted, goods awaiting the decision,
// accepted or returned, an action running or fulfilled) and checks that its
// full pass over them issues no write at all.
func TestConvergedObjectsCostNoWrites(t *testing.T) {
	if admin == nil {
		t.Skip("integration test: run without -short, through `make test`")
	}
	rests := restingWorlds(t)
	first := startManager(t, 0, nil)
	for _, r := range rests {
		eventually(t, 30*time.Second, r.what, r.step)
	}
	time.Sleep(time.Second) // let the batched roll-ups land
	first.stop(t)

	var requests v1alpha1.ConsumptionRequestList
	if err := admin.List(context.Background(), &requests); err != nil {
		t.Fatal(err)
	}
	before := reconciles(t, "consumptionrequest")
	again := startManager(t, 0, nil)
	defer again.stop(t)
	// The pass must really have happened: every request reconciled at least once.
	eventually(t, 30*time.Second, "a full pass of the fresh manager", func() error {
		if done := reconciles(t, "consumptionrequest") - before; done < float64(len(requests.Items)) {
			return fmt.Errorf("%v of %d requests reconciled", done, len(requests.Items))
		}
		return nil
	})
	time.Sleep(2 * time.Second) // roll-ups are batched: give them time to (not) write
	if n := again.writes.Load(); n != 0 {
		t.Fatalf("a restart over converged objects issued %d writes, want 0", n)
	}
	for _, r := range rests {
		if err := r.reached(); err != nil {
			t.Errorf("%s: no longer so: %v", r.what, err)
		}
	}
}

// reconciles reads controller_runtime_reconcile_total for a controller from
// the process-wide metrics registry, which every manager of this package shares.
func reconciles(t *testing.T, controller string) float64 {
	t.Helper()
	fams, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, f := range fams {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == controller {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}
