// Command crdquantity tightens the schema controller-gen writes for
// resource.Quantity values in the generated CRDs.
//
// controller-gen copies the upstream pattern for quantities, which admits an
// exponent with a fraction ("1e1.5", "0e0."): the API server then stores a
// value that resource.ParseQuantity refuses, and every list of the kind fails
// to decode in the operator's informer (kubernetes/kubernetes#109839). A rule
// with isQuantity would cost too much on a map without maxLength on its
// values, so the pattern itself is replaced by one whose exponent is an
// integer, as ParseQuantity requires. `make manifests` runs it after
// controller-gen; FuzzCRDQuantities checks that every value the patched
// schema admits decodes.
package main

import (
	"bytes"
	"fmt"
	"os"
)

const (
	upstream = `pattern: ^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$`
	strict   = `pattern: ^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?[0-9]+))?$`
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: crdquantity CRD.yaml...")
		os.Exit(2)
	}
	for _, path := range os.Args[1:] {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		patched := bytes.ReplaceAll(data, []byte(upstream), []byte(strict))
		if bytes.Equal(patched, data) {
			continue
		}
		if err := os.WriteFile(path, patched, 0o644); err != nil { //nolint:gosec // a generated manifest, world-readable like the rest of the repo
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
