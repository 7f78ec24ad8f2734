package controllers

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

func TestEvaluateLifecycle(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(d)} }
	ready := &v1alpha1.ServiceOffering{Status: v1alpha1.ServiceOfferingStatus{Conditions: []metav1.Condition{
		{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonValid}}}}
	notReady := &v1alpha1.ServiceOffering{Status: v1alpha1.ServiceOfferingStatus{Conditions: []metav1.Condition{
		{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonClusterRoleNotFound, Message: "ClusterRole x does not exist"}}}}
	deleting := metav1.NewTime(now)

	cases := []struct {
		name        string
		spec        v1alpha1.ServiceAgreementSpec
		off         *v1alpha1.ServiceOffering
		deleting    bool
		phase       v1alpha1.AgreementPhase
		reason      string
		requeue     time.Duration
		msgContains string
	}{
		{name: "active open-ended", off: ready, phase: v1alpha1.AgreementActive, reason: v1alpha1.ReasonActive},
		{name: "active until", spec: v1alpha1.ServiceAgreementSpec{ValidUntil: at(time.Hour)}, off: ready,
			phase: v1alpha1.AgreementActive, reason: v1alpha1.ReasonActive, requeue: time.Hour},
		{name: "not yet valid", spec: v1alpha1.ServiceAgreementSpec{ValidFrom: at(30 * time.Minute)}, off: ready,
			phase: v1alpha1.AgreementPending, reason: v1alpha1.ReasonNotYetValid, requeue: 30 * time.Minute},
		{name: "valid from now", spec: v1alpha1.ServiceAgreementSpec{ValidFrom: at(0)}, off: ready,
			phase: v1alpha1.AgreementActive, reason: v1alpha1.ReasonActive},
		{name: "expired exactly at validUntil", spec: v1alpha1.ServiceAgreementSpec{ValidUntil: at(0)}, off: ready,
			phase: v1alpha1.AgreementExpired, reason: v1alpha1.ReasonExpired},
		{name: "expired beats suspended", spec: v1alpha1.ServiceAgreementSpec{ValidUntil: at(-time.Second), Suspended: true}, off: ready,
			phase: v1alpha1.AgreementExpired, reason: v1alpha1.ReasonExpired},
		{name: "suspended requeues at expiry", spec: v1alpha1.ServiceAgreementSpec{Suspended: true, ValidUntil: at(2 * time.Hour)}, off: ready,
			phase: v1alpha1.AgreementSuspended, reason: v1alpha1.ReasonSuspended, requeue: 2 * time.Hour},
		{name: "offering missing", phase: v1alpha1.AgreementPending, reason: v1alpha1.ReasonOfferingNotFound},
		{name: "offering not ready", off: notReady, phase: v1alpha1.AgreementPending, reason: v1alpha1.ReasonOfferingNotReady,
			msgContains: "ClusterRole x does not exist"},
		{name: "terminating", off: ready, deleting: true, phase: v1alpha1.AgreementTerminating, reason: v1alpha1.ReasonTerminating},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			agr := &v1alpha1.ServiceAgreement{Spec: tc.spec}
			agr.Spec.Offering = "o"
			if tc.deleting {
				agr.DeletionTimestamp = &deleting
			}
			got := evaluateLifecycle(agr, tc.off, now)
			if got.Phase != tc.phase || got.Reason != tc.reason || got.RequeueAfter != tc.requeue {
				t.Errorf("got %s/%s requeue %s, want %s/%s requeue %s", got.Phase, got.Reason, got.RequeueAfter, tc.phase, tc.reason, tc.requeue)
			}
			if !strings.Contains(got.Message, tc.msgContains) {
				t.Errorf("message %q does not contain %q", got.Message, tc.msgContains)
			}
		})
	}
}
