package controllers

import (
	"context"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Service-level history: a relationship outlives its requests. When a
// measured request is deleted, its verdict moves into the agreement's
// status.serviceLevelHistory (per day of the request's creation, bounded to
// the window), and the roll-up counts it there instead of from the request.
// Compliance over the window then does not change when requests are pruned.

// maxRecorded bounds status.serviceLevelHistory.recorded.
const maxRecorded = 256

// dayLayout is how a day of the history is written.
const dayLayout = "2006-01-02"

// slWindow is the window an agreement measures compliance over.
func slWindow(agr *v1alpha1.ServiceAgreement) time.Duration {
	if sl := agr.Spec.ServiceLevels; sl != nil && sl.Window != nil && sl.Window.Duration > 0 {
		return sl.Window.Duration
	}
	return DefaultServiceLevelWindow
}

// finalVerdict is the verdict of a request that has one: within reports
// whether it met every target. ok is false for a request without a verdict
// (open, or never measured).
func finalVerdict(cr *v1alpha1.ConsumptionRequest) (within, ok bool) {
	c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionWithinServiceLevel)
	if c == nil || cr.Status.ServiceLevel == nil {
		return false, false
	}
	switch c.Reason {
	case v1alpha1.ReasonTargetsMet:
		return true, true
	case v1alpha1.ReasonTargetBreached:
		return false, true
	}
	return false, false
}

// recordServiceLevel adds the verdict of cr, being deleted, to its
// agreement's service-level history, once: the UIDs of the last requests
// recorded are kept with it. Requests without a verdict (measured neither
// against the agreement's targets nor against their plan's), outside the
// window, or whose agreement is gone are not recorded.
func (r *RequestReconciler) recordServiceLevel(ctx context.Context, cr *v1alpha1.ConsumptionRequest) error {
	within, ok := finalVerdict(cr)
	if !ok {
		return nil
	}
	var agr v1alpha1.ServiceAgreement
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: cr.Namespace, Name: string(cr.Spec.Agreement)}, &agr); err != nil {
		return client.IgnoreNotFound(err)
	}
	now := r.Options.Clock.Now()
	if cr.CreationTimestamp.Add(slWindow(&agr)).Before(now) {
		return nil
	}
	if h := agr.Status.ServiceLevelHistory; h != nil && slices.Contains(h.Recorded, string(cr.UID)) {
		return nil
	}
	patch := client.MergeFromWithOptions(agr.DeepCopy(), client.MergeFromWithOptimisticLock{})
	agr.Status.ServiceLevelHistory = addToHistory(agr.Status.ServiceLevelHistory, cr, within, now.Add(-slWindow(&agr)))
	return r.Status().Patch(ctx, &agr, patch)
}

// addToHistory returns h with the verdict of cr added to the day it was
// created on, cr's UID recorded, and the days that ended before since dropped.
func addToHistory(h *v1alpha1.ServiceLevelHistory, cr *v1alpha1.ConsumptionRequest, within bool, since time.Time) *v1alpha1.ServiceLevelHistory {
	out := &v1alpha1.ServiceLevelHistory{}
	if h != nil {
		out = h.DeepCopy()
	}
	day := cr.CreationTimestamp.UTC().Format(dayLayout)
	out.Days = slices.DeleteFunc(out.Days, func(d v1alpha1.ServiceLevelDay) bool { return !dayInWindow(d.Day, since) })
	i := slices.IndexFunc(out.Days, func(d v1alpha1.ServiceLevelDay) bool { return d.Day == day })
	if i < 0 {
		out.Days = append(out.Days, v1alpha1.ServiceLevelDay{Day: day})
		slices.SortFunc(out.Days, func(a, b v1alpha1.ServiceLevelDay) int { return strings.Compare(a.Day, b.Day) })
		i = slices.IndexFunc(out.Days, func(d v1alpha1.ServiceLevelDay) bool { return d.Day == day })
	}
	out.Days[i].Count(within)
	out.Recorded = append(out.Recorded, string(cr.UID))
	if n := len(out.Recorded); n > maxRecorded {
		out.Recorded = out.Recorded[n-maxRecorded:]
	}
	return out
}

// dayInWindow reports whether the day (YYYY-MM-DD, UTC) ends after since:
// its requests may have been created within the window. A day that cannot
// be read is dropped.
func dayInWindow(day string, since time.Time) bool {
	t, err := time.Parse(dayLayout, day)
	return err == nil && t.Add(24*time.Hour).After(since)
}

// countHistory adds the history's days within the window to the roll-up,
// and wakes it when the oldest of them leaves the window.
func (out *slRollup) countHistory(h *v1alpha1.ServiceLevelHistory, window time.Duration, now time.Time) {
	if h == nil {
		return
	}
	for _, d := range h.Days {
		if !dayInWindow(d.Day, now.Add(-window)) {
			continue
		}
		t, _ := time.Parse(dayLayout, d.Day)
		out.wakeIn(t.Add(24*time.Hour + window).Sub(now))
		out.levels.Add(d.ServiceLevelCounts)
	}
}
