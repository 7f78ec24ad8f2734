package controllers

import (
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics of the member clusters (docs/metrics.md). The cluster label is
// the name of a registration Secret, which only a cluster administrator
// creates: it is bounded.
const lblCluster = "cluster"

// clusterLabels label the metrics of one member cluster.
var clusterLabels = []string{lblCluster}

var (
	metricMemberReachable = newGauge("offering_operator_member_cluster_reachable", clusterLabels, "1 while the operator reaches a registered member cluster's API server, 0 otherwise.")
	metricMemberErrors    = newCounter("offering_operator_member_cluster_errors_total", clusterLabels, "Calls to a member cluster that got no answer: failed probes, and grants or revocations that could not reach it.")
	metricMemberStranded  = newGauge("offering_operator_member_cluster_stranded_grants", clusterLabels, "Grants placed in a member cluster whose registration Secret was deleted: they cannot be revoked until it is registered again.")
)

func init() {
	crmetrics.Registry.MustRegister(metricMemberReachable, metricMemberErrors, metricMemberStranded)
}
