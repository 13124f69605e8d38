{{/* Object names: the release name, or <release>-ensemble-operator when it does not say it. */}}
{{- define "ensemble-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels helm adds to what manifests/ has. */}}
{{- define "ensemble-operator.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The operator's pods carry app.kubernetes.io/name=ensemble-operator whatever the release is
called: the NetworkPolicies it creates let in the pods of its namespace with that label. */}}
{{- define "ensemble-operator.selectorLabels" -}}
app.kubernetes.io/name: ensemble-operator
{{- end -}}

{{- define "ensemble-operator.labels" -}}
{{ include "ensemble-operator.selectorLabels" . }}
{{ include "ensemble-operator.helmLabels" . }}
{{- end -}}

{{- define "ensemble-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The controller's rights in a namespace it acts in: manifests/cluster_role.yaml's namespaced
rules (tests/integration/test_helm_chart.py keeps them equal). */}}
{{- define "ensemble-operator.namespacedRules" -}}
- apiGroups: ["ensemble.flux-framework.org"]
  resources: ["ensembles"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["ensemble.flux-framework.org"]
  resources: ["ensembles/status"]
  verbs: ["patch"]
- apiGroups: ["flux-framework.org"]
  resources: ["miniclusters"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["services", "serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list", "watch"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}

{{/* The secure /metrics asks the API server who a scraper is and whether it may get /metrics. */}}
{{- define "ensemble-operator.reviewRules" -}}
- apiGroups: ["authentication.k8s.io"]
  resources: ["tokenreviews"]
  verbs: ["create"]
- apiGroups: ["authorization.k8s.io"]
  resources: ["subjectaccessreviews"]
  verbs: ["create"]
{{- end -}}

{{- define "ensemble-operator.subject" -}}
- kind: ServiceAccount
  name: {{ include "ensemble-operator.fullname" . }}
  namespace: {{ .Release.Namespace }}
{{- end -}}
