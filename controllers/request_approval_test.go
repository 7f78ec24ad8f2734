package controllers

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

func TestManualApproval(t *testing.T) {
	f := newFixture(t, withManualApproval())
	cr := f.resourceRequest("needs-approval")
	mustCreate(t, cr)
	waitPhase(t, cr, v1alpha1.RequestAwaitingApproval)

	// The operator never approves a manual request by itself.
	consistently(t, time.Second, "request stays unapproved", func() error {
		get(t, cr)
		if cr.Status.Phase != v1alpha1.RequestAwaitingApproval || cr.Status.Grant != nil {
			return fmt.Errorf("phase %s grant %+v", cr.Status.Phase, cr.Status.Grant)
		}
		return nil
	})

	approvedCond := metav1.Condition{Type: v1alpha1.ConditionApproved, Status: metav1.ConditionTrue,
		Reason: "ApprovedByProvider", Message: "ticket OPS-1", LastTransitionTime: metav1.Now()}

	// A consumer cannot approve: it may not write status.
	consumer := userClient(t, consumerUser)
	bad := cr.DeepCopy()
	bad.Status.Conditions = append(bad.Status.Conditions, approvedCond)
	if err := consumer.Status().Update(testCtx, bad); !apierrors.IsForbidden(err) {
		t.Fatalf("consumer approving: got %v, want Forbidden", err)
	}
	// A consumer can create requests, but not edit the agreement.
	get(t, f.agreement)
	agr := f.agreement.DeepCopy()
	agr.Spec.ApprovalPolicy = v1alpha1.ApprovalAutomatic
	if err := consumer.Update(testCtx, agr); !apierrors.IsForbidden(err) {
		t.Fatalf("consumer editing agreement: got %v, want Forbidden", err)
	}

	// An approver approves through the status subresource.
	approver := userClient(t, approverUser)
	get(t, cr)
	patch := client.MergeFromWithOptions(cr.DeepCopy(), client.MergeFromWithOptimisticLock{})
	cr.Status.Conditions = append(cr.Status.Conditions, approvedCond)
	if err := approver.Status().Patch(testCtx, cr, patch); err != nil {
		t.Fatalf("approver approving: %v", err)
	}
	waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionTrue)
	c := waitCondition(t, cr, v1alpha1.ConditionApproved, metav1.ConditionTrue)
	if c.Reason != "ApprovedByProvider" || c.Message != "ticket OPS-1" {
		t.Errorf("the approver's condition was overwritten: %+v", c)
	}
	if cr.Status.ApprovedAt == nil {
		t.Error("approvedAt not recorded")
	}

	// A provider denies another request; nothing is granted.
	denied := f.resourceRequest("to-deny")
	mustCreate(t, denied)
	waitPhase(t, denied, v1alpha1.RequestAwaitingApproval)
	provider := userClient(t, providerUser)
	patch = client.MergeFromWithOptions(denied.DeepCopy(), client.MergeFromWithOptimisticLock{})
	denied.Status.Conditions = append(denied.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionDenied,
		Status: metav1.ConditionTrue, Reason: "NoCapacity", Message: "rack full", LastTransitionTime: metav1.Now()})
	if err := provider.Status().Patch(testCtx, denied, patch); err != nil {
		t.Fatalf("provider denying: %v", err)
	}
	waitPhase(t, denied, v1alpha1.RequestDenied)
	if ok, _ := exists(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: grantNamespaceName(denied, nil)}}); ok {
		t.Error("a denied request got a namespace")
	}
}
