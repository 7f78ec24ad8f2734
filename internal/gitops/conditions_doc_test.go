package gitops

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestConditionsDocIsComplete checks that docs/conditions.md lists every
// condition type and reason constant of api/v1alpha1/conditions.go, by value
// and by Go name, so that the reference does not drift from the API.
func TestConditionsDocIsComplete(t *testing.T) {
	src := filepath.Join("..", "..", "api", "v1alpha1", "conditions.go")
	f, err := parser.ParseFile(token.NewFileSet(), src, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "conditions.md"))
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				value, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				consts[name.Name] = value
				if !strings.Contains(string(doc), "`"+value+"` (`"+name.Name+"`)") {
					t.Errorf("docs/conditions.md does not document %s (%q) as \"`%s` (`%s`)\"", name.Name, value, value, name.Name)
				}
			}
		}
	}
	if len(consts) == 0 {
		t.Fatal("found no constants in conditions.go")
	}
	// And nothing the document names as a constant is missing from the API.
	named := regexp.MustCompile("`([A-Za-z]+)` \\(`([A-Za-z]+)`\\)").FindAllStringSubmatch(string(doc), -1)
	if len(named) < len(consts) {
		t.Fatalf("found only %d constants named in docs/conditions.md", len(named))
	}
	for _, m := range named {
		if consts[m[2]] != m[1] {
			t.Errorf("docs/conditions.md names %s = %q, which is not a constant of conditions.go", m[2], m[1])
		}
	}
}
