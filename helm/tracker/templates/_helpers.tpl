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
Environment shared by the server and the topics job: what the tracker YAML refers to
(${TRACKER_KAFKA_BOOTSTRAP}, ${TRACKER_REDIS_URL}, ${TRACKER_LOG_DIR}, ${TRACKER_SPOOL_DIR} and the secrets)
and the log level. The secrets are optional secretKeyRefs to the Secret named
`secret` (none when empty): a missing Secret or key leaves the variable unset, and
the shipped config's ${NAME:-} then reads "". Called with (dict "root" $ "secret" name).
*/}}
{{- define "tracker.env" -}}
{{- $values := .root.Values -}}
- name: TRACKER_CONFIG
  value: {{ printf "%s/tracker.yaml" $values.paths.config | quote }}
- name: TRACKER_KAFKA_BOOTSTRAP
  value: {{ required "kafka.bootstrapServers is required" $values.kafka.bootstrapServers | quote }}
- name: TRACKER_REDIS_URL
  value: {{ required "redis.url is required" $values.redis.url | quote }}
- name: TRACKER_LOG_DIR
  value: {{ $values.paths.logDir | quote }}
- name: TRACKER_SPOOL_DIR
  value: {{ $values.paths.spoolDir | quote }}
- name: TRACKER_LOG_LEVEL
  value: {{ $values.server.logLevel | quote }}
{{- with .secret }}
{{- $secret := . }}
{{- range $env, $key := dict "TRACKER_CLICK_KEYS" "clickKeys" "TRACKER_PRICE_ENCRYPTION_KEY" "priceEncryptionKey" "TRACKER_PRICE_INTEGRITY_KEY" "priceIntegrityKey" }}
- name: {{ $env }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
      optional: true
{{- end }}
{{- end }}
{{- with $values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Name of the Secret holding the tracker's keys: secrets.existingSecret, the chart's own
Secret when secrets.create, else empty (no secret variables at all).
*/}}
{{- define "tracker.secretName" -}}
{{- if and .Values.secrets.existingSecret .Values.secrets.create }}
{{- fail "set secrets.existingSecret (a Secret you manage) or secrets.create (the chart's Secret from secrets.clickKeys...), not both" }}
{{- end }}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else if .Values.secrets.create }}
{{- include "tracker.fullname" . }}
{{- end }}
{{- end }}

{{/*
The tracker YAML of the ConfigMap: the `config` value when set, which replaces the
shipped file entirely, else files/tracker.yaml (a symlink to the repository's
config/tracker.yaml; `helm package` stores the file itself), verbatim.
*/}}
{{- define "tracker.configText" -}}
{{- if .Values.config }}
{{- if not (kindIs "map" .Values.config) }}
{{- fail "config must be the whole tracker YAML as a map (or empty for the shipped config/tracker.yaml)" }}
{{- end }}
{{- if not (and .Values.config.collectors .Values.config.paths) }}
{{- fail "config replaces the shipped tracker.yaml entirely (it is not merged with it), so it needs collectors and paths: start from a copy of config/tracker.yaml (see the chart's README)" }}
{{- end }}
# Rendered by the {{ .Chart.Name }} chart from the `config` value, which replaces config/tracker.yaml.
{{ toYaml .Values.config }}
{{- else }}
{{- $text := .Files.Get "files/tracker.yaml" }}
{{- if not $text }}
{{- fail "files/tracker.yaml is missing or empty: it is a symlink to config/tracker.yaml, which needs a checkout with symlinks (or set `config`)" }}
{{- end }}
# The {{ .Chart.Name }} chart's files/tracker.yaml: the repository's config/tracker.yaml, verbatim.
{{ $text }}
{{- end }}
{{- end }}

{{/*
The spool volume's source: spool.volume, one volume source. The default emptyDir is
dropped when another source is given, so that --set spool.volume.hostPath.path=/x
works without also setting spool.volume.emptyDir=null.
*/}}
{{- define "tracker.spoolVolumeSource" -}}
{{- $source := .Values.spool.volume | default dict }}
{{- $others := omit $source "emptyDir" }}
{{- if $others }}
{{- $source = $others }}
{{- end }}
{{- if ne (len $source) 1 }}
{{- fail (printf "spool.volume must be exactly one volume source (emptyDir, hostPath, persistentVolumeClaim...), not %v" (keys $source | sortAlpha)) }}
{{- end }}
{{- toYaml $source }}
{{- end }}

{{/*
The volume holding the tracker YAML: the ConfigMap named by the argument (the
release's for the server, the hook's own for the topics job).
*/}}
{{- define "tracker.configVolume" -}}
- name: config
  configMap:
    name: {{ . }}
    items:
      - key: tracker.yaml
        path: tracker.yaml
{{- end }}

{{/*
Name of the topics hook's objects (Job, ConfigMap, Secret, ServiceAccount).
*/}}
{{- define "tracker.topicsName" -}}
{{- printf "%s-topics" (include "tracker.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The Secret of the topics job's keys: the existingSecret (made before the install),
its own pre-install copy of the chart's Secret, or none.
*/}}
{{- define "tracker.topicsSecretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else if .Values.secrets.create }}
{{- include "tracker.topicsName" . }}
{{- end }}
{{- end }}

{{/*
Annotations of the topics hook's objects: pre-install/pre-upgrade, so that the topics
exist before the Deployment's pods ask for them (`helm install --wait` waits for
their readiness, which needs the topics). The ConfigMap, Secret and ServiceAccount
come first (weight -10), the Job last (0); every one is deleted once all succeeded,
and before it is made again. Called with the weight.
*/}}
{{- define "tracker.topicsHook" -}}
"helm.sh/hook": pre-install,pre-upgrade
"helm.sh/hook-weight": {{ . | quote }}
"helm.sh/hook-delete-policy": before-hook-creation,hook-succeeded
{{- end }}

{{/*
The data of the chart's Secret (secrets.create): each non-empty key, base64.
*/}}
{{- define "tracker.secretData" }}
{{- with .Values.secrets.clickKeys }}
clickKeys: {{ . | toString | b64enc | quote }}
{{- end }}
{{- with .Values.secrets.priceEncryptionKey }}
priceEncryptionKey: {{ . | toString | b64enc | quote }}
{{- end }}
{{- with .Values.secrets.priceIntegrityKey }}
priceIntegrityKey: {{ . | toString | b64enc | quote }}
{{- end }}
{{- end }}
