package plugin

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"
)

const (
	outputJSON = "json"
	outputYAML = "yaml"
	none       = "-"
)

// addOutputFlag adds -o/--output to cmd.
func addOutputFlag(cmd *cobra.Command, output *string) {
	cmd.Flags().StringVarP(output, "output", "o", "", "Output format: yaml or json (default: a human-readable table)")
}

func validateOutput(output string) error {
	switch output {
	case "", outputJSON, outputYAML:
		return nil
	}
	return usageErrorf("unknown output format %q: use yaml or json", output)
}

// printStructured writes v as JSON or YAML. Kubernetes objects get their apiVersion and kind.
func printStructured(w io.Writer, output string, v any) error {
	if obj, ok := v.(runtime.Object); ok {
		if s, err := Scheme(); err == nil {
			if gvk, err := apiutil.GVKForObject(obj, s); err == nil {
				obj.GetObjectKind().SetGroupVersionKind(gvk)
			}
		}
	}
	var (
		b   []byte
		err error
	)
	if output == outputJSON {
		b, err = json.MarshalIndent(v, "", "  ")
		b = append(b, '\n')
	} else {
		b, err = yaml.Marshal(v)
	}
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// table writes tab-aligned rows.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = none
		}
		cells[i] = strings.ReplaceAll(cells[i], "\t", " ")
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

func formatTime(t *metav1.Time) string {
	if t == nil {
		return none
	}
	return t.UTC().Format(time.RFC3339)
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
