{{/* Chart name, truncated to the 63 characters Kubernetes allows in names. */}}
{{- define "saker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name, as Falco's chart gives for its usual release "falco" (so a
ServiceAccount named in an IRSA trust policy for Falco keeps its name). With nameOverride set,
the release name plus that name unless the release name already contains it.
*/}}
{{- define "saker.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if and .Values.nameOverride (not (contains .Values.nameOverride .Release.Name)) }}
{{- printf "%s-%s" .Release.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
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

{{/* True when image.* names Falco's own image (a copied Falco values file). */}}
{{- define "saker.isFalcoImage" -}}
{{- if eq (.Values.image.repository | default "") "falcosecurity/falco" }}true{{ end }}
{{- end }}

{{/* Saker's image; Falco's image reference is replaced by Saker's default with the chart's version. */}}
{{- define "saker.image" -}}
{{- $registry := .Values.image.registry }}
{{- $repository := .Values.image.repository }}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if include "saker.isFalcoImage" . }}
{{- $registry = "ghcr.io" }}
{{- $repository = "saker-dev/saker" }}
{{- $tag = .Chart.AppVersion }}
{{- end }}
{{- if $registry }}
{{- printf "%s/%s:%s" $registry $repository $tag }}
{{- else }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}
{{- end }}

{{- define "saker.falcoctlImage" -}}
{{- with .Values.falcoctl.image }}
{{- if .registry }}
{{- printf "%s/%s:%s" .registry .repository .tag }}
{{- else }}
{{- printf "%s:%s" .repository .tag }}
{{- end }}
{{- end }}
{{- end }}

{{/* The value at a dotted path of .Values, and whether it is set: dict "set" bool "value" v. */}}
{{- define "saker.valueAt" -}}
{{- $cur := .root.Values }}
{{- $set := true }}
{{- range (splitList "." .path) }}
{{- if and $set (kindIs "map" $cur) (hasKey $cur .) }}
{{- $cur = get $cur . }}
{{- else }}
{{- $set = false }}
{{- end }}
{{- end }}
{{- toJson (dict "set" $set "value" (ternary $cur nil $set)) }}
{{- end }}

{{/*
Every refusal in one message: Falco values that Saker cannot honour (refused-values.yaml, which
accept only Falco's default) and unsupported choices of honoured values.
*/}}
{{- define "saker.refuseValues" -}}
{{- $errors := list }}
{{- $refused := .Files.Get "refused-values.yaml" | fromYaml }}
{{- range $path := keys $refused | sortAlpha }}
{{- $spec := get $refused $path }}
{{- $got := include "saker.valueAt" (dict "root" $ "path" $path) | fromJson }}
{{- if and $got.set (ne (toJson $got.value) (toJson $spec.default)) }}
{{- $errors = append $errors (printf "%s=%s is not supported: %s" $path (toJson $got.value) $spec.reason) }}
{{- end }}
{{- end }}
{{- if not .Values.driver.enabled }}
{{- $errors = append $errors "driver.enabled=false is not supported: Saker needs its eBPF probe (there is no plugin-only mode)" }}
{{- end }}
{{- $kind := .Values.driver.kind | default "auto" }}
{{- if not (has $kind (list "modern_ebpf" "modern-bpf" "auto")) }}
{{- $errors = append $errors (printf "driver.kind=%s is not supported: Saker has neither a kernel module nor the legacy eBPF probe, only its CO-RE eBPF probe; use driver.kind=modern_ebpf (or auto)" $kind) }}
{{- end }}
{{- $controller := .Values.controller.kind | default "daemonset" }}
{{- if not (has $controller (list "daemonset" "deployment")) }}
{{- $errors = append $errors (printf "controller.kind=%s is not supported: use daemonset or deployment" $controller) }}
{{- end }}
{{- $builtin := include "saker.builtinRules" . }}
{{- if not (has $builtin (list "falco" "saker" "both")) }}
{{- $errors = append $errors (printf "saker.builtinRules=%s is not supported: use falco, saker or both" $builtin) }}
{{- end }}
{{- if and .Values.serviceMonitor.create (not .Values.metrics.enabled) }}
{{- $errors = append $errors "serviceMonitor.create=true needs metrics.enabled=true (the ServiceMonitor scrapes the metrics Service)" }}
{{- end }}
{{- if $errors }}
{{- fail (printf "\n%s" (join "\n" $errors)) }}
{{- end }}
{{- end }}

{{/* Things that render but do not do what a Falco user may expect; printed in NOTES.txt. */}}
{{- define "saker.notices" -}}
{{- $notes := list }}
{{- if include "saker.isFalcoImage" . }}
{{- $notes = append $notes (printf "image: %s/falcosecurity/falco is Falco's image; the pods run %s instead" (.Values.image.registry | default "docker.io") (include "saker.image" .)) }}
{{- end }}
{{- range $engine := list "lxc" "libvirt_lxc" "bpm" }}
{{- $e := get $.Values.collectors.containerEngine.engines $engine }}
{{- if and $e $e.enabled }}
{{- $notes = append $notes (printf "collectors.containerEngine.engines.%s.enabled: Saker does not recognise %s containers; their processes count as host processes" $engine $engine) }}
{{- end }}
{{- end }}
{{- $cfg := include "saker.configDict" . | fromYaml }}
{{- if and (not .Values.falcoctl.artifact.install.enabled) (has "/etc/falco/falco_rules.yaml" $cfg.rules_files) }}
{{- $notes = append $notes "falcoctl.artifact.install.enabled=false: the Saker image does not ship Falco's rules, so /etc/falco/falco_rules.yaml exists only if you mount it (or set saker.builtinRules=saker)" }}
{{- end }}
{{- if and .Values.falcoctl.artifact.follow.enabled (not (include "saker.webserverEnabled" .)) }}
{{- $notes = append $notes "falcoctl.artifact.follow.enabled with the web server off: the follower reads Saker's /versions endpoint (webserver.enabled) and stops without it" }}
{{- end }}
{{- range $notes }}
{{ . }}
{{- end }}
{{- end }}

{{/* saker.builtinRules, with true/false accepted for saker/falco. */}}
{{- define "saker.builtinRules" -}}
{{- $v := .Values.saker.builtinRules }}
{{- if kindIs "bool" $v }}{{ ternary "saker" "falco" $v }}{{ else }}{{ $v | default "falco" }}{{ end }}
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
{{- if has $name (list "docker" "podman" "containerd" "cri") }}
{{- $sockets := list }}
{{- range $engine.sockets }}
{{- $sockets = append $sockets (printf "/host%s" .) }}
{{- end }}
{{- $_ := set $engines $name (dict "enabled" (default false $engine.enabled) "sockets" $sockets) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $engines }}
{{- end }}

{{/* The falcosidekick chart's Service name, computed as that chart does. */}}
{{- define "saker.falcosidekickFullname" -}}
{{- $sk := .Values.falcosidekick }}
{{- if $sk.fullnameOverride }}
{{- $sk.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default "falcosidekick" $sk.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "saker.falcosidekickUrl" -}}
{{- $sk := .Values.falcosidekick }}
{{- $port := $sk.listenPort | default (dig "service" "port" "" $sk) | default 2801 }}
{{- if $sk.fullfqdn }}
{{- printf "http://%s.%s.svc.cluster.local:%v" (include "saker.falcosidekickFullname" .) .Release.Namespace $port }}
{{- else }}
{{- printf "http://%s:%v" (include "saker.falcosidekickFullname" .) $port }}
{{- end }}
{{- end }}

{{/*
saker.yaml as a dict: saker.* with falco.* merged over it (key by key, two levels deep: a plain
mergeOverwrite would skip false and 0), then what the chart derives as Falco's chart does:
rules_files from saker.builtinRules, Falcosidekick's http_output, metrics.* and the engine from
driver.*, and the container engines from collectors.*.
*/}}
{{- define "saker.configDict" -}}
{{- $cfg := deepCopy .Values.saker }}
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
{{- $_ := unset $cfg "builtinRules" }}
{{- $builtin := include "saker.builtinRules" . }}
{{- if ne $builtin "falco" }}
{{- $falcoRules := "/etc/falco/falco_rules.yaml" }}
{{- $sakerRules := "/etc/saker/saker_rules.yaml" }}
{{- $rules := list }}
{{- $placed := false }}
{{- range ($cfg.rules_files | default list) }}
{{- if and (eq . $falcoRules) (not $placed) }}
{{- $rules = append $rules $sakerRules }}
{{- $placed = true }}
{{- if eq $builtin "both" }}
{{- $rules = append $rules . }}
{{- end }}
{{- else }}
{{- $rules = append $rules . }}
{{- end }}
{{- end }}
{{- if not $placed }}
{{- $rules = prepend $rules $sakerRules }}
{{- end }}
{{- $_ := set $cfg "rules_files" $rules }}
{{- end }}
{{- if .Values.falcosidekick.enabled }}
{{- $_ := set $cfg "json_output" true }}
{{- $_ := set $cfg "json_include_output_property" true }}
{{- $http := $cfg.http_output | default dict }}
{{- $_ := set $http "enabled" true }}
{{- if not $http.url }}
{{- $_ := set $http "url" (include "saker.falcosidekickUrl" .) }}
{{- end }}
{{- $_ := set $cfg "http_output" $http }}
{{- end }}
{{- if .Values.metrics.enabled }}
{{- $web := $cfg.webserver | default dict }}
{{- $_ := set $web "enabled" true }}
{{- $_ := set $web "prometheus_metrics_enabled" true }}
{{- $_ := set $cfg "webserver" $web }}
{{- $m := $cfg.metrics | default dict }}
{{- with .Values.metrics }}
{{- $_ := set $m "enabled" true }}
{{- $_ := set $m "interval" .interval }}
{{- $_ := set $m "output_rule" .outputRule }}
{{- $_ := set $m "rules_counters_enabled" .rulesCountersEnabled }}
{{- $_ := set $m "resource_utilization_enabled" .resourceUtilizationEnabled }}
{{- $_ := set $m "state_counters_enabled" .stateCountersEnabled }}
{{- $_ := set $m "kernel_event_counters_enabled" .kernelEventCountersEnabled }}
{{- $_ := set $m "kernel_event_counters_per_cpu_enabled" .kernelEventCountersPerCPUEnabled }}
{{- $_ := set $m "libbpf_stats_enabled" .libbpfStatsEnabled }}
{{- $_ := set $m "plugins_metrics_enabled" .pluginsMetricsEnabled }}
{{- $_ := set $m "kernel_iter_event_counters_enabled" .kernelIterEventCountersEnabled }}
{{- $_ := set $m "jemalloc_stats_enabled" .jemallocStatsEnabled }}
{{- $_ := set $m "convert_memory_to_mb" .convertMemoryToMB }}
{{- $_ := set $m "include_empty_values" .includeEmptyValues }}
{{- end }}
{{- $_ := set $cfg "metrics" $m }}
{{- end }}
{{- with .Values.driver.modernEbpf }}
{{- $_ := set $cfg "engine" (dict "kind" "modern_ebpf" "modern_ebpf" (dict "buf_size_preset" .bufSizePreset "drop_failed_exit" .dropFailedExit "cpus_for_each_buffer" .cpusForEachBuffer "disable_iterators" .disableIterators)) }}
{{- end }}
{{- $_ := set $cfg "container_engines" (include "saker.containerEngines" . | fromYaml) }}
{{- toYaml $cfg }}
{{- end }}

{{- define "saker.webserverEnabled" -}}
{{- $cfg := include "saker.configDict" . | fromYaml }}
{{- if and $cfg.webserver $cfg.webserver.enabled }}true{{ end }}
{{- end }}

{{/* The rules directory falcoctl fills, mounted at /etc/falco in the saker container. */}}
{{- define "saker.falcoctlEnabled" -}}
{{- if or .Values.falcoctl.artifact.install.enabled .Values.falcoctl.artifact.follow.enabled }}true{{ end }}
{{- end }}

{{/* A falcoctl container: install (init container) or follow (sidecar), as in Falco's chart. */}}
{{- define "saker.falcoctlContainer" -}}
{{- $root := .root }}
{{- $mode := .mode }}
{{- $spec := get $root.Values.falcoctl.artifact $mode }}
{{- $dirs := get $root.Values.falcoctl.config.artifact $mode }}
- name: falcoctl-artifact-{{ $mode }}
  image: {{ include "saker.falcoctlImage" $root }}
  imagePullPolicy: {{ $root.Values.falcoctl.image.pullPolicy }}
  args:
    - artifact
    - {{ $mode }}
    {{- range $spec.args }}
    - {{ . | quote }}
    {{- end }}
  {{- with $spec.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $spec.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: plugins-install-dir
      mountPath: {{ $dirs.pluginsDir }}
    - name: rulesfiles-install-dir
      mountPath: {{ $dirs.rulesfilesDir }}
    - name: falcoctl-config-volume
      mountPath: /etc/falcoctl
    - name: artifact-state-dir
      mountPath: {{ $dirs.stateDir }}
    {{- with $spec.mounts.volumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $spec.env }}
  env:
    {{- tpl (toYaml .) $root | nindent 4 }}
  {{- end }}
  {{- with $spec.envFrom }}
  envFrom:
    {{- tpl (toYaml .) $root | nindent 4 }}
  {{- end }}
{{- end }}

{{- define "saker.certsMounted" -}}
{{- with .Values.certs }}
{{- if or .existingSecret (and .server.key .server.crt .ca.crt) }}true{{ end }}
{{- end }}
{{- end }}

{{- define "saker.clientCertsMounted" -}}
{{- with .Values.certs }}
{{- if or .existingClientSecret (and .client.key .client.crt .ca.crt) }}true{{ end }}
{{- end }}
{{- end }}
