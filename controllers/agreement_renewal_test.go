package controllers

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

func TestAgreementEnd(t *testing.T) {
	until := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	cases := []struct {
		name      string
		autoRenew time.Duration
		now       time.Time
		end       time.Time
		renewals  int32
	}{
		{name: "before the end", now: until.Add(-time.Hour), end: until},
		{name: "at the end without autoRenew", now: until, end: until},
		{name: "auto-renewal before the end", autoRenew: day, now: until.Add(-time.Second), end: until},
		{name: "auto-renewed at the very end", autoRenew: day, now: until, end: until.Add(day), renewals: 1},
		{name: "auto-renewed within the first period", autoRenew: day, now: until.Add(23 * time.Hour), end: until.Add(day), renewals: 1},
		{name: "auto-renewed three times", autoRenew: day, now: until.Add(2*day + time.Minute), end: until.Add(3 * day), renewals: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			agr := &v1alpha1.ServiceAgreement{Spec: v1alpha1.ServiceAgreementSpec{ValidUntil: &metav1.Time{Time: until}}}
			if tc.autoRenew > 0 {
				agr.Spec.AutoRenew = &metav1.Duration{Duration: tc.autoRenew}
			}
			end, renewals := agreementEnd(agr, tc.now)
			if end == nil || !end.Equal(tc.end) || renewals != tc.renewals {
				t.Errorf("end %v renewals %d, want %v and %d", end, renewals, tc.end, tc.renewals)
			}
			if got := agreementTerms(agr, tc.now) == v1alpha1.AgreementExpired; got != !tc.now.Before(tc.end) {
				t.Errorf("expired = %v at %v with end %v", got, tc.now, tc.end)
			}
		})
	}
	// An end centuries back (beyond what a time.Duration holds) still renews to the first end after now.
	ancient := &v1alpha1.ServiceAgreement{Spec: v1alpha1.ServiceAgreementSpec{ValidUntil: &metav1.Time{Time: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)},
		AutoRenew: &metav1.Duration{Duration: time.Hour}}}
	if end, renewals := agreementEnd(ancient, until); end == nil || !end.After(until) || end.Sub(until) > time.Hour || int64(renewals) != (until.Unix()-ancient.Spec.ValidUntil.Unix())/3600+1 {
		t.Errorf("an end in year 1 renewed hourly: %v after %d renewals, want within the hour after %v", end, renewals, until)
	}
	if end, _ := agreementEnd(&v1alpha1.ServiceAgreement{}, until); end != nil {
		t.Errorf("an open-ended agreement ends at %v", end)
	}
}

func TestEvaluateNotice(t *testing.T) {
	until := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	notice := &metav1.Duration{Duration: 720 * time.Hour}
	cases := []struct {
		name        string
		spec        v1alpha1.ServiceAgreementSpec
		now         time.Time
		want        bool // the condition is set
		due         bool
		reason      string
		opensIn     time.Duration
		msgContains string
	}{
		{name: "no renewBefore", spec: v1alpha1.ServiceAgreementSpec{ValidUntil: &metav1.Time{Time: until}}, now: until.Add(-time.Hour)},
		{name: "before the window", spec: v1alpha1.ServiceAgreementSpec{ValidUntil: &metav1.Time{Time: until}, RenewBefore: notice},
			now: until.Add(-740 * time.Hour), want: true, reason: v1alpha1.ReasonNotDue, opensIn: 20 * time.Hour, msgContains: "2026-05-02T12:00:00Z"},
		{name: "the window opens", spec: v1alpha1.ServiceAgreementSpec{ValidUntil: &metav1.Time{Time: until}, RenewBefore: notice},
			now: until.Add(-720 * time.Hour), want: true, due: true, reason: v1alpha1.ReasonRenewalDue, msgContains: "extend spec.validUntil"},
		{name: "within the window", spec: v1alpha1.ServiceAgreementSpec{ValidUntil: &metav1.Time{Time: until}, RenewBefore: notice},
			now: until.Add(-time.Hour), want: true, due: true, reason: v1alpha1.ReasonRenewalDue, msgContains: "expires at 2026-06-01T12:00:00Z (in 1h0m0s)"},
		{name: "expired", spec: v1alpha1.ServiceAgreementSpec{ValidUntil: &metav1.Time{Time: until}, RenewBefore: notice},
			now: until, want: true, reason: v1alpha1.ReasonExpired},
		{name: "auto-renewing", spec: v1alpha1.ServiceAgreementSpec{ValidUntil: &metav1.Time{Time: until}, RenewBefore: notice,
			AutoRenew: &metav1.Duration{Duration: 8760 * time.Hour}}, now: until.Add(-time.Hour), want: true, reason: v1alpha1.ReasonAutoRenews},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := evaluateNotice(&v1alpha1.ServiceAgreement{Spec: tc.spec}, tc.now)
			if n.set != tc.want || n.due != tc.due || n.reason != tc.reason || n.opensIn != tc.opensIn {
				t.Errorf("got set=%v due=%v %s opens in %s, want set=%v due=%v %s opens in %s",
					n.set, n.due, n.reason, n.opensIn, tc.want, tc.due, tc.reason, tc.opensIn)
			}
			if !strings.Contains(n.message, tc.msgContains) {
				t.Errorf("message %q does not contain %q", n.message, tc.msgContains)
			}
		})
	}
}

func TestSoonest(t *testing.T) {
	if got := soonest(0, 3*time.Second, time.Second, -time.Second); got != time.Second {
		t.Errorf("soonest = %s", got)
	}
	if got := soonest(0, 0); got != 0 {
		t.Errorf("soonest of nothing = %s", got)
	}
}
