// Package fleet tests the operator with member clusters: a hub and two
// member clusters, each a real API server (envtest), the operator running in
// the hub under its generated role, and connecting to each member as a user
// bound to that same role there (config/member).
package fleet

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
	"github.com/offering-operator/offering-operator/controllers"
	"github.com/offering-operator/offering-operator/internal/admissiontest"
	"github.com/offering-operator/offering-operator/internal/testutil"
)

const (
	operatorUser      = "system:serviceaccount:offering-operator-system:offering-operator-controller-manager"
	consumerUser      = "bob-consumer"
	operatorNamespace = "offering-operator-system"
	// grantedRole is the ClusterRole the test offering grants, grantable in every cluster.
	grantedRole = "fleet-test-editor"
	// memberOperator is the operator's identity in a member cluster.
	memberOperator = "offering-operator"
)

// cluster is one API server of the test fleet.
type cluster struct {
	name  string
	env   *envtest.Environment
	admin client.Client
	// kubeconfig is the operator's kubeconfig for a member.
	kubeconfig []byte
}

var (
	testCtx  context.Context
	hub      *cluster
	members  = map[string]*cluster{}
	consumer client.Client
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run the tests with `make test`")
		return 1
	}
	logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	utilruntime.Must(v1alpha1.AddToScheme(scheme.Scheme))
	var cancel context.CancelFunc
	testCtx, cancel = context.WithCancel(context.Background())
	defer cancel()
	defer stopAll()
	if err := startFleet(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	done, err := startOperator(testCtx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	cancel()
	<-done
	return code
}

// startFleet starts the hub and the two members, in parallel.
func startFleet() error {
	errs := make(chan error, 3)
	hub = &cluster{name: "hub", env: &envtest.Environment{
		CRDDirectoryPaths: []string{filepath.Join("..", "..", "config", "crd", "bases")}, ErrorIfCRDPathMissing: true}}
	go func() { errs <- startHub() }()
	for _, name := range []string{"member-a", "member-b"} {
		dir, err := os.MkdirTemp("", "fleet-"+name)
		if err != nil {
			return err
		}
		// A fixed certificate directory: the API server keeps its serving
		// certificate and client CA when it is stopped and started again.
		env := &envtest.Environment{}
		env.ControlPlane.APIServer = &envtest.APIServer{CertDir: dir}
		members[name] = &cluster{name: name, env: env}
		go func() { errs <- startMember(members[name]) }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

func startHub() error {
	cfg, err := hub.env.Start()
	if err != nil {
		return fmt.Errorf("starting the hub: %w", err)
	}
	if hub.admin, err = client.New(cfg, client.Options{Scheme: scheme.Scheme}); err != nil {
		return err
	}
	if err := installRoles(hub); err != nil {
		return err
	}
	if err := admissiontest.Install(testCtx, hub.admin, filepath.Join("..", "..", "config", "admission")); err != nil {
		return err
	}
	if err := admissiontest.Wait(testCtx, cfg, hub.admin, "admission-probe", time.Minute); err != nil {
		return err
	}
	u, err := hub.env.AddUser(envtest.User{Name: consumerUser, Groups: []string{"system:authenticated"}}, nil)
	if err != nil {
		return err
	}
	if err := bind(hub, consumerUser, "offering-operator-consumer"); err != nil {
		return err
	}
	consumer, err = client.New(u.Config(), client.Options{Scheme: scheme.Scheme})
	return err
}

// startMember starts a member and gives the operator an identity there,
// bound to the shipped member manifest's role.
func startMember(c *cluster) error {
	cfg, err := c.env.Start()
	if err != nil {
		return fmt.Errorf("starting %s: %w", c.name, err)
	}
	if c.admin, err = client.New(cfg, client.Options{Scheme: scheme.Scheme}); err != nil {
		return err
	}
	if err := installRoles(c); err != nil {
		return err
	}
	u, err := c.env.AddUser(envtest.User{Name: memberOperator}, nil)
	if err != nil {
		return err
	}
	if err := bind(c, memberOperator, "offering-operator-member"); err != nil {
		return err
	}
	c.kubeconfig, err = u.KubeConfig()
	return err
}

// installRoles creates the shipped ClusterRoles (the hub's, or the member
// manifest) and the role the test offering grants.
func installRoles(c *cluster) error {
	dir := filepath.Join("..", "..", "config", "rbac")
	if c != hub {
		dir = filepath.Join("..", "..", "config", "member")
	}
	roles, err := testutil.LoadClusterRoles(dir)
	if err != nil {
		return err
	}
	roles = append(roles, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: grantedRole, Labels: map[string]string{v1alpha1.LabelGrantable: "true"}},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "create"}}},
	})
	for _, r := range roles {
		if err := c.admin.Create(testCtx, r); err != nil {
			return fmt.Errorf("%s: ClusterRole %s: %w", c.name, r.Name, err)
		}
	}
	return nil
}

func bind(c *cluster, user, role string) error {
	return c.admin.Create(testCtx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "test-" + role},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	})
}

// startOperator runs the controllers in the hub as the operator's identity.
func startOperator(ctx context.Context) (chan struct{}, error) {
	u, err := hub.env.AddUser(envtest.User{Name: operatorUser, Groups: []string{"system:authenticated"}}, nil)
	if err != nil {
		return nil, err
	}
	if err := bind(hub, operatorUser, "offering-operator-manager"); err != nil {
		return nil, err
	}
	for _, ns := range []string{operatorNamespace, providerNamespace} {
		obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{v1alpha1.LabelProviderNamespace: "true"}}}
		if err := hub.admin.Create(ctx, obj); err != nil {
			return nil, err
		}
	}
	cfg := rest.CopyConfig(u.Config())
	cfg.QPS, cfg.Burst = 200, 400
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme.Scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", Cache: controllers.CacheOptions()})
	if err != nil {
		return nil, err
	}
	if err := controllers.Setup(mgr, controllers.Options{OperatorNamespace: operatorNamespace, MaxConcurrentReconciles: 8,
		VerifyTimeout: 5 * time.Second, FleetProbeInterval: time.Second}); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	return done, nil
}

func stopAll() {
	for _, c := range append([]*cluster{hub}, members["member-a"], members["member-b"]) {
		if c != nil && c.env != nil {
			_ = c.env.Stop()
		}
	}
}
