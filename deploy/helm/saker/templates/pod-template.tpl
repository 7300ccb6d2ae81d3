{{/* The pod template shared by the DaemonSet and the Deployment. */}}
{{- define "saker.podTemplate" -}}
{{- $cfg := include "saker.configDict" . | fromYaml }}
{{- $cw := $cfg.cloudwatch_output | default dict }}
{{- $web := $cfg.webserver | default dict }}
{{- $port := ($web.listen_port | default 8765) | int }}
{{- $priorityClass := .Values.priorityClassName | default .Values.podPriorityClassName }}
{{- $falcoctl := include "saker.falcoctlEnabled" . }}
{{- $userHostname := false }}
{{- range .Values.extra.env }}
{{- if eq .name "FALCO_HOSTNAME" }}{{ $userHostname = true }}{{ end }}
{{- end }}
metadata:
  labels:
    {{- include "saker.selectorLabels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # A change of saker.yaml, customRules, falcoctl.yaml or certs rolls the pods.
    checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
    checksum/rules: {{ include (print $.Template.BasePath "/rules-configmap.yaml") . | sha256sum }}
    {{- if $falcoctl }}
    checksum/falcoctl: {{ include (print $.Template.BasePath "/falcoctl-configmap.yaml") . | sha256sum }}
    {{- end }}
    {{- if and (include "saker.certsMounted" .) (not .Values.certs.existingSecret) }}
    checksum/certs: {{ include (print $.Template.BasePath "/certs-secret.yaml") . | sha256sum }}
    {{- end }}
    {{- if and (include "saker.leastPrivileged" .) (not .Values.containerSecurityContext) (semverCompare "<1.30-0" .Capabilities.KubeVersion.Version) }}
    container.apparmor.security.beta.kubernetes.io/saker: unconfined
    {{- end }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- with .Values.podHostname }}
  hostname: {{ . }}
  {{- end }}
  serviceAccountName: {{ include "saker.serviceAccountName" . }}
  # Saker never calls the API server; IRSA brings its own projected token volume.
  automountServiceAccountToken: false
  {{- with $priorityClass }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with .Values.podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if or .Values.extra.initContainers .Values.falcoctl.artifact.install.enabled }}
  initContainers:
    {{- with .Values.extra.initContainers }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- if .Values.falcoctl.artifact.install.enabled }}
    {{- include "saker.falcoctlContainer" (dict "root" . "mode" "install") | trim | nindent 4 }}
    {{- end }}
  {{- end }}
  containers:
    - name: saker
      image: {{ include "saker.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      tty: {{ .Values.tty }}
      command: ["/usr/bin/saker"]
      args:
        - run
        - -c
        - /etc/saker/saker.yaml
        {{- if and $cw.enabled (not $cw.log_stream) }}
        # One log stream per node (Kubernetes expands $(VAR) from the env below).
        - -o
        - cloudwatch_output.log_stream=$(SAKER_K8S_NODE_NAME)
        {{- end }}
        {{- range .Values.extra.args }}
        - {{ . | quote }}
        {{- end }}
      env:
        # The host's /proc and /etc are under /host (Falco's convention): Saker reads
        # $HOST_ROOT/proc and $HOST_ROOT/etc, not the pod's own.
        - name: HOST_ROOT
          value: /host
        - name: SAKER_K8S_NODE_NAME
          valueFrom:
            fieldRef:
              fieldPath: spec.nodeName
        - name: FALCO_K8S_NODE_NAME
          valueFrom:
            fieldRef:
              fieldPath: spec.nodeName
        {{- if and .Values.falcoHostnameEnv (not $userHostname) }}
        # The hostname in alerts is the node's, not the pod's (Saker reads Falco's variable).
        - name: FALCO_HOSTNAME
          valueFrom:
            fieldRef:
              fieldPath: spec.nodeName
        {{- end }}
        {{- with .Values.extra.env }}
        {{- tpl (toYaml .) $ | nindent 8 }}
        {{- end }}
      securityContext:
        {{- include "saker.containerSecurityContext" . | trim | nindent 8 }}
      {{- with .Values.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if $web.enabled }}
      ports:
        - name: web
          containerPort: {{ $port }}
          protocol: TCP
      {{- range $probe := list "startupProbe" "livenessProbe" "readinessProbe" }}
      {{- with get $.Values.healthChecks $probe }}
      {{ $probe }}:
        httpGet:
          path: {{ $web.k8s_healthz_endpoint | default "/healthz" }}
          port: {{ $port }}
          {{- if $web.ssl_enabled }}
          scheme: HTTPS
          {{- end }}
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- end }}
      {{- end }}
      volumeMounts:
        - name: proc-fs
          mountPath: /host/proc
          readOnly: true
        - name: etc-fs
          mountPath: /host/etc
          readOnly: true
        {{- if .Values.driver.modernEbpf.sysfsMount }}
        # BTF, tracefs and debugfs (submounts come along: hostPath mounts are recursive).
        - name: sys-kernel
          mountPath: {{ .Values.driver.sysfsMountPath }}
          readOnly: true
        {{- end }}
        # Container runtime sockets: each socket's directory, not the socket file, so that a
        # runtime restart (which recreates the socket inside it) does not cut Saker off.
        {{- range (include "saker.socketDirs" . | trim | splitList "\n" | compact) }}
        - name: {{ include "saker.socketDirVolume" . }}
          mountPath: /host{{ . }}
          readOnly: true
        {{- end }}
        - name: saker-config
          mountPath: /etc/saker/saker.yaml
          subPath: saker.yaml
          readOnly: true
        {{- if and $falcoctl (has "rulesfile" .Values.falcoctl.config.artifact.allowedTypes) }}
        # The rules falcoctl installs and follows, at the paths falco.rules_files names.
        - name: rulesfiles-install-dir
          mountPath: /etc/falco
        {{- end }}
        {{- if .Values.customRules }}
        - name: rules-volume
          mountPath: /etc/falco/rules.d
          readOnly: true
        {{- end }}
        {{- if include "saker.certsMounted" . }}
        - name: certs-volume
          mountPath: /etc/falco/certs
          readOnly: true
        {{- end }}
        {{- if include "saker.clientCertsMounted" . }}
        - name: client-certs-volume
          mountPath: /etc/falco/certs/client
          readOnly: true
        {{- end }}
        {{- with .Values.mounts.volumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    {{- if .Values.falcoctl.artifact.follow.enabled }}
    {{- include "saker.falcoctlContainer" (dict "root" . "mode" "follow") | trim | nindent 4 }}
    {{- end }}
  volumes:
    - name: proc-fs
      hostPath:
        path: /proc
    - name: etc-fs
      hostPath:
        path: /etc
    {{- if .Values.driver.modernEbpf.sysfsMount }}
    - name: sys-kernel
      hostPath:
        path: {{ .Values.driver.sysfsMountPath }}
    {{- end }}
    {{- range (include "saker.socketDirs" . | trim | splitList "\n" | compact) }}
    - name: {{ include "saker.socketDirVolume" . }}
      hostPath:
        path: {{ . }}
    {{- end }}
    - name: saker-config
      configMap:
        name: {{ include "saker.fullname" . }}
        items:
          - key: saker.yaml
            path: saker.yaml
    {{- if $falcoctl }}
    - name: plugins-install-dir
      emptyDir: {}
    - name: rulesfiles-install-dir
      emptyDir: {}
    - name: artifact-state-dir
      emptyDir: {}
    - name: falcoctl-config-volume
      configMap:
        name: {{ include "saker.fullname" . }}-falcoctl
        items:
          - key: falcoctl.yaml
            path: falcoctl.yaml
    {{- end }}
    {{- if .Values.customRules }}
    - name: rules-volume
      configMap:
        name: {{ include "saker.fullname" . }}-rules
    {{- end }}
    {{- if include "saker.certsMounted" . }}
    - name: certs-volume
      secret:
        secretName: {{ .Values.certs.existingSecret | default (printf "%s-certs" (include "saker.fullname" .)) }}
    {{- end }}
    {{- if include "saker.clientCertsMounted" . }}
    - name: client-certs-volume
      secret:
        secretName: {{ .Values.certs.existingClientSecret | default (printf "%s-client-certs" (include "saker.fullname" .)) }}
    {{- end }}
    {{- with .Values.mounts.volumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
