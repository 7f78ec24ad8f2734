// Package chart checks the Helm chart against config/: rendered with helm
// and built with kustomize, the two installations must hold the same objects,
// and every manager flag must have a value in the chart.
//
// It runs the helm binary named by HELM (make test builds bin/helm from
// hack/tools and sets it).
package chart

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/offering-operator/offering-operator/internal/testutil"
)

const (
	root      = "../.."
	chartDir  = root + "/charts/offering-operator"
	namespace = "offering-operator-system"
)

var monitoringOn = []string{
	"monitoring.serviceMonitor.enable=true", "monitoring.prometheusRule.enable=true", "monitoring.dashboard.enable=true",
}

// TestChartMatchesKustomize renders the chart with each set of values and
// compares it, object by object and field by field, with config/base and the
// components the same values switch on.
func TestChartMatchesKustomize(t *testing.T) {
	helm := helmBinary(t)
	for _, tc := range []struct {
		name       string
		set        []string
		components []string
	}{
		{name: "defaults as config/default", components: []string{"admission"}},
		{name: "monitoring on", set: monitoringOn, components: []string{"admission", "prometheus"}},
		{name: "admission off", set: []string{"admissionPolicies.enable=false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chart := index(t, "helm", renderChart(t, helm, tc.set...))
			kust := index(t, "kustomize", buildKustomize(t, tc.components...))
			for _, k := range sortedKeys(kust) {
				if _, ok := chart[k]; !ok {
					t.Errorf("%s is in kustomize's build but not in the chart's", k)
				}
			}
			for _, k := range sortedKeys(chart) {
				want, ok := kust[k]
				if !ok {
					t.Errorf("%s is in the chart but not in kustomize's build", k)
					continue
				}
				if d := diff(chart[k], want, ""); len(d) > 0 {
					t.Errorf("%s differs (chart, then kustomize):\n  %s", k, strings.Join(d, "\n  "))
				}
			}
		})
	}
}

// TestChartValuesOfferEveryManagerFlag finds every flag the manager defines
// (flag.XxxVar and flag.Xxx calls in package main) and checks that the
// chart's Deployment can set it and values.yaml documents it, so that a new
// flag cannot ship without its value.
func TestChartValuesOfferEveryManagerFlag(t *testing.T) {
	flags := managerFlags(t)
	if len(flags) < 10 {
		t.Fatalf("found only %d flags in main.go: %v", len(flags), flags)
	}
	deployment := readFile(t, chartDir+"/templates/deployment.yaml")
	values := readFile(t, chartDir+"/values.yaml")
	for _, f := range flags {
		// Passed as "- --name..." or through the listFlag helper's "name".
		if !regexp.MustCompile(`(- --|")` + regexp.QuoteMeta(f) + `\b`).MatchString(deployment) {
			t.Errorf("--%s: templates/deployment.yaml never passes it; add a value for it (values.yaml) and pass it", f)
		}
		if !strings.Contains(values, "--"+f) {
			t.Errorf("--%s: values.yaml does not say which value sets it", f)
		}
	}
}

// TestChartValuesReachTheManager renders the chart with a value for every
// flag and checks the arguments the manager gets.
func TestChartValuesReachTheManager(t *testing.T) {
	out := renderChart(t, helmBinary(t),
		"allowedClusterRoles={edit,view}", "providerNamespaces={platform,team-*}", "watchNamespaces={a,b}",
		"omitEvents={}", "leaderElection.enable=false", "leaderElection.namespace=elect", "leaderElection.leaseDuration=30s",
		"maxConcurrentReconciles=8", "kubeAPI.qps=50", "kubeAPI.burst=100", "kubeAPI.compression=true",
		"metrics.port=9443", "metrics.secure=false", "metrics.enableHTTP2=true", "healthProbe.port=9081",
		"pprof.bindAddress=localhost:6060", "logging.level=debug", "logging.encoder=console", "logging.development=true",
		"extraArgs={--something=else}", "image.repository=registry.example/offering-operator", "image.tag=v1.2.3")
	dep := index(t, "helm", out)["apps/v1/Deployment/"+namespace+"/offering-operator-controller-manager"]
	c := dep["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	var args []string
	for _, a := range c["args"].([]any) {
		args = append(args, a.(string))
	}
	want := []string{
		"--health-probe-bind-address=:9081", "--metrics-bind-address=:9443", "--leader-election-namespace=elect",
		"--leader-election-lease-duration=30s", "--metrics-secure=false", "--enable-http2",
		"--allowed-cluster-roles=edit,view", "--provider-namespaces=platform,team-*", "--watch-namespaces=a,b",
		"--omit-events=", "--pprof-bind-address=localhost:6060", "--max-concurrent-reconciles=8",
		"--kube-api-qps=50", "--kube-api-burst=100", "--kube-api-compression", "--zap-log-level=debug",
		"--zap-encoder=console", "--zap-devel", "--something=else",
	}
	if !reflect.DeepEqual(args, want) {
		t.Errorf("manager arguments:\n got %q\nwant %q", args, want)
	}
	if c["image"] != "registry.example/offering-operator:v1.2.3" {
		t.Errorf("image %v", c["image"])
	}
}

// managerFlags lists the flags defined in the manager's package main.
func managerFlags(t *testing.T) []string {
	t.Helper()
	_, files := testutil.PackageSources(t, root)
	var flags []string
	for _, f := range files {
		flags = append(flags, flagsDefinedIn(f)...)
	}
	return flags
}

// flagsDefinedIn lists the names given to flag.XxxVar and flag.Xxx calls.
func flagsDefinedIn(f *ast.File) []string {
	var flags []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "flag" || len(call.Args) < 2 {
			return true
		}
		arg := call.Args[0]
		if strings.HasSuffix(sel.Sel.Name, "Var") {
			arg = call.Args[1]
		}
		if lit, ok := arg.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			name, _ := strconv.Unquote(lit.Value)
			flags = append(flags, name)
		}
		return true
	})
	return flags
}

func helmBinary(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	h, err := filepath.Abs(root + "/bin/helm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(h); err != nil {
		if testing.Short() {
			t.Skip("no helm: set HELM or run make bin/helm")
		}
		t.Fatalf("no helm: set HELM or run make bin/helm (%v)", err)
	}
	return h
}

func renderChart(t *testing.T, helm string, set ...string) []byte {
	t.Helper()
	args := []string{"template", "offering-operator", chartDir, "--namespace", namespace}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(helm, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// buildKustomize builds config/base with the components, as
// hack/kustomize-build.sh does (with "admission" alone: config/default).
func buildKustomize(t *testing.T, components ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	config, err := filepath.Abs(root + "/config")
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, config)
	if err != nil {
		t.Fatal(err)
	}
	k := "resources:\n- " + rel + "/base\ncomponents:\n"
	for _, c := range components {
		k += "- " + rel + "/components/" + c + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize: %v", err)
	}
	// Each object as kustomize decoded it, written by the same YAML library
	// as the chart's generated templates: kustomize's own writer keeps folded
	// scalars folded, which the YAML reader here takes differently.
	var out []byte
	for _, r := range res.Resources() {
		m, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		b, err := yaml.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(append(out, "---\n"...), b...)
	}
	return out
}

// clusterScoped are the kinds without a namespace; kustomize sets one on
// those its schema does not know (the admission policies), the API server
// ignores it.
var clusterScoped = map[string]bool{
	"CustomResourceDefinition": true, "ClusterRole": true, "ClusterRoleBinding": true,
	"MutatingAdmissionPolicy": true, "MutatingAdmissionPolicyBinding": true,
	"ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true,
}

// Labels and annotations that only say who installed an object.
var installerLabels = []string{
	"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance",
	"app.kubernetes.io/version", "app.kubernetes.io/part-of",
}

// index parses a multi-document YAML stream into objects by
// apiVersion/kind/namespace/name, without what differs by installer: the
// chart leaves the Namespace to `helm install --create-namespace`.
func index(t *testing.T, what string, stream []byte) map[string]map[string]any {
	t.Helper()
	objs := map[string]map[string]any{}
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(stream), -1) {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, doc)
		}
		if obj == nil || obj["kind"] == "Namespace" {
			continue
		}
		kind := obj["kind"].(string)
		md := obj["metadata"].(map[string]any)
		if clusterScoped[kind] {
			delete(md, "namespace")
		}
		for _, field := range []string{"labels", "annotations"} {
			m, _ := md[field].(map[string]any)
			for _, l := range installerLabels {
				delete(m, l)
			}
			delete(m, "helm.sh/resource-policy")
			if m != nil && len(m) == 0 {
				delete(md, field)
			}
		}
		k := fmt.Sprintf("%s/%s/%v/%v", obj["apiVersion"], kind, md["namespace"], md["name"])
		if md["namespace"] == nil {
			k = fmt.Sprintf("%s/%s/%v", obj["apiVersion"], kind, md["name"])
		}
		if _, dup := objs[k]; dup {
			t.Errorf("%s: %s twice", what, k)
		}
		objs[k] = obj
	}
	return objs
}

// diff lists the paths where a and b differ, with both values.
func diff(a, b any, path string) []string {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		var out []string
		for _, k := range sortedKeys(keys) {
			out = append(out, diff(am[k], bm[k], path+"."+k)...)
		}
		return out
	}
	al, aok := a.([]any)
	bl, bok := b.([]any)
	if aok && bok && len(al) == len(bl) {
		var out []string
		for i := range al {
			out = append(out, diff(al[i], bl[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	}
	if reflect.DeepEqual(a, b) {
		return nil
	}
	return []string{fmt.Sprintf("%s: %s | %s", path, short(a), short(b))}
}

func short(v any) string {
	b, _ := yaml.Marshal(v)
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return strings.ReplaceAll(s, "\n", " ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
