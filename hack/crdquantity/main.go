// Command crdquantity tightens the schema controller-gen writes for
// resource.Quantity values in the generated CRDs.
//
// controller-gen copies the upstream pattern for quantities, which admits an
// exponent with a fraction ("1e1.5", "0e0."): the API server then stores a
// value that resource.ParseQuantity refuses, and every list of the kind fails
// to decode in the operator's informer (kubernetes/kubernetes#109839). A rule
// with isQuantity would cost too much on a map without maxLength on its
// values, so the value gets a maxLength and a pattern whose exponent is a
// short integer, as ParseQuantity requires. `make manifests` runs it after
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
	// strict has an integer exponent of at most three digits: ParseQuantity
	// refuses a fraction there, and an exponent of a dozen digits makes it
	// run for minutes (found by FuzzCRDQuantities).
	strict = `pattern: ^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?[0-9]{1,3}))?$`
	// maxLength bounds the mantissa as well.
	maxLength = `maxLength: 64`
)

// patch replaces every upstream quantity pattern line with maxLength and the
// strict pattern, at the same indentation.
func patch(data []byte) []byte {
	lines := bytes.Split(data, []byte("\n"))
	out := make([][]byte, 0, len(lines))
	for _, line := range lines {
		trimmed := bytes.TrimLeft(line, " ")
		if !bytes.Equal(trimmed, []byte(upstream)) {
			out = append(out, line)
			continue
		}
		indent := line[:len(line)-len(trimmed)]
		out = append(out, append(append([]byte{}, indent...), maxLength...), append(append([]byte{}, indent...), strict...))
	}
	return bytes.Join(out, []byte("\n"))
}

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
		patched := patch(data)
		if bytes.Equal(patched, data) {
			continue
		}
		if err := os.WriteFile(path, patched, 0o644); err != nil { //nolint:gosec // a generated manifest, world-readable like the rest of the repo
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
