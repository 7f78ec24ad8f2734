package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SubjectKind is the kind of an RBAC subject that receives access.
// +kubebuilder:validation:Enum=User;Group;ServiceAccount
type SubjectKind string

const (
	// SubjectUser is a user name as the API server authenticates it.
	SubjectUser SubjectKind = "User"
	// SubjectGroup is a group name as the API server authenticates it.
	SubjectGroup SubjectKind = "Group"
	// SubjectServiceAccount is a ServiceAccount in a namespace.
	SubjectServiceAccount SubjectKind = "ServiceAccount"
)

// Subject is an identity that receives the access granted under an agreement.
// +kubebuilder:validation:XValidation:rule="self.kind == 'ServiceAccount' ? has(self.__namespace__) : !has(self.__namespace__)",message="namespace is required for a ServiceAccount and not allowed for a User or Group"
type Subject struct {
	// kind is User, Group or ServiceAccount.
	// +required
	Kind SubjectKind `json:"kind"`

	// name of the user, group or service account.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// namespace of a ServiceAccount subject.
	// +optional
	Namespace NamespaceName `json:"namespace,omitempty"`
}

// Consumer identifies who consumes the service under an agreement.
type Consumer struct {
	// name is the consumer's display name, for example "Team Payments".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Name string `json:"name"`

	// subjects receive the access granted under the agreement: every granted
	// namespace binds the offering's ClusterRoles to each of them.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Subjects []Subject `json:"subjects"`
}

// ResourceEntitlement allows requests for an access item of the offering.
type ResourceEntitlement struct {
	// name of the access item in the offering's spec.resources.
	// +required
	Name ItemName `json:"name"`

	// maxGrants is how many grants of this item may be held at once.
	// Unlimited when omitted.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	MaxGrants *int32 `json:"maxGrants,omitempty"`

	// plans are the plans of the item the consumer may request or change to
	// (reason PlanNotAllowed otherwise). Every plan of the item when omitted.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=6
	Plans []PlanName `json:"plans,omitempty"`
}

// GoodsEntitlement allows requests for goods of the offering.
type GoodsEntitlement struct {
	// name of the goods item in the offering's spec.goods.
	// +required
	Name ItemName `json:"name"`

	// maxQuantity is the total quantity of these goods that may be delivered
	// under the agreement (or in one period); rejected and returned
	// deliveries give their quantity back, accepted ones stay counted even
	// when their request is deleted.
	// Unlimited when omitted.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	MaxQuantity *int32 `json:"maxQuantity,omitempty"`

	// period renews the entitlement when set: the quantity handed over is counted in one
	// period, and from the start of the next maxQuantity is available again. Periods
	// follow each other from the agreement's validFrom, or its creation, for
	// example "720h" (30 days); at least "1h", at most "8760h" (a year).
	// Without a period the entitlement counts over the agreement's life.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1h') && duration(self) <= duration('8760h'))",message="period must be between 1h and 8760h"
	Period *metav1.Duration `json:"period,omitempty"`
}

// ActionEntitlement allows requests for a service action of the offering.
type ActionEntitlement struct {
	// name of the action in the offering's spec.actions.
	// +required
	Name ItemName `json:"name"`

	// maxRuns is how many times the action may be requested under the
	// agreement (or in one period). A run counts from the moment it starts
	// (its Job is created, or a manual action is handed to the provider),
	// even when its request is deleted; a run that never started gives it back.
	// Unlimited when omitted.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	MaxRuns *int32 `json:"maxRuns,omitempty"`

	// period renews the entitlement when set: the runs performed are counted in one
	// period, and from the start of the next maxRuns is available again. Periods
	// follow each other from the agreement's validFrom, or its creation, for
	// example "720h" (30 days); at least "1h", at most "8760h" (a year).
	// Without a period the entitlement counts over the agreement's life.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1h') && duration(self) <= duration('8760h'))",message="period must be between 1h and 8760h"
	Period *metav1.Duration `json:"period,omitempty"`
}

// Entitlements lists the items of the offering the consumer may request, and how many.
type Entitlements struct {
	// resources are the access items the consumer may request.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Resources []ResourceEntitlement `json:"resources,omitempty"`

	// goods are the goods the consumer may request.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Goods []GoodsEntitlement `json:"goods,omitempty"`

	// actions are the service actions the consumer may request.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Actions []ActionEntitlement `json:"actions,omitempty"`
}

// ApprovalPolicy says how requests under an agreement are approved.
// +kubebuilder:validation:Enum=Automatic;Manual
type ApprovalPolicy string

const (
	// ApprovalAutomatic approves every admitted request at once.
	ApprovalAutomatic ApprovalPolicy = "Automatic"
	// ApprovalManual waits for a provider to add the Approved or Denied
	// condition through the status subresource.
	ApprovalManual ApprovalPolicy = "Manual"
)

// ServiceLevelTargets are the times within which a request is to be
// approved and fulfilled: an agreement's own (spec.serviceLevels) or a
// plan's defaults.
type ServiceLevelTargets struct {
	// approvalTime is the target time from a request's creation to its
	// approval, for example "4h"; at most "87600h".
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) <= duration('87600h')",message="must be at most 87600h (10 years)"
	ApprovalTime *metav1.Duration `json:"approvalTime,omitempty"`

	// fulfilmentTime is the target time from a request's creation to its
	// fulfilment (access granted, goods delivered or action completed), for
	// example "30s"; at most "87600h".
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) <= duration('87600h')",message="must be at most 87600h (10 years)"
	FulfilmentTime *metav1.Duration `json:"fulfilmentTime,omitempty"`
}

// ServiceLevels are the targets requests under an agreement are measured against.
type ServiceLevels struct {
	ServiceLevelTargets `json:",inline"`

	// objective is the percentage of measured requests that must meet all their
	// targets over the window, as a decimal string such as "99" or "99.5".
	// Defaults to "100": every request must meet its targets.
	// +optional
	// +kubebuilder:default="100"
	// +kubebuilder:validation:MaxLength=8
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]{1,3}(\\\\.[0-9]{1,3})?$') && double(self) > 0.0 && double(self) <= 100.0",message="objective must be a percentage greater than 0 and at most 100, such as \"99.5\""
	Objective string `json:"objective,omitempty"`

	// window is how far back compliance is measured: requests created within
	// the window count, older ones drop out. Defaults to "720h" (30 days);
	// at least "1m", at most "8760h" (a year).
	// +optional
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1m') && duration(self) <= duration('8760h'))",message="window must be between 1m and 8760h"
	Window *metav1.Duration `json:"window,omitempty"`
}

// ServiceAgreementSpec binds one offering to one consumer.
// +kubebuilder:validation:XValidation:rule="(has(self.revisionPolicy) && self.revisionPolicy == 'Pinned') == has(self.revision)",message="revision is required when revisionPolicy is Pinned and not allowed otherwise"
// +kubebuilder:validation:XValidation:rule="!has(self.validFrom) || !has(self.validUntil) || self.validUntil > self.validFrom",message="validUntil must be later than validFrom"
// +kubebuilder:validation:XValidation:rule="has(self.validUntil) || (!has(self.renewBefore) && !has(self.autoRenew))",message="renewBefore and autoRenew need validUntil: an open-ended agreement never ends"
type ServiceAgreementSpec struct {
	// offering is the name of the ServiceOffering this agreement is for. Immutable.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="offering is immutable; create a new agreement for another offering"
	Offering OfferingName `json:"offering"`

	// revisionPolicy is Latest (requests are fulfilled from the offering's
	// spec as it is now, and follow every change of it) or Pinned (they are
	// fulfilled from the ServiceOfferingRevision named by revision, until the
	// provider moves it). Defaults to Latest.
	// +optional
	// +kubebuilder:default=Latest
	RevisionPolicy RevisionPolicy `json:"revisionPolicy,omitempty"`

	// revision is the number of the offering's revision a Pinned agreement
	// follows (see kubectl get serviceofferingrevisions). Required when
	// revisionPolicy is Pinned, not allowed otherwise. Changing it moves
	// every grant to the new revision.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Revision int32 `json:"revision,omitempty"`

	// consumer is who consumes the service and which identities receive access.
	// +required
	Consumer Consumer `json:"consumer"`

	// entitlements are the items the consumer may request, and how many.
	// +required
	Entitlements Entitlements `json:"entitlements"`

	// approvalPolicy is Automatic (admitted requests are approved at once) or
	// Manual (a provider approves or denies each request). Defaults to Automatic.
	// +optional
	// +kubebuilder:default=Automatic
	ApprovalPolicy ApprovalPolicy `json:"approvalPolicy,omitempty"`

	// serviceLevels are the targets requests are measured against.
	// +optional
	ServiceLevels *ServiceLevels `json:"serviceLevels,omitempty"`

	// validFrom is when the agreement starts; it is Pending before. Starts at once when omitted.
	// ---
	// The rule "self == self" is deliberate, not a mistake: evaluating it
	// makes the API server parse the value as a CEL timestamp, which refuses
	// date-times that the schema's looser date-time format admits but Go's
	// RFC 3339 parser does not (a lower-case "t", an offset of +99:99). The
	// object is then rejected with the rule's message, instead of being
	// stored and breaking every list of agreements in the operator.
	// TestConditionTimesMustParse checks it against the API server.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == self",message="must be an RFC 3339 date-time such as 2026-01-01T00:00:00Z"
	ValidFrom *metav1.Time `json:"validFrom,omitempty"`

	// validUntil is when the agreement ends: it then expires and everything
	// granted under it is revoked. Open-ended when omitted.
	// ---
	// The rule "self == self" is deliberate: see validFrom.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == self",message="must be an RFC 3339 date-time such as 2026-01-01T00:00:00Z"
	ValidUntil *metav1.Time `json:"validUntil,omitempty"`

	// renewBefore is the notice period before the agreement ends, for example
	// "720h": from validUntil minus renewBefore on, the agreement reports
	// ExpiringSoon=True, sends an event and sets the
	// offering_operator_agreement_expiring_soon metric, so that the provider
	// renews it in time. With autoRenew the agreement does not end and no
	// notice is given. Needs validUntil; at least "1m", at most "87600h".
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1m') && duration(self) <= duration('87600h'))",message="renewBefore must be between 1m and 87600h"
	RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`

	// autoRenew renews the agreement by this period, for example "8760h",
	// each time it reaches its end: validUntil is never rewritten (GitOps
	// keeps owning the spec); the current end is status.validUntil and the
	// renewals so far status.renewals. Access is never interrupted. To stop
	// renewing, remove autoRenew and set validUntil to the end wanted (for
	// example status.validUntil): without autoRenew the agreement ends at
	// spec.validUntil. Needs validUntil; at least "1h", at most "87600h".
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1h') && duration(self) <= duration('87600h'))",message="autoRenew must be between 1h and 87600h"
	AutoRenew *metav1.Duration `json:"autoRenew,omitempty"`

	// suspended pauses the agreement: access granted under it is revoked (granted
	// namespaces are kept) and new requests wait; setting it back to false restores access.
	// +optional
	Suspended bool `json:"suspended,omitempty"`
}

// AgreementPhase is the lifecycle phase of an agreement.
// +kubebuilder:validation:Enum=Pending;Active;Suspended;Expired;Terminating
type AgreementPhase string

const (
	// AgreementPending: the offering is missing or not Ready, or validFrom is in the future.
	AgreementPending AgreementPhase = "Pending"
	// AgreementActive: requests are admitted and access is granted.
	AgreementActive AgreementPhase = "Active"
	// AgreementSuspended: spec.suspended is true; access is revoked until it is false again.
	AgreementSuspended AgreementPhase = "Suspended"
	// AgreementExpired: validUntil has passed; access is revoked.
	AgreementExpired AgreementPhase = "Expired"
	// AgreementTerminating: the agreement is being deleted; access is being revoked.
	AgreementTerminating AgreementPhase = "Terminating"
)

// Allocation is one request's claim on an entitlement. Allocations are written
// with optimistic concurrency so that entitlements are never over-granted.
type Allocation struct {
	// request is the name of the ConsumptionRequest holding the allocation.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Request string `json:"request"`

	// uid of the ConsumptionRequest holding the allocation.
	// +required
	// +kubebuilder:validation:MaxLength=64
	UID string `json:"uid"`

	// kind of the item allocated.
	// +required
	Kind ItemKind `json:"kind"`

	// item is the name of the item allocated.
	// +required
	Item ItemName `json:"item"`

	// quantity allocated: 1 for resources and actions, the requested quantity for goods.
	// +required
	// +kubebuilder:validation:Minimum=1
	Quantity int32 `json:"quantity"`

	// periodStart is the start of the entitlement's period the allocation
	// counts in; absent when the entitlement has no period.
	// +optional
	PeriodStart *metav1.Time `json:"periodStart,omitempty"`
}

// ConsumedRequest is one request whose consumption the record counts.
type ConsumedRequest struct {
	// request is the name of the ConsumptionRequest.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Request string `json:"request"`

	// uid of the ConsumptionRequest.
	// +required
	// +kubebuilder:validation:MaxLength=64
	UID string `json:"uid"`

	// quantity consumed: the goods handed over, or 1 for a run.
	// +required
	// +kubebuilder:validation:Minimum=1
	Quantity int32 `json:"quantity"`

	// at is when the operator counted it.
	// +required
	At metav1.Time `json:"at"`
}

// PeriodConsumption is what was consumed of an item in one ended period.
type PeriodConsumption struct {
	// start of the period.
	// +required
	Start metav1.Time `json:"start"`

	// consumed in the period.
	// +required
	// +kubebuilder:validation:Minimum=0
	Consumed int32 `json:"consumed"`
}

// ItemConsumption is what was consumed of one goods or action item under
// the agreement, kept independent of the request objects: a request deleted
// after its goods were handed over, or its action ran, stays counted here.
// Requests still in flight are in allocations until they settle.
type ItemConsumption struct {
	// kind of the item: Goods or Action.
	// +required
	Kind ItemKind `json:"kind"`

	// item is the item's name.
	// +required
	Item ItemName `json:"item"`

	// periodStart is the start of the period consumed counts; absent when
	// the entitlement has no period.
	// +optional
	PeriodStart *metav1.Time `json:"periodStart,omitempty"`

	// consumed is the quantity handed over (goods) or the runs performed
	// (actions) in the current period, or over the agreement's life without
	// a period, by requests that settled.
	// +required
	// +kubebuilder:validation:Minimum=0
	Consumed int32 `json:"consumed"`

	// total is what was consumed over the agreement's life.
	// +required
	// +kubebuilder:validation:Minimum=0
	Total int64 `json:"total"`

	// previousPeriods are the most recent ended periods, newest first.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=12
	PreviousPeriods []PeriodConsumption `json:"previousPeriods,omitempty"`

	// recentRequests are the most recent requests counted, newest first, so
	// that the figures can be audited.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	RecentRequests []ConsumedRequest `json:"recentRequests,omitempty"`
}

// EntitlementUsage reports how much of one entitlement is in use.
type EntitlementUsage struct {
	// kind of the item.
	// +required
	Kind ItemKind `json:"kind"`

	// item is the item's name.
	// +required
	Item ItemName `json:"item"`

	// used is the number of grants held (resources), quantity delivered (goods)
	// or runs requested (actions).
	// +required
	Used int32 `json:"used"`

	// limit is the entitlement's maximum; absent when unlimited.
	// +optional
	Limit *int32 `json:"limit,omitempty"`

	// period of a periodic entitlement: used counts the current period only.
	// +optional
	// +kubebuilder:validation:Type=string
	Period *metav1.Duration `json:"period,omitempty"`

	// periodEnds is when the current period ends and the entitlement is available again.
	// +optional
	PeriodEnds *metav1.Time `json:"periodEnds,omitempty"`
}

// RequestCounts counts an agreement's requests by phase.
type RequestCounts struct {
	// total number of requests under the agreement.
	// +optional
	Total int32 `json:"total,omitempty"`
	// pending requests wait for admission (for example, for the agreement to become Active).
	// +optional
	Pending int32 `json:"pending,omitempty"`
	// awaitingApproval requests wait for a provider's decision.
	// +optional
	AwaitingApproval int32 `json:"awaitingApproval,omitempty"`
	// provisioning requests are being fulfilled.
	// +optional
	Provisioning int32 `json:"provisioning,omitempty"`
	// fulfilled requests hold their grant, delivery or completed action.
	// +optional
	Fulfilled int32 `json:"fulfilled,omitempty"`
	// denied requests were refused at admission or by a provider.
	// +optional
	Denied int32 `json:"denied,omitempty"`
	// failed requests could not be fulfilled.
	// +optional
	Failed int32 `json:"failed,omitempty"`
	// revoked requests had their access revoked (agreement suspended or ended).
	// +optional
	Revoked int32 `json:"revoked,omitempty"`
}

// GoodsCounts counts an agreement's goods requests by where their delivery stands.
type GoodsCounts struct {
	// delivered requests have their goods in the consumer's namespace, waiting
	// for the consumer to accept or reject them.
	// +optional
	Delivered int32 `json:"delivered,omitempty"`
	// accepted requests had their goods accepted: the consumer owns them.
	// +optional
	Accepted int32 `json:"accepted,omitempty"`
	// returned requests had their goods rejected by the consumer or returned at
	// the acceptance deadline; their entitlement was given back.
	// +optional
	Returned int32 `json:"returned,omitempty"`
}

// ActionCounts counts an agreement's action requests by outcome.
type ActionCounts struct {
	// running actions have started (a Job exists, or a provider is working on
	// a manual action) and have not finished.
	// +optional
	Running int32 `json:"running,omitempty"`
	// succeeded actions completed.
	// +optional
	Succeeded int32 `json:"succeeded,omitempty"`
	// failed actions failed: their Job failed or timed out, a provider marked
	// them failed, or their parameters were refused before they ran.
	// +optional
	Failed int32 `json:"failed,omitempty"`
}

// ServiceLevelTarget names one of the targets a request is measured against.
// +kubebuilder:validation:Enum=Approval;Fulfilment
type ServiceLevelTarget string

const (
	// TargetApproval is spec.serviceLevels.approvalTime: creation to the
	// approval decision (approved or denied by a provider).
	TargetApproval ServiceLevelTarget = "Approval"
	// TargetFulfilment is spec.serviceLevels.fulfilmentTime: creation to fulfilment.
	TargetFulfilment ServiceLevelTarget = "Fulfilment"
)

// ServiceLevelBreach records a request that missed a target.
type ServiceLevelBreach struct {
	// request is the name of the ConsumptionRequest.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Request string `json:"request"`

	// item is what the request asked for, as "<kind>/<name>".
	// +optional
	// +kubebuilder:validation:MaxLength=80
	Item string `json:"item,omitempty"`

	// target is the target missed: Approval or Fulfilment.
	// +required
	Target ServiceLevelTarget `json:"target"`

	// limit is the target's duration.
	// +required
	// +kubebuilder:validation:Type=string
	Limit metav1.Duration `json:"limit"`

	// breachedAt is when the target was missed: the request's creation plus the target.
	// +required
	BreachedAt metav1.Time `json:"breachedAt"`

	// took is how long the request really took; absent while it is still open.
	// +optional
	// +kubebuilder:validation:Type=string
	Took *metav1.Duration `json:"took,omitempty"`
}

// ServiceLevelCounts count measured requests by their verdict.
type ServiceLevelCounts struct {
	// measured is the number of requests with a verdict: they met every
	// target that applies to them, or missed one.
	// +optional
	Measured int32 `json:"measured,omitempty"`

	// withinTarget is the number of measured requests that met every target.
	// +optional
	WithinTarget int32 `json:"withinTarget,omitempty"`

	// breached is the number of measured requests that missed a target.
	// +optional
	Breached int32 `json:"breached,omitempty"`
}

// Count counts one measured request: within its targets, or breached.
func (c *ServiceLevelCounts) Count(within bool) {
	c.Measured++
	if within {
		c.WithinTarget++
	} else {
		c.Breached++
	}
}

// Add adds the counts of o.
func (c *ServiceLevelCounts) Add(o ServiceLevelCounts) {
	c.Measured += o.Measured
	c.WithinTarget += o.WithinTarget
	c.Breached += o.Breached
}

// AgreementServiceLevels is an agreement's service-level record over its
// window. A request is measured once it has a verdict: it met every target
// that applies to it, or it missed one (an open request past a target has
// already missed it). Requests refused at admission, or that failed on their
// own input before any work ran, are not measured.
type AgreementServiceLevels struct {
	// window is the period measured, ending now.
	// +optional
	// +kubebuilder:validation:Type=string
	Window *metav1.Duration `json:"window,omitempty"`

	// objective is the percentage of measured requests that must meet their targets.
	// +optional
	// +kubebuilder:validation:MaxLength=8
	Objective string `json:"objective,omitempty"`

	ServiceLevelCounts `json:",inline"`

	// compliance is withinTarget / measured as a percentage, rounded down to
	// two decimals, for example "97.5"; absent when nothing was measured.
	// +optional
	// +kubebuilder:validation:MaxLength=8
	Compliance string `json:"compliance,omitempty"`

	// open is the number of requests in the window still running against a target.
	// +optional
	Open int32 `json:"open,omitempty"`

	// atRisk is the number of open requests that have used at least half the
	// time of a target they have not met yet.
	// +optional
	AtRisk int32 `json:"atRisk,omitempty"`

	// recentBreaches are the latest breaches in the window, newest first (at most 10).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	RecentBreaches []ServiceLevelBreach `json:"recentBreaches,omitempty"`
}

// ServiceLevelHistory is the service-level record of the requests that were
// deleted: deleting a request (kubectl delete, a GitOps prune) does not
// change the agreement's compliance over its window.
type ServiceLevelHistory struct {
	// days are the verdicts of deleted requests by the day (UTC) they were
	// created on, for the days the window covers; older days are dropped.
	// +optional
	// +listType=map
	// +listMapKey=day
	// +kubebuilder:validation:MaxItems=367
	Days []ServiceLevelDay `json:"days,omitempty"`

	// recorded are the UIDs of the requests last added to days (at most 256,
	// newest last), so that a deletion retried after a crash is counted once.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=128
	Recorded []string `json:"recorded,omitempty"`
}

// ServiceLevelDay counts the verdicts of the deleted requests created on one day.
type ServiceLevelDay struct {
	// day is the date (UTC) the requests were created on, as YYYY-MM-DD.
	// +required
	// +kubebuilder:validation:MinLength=10
	// +kubebuilder:validation:MaxLength=10
	// +kubebuilder:validation:Pattern=`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`
	Day string `json:"day"`

	ServiceLevelCounts `json:",inline"`
}

// ServiceAgreementStatus is the observed state of a ServiceAgreement.
type ServiceAgreementStatus struct {
	// observedGeneration is the generation of the spec last reconciled successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is Pending, Active, Suspended, Expired or Terminating.
	// +optional
	Phase AgreementPhase `json:"phase,omitempty"`

	// conditions are Active (requests are admitted and access held), Ready (the
	// agreement is Active and everything under it is reconciled),
	// EntitlementsExhausted (True when at least one entitlement is fully used),
	// ServiceLevelsMet (compliance over the window meets the objective; absent
	// when the agreement sets no targets), ExpiringSoon (True within
	// spec.renewBefore of the end; absent without renewBefore).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// usage reports, for every entitlement, how much is in use.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=96
	Usage []EntitlementUsage `json:"usage,omitempty"`

	// requests counts the agreement's requests by phase.
	// +optional
	Requests RequestCounts `json:"requests,omitempty"`

	// goods counts the goods requests by delivered, accepted and returned.
	// +optional
	Goods GoodsCounts `json:"goods,omitempty"`

	// actions counts the action requests by running, succeeded and failed.
	// +optional
	Actions ActionCounts `json:"actions,omitempty"`

	// serviceLevels is the service-level record of the agreement over its
	// window; absent when the agreement sets no approval or fulfilment target.
	// +optional
	ServiceLevels *AgreementServiceLevels `json:"serviceLevels,omitempty"`

	// serviceLevelHistory keeps the verdicts of measured requests that were
	// deleted, per day, for the service-level window; serviceLevels counts
	// them with the requests that still exist. Written by the request
	// controller as a request is deleted; not for people to edit.
	// +optional
	ServiceLevelHistory *ServiceLevelHistory `json:"serviceLevelHistory,omitempty"`

	// usageSummary is usage in one line, for example
	// "Resource/rack-space 2/3, Goods/power-cable 1/-": used/limit per entitlement, "-" when unlimited.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	UsageSummary string `json:"usageSummary,omitempty"`

	// validUntil is when the agreement ends: spec.validUntil, moved on by
	// spec.autoRenew for each automatic renewal. Absent when open-ended.
	// +optional
	ValidUntil *metav1.Time `json:"validUntil,omitempty"`

	// renewals counts the automatic renewals since spec.validUntil (autoRenew);
	// a new spec.validUntil starts the count again.
	// +optional
	Renewals int32 `json:"renewals,omitempty"`

	// allocations are the goods and action requests in flight, each holding
	// its share of an entitlement until it settles into consumption (goods
	// accepted, action started, request gone) or gives it back. Before this
	// version they also held the grants of limited resource entitlements,
	// which are now Leases in the operator's namespace (one per grant): the
	// operator moves them there on its first start. Written by the operator
	// with optimistic concurrency; not for people to edit.
	// +optional
	// +listType=map
	// +listMapKey=request
	// +kubebuilder:validation:MaxItems=10000
	Allocations []Allocation `json:"allocations,omitempty"`

	// consumption is what was consumed of each goods and action item: the
	// relationship's record, kept when requests are deleted, compacted to
	// counters per item and period with the most recent requests. Written by
	// the operator with optimistic concurrency; not for people to edit.
	// +optional
	// +listType=map
	// +listMapKey=kind
	// +listMapKey=item
	// +kubebuilder:validation:MaxItems=64
	Consumption []ItemConsumption `json:"consumption,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=svcagreement;sag,categories=offering
// +kubebuilder:printcolumn:name="Offering",type=string,JSONPath=`.spec.offering`
// +kubebuilder:printcolumn:name="Consumer",type=string,JSONPath=`.spec.consumer.name`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Requests",type=integer,JSONPath=`.status.requests.total`
// +kubebuilder:printcolumn:name="Compliance",type=string,JSONPath=`.status.serviceLevels.compliance`
// +kubebuilder:printcolumn:name="SLO-Met",type=string,JSONPath=`.status.conditions[?(@.type=="ServiceLevelsMet")].status`
// +kubebuilder:printcolumn:name="Expiring",type=string,JSONPath=`.status.conditions[?(@.type=="ExpiringSoon")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Usage",type=string,priority=1,JSONPath=`.status.usageSummary`
// +kubebuilder:printcolumn:name="Breached",type=integer,priority=1,JSONPath=`.status.serviceLevels.breached`
// +kubebuilder:printcolumn:name="At-Risk",type=integer,priority=1,JSONPath=`.status.serviceLevels.atRisk`
// +kubebuilder:printcolumn:name="Approval",type=string,priority=1,JSONPath=`.spec.approvalPolicy`
// +kubebuilder:printcolumn:name="Pinned",type=integer,priority=1,JSONPath=`.spec.revision`
// +kubebuilder:printcolumn:name="Valid-Until",type=string,priority=1,JSONPath=`.status.validUntil`
// +kubebuilder:printcolumn:name="Auto-Renew",type=string,priority=1,JSONPath=`.spec.autoRenew`
// +kubebuilder:printcolumn:name="Reason",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`

// ServiceAgreement binds a ServiceOffering to a consumer: which items the
// consumer may request and how many, how requests are approved, the service
// levels, and the validity period. It lives in the consumer's namespace and is
// written by the provider.
type ServiceAgreement struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the agreement's terms.
	// +required
	Spec ServiceAgreementSpec `json:"spec"`

	// status is the observed state of the relationship.
	// +optional
	Status ServiceAgreementStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ServiceAgreementList is a list of ServiceAgreements.
type ServiceAgreementList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceAgreement `json:"items"`
}
