// Package monitoring tests what config/prometheus ships: the alerts with
// promtool (the binary named by PROMTOOL; make test builds bin/promtool from
// hack/promtool), and that the alerts and the Grafana dashboard ask only for
// metrics the operator really exports.
package monitoring

import (
	"encoding/json"
	"go/ast"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/offering-operator/offering-operator/internal/testutil"
)

const (
	root       = "../.."
	ruleFile   = root + "/config/prometheus/prometheus_rule.yaml"
	ruleTests  = root + "/config/prometheus/prometheus_rule_test.yaml"
	dashboard  = root + "/config/prometheus/dashboard.json"
	metricDocs = root + "/docs/metrics.md"
)

// exporters are the packages that define the operator's own metrics.
var exporters = []string{root + "/controllers", root + "/internal/apicalls"}

// prometheusOwn are series Prometheus makes itself for every target.
var prometheusOwn = map[string]bool{"up": true}

type prometheusRule struct {
	Spec struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// TestAlertRules checks the PrometheusRule with promtool and runs its unit
// tests (prometheus_rule_test.yaml).
func TestAlertRules(t *testing.T) {
	promtool := os.Getenv("PROMTOOL")
	if promtool == "" {
		promtool, _ = filepath.Abs(root + "/bin/promtool")
	}
	if _, err := os.Stat(promtool); err != nil {
		if testing.Short() {
			t.Skip("no promtool: set PROMTOOL or run make bin/promtool")
		}
		t.Fatalf("no promtool: set PROMTOOL or run make bin/promtool (%v)", err)
	}
	var rule map[string]any
	if err := yaml.Unmarshal(read(t, ruleFile), &rule); err != nil {
		t.Fatal(err)
	}
	spec, err := yaml.Marshal(rule["spec"])
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write(t, filepath.Join(dir, "rules.yaml"), spec)
	write(t, filepath.Join(dir, "rules_test.yaml"), read(t, ruleTests))
	for _, args := range [][]string{{"check", "rules", "rules.yaml"}, {"test", "rules", "rules_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// Every alert has a test.
	tests := string(read(t, ruleTests))
	for _, g := range parseRule(t).Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" && !strings.Contains(tests, "alertname: "+r.Alert+"\n") {
				t.Errorf("alert %s has no test in %s", r.Alert, ruleTests)
			}
		}
	}
}

// TestMonitoringUsesExportedMetrics reads every PromQL expression of the
// alerts, the dashboard and the documented examples and checks that each
// metric it names is one the operator exports.
func TestMonitoringUsesExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	if len(exported) < 8 {
		t.Fatalf("found only %d exported metrics: %v", len(exported), exported)
	}
	var exprs []string
	for _, g := range parseRule(t).Spec.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	var dash any
	if err := json.Unmarshal(read(t, dashboard), &dash); err != nil {
		t.Fatalf("%s: %v", dashboard, err)
	}
	exprs = append(exprs, dashboardExprs(dash)...)
	for _, m := range regexp.MustCompile("(?m)^  expr: (.*)$").FindAllStringSubmatch(string(read(t, metricDocs)), -1) {
		exprs = append(exprs, m[1])
	}
	if len(exprs) < 15 {
		t.Fatalf("found only %d expressions", len(exprs))
	}
	for _, e := range exprs {
		names := metricNames(e)
		if len(names) == 0 {
			t.Errorf("no metric found in %q", e)
		}
		for _, n := range names {
			if !exported[n] && !prometheusOwn[n] {
				t.Errorf("%q names %s, which the operator does not export", e, n)
			}
		}
	}
}

// TestMetricNames checks the expression reader on its own.
func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`max by (offering, namespace) (a_b{phase="Denied",x=~"y|z"}) < on(namespace) group_left c`:        {"a_b", "c"},
		`histogram_quantile(0.95, sum by (le) (rate(h_bucket{offering=~"$offering"}[$__rate_interval])))`: {"h_bucket"},
		`absent(up{job="j"} == 1)`:                           {"up"},
		`sum(increase(x_total[1h])) > 0 and bool y`:          {"x_total", "y"},
		`label_values(offering_operator_requests, offering)`: {"offering_operator_requests"},
	} {
		if got := metricNames(expr); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("metricNames(%q) = %v, want %v", expr, got, want)
		}
	}
}

func parseRule(t *testing.T) prometheusRule {
	t.Helper()
	var r prometheusRule
	if err := yaml.Unmarshal(read(t, ruleFile), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// exportedMetrics finds the Name of every prometheus.*Opts literal in the
// exporting packages; histograms add their _bucket, _sum and _count series.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, dir := range exporters {
		_, files := testutil.PackageSources(t, dir)
		for _, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				if name, histogram, ok := definedByHelper(n); ok {
					addMetric(names, name, histogram)
					return true
				}
				lit, ok := n.(*ast.CompositeLit)
				if !ok {
					return true
				}
				sel, ok := lit.Type.(*ast.SelectorExpr)
				if !ok || !strings.HasSuffix(sel.Sel.Name, "Opts") {
					return true
				}
				for _, el := range lit.Elts {
					kv, ok := el.(*ast.KeyValueExpr)
					if k, _ := kv.Key.(*ast.Ident); !ok || k == nil || k.Name != "Name" {
						continue
					}
					v, ok := kv.Value.(*ast.BasicLit)
					if !ok {
						continue
					}
					name, _ := strconv.Unquote(v.Value)
					addMetric(names, name, sel.Sel.Name == "HistogramOpts")
				}
				return true
			})
		}
	}
	return names
}

// metricHelpers are the functions of controllers/metrics.go that define a
// metric from its name, their first argument; true for histograms.
var metricHelpers = map[string]bool{"newGauge": false, "newCounter": false, "newDurations": true}

// definedByHelper reads the name of a metric defined through one of metricHelpers.
func definedByHelper(n ast.Node) (name string, histogram, ok bool) {
	call, isCall := n.(*ast.CallExpr)
	if !isCall || len(call.Args) == 0 {
		return "", false, false
	}
	fn, isIdent := call.Fun.(*ast.Ident)
	lit, isLit := call.Args[0].(*ast.BasicLit)
	if !isIdent || !isLit {
		return "", false, false
	}
	histogram, ok = metricHelpers[fn.Name]
	name, err := strconv.Unquote(lit.Value)
	return name, histogram, ok && err == nil
}

// addMetric records a metric's series; a histogram adds its _bucket, _sum and _count.
func addMetric(names map[string]bool, name string, histogram bool) {
	names[name] = true
	if histogram {
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			names[name+s] = true
		}
	}
}

// dashboardExprs collects the panels' target expressions and the template
// variables' queries.
func dashboardExprs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			switch s, ok := x.(string); {
			case ok && k == "expr":
				out = append(out, s)
			case ok && k == "query" && strings.Contains(s, "("):
				out = append(out, s)
			default:
				out = append(out, dashboardExprs(x)...)
			}
		}
	case []any:
		for _, x := range v {
			out = append(out, dashboardExprs(x)...)
		}
	}
	return out
}

var (
	quoted     = regexp.MustCompile(`"(\\.|[^"\\])*"`)
	matchers   = regexp.MustCompile(`\{[^}]*\}`)
	ranges     = regexp.MustCompile(`\[[^\]]*\]`)
	grouping   = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	identifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*\s*\(?`)
	keywords   = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "group_left": true, "group_right": true,
		"by": true, "without": true, "on": true, "ignoring": true, "inf": true, "nan": true,
	}
)

// metricNames returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges and grouping
// clauses are gone, that are neither functions nor keywords. For
// label_values(metric, label) it is the metric.
func metricNames(expr string) []string {
	if m := regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`).FindStringSubmatch(expr); m != nil {
		return []string{m[1]}
	}
	s := quoted.ReplaceAllString(expr, " ")
	s = matchers.ReplaceAllString(s, " ")
	s = ranges.ReplaceAllString(s, " ")
	s = grouping.ReplaceAllString(s, " ")
	seen := map[string]bool{}
	var out []string
	for _, id := range identifier.FindAllString(s, -1) {
		if strings.HasSuffix(id, "(") {
			continue
		}
		id = strings.TrimSpace(id)
		if keywords[strings.ToLower(id)] || seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
