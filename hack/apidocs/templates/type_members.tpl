{{- define "type_members" -}}
{{- $field := . -}}
{{- $constraints := list -}}
{{- with index $field.Markers "listType" }}{{ if eq (index . 0) "set" }}{{ $constraints = append $constraints "Values are unique." }}{{ end }}{{ end -}}
{{- range index $field.Markers "listMapKey" }}{{ $constraints = append $constraints (printf "Keyed by `%s`." .) }}{{ end -}}
{{- range $field.Validation }}{{ if not (has . (list "Required: {}" "Optional: {}")) }}{{ $constraints = append $constraints (printf "%s." (. | replace "items:" "Each item ")) }}{{ end }}{{ end -}}
{{- /* hack/crdquantity adds this rule to every quantity in the CRDs. */ -}}
{{- if eq $field.Type.Name "ResourceList" }}{{ $constraints = append $constraints "Rule: must be a quantity such as 500m or 2Gi" }}{{ end -}}
{{- range index $field.Markers "kubebuilder:validation:XValidation" }}{{ $constraints = append $constraints (printf "Rule: %s" .Message) }}{{ end -}}
{{- if eq $field.Name "metadata" -}}
metadata is the standard object metadata.
{{- else -}}
{{ markdownRenderFieldDoc ($field.Doc | replace "\n\n" "\u00b6" | replace "\n" " " | replace "\u00b6" "\n") }}
{{- end -}}
{{- with $constraints }}<br>{{ markdownRenderFieldDoc (join " " .) }}{{ end -}}
{{- end -}}
