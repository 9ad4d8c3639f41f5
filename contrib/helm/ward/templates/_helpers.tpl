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
