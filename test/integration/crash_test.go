// Package integration holds tests that run whole managers against a real API
// server (envtest) and stop them on purpose: crash-at-every-write recovery.
package integration

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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
	if admin, err = client.New(cfg, client.Options{Scheme: scheme.Scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

var errInjected = errors.New("injected fault: the manager crashes here")

// faultyManager runs the controllers with a client whose k-th write fails and
// stops the manager at that moment, as a crash would. k <= 0 means no fault.
type faultyManager struct {
	writes  atomic.Int64
	crashed atomic.Bool
	cancel  context.CancelFunc
	done    chan error
}

func startManager(t *testing.T, k int64) *faultyManager {
	t.Helper()
	fm := &faultyManager{done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	fm.cancel = cancel
	write := func() error {
		if n := fm.writes.Add(1); k > 0 && n == k {
			fm.crashed.Store(true)
			cancel()
			return errInjected
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
					if err := write(); err != nil {
						return err
					}
					return c.Create(ctx, obj, opts...)
				},
				Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
					if err := write(); err != nil {
						return err
					}
					return c.Update(ctx, obj, opts...)
				},
				Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
					if err := write(); err != nil {
						return err
					}
					return c.Patch(ctx, obj, p, opts...)
				},
				Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
					if err := write(); err != nil {
						return err
					}
					return c.Delete(ctx, obj, opts...)
				},
				SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
					if err := write(); err != nil {
						return err
					}
					return c.SubResource(sub).Patch(ctx, obj, p, opts...)
				},
				SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
					if err := write(); err != nil {
						return err
					}
					return c.SubResource(sub).Update(ctx, obj, opts...)
				},
				SubResourceApply: func(ctx context.Context, c client.Client, sub string, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
					if err := write(); err != nil {
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

// world is one isolated set of objects: a consumer namespace, a role, an
// offering with one access item, an agreement with an entitlement of one
// grant, and a request.
type world struct {
	ns, role, offering string
	request            *v1alpha1.ConsumptionRequest
}

var worldSeq atomic.Int64

func newWorld(t *testing.T) *world {
	t.Helper()
	n := worldSeq.Add(1)
	w := &world{ns: fmt.Sprintf("crash-%d", n), role: fmt.Sprintf("crash-role-%d", n), offering: fmt.Sprintf("crash-offering-%d", n)}
	ctx := context.Background()
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.ns}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: w.role, Labels: map[string]string{v1alpha1.LabelGrantable: "true"}},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}}},
		&v1alpha1.ServiceOffering{ObjectMeta: metav1.ObjectMeta{Name: w.offering}, Spec: v1alpha1.ServiceOfferingSpec{
			Provider: v1alpha1.Provider{Name: "Crash"}, ProviderNamespace: "default",
			Resources: []v1alpha1.ResourceItem{{Name: "space", ClusterRoles: []v1alpha1.ClusterRoleName{v1alpha1.ClusterRoleName(w.role)},
				Quota:            corev1.ResourceList{corev1.ResourcePods: resource.MustParse("3")},
				Limits:           []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, DefaultRequest: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m")}}},
				NetworkIsolation: v1alpha1.NetworkIsolationNamespace, RevocationPolicy: v1alpha1.RevocationPolicyDelete}},
		}},
		&v1alpha1.ServiceAgreement{ObjectMeta: metav1.ObjectMeta{Name: "agreement", Namespace: w.ns}, Spec: v1alpha1.ServiceAgreementSpec{
			Offering:       v1alpha1.OfferingName(w.offering),
			Consumer:       v1alpha1.Consumer{Name: "Crash", Subjects: []v1alpha1.Subject{{Kind: v1alpha1.SubjectUser, Name: "crash-user-" + w.ns}}},
			Entitlements:   v1alpha1.Entitlements{Resources: []v1alpha1.ResourceEntitlement{{Name: "space", MaxGrants: ptr.To[int32](1)}}},
			ApprovalPolicy: v1alpha1.ApprovalAutomatic,
		}},
	}
	w.request = &v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{Name: "grant", Namespace: w.ns},
		Spec: v1alpha1.ConsumptionRequestSpec{Agreement: "agreement", Resource: &v1alpha1.ResourceRequest{Name: "space"}}}
	for _, o := range append(objs, w.request) {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatalf("creating %T: %v", o, err)
		}
	}
	return w
}

func eventually(t *testing.T, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = fn(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
}

// runUntilCrashOrQuiet runs a manager that fails its k-th write. It returns
// true when the fault fired, false when the manager converged with fewer
// than k writes (every step has then been covered).
func runUntilCrashOrQuiet(t *testing.T, k int64, converged func() bool) bool {
	t.Helper()
	fm := startManager(t, k)
	defer fm.stop(t)
	quietSince, last := time.Now(), int64(-1)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if fm.crashed.Load() {
			return true
		}
		if n := fm.writes.Load(); n != last {
			last, quietSince = n, time.Now()
		}
		if converged() && time.Since(quietSince) > time.Second {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("fault %d: neither crashed nor converged within 30s (%d writes)", k, fm.writes.Load())
	return false
}

func (w *world) ready() bool {
	var cr v1alpha1.ConsumptionRequest
	if err := admin.Get(context.Background(), client.ObjectKeyFromObject(w.request), &cr); err != nil {
		return false
	}
	return meta.IsStatusConditionTrue(cr.Status.Conditions, v1alpha1.ConditionReady)
}

func (w *world) gone() bool {
	err := admin.Get(context.Background(), client.ObjectKeyFromObject(w.request), &v1alpha1.ConsumptionRequest{})
	return apierrors.IsNotFound(err)
}

// assertGranted checks the state of a fault-free grant: one namespace for
// the request, exactly its children, one allocation.
func (w *world) assertGranted(t *testing.T, k int64) {
	t.Helper()
	ctx := context.Background()
	var cr v1alpha1.ConsumptionRequest
	if err := admin.Get(ctx, client.ObjectKeyFromObject(w.request), &cr); err != nil {
		t.Fatal(err)
	}
	if cr.Status.Phase != v1alpha1.RequestFulfilled || cr.Status.Grant == nil {
		t.Fatalf("fault %d: phase %s grant %+v", k, cr.Status.Phase, cr.Status.Grant)
	}
	owned := client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)}
	var nss corev1.NamespaceList
	if err := admin.List(ctx, &nss, owned); err != nil || len(nss.Items) != 1 || nss.Items[0].Name != cr.Status.Grant.Namespace {
		t.Fatalf("fault %d: namespaces for the request %v (%v), want exactly %s", k, names(&nss), err, cr.Status.Grant.Namespace)
	}
	var rbs rbacv1.RoleBindingList
	if err := admin.List(ctx, &rbs, owned); err != nil || len(rbs.Items) != 1 {
		t.Fatalf("fault %d: %d RoleBindings for the request (%v), want 1", k, len(rbs.Items), err)
	}
	for _, obj := range []client.Object{&corev1.ResourceQuota{}, &corev1.LimitRange{}} {
		var list client.ObjectList = &corev1.ResourceQuotaList{}
		if _, ok := obj.(*corev1.LimitRange); ok {
			list = &corev1.LimitRangeList{}
		}
		if err := admin.List(ctx, list, owned); err != nil || meta.LenList(list) != 1 {
			t.Fatalf("fault %d: %T count %d (%v), want 1", k, list, meta.LenList(list), err)
		}
	}
	var agr v1alpha1.ServiceAgreement
	if err := admin.Get(ctx, client.ObjectKey{Namespace: w.ns, Name: "agreement"}, &agr); err != nil {
		t.Fatal(err)
	}
	if len(agr.Status.Allocations) != 1 || agr.Status.Allocations[0].UID != string(cr.UID) {
		t.Fatalf("fault %d: allocations %+v, want exactly the request's", k, agr.Status.Allocations)
	}
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
	if admin == nil {
		t.Skip("integration test: run without -short, through `make test`")
	}
	for k := int64(1); ; k++ {
		w := newWorld(t)
		crashed := runUntilCrashOrQuiet(t, k, w.ready)
		fresh := startManager(t, 0)
		eventually(t, 30*time.Second, fmt.Sprintf("fault %d: the request Ready after recovery", k), func() error {
			if !w.ready() {
				return errors.New("not Ready")
			}
			return nil
		})
		fresh.stop(t)
		w.assertGranted(t, k)
		if !crashed {
			t.Logf("a grant (with the offering's and agreement's status) took %d writes; every one was crashed on and recovered from", k-1)
			return
		}
		if k > 60 {
			t.Fatal("more than 60 writes for one grant")
		}
	}
}

// TestCrashAtEveryWriteOnRevoke does the same while a request is deleted: the
// RoleBinding, the namespace and the allocation all go, and the request is
// released, whatever write the crash hit.
func TestCrashAtEveryWriteOnRevoke(t *testing.T) {
	if admin == nil {
		t.Skip("integration test: run without -short, through `make test`")
	}
	for k := int64(1); ; k++ {
		w := newWorld(t)
		setup := startManager(t, 0)
		eventually(t, 30*time.Second, "the request Ready", func() error {
			if !w.ready() {
				return errors.New("not Ready")
			}
			return nil
		})
		setup.stop(t)
		var cr v1alpha1.ConsumptionRequest
		if err := admin.Get(context.Background(), client.ObjectKeyFromObject(w.request), &cr); err != nil {
			t.Fatal(err)
		}
		if err := admin.Delete(context.Background(), &cr); err != nil {
			t.Fatal(err)
		}
		crashed := runUntilCrashOrQuiet(t, k, w.gone)
		fresh := startManager(t, 0)
		eventually(t, 30*time.Second, fmt.Sprintf("fault %d: the request released after recovery", k), func() error {
			if !w.gone() {
				return errors.New("still there")
			}
			return nil
		})
		fresh.stop(t)
		ctx := context.Background()
		owned := client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)}
		var rbs rbacv1.RoleBindingList
		if err := admin.List(ctx, &rbs, owned); err != nil || len(rbs.Items) != 0 {
			t.Fatalf("fault %d: RoleBindings left %d (%v)", k, len(rbs.Items), err)
		}
		var ns corev1.Namespace
		if err := admin.Get(ctx, client.ObjectKey{Name: cr.Status.Grant.Namespace}, &ns); err == nil && ns.DeletionTimestamp.IsZero() {
			t.Fatalf("fault %d: namespace %s left behind", k, ns.Name)
		}
		var agr v1alpha1.ServiceAgreement
		if err := admin.Get(ctx, client.ObjectKey{Namespace: w.ns, Name: "agreement"}, &agr); err != nil {
			t.Fatal(err)
		}
		if len(agr.Status.Allocations) != 0 {
			t.Fatalf("fault %d: allocation not released: %+v", k, agr.Status.Allocations)
		}
		if !crashed {
			t.Logf("a revocation took %d writes; every one was crashed on and recovered from", k-1)
			return
		}
		if k > 30 {
			t.Fatal("more than 30 writes for one revocation")
		}
	}
}

// TestConvergedObjectsCostNoWrites starts a fresh manager on objects that are
// already converged (all the worlds of this package and one of its own) and
// checks that its full pass over them issues no write at all.
func TestConvergedObjectsCostNoWrites(t *testing.T) {
	if admin == nil {
		t.Skip("integration test: run without -short, through `make test`")
	}
	w := newWorld(t)
	first := startManager(t, 0)
	eventually(t, 30*time.Second, "the request Ready", func() error {
		if !w.ready() {
			return errors.New("not Ready")
		}
		return nil
	})
	time.Sleep(time.Second) // let the batched roll-ups land
	first.stop(t)

	var requests v1alpha1.ConsumptionRequestList
	if err := admin.List(context.Background(), &requests); err != nil {
		t.Fatal(err)
	}
	before := reconciles(t, "consumptionrequest")
	again := startManager(t, 0)
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
	if !w.ready() {
		t.Fatal("the request is no longer Ready")
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
