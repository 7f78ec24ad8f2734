package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServiceOfferingSpec describes what a provider offers: access to resources,
// goods and service actions.
// +kubebuilder:validation:XValidation:rule="(has(self.resources) ? size(self.resources) : 0) + (has(self.goods) ? size(self.goods) : 0) + (has(self.actions) ? size(self.actions) : 0) > 0",message="an offering must offer at least one item in resources, goods or actions"
type ServiceOfferingSpec struct {
	// provider identifies the team or organisation that offers the service.
	// +required
	Provider Provider `json:"provider"`

	// description says in a sentence or two what the offering is for.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// providerNamespace is the provider's own namespace: goods sources are read
	// from it and automated service actions run in it. Immutable. Not a
	// system namespace (kube-*, openshift-*); the operator also refuses its
	// own namespace, any namespace it granted to a consumer, and every
	// namespace a cluster admin has not marked with the label
	// service.offering.dev/provider-namespace=true or named in
	// --provider-namespaces (reason ProviderNamespaceForbidden).
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="providerNamespace is immutable"
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('kube-') && !self.startsWith('openshift-')",message="providerNamespace must not be a system namespace (kube-*, openshift-*): the operator would read its Secrets and run Jobs in it"
	ProviderNamespace NamespaceName `json:"providerNamespace"`

	// resources are the access items of the offering: each grants the consumer a
	// namespace with role bindings, quota, limit range and network isolation.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Resources []ResourceItem `json:"resources,omitempty"`

	// goods are items handed over to the consumer: copies of Secrets and
	// ConfigMaps from the provider namespace that the consumer owns once accepted.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Goods []GoodsItem `json:"goods,omitempty"`

	// actions are activities the provider performs for the consumer, either
	// automated (a Job in the provider namespace) or manual (a person marks them done).
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Actions []ActionItem `json:"actions,omitempty"`
}

// Provider identifies who offers a service.
type Provider struct {
	// name is the provider's display name, for example "Platform Team".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Name string `json:"name"`

	// contact is how consumers reach the provider: an e-mail address, a chat
	// channel or a URL.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Contact string `json:"contact,omitempty"`
}

// RevocationPolicy says what happens to a granted namespace when access is revoked.
// +kubebuilder:validation:Enum=Delete;Retain
type RevocationPolicy string

const (
	// RevocationPolicyDelete deletes the namespace, and everything in it, on revocation.
	RevocationPolicyDelete RevocationPolicy = "Delete"
	// RevocationPolicyRetain keeps the namespace and its workloads for the provider;
	// only the consumer's role bindings are removed.
	RevocationPolicyRetain RevocationPolicy = "Retain"
)

// NetworkIsolation says how a granted namespace is isolated on the network.
// +kubebuilder:validation:Enum=None;Namespace
type NetworkIsolation string

const (
	// NetworkIsolationNone creates no NetworkPolicy.
	NetworkIsolationNone NetworkIsolation = "None"
	// NetworkIsolationNamespace creates a NetworkPolicy that admits ingress only
	// from pods in the same namespace.
	NetworkIsolationNamespace NetworkIsolation = "Namespace"
)

// ClusterRoleName is the name of a ClusterRole.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=253
type ClusterRoleName string

// ResourceItem is an access item: a namespace the consumer may use but never owns.
// +kubebuilder:validation:XValidation:rule="has(self.plans) == has(self.defaultPlan)",message="plans and defaultPlan go together: name the plan a request gets when it names none"
// +kubebuilder:validation:XValidation:rule="!has(self.defaultPlan) || !has(self.plans) || self.plans.exists(p, p.name == self.defaultPlan)",message="defaultPlan must name one of the item's plans"
// +kubebuilder:validation:XValidation:rule="!has(self.plans) || self.plans.all(p, !has(p.upgradesTo) || p.upgradesTo.all(u, self.plans.exists(q, q.name == u)))",message="upgradesTo must name plans of the same item"
// +kubebuilder:validation:XValidation:rule="!has(self.plans) || (!has(self.quota) && !has(self.limits))",message="an item with plans takes its quota and limits from the plans: move quota and limits into them"
// +kubebuilder:validation:XValidation:rule="!has(self.gracePeriod) || !has(self.revocationPolicy) || self.revocationPolicy == 'Delete'",message="gracePeriod applies only to revocationPolicy Delete: a retained namespace is never deleted"
type ResourceItem struct {
	// name identifies the item within the offering; requests and entitlements refer to it.
	// +required
	Name ItemName `json:"name"`

	// description says what the item gives the consumer.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// clusterRoles are bound, with one RoleBinding each, to the agreement's subjects
	// in the granted namespace. Each must exist and be grantable (see the
	// operator's --allowed-cluster-roles flag and the service.offering.dev/grantable label).
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	ClusterRoles []ClusterRoleName `json:"clusterRoles"`

	// namespace shapes the granted namespace: its labels, annotations and name.
	// +optional
	Namespace NamespaceTemplate `json:"namespace,omitempty"`

	// quota is the hard limit of the ResourceQuota created in the granted
	// namespace, for example {"requests.cpu": "4", "pods": "20"}. No quota when empty.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	Quota corev1.ResourceList `json:"quota,omitempty"`

	// limits are the entries of the LimitRange created in the granted namespace
	// (default requests and limits per container). No LimitRange when empty.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	Limits []corev1.LimitRangeItem `json:"limits,omitempty"`

	// networkIsolation is None (no NetworkPolicy) or Namespace (only pods of the
	// granted namespace may reach its pods). Defaults to Namespace.
	// +optional
	// +kubebuilder:default=Namespace
	NetworkIsolation NetworkIsolation `json:"networkIsolation,omitempty"`

	// revocationPolicy is Delete (the namespace and everything in it is deleted
	// when access ends) or Retain (only the consumer's role bindings are removed).
	// Suspending an agreement always keeps the namespace. Defaults to Delete.
	// +optional
	// +kubebuilder:default=Delete
	RevocationPolicy RevocationPolicy `json:"revocationPolicy,omitempty"`

	// gracePeriod keeps the granted namespace and its data for this long after
	// the agreement expires, for example "168h": access (the RoleBindings) is
	// revoked at once, the namespace is deleted only when the grace period has
	// passed, and renewing the agreement before then restores access to the
	// same namespace with its data. Only with revocationPolicy Delete; deleting
	// the request or the agreement deletes the namespace at once. At most "8760h".
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) <= duration('8760h')",message="gracePeriod must be at most 8760h"
	GracePeriod *metav1.Duration `json:"gracePeriod,omitempty"`

	// placement says in which member clusters of the fleet grants of the
	// item are made: named clusters, or those whose registration Secret
	// matches a selector. A request may choose one (spec.resource.cluster);
	// otherwise the operator places it in the reachable cluster holding the
	// fewest grants, then by name. Absent: grants are made in the operator's
	// own cluster (the hub).
	// +optional
	Placement *Placement `json:"placement,omitempty"`

	// plans are the tiers of the item, for example small, medium and large:
	// each brings its own quota and limits in place of the item's. A request
	// names its plan (spec.resource.plan, defaultPlan when it names none) and
	// may change it on a granted namespace: the quota and limits are changed
	// in place and access never drops. No plans: the item's quota and limits
	// apply to every request.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=6
	Plans []Plan `json:"plans,omitempty"`

	// defaultPlan is the plan of a request that names none. Required with
	// plans, and must name one of them.
	// +optional
	DefaultPlan PlanName `json:"defaultPlan,omitempty"`
}

// PlanName names a plan of a resource item.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
type PlanName string

// Plan is a tier of a resource item: the quota and limits a granted
// namespace gets under it, and optionally default service-level targets.
type Plan struct {
	// name identifies the plan within the item; requests and entitlements refer to it.
	// +required
	Name PlanName `json:"name"`

	// description says what the plan gives the consumer.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// quota is the hard limit of the ResourceQuota of a namespace granted
	// under the plan, for example {"requests.cpu": "4", "pods": "20"}. No
	// quota when empty.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	Quota corev1.ResourceList `json:"quota,omitempty"`

	// limits are the entries of the LimitRange of a namespace granted under
	// the plan (default requests and limits per container). No LimitRange
	// when empty. At most two entries (for example Container and
	// PersistentVolumeClaim), which keeps the offering's validation within
	// the API server's cost budget.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=2
	Limits []corev1.LimitRangeItem `json:"limits,omitempty"`

	// upgradesTo restricts the moves from this plan: a request granted under
	// it may change only to the plans named here (reason
	// PlanChangeNotAllowed otherwise). When empty, it may change to any plan
	// its agreement allows.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=6
	UpgradesTo []PlanName `json:"upgradesTo,omitempty"`

	// serviceLevels are the plan's default service-level targets. A request
	// under the plan is measured against its agreement's own targets where
	// the agreement sets them (spec.serviceLevels of the ServiceAgreement),
	// and against these, target by target, where it sets none. The targets a
	// request is measured against are recorded in its
	// status.serviceLevel; once the request is fulfilled they stay as
	// recorded, so a later plan change does not re-measure it.
	// +optional
	ServiceLevels *ServiceLevelTargets `json:"serviceLevels,omitempty"`
}

// NamespaceTemplate shapes a namespace granted for an access item.
// +kubebuilder:validation:XValidation:rule="!has(self.requestedNamePrefix) || (has(self.allowRequestedName) && self.allowRequestedName)",message="requestedNamePrefix applies to requested names: set allowRequestedName: true with it"
type NamespaceTemplate struct {
	// labels are added to the granted namespace.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('service.offering.dev/') && k != 'app.kubernetes.io/managed-by')",message="labels must not use the operator's own keys (service.offering.dev/*, app.kubernetes.io/managed-by)"
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.startsWith('app.kubernetes.io/') || !k.matches('^([^/]*[.])?(kubernetes[.]io|k8s[.]io)/'))",message="labels must not use the prefixes Kubernetes reserves (kubernetes.io/, k8s.io/ and their subdomains such as pod-security.kubernetes.io/; app.kubernetes.io/ is allowed): they set Pod Security levels or identities that policies trust"
	Labels map[string]string `json:"labels,omitempty"`

	// annotations are added to the granted namespace.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('service.offering.dev/') && (k.startsWith('app.kubernetes.io/') || !k.matches('^([^/]*[.])?(kubernetes[.]io|k8s[.]io)/')))",message="annotations must not use the operator's own prefix (service.offering.dev/) or the prefixes Kubernetes reserves (kubernetes.io/, k8s.io/ and their subdomains; app.kubernetes.io/ is allowed)"
	Annotations map[string]string `json:"annotations,omitempty"`

	// allowRequestedName lets a request choose the namespace name
	// (spec.resource.namespaceName), within the consumer's space: the name
	// must start with the request's namespace and "-" (or with
	// requestedNamePrefix, the request's namespace and "-"). Otherwise the
	// name is derived from the request's namespace and name.
	// +optional
	AllowRequestedName bool `json:"allowRequestedName,omitempty"`

	// requestedNamePrefix puts requested names in a space of their own: a
	// requested name must start with this prefix, the request's namespace and
	// "-" (sandbox-team-a-dev for the prefix sandbox- and a request in
	// team-a). The consumer's namespace stays in the name, so that no
	// consumer claims a name another consumer asks for; the prefix keeps
	// requested names apart from tenants' and providers' own namespaces,
	// which the cluster admin names outside it.
	// +optional
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=30
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9][-a-z0-9]*-$') && !self.startsWith('kube-') && !self.startsWith('openshift-')",message="requestedNamePrefix must be lower-case letters, digits and '-', start with a letter or digit and end with '-' (such as sandbox-), and not be kube- or openshift-"
	RequestedNamePrefix string `json:"requestedNamePrefix,omitempty"`
}

// GoodsSourceKind is the kind of object that can be handed over as goods.
// +kubebuilder:validation:Enum=Secret;ConfigMap
type GoodsSourceKind string

const (
	// GoodsSourceSecret copies a Secret.
	GoodsSourceSecret GoodsSourceKind = "Secret"
	// GoodsSourceConfigMap copies a ConfigMap.
	GoodsSourceConfigMap GoodsSourceKind = "ConfigMap"
)

// GoodsSource is one object in the provider namespace that is copied to the consumer.
type GoodsSource struct {
	// kind is Secret or ConfigMap.
	// +required
	Kind GoodsSourceKind `json:"kind"`

	// name is the name of the source object in the provider namespace.
	// +required
	Name ObjectName `json:"name"`
}

// AcceptancePolicy says whether the consumer must accept delivered goods.
// +kubebuilder:validation:Enum=Required;Implicit
type AcceptancePolicy string

const (
	// AcceptanceRequired waits for the consumer to accept or reject the goods.
	AcceptanceRequired AcceptancePolicy = "Required"
	// AcceptanceImplicit treats delivery as acceptance.
	AcceptanceImplicit AcceptancePolicy = "Implicit"
)

// DeadlinePolicy says what happens to delivered goods the consumer has not
// accepted or rejected by the acceptance deadline.
// +kubebuilder:validation:Enum=Accept;Return
type DeadlinePolicy string

const (
	// DeadlineAccept treats the goods as accepted: the consumer owns them.
	DeadlineAccept DeadlinePolicy = "Accept"
	// DeadlineReturn treats the goods as returned: the copies are removed and
	// the entitlement is given back.
	DeadlineReturn DeadlinePolicy = "Return"
)

// GoodsItem is an item handed over to the consumer.
type GoodsItem struct {
	// name identifies the item within the offering; requests and entitlements refer to it.
	// +required
	Name ItemName `json:"name"`

	// description says what the goods are.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// sources are the objects in the provider namespace copied into the consumer's namespace.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Sources []GoodsSource `json:"sources"`

	// acceptance is Required (the consumer accepts or rejects the delivery) or
	// Implicit (delivery is acceptance). Defaults to Required.
	// +optional
	// +kubebuilder:default=Required
	Acceptance AcceptancePolicy `json:"acceptance,omitempty"`

	// acceptanceDeadline is how long, from delivery, the consumer has to accept
	// or reject the goods, for example "72h". When it has passed without a
	// decision, deadlinePolicy applies. No deadline when unset; ignored when
	// acceptance is Implicit.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) <= duration('87600h')",message="must be at most 87600h (10 years)"
	AcceptanceDeadline *metav1.Duration `json:"acceptanceDeadline,omitempty"`

	// deadlinePolicy is what happens at the acceptance deadline: Return (the
	// copies are removed and the entitlement is given back) or Accept (the
	// consumer owns the goods from then on). Defaults to Return, because
	// silence is not consent: accepting hands over ownership and responsibility
	// (for example, for rotating delivered credentials) for good and cannot be
	// undone, while a return can be repaired by requesting the goods again.
	// +optional
	// +kubebuilder:default=Return
	DeadlinePolicy DeadlinePolicy `json:"deadlinePolicy,omitempty"`
}

// ActionType says who performs a service action.
// +kubebuilder:validation:Enum=Automated;Manual
type ActionType string

const (
	// ActionAutomated runs a Job in the provider namespace.
	ActionAutomated ActionType = "Automated"
	// ActionManual waits for a provider to mark the action completed or failed.
	ActionManual ActionType = "Manual"
)

// ParameterName names a parameter of a service action. It is passed to the
// Job as an environment variable of the same name.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Z][A-Z0-9_]*$')",message="must be upper-case letters, digits and '_', starting with a letter (it becomes an environment variable)"
type ParameterName string

// ActionParameterSpec declares a parameter that requests may pass to an action.
type ActionParameterSpec struct {
	// name of the parameter; the Job receives it as an environment variable.
	// +required
	Name ParameterName `json:"name"`

	// description says what the parameter means.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Description string `json:"description,omitempty"`

	// required parameters must be given by every request.
	// +optional
	Required bool `json:"required,omitempty"`

	// secret parameters are passed by reference to a Secret in the consumer's
	// namespace and never appear in status, events or logs.
	// +optional
	Secret bool `json:"secret,omitempty"`
}

// ActionJob is the Job that performs an automated action.
type ActionJob struct {
	// image is the container image the Job runs.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image"`

	// command overrides the image's entrypoint. Parameters reach the Job only
	// as environment variables: read them there ("$NAME" in a shell script);
	// an offering that references a parameter as $(NAME) in command or args
	// is not Ready (UnsafeParameterExpansion).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=4096
	Command []string `json:"command,omitempty"`

	// args are the arguments to the entrypoint. As in command, a parameter
	// may not be referenced as $(NAME): read it from the environment.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=4096
	Args []string `json:"args,omitempty"`

	// serviceAccountName is the service account in the provider namespace the
	// Job runs as (default: "default"). A cluster admin must allow it: listed
	// in the namespace's service.offering.dev/action-service-accounts
	// annotation or in --action-service-accounts; otherwise the offering is
	// not Ready (ActionServiceAccountForbidden).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// resources are the compute resources of the Job's container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// backoffLimit is the number of retries before the action fails. Defaults to 2.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	BackoffLimit *int32 `json:"backoffLimit,omitempty"`

	// timeout fails the action when the Job has run longer, for example "30m".
	// Defaults to 1h.
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) <= duration('87600h')",message="must be at most 87600h (10 years)"
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// podAnnotations are added to the Job's pods, for example
	// sidecar.istio.io/inject: "false", so that a mesh's sidecar does not keep
	// the Job from finishing. On the simulated nodes of the local cluster
	// (hack/local-cluster.sh), kwok.offering.dev/exit-code and
	// kwok.offering.dev/run-time say how the pod ends.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('service.offering.dev/'))",message="podAnnotations must not use the operator's own keys (service.offering.dev/*)"
	PodAnnotations map[string]string `json:"podAnnotations,omitempty"`
}

// ActionItem is a service action the provider performs for the consumer.
// +kubebuilder:validation:XValidation:rule="self.type == 'Automated' ? has(self.job) : !has(self.job)",message="an Automated action needs a job; a Manual action must not have one"
type ActionItem struct {
	// name identifies the item within the offering; requests and entitlements refer to it.
	// +required
	Name ItemName `json:"name"`

	// description says what the action does.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// type is Automated (a Job runs it) or Manual (a provider marks it done).
	// +required
	Type ActionType `json:"type"`

	// parameters declares what requests may pass; unknown parameters are refused.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Parameters []ActionParameterSpec `json:"parameters,omitempty"`

	// job is the Job template of an Automated action.
	// +optional
	Job *ActionJob `json:"job,omitempty"`
}

// ServiceOfferingStatus is the observed state of a ServiceOffering.
type ServiceOfferingStatus struct {
	// observedGeneration is the generation of the spec last reconciled successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions hold Ready, True when every referenced ClusterRole exists and
	// is grantable and every goods source exists in the provider namespace.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// agreements is the number of ServiceAgreements that name this offering.
	// +optional
	Agreements int32 `json:"agreements,omitempty"`

	// activeConsumers is the number of those agreements that are Active.
	// +optional
	ActiveConsumers int32 `json:"activeConsumers,omitempty"`

	// openRequests is the number of requests under this offering that have not
	// reached a final phase.
	// +optional
	OpenRequests int32 `json:"openRequests,omitempty"`

	// latestRevision is the number of the ServiceOfferingRevision that holds
	// the current spec; agreements with revisionPolicy Latest follow it.
	// +optional
	// +kubebuilder:validation:Minimum=1
	LatestRevision int32 `json:"latestRevision,omitempty"`

	// revisions counts the agreements on each revision in use, by revision
	// number; the lowest numbers are left out past the maximum.
	// +optional
	// +listType=map
	// +listMapKey=revision
	// +kubebuilder:validation:MaxItems=32
	Revisions []RevisionUsage `json:"revisions,omitempty"`

	// serviceLevels rolls up the service levels of the offering's agreements
	// that set targets; absent when none does.
	// +optional
	ServiceLevels *OfferingServiceLevels `json:"serviceLevels,omitempty"`
}

// OfferingServiceLevels sums the service-level records of an offering's agreements.
type OfferingServiceLevels struct {
	// agreements is the number of agreements that set service-level targets.
	// +optional
	Agreements int32 `json:"agreements,omitempty"`

	// agreementsMissingObjective is the number of those whose ServiceLevelsMet is False.
	// +optional
	AgreementsMissingObjective int32 `json:"agreementsMissingObjective,omitempty"`

	ServiceLevelCounts `json:",inline"`

	// compliance is withinTarget / measured across all agreements, as a
	// percentage rounded down to two decimals; absent when nothing was measured.
	// +optional
	// +kubebuilder:validation:MaxLength=8
	Compliance string `json:"compliance,omitempty"`

	// atRisk is the number of open requests at risk across the agreements.
	// +optional
	AtRisk int32 `json:"atRisk,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=svcoffering;sof,categories=offering
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider.name`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Agreements",type=integer,JSONPath=`.status.agreements`
// +kubebuilder:printcolumn:name="Consumers",type=integer,JSONPath=`.status.activeConsumers`
// +kubebuilder:printcolumn:name="Open",type=integer,JSONPath=`.status.openRequests`
// +kubebuilder:printcolumn:name="Compliance",type=string,JSONPath=`.status.serviceLevels.compliance`
// +kubebuilder:printcolumn:name="Revision",type=integer,JSONPath=`.status.latestRevision`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Reason",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Provider-NS",type=string,priority=1,JSONPath=`.spec.providerNamespace`
// +kubebuilder:printcolumn:name="Missing-SLO",type=integer,priority=1,JSONPath=`.status.serviceLevels.agreementsMissingObjective`

// ServiceOffering is a provider's catalogue entry: the access to resources,
// goods and service actions it offers to consumers under agreements.
type ServiceOffering struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the provider offers.
	// +required
	Spec ServiceOfferingSpec `json:"spec"`

	// status is the observed state of the offering.
	// +optional
	Status ServiceOfferingStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ServiceOfferingList is a list of ServiceOfferings.
type ServiceOfferingList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceOffering `json:"items"`
}
