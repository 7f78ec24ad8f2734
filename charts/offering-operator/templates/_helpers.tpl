{{/* The chart's name, for labels. */}}
{{- define "offering-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object besides its own app.kubernetes.io/name and component
(hack/chart drops an object's own value of these keys).
*/}}
{{- define "offering-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: offering-operator
{{- end }}

{{/* The labels that select the manager's pods; never change them (a Deployment's selector is immutable). */}}
{{- define "offering-operator.selectorLabels" -}}
app.kubernetes.io/name: offering-operator
control-plane: controller-manager
{{- end }}

{{/* A comma-separated flag from a list value: --name=a,b. */}}
{{- define "offering-operator.listFlag" -}}
{{- if .value }}
- --{{ .name }}={{ join "," .value }}
{{- end }}
{{- end }}
