package plugin_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
	"github.com/offering-operator/offering-operator/internal/plugin"
)

const (
	crdDir = "../../config/crd/bases"
	// testUser is who the plugin talks to the API server as.
	testUser = "acme-provider"
	// operatorManager is the field manager the tests write status with, standing in for the operator.
	operatorManager = "offering-operator"
)

var (
	// kubeconfig is a kubeconfig file for testUser; empty in -short mode.
	kubeconfig string
	// k8sClient is an admin client for arranging and checking objects.
	k8sClient client.Client
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if testing.Short() {
		// Unit tests only: no API server.
		return m.Run()
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "FAIL: KUBEBUILDER_ASSETS is not set. The kubectl-offering tests run against a real API server (envtest);\n"+
			"run them with `make test`, or: export KUBEBUILDER_ASSETS=$(hack/control-plane.sh) && go test ./internal/plugin/...\n"+
			"(go test -short ./internal/plugin/... runs only the tests that need no API server)")
		return 1
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{crdDir}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting the test API server: %v\n", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the test API server: %v\n", err)
		}
	}()
	s, err := plugin.Scheme()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	if k8sClient, err = client.New(cfg, client.Options{Scheme: s}); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: creating a client: %v\n", err)
		return 1
	}
	user, err := env.AddUser(envtest.User{Name: testUser, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: adding user %s: %v\n", testUser, err)
		return 1
	}
	kc, err := user.KubeConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: kubeconfig of %s: %v\n", testUser, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "kubectl-offering-test-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	return m.Run()
}

// integration skips the test in -short mode.
func integration(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs an API server (envtest); skipped in -short mode")
	}
	t.Parallel()
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// result is the outcome of one in-process kubectl-offering run.
type result struct {
	code           int
	stdout, stderr string
}

// kubectlOffering runs the plugin in process against the test API server.
func kubectlOffering(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	switch {
	case kubeconfig != "" && len(args) > 0 && args[0] == "__complete":
		// Shell completion: kubectl_complete-offering passes the command line after __complete.
		args = append([]string{"__complete", "--kubeconfig", kubeconfig}, args[1:]...)
	case kubeconfig != "":
		// Global flags before the command, as `kubectl offering --kubeconfig K CMD` passes them.
		args = append([]string{"--kubeconfig", kubeconfig}, args...)
	}
	code := plugin.Run(testContext(t), args, streams)
	r := result{code: code, stdout: out.String(), stderr: errOut.String()}
	t.Logf("kubectl offering %s -> %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

func expectCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d (stderr: %s)", r.code, code, r.stderr)
	}
}

// fixture is a consumer namespace with an offering and an agreement.
type fixture struct {
	ns, offering, agreement string
}

// newFixture creates a namespace, a colocation-like offering and an agreement with the given approval policy.
func newFixture(t *testing.T, policy v1alpha1.ApprovalPolicy) fixture {
	t.Helper()
	ctx := testContext(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "team-"}}
	must(t, k8sClient.Create(ctx, ns))
	f := fixture{ns: ns.Name, offering: "colocation-" + ns.Name, agreement: "acme-payments"}

	off := &v1alpha1.ServiceOffering{
		ObjectMeta: metav1.ObjectMeta{Name: f.offering},
		Spec: v1alpha1.ServiceOfferingSpec{
			Provider:          v1alpha1.Provider{Name: "Acme Colocation"},
			Description:       "Rack space, HA devices and their installation.",
			ProviderNamespace: "colo-provider",
			Resources: []v1alpha1.ResourceItem{
				{Name: "rack-space", Description: "A namespace on shared racks.", ClusterRoles: []v1alpha1.ClusterRoleName{"view"}},
				{Name: "dedicated-server", Description: "A namespace for one server.", ClusterRoles: []v1alpha1.ClusterRoleName{"view"},
					Namespace: v1alpha1.NamespaceTemplate{AllowRequestedName: true}},
				{Name: "backup", ClusterRoles: []v1alpha1.ClusterRoleName{"view"}},
			},
			Goods: []v1alpha1.GoodsItem{{
				Name: "ha-device", Description: "A high-availability device.",
				Sources: []v1alpha1.GoodsSource{{Kind: v1alpha1.GoodsSourceSecret, Name: "ha-device-credentials"}},
			}},
			Actions: []v1alpha1.ActionItem{
				{Name: "installation", Description: "Install a device in a rack.", Type: v1alpha1.ActionAutomated,
					Parameters: []v1alpha1.ActionParameterSpec{{Name: "RACK", Required: true}, {Name: "DEVICE"}},
					Job:        &v1alpha1.ActionJob{Image: "busybox:1.36", Command: []string{"true"}}},
				{Name: "backup", Type: v1alpha1.ActionManual},
			},
		},
	}
	must(t, k8sClient.Create(ctx, off))
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), off) })

	agr := &v1alpha1.ServiceAgreement{
		ObjectMeta: metav1.ObjectMeta{Name: f.agreement, Namespace: f.ns},
		Spec: v1alpha1.ServiceAgreementSpec{
			Offering: v1alpha1.OfferingName(f.offering),
			Consumer: v1alpha1.Consumer{Name: "Team Payments", Subjects: []v1alpha1.Subject{{Kind: v1alpha1.SubjectGroup, Name: "team-payments"}}},
			Entitlements: v1alpha1.Entitlements{
				Resources: []v1alpha1.ResourceEntitlement{{Name: "rack-space", MaxGrants: ptr.To[int32](2)}, {Name: "dedicated-server", MaxGrants: ptr.To[int32](1)}},
				Goods:     []v1alpha1.GoodsEntitlement{{Name: "ha-device", MaxQuantity: ptr.To[int32](4)}},
				Actions:   []v1alpha1.ActionEntitlement{{Name: "installation", MaxRuns: ptr.To[int32](3)}},
			},
			ApprovalPolicy: policy,
		},
	}
	must(t, k8sClient.Create(ctx, agr))
	return f
}

// setAgreementStatus writes the agreement's status as the operator would.
func setAgreementStatus(t *testing.T, f fixture, st v1alpha1.ServiceAgreementStatus) {
	t.Helper()
	ctx := testContext(t)
	var agr v1alpha1.ServiceAgreement
	must(t, k8sClient.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: f.agreement}, &agr))
	agr.Status = st
	must(t, k8sClient.Status().Update(ctx, &agr, client.FieldOwner(operatorManager)))
}

// newRequest creates a request and writes its status as the operator would (phase and conditions).
func newRequest(t *testing.T, f fixture, name string, spec v1alpha1.ConsumptionRequestSpec, st v1alpha1.ConsumptionRequestStatus) *v1alpha1.ConsumptionRequest {
	t.Helper()
	ctx := testContext(t)
	if spec.Agreement == "" {
		spec.Agreement = v1alpha1.AgreementName(f.agreement)
	}
	cr := &v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns}, Spec: spec}
	must(t, k8sClient.Create(ctx, cr))
	if st.Phase != "" || len(st.Conditions) > 0 {
		cr.Status = st
		must(t, k8sClient.Status().Update(ctx, cr, client.FieldOwner(operatorManager)))
	}
	return cr
}

func getRequest(t *testing.T, f fixture, name string) *v1alpha1.ConsumptionRequest {
	t.Helper()
	var cr v1alpha1.ConsumptionRequest
	must(t, k8sClient.Get(testContext(t), client.ObjectKey{Namespace: f.ns, Name: name}, &cr))
	return &cr
}

func cond(typ string, status metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(time.Now().Truncate(time.Second))}
}

// awaiting is the status of a request under a Manual agreement that waits for a provider.
func awaiting() v1alpha1.ConsumptionRequestStatus {
	return v1alpha1.ConsumptionRequestStatus{
		Phase: v1alpha1.RequestAwaitingApproval,
		Item:  "dedicated-server",
		Conditions: []metav1.Condition{
			cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonAwaitingApproval, "ServiceAgreement acme-payments requires a provider to approve this request"),
			cond(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, v1alpha1.ReasonAwaitingApproval, "not yet approved"),
		},
	}
}

func resourceSpec(item string) v1alpha1.ConsumptionRequestSpec {
	return v1alpha1.ConsumptionRequestSpec{Resource: &v1alpha1.ResourceRequest{Name: v1alpha1.ItemName(item)}}
}

func goodsSpec(item string, q int32) v1alpha1.ConsumptionRequestSpec {
	return v1alpha1.ConsumptionRequestSpec{Goods: &v1alpha1.GoodsRequest{Name: v1alpha1.ItemName(item), Quantity: q}}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func findCondition(t *testing.T, cr *v1alpha1.ConsumptionRequest, typ string) *metav1.Condition {
	t.Helper()
	c := meta.FindStatusCondition(cr.Status.Conditions, typ)
	if c == nil {
		t.Fatalf("request %s has no %s condition; conditions: %+v", cr.Name, typ, cr.Status.Conditions)
	}
	return c
}

func contains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}

// row returns the fields of the first line of out whose fields start with prefix.
func row(t *testing.T, out string, prefix ...string) []string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) < len(prefix) {
			continue
		}
		match := true
		for i, p := range prefix {
			if fields[i] != p {
				match = false
				break
			}
		}
		if match {
			return fields
		}
	}
	t.Fatalf("no row starting with %v in:\n%s", prefix, out)
	return nil
}
