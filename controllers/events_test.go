package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

func TestOmitEventsDropsOnlyTheNamedReasons(t *testing.T) {
	fake := events.NewFakeRecorder(10)
	rec := omitEvents(fake, []string{"Granted"})
	cr := &v1alpha1.ConsumptionRequest{}
	rec.Eventf(cr, nil, corev1.EventTypeNormal, "Granted", "Grant", "access to namespace %s granted", "a")
	rec.AnnotatedEventf(cr, nil, map[string]string{"k": "v"}, corev1.EventTypeNormal, "Granted", "Grant", "granted")
	rec.Eventf(cr, nil, corev1.EventTypeNormal, "Revoked", "Revoke", "access to namespace %s revoked", "a")
	rec.AnnotatedEventf(cr, nil, map[string]string{"k": "v"}, corev1.EventTypeWarning, "AccessDenied", "Verify", "denied")
	close(fake.Events)
	var got []string
	for e := range fake.Events {
		got = append(got, e)
	}
	want := []string{"Normal Revoked access to namespace a revoked", "Warning AccessDenied denied"}
	if len(got) != len(want) {
		t.Fatalf("events = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestOmitEventsWithNothingToOmitIsTheRecorderItself(t *testing.T) {
	fake := events.NewFakeRecorder(1)
	if rec := omitEvents(fake, nil); rec != fake {
		t.Fatalf("omitEvents(rec, nil) wraps the recorder: %T", rec)
	}
}
