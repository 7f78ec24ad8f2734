// Package apidocs holds the crd-ref-docs configuration and templates that
// write docs/api-reference.md (`make api-docs`). This test checks the
// written reference against the generated CRDs: crd-ref-docs leaves CEL
// rules out unless the templates print them, so a template change (or a
// new kind of marker) that drops what the API server enforces fails here.
package apidocs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// unescape undoes the escaping of the Markdown tables.
var unescape = strings.NewReplacer(`\|`, `|`, `\{`, `{`, `\}`, `}`)

func TestReferenceShowsWhatTheAPIServerEnforces(t *testing.T) {
	data, err := os.ReadFile("../../docs/api-reference.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := unescape.Replace(string(data))
	crds, err := filepath.Glob("../../config/crd/bases/*.yaml")
	if err != nil || len(crds) == 0 {
		t.Fatalf("no CRDs: %v", err)
	}
	for _, file := range crds {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(raw, &crd); err != nil {
			t.Fatal(err)
		}
		kind := crd.Spec.Names.Kind
		for _, want := range []string{"## " + kind + "\n", "short names: `" + strings.Join(crd.Spec.Names.ShortNames, "`, `") + "`"} {
			if !strings.Contains(doc, want) {
				t.Errorf("%s: the reference lacks %q", kind, want)
			}
		}
		for _, v := range crd.Spec.Versions {
			walk(v.Schema.OpenAPIV3Schema, kind, func(path string, s *apiextensionsv1.JSONSchemaProps) {
				var wants []string
				for _, rule := range s.XValidations {
					wants = append(wants, "Rule: "+rule.Message)
				}
				for _, e := range s.Enum {
					wants = append(wants, "| `"+strings.Trim(string(e.Raw), `"`)+"` |")
				}
				if s.Default != nil {
					wants = append(wants, "| `"+strings.Trim(string(s.Default.Raw), `"`)+"` |")
				}
				for _, want := range wants {
					if !strings.Contains(doc, want) {
						t.Errorf("%s: the reference lacks %q", path, want)
					}
				}
			})
		}
	}
}

// walk calls f on every schema under s that belongs to our API, skipping
// the standard object metadata, conditions and the upstream types that the
// reference links to (their quantity rule comes from hack/crdquantity and
// is checked through quota, which the reference describes).
func walk(s *apiextensionsv1.JSONSchemaProps, path string, f func(string, *apiextensionsv1.JSONSchemaProps)) {
	if s == nil || strings.HasSuffix(path, ".metadata") || strings.HasSuffix(path, ".limits") || strings.HasSuffix(path, ".job.resources") || strings.HasSuffix(path, ".conditions") {
		return
	}
	f(path, s)
	for name, p := range s.Properties {
		walk(&p, path+"."+name, f)
	}
	if s.Items != nil {
		walk(s.Items.Schema, path+"[]", f)
	}
	if s.AdditionalProperties != nil {
		walk(s.AdditionalProperties.Schema, path+"{}", f)
	}
}

// TestReferenceLinksResolve: every link to a section has its heading.
func TestReferenceLinksResolve(t *testing.T) {
	data, err := os.ReadFile("../../docs/api-reference.md")
	if err != nil {
		t.Fatal(err)
	}
	headings := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#{1,3} (\w+)$`).FindAllStringSubmatch(string(data), -1) {
		headings[strings.ToLower(m[1])] = true
	}
	for _, m := range regexp.MustCompile(`\]\(#(\w+)\)`).FindAllStringSubmatch(string(data), -1) {
		if !headings[m[1]] {
			t.Errorf("link to #%s has no section", m[1])
		}
	}
}
