package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Member clusters of a fleet. A cluster administrator registers a member
// cluster with a Secret in the operator's namespace (LabelMemberCluster);
// the operator reports what it sees of the member in a MemberCluster of the
// same name, which it alone writes.

const (
	// LabelMemberCluster marks a Secret in the operator's namespace as the
	// registration of a member cluster ("true"). The Secret's name is the
	// cluster's name; its labels are what placement selectors match.
	LabelMemberCluster = "service.offering.dev/member-cluster"
	// MemberClusterValue is LabelMemberCluster's value on a registration Secret.
	MemberClusterValue = "true"
	// MemberKubeconfigKey is the key of a member cluster Secret holding the
	// kubeconfig the operator connects with. "value", the key of Cluster
	// API's kubeconfig Secrets, is read when it is absent.
	MemberKubeconfigKey = "kubeconfig"
)

// ClusterName names a member cluster: the name of its Secret.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
type ClusterName string

// Placement says in which clusters the grants of a resource item are made.
// +kubebuilder:validation:XValidation:rule="has(self.clusters) != has(self.clusterSelector)",message="placement names exactly one of clusters or clusterSelector"
type Placement struct {
	// clusters are the member clusters grants may be placed in, by name.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Clusters []ClusterName `json:"clusters,omitempty"`

	// clusterSelector selects the member clusters grants may be placed in by
	// the labels of their registration Secrets.
	// +optional
	ClusterSelector *metav1.LabelSelector `json:"clusterSelector,omitempty"`
}

// MemberClusterStatus is what the operator last saw of a member cluster.
type MemberClusterStatus struct {
	// conditions are Ready: True while the operator reaches the cluster's API
	// server with the registered credentials; False with reason
	// ClusterUnreachable (the error), InvalidKubeconfig, or ClusterRemoved
	// (its Secret was deleted while grants were still placed in it).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// server is the URL of the member's API server.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	Server string `json:"server,omitempty"`

	// version is the member API server's version, as it reports it.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Version string `json:"version,omitempty"`

	// lastProbeTime is when the operator last asked the member for its version.
	// +optional
	LastProbeTime *metav1.Time `json:"lastProbeTime,omitempty"`

	// grants is how many requests hold a grant placed in the cluster.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Grants int32 `json:"grants,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=mcl,categories=offering
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.version`
// +kubebuilder:printcolumn:name="Grants",type=integer,JSONPath=`.status.grants`
// +kubebuilder:printcolumn:name="Last-Probe",type=date,JSONPath=`.status.lastProbeTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Server",type=string,priority=1,JSONPath=`.status.server`
// +kubebuilder:printcolumn:name="Message",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].message`

// MemberCluster is the operator's report on a member cluster of its fleet:
// whether it reaches it, its version, the last error and how many grants are
// placed in it. The operator creates and writes it from the cluster's
// registration Secret; people read it (`kubectl get memberclusters`). It has
// no spec: registering a cluster is creating its Secret.
type MemberCluster struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// status is what the operator last saw of the cluster.
	// +optional
	Status MemberClusterStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// MemberClusterList is a list of MemberClusters.
type MemberClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MemberCluster `json:"items"`
}
