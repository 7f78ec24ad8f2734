package gitops

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite config/gitops/argocd/argocd-cm-patch.yaml from health.lua")

// argoDir is where the Argo CD health checks live, relative to this package.
var argoDir = filepath.Join("..", "..", "config", "gitops", "argocd")

// The kinds with a health check; each has the key argoKeyPrefix+argoGroup+"_"+kind in argocd-cm,
// all holding the one script health.lua.
var argoKinds = []string{"ServiceOffering", "ServiceAgreement", "ConsumptionRequest"}

const (
	argoKeyPrefix = "resource.customizations.health."
	argoGroup     = "service.offering.dev"
)

func readScript(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(argoDir, "health.lua"))
	if err != nil {
		t.Fatalf("reading the health check: %v", err)
	}
	return string(b)
}

// asLive gives obj the apiVersion and kind that every object Argo CD hands to a health check carries.
func asLive(kind string, obj map[string]any) map[string]any {
	obj["apiVersion"] = argoGroup + "/v1alpha1"
	obj["kind"] = kind
	return obj
}

// argoHealth runs script on obj the way Argo CD runs a health check from
// argocd-cm: a fresh gopher-lua state without the standard libraries except
// package, base and table (Argo CD adds a reduced os library, which the
// scripts do not use), a one-second deadline, the object as the global obj,
// and the returned table read as {status, message}.
func argoHealth(script string, obj map[string]any) (status, message string, err error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for name, open := range map[string]lua.LGFunction{
		lua.LoadLibName: lua.OpenPackage, lua.BaseLibName: lua.OpenBase, lua.TabLibName: lua.OpenTable,
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(open), NRet: 0, Protect: true}, lua.LString(name)); err != nil {
			return "", "", err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return "", "", err
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return "", "", fmt.Errorf("the script returned %s, not a table", l.Get(-1).Type())
	}
	st, ok := ret.RawGetString("status").(lua.LString)
	if !ok {
		return "", "", fmt.Errorf("the returned table has no string status")
	}
	msg, _ := ret.RawGetString("message").(lua.LString)
	return string(st), string(msg), nil
}

// toLua converts an unstructured value to Lua as Argo CD does: numbers of any
// Go type become Lua numbers, maps tables, slices arrays.
func toLua(l *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case string:
		return lua.LString(x)
	case int64:
		return lua.LNumber(x)
	case int32:
		return lua.LNumber(x)
	case int:
		return lua.LNumber(x)
	case float64:
		return lua.LNumber(x)
	case []any:
		t := l.CreateTable(len(x), 0)
		for _, e := range x {
			t.Append(toLua(l, e))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(x))
		for k, e := range x {
			t.RawSetString(k, toLua(l, e))
		}
		return t
	}
	panic(fmt.Sprintf("unexpected unstructured value %T", v))
}

func runArgoCases(t *testing.T, kind string, cases []healthCase) {
	script := readScript(t)
	for _, tc := range cases {
		if tc.argo == "" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			obj := asLive(kind, tc.obj())
			status, message, err := argoHealth(script, obj)
			if err != nil {
				t.Fatalf("health check failed: %v", err)
			}
			want := tc.message
			if want == "" {
				want = readyMessage(t, obj)
			}
			if status != tc.argo || message != want {
				t.Errorf("health = %s %q, want %s %q", status, message, tc.argo, want)
			}
		})
	}
}

func TestArgoCDHealthServiceOffering(t *testing.T) {
	runArgoCases(t, "ServiceOffering", offeringCases())
}

func TestArgoCDHealthServiceAgreement(t *testing.T) {
	runArgoCases(t, "ServiceAgreement", agreementCases())
}

func TestArgoCDHealthConsumptionRequest(t *testing.T) {
	runArgoCases(t, "ConsumptionRequest", requestCases())
}

// TestArgoCDHealthToleratesPartialStatus feeds every script objects with
// missing or empty fields (as a status written by an older operator, or
// edited by hand, could be): the script must never fail, and must not report
// Healthy without a Ready=True condition.
func TestArgoCDHealthToleratesPartialStatus(t *testing.T) {
	partial := map[string]map[string]any{
		"no metadata.generation":   {"metadata": map[string]any{"name": "x"}, "status": map[string]any{"observedGeneration": int64(1)}},
		"empty status":             {"metadata": map[string]any{"generation": int64(1)}, "status": map[string]any{}},
		"empty conditions":         {"metadata": map[string]any{"generation": int64(1)}, "status": map[string]any{"observedGeneration": int64(1), "conditions": []any{}}},
		"condition without fields": {"metadata": map[string]any{"generation": int64(1)}, "status": map[string]any{"observedGeneration": int64(1), "conditions": []any{map[string]any{"type": "Ready"}}}},
		"only other conditions": {"metadata": map[string]any{"generation": int64(1)}, "status": map[string]any{
			"observedGeneration": int64(1), "phase": "Active",
			"conditions": []any{map[string]any{"type": "Active", "status": "True", "reason": "Active", "message": "in force"}},
		}},
	}
	script := readScript(t)
	for _, kind := range argoKinds {
		for name, obj := range partial {
			t.Run(kind+"/"+name, func(t *testing.T) {
				status, _, err := argoHealth(script, asLive(kind, obj))
				if err != nil {
					t.Fatalf("health check failed: %v", err)
				}
				if status != argoProgressing {
					t.Errorf("health = %s, want %s", status, argoProgressing)
				}
			})
		}
	}
}

// argoPatchHeader heads the generated argocd-cm patch.
const argoPatchHeader = `# Argo CD health checks for offering-operator's ServiceOffering, ServiceAgreement
# and ConsumptionRequest. Merge into Argo CD's argocd-cm ConfigMap, for example:
#   kubectl -n argocd patch configmap argocd-cm --type merge \
#     --patch-file config/gitops/argocd/argocd-cm-patch.yaml
# or list this file under "patches:" in the kustomization that installs Argo CD
# (change metadata.namespace if Argo CD does not run in "argocd").
#
# Generated from health.lua in this directory; do not edit by hand. After
# changing the script, regenerate and test with:
#   go test ./internal/gitops -run TestArgoCDConfigMapPatch -update
#   go test ./internal/gitops
`

// renderArgoPatch renders the argocd-cm patch holding every script verbatim.
func renderArgoPatch(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(argoPatchHeader)
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n  namespace: argocd\ndata:\n")
	script := readScript(t)
	if !strings.HasSuffix(script, "\n") || strings.HasSuffix(script, "\n\n") || strings.Contains(script, "\t") {
		t.Fatal("health.lua must end with exactly one newline and be indented with spaces, so that a YAML block scalar holds it verbatim")
	}
	for _, kind := range argoKinds {
		fmt.Fprintf(&b, "  %s%s_%s: |\n", argoKeyPrefix, argoGroup, kind)
		for _, line := range strings.SplitAfter(strings.TrimSuffix(script, "\n"), "\n") {
			if strings.TrimSpace(line) == "" {
				b.WriteString("\n")
				continue
			}
			b.WriteString("    " + line)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestArgoCDConfigMapPatch checks that argocd-cm-patch.yaml is the current
// rendering of health.lua, and that it parses back to exactly the script under every key.
func TestArgoCDConfigMapPatch(t *testing.T) {
	path := filepath.Join(argoDir, "argocd-cm-patch.yaml")
	want := renderArgoPatch(t)
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s is out of date with health.lua; regenerate it with: go test ./internal/gitops -run TestArgoCDConfigMapPatch -update", path)
	}
	var cm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
	}
	if err := yaml.UnmarshalStrict(got, &cm); err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	if cm.APIVersion != "v1" || cm.Kind != "ConfigMap" || cm.Metadata.Name != "argocd-cm" {
		t.Errorf("%s is not a patch of ConfigMap argocd-cm", path)
	}
	if len(cm.Data) != len(argoKinds) {
		t.Errorf("%s has %d keys, want %d", path, len(cm.Data), len(argoKinds))
	}
	for _, kind := range argoKinds {
		if cm.Data[argoKeyPrefix+argoGroup+"_"+kind] != readScript(t) {
			t.Errorf("%s: %s%s_%s does not hold health.lua verbatim", path, argoKeyPrefix, argoGroup, kind)
		}
	}
}

// TestArgoSandboxIsArgoCDs checks that the runner is as strict as Argo CD: a
// health check from argocd-cm has no string library, so a script that used
// one would pass a laxer test and fail in Argo CD.
func TestArgoSandboxIsArgoCDs(t *testing.T) {
	_, _, err := argoHealth(`return { status = string.format("%s", "Healthy") }`, map[string]any{})
	if err == nil {
		t.Fatal("the string library is available in the test sandbox, but not in Argo CD's")
	}
	status, _, err := argoHealth(`local t = {} table.insert(t, "Healthy") return { status = t[1] }`, map[string]any{})
	if err != nil || status != argoHealthy {
		t.Fatalf("the table library must be available: %s, %v", status, err)
	}
}
