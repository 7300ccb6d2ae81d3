{{/* Chart name, truncated to the 63 characters Kubernetes allows in names. */}}
{{- define "saker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release name, plus the chart name unless the release name already contains it. */}}
{{- define "saker.fullname" -}}
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

{{- define "saker.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{- define "saker.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "saker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "saker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "saker.labels" -}}
helm.sh/chart: {{ include "saker.chart" . }}
{{ include "saker.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: saker
{{- end }}

{{- define "saker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "saker.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "saker.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if .Values.image.registry }}
{{- printf "%s/%s:%s" .Values.image.registry .Values.image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
The driver check: Saker only has its CO-RE eBPF probe. Falco's kind names for eBPF are
accepted so that Falco values files render; kmod and plugin-only mode fail with a reason.
*/}}
{{- define "saker.validateDriver" -}}
{{- if not .Values.driver.enabled }}
{{- fail "driver.enabled=false is not supported: Saker needs its eBPF probe (there is no plugin-only mode)" }}
{{- end }}
{{- $kind := .Values.driver.kind | default "modern_ebpf" }}
{{- if not (has $kind (list "modern_ebpf" "modern-bpf" "ebpf" "auto")) }}
{{- fail (printf "driver.kind=%s is not supported: Saker has no kernel module; use modern_ebpf" $kind) }}
{{- end }}
{{- end }}

{{- define "saker.leastPrivileged" -}}
{{- if or .Values.leastPrivileged .Values.driver.modernEbpf.leastPrivileged }}true{{ end }}
{{- end }}

{{/* Container securityContext: the user's override, least-privileged capabilities, or privileged. */}}
{{- define "saker.containerSecurityContext" -}}
{{- if .Values.containerSecurityContext }}
{{- toYaml .Values.containerSecurityContext }}
{{- else if include "saker.leastPrivileged" . }}
# The probe runs as root (uid 0) with only what eBPF needs: loading programs and maps (BPF),
# tracepoints and ring buffers (PERFMON), reading other processes' /proc entries (SYS_PTRACE),
# and memlock on kernels that still charge BPF memory to RLIMIT_MEMLOCK (SYS_RESOURCE).
runAsUser: 0
privileged: false
capabilities:
  add:
    - BPF
    - PERFMON
    - SYS_PTRACE
    - SYS_RESOURCE
{{- if semverCompare ">=1.30-0" .Capabilities.KubeVersion.Version }}
appArmorProfile:
  type: Unconfined
{{- end }}
{{- else }}
runAsUser: 0
privileged: true
{{- end }}
{{- end }}

{{/*
The host directories holding the enabled engines' sockets, one per line, deduplicated.
A directory mount survives a runtime restart; a socket file mount does not.
*/}}
{{- define "saker.socketDirs" -}}
{{- $dirs := list }}
{{- if and .Values.collectors.enabled .Values.collectors.containerEngine.enabled }}
{{- range $name, $engine := .Values.collectors.containerEngine.engines }}
{{- if $engine.enabled }}
{{- range $engine.sockets }}
{{- $dirs = append $dirs (dir .) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- range ($dirs | uniq | sortAlpha) }}
{{ . }}
{{- end }}
{{- end }}

{{/* Volume name for a host directory: /run/containerd -> socket-dir-run-containerd. */}}
{{- define "saker.socketDirVolume" -}}
{{- printf "socket-dir%s" (. | replace "/" "-" | replace "." "-" | replace "_" "-") | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The container_engines section of saker.yaml: socket paths as seen inside the pod (/host prefix). */}}
{{- define "saker.containerEngines" -}}
{{- $engines := dict }}
{{- if and .Values.collectors.enabled .Values.collectors.containerEngine.enabled }}
{{- range $name, $engine := .Values.collectors.containerEngine.engines }}
{{- $sockets := list }}
{{- range $engine.sockets }}
{{- $sockets = append $sockets (printf "/host%s" .) }}
{{- end }}
{{- $_ := set $engines $name (dict "enabled" (default false $engine.enabled) "sockets" $sockets) }}
{{- end }}
{{- end }}
{{- toYaml $engines }}
{{- end }}

{{/*
saker.yaml as a dict: saker.* with falco.* merged over it, Falco's /etc/falco rules paths
mapped to /etc/saker, metrics switches from metrics.*, container engines from collectors.*.
*/}}
{{- define "saker.configDict" -}}
{{- $cfg := deepCopy .Values.saker }}
{{- /* A key-by-key merge two levels deep: mergeOverwrite would skip false and 0 values. */}}
{{- range $key, $val := (deepCopy (.Values.falco | default dict)) }}
{{- $cur := get $cfg $key }}
{{- if and (kindIs "map" $val) (kindIs "map" $cur) }}
{{- range $k2, $v2 := $val }}
{{- $_ := set $cur $k2 $v2 }}
{{- end }}
{{- else }}
{{- $_ := set $cfg $key $val }}
{{- end }}
{{- end }}
{{- $rules := list }}
{{- range $cfg.rules_files }}
{{- $rules = append $rules (. | replace "/etc/falco/" "/etc/saker/" | replace "falco_rules" "saker_rules") }}
{{- end }}
{{- $_ := set $cfg "rules_files" $rules }}
{{- if .Values.metrics.enabled }}
{{- $web := $cfg.webserver | default dict }}
{{- $_ := set $web "enabled" true }}
{{- $_ := set $web "prometheus_metrics_enabled" true }}
{{- $_ := set $cfg "webserver" $web }}
{{- $m := $cfg.metrics | default dict }}
{{- $_ := set $m "enabled" true }}
{{- $_ := set $m "interval" .Values.metrics.interval }}
{{- $_ := set $m "output_rule" .Values.metrics.outputRule }}
{{- $_ := set $cfg "metrics" $m }}
{{- end }}
{{- $_ := set $cfg "container_engines" (include "saker.containerEngines" . | fromYaml) }}
{{- toYaml $cfg }}
{{- end }}

{{- define "saker.webserverEnabled" -}}
{{- $cfg := include "saker.configDict" . | fromYaml }}
{{- if and $cfg.webserver $cfg.webserver.enabled }}true{{ end }}
{{- end }}

{{- define "saker.listenPort" -}}
{{- $cfg := include "saker.configDict" . | fromYaml }}
{{- (($cfg.webserver | default dict).listen_port | default 8765) | int }}
{{- end }}
