// Package v1alpha1 contains the service.offering.dev/v1alpha1 API: ServiceOffering,
// ServiceAgreement and ConsumptionRequest.
//
// +kubebuilder:object:generate=true
// +groupName=service.offering.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "service.offering.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes registers the kinds of this package.
func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&ServiceOffering{}, &ServiceOfferingList{},
		&ServiceOfferingRevision{}, &ServiceOfferingRevisionList{},
		&ServiceAgreement{}, &ServiceAgreementList{},
		&ConsumptionRequest{}, &ConsumptionRequestList{},
		&MemberCluster{}, &MemberClusterList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
