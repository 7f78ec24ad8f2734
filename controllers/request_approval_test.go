package controllers

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
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

// TestApprovalBelongsToItsAgreement: the consumer's request is approved
// automatically and granted; the provider deletes the agreement and creates
// it again under the same name with approvalPolicy Manual. The old automatic
// approval does not carry over: the request waits, holding nothing, until
// the approver approves it under the new agreement.
func TestApprovalBelongsToItsAgreement(t *testing.T) {
	t.Parallel() // waits out a quiet period (see parallel tests in suite_test.go)
	f := newFixture(t)
	cr := f.resourceRequest("reapproval")
	if err := userClient(t, consumerUser).Create(testCtx, cr); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionTrue)
	get(t, f.agreement)
	if d := cr.Status.Decision; d == nil || d.AgreementUID != string(f.agreement.UID) || d.ApprovalPolicy != v1alpha1.ApprovalAutomatic {
		t.Fatalf("decision %+v, want it bound to agreement %s and policy Automatic", d, f.agreement.UID)
	}

	provider := userClient(t, providerUser)
	if err := provider.Delete(testCtx, f.agreement); err != nil {
		t.Fatal(err)
	}
	gone(t, f.agreement)
	again := &v1alpha1.ServiceAgreement{ObjectMeta: metav1.ObjectMeta{Name: f.agreement.Name, Namespace: f.ns}, Spec: *f.agreement.Spec.DeepCopy()}
	again.Spec.ApprovalPolicy = v1alpha1.ApprovalManual
	if err := provider.Create(testCtx, again); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the old approval to be superseded", func() error {
		get(t, cr)
		ready := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionReady)
		if cr.Status.Phase != v1alpha1.RequestAwaitingApproval || ready == nil || ready.Reason != v1alpha1.ReasonApprovalSuperseded {
			return fmt.Errorf("phase %s Ready %+v", cr.Status.Phase, ready)
		}
		return nil
	})
	consistently(t, 2*time.Second, "nothing granted without a person's approval", func() error {
		get(t, cr)
		var rbs rbacv1.RoleBindingList
		if err := admin.List(testCtx, &rbs, client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)}); err != nil {
			return err
		}
		if cr.Status.Phase != v1alpha1.RequestAwaitingApproval || len(rbs.Items) != 0 {
			return fmt.Errorf("phase %s, %d RoleBindings", cr.Status.Phase, len(rbs.Items))
		}
		return nil
	})

	if err := patchStatusAs(t, approverUser, cr, func(cr *v1alpha1.ConsumptionRequest) {
		meta.SetStatusCondition(&cr.Status.Conditions, decisionCondition(v1alpha1.ConditionApproved, approvedInTest))
	}); err != nil {
		t.Fatalf("approving: %v", err)
	}
	// The old namespace is still being deleted (envtest runs no namespace
	// controller): the request is granted again once it is gone.
	eventually(t, 20*time.Second, "the approver's approval to be bound to the new agreement", func() error {
		get(t, cr)
		d := cr.Status.Decision
		if d == nil || d.By.Username != approverUser || d.AgreementUID != string(again.UID) || d.ApprovalPolicy != v1alpha1.ApprovalManual ||
			cr.Status.Phase != v1alpha1.RequestProvisioning {
			return fmt.Errorf("phase %s decision %+v, want Provisioning on the approver's approval under agreement %s, policy Manual", cr.Status.Phase, d, again.UID)
		}
		return nil
	})
}

// TestAutomaticApprovalEndsWithThePolicy: the provider switches a live
// agreement from Automatic to Manual. A request approved automatically no
// longer holds access on that approval: its RoleBindings go (the namespace
// stays, as on suspension) and it waits for a person's approval.
func TestAutomaticApprovalEndsWithThePolicy(t *testing.T) {
	f := newFixture(t)
	cr := f.grantedRequest("policy-switch")
	get(t, f.agreement)
	patch := client.MergeFrom(f.agreement.DeepCopy())
	f.agreement.Spec.ApprovalPolicy = v1alpha1.ApprovalManual
	if err := userClient(t, providerUser).Patch(testCtx, f.agreement, patch); err != nil {
		t.Fatal(err)
	}
	waitNoRoleBindings(t, cr)
	waitPhase(t, cr, v1alpha1.RequestAwaitingApproval)
	if err := patchStatusAs(t, approverUser, cr, func(cr *v1alpha1.ConsumptionRequest) {
		meta.SetStatusCondition(&cr.Status.Conditions, decisionCondition(v1alpha1.ConditionApproved, approvedInTest))
	}); err != nil {
		t.Fatalf("approving: %v", err)
	}
	waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionTrue)
}
