// Command crdquantity rewrites the schema controller-gen writes for
// resource.Quantity values in the generated CRDs.
//
// controller-gen copies the upstream pattern for quantities, which admits an
// exponent with a fraction ("1e1.5", "0e0."): the API server then stores a
// value that resource.ParseQuantity refuses, and every list of the kind fails
// to decode in the operator's informer (kubernetes/kubernetes#109839). The
// value gets a maxLength and, instead of the pattern, a CEL rule with a
// stricter expression, whose exponent is a short integer as ParseQuantity
// requires. A pattern's rejection shows the raw expression; the rule's shows
// its message ("must be a quantity such as 500m or 2Gi").
//
// A rule's cost counts every value the map may hold, so a map of quantities
// that has no maxProperties (the upstream LimitRangeItem and
// ResourceRequirements maps) gets the bound the quota has, 32 resource names.
//
// The rule matches the expression rather than calling isQuantity: isQuantity
// runs ParseQuantity inside the API server, which spends minutes on an
// exponent of a dozen digits (found by FuzzCRDQuantities), and the
// expression refuses that before anything parses it. Integers pass as
// before (a pattern never applied to them). `make manifests` runs this after
// controller-gen; FuzzCRDQuantities checks that every value the patched
// schema admits decodes, TestQuantityErrorsAreReadable (api/v1alpha1) that
// the API server says the message.
package main

import (
	"bytes"
	"fmt"
	"os"
)

const (
	upstream = `pattern: ^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$`
	// intOrString is the line controller-gen writes after the pattern; the
	// rule goes after it, where controller-gen's key order puts it.
	intOrString = `x-kubernetes-int-or-string: true`
	// maxLength bounds the mantissa as well.
	maxLength = `maxLength: 64`
	// maxProperties bounds a map of quantities, as MaxProperties does quota.
	maxProperties = `maxProperties: 32`
)

// rule is the value's x-kubernetes-validations. Its expression has an
// integer exponent of at most three digits: ParseQuantity refuses a fraction
// there, and a longer exponent makes it run for minutes.
var rule = []string{
	`x-kubernetes-validations:`,
	`- message: must be a quantity such as 500m or 2Gi`,
	`  rule: type(self) != string || self.matches(r'^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?[0-9]{1,3}))?$')`,
}

// patch replaces every upstream quantity pattern with maxLength, adds the
// rule after the value's int-or-string marker, and bounds the map that holds
// the value, each at its own indentation.
func patch(data []byte) ([]byte, error) {
	lines := bytes.Split(data, []byte("\n"))
	out := make([][]byte, 0, len(lines))
	var (
		value []byte // the indentation of a value still waiting for its rule
		owner []byte // the indentation of the map holding the last value
		bound bool   // whether that map has a maxProperties
	)
	for _, line := range lines {
		trimmed := bytes.TrimLeft(line, " ")
		indent := line[:len(line)-len(trimmed)]
		switch {
		case bytes.Equal(trimmed, []byte(upstream)):
			out = append(out, indented(indent, maxLength))
			value = indent
			owner, bound = indent[:len(indent)-2], false
		case value != nil && bytes.Equal(indent, value) && bytes.Equal(trimmed, []byte(intOrString)):
			out = append(out, line)
			for _, r := range rule {
				out = append(out, indented(indent, r))
			}
			value = nil
		case owner != nil && bytes.Equal(indent, owner) && bytes.HasPrefix(trimmed, []byte("maxProperties:")):
			out = append(out, line)
			bound = true
		case owner != nil && bytes.Equal(indent, owner) && bytes.Equal(trimmed, []byte("type: object")):
			if !bound {
				out = append(out, indented(indent, maxProperties))
			}
			out = append(out, line)
			owner = nil
		default:
			out = append(out, line)
		}
	}
	if value != nil || owner != nil {
		return nil, fmt.Errorf("a quantity pattern without %q after it, or outside a map: controller-gen changed its output", intOrString)
	}
	return bytes.Join(out, []byte("\n")), nil
}

func indented(indent []byte, s string) []byte {
	return append(append([]byte{}, indent...), s...)
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
		patched, err := patch(data)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			os.Exit(1)
		}
		if bytes.Equal(patched, data) {
			continue
		}
		if err := os.WriteFile(path, patched, 0o644); err != nil { //nolint:gosec // a generated manifest, world-readable like the rest of the repo
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
