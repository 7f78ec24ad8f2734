{{- define "gvDetails" -}}
{{- $gv := . -}}
Group `{{ $gv.Group }}`, version `{{ $gv.Version }}`. Kinds:
{{ range $gv.SortedKinds }}
{{- $kind := $gv.TypeForKind . }}
- {{ markdownRenderTypeLink $kind }}{{ with index $kind.Markers "kubebuilder:resource" }} ({{ if eq (index . 0).Scope "Cluster" }}cluster-scoped{{ else }}namespaced{{ end }}){{ end }}
{{- end }}

A field is required when the Required column says yes; "Default" is the value the API server fills in when the field is omitted; "Rule" lines are the messages of the CEL rules the API server checks. The status conditions and their reasons are explained in [conditions.md](conditions.md). `kubectl explain <kind>.spec --recursive` shows the same schema from a cluster.

Types are listed in alphabetical order.

How this page is made: [crd-ref-docs](https://github.com/elastic/crd-ref-docs) (pinned in `hack/tools/go.mod`) reads the doc comments and kubebuilder markers of `api/v1alpha1` and renders them with the templates in `hack/apidocs/templates`. It replaced a generator of our own because, with those templates, it shows everything that one did (descriptions, defaults, enums, bounds, list keys, scope, and the message of every CEL rule, which its stock templates leave out) from a maintained tool; `hack/apidocs/reference_test.go` fails when a rule, enum or default of the generated CRDs is missing here.
{{ range $gv.SortedTypes }}
{{- template "type" . }}
{{- end }}
{{- end -}}
