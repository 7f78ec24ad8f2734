// Command apidocs writes the API reference of an API package (docs/api-reference.md)
// from its Go types: doc comments and kubebuilder markers (+optional, +required,
// defaults, enums, validation). It reads the source only, so it runs offline.
//
//	go run ./hack/apidocs -out docs/api-reference.md api/v1alpha1
//
// Kinds (+kubebuilder:object:root=true, not *List) come first, in the order the
// package registers them, each followed by the struct types it reaches; named
// value types (enums, names) follow in a section of their own.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// marker is one kubebuilder marker line: +name=value, or +name:args for the
// markers that take named arguments (then value holds the arguments).
type marker struct{ name, value string }

// argMarkers take comma-separated key=value arguments after the name.
var argMarkers = []string{"kubebuilder:validation:XValidation", "kubebuilder:resource", "kubebuilder:printcolumn"}

type constant struct{ value, doc string }

type typeInfo struct {
	name    string
	doc     string
	markers []marker
	expr    ast.Expr // the type's definition: *ast.StructType for structs
	imports map[string]string
	consts  []constant
	usedIn  []string
}

func (ti *typeInfo) structType() *ast.StructType {
	st, _ := ti.expr.(*ast.StructType)
	return st
}

type pkgInfo struct {
	dir, group, version string
	types               map[string]*typeInfo
	order               []string // declaration order
	registered          []string // AddKnownTypes order
}

func main() {
	out := flag.String("out", "", "file to write (default: standard output)")
	flag.Parse()
	if flag.NArg() != 1 {
		log.Fatal("usage: apidocs [-out FILE] DIR")
	}
	pkg, err := load(flag.Arg(0))
	if err != nil {
		log.Fatal(err)
	}
	doc := render(pkg)
	if *out == "" {
		_, err = os.Stdout.Write(doc)
	} else {
		err = os.WriteFile(*out, doc, 0o644)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// load parses the package's non-test, non-generated Go files.
func load(dir string) (*pkgInfo, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	pkg := &pkgInfo{dir: filepath.ToSlash(filepath.Clean(dir)), version: filepath.Base(dir), types: map[string]*typeInfo{}}
	fset := token.NewFileSet()
	var consts []*ast.GenDecl
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") || strings.HasPrefix(name, "zz_generated") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		if f.Doc != nil {
			for _, m := range splitComment(f.Doc).markers {
				if m.name == "groupName" {
					pkg.group = m.value
				}
			}
		}
		imports := map[string]string{}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			alias := filepath.Base(path)
			if imp.Name != nil {
				alias = imp.Name.Name
			}
			imports[alias] = path
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok {
				continue
			}
			switch gd.Tok {
			case token.TYPE:
				for _, spec := range gd.Specs {
					pkg.addType(fset, f, gd, spec.(*ast.TypeSpec), imports)
				}
			case token.CONST:
				consts = append(consts, gd)
			}
		}
		pkg.registered = append(pkg.registered, registeredKinds(f)...)
	}
	for _, gd := range consts {
		pkg.addConsts(gd)
	}
	return pkg, nil
}

func (pkg *pkgInfo) addType(fset *token.FileSet, f *ast.File, gd *ast.GenDecl, ts *ast.TypeSpec, imports map[string]string) {
	if !ts.Name.IsExported() {
		return
	}
	docGroup := ts.Doc
	if docGroup == nil && !gd.Lparen.IsValid() {
		docGroup = gd.Doc
	}
	ti := &typeInfo{name: ts.Name.Name, expr: ts.Type, imports: imports}
	if docGroup != nil {
		c := splitComment(docGroup)
		ti.doc, ti.markers = c.text, c.markers
	}
	// Markers such as +kubebuilder:object:root=true sit in a comment group of
	// their own, separated from the doc comment by one blank line.
	start := gd.Pos()
	if docGroup != nil {
		start = docGroup.Pos()
	}
	for _, cg := range f.Comments {
		if cg.End() < start && fset.Position(cg.End()).Line >= fset.Position(start).Line-2 {
			ti.markers = append(ti.markers, splitComment(cg).markers...)
		}
	}
	pkg.types[ti.name] = ti
	pkg.order = append(pkg.order, ti.name)
}

// addConsts records the typed string constants of the package's named types
// (the values of enums) with their doc comments.
func (pkg *pkgInfo) addConsts(gd *ast.GenDecl) {
	for _, spec := range gd.Specs {
		vs := spec.(*ast.ValueSpec)
		typ, ok := vs.Type.(*ast.Ident)
		if !ok || pkg.types[typ.Name] == nil {
			continue
		}
		for i, name := range vs.Names {
			if i >= len(vs.Values) {
				break
			}
			lit, ok := vs.Values[i].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				continue
			}
			value, _ := strconv.Unquote(lit.Value)
			doc := ""
			if vs.Doc != nil {
				doc = splitComment(vs.Doc).text
				// "RevocationPolicyDelete deletes ..." or "AgreementPending: the ..."
				doc = strings.TrimLeft(strings.TrimPrefix(doc, name.Name), ": ")
				doc = strings.TrimPrefix(doc, "is ")
			}
			ti := pkg.types[typ.Name]
			ti.consts = append(ti.consts, constant{value: value, doc: doc})
		}
	}
}

// registeredKinds returns the type names passed to AddKnownTypes, in order.
func registeredKinds(f *ast.File) []string {
	var names []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "AddKnownTypes" {
			return true
		}
		for _, arg := range call.Args {
			if u, ok := arg.(*ast.UnaryExpr); ok {
				if cl, ok := u.X.(*ast.CompositeLit); ok {
					if id, ok := cl.Type.(*ast.Ident); ok {
						names = append(names, id.Name)
					}
				}
			}
		}
		return false
	})
	return names
}

type comment struct {
	text    string // paragraphs separated by "\n\n", lines of a paragraph joined
	markers []marker
}

// splitComment separates a comment's marker lines from its text.
func splitComment(cg *ast.CommentGroup) comment {
	var c comment
	var paras []string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			paras = append(paras, strings.Join(cur, " "))
			cur = nil
		}
	}
	for _, line := range strings.Split(cg.Text(), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "+"):
			c.markers = append(c.markers, parseMarker(line[1:]))
		case line == "":
			flush()
		default:
			cur = append(cur, line)
		}
	}
	flush()
	c.text = strings.Join(paras, "\n\n")
	return c
}

func parseMarker(s string) marker {
	for _, name := range argMarkers {
		if rest, ok := strings.CutPrefix(s, name+":"); ok {
			return marker{name: name, value: rest}
		}
	}
	name, value, _ := strings.Cut(s, "=")
	return marker{name: name, value: value}
}

// markerArgs splits `a="x,y",b=z` into {a: x,y; b: z}, unquoting the values.
func markerArgs(s string) map[string]string {
	args := map[string]string{}
	var parts []string
	var quote byte
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '"' && c == '\\':
			i++ // an escaped character inside "..."
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '`'):
			quote = c
		case quote == 0 && c == ',':
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	parts = append(parts, s[start:])
	for _, p := range parts {
		k, v, _ := strings.Cut(p, "=")
		args[strings.TrimSpace(k)] = unquote(v)
	}
	return args
}

func unquote(v string) string {
	if u, err := strconv.Unquote(v); err == nil {
		return u
	}
	return v
}

func markerValue(ms []marker, name string) (string, bool) {
	for _, m := range ms {
		if m.name == name {
			return m.value, true
		}
	}
	return "", false
}

// ---------------------------------------------------------------------------
// Rendering.

func render(pkg *pkgInfo) []byte {
	var b bytes.Buffer
	kinds := pkg.kinds()
	fmt.Fprintf(&b, "# API reference\n\n")
	fmt.Fprintf(&b, "<!-- Generated by hack/apidocs from the Go types in %s. DO NOT EDIT: run `make api-docs` (part of `make generate`). -->\n\n", pkg.dir)
	fmt.Fprintf(&b, "Group `%s`, version `%s`. Kinds:\n\n", pkg.group, pkg.version)
	for _, k := range kinds {
		scope := "namespaced"
		if pkg.scope(k) == "Cluster" {
			scope = "cluster-scoped"
		}
		fmt.Fprintf(&b, "- %s (%s)\n", link(k), scope)
	}
	fmt.Fprintf(&b, "\nA field is required when the Required column says yes; \"Default\" is the value the API server fills in when the field is omitted. "+
		"The status conditions and their reasons are explained in [conditions.md](conditions.md). "+
		"`kubectl explain <kind>.spec --recursive` shows the same schema from a cluster.\n")

	seen := map[string]bool{}
	for _, k := range kinds {
		seen[k] = true
		pkg.collectUses(k)
	}
	sections := make([][]string, 0, len(kinds))
	for _, k := range kinds {
		sections = append(sections, append([]string{k}, pkg.reach(k, seen)...))
	}
	var other, values []string
	for _, name := range pkg.order {
		ti := pkg.types[name]
		switch {
		case seen[name] || strings.HasSuffix(name, "List") && ti.structType() != nil:
		case ti.structType() != nil:
			other = append(other, append([]string{name}, pkg.reach(name, seen)...)...)
		default:
			values = append(values, name)
		}
	}
	for _, sec := range sections {
		pkg.renderKind(&b, sec[0])
		for _, name := range sec[1:] {
			pkg.renderStruct(&b, name)
		}
	}
	if len(other) > 0 {
		fmt.Fprintf(&b, "\n## Other types\n")
		for _, name := range other {
			pkg.renderStruct(&b, name)
		}
	}
	if len(values) > 0 {
		sort.Strings(values)
		fmt.Fprintf(&b, "\n## Value types\n\nNamed strings and enumerations used by the fields above.\n")
		for _, name := range values {
			pkg.renderValueType(&b, name)
		}
	}
	return b.Bytes()
}

// kinds are the root types that are not lists, in registration order.
func (pkg *pkgInfo) kinds() []string {
	var kinds []string
	isKind := func(name string) bool {
		ti := pkg.types[name]
		if ti == nil || strings.HasSuffix(name, "List") {
			return false
		}
		v, ok := markerValue(ti.markers, "kubebuilder:object:root")
		return ok && v != "false"
	}
	added := map[string]bool{}
	for _, name := range append(append([]string{}, pkg.registered...), pkg.order...) {
		if isKind(name) && !added[name] {
			kinds = append(kinds, name)
			added[name] = true
		}
	}
	return kinds
}

func (pkg *pkgInfo) scope(kind string) string {
	if v, ok := markerValue(pkg.types[kind].markers, "kubebuilder:resource"); ok {
		if s := markerArgs(v)["scope"]; s != "" {
			return s
		}
	}
	return "Namespaced"
}

// reach returns the struct types reachable from name, depth first, that are
// not seen yet, and marks them seen.
func (pkg *pkgInfo) reach(name string, seen map[string]bool) []string {
	var out []string
	for _, f := range pkg.types[name].structType().Fields.List {
		for _, ref := range pkg.localRefs(f.Type) {
			if ti := pkg.types[ref]; ti != nil && ti.structType() != nil && !seen[ref] {
				seen[ref] = true
				out = append(append(out, ref), pkg.reach(ref, seen)...)
			}
		}
	}
	return out
}

// collectUses records, for every type reachable from name, the struct types
// that use it.
func (pkg *pkgInfo) collectUses(name string) {
	ti := pkg.types[name]
	for _, f := range ti.structType().Fields.List {
		for _, ref := range pkg.localRefs(f.Type) {
			used := pkg.types[ref]
			if used == nil || contains(used.usedIn, name) {
				continue
			}
			used.usedIn = append(used.usedIn, name)
			if used.structType() != nil {
				pkg.collectUses(ref)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// localRefs returns the package's own types named by a type expression.
func (pkg *pkgInfo) localRefs(e ast.Expr) []string {
	switch t := e.(type) {
	case *ast.Ident:
		if pkg.types[t.Name] != nil {
			return []string{t.Name}
		}
	case *ast.StarExpr:
		return pkg.localRefs(t.X)
	case *ast.ArrayType:
		return pkg.localRefs(t.Elt)
	case *ast.MapType:
		return append(pkg.localRefs(t.Key), pkg.localRefs(t.Value)...)
	}
	return nil
}

func (pkg *pkgInfo) renderKind(b *bytes.Buffer, kind string) {
	ti := pkg.types[kind]
	fmt.Fprintf(b, "\n## %s\n\n%s\n\n", kind, docText(ti.doc))
	var facts []string
	facts = append(facts, "Scope: "+pkg.scope(kind))
	if v, ok := markerValue(ti.markers, "kubebuilder:resource"); ok {
		args := markerArgs(v)
		if s := args["shortName"]; s != "" {
			facts = append(facts, "short names: "+codeList(strings.Split(s, ";")))
		}
		if s := args["categories"]; s != "" {
			facts = append(facts, "categories: "+codeList(strings.Split(s, ";")))
		}
	}
	if _, ok := markerValue(ti.markers, "kubebuilder:subresource:status"); ok {
		facts = append(facts, "status subresource")
	}
	fmt.Fprintf(b, "%s.\n", strings.Join(facts, "; "))
	pkg.renderValidations(b, ti)
	pkg.renderFields(b, ti)
}

func (pkg *pkgInfo) renderStruct(b *bytes.Buffer, name string) {
	ti := pkg.types[name]
	fmt.Fprintf(b, "\n### %s\n\n", name)
	if len(ti.usedIn) > 0 {
		fmt.Fprintf(b, "Used in %s.\n\n", linkList(ti.usedIn))
	}
	if ti.doc != "" {
		fmt.Fprintf(b, "%s\n", docText(ti.doc))
	}
	pkg.renderValidations(b, ti)
	pkg.renderFields(b, ti)
}

// renderValidations lists a struct's own rules (XValidation on the type).
func (pkg *pkgInfo) renderValidations(b *bytes.Buffer, ti *typeInfo) {
	var rules []string
	for _, m := range ti.markers {
		if m.name == "kubebuilder:validation:XValidation" {
			rules = append(rules, xvalidation(m.value))
		}
	}
	if len(rules) == 0 {
		return
	}
	fmt.Fprintf(b, "\nValidation:\n\n")
	for _, r := range rules {
		fmt.Fprintf(b, "- %s\n", r)
	}
}

func (pkg *pkgInfo) renderFields(b *bytes.Buffer, ti *typeInfo) {
	fmt.Fprintf(b, "\n| Field | Type | Required | Description |\n|---|---|---|---|\n")
	pkg.renderFieldRows(b, ti)
}

func (pkg *pkgInfo) renderFieldRows(b *bytes.Buffer, ti *typeInfo) {
	for _, f := range ti.structType().Fields.List {
		tag := ""
		if f.Tag != nil {
			tag = reflect.StructTag(unquote(f.Tag.Value)).Get("json")
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || len(f.Names) > 0 && !f.Names[0].IsExported() {
			continue
		}
		if name == "" && strings.Contains(opts, "inline") {
			pkg.renderInline(b, ti, f.Type)
			continue
		}
		if name == "" && len(f.Names) > 0 {
			name = f.Names[0].Name
		}
		var c comment
		if f.Doc != nil {
			c = splitComment(f.Doc)
		}
		required := "no"
		if isRequired(c.markers, strings.Contains(opts, "omitempty")) {
			required = "yes"
		}
		desc := cell(c.text)
		if notes := pkg.fieldNotes(f.Type, c.markers); len(notes) > 0 {
			if desc != "" {
				desc += "<br>"
			}
			desc += strings.Join(notes, " ")
		}
		fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", name, pkg.typeName(ti, f.Type, c.markers), required, desc)
	}
}

// renderInline writes the rows of an embedded, inlined struct: the local
// struct's fields, or apiVersion and kind for metav1.TypeMeta.
func (pkg *pkgInfo) renderInline(b *bytes.Buffer, ti *typeInfo, e ast.Expr) {
	if sel, ok := e.(*ast.SelectorExpr); ok && sel.Sel.Name == "TypeMeta" {
		fmt.Fprintf(b, "| `apiVersion` | string | yes | `%s/%s` |\n", pkg.group, pkg.version)
		fmt.Fprintf(b, "| `kind` | string | yes | `%s` |\n", ti.name)
		return
	}
	if refs := pkg.localRefs(e); len(refs) == 1 && pkg.types[refs[0]].structType() != nil {
		pkg.renderFieldRows(b, pkg.types[refs[0]])
	}
}

func isRequired(ms []marker, omitempty bool) bool {
	for _, m := range ms {
		switch m.name {
		case "required", "kubebuilder:validation:Required":
			return true
		case "optional", "kubebuilder:validation:Optional":
			return false
		}
	}
	return !omitempty
}

// fieldNotes describes a field's default and validation from its markers, and
// the values of an enum type it uses.
func (pkg *pkgInfo) fieldNotes(e ast.Expr, ms []marker) []string {
	var notes []string
	for _, ref := range pkg.localRefs(e) {
		if ti := pkg.types[ref]; ti.structType() == nil {
			if v, ok := markerValue(ti.markers, "kubebuilder:validation:Enum"); ok {
				notes = append(notes, "One of: "+codeList(strings.Split(v, ";"))+".")
			}
		}
	}
	return append(notes, validationNotes(ms)...)
}

// noteLabels names the validation markers shown as "Label: value."; code
// values are shown as code.
var noteLabels = map[string]struct {
	label string
	code  bool
}{
	"MinLength":     {label: "Min length"},
	"MaxLength":     {label: "Max length"},
	"Minimum":       {label: "Minimum"},
	"Maximum":       {label: "Maximum"},
	"MinItems":      {label: "Min items"},
	"MaxItems":      {label: "Max items"},
	"MinProperties": {label: "Min entries"},
	"MaxProperties": {label: "Max entries"},
	"Pattern":       {label: "Pattern", code: true},
	"Format":        {label: "Format", code: true},
}

// validationNotes turns markers into sentences, in the order they are written.
func validationNotes(ms []marker) []string {
	var notes []string
	for _, m := range ms {
		name, _ := strings.CutPrefix(m.name, "kubebuilder:validation:")
		prefix := ""
		if n, ok := strings.CutPrefix(name, "items:"); ok {
			name, prefix = n, "Each item's "
		}
		switch {
		case m.name == "kubebuilder:default" || m.name == "default":
			notes = append(notes, "Default: "+code(unquote(m.value))+".")
		case m.name == "listMapKey":
			notes = append(notes, "Keyed by "+code(m.value)+".")
		case m.name == "listType" && m.value == "set":
			notes = append(notes, "Values are unique.")
		case name == "XValidation":
			notes = append(notes, prefix+xvalidation(m.value))
		case name == "Enum":
			notes = append(notes, prefix+"One of: "+codeList(strings.Split(m.value, ";"))+".")
		case noteLabels[name].label != "" && strings.HasPrefix(m.name, "kubebuilder:validation:"):
			value, label := unquote(m.value), noteLabels[name].label
			if noteLabels[name].code {
				value = code(value)
			}
			if prefix != "" {
				label = strings.ToLower(label)
			}
			notes = append(notes, prefix+label+": "+value+".")
		}
	}
	return notes
}

// xvalidation shows a CEL rule by its message, or by the rule itself.
func xvalidation(v string) string {
	args := markerArgs(v)
	if msg := args["message"]; msg != "" {
		return "Rule: " + cell(strings.TrimSuffix(msg, ".")) + "."
	}
	return "Rule: " + code(args["rule"]) + "."
}

func (pkg *pkgInfo) renderValueType(b *bytes.Buffer, name string) {
	ti := pkg.types[name]
	fmt.Fprintf(b, "\n### %s\n\n", name)
	if len(ti.usedIn) > 0 {
		fmt.Fprintf(b, "Used in %s.\n\n", linkList(ti.usedIn))
	}
	if ti.doc != "" {
		fmt.Fprintf(b, "%s\n\n", docText(ti.doc))
	}
	fmt.Fprintf(b, "Type: %s.", pkg.typeName(ti, ti.expr, nil))
	var notes []string
	for _, n := range validationNotes(ti.markers) {
		if !strings.HasPrefix(n, "One of:") || len(ti.consts) == 0 {
			notes = append(notes, n)
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(b, " %s", strings.Join(notes, " "))
	}
	fmt.Fprintln(b)
	if len(ti.consts) > 0 {
		fmt.Fprintf(b, "\n| Value | Description |\n|---|---|\n")
		for _, c := range ti.consts {
			fmt.Fprintf(b, "| `%s` | %s |\n", c.value, cell(c.doc))
		}
	}
}

// Types of other packages with a better name for the reader than the Go one.
var externalTypes = map[string]string{
	"k8s.io/apimachinery/pkg/apis/meta/v1.Time":     "string (date-time)",
	"k8s.io/apimachinery/pkg/apis/meta/v1.Duration": "string (duration)",
	"k8s.io/api/core/v1.ResourceList":               "map of [Quantity](https://pkg.go.dev/k8s.io/apimachinery/pkg/api/resource#Quantity)",
}

// typeName renders a field's type: a link for the package's own types, a
// pkg.go.dev link for other packages' types.
func (pkg *pkgInfo) typeName(ti *typeInfo, e ast.Expr, ms []marker) string {
	if t, ok := markerValue(ms, "kubebuilder:validation:Type"); ok {
		if sel, isSel := e.(*ast.StarExpr); isSel {
			e = sel.X
		}
		if name := pkg.typeName(ti, e, nil); strings.HasPrefix(name, t) {
			return name
		}
		return t
	}
	switch t := e.(type) {
	case *ast.Ident:
		if pkg.types[t.Name] != nil {
			return link(t.Name)
		}
		return t.Name
	case *ast.StarExpr:
		return pkg.typeName(ti, t.X, nil)
	case *ast.ArrayType:
		if id, ok := t.Elt.(*ast.Ident); ok && id.Name == "byte" {
			return "string (base64)"
		}
		return pkg.typeName(ti, t.Elt, nil) + " array"
	case *ast.MapType:
		return "map of " + pkg.typeName(ti, t.Value, nil)
	case *ast.SelectorExpr:
		path := ti.imports[fmt.Sprint(t.X)]
		if s, ok := externalTypes[path+"."+t.Sel.Name]; ok {
			return s
		}
		return fmt.Sprintf("[%s](https://pkg.go.dev/%s#%s)", t.Sel.Name, path, t.Sel.Name)
	}
	return fmt.Sprintf("%T", e)
}

// ---------------------------------------------------------------------------
// Markdown helpers.

func link(name string) string { return fmt.Sprintf("[%s](#%s)", name, strings.ToLower(name)) }

func linkList(names []string) string {
	links := make([]string, len(names))
	for i, n := range names {
		links[i] = link(n)
	}
	return strings.Join(links, ", ")
}

func code(s string) string { return "`" + strings.ReplaceAll(s, "|", `\|`) + "`" }

func codeList(values []string) string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = code(v)
	}
	return strings.Join(out, ", ")
}

var escaper = strings.NewReplacer(`\`, `\\`, "|", `\|`, "<", "&lt;", ">", "&gt;", "*", `\*`, "_", `\_`)

// docText escapes prose for Markdown.
func docText(s string) string { return escaper.Replace(s) }

// cell is docText on one line, for a table cell.
func cell(s string) string { return strings.ReplaceAll(docText(s), "\n\n", "<br><br>") }
