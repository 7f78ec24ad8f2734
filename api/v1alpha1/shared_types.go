package v1alpha1

// ItemName names one item (a resource, goods or action) of a ServiceOffering.
// It follows the DNS label rules so that it can be used in object names.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit"
type ItemName string

// OfferingName is the name of a cluster-scoped ServiceOffering.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="must be a DNS subdomain: lower-case letters, digits, '-' and '.'"
type OfferingName string

// AgreementName is the name of a ServiceAgreement in the same namespace.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="must be a DNS subdomain: lower-case letters, digits, '-' and '.'"
type AgreementName string

// NamespaceName is the name of a namespace (a DNS label).
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit"
type NamespaceName string

// ObjectName is the name of a namespaced Kubernetes object (a DNS subdomain).
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="must be a DNS subdomain: lower-case letters, digits, '-' and '.'"
type ObjectName string

// ItemKind is one of the three kinds of item an offering is made of.
// +kubebuilder:validation:Enum=Resource;Goods;Action
type ItemKind string

const (
	// ItemKindResource is access to a provider-owned resource (a namespace with
	// role bindings, quota, limit range and network isolation).
	ItemKindResource ItemKind = "Resource"
	// ItemKindGoods is a set of objects handed over to the consumer, who then owns them.
	ItemKindGoods ItemKind = "Goods"
	// ItemKindAction is an activity the provider performs for the consumer.
	ItemKindAction ItemKind = "Action"
)

// Labels and annotations the operator puts on what it creates.
const (
	// LabelManagedBy marks every object the operator manages. Its value is ManagedByValue.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy on the operator's objects.
	ManagedByValue = "offering-operator"
	// LabelRequestNamespace names the namespace of the ConsumptionRequest an object was created for.
	LabelRequestNamespace = "service.offering.dev/request-namespace"
	// LabelRequestName names the ConsumptionRequest an object was created for.
	LabelRequestName = "service.offering.dev/request-name"
	// LabelRequestUID holds the UID of the ConsumptionRequest an object was created for.
	LabelRequestUID = "service.offering.dev/request-uid"
	// LabelOffering names the ServiceOffering an object was created under.
	LabelOffering = "service.offering.dev/offering"
	// LabelItem names the offering item an object was created for.
	LabelItem = "service.offering.dev/item"
	// LabelClaim marks a Lease that holds one grant of a limited resource
	// entitlement; its value identifies the agreement and item.
	LabelClaim = "service.offering.dev/claim"
	// LabelAgreementUID holds the UID of the ServiceAgreement a grant slot is held under.
	LabelAgreementUID = "service.offering.dev/agreement-uid"
	// LabelGrantable, set to "true" on a ClusterRole, allows offerings to grant it,
	// unless it holds dangerous permissions (escalate, bind, impersonate, wildcards).
	LabelGrantable = "service.offering.dev/grantable"
	// LabelProviderNamespace, set to "true" on a namespace by a cluster admin,
	// lets offerings name it as their providerNamespace: goods are read and
	// action Jobs run there. Without it (or the --provider-namespaces flag)
	// no namespace serves as one.
	LabelProviderNamespace = "service.offering.dev/provider-namespace"
	// AnnotationActionServiceAccounts, set on a provider namespace by a cluster
	// admin, lists (comma-separated) the ServiceAccounts of that namespace that
	// action Jobs may run as; "default" is allowed only when listed.
	AnnotationActionServiceAccounts = "service.offering.dev/action-service-accounts"
	// AnnotationAgreement names the ServiceAgreement (namespace/name) an object was created under.
	AnnotationAgreement = "service.offering.dev/agreement"
	// AnnotationGrantMarker, on a namespace the operator created for a grant,
	// proves that the operator created it: a keyed hash of the request's UID and
	// the namespace's name that only the operator can compute. A namespace that
	// has the operator's labels but not this marker is never adopted.
	AnnotationGrantMarker = "service.offering.dev/grant-marker"
	// AnnotationSource names the source (namespace/name) a goods copy was made from.
	AnnotationSource = "service.offering.dev/source"
	// AnnotationSourceResourceVersion is the resourceVersion of the source a goods copy was made from.
	AnnotationSourceResourceVersion = "service.offering.dev/source-resource-version"
	// AnnotationRequest names the ConsumptionRequest (namespace/name) a goods copy was delivered for.
	AnnotationRequest = "service.offering.dev/request"
	// AnnotationAcceptedFrom, on a goods copy the operator let go of, holds the
	// UID of the ConsumptionRequest whose goods were accepted.
	AnnotationAcceptedFrom = "service.offering.dev/accepted-from"

	// Finalizer is the finalizer the operator puts on agreements and requests so that
	// everything granted under them is revoked before they go away.
	Finalizer = "service.offering.dev/finalizer"
)
