package controllers

import (
	"go/ast"
	"path/filepath"
	"testing"

	"github.com/offering-operator/offering-operator/internal/testutil"
)

// maxFunctionLines bounds the length of a function in the package's code, so
// that every step reads on one screen.
const maxFunctionLines = 60

// TestNoFunctionIsLongerThanAScreen: no function or method of the
// controllers (tests aside, whose tables are long by nature) is longer than
// maxFunctionLines, counted from its signature to its closing brace.
func TestNoFunctionIsLongerThanAScreen(t *testing.T) {
	fset, files := testutil.PackageSources(t, ".")
	for _, f := range files {
		name := filepath.Base(fset.Position(f.Package).Filename)
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			if n := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1; n > maxFunctionLines {
				t.Errorf("%s: %s is %d lines long; split it below %d", name, fn.Name.Name, n, maxFunctionLines+1)
			}
		}
	}
}
