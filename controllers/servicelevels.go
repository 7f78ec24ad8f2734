package controllers

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Service levels: how requests measure against their agreement's targets, and
// how an agreement and an offering roll the requests up. Every function here
// is pure and takes the time as an argument, so that the arithmetic is tested
// with any clock (servicelevels_test.go).

// DefaultServiceLevelWindow is the window compliance is measured over when an
// agreement does not set spec.serviceLevels.window.
const DefaultServiceLevelWindow = 30 * 24 * time.Hour

// maxRecentBreaches bounds status.serviceLevels.recentBreaches.
const maxRecentBreaches = 10

// slTargets are the targets of an agreement, or nil when it sets none.
func slTargets(agr *v1alpha1.ServiceAgreement) (approval, fulfilment *metav1.Duration) {
	if agr == nil || agr.Spec.ServiceLevels == nil {
		return nil, nil
	}
	return agr.Spec.ServiceLevels.ApprovalTime, agr.Spec.ServiceLevels.FulfilmentTime
}

// requestTargets are the targets a request under plan is measured against:
// the agreement's own where it sets them, the plan's defaults where it sets
// none. from names the plan when one of the targets is its default.
func requestTargets(agr *v1alpha1.ServiceAgreement, plan *v1alpha1.Plan) (approval, fulfilment *metav1.Duration, from v1alpha1.PlanName) {
	approval, fulfilment = slTargets(agr)
	if plan == nil || plan.ServiceLevels == nil {
		return approval, fulfilment, ""
	}
	if approval == nil && plan.ServiceLevels.ApprovalTime != nil {
		approval, from = plan.ServiceLevels.ApprovalTime, plan.Name
	}
	if fulfilment == nil && plan.ServiceLevels.FulfilmentTime != nil {
		fulfilment, from = plan.ServiceLevels.FulfilmentTime, plan.Name
	}
	return approval, fulfilment, from
}

// slRequest is what the measurement of one request depends on.
type slRequest struct {
	created time.Time
	// approvalTarget and fulfilmentTarget are nil when not set.
	approvalTarget, fulfilmentTarget *metav1.Duration
	// decidedAt is when a decision was made: approved, or denied by a provider.
	decidedAt *time.Time
	// deniedByProvider: the decision was no, so fulfilment does not apply.
	deniedByProvider bool
	// fulfilledAt is when the request was first fulfilled.
	fulfilledAt *time.Time
	// open: the request still waits for something (see isOpen).
	open bool
	// workFailed: the provider's work ran and failed (an action's Job failed,
	// or a provider marked a manual action failed).
	workFailed bool
	// prev is the previous measurement; breaches are final.
	prev *v1alpha1.RequestServiceLevel
}

// slVerdict is the measurement of one request at a time.
type slVerdict struct {
	level *v1alpha1.RequestServiceLevel
	// status, reason and message of WithinServiceLevel; status is "" when the
	// condition does not apply (no target applies to the request).
	status  metav1.ConditionStatus
	reason  string
	message string
	// next is the time until the verdict changes by itself (a target falls
	// due); zero when it will not.
	next time.Duration
}

// measureRequest compares a request's durations with its targets at time now.
// A request open past a target has already missed it. A breach is final: a
// request that later completes keeps it.
func measureRequest(in slRequest, now time.Time) slVerdict {
	m := &measurement{in: in, now: now, breached: map[v1alpha1.ServiceLevelTarget]bool{},
		level: &v1alpha1.RequestServiceLevel{ApprovalTarget: in.approvalTarget, FulfilmentTarget: in.fulfilmentTarget}}
	if in.prev != nil {
		for _, t := range in.prev.Breached {
			m.breached[t] = true
		}
		m.level.BreachedAt = in.prev.BreachedAt
	}
	if in.decidedAt != nil {
		m.level.ApprovalDuration = &metav1.Duration{Duration: in.decidedAt.Sub(in.created)}
	}
	m.measure(v1alpha1.TargetApproval, in.approvalTarget, in.decidedAt, "approval", true, false)
	m.measure(v1alpha1.TargetFulfilment, in.fulfilmentTarget, in.fulfilledAt, "fulfilment", !in.deniedByProvider, in.workFailed && in.fulfilledAt == nil)
	if !m.applies {
		return slVerdict{}
	}
	return m.verdict()
}

// measurement is the state of one measureRequest.
type measurement struct {
	in       slRequest
	now      time.Time
	level    *v1alpha1.RequestServiceLevel
	breached map[v1alpha1.ServiceLevelTarget]bool
	parts    []string
	applies  bool // a target applies to the request
	pending  bool // a target is not due yet
	next     time.Duration
}

func (m *measurement) breach(t v1alpha1.ServiceLevelTarget, at time.Time) {
	m.breached[t] = true
	if m.level.BreachedAt == nil || at.Before(m.level.BreachedAt.Time) {
		mt := metav1.NewTime(at)
		m.level.BreachedAt = &mt
	}
}

func (m *measurement) say(format string, args ...any) {
	m.parts = append(m.parts, fmt.Sprintf(format, args...))
}

// measure compares one target. done is when it was met, nil while it is not;
// applicable is false when the target does not apply (fulfilment of a
// denied request); failed is true when the provider's work failed.
func (m *measurement) measure(t v1alpha1.ServiceLevelTarget, target *metav1.Duration, done *time.Time, verb string, applicable, failed bool) {
	if target == nil || (!applicable && !m.breached[t]) {
		return
	}
	m.applies = true
	limit := target.Duration
	deadline := m.in.created.Add(limit)
	switch {
	case done != nil:
		took := done.Sub(m.in.created)
		if took > limit {
			m.breach(t, deadline)
		}
		m.say("%s took %s (target %s)", verb, shortDuration(took), shortDuration(limit))
	case failed:
		m.breach(t, minTime(deadline, m.now))
		m.say("%s failed (target %s)", verb, shortDuration(limit))
	case !m.breached[t] && !m.in.open:
		// Ended without it (for example revoked before fulfilment): nothing to measure.
		m.say("%s not done (target %s)", verb, shortDuration(limit))
	case !m.breached[t] && m.now.Before(deadline):
		m.pending = true
		if d := deadline.Sub(m.now); m.next == 0 || d < m.next {
			m.next = d
		}
		m.say("%s due by %s (target %s)", verb, deadline.UTC().Format(time.RFC3339), shortDuration(limit))
	default:
		m.breach(t, deadline)
		m.say("%s not done %s after the request (target %s)", verb, shortDuration(limit), shortDuration(limit))
	}
}

func (m *measurement) verdict() slVerdict {
	v := slVerdict{level: m.level}
	for _, t := range []v1alpha1.ServiceLevelTarget{v1alpha1.TargetApproval, v1alpha1.TargetFulfilment} {
		if m.breached[t] {
			m.level.Breached = append(m.level.Breached, t)
		}
	}
	msg := strings.Join(m.parts, "; ")
	switch {
	case len(m.level.Breached) > 0:
		v.status, v.reason = metav1.ConditionFalse, v1alpha1.ReasonTargetBreached
		v.message = fmt.Sprintf("missed the %s target: %s", strings.ToLower(joinTargets(m.level.Breached)), msg)
	case m.pending:
		v.status, v.reason, v.message = metav1.ConditionTrue, v1alpha1.ReasonOnTrack, msg
		// Wake just after the deadline, so that the request is past it then.
		v.next = m.next + 10*time.Millisecond
	default:
		v.status, v.reason, v.message = metav1.ConditionTrue, v1alpha1.ReasonTargetsMet, msg
	}
	return v
}

func joinTargets(ts []v1alpha1.ServiceLevelTarget) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, " and ")
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// shortDuration prints d rounded to what a person reads: milliseconds below a
// second, tenths of a second below a minute, seconds above.
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// slInput gathers from a request's status what its measurement depends on.
// measured is false for requests that are not measured: refused at admission,
// or failed on their own input before any work ran.
func slInput(cr *v1alpha1.ConsumptionRequest, st *v1alpha1.ConsumptionRequestStatus, approval, fulfilment *metav1.Duration) (in slRequest, measured bool) {
	in = slRequest{
		created: cr.CreationTimestamp.Time, approvalTarget: approval, fulfilmentTarget: fulfilment,
		open: isOpen(st.Phase), prev: st.ServiceLevel,
	}
	if d := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionDenied); d != nil && d.Status == metav1.ConditionTrue {
		if isAdmissionReason(d.Reason) {
			return in, false
		}
		t := d.LastTransitionTime.Time
		in.decidedAt, in.deniedByProvider = &t, true
	}
	if st.ApprovedAt != nil {
		t := st.ApprovedAt.Time
		in.decidedAt = &t
	}
	if st.FulfilledAt != nil {
		t := st.FulfilledAt.Time
		in.fulfilledAt = &t
	}
	if st.Phase == v1alpha1.RequestFailed {
		if st.Action == nil {
			// Failed on its own input (refused parameters, a namespace in the way): not the provider's doing.
			return in, false
		}
		in.workFailed = true
	}
	return in, true
}

// slRollup is an agreement's service-level record at a time.
type slRollup struct {
	levels  *v1alpha1.AgreementServiceLevels
	status  metav1.ConditionStatus
	reason  string
	message string
	// next is the time until the record changes by itself (a request becomes
	// at risk or leaves the window); zero when it will not.
	next time.Duration
	// breachedRequests names the requests in breach, for metrics and reports.
	breachedRequests []string
}

// rollupServiceLevels measures an agreement over its window from the
// requests' own measurements and the history of deleted ones. It returns a
// zero slRollup when neither the agreement nor a request's plan sets targets.
// Requests measured against plan defaults only are judged with the default
// objective and window.
func rollupServiceLevels(agr *v1alpha1.ServiceAgreement, requests []v1alpha1.ConsumptionRequest, now time.Time) slRollup {
	if !hasServiceLevels(agr, requests) {
		return slRollup{}
	}
	window := slWindow(agr)
	objective := "100"
	if sl := agr.Spec.ServiceLevels; sl != nil && sl.Objective != "" {
		objective = sl.Objective
	}
	out := slRollup{levels: &v1alpha1.AgreementServiceLevels{Window: &metav1.Duration{Duration: window}, Objective: objective}}
	var breaches []v1alpha1.ServiceLevelBreach
	for i := range requests {
		cr := &requests[i]
		created := cr.CreationTimestamp.Time
		if created.Add(window).Before(now) || !cr.DeletionTimestamp.IsZero() {
			continue
		}
		c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionWithinServiceLevel)
		if c == nil || cr.Status.ServiceLevel == nil {
			continue
		}
		out.wakeIn(created.Add(window).Sub(now) + time.Second)
		breaches = append(breaches, out.count(cr, c.Reason, now)...)
	}
	// Requests deleted since were moved into the history (agreement_history.go).
	out.countHistory(agr.Status.ServiceLevelHistory, window, now)
	out.levels.RecentBreaches = newestBreaches(breaches)
	sort.Strings(out.breachedRequests)
	out.levels.Compliance = compliance(out.levels.WithinTarget, out.levels.Measured)
	out.judge(window)
	return out
}

// hasServiceLevels reports whether an agreement has a service-level record:
// it sets targets, a request under it was measured against its plan's, or
// deleted ones were.
func hasServiceLevels(agr *v1alpha1.ServiceAgreement, requests []v1alpha1.ConsumptionRequest) bool {
	if a, f := slTargets(agr); a != nil || f != nil || agr.Status.ServiceLevelHistory != nil {
		return true
	}
	return slices.ContainsFunc(requests, func(cr v1alpha1.ConsumptionRequest) bool { return cr.Status.ServiceLevel != nil })
}

// wakeIn brings the next roll-up forward to d from now.
func (out *slRollup) wakeIn(d time.Duration) {
	if d > 0 && (out.next == 0 || d < out.next) {
		out.next = d
	}
}

// count adds one request, with its WithinServiceLevel reason, to the record
// and returns its breaches.
func (out *slRollup) count(cr *v1alpha1.ConsumptionRequest, reason string, now time.Time) []v1alpha1.ServiceLevelBreach {
	levels := out.levels
	switch reason {
	case v1alpha1.ReasonTargetsMet:
		levels.Count(true)
	case v1alpha1.ReasonTargetBreached:
		levels.Count(false)
		out.breachedRequests = append(out.breachedRequests, cr.Name)
		return breachRecords(cr, cr.Status.ServiceLevel)
	case v1alpha1.ReasonOnTrack:
		levels.Open++
		if at, ok := atRiskFrom(cr, cr.Status.ServiceLevel); ok {
			if now.Before(at) {
				out.wakeIn(at.Sub(now))
			} else {
				levels.AtRisk++
			}
		}
	}
	return nil
}

// judge sets ServiceLevelsMet from the counts.
func (out *slRollup) judge(window time.Duration) {
	levels, objective := out.levels, out.levels.Objective
	scope := fmt.Sprintf("in the last %s", shortDuration(window))
	switch {
	case levels.Measured == 0:
		out.status, out.reason = metav1.ConditionTrue, v1alpha1.ReasonNoneMeasured
		out.message = fmt.Sprintf("no request %s has a verdict yet (%d open, %d at risk); objective %s%%", scope, levels.Open, levels.AtRisk, objective)
	case meetsObjective(levels.WithinTarget, levels.Measured, objective):
		out.status, out.reason = metav1.ConditionTrue, v1alpha1.ReasonObjectiveMet
		out.message = fmt.Sprintf("%s%% of %d request(s) %s met their targets (objective %s%%); %d breached, %d open, %d at risk",
			levels.Compliance, levels.Measured, scope, objective, levels.Breached, levels.Open, levels.AtRisk)
	default:
		out.status, out.reason = metav1.ConditionFalse, v1alpha1.ReasonObjectiveMissed
		out.message = fmt.Sprintf("%s%% of %d request(s) %s met their targets, below the objective of %s%%; breached: %s",
			levels.Compliance, levels.Measured, scope, objective, nameList(out.breachedRequests, 5))
	}
}

// newestBreaches orders breaches newest first and keeps the first ten.
func newestBreaches(breaches []v1alpha1.ServiceLevelBreach) []v1alpha1.ServiceLevelBreach {
	sort.Slice(breaches, func(i, j int) bool {
		if !breaches[i].BreachedAt.Equal(&breaches[j].BreachedAt) {
			return breaches[j].BreachedAt.Before(&breaches[i].BreachedAt)
		}
		if breaches[i].Request != breaches[j].Request {
			return breaches[i].Request < breaches[j].Request
		}
		return breaches[i].Target < breaches[j].Target
	})
	if len(breaches) > maxRecentBreaches {
		breaches = breaches[:maxRecentBreaches]
	}
	return breaches
}

// breachRecords lists the targets a request missed.
func breachRecords(cr *v1alpha1.ConsumptionRequest, lvl *v1alpha1.RequestServiceLevel) []v1alpha1.ServiceLevelBreach {
	var out []v1alpha1.ServiceLevelBreach
	for _, t := range lvl.Breached {
		var limit, took *metav1.Duration
		switch t {
		case v1alpha1.TargetApproval:
			limit, took = lvl.ApprovalTarget, lvl.ApprovalDuration
		case v1alpha1.TargetFulfilment:
			limit, took = lvl.FulfilmentTarget, cr.Status.FulfilmentDuration
		}
		if limit == nil {
			continue
		}
		at := metav1.NewTime(cr.CreationTimestamp.Add(limit.Duration))
		if t == v1alpha1.TargetFulfilment && took == nil && lvl.BreachedAt != nil && lvl.BreachedAt.Before(&at) {
			at = *lvl.BreachedAt // failed before its deadline
		}
		out = append(out, v1alpha1.ServiceLevelBreach{
			Request: cr.Name, Item: cr.Status.Item, Target: t, Limit: *limit, BreachedAt: at, Took: took,
		})
	}
	return out
}

// atRiskFrom is when an open request becomes at risk: half-way to the
// earliest target it has not met yet.
func atRiskFrom(cr *v1alpha1.ConsumptionRequest, lvl *v1alpha1.RequestServiceLevel) (time.Time, bool) {
	var limits []time.Duration
	if lvl.ApprovalTarget != nil && lvl.ApprovalDuration == nil {
		limits = append(limits, lvl.ApprovalTarget.Duration)
	}
	if lvl.FulfilmentTarget != nil && cr.Status.FulfilledAt == nil {
		limits = append(limits, lvl.FulfilmentTarget.Duration)
	}
	if len(limits) == 0 {
		return time.Time{}, false
	}
	sort.Slice(limits, func(i, j int) bool { return limits[i] < limits[j] })
	return cr.CreationTimestamp.Add(limits[0] / 2), true
}

// compliance is within/measured as a percentage rounded down to two decimals,
// so that it never overstates; "" when nothing was measured.
func compliance(within, measured int32) string {
	if measured <= 0 {
		return ""
	}
	hundredths := int64(within) * 10000 / int64(measured)
	return strconv.FormatFloat(float64(hundredths)/100, 'f', -1, 64)
}

// meetsObjective reports whether within/measured is at least the objective
// percentage, compared exactly (not on the rounded compliance).
func meetsObjective(within, measured int32, objective string) bool {
	obj, ok := objectiveRatio(objective)
	if !ok {
		obj = 1
	}
	obj *= 100
	// Objectives have at most three decimals: compare in thousandths of a percent.
	return int64(within)*100000 >= int64(math.Round(obj*1000))*int64(measured)
}

// nameList prints up to n names and how many more there are.
func nameList(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}

// rollupOfferingServiceLevels sums the service levels of an offering's agreements.
func rollupOfferingServiceLevels(agreements []v1alpha1.ServiceAgreement) *v1alpha1.OfferingServiceLevels {
	var out v1alpha1.OfferingServiceLevels
	for i := range agreements {
		sl := agreements[i].Status.ServiceLevels
		if sl == nil {
			continue
		}
		out.Agreements++
		if c := meta.FindStatusCondition(agreements[i].Status.Conditions, v1alpha1.ConditionServiceLevelsMet); c != nil && c.Status == metav1.ConditionFalse {
			out.AgreementsMissingObjective++
		}
		out.Add(sl.ServiceLevelCounts)
		out.AtRisk += sl.AtRisk
	}
	if out.Agreements == 0 {
		return nil
	}
	out.Compliance = compliance(out.WithinTarget, out.Measured)
	return &out
}

// usageSummary prints an agreement's usage in one line: "Resource/rack-space 2/3, Goods/cable 1/-".
func usageSummary(usage []v1alpha1.EntitlementUsage) string {
	parts := make([]string, 0, len(usage))
	for _, u := range usage {
		limit := "-"
		if u.Limit != nil {
			limit = strconv.Itoa(int(*u.Limit))
		}
		if u.Period != nil {
			limit += " per " + strings.TrimSuffix(strings.TrimSuffix(shortDuration(u.Period.Duration), "0s"), "0m")
		}
		parts = append(parts, fmt.Sprintf("%s/%s %d/%s", u.Kind, u.Item, u.Used, limit))
	}
	return truncate(strings.Join(parts, ", "), 1024)
}

// objectiveRatio is an objective percentage as a ratio from 0 to 1.
func objectiveRatio(objective string) (float64, bool) {
	obj, err := strconv.ParseFloat(objective, 64)
	if err != nil || math.IsNaN(obj) {
		return 0, false
	}
	return obj / 100, true
}
