{{/* The chart's name, at most 63 characters. */}}
{{- define "lapse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of this release's objects: the release name when it already says
"lapse", else RELEASE-lapse.
*/}}
{{- define "lapse.fullname" -}}
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

{{/* Cluster-scoped objects are named after the namespace too. */}}
{{- define "lapse.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "lapse.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "lapse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lapse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "lapse.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "lapse.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "lapse.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret holding the SMTP password, or nothing. */}}
{{- define "lapse.smtpSecret" -}}
{{- if .Values.notify.existingSecret }}
{{- .Values.notify.existingSecret }}
{{- else if .Values.notify.password }}
{{- printf "%s-smtp" (include "lapse.fullname" .) }}
{{- end }}
{{- end }}

{{/*
A component's lapse.yaml, as YAML: the shared `config`, then the
component's own `config` over it (maps merged, lists replaced), then what
the chart decides: the SMTP password file, and `extra` (the DaemonSet's
paths, the namespaces of namespace-scoped mode).
Arguments: root, component (its values), extra (a dict merged last).
*/}}
{{- define "lapse.config" -}}
{{- $root := .root }}
{{- $cfg := mustMergeOverwrite (deepCopy ($root.Values.config | default dict)) (deepCopy (.component.config | default dict)) }}
{{- $cfg = mustMergeOverwrite $cfg (deepCopy (.extra | default dict)) }}
{{- if include "lapse.smtpSecret" $root }}
{{- if $cfg.notify }}
{{- $email := required "notify.password or notify.existingSecret is set: config.notify.email.smtp must be set too (README.md, notify)" (get $cfg.notify "email") }}
{{- $smtp := required "notify.password or notify.existingSecret is set: config.notify.email.smtp must be set too (README.md, notify)" (get $email "smtp") }}
{{- if or (hasKey $smtp "password_file") (hasKey $smtp "password_env") }}
{{- fail "config.notify.email.smtp: leave password_file and password_env out; the chart sets password_file from notify.password or notify.existingSecret" }}
{{- end }}
{{- $_ := set $smtp "password_file" "/etc/lapse/smtp/password" }}
{{- end }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/*
The lapse container, shared by the Deployment and the DaemonSet.
Arguments: root, component (values), config (its lapse.yaml), securityContext, mounts (extra volumeMounts).
*/}}
{{- define "lapse.container" -}}
{{- $root := .root }}
- name: lapse
  image: {{ include "lapse.image" $root | quote }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  {{- if .nodeLabel }}
  # Each pod's series carry its node, so a credential is told apart per node
  # and the alerts can count it once across them (alerts/README.md).
  args: [serve, --config, /etc/lapse/lapse.yaml, --metrics.label, node=$(NODE_NAME)]
  env:
    - name: NODE_NAME
      valueFrom:
        fieldRef: {fieldPath: spec.nodeName}
  {{- else }}
  args: [serve, --config, /etc/lapse/lapse.yaml]
  {{- end }}
  ports:
    - name: metrics
      containerPort: 10070
  livenessProbe:
    httpGet: {path: /healthz, port: metrics}
    periodSeconds: 20
  readinessProbe:
    httpGet: {path: /readyz, port: metrics}
    periodSeconds: 5
  resources:
    {{- toYaml .component.resources | nindent 4 }}
  securityContext:
    {{- toYaml .securityContext | nindent 4 }}
  volumeMounts:
    - name: config
      mountPath: /etc/lapse
      readOnly: true
    - name: state
      mountPath: /var/lib/lapse
    {{- if and (include "lapse.smtpSecret" $root) (contains "password_file: /etc/lapse/smtp/password" .config) }}
    - name: smtp
      mountPath: /etc/lapse/smtp
      readOnly: true
    {{- end }}
    {{- with .mounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/* The volumes every lapse Pod has. Arguments: root, component, name (ConfigMap), config. */}}
{{- define "lapse.volumes" -}}
- name: config
  configMap:
    name: {{ .name }}
- name: state
  {{- toYaml .component.stateVolume | nindent 2 }}
{{- if and (include "lapse.smtpSecret" .root) (contains "password_file: /etc/lapse/smtp/password" .config) }}
- name: smtp
  secret:
    secretName: {{ include "lapse.smtpSecret" .root }}
    items:
      - key: password
        path: password
{{- end }}
{{- end }}

{{/* prometheus.io scrape annotations, unless a ServiceMonitor does the scraping. */}}
{{- define "lapse.podAnnotations" -}}
{{- if not .root.Values.serviceMonitor.enabled }}
prometheus.io/scrape: "true"
prometheus.io/port: "10070"
prometheus.io/path: /metrics
{{- end }}
checksum/config: {{ .config | sha256sum }}
{{- with .component.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}
