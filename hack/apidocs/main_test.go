package main

import (
	"regexp"
	"strings"
	"testing"
)

func TestRenderAPIPackage(t *testing.T) {
	pkg, err := load("../../api/v1alpha1")
	if err != nil {
		t.Fatal(err)
	}
	out := string(render(pkg))
	for _, want := range []string{
		"- [ServiceOffering](#serviceoffering) (cluster-scoped)",
		"- [ConsumptionRequest](#consumptionrequest) (namespaced)",
		"| `apiVersion` | string | yes | `service.offering.dev/v1alpha1` |",
		"| `spec` | [ServiceAgreementSpec](#serviceagreementspec) | yes |",
		"| `revocationPolicy` | [RevocationPolicy](#revocationpolicy) | no |",
		"One of: `Delete`, `Retain`. Default: `Delete`.",
		"| `Retain` | keeps the namespace",
		"Keyed by `name`. Max items: 32.",
		"| `validFrom` | string (date-time) | no |",
		"Rule: providerNamespace is immutable.",
		"Scope: Cluster; short names: `svcoffering`, `sof`",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the reference lacks %q", want)
		}
	}
	if strings.Contains(out, "+kubebuilder") || strings.Contains(out, "+optional") {
		t.Error("markers leaked into the text")
	}
	// Every link to a section has its heading.
	headings := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#{2,3} (\w+)$`).FindAllStringSubmatch(out, -1) {
		headings[strings.ToLower(m[1])] = true
	}
	for _, m := range regexp.MustCompile(`\]\(#(\w+)\)`).FindAllStringSubmatch(out, -1) {
		if !headings[m[1]] {
			t.Errorf("link to #%s has no section", m[1])
		}
	}
}

func TestMarkerArgs(t *testing.T) {
	got := markerArgs(`rule="self.a, self.b == \"x\"",message="a, \"b\""`)
	if got["rule"] != `self.a, self.b == "x"` || got["message"] != `a, "b"` {
		t.Errorf("markerArgs: %q", got)
	}
}
