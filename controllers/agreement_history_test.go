package controllers

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

func historyRequest(uid string, created time.Time) *v1alpha1.ConsumptionRequest {
	return &v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{UID: types.UID(uid), CreationTimestamp: metav1.NewTime(created)}}
}

// TestHistoryIsBoundedToTheWindow: verdicts add up per day of creation, days
// that ended before the window are dropped, and the recorded UIDs keep only
// the newest.
func TestHistoryIsBoundedToTheWindow(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	since := now.Add(-72 * time.Hour) // a window of three days
	var h *v1alpha1.ServiceLevelHistory
	h = addToHistory(h, historyRequest("a", now.Add(-100*time.Hour)), true, since.Add(-48*time.Hour))
	h = addToHistory(h, historyRequest("b", now.Add(-time.Hour)), false, since)
	h = addToHistory(h, historyRequest("c", now.Add(-2*time.Hour)), true, since)
	h = addToHistory(h, historyRequest("d", now.Add(-50*time.Hour)), true, since)
	want := []v1alpha1.ServiceLevelDay{
		{Day: "2026-12-01", ServiceLevelCounts: v1alpha1.ServiceLevelCounts{Measured: 1, WithinTarget: 1}},
		{Day: "2026-12-03", ServiceLevelCounts: v1alpha1.ServiceLevelCounts{Measured: 2, WithinTarget: 1, Breached: 1}},
	}
	if fmt.Sprint(h.Days) != fmt.Sprint(want) {
		t.Fatalf("days %+v, want %+v (the day of a, before the window, dropped)", h.Days, want)
	}
	for i := range maxRecorded {
		h = addToHistory(h, historyRequest(fmt.Sprint("u", i), now), true, since)
	}
	if len(h.Recorded) != maxRecorded || h.Recorded[0] != "u0" || h.Recorded[maxRecorded-1] != fmt.Sprint("u", maxRecorded-1) {
		t.Fatalf("recorded %d UIDs from %s to %s", len(h.Recorded), h.Recorded[0], h.Recorded[len(h.Recorded)-1])
	}

	out := slRollup{levels: &v1alpha1.AgreementServiceLevels{}}
	out.countHistory(h, 72*time.Hour, now)
	if l := out.levels; l.Measured != 3+maxRecorded || l.Breached != 1 {
		t.Fatalf("rolled up %+v", l)
	}
	// The day of d (2026-12-01, ending on the 2nd at midnight) leaves the
	// three-day window on the 5th at midnight, 36 hours from now.
	if wantNext := 36 * time.Hour; out.next != wantNext {
		t.Fatalf("next roll-up in %s, want %s", out.next, wantNext)
	}
}
