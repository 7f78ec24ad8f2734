package controllers

import (
	"slices"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
)

// omitEvents returns rec without the Events whose reason is in omit: a
// recorder that drops them before they reach the API server. Each Event is
// one write; the routine ones say again what the status already records.
func omitEvents(rec recorder.EventRecorder, omit []string) recorder.EventRecorder {
	if len(omit) == 0 {
		return rec
	}
	return &omittingRecorder{next: rec, omit: slices.Clone(omit)}
}

type omittingRecorder struct {
	next recorder.EventRecorder
	omit []string
}

func (o *omittingRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	if slices.Contains(o.omit, reason) {
		return
	}
	o.next.Eventf(regarding, related, eventtype, reason, action, note, args...)
}

func (o *omittingRecorder) AnnotatedEventf(regarding, related runtime.Object, annotations map[string]string, eventtype, reason, action, note string, args ...any) {
	if slices.Contains(o.omit, reason) {
		return
	}
	o.next.AnnotatedEventf(regarding, related, annotations, eventtype, reason, action, note, args...)
}
