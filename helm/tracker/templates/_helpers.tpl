{{/*
Name of the chart, or nameOverride.
*/}}
{{- define "tracker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name (63 characters at most, the DNS label limit).
The release name is used alone when it already contains the chart name.
*/}}
{{- define "tracker.fullname" -}}
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

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "tracker.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels. The chart and app versions are here, never in the selector labels.
*/}}
{{- define "tracker.labels" -}}
helm.sh/chart: {{ include "tracker.chart" . }}
{{ include "tracker.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels: stable across upgrades (a Deployment's selector is immutable).
*/}}
{{- define "tracker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tracker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Selector labels of the server pods: the component label keeps the topics Job's pod
out of the Service, the PodDisruptionBudget and the Deployment's selector.
*/}}
{{- define "tracker.serverSelectorLabels" -}}
{{ include "tracker.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{/*
Name of the service account to use.
*/}}
{{- define "tracker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tracker.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: repository:tag, tag defaulting to the chart's appVersion,
or repository@digest when image.digest is set.
*/}}
{{- define "tracker.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{/*
Environment shared by the server and the topics job.
*/}}
{{- define "tracker.env" -}}
- name: TRACKER_CONFIG
  value: {{ printf "%s/tracker.yaml" .Values.paths.config | quote }}
- name: TRACKER_KAFKA_BOOTSTRAP
  value: {{ required "kafka.bootstrapServers is required" .Values.kafka.bootstrapServers | quote }}
- name: TRACKER_LOG_DIR
  value: {{ .Values.paths.logDir | quote }}
- name: TRACKER_LOG_LEVEL
  value: {{ .Values.server.logLevel | quote }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The volume holding the tracker YAML, for the server and the topics job.
*/}}
{{- define "tracker.configVolume" -}}
- name: config
  configMap:
    name: {{ include "tracker.fullname" . }}
    items:
      - key: tracker.yaml
        path: tracker.yaml
{{- end }}
