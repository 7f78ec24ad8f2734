package v1alpha1_test

// Integration tests of the API's validation against a real kube-apiserver
// (envtest): the samples are accepted, invalid objects are rejected with the
// messages written in the markers, immutability (transition) rules hold, the
// status subresource exists, and the generated CRDs are documented.

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
	"github.com/offering-operator/offering-operator/internal/testutil"
)

const (
	crdDir     = "../../config/crd/bases"
	samplesDir = "../../config/samples"
	// testNamespace holds the objects of the validation and update tests.
	testNamespace = "validation"
	// prerequisitesFile holds the supporting objects of the samples; it is not
	// part of the samples kustomization.
	prerequisitesFile = "prerequisites.yaml"
)

var (
	restConfig *rest.Config
	// k8sClient writes with strict field validation: unknown or duplicated
	// fields are errors, not warnings, so a typo in a sample fails the test.
	k8sClient client.Client
)

// requireAPIServer skips a test that needs the API server when the tests run
// with -short (unit tests only).
func requireAPIServer(t *testing.T) {
	t.Helper()
	if k8sClient == nil {
		t.Skip("needs the API server (envtest); skipped with -short")
	}
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		// Unit tests only: the tests that need the API server skip themselves (requireAPIServer).
		return m.Run()
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "FAIL: KUBEBUILDER_ASSETS is not set. These tests run against a real API server (envtest);\n"+
			"run them with `make test`, or: export KUBEBUILDER_ASSETS=$(hack/control-plane.sh) && go test ./api/...")
		return 1
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{crdDir},
		ErrorIfCRDPathMissing: true,
	}
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
	restConfig = cfg
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: creating a client: %v\n", err)
		return 1
	}
	k8sClient = client.WithFieldValidation(c, metav1.FieldValidationStrict)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNamespace}}
	if err := k8sClient.Create(ctx, ns); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: creating namespace %s: %v\n", testNamespace, err)
		return 1
	}
	return m.Run()
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ---------------------------------------------------------------------------
// Builders: each starts from a valid object; methods make it invalid in one
// way. Obj() converts to unstructured and applies raw field overrides, so that
// values the Go types cannot express (zero quantities, malformed durations)
// can still be sent to the API server.

var gv = v1alpha1.GroupVersion

type overrides []fieldOverride

type fieldOverride struct {
	path  string
	value any
}

func (o overrides) apply(t runtime.Object) *unstructured.Unstructured {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(t)
	if err != nil {
		panic(err)
	}
	u := &unstructured.Unstructured{Object: m}
	for _, f := range o {
		patch(f.path, f.value)(u)
	}
	return u
}

// patch returns a mutation that sets the field at a dotted path
// ("spec.goods.quantity", "spec.actions.0.job") to value, or removes it when
// value is nil. Numeric segments index lists.
func patch(path string, value any) func(*unstructured.Unstructured) {
	switch v := value.(type) {
	case int:
		value = int64(v)
	case int32:
		value = int64(v)
	}
	return func(u *unstructured.Unstructured) {
		if err := setPath(u.Object, strings.Split(path, "."), value); err != nil {
			panic(fmt.Sprintf("setting %s: %v", path, err))
		}
	}
}

func setPath(node any, fields []string, value any) error {
	key, rest := fields[0], fields[1:]
	switch n := node.(type) {
	case map[string]any:
		if len(rest) == 0 {
			if value == nil {
				delete(n, key)
			} else {
				n[key] = value
			}
			return nil
		}
		child, ok := n[key]
		if !ok || child == nil {
			child = map[string]any{}
			n[key] = child
		}
		return setPath(child, rest, value)
	case []any:
		i, err := strconv.Atoi(key)
		if err != nil || i < 0 || i >= len(n) {
			return fmt.Errorf("no list element %q", key)
		}
		if len(rest) == 0 {
			n[i] = value
			return nil
		}
		return setPath(n[i], rest, value)
	default:
		return fmt.Errorf("cannot descend into %T at %q", node, key)
	}
}

// patches combines mutations.
func patches(ps ...func(*unstructured.Unstructured)) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		for _, p := range ps {
			p(u)
		}
	}
}

type offeringBuilder struct {
	obj v1alpha1.ServiceOffering
	overrides
}

// anOffering is a valid offering with one access item.
func anOffering() *offeringBuilder {
	return &offeringBuilder{obj: v1alpha1.ServiceOffering{
		TypeMeta:   metav1.TypeMeta{APIVersion: gv.String(), Kind: "ServiceOffering"},
		ObjectMeta: metav1.ObjectMeta{Name: "colocation-test"},
		Spec: v1alpha1.ServiceOfferingSpec{
			Provider:          v1alpha1.Provider{Name: "Acme Colocation"},
			ProviderNamespace: "colo-provider",
			Resources: []v1alpha1.ResourceItem{{
				Name:         "rack-space",
				ClusterRoles: []v1alpha1.ClusterRoleName{"view"},
			}},
		},
	}}
}

func (b *offeringBuilder) NoItems() *offeringBuilder { b.obj.Spec.Resources = nil; return b }
func (b *offeringBuilder) ResourceName(n string) *offeringBuilder {
	b.obj.Spec.Resources[0].Name = v1alpha1.ItemName(n)
	return b
}
func (b *offeringBuilder) NamespaceLabel(k, v string) *offeringBuilder {
	b.obj.Spec.Resources[0].Namespace.Labels = map[string]string{k: v}
	return b
}
func (b *offeringBuilder) NamespaceAnnotation(k, v string) *offeringBuilder {
	b.obj.Spec.Resources[0].Namespace.Annotations = map[string]string{k: v}
	return b
}
func (b *offeringBuilder) Action(a v1alpha1.ActionItem) *offeringBuilder {
	b.obj.Spec.Actions = append(b.obj.Spec.Actions, a)
	return b
}
func (b *offeringBuilder) Goods(name string, sources ...v1alpha1.GoodsSource) *offeringBuilder {
	b.obj.Spec.Goods = append(b.obj.Spec.Goods, v1alpha1.GoodsItem{Name: v1alpha1.ItemName(name), Sources: sources})
	return b
}
func (b *offeringBuilder) Name(n string) *offeringBuilder { b.obj.Name = n; return b }
func (b *offeringBuilder) Set(path string, v any) *offeringBuilder {
	b.overrides = append(b.overrides, fieldOverride{path, v})
	return b
}
func (b *offeringBuilder) Obj() *unstructured.Unstructured { return b.apply(&b.obj) }

// action builds an action item; withJob adds a minimal Job template.
func action(name string, typ v1alpha1.ActionType, withJob bool, params ...string) v1alpha1.ActionItem {
	a := v1alpha1.ActionItem{Name: v1alpha1.ItemName(name), Type: typ}
	if withJob {
		a.Job = &v1alpha1.ActionJob{Image: "busybox:1.36", Command: []string{"true"}}
	}
	for _, p := range params {
		a.Parameters = append(a.Parameters, v1alpha1.ActionParameterSpec{Name: v1alpha1.ParameterName(p)})
	}
	return a
}

const (
	withJob = true
	noJob   = false
)

type agreementBuilder struct {
	obj v1alpha1.ServiceAgreement
	overrides
}

// anAgreement is a valid agreement for one Group with one entitlement.
func anAgreement() *agreementBuilder {
	return &agreementBuilder{obj: v1alpha1.ServiceAgreement{
		TypeMeta:   metav1.TypeMeta{APIVersion: gv.String(), Kind: "ServiceAgreement"},
		ObjectMeta: metav1.ObjectMeta{Name: "acme-test", Namespace: testNamespace},
		Spec: v1alpha1.ServiceAgreementSpec{
			Offering: "colocation",
			Consumer: v1alpha1.Consumer{
				Name:     "Team Test",
				Subjects: []v1alpha1.Subject{{Kind: v1alpha1.SubjectGroup, Name: "team-test"}},
			},
			Entitlements: v1alpha1.Entitlements{
				Resources: []v1alpha1.ResourceEntitlement{{Name: "rack-space", MaxGrants: ptr.To[int32](2)}},
			},
		},
	}}
}

func (b *agreementBuilder) Subject(kind v1alpha1.SubjectKind, name, namespace string) *agreementBuilder {
	b.obj.Spec.Consumer.Subjects = []v1alpha1.Subject{{Kind: kind, Name: name, Namespace: v1alpha1.NamespaceName(namespace)}}
	return b
}
func (b *agreementBuilder) Valid(from, until string) *agreementBuilder {
	b.obj.Spec.ValidFrom, b.obj.Spec.ValidUntil = mustTime(from), mustTime(until)
	return b
}
func (b *agreementBuilder) Objective(o string) *agreementBuilder {
	b.obj.Spec.ServiceLevels = &v1alpha1.ServiceLevels{Objective: o}
	return b
}
func (b *agreementBuilder) MaxGrants(n int32) *agreementBuilder {
	b.obj.Spec.Entitlements.Resources[0].MaxGrants = &n
	return b
}
func (b *agreementBuilder) Name(n string) *agreementBuilder { b.obj.Name = n; return b }
func (b *agreementBuilder) Set(path string, v any) *agreementBuilder {
	b.overrides = append(b.overrides, fieldOverride{path, v})
	return b
}
func (b *agreementBuilder) Obj() *unstructured.Unstructured { return b.apply(&b.obj) }

func mustTime(s string) *metav1.Time {
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &metav1.Time{Time: tm}
}

type requestBuilder struct {
	obj v1alpha1.ConsumptionRequest
	overrides
}

// aRequest is a valid request for the access item rack-space.
func aRequest() *requestBuilder {
	return &requestBuilder{obj: v1alpha1.ConsumptionRequest{
		TypeMeta:   metav1.TypeMeta{APIVersion: gv.String(), Kind: "ConsumptionRequest"},
		ObjectMeta: metav1.ObjectMeta{Name: "rack-test", Namespace: testNamespace},
		Spec: v1alpha1.ConsumptionRequestSpec{
			Agreement: "acme-test",
			Resource:  &v1alpha1.ResourceRequest{Name: "rack-space"},
		},
	}}
}

func (b *requestBuilder) NoItem() *requestBuilder {
	b.obj.Spec.Resource, b.obj.Spec.Goods, b.obj.Spec.Action = nil, nil, nil
	return b
}
func (b *requestBuilder) Resource(name string) *requestBuilder {
	b.obj.Spec.Resource = &v1alpha1.ResourceRequest{Name: v1alpha1.ItemName(name)}
	return b
}
func (b *requestBuilder) NamespaceName(n string) *requestBuilder {
	b.obj.Spec.Resource.NamespaceName = v1alpha1.NamespaceName(n)
	return b
}

// Goods sets spec.goods; the quantity is always sent, even 0 (which the Go
// type would omit and the API server would then default).
func (b *requestBuilder) Goods(name string, quantity int32) *requestBuilder {
	b.obj.Spec.Goods = &v1alpha1.GoodsRequest{Name: v1alpha1.ItemName(name), Quantity: quantity}
	return b.Set("spec.goods.quantity", quantity)
}
func (b *requestBuilder) Decision(d v1alpha1.GoodsDecision) *requestBuilder {
	b.obj.Spec.Goods.Decision = d
	return b
}

// Action sets spec.action with parameters given as "NAME=value".
func (b *requestBuilder) Action(name string, params ...string) *requestBuilder {
	a := &v1alpha1.ActionRequest{Name: v1alpha1.ItemName(name)}
	for _, p := range params {
		k, v, _ := strings.Cut(p, "=")
		a.Parameters = append(a.Parameters, v1alpha1.ParameterValue{Name: v1alpha1.ParameterName(k), Value: v})
	}
	b.obj.Spec.Action = a
	return b
}
func (b *requestBuilder) Name(n string) *requestBuilder { b.obj.Name = n; return b }
func (b *requestBuilder) Set(path string, v any) *requestBuilder {
	b.overrides = append(b.overrides, fieldOverride{path, v})
	return b
}
func (b *requestBuilder) Obj() *unstructured.Unstructured { return b.apply(&b.obj) }

type builder interface {
	Obj() *unstructured.Unstructured
}

// expectInvalid fails unless err is an Invalid error carrying want, and no
// validation rule failed to evaluate (a rule that errors at runtime is a bug
// even when another rule also rejects the object).
func expectInvalid(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want it rejected with %q", want)
	}
	if !apierrors.IsInvalid(err) {
		t.Fatalf("want an Invalid error with %q, got %s: %v", want, apierrors.ReasonForError(err), err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("rejected without the expected message\n want substring: %q\n got: %v", want, err)
	}
	expectNoRuleErrors(t, err)
}

func expectNoRuleErrors(t *testing.T, err error) {
	t.Helper()
	for _, s := range []string{"no such key", "evaluating rule", "compilation failed", "cost budget", "Internal error"} {
		if err != nil && strings.Contains(err.Error(), s) {
			t.Fatalf("a validation rule failed to evaluate (%q): %v", s, err)
		}
	}
}

// ---------------------------------------------------------------------------
// Samples

// sampleFiles lists the YAML files in config/samples, prerequisites first, and
// leaves out the kustomization.
func sampleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(samplesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files = slices.DeleteFunc(files, func(f string) bool { return filepath.Base(f) == "kustomization.yaml" })
	slices.SortStableFunc(files, func(a, b string) int {
		pa, pb := filepath.Base(a) == prerequisitesFile, filepath.Base(b) == prerequisitesFile
		switch {
		case pa == pb:
			return strings.Compare(a, b)
		case pa:
			return -1
		default:
			return 1
		}
	})
	return files
}

func decodeDocuments(t *testing.T, file string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := testutil.DecodeObjects(data)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(objs) == 0 {
		t.Fatalf("%s holds no objects", file)
	}
	return objs
}

func TestSamplesAreAccepted(t *testing.T) {
	requireAPIServer(t)
	ctx := testContext(t)
	files := sampleFiles(t)
	want := []string{
		prerequisitesFile,
		"service_v1alpha1_serviceoffering.yaml",
		"service_v1alpha1_serviceagreement.yaml",
		"service_v1alpha1_consumptionrequest_resource.yaml",
		"service_v1alpha1_consumptionrequest_goods.yaml",
		"service_v1alpha1_consumptionrequest_action.yaml",
		"service_v1alpha1_consumptionrequest_support.yaml",
	}
	for _, w := range want {
		if !slices.ContainsFunc(files, func(f string) bool { return filepath.Base(f) == w }) {
			t.Errorf("config/samples/%s is missing", w)
		}
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte("# ")) {
			t.Errorf("%s must start with a one-line comment saying what it shows", filepath.Base(file))
		}
		for _, obj := range decodeDocuments(t, file) {
			// Created for real (not dry-run): later samples live in the
			// namespaces the prerequisites create.
			if err := k8sClient.Create(ctx, obj); err != nil {
				t.Errorf("%s: %s %s/%s refused: %v", filepath.Base(file), obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
			}
		}
	}
}

// TestSamplesTellOneStory checks that the samples refer to each other
// correctly: what a controller would refuse (an unknown item, an undeclared
// parameter, a missing source or role) is caught here, not in a demo.
func TestSamplesTellOneStory(t *testing.T) {
	var (
		offerings  []v1alpha1.ServiceOffering
		agreements []v1alpha1.ServiceAgreement
		requests   []v1alpha1.ConsumptionRequest
		prereqs    = map[string]*unstructured.Unstructured{} // kind/namespace/name
	)
	key := func(kind, ns, name string) string { return kind + "/" + ns + "/" + name }
	for _, file := range sampleFiles(t) {
		for _, u := range decodeDocuments(t, file) {
			if filepath.Base(file) == prerequisitesFile {
				prereqs[key(u.GetKind(), u.GetNamespace(), u.GetName())] = u
				continue
			}
			var err error
			switch u.GetKind() {
			case "ServiceOffering":
				var o v1alpha1.ServiceOffering
				err = runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &o, true)
				offerings = append(offerings, o)
			case "ServiceAgreement":
				var a v1alpha1.ServiceAgreement
				err = runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &a, true)
				agreements = append(agreements, a)
			case "ConsumptionRequest":
				var r v1alpha1.ConsumptionRequest
				err = runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &r, true)
				requests = append(requests, r)
			default:
				t.Errorf("%s: %s belongs in %s", filepath.Base(file), u.GetKind(), prerequisitesFile)
			}
			if err != nil {
				t.Errorf("%s: %v", filepath.Base(file), err)
			}
		}
	}
	if len(offerings) != 1 || len(agreements) != 1 || len(requests) != 4 {
		t.Fatalf("want 1 offering, 1 agreement and 4 requests, got %d, %d and %d", len(offerings), len(agreements), len(requests))
	}
	off, agr := offerings[0], agreements[0]

	// The offering's roles exist and are grantable; its goods sources exist.
	for _, ri := range off.Spec.Resources {
		for _, role := range ri.ClusterRoles {
			if role == "view" {
				continue // a Kubernetes default role
			}
			cr, ok := prereqs[key("ClusterRole", "", string(role))]
			if !ok {
				t.Errorf("ClusterRole %s of %s is not in %s", role, ri.Name, prerequisitesFile)
				continue
			}
			if cr.GetLabels()[v1alpha1.LabelGrantable] != "true" {
				t.Errorf("ClusterRole %s is not labelled %s=true", role, v1alpha1.LabelGrantable)
			}
			var typed rbacv1.ClusterRole
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(cr.Object, &typed); err != nil {
				t.Fatal(err)
			}
			for _, rule := range typed.Rules {
				for _, s := range slices.Concat(rule.Verbs, rule.Resources, rule.APIGroups) {
					if s == "*" || s == "escalate" || s == "bind" || s == "impersonate" {
						t.Errorf("ClusterRole %s holds a dangerous permission %q", role, s)
					}
				}
			}
		}
	}
	for _, g := range off.Spec.Goods {
		for _, src := range g.Sources {
			if _, ok := prereqs[key(string(src.Kind), string(off.Spec.ProviderNamespace), string(src.Name))]; !ok {
				t.Errorf("goods source %s %s/%s is not in %s", src.Kind, off.Spec.ProviderNamespace, src.Name, prerequisitesFile)
			}
		}
	}
	if _, ok := prereqs[key("Namespace", "", string(off.Spec.ProviderNamespace))]; !ok {
		t.Errorf("provider namespace %s is not in %s", off.Spec.ProviderNamespace, prerequisitesFile)
	}

	// The agreement names the offering and only its items.
	if string(agr.Spec.Offering) != off.Name {
		t.Errorf("agreement names offering %q, want %q", agr.Spec.Offering, off.Name)
	}
	if _, ok := prereqs[key("Namespace", "", agr.Namespace)]; !ok {
		t.Errorf("consumer namespace %s is not in %s", agr.Namespace, prerequisitesFile)
	}
	hasResource := func(n v1alpha1.ItemName) bool {
		return slices.ContainsFunc(off.Spec.Resources, func(i v1alpha1.ResourceItem) bool { return i.Name == n })
	}
	hasGoods := func(n v1alpha1.ItemName) bool {
		return slices.ContainsFunc(off.Spec.Goods, func(i v1alpha1.GoodsItem) bool { return i.Name == n })
	}
	findAction := func(n v1alpha1.ItemName) *v1alpha1.ActionItem {
		i := slices.IndexFunc(off.Spec.Actions, func(a v1alpha1.ActionItem) bool { return a.Name == n })
		if i < 0 {
			return nil
		}
		return &off.Spec.Actions[i]
	}
	for _, e := range agr.Spec.Entitlements.Resources {
		if !hasResource(e.Name) {
			t.Errorf("entitlement to resource %s: not in the offering", e.Name)
		}
	}
	for _, e := range agr.Spec.Entitlements.Goods {
		if !hasGoods(e.Name) {
			t.Errorf("entitlement to goods %s: not in the offering", e.Name)
		}
	}
	for _, e := range agr.Spec.Entitlements.Actions {
		if findAction(e.Name) == nil {
			t.Errorf("entitlement to action %s: not in the offering", e.Name)
		}
	}
	for _, s := range agr.Spec.Consumer.Subjects {
		if s.Kind == v1alpha1.SubjectServiceAccount {
			if _, ok := prereqs[key("ServiceAccount", string(s.Namespace), s.Name)]; !ok {
				t.Errorf("ServiceAccount subject %s/%s is not in %s", s.Namespace, s.Name, prerequisitesFile)
			}
		}
	}
	if agr.Spec.ValidFrom == nil || !agr.Spec.ValidFrom.Before(&metav1.Time{Time: time.Now()}) {
		t.Errorf("the agreement must already be valid (validFrom in the past) so that the demo works")
	}

	// Each request names the agreement and an entitled item, with the
	// parameters the action declares.
	for _, r := range requests {
		if r.Namespace != agr.Namespace || string(r.Spec.Agreement) != agr.Name {
			t.Errorf("request %s/%s names agreement %s, want %s/%s", r.Namespace, r.Name, r.Spec.Agreement, agr.Namespace, agr.Name)
		}
		switch {
		case r.Spec.Resource != nil:
			if !slices.ContainsFunc(agr.Spec.Entitlements.Resources, func(e v1alpha1.ResourceEntitlement) bool { return e.Name == r.Spec.Resource.Name }) {
				t.Errorf("request %s: resource %s is not entitled", r.Name, r.Spec.Resource.Name)
			}
		case r.Spec.Goods != nil:
			if !slices.ContainsFunc(agr.Spec.Entitlements.Goods, func(e v1alpha1.GoodsEntitlement) bool { return e.Name == r.Spec.Goods.Name }) {
				t.Errorf("request %s: goods %s are not entitled", r.Name, r.Spec.Goods.Name)
			}
		case r.Spec.Action != nil:
			if !slices.ContainsFunc(agr.Spec.Entitlements.Actions, func(e v1alpha1.ActionEntitlement) bool { return e.Name == r.Spec.Action.Name }) {
				t.Errorf("request %s: action %s is not entitled", r.Name, r.Spec.Action.Name)
			}
			a := findAction(r.Spec.Action.Name)
			if a == nil {
				continue
			}
			declared := map[v1alpha1.ParameterName]v1alpha1.ActionParameterSpec{}
			for _, p := range a.Parameters {
				declared[p.Name] = p
			}
			given := map[v1alpha1.ParameterName]bool{}
			for _, p := range r.Spec.Action.Parameters {
				given[p.Name] = true
				if d, ok := declared[p.Name]; !ok || d.Secret {
					t.Errorf("request %s: parameter %s is not declared as a plain parameter of %s", r.Name, p.Name, a.Name)
				}
			}
			for _, p := range r.Spec.Action.SecretParameters {
				given[p.Name] = true
				if d, ok := declared[p.Name]; !ok || !d.Secret {
					t.Errorf("request %s: secret parameter %s is not declared secret by %s", r.Name, p.Name, a.Name)
				}
				sec, ok := prereqs[key("Secret", r.Namespace, string(p.SecretKeyRef.Name))]
				if !ok {
					t.Errorf("request %s: Secret %s/%s is not in %s", r.Name, r.Namespace, p.SecretKeyRef.Name, prerequisitesFile)
					continue
				}
				if _, found, _ := unstructured.NestedString(sec.Object, "stringData", p.SecretKeyRef.Key); !found {
					t.Errorf("request %s: Secret %s has no key %s", r.Name, p.SecretKeyRef.Name, p.SecretKeyRef.Key)
				}
			}
			for _, p := range a.Parameters {
				if p.Required && !given[p.Name] {
					t.Errorf("request %s: required parameter %s missing", r.Name, p.Name)
				}
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Invalid objects

func TestValidObjectsAreAccepted(t *testing.T) {
	requireAPIServer(t)
	for name, b := range map[string]builder{
		"offering":              anOffering(),
		"placed by name":        anOffering().Set("spec.resources.0.placement", map[string]any{"clusters": []any{"eu-1", "eu-2"}}),
		"placed by selector":    anOffering().Set("spec.resources.0.placement", map[string]any{"clusterSelector": map[string]any{"matchLabels": map[string]any{"zone": "eu"}}}),
		"request for a cluster": aRequest().Set("spec.resource.cluster", "eu-1"),
		"offering with goods":   anOffering().Goods("ha-device", v1alpha1.GoodsSource{Kind: "Secret", Name: "ha-device-credentials"}),
		"offering with action":  anOffering().Action(action("install", v1alpha1.ActionAutomated, withJob, "RACK", "DEVICE_2")),
		"manual action":         anOffering().Action(action("support", v1alpha1.ActionManual, noJob, "TICKET")),
		"agreement":             anAgreement(),
		"service account":       anAgreement().Subject(v1alpha1.SubjectServiceAccount, "deployer", "team-payments"),
		"validity window":       anAgreement().Valid("2026-01-01T00:00:00Z", "2027-12-31T00:00:00Z"),
		"objective 99.5":        anAgreement().Objective("99.5"),
		"objective 100":         anAgreement().Objective("100"),
		"maxGrants 0":           anAgreement().MaxGrants(0),
		"service levels":        anAgreement().Set("spec.serviceLevels.fulfilmentTime", "1h30m").Set("spec.serviceLevels.approvalTime", "90s"),
		"window 1m":             anAgreement().Set("spec.serviceLevels.window", "1m"),
		"window a year":         anAgreement().Set("spec.serviceLevels.window", "8760h"),
		"renewal notice":        anAgreement().Valid("2026-01-01T00:00:00Z", "2027-12-31T00:00:00Z").Set("spec.renewBefore", "720h"),
		"auto-renewal":          anAgreement().Valid("2026-01-01T00:00:00Z", "2027-12-31T00:00:00Z").Set("spec.autoRenew", "8760h"),
		"grace period":          anOffering().Set("spec.resources.0.gracePeriod", "168h"),
		"periodic goods and runs": anAgreement().Set("spec.entitlements.goods", []any{map[string]any{"name": "ha-device", "maxQuantity": 4, "period": "720h"}}).
			Set("spec.entitlements.actions", []any{map[string]any{"name": "installation", "period": "1h"}}),
		"plans": withPlans(anOffering()),
		"plan service levels": withPlans(anOffering()).Set("spec.resources.0.plans.0.serviceLevels",
			map[string]any{"approvalTime": "4h", "fulfilmentTime": "87600h"}),
		"entitled plans":       anAgreement().Set("spec.entitlements.resources.0.plans", []any{"small"}),
		"request plan":         aRequest().Set("spec.resource.plan", "large"),
		"resource request":     aRequest(),
		"requested namespace":  aRequest().NamespaceName("payments-prod"),
		"goods request":        aRequest().NoItem().Goods("ha-device", 2),
		"goods accepted":       aRequest().NoItem().Goods("ha-device", 2).Decision(v1alpha1.GoodsAccept),
		"action request":       aRequest().NoItem().Action("installation", "RACK=rack-a"),
		"63-character name":    aRequest().Name(strings.Repeat("a", 63)),
		"quantities":           anOffering().Set("spec.resources.0.quota", map[string]any{"requests.cpu": "500m", "requests.memory": "2Gi", "pods": 20, "count/jobs": "1e3"}),
		"namespace labels":     anOffering().NamespaceLabel("app.kubernetes.io/part-of", "payments"),
		"namespace label team": anOffering().NamespaceLabel("example.com/team", "payments"),
		"namespace annotation": anOffering().NamespaceAnnotation("example.com/owner", "payments"),
		"lookalike label":      anOffering().NamespaceLabel("notkubernetes.io/x", "y"),
		"requested name prefix": anOffering().Set("spec.resources.0.namespace.allowRequestedName", true).
			Set("spec.resources.0.namespace.requestedNamePrefix", "sandbox-"),
	} {
		t.Run(name, func(t *testing.T) {
			err := k8sClient.Create(testContext(t), b.Obj(), client.DryRunAll)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

func TestInvalidObjectsAreRejected(t *testing.T) {
	requireAPIServer(t)
	const (
		dnsLabel  = "must be a DNS label"
		quantity  = "must be a quantity such as 500m or 2Gi"
		exactly1  = "exactly one of resource, goods or action must be set"
		subjectNS = "namespace is required for a ServiceAccount and not allowed for a User or Group"
		objective = "objective must be a percentage greater than 0 and at most 100"
		reserved  = "namespaceName must not be 'default' or start with 'kube-' or 'openshift-'"
		jobRule   = "an Automated action needs a job; a Manual action must not have one"

		namePrefix = "requestedNamePrefix must be lower-case letters, digits and '-', start with a letter or digit and end with '-'"

		reservedLabel      = "labels must not use the prefixes Kubernetes reserves"
		reservedAnnotation = "annotations must not use the operator's own prefix (service.offering.dev/) or the prefixes Kubernetes reserves"
	)
	cases := []struct {
		name string
		obj  builder
		want string
	}{
		// ConsumptionRequest
		{"request without item", aRequest().NoItem(), exactly1},
		{"request with resource and goods", aRequest().Goods("ha-device", 1), exactly1},
		{"request with goods and action", aRequest().NoItem().Goods("ha-device", 1).Action("installation"), exactly1},
		{"request item name not a DNS label", aRequest().Resource("Rack_A"), dnsLabel},
		{"request namespaceName kube-system", aRequest().NamespaceName("kube-system"), reserved},
		{"request namespaceName default", aRequest().NamespaceName("default"), reserved},
		{"request namespaceName not a DNS label", aRequest().NamespaceName("Payments"), dnsLabel},
		{"request name longer than 63", aRequest().Name(strings.Repeat("a", 64)), "the name of a ConsumptionRequest must be at most 63 characters"},
		{"request goods quantity 0", aRequest().NoItem().Goods("ha-device", 0), "spec.goods.quantity in body should be greater than or equal to 1"},
		{"request parameter not upper-case", aRequest().NoItem().Action("installation", "rack=a"), "must be upper-case letters, digits and '_'"},
		{"request decision unknown", aRequest().NoItem().Goods("ha-device", 1).Decision("Maybe"), `supported values: "Accept", "Reject"`},
		{"request agreement not a DNS subdomain", aRequest().Set("spec.agreement", "Acme"), "must be a DNS subdomain"},

		// ServiceAgreement
		{"agreement validUntil before validFrom", anAgreement().Valid("2027-01-01T00:00:00Z", "2026-01-01T00:00:00Z"), "validUntil must be later than validFrom"},
		{"agreement validUntil equal to validFrom", anAgreement().Valid("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"), "validUntil must be later than validFrom"},
		{"ServiceAccount subject without namespace", anAgreement().Subject(v1alpha1.SubjectServiceAccount, "deployer", ""), subjectNS},
		{"User subject with namespace", anAgreement().Subject(v1alpha1.SubjectUser, "alice", "team-payments"), subjectNS},
		{"Group subject with namespace", anAgreement().Subject(v1alpha1.SubjectGroup, "team-payments", "team-payments"), subjectNS},
		{"agreement without subjects", anAgreement().Set("spec.consumer.subjects", []any{}), "spec.consumer.subjects in body should have at least 1 items"},
		{"objective 101", anAgreement().Objective("101"), objective},
		{"objective abc", anAgreement().Objective("abc"), objective},
		{"objective 0", anAgreement().Objective("0"), objective},
		{"fulfilmentTime soon", anAgreement().Set("spec.serviceLevels.fulfilmentTime", "soon"), "spec.serviceLevels.fulfilmentTime in body should match"},
		{"approvalTime 1 day", anAgreement().Set("spec.serviceLevels.approvalTime", "1d"), "spec.serviceLevels.approvalTime in body should match"},
		{"fulfilmentTime over 10 years", anAgreement().Set("spec.serviceLevels.fulfilmentTime", "100000h"), "must be at most 87600h (10 years)"},
		{"window 30s", anAgreement().Set("spec.serviceLevels.window", "30s"), "window must be between 1m and 8760h"},
		{"window over a year", anAgreement().Set("spec.serviceLevels.window", "8761h"), "window must be between 1m and 8760h"},
		{"goods period 30m", anAgreement().Set("spec.entitlements.goods", []any{map[string]any{"name": "ha-device", "period": "30m"}}), "period must be between 1h and 8760h"},
		{"runs period over a year", anAgreement().Set("spec.entitlements.actions", []any{map[string]any{"name": "installation", "period": "8761h"}}), "period must be between 1h and 8760h"},
		{"period a month", anAgreement().Set("spec.entitlements.actions", []any{map[string]any{"name": "installation", "period": "1mo"}}), "spec.entitlements.actions[0].period in body should match"},
		{"window 30 days", anAgreement().Set("spec.serviceLevels.window", "30d"), "spec.serviceLevels.window in body should match"},
		{"maxGrants negative", anAgreement().MaxGrants(-1), "spec.entitlements.resources[0].maxGrants in body should be greater than or equal to 0"},
		{"entitlement name not a DNS label", anAgreement().Set("spec.entitlements.resources.0.name", "Rack_A"), dnsLabel},
		{"approvalPolicy unknown", anAgreement().Set("spec.approvalPolicy", "Sometimes"), `supported values: "Automatic", "Manual"`},

		{"renewBefore without validUntil", anAgreement().Set("spec.renewBefore", "720h"), "renewBefore and autoRenew need validUntil"},
		{"autoRenew without validUntil", anAgreement().Set("spec.autoRenew", "720h"), "renewBefore and autoRenew need validUntil"},
		{"renewBefore 30s", anAgreement().Valid("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z").Set("spec.renewBefore", "30s"), "renewBefore must be between 1m and 87600h"},
		{"renewBefore 30 days", anAgreement().Valid("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z").Set("spec.renewBefore", "30d"), "spec.renewBefore in body should match"},
		{"autoRenew 10m", anAgreement().Valid("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z").Set("spec.autoRenew", "10m"), "autoRenew must be between 1h and 87600h"},
		{"autoRenew over 10 years", anAgreement().Valid("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z").Set("spec.autoRenew", "87601h"), "autoRenew must be between 1h and 87600h"},

		// ServiceOffering
		{"plans without defaultPlan", withPlans(anOffering()).Set("spec.resources.0.defaultPlan", nil), "plans and defaultPlan go together"},
		{"defaultPlan not a plan", withPlans(anOffering()).Set("spec.resources.0.defaultPlan", "huge"), "defaultPlan must name one of the item's plans"},
		{"upgradesTo not a plan", withPlans(anOffering()).Set("spec.resources.0.plans.0.upgradesTo", []any{"huge"}), "upgradesTo must name plans of the same item"},
		{"plans and item quota", withPlans(anOffering()).Set("spec.resources.0.quota", map[string]any{"pods": 1}), "an item with plans takes its quota and limits from the plans"},
		{"plan fulfilmentTime over 10 years", withPlans(anOffering()).Set("spec.resources.0.plans.0.serviceLevels.fulfilmentTime", "87601h"), "must be at most 87600h (10 years)"},
		{"plan approvalTime in days", withPlans(anOffering()).Set("spec.resources.0.plans.1.serviceLevels.approvalTime", "2d"), "spec.resources[0].plans[1].serviceLevels.approvalTime in body should match"},
		{"plan names repeated", withPlans(anOffering()).Set("spec.resources.0.plans.1.name", "small"), "Duplicate value"},
		{"gracePeriod with Retain", anOffering().Set("spec.resources.0.revocationPolicy", "Retain").Set("spec.resources.0.gracePeriod", "1h"), "gracePeriod applies only to revocationPolicy Delete"},
		{"gracePeriod over a year", anOffering().Set("spec.resources.0.gracePeriod", "8761h"), "gracePeriod must be at most 8760h"},
		{"offering with no items", anOffering().NoItems(), "an offering must offer at least one item in resources, goods or actions"},
		{"offering item name not a DNS label", anOffering().ResourceName("Rack_A"), dnsLabel},
		{"Automated action without job", anOffering().Action(action("install", v1alpha1.ActionAutomated, noJob)), jobRule},
		{"Manual action with job", anOffering().Action(action("support", v1alpha1.ActionManual, withJob)), jobRule},
		{"parameter name not upper-case", anOffering().Action(action("install", v1alpha1.ActionAutomated, withJob, "rack")), "must be upper-case letters, digits and '_', starting with a letter"},
		{"parameter name starting with a digit", anOffering().Action(action("install", v1alpha1.ActionAutomated, withJob, "1RACK")), "must be upper-case letters, digits and '_', starting with a letter"},
		{"requestedNamePrefix without allowRequestedName", anOffering().Set("spec.resources.0.namespace.requestedNamePrefix", "sandbox-"),
			"requestedNamePrefix applies to requested names: set allowRequestedName: true with it"},
		{"requestedNamePrefix without a final dash", anOffering().Set("spec.resources.0.namespace.allowRequestedName", true).
			Set("spec.resources.0.namespace.requestedNamePrefix", "sandbox"), namePrefix},
		{"requestedNamePrefix kube-", anOffering().Set("spec.resources.0.namespace.allowRequestedName", true).
			Set("spec.resources.0.namespace.requestedNamePrefix", "kube-"), namePrefix},
		{"requestedNamePrefix upper-case", anOffering().Set("spec.resources.0.namespace.allowRequestedName", true).
			Set("spec.resources.0.namespace.requestedNamePrefix", "Sandbox-"), namePrefix},
		{"namespace label service.offering.dev/", anOffering().NamespaceLabel("service.offering.dev/item", "x"), "labels must not use the operator's own keys"},
		{"namespace label managed-by", anOffering().NamespaceLabel("app.kubernetes.io/managed-by", "me"), "labels must not use the operator's own keys"},
		{"quota with a fractional exponent", anOffering().Set("spec.resources.0.quota", map[string]any{"pods": "1e1.5"}), `spec.resources[0].quota[pods]: Invalid value: "1e1.5": ` + quantity},
		{"quota with a twelve-digit exponent", anOffering().Set("spec.resources.0.quota", map[string]any{"pods": "1e999999999999"}), `spec.resources[0].quota[pods]: Invalid value: "1e999999999999": ` + quantity},
		{"quota with a trailing dot in its exponent", anOffering().Set("spec.resources.0.quota", map[string]any{"pods": "0e0."}), `spec.resources[0].quota[pods]: Invalid value: "0e0.": ` + quantity},
		{"quota of lots", anOffering().Set("spec.resources.0.quota", map[string]any{"requests.cpu": "lots"}), quantity},
		{"limit of lots", anOffering().Set("spec.resources.0.limits", []any{map[string]any{"type": "Container", "max": map[string]any{"memory": "lots"}}}), `spec.resources[0].limits[0].max[memory]: Invalid value: "lots": ` + quantity},
		{"job request of lots", anOffering().Action(action("install", v1alpha1.ActionAutomated, withJob)).Set("spec.actions.0.job.resources.requests", map[string]any{"cpu": "lots"}), `spec.actions[0].job.resources.requests[cpu]: Invalid value: "lots": ` + quantity},
		{"namespace label pod-security enforce", anOffering().NamespaceLabel("pod-security.kubernetes.io/enforce", "privileged"), reservedLabel},
		{"namespace label kubernetes.io/metadata.name", anOffering().NamespaceLabel("kubernetes.io/metadata.name", "kube-system"), reservedLabel},
		{"namespace label k8s.io/", anOffering().NamespaceLabel("k8s.io/trusted", "true"), reservedLabel},
		{"namespace label node.k8s.io/", anOffering().NamespaceLabel("policy.k8s.io/tier", "system"), reservedLabel},
		{"namespace annotation service.offering.dev/", anOffering().NamespaceAnnotation("service.offering.dev/grant", "forged"), reservedAnnotation},
		{"namespace annotation kubernetes.io/", anOffering().NamespaceAnnotation("scheduler.alpha.kubernetes.io/node-selector", "role=infra"), reservedAnnotation},
		{"namespace annotation k8s.io/", anOffering().NamespaceAnnotation("k8s.io/x", "y"), reservedAnnotation},
		{"offering without clusterRoles", anOffering().Set("spec.resources.0.clusterRoles", []any{}), "spec.resources[0].clusterRoles in body should have at least 1 items"},
		{"goods without sources", anOffering().Goods("ha-device"), "spec.goods[0].sources: Required value"},
		{"goods with empty sources", anOffering().Goods("ha-device").Set("spec.goods.0.sources", []any{}), "spec.goods[0].sources in body should have at least 1 items"},
		{"goods source of another kind", anOffering().Goods("ha-device", v1alpha1.GoodsSource{Kind: "Pod", Name: "x"}), `supported values: "Secret", "ConfigMap"`},
		{"providerNamespace not a DNS label", anOffering().Set("spec.providerNamespace", "Colo"), dnsLabel},
		{"job timeout malformed", anOffering().Action(action("install", v1alpha1.ActionAutomated, withJob)).Set("spec.actions.0.job.timeout", "1 hour"), "spec.actions[0].job.timeout in body should match"},
		{"job backoffLimit too high", anOffering().Action(action("install", v1alpha1.ActionAutomated, withJob)).Set("spec.actions.0.job.backoffLimit", 11), "should be less than or equal to 10"},
		{"job podAnnotations with the operator's keys", anOffering().Action(action("install", v1alpha1.ActionAutomated, withJob)).
			Set("spec.actions.0.job.podAnnotations", map[string]any{"service.offering.dev/request": "x"}), "podAnnotations must not use the operator's own keys"},
		{"revocationPolicy unknown", anOffering().Set("spec.resources.0.revocationPolicy", "Archive"), `supported values: "Delete", "Retain"`},
		{"placement with clusters and a selector", anOffering().Set("spec.resources.0.placement", map[string]any{
			"clusters": []any{"eu-1"}, "clusterSelector": map[string]any{"matchLabels": map[string]any{"zone": "eu"}}}),
			"placement names exactly one of clusters or clusterSelector"},
		{"placement with neither", anOffering().Set("spec.resources.0.placement", map[string]any{}), "placement names exactly one of clusters or clusterSelector"},
		{"placement cluster not a DNS label", anOffering().Set("spec.resources.0.placement", map[string]any{"clusters": []any{"EU_1"}}), "should match"},
		{"request cluster not a DNS label", aRequest().Set("spec.resource.cluster", "EU_1"), "should match"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := k8sClient.Create(testContext(t), tc.obj.Obj(), client.DryRunAll)
			expectInvalid(t, err, tc.want)
		})
	}
}

// ---------------------------------------------------------------------------
// Updates (transition rules)

// withPlans gives the offering's first resource item the plans small and
// large, small the default and the only one that upgrades (to large).
func withPlans(b *offeringBuilder) *offeringBuilder {
	return b.Set("spec.resources.0.quota", nil).Set("spec.resources.0.defaultPlan", "small").
		Set("spec.resources.0.plans", []any{
			map[string]any{"name": "small", "quota": map[string]any{"pods": 10}, "upgradesTo": []any{"large"}},
			map[string]any{"name": "large", "quota": map[string]any{"pods": 40}},
		})
}

func TestUpdates(t *testing.T) {
	requireAPIServer(t)
	const (
		kindImmutable     = "the kind of item requested is immutable"
		resourceImmutable = "spec.resource is immutable except for plan; create a new request"
		actionImmutable   = "spec.action is immutable; create a new request"
		goodsImmutable    = "the goods item and quantity are immutable; create a new request"
		decisionFinal     = "spec.goods.decision cannot be changed once given"
	)
	goods := func() *requestBuilder { return aRequest().NoItem().Goods("ha-device", 2) }
	install := func() *requestBuilder { return aRequest().NoItem().Action("installation", "RACK=rack-a") }
	cases := []struct {
		name   string
		base   builder
		mutate func(*unstructured.Unstructured)
		want   string // empty: the update is allowed
	}{
		{"request agreement", aRequest(), patch("spec.agreement", "other"), "agreement is immutable; create a new request"},
		{"request resource item", aRequest(), patch("spec.resource.name", "dedicated-server"), resourceImmutable},
		{"request resource namespaceName", aRequest(), patch("spec.resource.namespaceName", "payments-prod"), resourceImmutable},
		{"request plan changed", aRequest().Set("spec.resource.plan", "small"), patch("spec.resource.plan", "large"), ""},
		{"request plan set", aRequest(), patch("spec.resource.plan", "large"), ""},
		{"request plan and item changed", aRequest().Set("spec.resource.plan", "small"),
			patches(patch("spec.resource.plan", "large"), patch("spec.resource.name", "dedicated-server")), resourceImmutable},
		{"request action item", install(), patch("spec.action.name", "configuration"), actionImmutable},
		{"request action parameters", install(), patch("spec.action.parameters.0.value", "rack-b"), actionImmutable},
		{"request goods name", goods(), patch("spec.goods.name", "ups"), goodsImmutable},
		{"request goods quantity", goods(), patch("spec.goods.quantity", 3), goodsImmutable},
		{"request decision Accept to Reject", goods().Decision(v1alpha1.GoodsAccept), patch("spec.goods.decision", "Reject"), decisionFinal},
		{"request decision removed", goods().Decision(v1alpha1.GoodsReject), patch("spec.goods.decision", nil), decisionFinal},
		{"request decision empty to Accept", goods(), patch("spec.goods.decision", "Accept"), ""},
		{"request decision empty to Reject", goods(), patch("spec.goods.decision", "Reject"), ""},
		{"request decision unchanged", goods().Decision(v1alpha1.GoodsAccept), patch("metadata.labels", map[string]any{"team": "payments"}), ""},
		{"request labels", aRequest(), patch("metadata.labels", map[string]any{"team": "payments"}), ""},
		{"request resource to goods", aRequest(), patches(patch("spec.resource", nil), patch("spec.goods", map[string]any{"name": "ha-device"})), kindImmutable},
		{"request goods to action", goods(), patches(patch("spec.goods", nil), patch("spec.action", map[string]any{"name": "installation"})), kindImmutable},
		{"request action to resource", install(), patches(patch("spec.action", nil), patch("spec.resource", map[string]any{"name": "rack-space"})), kindImmutable},
		{"request goods to resource", goods().Decision(v1alpha1.GoodsAccept), patches(patch("spec.goods", nil), patch("spec.resource", map[string]any{"name": "rack-space"})), kindImmutable},
		{"agreement offering", anAgreement(), patch("spec.offering", "other"), "offering is immutable; create a new agreement for another offering"},
		{"agreement suspended", anAgreement(), patch("spec.suspended", true), ""},
		{"agreement entitlements", anAgreement(), patch("spec.entitlements.resources.0.maxGrants", 5), ""},
		{"offering providerNamespace", anOffering(), patch("spec.providerNamespace", "other-provider"), "providerNamespace is immutable"},
		{"offering description", anOffering(), patch("spec.description", "Now with more racks."), ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			obj := tc.base.Obj()
			obj.SetName(fmt.Sprintf("update-%d", i))
			if err := k8sClient.Create(ctx, obj); err != nil {
				t.Fatalf("creating the base object: %v", err)
			}
			t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), obj) })
			tc.mutate(obj)
			err := k8sClient.Update(ctx, obj)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("update refused: %v", err)
				}
				return
			}
			expectInvalid(t, err, tc.want)
		})
	}
}

// TestStatusSubresource checks that status is written only through /status
// and spec only through the main resource.
func TestStatusSubresource(t *testing.T) {
	requireAPIServer(t)
	cases := []struct {
		name       string
		base       builder
		specPath   string
		specValue  any
		statusPath string
		statusVal  any
	}{
		{"offering", anOffering().Name("status-offering"), "spec.description", "changed through status", "status.agreements", int64(3)},
		{"agreement", anAgreement().Name("status-agreement"), "spec.suspended", true, "status.phase", "Active"},
		{"request", aRequest().NoItem().Goods("ha-device", 1).Name("status-request"), "spec.goods.decision", "Accept", "status.phase", "Delivered"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			obj := tc.base.Obj()
			if err := k8sClient.Create(ctx, obj); err != nil {
				t.Fatalf("creating: %v", err)
			}
			t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), obj) })
			specBefore, _, _ := unstructured.NestedFieldCopy(obj.Object, strings.Split(tc.specPath, ".")...)

			// Status through the main resource: ignored.
			viaMain := obj.DeepCopy()
			patch(tc.statusPath, tc.statusVal)(viaMain)
			if err := k8sClient.Update(ctx, viaMain); err != nil {
				t.Fatalf("update through the main resource: %v", err)
			}
			got := get(t, ctx, obj)
			if v, found, _ := unstructured.NestedFieldNoCopy(got.Object, strings.Split(tc.statusPath, ".")...); found {
				t.Errorf("%s was written through the main resource: %v", tc.statusPath, v)
			}

			// Spec through /status: ignored, while the status change is kept.
			viaStatus := got.DeepCopy()
			patch(tc.specPath, tc.specValue)(viaStatus)
			patch(tc.statusPath, tc.statusVal)(viaStatus)
			if err := k8sClient.Status().Update(ctx, viaStatus); err != nil {
				t.Fatalf("update through /status: %v", err)
			}
			got = get(t, ctx, obj)
			if v, _, _ := unstructured.NestedFieldNoCopy(got.Object, strings.Split(tc.statusPath, ".")...); v != tc.statusVal {
				t.Errorf("%s = %v after the /status update, want %v", tc.statusPath, v, tc.statusVal)
			}
			if v, _, _ := unstructured.NestedFieldNoCopy(got.Object, strings.Split(tc.specPath, ".")...); fmt.Sprint(v) != fmt.Sprint(specBefore) {
				t.Errorf("%s was written through /status: %v", tc.specPath, v)
			}
		})
	}
}

func get(t *testing.T, ctx context.Context, obj *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(obj.GroupVersionKind())
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), got); err != nil {
		t.Fatalf("get: %v", err)
	}
	return got
}

// ---------------------------------------------------------------------------
// The generated CRDs

func loadCRDs(t *testing.T) map[string]*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(crdDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	crds := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(data, crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		crds[crd.Spec.Names.Kind] = crd
	}
	return crds
}

func TestCRDsDescribeEveryProperty(t *testing.T) {
	crds := loadCRDs(t)
	if len(crds) != 5 {
		t.Fatalf("want 5 CRDs in %s, got %d", crdDir, len(crds))
	}
	for kind, crd := range crds {
		for _, v := range crd.Spec.Versions {
			if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				t.Errorf("%s %s has no schema", kind, v.Name)
				continue
			}
			root := *v.Schema.OpenAPIV3Schema.DeepCopy()
			// controller-gen always writes the top-level metadata as a bare
			// {type: object} (FixTopLevelMetadata); the API server documents it
			// as ObjectMeta. Everything else, embedded core types included, must
			// be described.
			if m, ok := root.Properties["metadata"]; ok && m.Type == "object" && len(m.Properties) == 0 {
				delete(root.Properties, "metadata")
			}
			var missing []string
			walkSchema(kind, root, &missing)
			for _, p := range missing {
				t.Errorf("%s %s: %s has no description", kind, v.Name, p)
			}
		}
	}
}

// walkSchema collects the paths of properties without a description.
func walkSchema(path string, s apiextensionsv1.JSONSchemaProps, missing *[]string) {
	if strings.TrimSpace(s.Description) == "" {
		*missing = append(*missing, path)
	}
	for name, p := range s.Properties {
		walkSchema(path+"."+name, p, missing)
	}
	// Array items and map values carry the description of the field that
	// holds them; only their own properties must be described.
	var children []apiextensionsv1.JSONSchemaProps
	if s.Items != nil && s.Items.Schema != nil {
		children = append(children, *s.Items.Schema)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		children = append(children, *s.AdditionalProperties.Schema)
	}
	for _, c := range children {
		for name, p := range c.Properties {
			walkSchema(path+"[]."+name, p, missing)
		}
	}
}

func TestCRDNamesAndColumns(t *testing.T) {
	want := map[string]struct {
		scope      apiextensionsv1.ResourceScope
		shortNames []string
	}{
		"ServiceOffering":    {apiextensionsv1.ClusterScoped, []string{"svcoffering", "sof"}},
		"ServiceAgreement":   {apiextensionsv1.NamespaceScoped, []string{"svcagreement", "sag"}},
		"ConsumptionRequest": {apiextensionsv1.NamespaceScoped, []string{"consumption", "creq"}},
		"MemberCluster":      {apiextensionsv1.ClusterScoped, []string{"mcl"}},
	}
	crds := loadCRDs(t)
	for kind, w := range want {
		crd, ok := crds[kind]
		if !ok {
			t.Errorf("no CRD for %s", kind)
			continue
		}
		if crd.Spec.Scope != w.scope {
			t.Errorf("%s scope = %s, want %s", kind, crd.Spec.Scope, w.scope)
		}
		if !slices.Equal(crd.Spec.Names.ShortNames, w.shortNames) {
			t.Errorf("%s shortNames = %v, want %v", kind, crd.Spec.Names.ShortNames, w.shortNames)
		}
		if !slices.Contains(crd.Spec.Names.Categories, "offering") {
			t.Errorf("%s categories = %v, want them to include offering", kind, crd.Spec.Names.Categories)
		}
		for _, v := range crd.Spec.Versions {
			if v.Subresources == nil || v.Subresources.Status == nil {
				t.Errorf("%s %s has no status subresource", kind, v.Name)
			}
			var cols []string
			for _, c := range v.AdditionalPrinterColumns {
				cols = append(cols, c.Name)
			}
			for _, c := range []string{"Ready", "Age"} {
				if !slices.Contains(cols, c) {
					t.Errorf("%s %s print columns %v lack %s", kind, v.Name, cols, c)
				}
			}
		}
	}
}

// TestConditionTimesMustParse: an approver writes conditions through the
// status subresource; a lastTransitionTime the operator could not decode
// (the API server's date-time format is looser than Go's RFC 3339 parser)
// would break every list of requests, so it is rejected.
func TestConditionTimesMustParse(t *testing.T) {
	requireAPIServer(t)
	ctx := testContext(t)
	u := aRequest().Name("times-" + strings.ToLower(strconv.FormatInt(time.Now().UnixNano(), 36))).Obj()
	if err := k8sClient.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), u) })
	for _, ts := range []string{"2026-06-01t12:00:00z", "2026-06-01T12:00:00+99:99", "2026-06-01T12:00:00x5Z"} {
		bad := u.DeepCopy()
		cond := map[string]any{"type": "Approved", "status": "True", "reason": "ApprovedByProvider", "message": "ok", "lastTransitionTime": ts}
		if err := unstructured.SetNestedSlice(bad.Object, []any{cond}, "status", "conditions"); err != nil {
			t.Fatal(err)
		}
		err := k8sClient.Status().Update(ctx, bad)
		if err == nil || !strings.Contains(err.Error(), "lastTransitionTime must be an RFC 3339 date-time") {
			t.Errorf("lastTransitionTime %q: got %v, want a rejection", ts, err)
		}
	}
	// The same for the agreement's dates and for durations beyond what Go can
	// hold: the API server's own parser refuses them while evaluating the rule,
	// and the rejection carries the rule's message.
	for _, b := range []struct {
		obj  builder
		want string
	}{
		{anAgreement().Set("spec.validFrom", "2026-01-01t00:00:00z"), "must be an RFC 3339 date-time"},
		{anAgreement().Set("spec.validUntil", "2026-06-01T12:00:00+99:99"), "must be an RFC 3339 date-time"},
		{anAgreement().Set("spec.serviceLevels.approvalTime", "3000000h"), "must be at most 87600h"},
	} {
		if err := k8sClient.Create(ctx, b.obj.Obj(), client.DryRunAll); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("got %v, want a rejection saying %q", err, b.want)
		}
	}
	good := u.DeepCopy()
	cond := map[string]any{"type": "Approved", "status": "True", "reason": "ApprovedByProvider", "message": "ok", "lastTransitionTime": "2026-06-01T12:00:00Z"}
	if err := unstructured.SetNestedSlice(good.Object, []any{cond}, "status", "conditions"); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Status().Update(ctx, good); err != nil {
		t.Fatalf("a valid condition was refused: %v", err)
	}
}

// TestServiceLevelDefaults: an agreement with targets but no objective or
// window gets the documented defaults from the API server ("100" and 720h),
// and the agreement's print columns show compliance and usage.
func TestServiceLevelDefaults(t *testing.T) {
	requireAPIServer(t)
	u := anAgreement().Set("spec.serviceLevels.fulfilmentTime", "30s").Obj()
	if err := k8sClient.Create(testContext(t), u, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	sl, _, _ := unstructured.NestedStringMap(u.Object, "spec", "serviceLevels")
	if sl["objective"] != "100" || sl["window"] != "720h" || sl["fulfilmentTime"] != "30s" {
		t.Fatalf("serviceLevels after defaulting = %v", sl)
	}
	crd := loadCRDs(t)["ServiceAgreement"]
	var cols []string
	for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
		cols = append(cols, c.Name)
	}
	for _, c := range []string{"Compliance", "SLO-Met", "Usage", "Breached", "At-Risk"} {
		if !slices.Contains(cols, c) {
			t.Errorf("ServiceAgreement print columns %v lack %s", cols, c)
		}
	}
}

// TestShortNamesAreUnique asks the API server which short names are taken:
// ours must not shadow a built-in resource (as "sa" would ServiceAccount).
func TestShortNamesAreUnique(t *testing.T) {
	requireAPIServer(t)
	dc, err := discovery.NewDiscoveryClientForConfig(restConfig)
	if err != nil {
		t.Fatal(err)
	}
	_, lists, err := dc.ServerGroupsAndResources()
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	ours := map[string]metav1.APIResource{}
	others := map[string]string{}
	for _, l := range lists {
		gvr, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") {
				continue // a subresource such as status
			}
			if gvr.Group == gv.Group {
				ours[r.Kind] = r
				continue
			}
			for _, s := range append(slices.Clone(r.ShortNames), r.Name, r.SingularName) {
				others[s] = gvr.WithResource(r.Name).String()
			}
		}
	}
	if len(ours) != 5 {
		t.Fatalf("the API server serves %d kinds of %s, want 5", len(ours), gv.Group)
	}
	for kind, r := range ours {
		if !slices.Contains(r.Categories, "offering") {
			t.Errorf("%s is served without the offering category: %v", kind, r.Categories)
		}
		for _, s := range r.ShortNames {
			if other, taken := others[s]; taken {
				t.Errorf("%s short name %q is already used by %s", kind, s, other)
			}
		}
	}
}

// TestQuantityErrorsAreReadable: a quota a person mistypes is refused with
// words, not with the regular expression that checks it (hack/crdquantity).
func TestQuantityErrorsAreReadable(t *testing.T) {
	requireAPIServer(t)
	err := k8sClient.Create(testContext(t), anOffering().Set("spec.resources.0.quota", map[string]any{"requests.cpu": "lots"}).Obj(), client.DryRunAll)
	expectInvalid(t, err, `spec.resources[0].quota[requests.cpu]: Invalid value: "lots": must be a quantity such as 500m or 2Gi`)
	for _, raw := range []string{"should match", "[KMGTPE]"} {
		if strings.Contains(err.Error(), raw) {
			t.Errorf("the rejection shows the expression (%q): %v", raw, err)
		}
	}
}
