package controllers

import (
	"slices"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
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

// The related objects of a request's Events, so that `kubectl describe` and
// `kubectl get events` lead from the request to what it is about: the
// namespace it was granted, the Job that ran its action, or its agreement.
// They are references by name (the recorder takes the kind from the scheme):
// building one reads nothing.

// relatedAgreement is the request's agreement.
func relatedAgreement(cr *v1alpha1.ConsumptionRequest, s *requestState) runtime.Object {
	if s != nil && s.agreement != nil {
		return s.agreement
	}
	return &v1alpha1.ServiceAgreement{ObjectMeta: metav1.ObjectMeta{Namespace: cr.Namespace, Name: string(cr.Spec.Agreement)}}
}

// relatedNamespace is the namespace name, granted to the request.
func relatedNamespace(name string) runtime.Object {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// relatedActionRun is the Job of an automated action run ("namespace/name"),
// or the agreement for a manual one.
func relatedActionRun(cr *v1alpha1.ConsumptionRequest, s *requestState) runtime.Object {
	if run := s.status.Action; run != nil {
		if ns, name, ok := strings.Cut(run.Job, "/"); ok {
			return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		}
	}
	return relatedAgreement(cr, s)
}

// relatedGrant is the namespace the request was granted, or its agreement.
func relatedGrant(cr *v1alpha1.ConsumptionRequest, s *requestState) runtime.Object {
	if g := cr.Status.Grant; g != nil && g.Namespace != "" {
		return relatedNamespace(g.Namespace)
	}
	return relatedAgreement(cr, s)
}
