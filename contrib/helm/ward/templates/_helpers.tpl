{{/* The labels every object carries; name is the component. */}}
{{- define "ward.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/part-of: ward
app.kubernetes.io/version: {{ .root.Values.image.tag | default .root.Chart.AppVersion | quote }}
{{- end -}}

{{/* The installer image: ward's binaries, ward-deploy.sh, kubectl. */}}
{{- define "ward.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Pod settings the installer and cleanup DaemonSets share. */}}
{{- define "ward.nodePodSpec" -}}
serviceAccountName: ward-deploy
hostPID: true
# Stopping only ends the wait: nothing is undone on the host.
terminationGracePeriodSeconds: 5
{{- with .Values.installer.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.installer.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.installer.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The environment the installer and cleanup pods share: the node's name,
where the host's runtimes are, and the host process whose mount namespace
ward-deploy.sh enters to restart containerd (set only when not the
script's defaults). */}}
{{- define "ward.nodeEnv" -}}
- name: NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
{{- with .Values.installer.searchPath }}
- name: WARD_SEARCH_PATH
  value: {{ . | quote }}
{{- end }}
{{- if ne (int .Values.installer.hostProcess.pid) 1 }}
- name: WARD_HOST_PID
  value: {{ .Values.installer.hostProcess.pid | quote }}
{{- end }}
{{- with .Values.installer.hostProcess.pidFile }}
- name: WARD_HOST_PIDFILE
  value: {{ . | quote }}
{{- end }}
{{- end -}}
