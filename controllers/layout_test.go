package controllers

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// maxFunctionLines bounds the length of a function in the package's code, so
// that every step reads on one screen.
const maxFunctionLines = 60

// TestNoFunctionIsLongerThanAScreen: no function or method of the
// controllers (tests aside, whose tables are long by nature) is longer than
// maxFunctionLines, counted from its signature to its closing brace.
func TestNoFunctionIsLongerThanAScreen(t *testing.T) {
	fset, files := packageSources(t)
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

// packageSources parses the package's code, tests aside.
func packageSources(t *testing.T) (*token.FileSet, []*ast.File) {
	t.Helper()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return fset, files
}
