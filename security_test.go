package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The security document and the shipped configuration it describes.
const (
	securityDoc     = "docs/security.md"
	threatModelHead = "| Actor | What they can write | What they could try | What stops it | Test |"
	looseningHead   = "| Flag or mark | Shipped | What setting it allows |"
)

// threatModelActors are the actors the threat model must cover, as the
// first words of the Actor column.
var threatModelActors = []string{"Consumer", "Approver", "Provider", "Namespace editor", "Namespace creator", "Operator", "Cluster admin"}

var testName = regexp.MustCompile("`((?:Test|Fuzz)[A-Za-z0-9_]+)`")

// tableRows returns the cells of the rows of the Markdown table under head in
// doc (without the header and separator rows).
func tableRows(t *testing.T, doc, head string) [][]string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, head+"\n")
	if !ok {
		t.Fatalf("%s has no table %q", securityDoc, head)
	}
	var rows [][]string
	for i, line := range strings.Split(rest, "\n") {
		if !strings.HasPrefix(line, "|") {
			break
		}
		if i == 0 {
			continue // the separator row
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		rows = append(rows, cells)
	}
	return rows
}

// testFunctions are the names of the Test and Fuzz functions of every
// _test.go file in the repository.
func testFunctions(t *testing.T) map[string]bool {
	t.Helper()
	decl := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz)[A-Za-z0-9_]+)\(`)
	found := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "bin" || d.Name() == "dist") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllStringSubmatch(string(src), -1) {
			found[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestThreatModelNamesRealTests: every row of the threat model in
// docs/security.md names at least one test, every test it names exists, and
// every actor has rows. So do the tests named anywhere else in docs/ and the
// README: a renamed or removed test fails here, not in a reader's search.
func TestThreatModelNamesRealTests(t *testing.T) {
	raw, err := os.ReadFile(securityDoc)
	if err != nil {
		t.Fatal(err)
	}
	exists := testFunctions(t)
	covered := map[string]bool{}
	for _, row := range tableRows(t, string(raw), threatModelHead) {
		if len(row) != 5 {
			t.Errorf("threat model row with %d cells, want 5: %q", len(row), row)
			continue
		}
		for _, actor := range threatModelActors {
			if strings.HasPrefix(row[0], actor) {
				covered[actor] = true
			}
		}
		names := testName.FindAllStringSubmatch(row[4], -1)
		if len(names) == 0 {
			t.Errorf("threat model row %q (%s) names no test", row[0], row[2])
		}
		for _, m := range names {
			if !exists[m[1]] {
				t.Errorf("threat model row %q names %s, which is no test function in the repository", row[0], m[1])
			}
		}
	}
	for _, actor := range threatModelActors {
		if !covered[actor] {
			t.Errorf("the threat model has no row for %s", actor)
		}
	}
	docs, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range append(docs, "README.md") {
		raw, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range testName.FindAllStringSubmatch(string(raw), -1) {
			if !exists[m[1]] {
				t.Errorf("%s names %s, which is no test function in the repository", doc, m[1])
			}
		}
	}
}

// TestShippedConfigurationIsClosed: the configuration a cluster admin
// installs as shipped (config/default, and the chart's default values) sets
// none of the flags docs/security.md lists as loosening a default, and
// installs the admission policies; every flag listed there is one the
// manager has.
func TestShippedConfigurationIsClosed(t *testing.T) {
	raw, err := os.ReadFile(securityDoc)
	if err != nil {
		t.Fatal(err)
	}
	mainSrc, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	var loosening []string
	for _, row := range tableRows(t, string(raw), looseningHead) {
		if flag, ok := strings.CutPrefix(row[0], "`--"); ok {
			flag = strings.TrimSuffix(flag, "`")
			if !strings.Contains(string(mainSrc), `"`+flag+`"`) {
				t.Errorf("%s lists --%s, which main.go does not define", securityDoc, flag)
			}
			loosening = append(loosening, flag)
		}
	}
	if len(loosening) < 3 {
		t.Fatalf("%s lists %d loosening flags: %v", securityDoc, len(loosening), loosening)
	}

	// config/default is config/base and the admission component; base holds the manager.
	for file, want := range map[string]string{
		"config/default/kustomization.yaml": "- ../components/admission",
		"config/base/kustomization.yaml":    "- ../manager",
	} {
		if src, err := os.ReadFile(file); err != nil || !strings.Contains(string(src), want) {
			t.Errorf("%s does not include %q (%v)", file, want, err)
		}
	}
	for _, dir := range []string{"config/default", "config/base", "config/manager", "config/components/admission"} {
		files, err := filepath.Glob(dir + "/*.yaml")
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range strings.Split(string(src), "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), "#") {
					continue
				}
				for _, flag := range loosening {
					if strings.Contains(line, "--"+flag) {
						t.Errorf("%s:%d sets --%s, which loosens a default: %s", file, i+1, flag, strings.TrimSpace(line))
					}
				}
			}
		}
	}
	checkChartDefaults(t)
}

// checkChartDefaults: the chart's default values set no loosening flag and
// install the admission policies.
func checkChartDefaults(t *testing.T) {
	t.Helper()
	raw, err := os.ReadFile("charts/offering-operator/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	get := func(path string) any {
		var v any = values
		for _, k := range strings.Split(path, ".") {
			m, _ := v.(map[string]any)
			v = m[k]
		}
		return v
	}
	for path, want := range map[string]any{
		"admissionPolicies.enable": true, "metrics.secure": true, "metrics.enableHTTP2": false, "pprof.bindAddress": "",
	} {
		if got := get(path); got != want {
			t.Errorf("chart value %s defaults to %v, want %v", path, got, want)
		}
	}
	for _, path := range []string{"allowedClusterRoles", "providerNamespaces", "actionServiceAccounts", "extraArgs"} {
		if got, ok := get(path).([]any); !ok || !slices.Equal(got, []any{}) {
			t.Errorf("chart value %s defaults to %v, want []", path, get(path))
		}
	}
}
