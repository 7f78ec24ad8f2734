package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServiceOfferingRevisionSpec is one version of an offering's spec, as it was
// published.
type ServiceOfferingRevisionSpec struct {
	// offering is the name of the ServiceOffering this is a revision of.
	// +required
	Offering OfferingName `json:"offering"`

	// revision is the revision's number: 1 for the offering's first spec, one
	// more for each later change of it. A spec that returns to an earlier
	// one is a new revision.
	// +required
	// +kubebuilder:validation:Minimum=1
	Revision int32 `json:"revision"`

	// specHash is the SHA-256 of the spec, in hexadecimal: two revisions
	// with the same hash hold the same spec.
	// +required
	// +kubebuilder:validation:MinLength=64
	// +kubebuilder:validation:MaxLength=64
	SpecHash string `json:"specHash"`

	// offeringSpec is the offering's spec at this revision. Agreements pinned
	// to the revision are fulfilled from it.
	// +required
	OfferingSpec ServiceOfferingSpec `json:"offeringSpec"`
}

// RevisionPolicy says which revision of its offering an agreement follows.
// +kubebuilder:validation:Enum=Latest;Pinned
type RevisionPolicy string

const (
	// RevisionPolicyLatest follows the offering's spec as it is now: every
	// change of the offering reaches the agreement's grants at once.
	RevisionPolicyLatest RevisionPolicy = "Latest"
	// RevisionPolicyPinned follows the revision named in spec.revision until
	// the provider moves it.
	RevisionPolicyPinned RevisionPolicy = "Pinned"
)

// RevisionUsage counts the agreements of an offering on one revision.
type RevisionUsage struct {
	// revision is the revision's number.
	// +required
	// +kubebuilder:validation:Minimum=1
	Revision int32 `json:"revision"`

	// agreements is the number of agreements on the revision: pinned to it,
	// or following Latest while it is the latest.
	// +required
	// +kubebuilder:validation:Minimum=0
	Agreements int32 `json:"agreements"`
}

// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=sofrev,categories=offering
// +kubebuilder:printcolumn:name="Offering",type=string,JSONPath=`.spec.offering`
// +kubebuilder:printcolumn:name="Revision",type=integer,JSONPath=`.spec.revision`
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.offeringSpec.provider.name`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Hash",type=string,priority=1,JSONPath=`.spec.specHash`

// ServiceOfferingRevision is an immutable record of one version of a
// ServiceOffering's spec. The operator creates one, named
// <offering>-r<revision> and owned by the offering, for every change of the
// offering's spec; agreements pinned to a revision keep being fulfilled from
// it while the offering changes.
type ServiceOfferingRevision struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the recorded version of the offering. Immutable.
	// ---
	// The rule "self == oldSelf" is deliberate: a revision is a record that
	// pinned agreements are fulfilled from, so no one may rewrite it, not
	// even the operator; a new spec is a new revision.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a ServiceOfferingRevision is immutable: edit the ServiceOffering, which makes a new revision"
	Spec ServiceOfferingRevisionSpec `json:"spec"`
}

// +kubebuilder:object:root=true

// ServiceOfferingRevisionList is a list of ServiceOfferingRevisions.
type ServiceOfferingRevisionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceOfferingRevision `json:"items"`
}
