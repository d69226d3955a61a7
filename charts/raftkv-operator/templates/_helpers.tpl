{{/* Names and labels shared by the chart's templates. */}}

{{/* The chart name, or nameOverride. */}}
{{- define "raftkv-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* RELEASE-NAME (or the release name alone when it already contains the chart name), or fullnameOverride. */}}
{{- define "raftkv-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* chart-version, for the helm.sh/chart label. */}}
{{- define "raftkv-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object of the chart. */}}
{{- define "raftkv-operator.labels" -}}
helm.sh/chart: {{ include "raftkv-operator.chart" . }}
{{ include "raftkv-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: raftkv
{{- end }}

{{/* The labels that select the operator pods (immutable once installed). */}}
{{- define "raftkv-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "raftkv-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "raftkv-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "raftkv-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image: repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "raftkv-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* StorageClass for RaftClusters that name none: the value, else the local SSD class when the chart creates it. */}}
{{- define "raftkv-operator.defaultStorageClass" -}}
{{- if .Values.clusterDefaults.storageClassName }}
{{- .Values.clusterDefaults.storageClassName }}
{{- else if .Values.localStorageClass.create }}
{{- .Values.localStorageClass.name }}
{{- end }}
{{- end }}
