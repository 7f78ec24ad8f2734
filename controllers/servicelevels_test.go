package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func TestCompliance(t *testing.T) {
	cases := []struct {
		within, measured int32
		want             string
	}{
		{0, 0, ""},
		{1, 1, "100"},
		{0, 3, "0"},
		{39, 40, "97.5"},
		{2, 3, "66.66"}, // rounded down, never overstated
		{9999, 10000, "99.99"},
		{99999, 100000, "99.99"}, // 99.999 is not shown as 100
		{1, 7, "14.28"},
	}
	for _, tc := range cases {
		if got := compliance(tc.within, tc.measured); got != tc.want {
			t.Errorf("compliance(%d, %d) = %q, want %q", tc.within, tc.measured, got, tc.want)
		}
	}
}

func TestMeetsObjective(t *testing.T) {
	cases := []struct {
		within, measured int32
		objective        string
		want             bool
	}{
		{1, 1, "100", true},
		{99, 100, "100", false},
		{99, 100, "99", true},
		{98, 100, "99", false},
		{199, 200, "99.5", true}, // exactly on the objective
		{397, 400, "99.5", false},
		{999, 1000, "99.9", true},
		{99949, 100000, "99.95", false}, // compared exactly, not on the rounded figure
		{0, 5, "0.001", false},
		{1, 100000, "0.001", true},
		{5, 10, "not-a-number", false}, // unparsable objectives mean 100
	}
	for _, tc := range cases {
		if got := meetsObjective(tc.within, tc.measured, tc.objective); got != tc.want {
			t.Errorf("meetsObjective(%d, %d, %q) = %v, want %v", tc.within, tc.measured, tc.objective, got, tc.want)
		}
	}
}

func TestMeasureRequest(t *testing.T) {
	created := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := created.Add(d); return &t }
	cases := []struct {
		name     string
		in       slRequest
		now      time.Duration // since creation
		status   metav1.ConditionStatus
		reason   string
		breached []v1alpha1.ServiceLevelTarget
		next     time.Duration // 0: no requeue
		msg      string
	}{
		{name: "no targets", in: slRequest{open: true}, now: time.Hour},
		{name: "approved and fulfilled in time",
			in:  slRequest{approvalTarget: dur(time.Minute), fulfilmentTarget: dur(30 * time.Second), decidedAt: at(0), fulfilledAt: at(2 * time.Second)},
			now: time.Hour, status: metav1.ConditionTrue, reason: v1alpha1.ReasonTargetsMet, msg: "fulfilment took 2s (target 30s)"},
		{name: "fulfilled exactly on the target is within it",
			in:  slRequest{fulfilmentTarget: dur(30 * time.Second), decidedAt: at(0), fulfilledAt: at(30 * time.Second)},
			now: time.Hour, status: metav1.ConditionTrue, reason: v1alpha1.ReasonTargetsMet},
		{name: "fulfilled late",
			in:  slRequest{fulfilmentTarget: dur(30 * time.Second), decidedAt: at(0), fulfilledAt: at(45 * time.Second)},
			now: time.Hour, status: metav1.ConditionFalse, reason: v1alpha1.ReasonTargetBreached,
			breached: []v1alpha1.ServiceLevelTarget{v1alpha1.TargetFulfilment}, msg: "fulfilment took 45s (target 30s)"},
		{name: "open, on track, requeued for the deadline",
			in:  slRequest{fulfilmentTarget: dur(30 * time.Second), decidedAt: at(0), open: true},
			now: 10 * time.Second, status: metav1.ConditionTrue, reason: v1alpha1.ReasonOnTrack, next: 20 * time.Second,
			msg: "fulfilment due by 2026-06-01T12:00:30Z"},
		{name: "open past the target is already in breach",
			in:  slRequest{fulfilmentTarget: dur(30 * time.Second), decidedAt: at(0), open: true},
			now: 31 * time.Second, status: metav1.ConditionFalse, reason: v1alpha1.ReasonTargetBreached,
			breached: []v1alpha1.ServiceLevelTarget{v1alpha1.TargetFulfilment}},
		{name: "awaiting approval past the approval target, fulfilment still due",
			in:  slRequest{approvalTarget: dur(time.Minute), fulfilmentTarget: dur(time.Hour), open: true},
			now: 2 * time.Minute, status: metav1.ConditionFalse, reason: v1alpha1.ReasonTargetBreached,
			breached: []v1alpha1.ServiceLevelTarget{v1alpha1.TargetApproval}, msg: "approval not done 1m0s after the request"},
		{name: "approval and fulfilment both due: the nearest deadline wins",
			in:  slRequest{approvalTarget: dur(time.Minute), fulfilmentTarget: dur(time.Hour), open: true},
			now: 15 * time.Second, status: metav1.ConditionTrue, reason: v1alpha1.ReasonOnTrack, next: 45 * time.Second},
		{name: "denied by a provider in time: fulfilment does not apply",
			in:  slRequest{approvalTarget: dur(time.Hour), fulfilmentTarget: dur(time.Minute), decidedAt: at(10 * time.Minute), deniedByProvider: true},
			now: time.Hour, status: metav1.ConditionTrue, reason: v1alpha1.ReasonTargetsMet},
		{name: "denied with only a fulfilment target: not measured",
			in:  slRequest{fulfilmentTarget: dur(time.Hour), decidedAt: at(time.Minute), deniedByProvider: true},
			now: time.Hour},
		{name: "the provider's work failed before the deadline",
			in:  slRequest{fulfilmentTarget: dur(time.Hour), decidedAt: at(0), workFailed: true},
			now: time.Minute, status: metav1.ConditionFalse, reason: v1alpha1.ReasonTargetBreached,
			breached: []v1alpha1.ServiceLevelTarget{v1alpha1.TargetFulfilment}, msg: "fulfilment failed"},
		{name: "a breach is final: fulfilled later, still breached",
			in: slRequest{fulfilmentTarget: dur(30 * time.Second), decidedAt: at(0), fulfilledAt: at(40 * time.Second),
				prev: &v1alpha1.RequestServiceLevel{Breached: []v1alpha1.ServiceLevelTarget{v1alpha1.TargetFulfilment}}},
			now: time.Minute, status: metav1.ConditionFalse, reason: v1alpha1.ReasonTargetBreached,
			breached: []v1alpha1.ServiceLevelTarget{v1alpha1.TargetFulfilment}},
		{name: "ended unfulfilled (revoked) before the deadline: met what applied",
			in:  slRequest{approvalTarget: dur(time.Minute), fulfilmentTarget: dur(time.Hour), decidedAt: at(time.Second)},
			now: time.Minute, status: metav1.ConditionTrue, reason: v1alpha1.ReasonTargetsMet},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.created = created
			v := measureRequest(tc.in, created.Add(tc.now))
			if v.status != tc.status || v.reason != tc.reason {
				t.Fatalf("got %q/%q (%s), want %q/%q", v.status, v.reason, v.message, tc.status, tc.reason)
			}
			if tc.status == "" {
				if v.level != nil {
					t.Fatalf("unmeasured request got a level: %+v", v.level)
				}
				return
			}
			if got := joinTargets(v.level.Breached); got != joinTargets(tc.breached) {
				t.Errorf("breached = %q, want %q", got, joinTargets(tc.breached))
			}
			if len(tc.breached) > 0 && v.level.BreachedAt == nil {
				t.Error("breachedAt not set")
			}
			wantNext := tc.next
			if wantNext > 0 {
				wantNext += 10 * time.Millisecond
			}
			if v.next != wantNext {
				t.Errorf("next = %s, want %s", v.next, wantNext)
			}
			if !strings.Contains(v.message, tc.msg) {
				t.Errorf("message %q does not contain %q", v.message, tc.msg)
			}
		})
	}
}

// slRequestObj builds a request as the roll-up sees it: created at
// created+age-ago, with its WithinServiceLevel reason and level.
func slRequestObj(name string, created time.Time, reason string, lvl *v1alpha1.RequestServiceLevel) v1alpha1.ConsumptionRequest {
	cr := v1alpha1.ConsumptionRequest{}
	cr.Name = name
	cr.CreationTimestamp = metav1.NewTime(created)
	cr.Status.Item = "Resource/rack"
	if reason != "" {
		cr.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionWithinServiceLevel, Reason: reason,
			Status: map[bool]metav1.ConditionStatus{true: metav1.ConditionFalse, false: metav1.ConditionTrue}[reason == v1alpha1.ReasonTargetBreached]}}
	}
	cr.Status.ServiceLevel = lvl
	return cr
}

func TestRollupServiceLevels(t *testing.T) {
	now := time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)
	fulfil := &v1alpha1.RequestServiceLevel{FulfilmentTarget: dur(time.Minute)}
	breached := &v1alpha1.RequestServiceLevel{FulfilmentTarget: dur(time.Minute), Breached: []v1alpha1.ServiceLevelTarget{v1alpha1.TargetFulfilment}}
	agreement := func(objective string, window time.Duration) *v1alpha1.ServiceAgreement {
		agr := &v1alpha1.ServiceAgreement{}
		agr.Spec.ServiceLevels = &v1alpha1.ServiceLevels{ServiceLevelTargets: v1alpha1.ServiceLevelTargets{FulfilmentTime: dur(time.Minute)}, Objective: objective}
		if window > 0 {
			agr.Spec.ServiceLevels.Window = dur(window)
		}
		return agr
	}
	many := func(n int, reason string, lvl *v1alpha1.RequestServiceLevel, age time.Duration) []v1alpha1.ConsumptionRequest {
		out := make([]v1alpha1.ConsumptionRequest, n)
		for i := range out {
			out[i] = slRequestObj(uniqName(reason, i), now.Add(-age), reason, lvl)
		}
		return out
	}
	cat := func(lists ...[]v1alpha1.ConsumptionRequest) []v1alpha1.ConsumptionRequest {
		var out []v1alpha1.ConsumptionRequest
		for _, l := range lists {
			out = append(out, l...)
		}
		return out
	}
	cases := []struct {
		name                                    string
		agr                                     *v1alpha1.ServiceAgreement
		requests                                []v1alpha1.ConsumptionRequest
		measured, within, breachedN, open, risk int32
		compliance                              string
		status                                  metav1.ConditionStatus
		reason                                  string
	}{
		{name: "nothing measured", agr: agreement("99", 0), requests: many(2, v1alpha1.ReasonOnTrack, fulfil, 10*time.Second),
			open: 2, status: metav1.ConditionTrue, reason: v1alpha1.ReasonNoneMeasured},
		{name: "39 of 40 against 97.5", agr: agreement("97.5", 0),
			requests: cat(many(39, v1alpha1.ReasonTargetsMet, fulfil, time.Hour), many(1, v1alpha1.ReasonTargetBreached, breached, time.Hour)),
			measured: 40, within: 39, breachedN: 1, compliance: "97.5", status: metav1.ConditionTrue, reason: v1alpha1.ReasonObjectiveMet},
		{name: "39 of 40 against the default of 100", agr: agreement("", 0),
			requests: cat(many(39, v1alpha1.ReasonTargetsMet, fulfil, time.Hour), many(1, v1alpha1.ReasonTargetBreached, breached, time.Hour)),
			measured: 40, within: 39, breachedN: 1, compliance: "97.5", status: metav1.ConditionFalse, reason: v1alpha1.ReasonObjectiveMissed},
		{name: "requests older than the window drop out", agr: agreement("100", 24*time.Hour),
			requests: cat(many(3, v1alpha1.ReasonTargetsMet, fulfil, time.Hour), many(5, v1alpha1.ReasonTargetBreached, breached, 25*time.Hour)),
			measured: 3, within: 3, compliance: "100", status: metav1.ConditionTrue, reason: v1alpha1.ReasonObjectiveMet},
		{name: "the default window is 30 days", agr: agreement("100", 0),
			requests: cat(many(1, v1alpha1.ReasonTargetsMet, fulfil, 29*24*time.Hour), many(1, v1alpha1.ReasonTargetBreached, breached, 31*24*time.Hour)),
			measured: 1, within: 1, compliance: "100", status: metav1.ConditionTrue, reason: v1alpha1.ReasonObjectiveMet},
		{name: "open requests past half their target are at risk", agr: agreement("100", 0),
			requests: cat(many(2, v1alpha1.ReasonOnTrack, fulfil, 40*time.Second), many(3, v1alpha1.ReasonOnTrack, fulfil, 10*time.Second),
				many(1, v1alpha1.ReasonTargetsMet, fulfil, time.Minute)),
			measured: 1, within: 1, open: 5, risk: 2, compliance: "100", status: metav1.ConditionTrue, reason: v1alpha1.ReasonObjectiveMet},
		{name: "unmeasured requests are left out", agr: agreement("100", 0),
			requests: cat(many(4, "", nil, time.Minute), many(1, v1alpha1.ReasonTargetsMet, fulfil, time.Minute)),
			measured: 1, within: 1, compliance: "100", status: metav1.ConditionTrue, reason: v1alpha1.ReasonObjectiveMet},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := rollupServiceLevels(tc.agr, tc.requests, now)
			l := got.levels
			if l == nil {
				t.Fatal("no levels for an agreement with targets")
			}
			if l.Measured != tc.measured || l.WithinTarget != tc.within || l.Breached != tc.breachedN || l.Open != tc.open || l.AtRisk != tc.risk {
				t.Errorf("measured/within/breached/open/atRisk = %d/%d/%d/%d/%d, want %d/%d/%d/%d/%d",
					l.Measured, l.WithinTarget, l.Breached, l.Open, l.AtRisk, tc.measured, tc.within, tc.breachedN, tc.open, tc.risk)
			}
			if l.Compliance != tc.compliance {
				t.Errorf("compliance = %q, want %q", l.Compliance, tc.compliance)
			}
			if got.status != tc.status || got.reason != tc.reason {
				t.Errorf("condition = %s/%s (%s), want %s/%s", got.status, got.reason, got.message, tc.status, tc.reason)
			}
			if int(l.Breached) != len(l.RecentBreaches) && len(l.RecentBreaches) != maxRecentBreaches {
				t.Errorf("recentBreaches has %d entries for %d breached", len(l.RecentBreaches), l.Breached)
			}
			if got.next <= 0 && len(tc.requests) > 0 && l.Measured+l.Open > 0 {
				t.Error("no requeue although requests will leave the window")
			}
		})
	}

	t.Run("no targets, no record", func(t *testing.T) {
		if got := rollupServiceLevels(&v1alpha1.ServiceAgreement{}, many(3, "", nil, time.Minute), now); got.levels != nil {
			t.Fatalf("levels = %+v", got.levels)
		}
	})
	t.Run("plan targets only: the default objective and window", func(t *testing.T) {
		planned := &v1alpha1.RequestServiceLevel{FulfilmentTarget: dur(time.Minute), Plan: "small"}
		got := rollupServiceLevels(&v1alpha1.ServiceAgreement{}, cat(many(3, v1alpha1.ReasonTargetsMet, planned, time.Minute),
			many(1, v1alpha1.ReasonTargetBreached, breached, time.Minute)), now)
		l := got.levels
		if l == nil || l.Measured != 4 || l.Breached != 1 || l.Objective != "100" || l.Window.Duration != DefaultServiceLevelWindow ||
			got.reason != v1alpha1.ReasonObjectiveMissed {
			t.Fatalf("levels = %+v, %s", l, got.reason)
		}
	})
	t.Run("recent breaches are the newest ten, newest first", func(t *testing.T) {
		var reqs []v1alpha1.ConsumptionRequest
		for i := 0; i < 15; i++ {
			reqs = append(reqs, slRequestObj(uniqName("b", i), now.Add(-time.Duration(i+2)*time.Minute), v1alpha1.ReasonTargetBreached, breached))
		}
		l := rollupServiceLevels(agreement("100", 0), reqs, now).levels
		if len(l.RecentBreaches) != maxRecentBreaches || l.Breached != 15 {
			t.Fatalf("%d recent of %d breached", len(l.RecentBreaches), l.Breached)
		}
		if l.RecentBreaches[0].Request != "b-0" || l.RecentBreaches[9].Request != "b-9" {
			t.Fatalf("order: first %s, last %s", l.RecentBreaches[0].Request, l.RecentBreaches[9].Request)
		}
		if l.RecentBreaches[0].Target != v1alpha1.TargetFulfilment || l.RecentBreaches[0].Limit.Duration != time.Minute {
			t.Fatalf("record: %+v", l.RecentBreaches[0])
		}
	})
	t.Run("at-risk requeue is half-way to the target", func(t *testing.T) {
		got := rollupServiceLevels(agreement("100", 0), many(1, v1alpha1.ReasonOnTrack, fulfil, 10*time.Second), now)
		if got.next != 20*time.Second {
			t.Fatalf("next = %s, want 20s", got.next)
		}
	})
}

func TestRollupOfferingServiceLevels(t *testing.T) {
	agr := func(measured, within int32, met bool) v1alpha1.ServiceAgreement {
		a := v1alpha1.ServiceAgreement{}
		a.Status.ServiceLevels = &v1alpha1.AgreementServiceLevels{ServiceLevelCounts: v1alpha1.ServiceLevelCounts{Measured: measured, WithinTarget: within, Breached: measured - within}}
		a.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionServiceLevelsMet, Status: boolStatus(met)}}
		return a
	}
	got := rollupOfferingServiceLevels([]v1alpha1.ServiceAgreement{agr(10, 10, true), agr(10, 5, false), {}})
	if got.Agreements != 2 || got.AgreementsMissingObjective != 1 || got.Measured != 20 || got.WithinTarget != 15 || got.Compliance != "75" {
		t.Fatalf("offering roll-up = %+v", got)
	}
	if rollupOfferingServiceLevels([]v1alpha1.ServiceAgreement{{}}) != nil {
		t.Fatal("an offering without targets got a record")
	}
}

func TestUsageSummary(t *testing.T) {
	three := int32(3)
	got := usageSummary([]v1alpha1.EntitlementUsage{
		{Kind: v1alpha1.ItemKindResource, Item: "rack-space", Used: 2, Limit: &three},
		{Kind: v1alpha1.ItemKindGoods, Item: "cable", Used: 1},
	})
	if got != "Resource/rack-space 2/3, Goods/cable 1/-" {
		t.Fatalf("usageSummary = %q", got)
	}
}

func uniqName(prefix string, i int) string { return fmt.Sprintf("%s-%d", prefix, i) }
