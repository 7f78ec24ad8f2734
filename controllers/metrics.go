package controllers

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Metrics on the manager's metrics endpoint (docs/metrics.md). Labels are
// bounded: offering and agreement are objects a provider creates, kind and
// phase are enums; no label carries a request's name.
// Metric label names.
const (
	lblOffering  = "offering"
	lblNamespace = "namespace"
	lblAgreement = "agreement"
	lblKind      = "kind"
	lblItem      = "item"
	lblPhase     = "phase"
	lblTarget    = "target"
)

// agreementLabels label the metrics of one agreement: the relationship.
var agreementLabels = []string{lblOffering, lblNamespace, lblAgreement}

// requestLabels label the metrics of requests: the relationship and the item kind.
var requestLabels = withLabels(agreementLabels, lblKind)

// entitlementLabels label the metrics of one entitlement of an agreement.
var entitlementLabels = withLabels(requestLabels, lblItem)

var (
	durationBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600}

	// One metric a line: its name, its labels, its help.
	metricApprovalSeconds      = newDurations("offering_operator_request_approval_duration_seconds", requestLabels, "Time from a request's creation to its approval, observed once per request when it is approved.")
	metricFulfilmentSeconds    = newDurations("offering_operator_request_fulfilment_duration_seconds", requestLabels, "Time from a request's creation to its fulfilment (access granted, goods delivered, action completed), observed once per request.")
	metricBreaches             = newCounter("offering_operator_service_level_breaches_total", withLabels(requestLabels, lblTarget), "Requests that missed a service-level target (approval or fulfilment), counted once per request and target when the breach happens.")
	metricActiveGrants         = newGauge("offering_operator_active_grants", requestLabels, "Requests holding access or delivered goods under an agreement, from the agreement's roll-up.")
	metricRequests             = newGauge("offering_operator_requests", withLabels(requestLabels, lblPhase), "Requests under an agreement by item kind and phase, from the agreement's roll-up.")
	metricCompliance           = newGauge("offering_operator_service_level_compliance_ratio", agreementLabels, "Share (0 to 1) of an agreement's measured requests that met their targets over its window; absent while none is measured.")
	metricObjective            = newGauge("offering_operator_service_level_objective_ratio", agreementLabels, "An agreement's service-level objective (0 to 1), for alerting on compliance below it.")
	metricAgreementEnd         = newGauge("offering_operator_agreement_valid_until_timestamp_seconds", agreementLabels, "When an agreement ends (status.validUntil, spec.autoRenew included), as a Unix time; absent while it is open-ended.")
	metricExpiringSoon         = newGauge("offering_operator_agreement_expiring_soon", agreementLabels, "1 while an agreement is within spec.renewBefore of its end (ExpiringSoon=True), 0 otherwise; absent without renewBefore.")
	metricEntitlementUsed      = newGauge("offering_operator_entitlement_used", entitlementLabels, "How much of an entitlement is used: grants held, goods handed over or runs performed (in the current period of a periodic entitlement), as the agreement's status.usage.")
	metricEntitlementLimit     = newGauge("offering_operator_entitlement_limit", entitlementLabels, "An entitlement's limit (maxGrants, maxQuantity or maxRuns); absent when unlimited.")
	metricEntitlementPeriodEnd = newGauge("offering_operator_entitlement_period_end_timestamp_seconds", entitlementLabels, "When the current period of a periodic entitlement ends and it is available again (Unix time); absent without a period.")
	metricOfferingReady        = newGauge("offering_operator_offering_ready", []string{lblOffering}, "1 when the offering is Ready, 0 when it is not (its Ready condition says why); absent once it is deleted.")
)

// metricOrphansRevoked is a plain counter, not a vector: it is exposed, at
// zero, from the start.
var metricOrphansRevoked = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "offering_operator_orphans_revoked_total",
	Help: "Requests that were gone without their finalizer having run and whose remaining objects (RoleBindings, namespace, goods copies, action Jobs) the operator revoked.",
})

// newDurations, newCounter and newGauge define the operator's metrics.
func newDurations(name string, labels []string, help string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: durationBuckets}, labels)
}

func newCounter(name string, labels []string, help string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

func newGauge(name string, labels []string, help string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
}

// withLabels is base with more labels after it; base is not changed.
func withLabels(base []string, more ...string) []string {
	return append(slices.Clone(base), more...)
}

func init() {
	crmetrics.Registry.MustRegister(metricApprovalSeconds, metricFulfilmentSeconds, metricBreaches,
		metricActiveGrants, metricRequests, metricCompliance, metricObjective, metricAgreementEnd, metricExpiringSoon,
		metricOfferingReady, metricOrphansRevoked, metricEntitlementUsed, metricEntitlementLimit, metricEntitlementPeriodEnd)
}

// requestPhases are the phases the requests gauge reports, zeros included, so
// that a series falls to 0 instead of going stale.
var requestPhases = []v1alpha1.RequestPhase{
	v1alpha1.RequestPending, v1alpha1.RequestAwaitingApproval, v1alpha1.RequestProvisioning,
	v1alpha1.RequestFulfilled, v1alpha1.RequestDelivered, v1alpha1.RequestAccepted, v1alpha1.RequestRejected,
	v1alpha1.RequestDenied, v1alpha1.RequestFailed, v1alpha1.RequestRevoked,
}

// observeRequestTransition records the metrics of what changed in a request's
// status with a write that succeeded: each is observed once, when it happens.
func observeRequestTransition(cr *v1alpha1.ConsumptionRequest, old, cur *v1alpha1.ConsumptionRequestStatus) []v1alpha1.ServiceLevelTarget {
	kind, _, _ := requestedItem(cr)
	labels := prometheus.Labels{lblOffering: cur.Offering, lblNamespace: cr.Namespace, lblAgreement: string(cr.Spec.Agreement), lblKind: string(kind)}
	if old.ApprovedAt == nil && cur.ApprovedAt != nil {
		metricApprovalSeconds.With(labels).Observe(cur.ApprovedAt.Sub(cr.CreationTimestamp.Time).Seconds())
	}
	if old.FulfilledAt == nil && cur.FulfilledAt != nil {
		metricFulfilmentSeconds.With(labels).Observe(cur.FulfilledAt.Sub(cr.CreationTimestamp.Time).Seconds())
	}
	if cur.ServiceLevel == nil {
		return nil
	}
	was := map[v1alpha1.ServiceLevelTarget]bool{}
	if old.ServiceLevel != nil {
		for _, t := range old.ServiceLevel.Breached {
			was[t] = true
		}
	}
	var fresh []v1alpha1.ServiceLevelTarget
	for _, t := range cur.ServiceLevel.Breached {
		if !was[t] {
			fresh = append(fresh, t)
			metricBreaches.MustCurryWith(labels).WithLabelValues(string(t)).Inc()
		}
	}
	return fresh
}

// setUsageGauges publishes an agreement's usage, one series per entitlement.
func setUsageGauges(agr *v1alpha1.ServiceAgreement, usage []v1alpha1.EntitlementUsage) {
	match := prometheus.Labels{lblNamespace: agr.Namespace, lblAgreement: agr.Name}
	for _, v := range []*prometheus.GaugeVec{metricEntitlementUsed, metricEntitlementLimit, metricEntitlementPeriodEnd} {
		v.DeletePartialMatch(match)
	}
	for _, u := range usage {
		l := prometheus.Labels{lblOffering: string(agr.Spec.Offering), lblNamespace: agr.Namespace, lblAgreement: agr.Name,
			lblKind: string(u.Kind), lblItem: string(u.Item)}
		metricEntitlementUsed.With(l).Set(float64(u.Used))
		if u.Limit != nil {
			metricEntitlementLimit.With(l).Set(float64(*u.Limit))
		}
		if u.PeriodEnds != nil {
			metricEntitlementPeriodEnd.With(l).Set(float64(u.PeriodEnds.Unix()))
		}
	}
}

// setAgreementGauges publishes an agreement's roll-up.
func setAgreementGauges(agr *v1alpha1.ServiceAgreement, requests []v1alpha1.ConsumptionRequest, sl slRollup, usage []v1alpha1.EntitlementUsage) {
	setUsageGauges(agr, usage)
	base := prometheus.Labels{lblOffering: string(agr.Spec.Offering), lblNamespace: agr.Namespace, lblAgreement: agr.Name}
	byPhase := map[v1alpha1.ItemKind]map[v1alpha1.RequestPhase]int{}
	active := map[v1alpha1.ItemKind]int{}
	kinds := entitledKinds(agr)
	for i := range requests {
		cr := &requests[i]
		kind, _, _ := requestedItem(cr)
		if byPhase[kind] == nil {
			byPhase[kind] = map[v1alpha1.RequestPhase]int{}
			kinds[kind] = true
		}
		phase := cr.Status.Phase
		if phase == "" {
			phase = v1alpha1.RequestPending
		}
		byPhase[kind][phase]++
		if holdsAccess(cr) {
			active[kind]++
		}
	}
	for kind := range kinds {
		kl := prometheus.Labels{lblOffering: base[lblOffering], lblNamespace: agr.Namespace, lblAgreement: agr.Name, lblKind: string(kind)}
		metricActiveGrants.With(kl).Set(float64(active[kind]))
		phases := metricRequests.MustCurryWith(kl)
		for _, p := range requestPhases {
			phases.WithLabelValues(string(p)).Set(float64(byPhase[kind][p]))
		}
	}
	if sl.levels == nil {
		metricCompliance.Delete(base)
		metricObjective.Delete(base)
		return
	}
	if sl.levels.Measured > 0 {
		metricCompliance.With(base).Set(float64(sl.levels.WithinTarget) / float64(sl.levels.Measured))
	} else {
		metricCompliance.Delete(base)
	}
	if obj, ok := objectiveRatio(sl.levels.Objective); ok {
		metricObjective.With(base).Set(obj)
	}
}

// setAgreementEnd publishes when an agreement ends and whether its renewal notice is open.
func setAgreementEnd(agr *v1alpha1.ServiceAgreement, status *v1alpha1.ServiceAgreementStatus) {
	base := prometheus.Labels{lblOffering: string(agr.Spec.Offering), lblNamespace: agr.Namespace, lblAgreement: agr.Name}
	if status.ValidUntil == nil {
		metricAgreementEnd.Delete(base)
	} else {
		metricAgreementEnd.With(base).Set(float64(status.ValidUntil.Unix()))
	}
	c := meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionExpiringSoon)
	if c == nil {
		metricExpiringSoon.Delete(base)
		return
	}
	soon := 0.0
	if c.Status == metav1.ConditionTrue {
		soon = 1
	}
	metricExpiringSoon.With(base).Set(soon)
}

// deleteAgreementGauges removes an agreement's series when it is gone.
func deleteAgreementGauges(agr *v1alpha1.ServiceAgreement) {
	match := prometheus.Labels{lblNamespace: agr.Namespace, lblAgreement: agr.Name}
	for _, v := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{metricActiveGrants, metricRequests, metricCompliance, metricObjective, metricAgreementEnd, metricExpiringSoon,
		metricEntitlementUsed, metricEntitlementLimit, metricEntitlementPeriodEnd} {
		v.DeletePartialMatch(match)
	}
}

func entitledKinds(agr *v1alpha1.ServiceAgreement) map[v1alpha1.ItemKind]bool {
	kinds := map[v1alpha1.ItemKind]bool{}
	if len(agr.Spec.Entitlements.Resources) > 0 {
		kinds[v1alpha1.ItemKindResource] = true
	}
	if len(agr.Spec.Entitlements.Goods) > 0 {
		kinds[v1alpha1.ItemKindGoods] = true
	}
	if len(agr.Spec.Entitlements.Actions) > 0 {
		kinds[v1alpha1.ItemKindAction] = true
	}
	return kinds
}

// setOfferingReady publishes whether an offering is Ready.
func setOfferingReady(offering string, ready bool) {
	v := 0.0
	if ready {
		v = 1
	}
	metricOfferingReady.WithLabelValues(offering).Set(v)
}

// forgetOffering drops the series of a deleted offering.
func forgetOffering(offering string) {
	metricOfferingReady.DeleteLabelValues(offering)
}
