package plugin

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
)

// none is the tables' empty cell, so that every row has the same number of fields.
const none = "-"

// OutputGroupVersion is the apiVersion of what the plugin prints that is not
// an API object (a catalog, a report, a status, a version). The API server
// does not serve it; it names the shape of the plugin's -o json|yaml output.
const OutputGroupVersion = "plugin.service.offering.dev/v1alpha1"

// outputFlags is -o through cli-runtime's PrintFlags (json, yaml, name,
// jsonpath, go-template, ...) and --no-headers for the human-readable tables.
type outputFlags struct {
	print     *genericclioptions.PrintFlags
	noHeaders bool
	// own are formats the command prints itself (for example backstage).
	own []string
}

// newOutputFlags returns the -o flags of a command; names says whether -o
// name applies (only to commands that print API objects).
func newOutputFlags(names bool, own ...string) *outputFlags {
	s, err := Scheme()
	if err != nil {
		panic(err) // the scheme is built from code: an error is a programming error
	}
	pf := genericclioptions.NewPrintFlags("").WithTypeSetter(s)
	if !names {
		pf.NamePrintFlags = nil
	}
	return &outputFlags{print: pf, own: own}
}

// addFlags adds -o (and the template flags) and, with table, --no-headers.
func (f *outputFlags) addFlags(cmd *cobra.Command, table bool) {
	f.print.AddFlags(cmd)
	formats := f.formats()
	cmd.Flags().Lookup("output").Usage = fmt.Sprintf("Output format. One of: (%s). Default: a human-readable table.",
		strings.Join(formats, ", "))
	_ = cmd.RegisterFlagCompletionFunc("output", fixedCompletion(formats...))
	if table {
		cmd.Flags().BoolVar(&f.noHeaders, "no-headers", false, "Do not print the tables' headers.")
	}
}

func (f *outputFlags) formats() []string {
	return append(f.print.AllowedFormats(), f.own...)
}

// format returns the -o value ("" for the human-readable output).
func (f *outputFlags) format() string { return *f.print.OutputFormat }

// printer returns the printer for -o, or nil for the human-readable output or
// a format the command prints itself. An unknown format is a usage error.
func (f *outputFlags) printer() (printers.ResourcePrinter, error) {
	if f.format() == "" || slices.Contains(f.own, f.format()) {
		return nil, nil
	}
	p, err := f.print.ToPrinter()
	if genericclioptions.IsNoCompatiblePrinterError(err) {
		return nil, usageErrorf("unknown output format %q: use one of %s", f.format(), strings.Join(f.formats(), ", "))
	}
	if err != nil {
		return nil, &exitError{code: ExitUsage, err: err}
	}
	return p, nil
}

// validate checks -o before the command connects to the cluster.
func (f *outputFlags) validate() error {
	_, err := f.printer()
	return err
}

// printObject prints obj with the -o printer.
func (f *outputFlags) printObject(w io.Writer, obj runtime.Object) error {
	p, err := f.printer()
	if err != nil {
		return err
	}
	if p == nil {
		return errors.New("no output format given") // callers print the human-readable form themselves
	}
	return p.PrintObj(obj, w)
}

// printView prints a value that is not an API object (a catalog, a report,
// a status; v is a pointer to it) with the -o printer, as the kind in
// OutputGroupVersion.
func (f *outputFlags) printView(w io.Writer, kind string, v any) error {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(v)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(OutputGroupVersion)
	u.SetKind(kind)
	return f.printObject(w, u)
}

// printTable prints t with cli-runtime's table printer, honouring
// --no-headers; withNamespace adds kubectl's NAMESPACE column (-A), taken from
// each row's object.
func (f *outputFlags) printTable(w io.Writer, t *metav1.Table, withNamespace bool) error {
	return printers.NewTablePrinter(printers.PrintOptions{NoHeaders: f.noHeaders, WithNamespace: withNamespace}).PrintObj(t, w)
}

// newTable returns an empty table with string columns.
func newTable(columns ...string) *metav1.Table {
	t := &metav1.Table{ColumnDefinitions: make([]metav1.TableColumnDefinition, len(columns))}
	for i, c := range columns {
		t.ColumnDefinitions[i] = metav1.TableColumnDefinition{Name: c, Type: "string"}
	}
	return t
}

// addRow appends a row; obj (may be nil) is the object the row is about,
// whose namespace -A prints. Empty cells print as "-" and tabs as spaces.
func addRow(t *metav1.Table, obj runtime.Object, cells ...string) {
	row := metav1.TableRow{Cells: make([]any, len(cells)), Object: runtime.RawExtension{Object: obj}}
	for i, c := range cells {
		if c == "" {
			c = none
		}
		row.Cells[i] = strings.ReplaceAll(c, "\t", " ")
	}
	t.Rows = append(t.Rows, row)
}

// printFields prints "Name:  value" lines aligned, as kubectl describe does.
func printFields(w io.Writer, indent string, fields ...[2]string) error {
	t := newTable("FIELD", "VALUE")
	for _, f := range fields {
		addRow(t, nil, indent+f[0]+":", f[1])
	}
	return printers.NewTablePrinter(printers.PrintOptions{NoHeaders: true}).PrintObj(t, w)
}

// printIndented prints a table with each line indented, for the sections of a report.
func printIndented(w io.Writer, indent string, t *metav1.Table) error {
	iw := &indentWriter{w: w, indent: indent}
	if err := printers.NewTablePrinter(printers.PrintOptions{}).PrintObj(t, iw); err != nil {
		return err
	}
	return iw.flush()
}

// indentWriter prefixes each line written to it.
type indentWriter struct {
	w      io.Writer
	indent string
	buf    []byte
}

func (iw *indentWriter) Write(p []byte) (int, error) {
	iw.buf = append(iw.buf, p...)
	return len(p), nil
}

func (iw *indentWriter) flush() error {
	sc := bufio.NewScanner(strings.NewReader(string(iw.buf)))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		if _, err := fmt.Fprintln(iw.w, iw.indent+sc.Text()); err != nil {
			return err
		}
	}
	return sc.Err()
}

func formatTime(t *metav1.Time) string {
	if t == nil {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}

// age is kubectl's relative AGE of a time: "5m", "3d4h", or "-" when unset.
func age(t metav1.Time) string {
	if t.IsZero() {
		return none
	}
	return duration.HumanDuration(time.Since(t.Time))
}

func formatDuration(d *metav1.Duration) string {
	if d == nil {
		return none
	}
	return d.Duration.String()
}

func formatLimit(l *int32) string {
	if l == nil {
		return "unlimited"
	}
	return fmt.Sprint(*l)
}
