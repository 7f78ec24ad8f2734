package controllers

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	uberzap "go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
	"github.com/offering-operator/offering-operator/internal/admissiontest"
	"github.com/offering-operator/offering-operator/internal/testutil"
)

// The integration tests share one real API server (envtest) and one manager
// that runs the three controllers under the operator's own generated RBAC
// (config/rbac/role.yaml), not as an administrator.
//
// Parallel tests: a test that mostly waits (a recheck period, a quiet period
// that proves nothing happens) calls t.Parallel(). Go runs such tests together
// once every serial test has finished, so a parallel test works only in
// objects of its own (uniq names), does not step testClock (and does not
// depend on its offset, which the serial tests have moved by then), does not
// measure the heap, and does not count what the whole manager does (metrics,
// deletes, managerLogs, queue depth).
var (
	testEnv   *envtest.Environment
	testCtx   context.Context
	admin     client.Client
	testClock = &offsetClock{}
	deletes   = &deleteLog{}
	testUsers = map[string]*rest.Config{}
	// metricsURL is the test manager's metrics endpoint.
	metricsURL string
	// managerCache is the test manager's cache: what the operator holds in memory.
	managerCache client.Reader
)

const (
	operatorUser = "system:serviceaccount:offering-operator-system:offering-operator-controller-manager"
	providerUser = "alice-provider"
	approverUser = "carol-approver"
	consumerUser = "bob-consumer"
	// operatorNamespace is the test manager's own namespace (its ServiceAccount's).
	operatorNamespace = "offering-operator-system"
	// allowedPowerfulRole is named in the test manager's --allowed-cluster-roles.
	allowedPowerfulRole = "test-allowed-powerful"
)

// providerNamespaces is the test manager's --provider-namespaces: the
// provider namespaces of the fixtures (uniq("provider"), "default") and of
// config/samples (TestActionSamples).
var providerNamespaces = []string{"default", "colo-provider", "provider-*"}

// managerLogs holds every log line of the test manager, at every level.
var managerLogs = &syncBuffer{}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// requireAPIServer skips an integration test in -short mode.
func requireAPIServer(t *testing.T) {
	t.Helper()
	if admin == nil {
		t.Skip("integration test: needs the API server (run without -short, through `make test`)")
	}
}

// offsetClock is the real time plus an offset the tests can move forward.
type offsetClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *offsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *offsetClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// Offset is how far the clock is ahead of the real time. Objects' creation
// timestamps come from the API server's real clock, so a duration measured
// from one with this clock is longer by the offset.
func (c *offsetClock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

func (c *offsetClock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// deleteLog records the deletes the manager issues, in order.
type deleteLog struct {
	mu      sync.Mutex
	entries []string
}

func (d *deleteLog) add(obj client.Object) {
	d.mu.Lock()
	defer d.mu.Unlock()
	kind := fmt.Sprintf("%T", obj)
	d.entries = append(d.entries, fmt.Sprintf("%s %s/%s", kind, obj.GetNamespace(), obj.GetName()))
}

func (d *deleteLog) snapshot() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.entries...)
}

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		// Unit tests only: integration tests skip themselves (see requireAPIServer).
		return m.Run()
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run the tests with `make test`, "+
			"which provides etcd and kube-apiserver through hack/control-plane.sh")
		return 1
	}
	// Errors go to stderr; everything, down to debug, is also kept in
	// managerLogs so that tests can check what the manager logged.
	debugCore := zapcore.NewCore(zapcore.NewJSONEncoder(uberzap.NewProductionEncoderConfig()), zapcore.AddSync(managerLogs), zapcore.DebugLevel)
	logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapLevel()),
		zap.RawZapOpts(uberzap.WrapCore(func(c zapcore.Core) zapcore.Core { return zapcore.NewTee(c, debugCore) }))))
	utilruntime.Must(v1alpha1.AddToScheme(scheme.Scheme))

	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := testEnv.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting envtest: %v\n", err)
		return 1
	}
	defer func() {
		if err := testEnv.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
		}
	}()
	admin, err = client.New(cfg, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var cancel context.CancelFunc
	testCtx, cancel = context.WithCancel(context.Background())
	defer cancel()

	if err := setupIdentities(testCtx); err != nil {
		fmt.Fprintf(os.Stderr, "setting up identities: %v\n", err)
		return 1
	}
	// The admission policies of config/admission, as `make install` installs them.
	if err := admissiontest.Install(testCtx, admin, filepath.Join("..", "config", "admission")); err != nil {
		fmt.Fprintf(os.Stderr, "installing the admission policies: %v\n", err)
		return 1
	}
	if err := admissiontest.Wait(testCtx, cfg, admin, "admission-probe", time.Minute); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	metricsAddr, err := freeLocalAddress()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	metricsURL = "http://" + metricsAddr + "/metrics"
	// The manager's client is rate-limited as main.go sets it (--kube-api-qps
	// and --kube-api-burst defaults), not client-go's 5/10.
	operatorCfg := rest.CopyConfig(testUsers[operatorUser])
	operatorCfg.QPS, operatorCfg.Burst = 200, 400
	mgr, err := ctrl.NewManager(operatorCfg, ctrl.Options{
		Scheme:                 scheme.Scheme,
		Metrics:                metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress: "0",
		Cache:                  CacheOptions(),
		NewClient: func(config *rest.Config, options client.Options) (client.Client, error) {
			c, err := client.NewWithWatch(config, options)
			if err != nil {
				return nil, err
			}
			return interceptor.NewClient(c, interceptor.Funcs{
				Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
					deletes.add(obj)
					return c.Delete(ctx, obj, opts...)
				},
			}), nil
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The operator's own namespace, where Setup keeps the grant marker key.
	if err := admin.Create(testCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := Setup(mgr, Options{
		AllowedClusterRoles:     []string{allowedPowerfulRole},
		OperatorNamespace:       operatorNamespace,
		ProviderNamespaces:      providerNamespaces,
		MaxConcurrentReconciles: 4,
		Clock:                   testClock,
		// The production default, so that roll-up batching is tested as it runs.
		RollupDelay:   time.Second,
		VerifyTimeout: 5 * time.Second,
		// Small, so that collecting revisions is tested with a few edits.
		RevisionHistory: 3,
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	managerCache = mgr.GetCache()
	done := make(chan error, 1)
	go func() { done <- mgr.Start(testCtx) }()
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintf(os.Stderr, "manager: %v\n", err)
		return 1
	}
	return code
}

func zapLevel() zapcore.Level {
	if os.Getenv("TEST_VERBOSE_LOGS") != "" {
		return zapcore.DebugLevel
	}
	return zapcore.ErrorLevel
}

// setupIdentities creates the operator's identity bound to its generated
// ClusterRole, and provider, approver and consumer identities bound to the
// shipped persona roles.
func setupIdentities(ctx context.Context) error {
	roles, err := testutil.LoadClusterRoles(filepath.Join("..", "config", "rbac"))
	if err != nil {
		return err
	}
	for _, r := range roles {
		if err := admin.Create(ctx, r); err != nil {
			return fmt.Errorf("creating ClusterRole %s: %w", r.Name, err)
		}
	}
	bindings := map[string]string{
		operatorUser: "offering-operator-manager",
		providerUser: "offering-operator-provider",
		approverUser: "offering-operator-approver",
		consumerUser: "offering-operator-consumer",
	}
	for user, role := range bindings {
		groups := []string{"system:authenticated"}
		u, err := testEnv.AddUser(envtest.User{Name: user, Groups: groups}, nil)
		if err != nil {
			return err
		}
		testUsers[user] = u.Config()
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "test-" + sanitize(user)},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
		}
		if err := admin.Create(ctx, crb); err != nil {
			return err
		}
	}
	return nil
}

// freeLocalAddress returns a loopback address with a port nothing listens on.
func freeLocalAddress() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}
