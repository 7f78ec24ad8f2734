{{- define "doc" -}}
{{- /* Join the lines of each paragraph of a doc comment. */ -}}
{{- . | replace "\n\n" "\u00b6" | replace "\n" " " | replace "\u00b6" "\n\n" -}}
{{- end -}}

{{- define "type" -}}
{{- $type := . -}}
{{- if markdownShouldRenderType $type }}

## {{ $type.Name }}

{{ template "doc" $type.Doc }}
{{- if $type.IsAlias }}

Underlying type: {{ markdownRenderTypeLink $type.UnderlyingType }}.
{{- end }}
{{- with index $type.Markers "kubebuilder:resource" }}{{ with index . 0 }}

Scope: {{ .Scope }}; short names: {{ range $i, $n := .ShortName }}{{ if $i }}, {{ end }}`{{ $n }}`{{ end }}; categories: {{ range $i, $n := .Categories }}{{ if $i }}, {{ end }}`{{ $n }}`{{ end }}
{{- if index $type.Markers "kubebuilder:subresource:status" }}; status subresource{{ end }}.
{{- end }}{{ end }}
{{- $rules := index $type.Markers "kubebuilder:validation:XValidation" }}
{{- if or $rules (and $type.IsAlias $type.Validation) }}

Validation:
{{ range $rules }}
- Rule: {{ .Message }}
{{- end }}
{{- if $type.IsAlias }}{{ range $type.Validation }}
- {{ . }}
{{- end }}{{ end }}
{{- end }}
{{- if $type.References }}

Used in: {{ range $i, $r := $type.SortedReferences }}{{ if $i }}, {{ end }}{{ markdownRenderTypeLink $r }}{{ end }}.
{{- end }}
{{- if $type.Members }}

| Field | Type | Required | Default | Description |
|---|---|---|---|---|
{{- if $type.GVK }}
| `apiVersion` | string | yes | | `{{ $type.GVK.Group }}/{{ $type.GVK.Version }}` |
| `kind` | string | yes | | `{{ $type.GVK.Kind }}` |
{{- end }}
{{- range $type.Members }}
| `{{ .Name }}` | {{ markdownRenderType .Type }} | {{ if has "Required: {}" .Validation }}yes{{ else }}no{{ end }} | {{ with .Default }}`{{ markdownRenderDefault . }}`{{ end }} | {{ template "type_members" . }} |
{{- end }}
{{- end }}
{{- if $type.EnumValues }}

| Value | Description |
|---|---|
{{- range $type.EnumValues }}
| `{{ .Name }}` | {{ markdownRenderFieldDoc (.Doc | replace "\n\n" "\u00b6" | replace "\n" " " | replace "\u00b6" "\n") }} |
{{- end }}
{{- end }}
{{- end }}
{{- end -}}
