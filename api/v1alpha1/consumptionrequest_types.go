package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ResourceRequest asks for access to a resource item.
// +kubebuilder:validation:XValidation:rule="has(self.cluster) == has(oldSelf.cluster) && (!has(self.cluster) || self.cluster == oldSelf.cluster)",message="spec.resource.cluster is immutable; create a new request"
type ResourceRequest struct {
	// name of the access item in the offering's spec.resources.
	// +required
	Name ItemName `json:"name"`

	// namespaceName asks for a specific name for the granted namespace. Only
	// honoured when the item allows it (namespace.allowRequestedName), and
	// only for a name that starts with the request's namespace and "-"
	// (team-a-dev for a request in team-a); otherwise the request is denied.
	// Names of existing namespaces and reserved names (default, kube-*) are
	// refused.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self != 'default' && !self.startsWith('kube-') && !self.startsWith('openshift-')",message="namespaceName must not be 'default' or start with 'kube-' or 'openshift-'"
	NamespaceName NamespaceName `json:"namespaceName,omitempty"`

	// cluster chooses the member cluster the grant is made in, among those
	// the item's placement allows; otherwise the request is not granted and
	// Ready says why (ClusterNotAllowed). Omitted: the operator chooses
	// (status.cluster). Immutable.
	// +optional
	Cluster ClusterName `json:"cluster,omitempty"`

	// plan is the plan of the item to be granted (the item's defaultPlan
	// when omitted); only for items with plans. The one field of
	// spec.resource that may change: changing it on a granted request
	// resizes the namespace in place (quota and limits) without revoking
	// anything, once the agreement allows the plan, the current plan's
	// upgradesTo allows the move and the namespace's usage fits the new
	// quota. Until then the request keeps its current plan and Ready says why
	// (PlanNotAllowed, PlanChangeNotAllowed, DowngradeBlocked).
	// +optional
	Plan PlanName `json:"plan,omitempty"`
}

// GoodsDecision is the consumer's decision on delivered goods.
// +kubebuilder:validation:Enum=Accept;Reject
type GoodsDecision string

const (
	// GoodsAccept takes ownership of the delivered copies.
	GoodsAccept GoodsDecision = "Accept"
	// GoodsReject returns the delivery: the copies are removed.
	GoodsReject GoodsDecision = "Reject"
)

// GoodsRequest asks for goods.
type GoodsRequest struct {
	// name of the goods item in the offering's spec.goods.
	// +required
	Name ItemName `json:"name"`

	// quantity of the goods, counted against the agreement's maxQuantity. Defaults to 1.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Quantity int32 `json:"quantity,omitempty"`

	// decision is the consumer's answer once the goods are delivered: Accept
	// or Reject. It cannot be changed once given.
	// +optional
	Decision GoodsDecision `json:"decision,omitempty"`
}

// ParameterValue is a value passed to a service action.
type ParameterValue struct {
	// name of the parameter, as the action declares it.
	// +required
	Name ParameterName `json:"name"`

	// value of the parameter.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Value string `json:"value,omitempty"`
}

// SecretKeySelector points at a key of a Secret in the request's namespace.
type SecretKeySelector struct {
	// name of the Secret in the request's namespace.
	// +required
	Name ObjectName `json:"name"`

	// key in the Secret's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// SecretParameterValue passes a secret parameter by reference.
type SecretParameterValue struct {
	// name of the parameter, as the action declares it (it must be declared secret).
	// +required
	Name ParameterName `json:"name"`

	// secretKeyRef is the Secret key holding the value.
	// +required
	SecretKeyRef SecretKeySelector `json:"secretKeyRef"`
}

// ActionRequest asks for a service action.
type ActionRequest struct {
	// name of the action in the offering's spec.actions.
	// +required
	Name ItemName `json:"name"`

	// parameters are passed to the action; each must be declared by it.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Parameters []ParameterValue `json:"parameters,omitempty"`

	// secretParameters are passed to the action from Secrets in the request's namespace.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	SecretParameters []SecretParameterValue `json:"secretParameters,omitempty"`
}

// ConsumptionRequestSpec names an agreement and exactly one item.
// +kubebuilder:validation:XValidation:rule="[has(self.resource), has(self.goods), has(self.action)].filter(x, x).size() == 1",message="exactly one of resource, goods or action must be set"
// +kubebuilder:validation:XValidation:rule="has(self.resource) == has(oldSelf.resource) && has(self.goods) == has(oldSelf.goods) && has(self.action) == has(oldSelf.action)",message="the kind of item requested is immutable"
// +kubebuilder:validation:XValidation:rule="!has(self.resource) || !has(oldSelf.resource) || (self.resource.name == oldSelf.resource.name && has(self.resource.namespaceName) == has(oldSelf.resource.namespaceName) && (!has(self.resource.namespaceName) || self.resource.namespaceName == oldSelf.resource.namespaceName))",message="spec.resource is immutable except for plan; create a new request"
// +kubebuilder:validation:XValidation:rule="!has(self.action) || !has(oldSelf.action) || self.action == oldSelf.action",message="spec.action is immutable; create a new request"
// +kubebuilder:validation:XValidation:rule="!has(self.goods) || !has(oldSelf.goods) || (self.goods.name == oldSelf.goods.name && self.goods.quantity == oldSelf.goods.quantity)",message="the goods item and quantity are immutable; create a new request"
// +kubebuilder:validation:XValidation:rule="!has(self.goods) || !has(oldSelf.goods) || !has(oldSelf.goods.decision) || (has(self.goods.decision) && self.goods.decision == oldSelf.goods.decision)",message="spec.goods.decision cannot be changed once given"
// +kubebuilder:validation:XValidation:rule="has(self.creator) == has(oldSelf.creator) && (!has(self.creator) || self.creator == oldSelf.creator)",message="spec.creator is stamped by admission when the request is created and cannot be changed"
type ConsumptionRequestSpec struct {
	// agreement is the name of the ServiceAgreement, in this namespace, the
	// request is made under. Immutable.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="agreement is immutable; create a new request"
	Agreement AgreementName `json:"agreement"`

	// resource asks for access to a resource item.
	// +optional
	Resource *ResourceRequest `json:"resource,omitempty"`

	// goods asks for goods.
	// +optional
	Goods *GoodsRequest `json:"goods,omitempty"`

	// action asks for a service action.
	// +optional
	Action *ActionRequest `json:"action,omitempty"`

	// creator is who created the request, as the API server authenticated
	// them. It is stamped at creation by the admission policy
	// offering-operator-request-creator (config/admission), whatever the
	// client sent, and is immutable. The operator reads Secrets named in
	// action.secretParameters only where the creator may read them.
	// +optional
	Creator *UserInfo `json:"creator,omitempty"`
}

// UserInfo is an identity as the API server authenticated it: stamped by
// admission from the request's userInfo, never typed by a person.
type UserInfo struct {
	// username is the authenticated user name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Username string `json:"username"`

	// uid is the authenticated user's UID, when the authenticator gives one.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	UID string `json:"uid,omitempty"`

	// groups are the groups the user belongs to.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=1024
	Groups []string `json:"groups,omitempty"`

	// extra is the authenticator's additional information about the user.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +mapType=atomic
	//nolint:kubeapilinter // nomaps: the shape of authentication.k8s.io UserInfo.extra, copied as the API server gives it.
	Extra map[string]ExtraValue `json:"extra,omitempty"`
}

// ExtraValue is one entry of UserInfo.extra.
// +listType=atomic
// +kubebuilder:validation:MaxItems=32
// +kubebuilder:validation:items:MaxLength=1024
type ExtraValue []string

// RequestDecisionType is the decision a person made on a request: the type
// of the condition they set True.
// +kubebuilder:validation:Enum=Approved;Denied
type RequestDecisionType string

const (
	// DecisionApproved: the request was approved.
	DecisionApproved RequestDecisionType = "Approved"
	// DecisionDenied: the request was denied.
	DecisionDenied RequestDecisionType = "Denied"
)

// RequestDecision records who approved or denied a request.
type RequestDecision struct {
	// type is the decision: Approved or Denied.
	// +required
	Type RequestDecisionType `json:"type"`

	// by is who wrote the decision condition, as the API server authenticated
	// them: a person for a manual decision, the operator's own identity for
	// automatic approval and refusals at admission.
	// +required
	By UserInfo `json:"by"`

	// agreementUID is the UID of the ServiceAgreement the decision was made
	// under, recorded by the operator when it first acts on it. An approval
	// holds only under that agreement: one deleted and created again under
	// the same name has another UID and needs a decision of its own.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	AgreementUID string `json:"agreementUID,omitempty"`

	// approvalPolicy is the agreement's approval policy when the decision
	// was made. An automatic approval no longer holds once the agreement
	// requires a person's (Manual).
	// +optional
	ApprovalPolicy ApprovalPolicy `json:"approvalPolicy,omitempty"`

	// plan is the plan of a resource item the approval covers, recorded by
	// the operator. Under a Manual agreement a change of spec.resource.plan
	// to another plan asks a provider again: Approved turns False (reason
	// AwaitingApproval) while the current grant is kept, and a new
	// Approved=True covers the new plan.
	// +optional
	Plan PlanName `json:"plan,omitempty"`
}

// RequestPhase is where a request is in its lifecycle.
// +kubebuilder:validation:Enum=Pending;AwaitingApproval;Provisioning;Fulfilled;Delivered;Accepted;Rejected;Denied;Failed;Revoked
type RequestPhase string

const (
	// RequestPending: waiting for admission (the agreement is missing, not Active yet, or suspended).
	RequestPending RequestPhase = "Pending"
	// RequestAwaitingApproval: admitted; a provider must approve or deny it.
	RequestAwaitingApproval RequestPhase = "AwaitingApproval"
	// RequestProvisioning: approved; the grant, delivery or action is in progress.
	RequestProvisioning RequestPhase = "Provisioning"
	// RequestFulfilled: access is granted, or the action completed.
	RequestFulfilled RequestPhase = "Fulfilled"
	// RequestDelivered: goods were delivered and wait for the consumer's decision.
	RequestDelivered RequestPhase = "Delivered"
	// RequestAccepted: the consumer accepted the goods and now owns them.
	RequestAccepted RequestPhase = "Accepted"
	// RequestRejected: the consumer rejected the goods; they were removed.
	RequestRejected RequestPhase = "Rejected"
	// RequestDenied: refused at admission or by a provider. Final.
	RequestDenied RequestPhase = "Denied"
	// RequestFailed: could not be fulfilled. Final.
	RequestFailed RequestPhase = "Failed"
	// RequestRevoked: access was revoked because the agreement was suspended or ended.
	RequestRevoked RequestPhase = "Revoked"
)

// AccessGrant records what was granted for a resource request.
type AccessGrant struct {
	// namespace is the granted namespace.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`

	// roleBindings are the RoleBindings created in the granted namespace.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=253
	RoleBindings []string `json:"roleBindings,omitempty"`

	// resourceQuota is the ResourceQuota created in the granted namespace.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ResourceQuota string `json:"resourceQuota,omitempty"`

	// limitRange is the LimitRange created in the granted namespace.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	LimitRange string `json:"limitRange,omitempty"`

	// networkPolicy is the NetworkPolicy created in the granted namespace.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	NetworkPolicy string `json:"networkPolicy,omitempty"`

	// retainedUntil is when the granted namespace is deleted: after the
	// agreement expired, access is revoked but the namespace and its data are
	// kept until then (the item's gracePeriod), unless the agreement is
	// renewed first. Absent while access is held.
	// +optional
	RetainedUntil *metav1.Time `json:"retainedUntil,omitempty"`

	// plan is the plan the namespace is granted under: its quota and limits
	// are in place. It differs from spec.resource.plan while a plan change
	// waits (Ready says why). Absent for items without plans.
	// +optional
	Plan PlanName `json:"plan,omitempty"`
}

// DeliveredObject is a copy of a goods source delivered into the consumer's namespace.
type DeliveredObject struct {
	// kind is Secret or ConfigMap.
	// +required
	Kind GoodsSourceKind `json:"kind"`

	// name of the copy.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// namespace of the copy: always the request's namespace.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`
}

// ActionRun records the run of a service action.
type ActionRun struct {
	// type is Automated (a Job runs the action) or Manual (a provider performs
	// it and marks the condition Fulfilled through the status subresource).
	// +optional
	Type ActionType `json:"type,omitempty"`

	// job is the Job running an automated action, as "<namespace>/<name>", in
	// the offering's provider namespace. A finished Job is removed one hour
	// after it finished (ttlSecondsAfterFinished); this record stays.
	// +optional
	// +kubebuilder:validation:MaxLength=317
	Job string `json:"job,omitempty"`

	// startedAt is when the action started: the Job was created, or the
	// manual action was handed to the provider.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`

	// completedAt is when the action completed or failed.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`

	// attempts is the number of Pods the Job has run or is running (failed,
	// succeeded and active).
	// +optional
	// +kubebuilder:validation:Minimum=0
	Attempts int32 `json:"attempts,omitempty"`

	// message is the outcome of the action, from the Job's condition or the
	// provider's Fulfilled condition.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// ConsumptionRequestStatus is the observed state of a ConsumptionRequest.
type ConsumptionRequestStatus struct {
	// observedGeneration is the generation of the spec last reconciled successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase summarises where the request is; see the conditions for details.
	// +optional
	Phase RequestPhase `json:"phase,omitempty"`

	// item names what is requested, as "<kind>/<name>", for example "Resource/rack-space".
	// +optional
	// +kubebuilder:validation:MaxLength=80
	Item string `json:"item,omitempty"`

	// offering is the offering the agreement is for.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Offering string `json:"offering,omitempty"`

	// offeringRevision is the number of the offering's revision the request
	// is fulfilled under: its agreement's pinned revision, or the offering's
	// latest. Absent until the request is fulfilled.
	// +optional
	// +kubebuilder:validation:Minimum=1
	OfferingRevision int32 `json:"offeringRevision,omitempty"`

	// conditions are Approved or Denied (a decision: by the operator for automatic
	// approval and admission, by a provider for manual approval), Fulfilled,
	// AccessVerified (resources), Transferred and Accepted (goods), Ready (True
	// when the request holds what it asked for; for goods that wait for the
	// consumer's decision, Ready is False with reason AwaitingAcceptance),
	// WithinServiceLevel (the request meets its agreement's targets; absent
	// when there are none). On a
	// manual action, Fulfilled is written by a provider, never by the operator.
	// ---
	// The rule comparing lastTransitionTime with itself is deliberate, not a
	// mistake: evaluating it makes the API server parse each time as a CEL
	// timestamp, which refuses date-times the schema's looser format admits
	// but Go's RFC 3339 parser does not. Approvers write conditions through
	// the status subresource; such a time, once stored, would break every
	// list of requests in the operator (TestConditionTimesMustParse).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(c, c.lastTransitionTime == c.lastTransitionTime)",message="lastTransitionTime must be an RFC 3339 date-time such as 2026-01-01T00:00:00Z"
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// cluster is the member cluster the grant is placed in; absent for
	// grants in the operator's own cluster. Recorded before anything is
	// made there, and kept until the request is gone.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Cluster string `json:"cluster,omitempty"`

	// grant is what was granted for a resource request.
	// +optional
	Grant *AccessGrant `json:"grant,omitempty"`

	// delivered are the copies of goods delivered into the request's namespace.
	// It stays after acceptance, as the record of what the consumer now owns.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Delivered []DeliveredObject `json:"delivered,omitempty"`

	// action records the run of a service action: its Job, start and
	// completion times, attempts and outcome. It stays after the Job is gone.
	// +optional
	Action *ActionRun `json:"action,omitempty"`

	// transferredAt is when the goods were delivered.
	// +optional
	TransferredAt *metav1.Time `json:"transferredAt,omitempty"`

	// acceptBy is the acceptance deadline of delivered goods: the offering's
	// deadlinePolicy applies if the consumer has not decided by then.
	// +optional
	AcceptBy *metav1.Time `json:"acceptBy,omitempty"`

	// acceptedAt is when the goods were accepted and the operator let go of them.
	// +optional
	AcceptedAt *metav1.Time `json:"acceptedAt,omitempty"`

	// admittedAt is when the request passed admission: the agreement was
	// Active, included the item and had entitlement left, which the request
	// now holds until it is released.
	// +optional
	AdmittedAt *metav1.Time `json:"admittedAt,omitempty"`

	// approvedAt is when the request was approved.
	// +optional
	ApprovedAt *metav1.Time `json:"approvedAt,omitempty"`

	// fulfilledAt is when the request was first fulfilled.
	// +optional
	FulfilledAt *metav1.Time `json:"fulfilledAt,omitempty"`

	// fulfilmentDuration is the time from creation to fulfilment.
	// +optional
	FulfilmentDuration *metav1.Duration `json:"fulfilmentDuration,omitempty"`

	// serviceLevel is how the request measures against its agreement's
	// targets; absent when the agreement sets none or the request is not
	// measured (refused at admission, or failed on its own input).
	// +optional
	ServiceLevel *RequestServiceLevel `json:"serviceLevel,omitempty"`

	// decision is who approved or denied the request: stamped by the
	// admission policy offering-operator-request-decider (config/admission)
	// from the identity that wrote the Approved or Denied condition, never
	// typed by the decider. Only admission and the operator write it.
	// +optional
	Decision *RequestDecision `json:"decision,omitempty"`
}

// RequestServiceLevel is a request measured against its targets: its
// agreement's own, and its plan's defaults where the agreement sets none.
// The targets follow the agreement and the requested plan until the request
// is fulfilled or ends, and stay as recorded then.
type RequestServiceLevel struct {
	// approvalTarget is the approvalTime the request is measured against:
	// the agreement's, or its plan's default when the agreement sets none.
	// +optional
	// +kubebuilder:validation:Type=string
	ApprovalTarget *metav1.Duration `json:"approvalTarget,omitempty"`

	// fulfilmentTarget is the fulfilmentTime the request is measured
	// against: the agreement's, or its plan's default when the agreement sets none.
	// +optional
	// +kubebuilder:validation:Type=string
	FulfilmentTarget *metav1.Duration `json:"fulfilmentTarget,omitempty"`

	// plan names the plan whose default targets (the offering's
	// spec.resources[].plans[].serviceLevels) the request is measured
	// against where its agreement sets none; absent when every target is the
	// agreement's own.
	// +optional
	Plan PlanName `json:"plan,omitempty"`

	// approvalDuration is the time from creation to the approval decision.
	// +optional
	// +kubebuilder:validation:Type=string
	ApprovalDuration *metav1.Duration `json:"approvalDuration,omitempty"`

	// breached lists the targets the request missed. A breach is final.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=2
	Breached []ServiceLevelTarget `json:"breached,omitempty"`

	// breachedAt is when the first target was missed.
	// +optional
	BreachedAt *metav1.Time `json:"breachedAt,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=consumption;creq,categories=offering
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63",message="the name of a ConsumptionRequest must be at most 63 characters"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.status) || !has(oldSelf.status.conditions) || !oldSelf.status.conditions.exists(c, c.type == 'Denied' && c.status == 'True') || (has(self.status) && has(self.status.conditions) && self.status.conditions.exists(c, c.type == 'Denied' && c.status == 'True') && (!self.status.conditions.exists(c, c.type == 'Approved' && c.status == 'True') || oldSelf.status.conditions.exists(c, c.type == 'Approved' && c.status == 'True')))",message="a denial is final: once Denied is True it stays True and the request cannot be approved; create a new request"
// +kubebuilder:printcolumn:name="Agreement",type=string,JSONPath=`.spec.agreement`
// +kubebuilder:printcolumn:name="Item",type=string,JSONPath=`.status.item`
// +kubebuilder:printcolumn:name="Plan",type=string,JSONPath=`.status.grant.plan`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Revision",type=integer,priority=1,JSONPath=`.status.offeringRevision`
// +kubebuilder:printcolumn:name="Cluster",type=string,priority=1,JSONPath=`.status.cluster`
// +kubebuilder:printcolumn:name="Namespace-Granted",type=string,priority=1,JSONPath=`.status.grant.namespace`
// +kubebuilder:printcolumn:name="Retained-Until",type=string,priority=1,JSONPath=`.status.grant.retainedUntil`
// +kubebuilder:printcolumn:name="Reason",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Fulfilment",type=string,priority=1,JSONPath=`.status.fulfilmentDuration`
// +kubebuilder:printcolumn:name="In-SLO",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="WithinServiceLevel")].status`
// +kubebuilder:printcolumn:name="Creator",type=string,priority=1,JSONPath=`.spec.creator.username`
// +kubebuilder:printcolumn:name="Decided-By",type=string,priority=1,JSONPath=`.status.decision.by.username`

// ConsumptionRequest is a consumer asking for one item under its agreement:
// access to a resource, goods, or a service action. It lives in the consumer's
// namespace, next to the agreement it names.
type ConsumptionRequest struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what is requested.
	// +required
	Spec ConsumptionRequestSpec `json:"spec"`

	// status is the observed state of the request.
	// +optional
	Status ConsumptionRequestStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ConsumptionRequestList is a list of ConsumptionRequests.
type ConsumptionRequestList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ConsumptionRequest `json:"items"`
}
