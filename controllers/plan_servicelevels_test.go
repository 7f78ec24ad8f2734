package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// withPlanServiceLevels sets the default targets of the fixture's plan,
// moved by the test clock's offset as withServiceLevels moves an agreement's.
func withPlanServiceLevels(plan v1alpha1.PlanName, approval, fulfilment time.Duration) fixtureOption {
	return func(f *fixture) {
		p := findPlan(&f.offering.Spec.Resources[0], plan)
		p.ServiceLevels = &v1alpha1.ServiceLevelTargets{}
		if approval > 0 {
			p.ServiceLevels.ApprovalTime = dur(approval + testClock.Offset())
		}
		if fulfilment > 0 {
			p.ServiceLevels.FulfilmentTime = dur(fulfilment + testClock.Offset())
		}
	}
}

// TestPlanDefaultTargetsApplyWhereTheAgreementSetsNone: a request under a plan
// is measured against its agreement's approval target, which wins over the
// plan's, and against the plan's fulfilment target, which the agreement does
// not set: past the plan's fulfilment target it is in breach of that one only.
func TestPlanDefaultTargetsApplyWhereTheAgreementSetsNone(t *testing.T) {
	f := newFixture(t, withPlans(), withManualApproval(), withServiceLevels(2*time.Hour, 0, ""),
		withPlanServiceLevels("small", time.Minute, time.Minute))
	cr := f.resourceRequest("late")
	mustCreate(t, cr)
	waitPhase(t, cr, v1alpha1.RequestAwaitingApproval)
	c := waitCondition(t, cr, v1alpha1.ConditionWithinServiceLevel, metav1.ConditionTrue)
	sl := cr.Status.ServiceLevel
	small := findPlan(&f.offering.Spec.Resources[0], "small").ServiceLevels
	if sl == nil || sl.Plan != "small" || *sl.ApprovalTarget != *f.agreement.Spec.ServiceLevels.ApprovalTime || *sl.FulfilmentTarget != *small.FulfilmentTime {
		t.Fatalf("serviceLevel = %+v, want the agreement's approval target and plan small's fulfilment target", sl)
	}
	if !strings.Contains(c.Message, "plan small's default") {
		t.Fatalf("the condition does not say where the target comes from: %s", c.Message)
	}

	// Past the plan's targets, within the agreement's: only fulfilment is missed.
	testClock.Step(61 * time.Second)
	touch(t, cr)
	c = waitCondition(t, cr, v1alpha1.ConditionWithinServiceLevel, metav1.ConditionFalse)
	if lvl := cr.Status.ServiceLevel; len(lvl.Breached) != 1 || lvl.Breached[0] != v1alpha1.TargetFulfilment {
		t.Fatalf("breached %v (%s), want Fulfilment only", lvl.Breached, c.Message)
	}
	approveAs(t, cr)
	waitPhase(t, cr, v1alpha1.RequestFulfilled)
	c = waitCondition(t, cr, v1alpha1.ConditionWithinServiceLevel, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonTargetBreached || !strings.Contains(c.Message, "fulfilment took") {
		t.Fatalf("after fulfilment: %s: %s", c.Reason, c.Message)
	}
}

// TestAgreementTargetWinsAndResizeKeepsTheVerdict: the agreement's
// fulfilment target wins over the plan's; a target it does not set comes from
// the plan; and a resize to a plan with other defaults, which under a Manual
// agreement waits for a provider again, does not re-measure the request:
// its targets and its verdict, with the approval time measured, stay those
// of its fulfilment.
func TestAgreementTargetWinsAndResizeKeepsTheVerdict(t *testing.T) {
	f := newFixture(t, withPlans(), withManualApproval(), withServiceLevels(0, time.Hour, ""),
		withPlanServiceLevels("small", time.Hour, time.Millisecond), withPlanServiceLevels("medium", time.Millisecond, time.Millisecond))
	cr := f.resourceRequest("measured")
	mustCreate(t, cr)
	waitPhase(t, cr, v1alpha1.RequestAwaitingApproval)
	approveAs(t, cr)
	waitPlan(t, cr, "small", "10")
	want := v1alpha1.RequestServiceLevel{ApprovalTarget: findPlan(&f.offering.Spec.Resources[0], "small").ServiceLevels.ApprovalTime,
		FulfilmentTarget: f.agreement.Spec.ServiceLevels.FulfilmentTime, Plan: "small"}
	expectVerdict := func(when string) {
		t.Helper()
		c := waitCondition(t, cr, v1alpha1.ConditionWithinServiceLevel, metav1.ConditionTrue)
		if err := sameTargets(cr.Status.ServiceLevel, want); err != nil || c.Reason != v1alpha1.ReasonTargetsMet || !strings.Contains(c.Message, "approval took") {
			t.Fatalf("%s: %v; %s: %s", when, err, c.Reason, c.Message)
		}
	}
	expectVerdict("granted")

	// The change waits for a provider past every target: nothing is re-measured.
	changePlan(t, cr, "medium")
	waitReadyReason(t, cr, v1alpha1.ReasonAwaitingApproval)
	testClock.Step(2 * time.Hour)
	touch(t, cr)
	waitReadyReason(t, cr, v1alpha1.ReasonAwaitingApproval)
	expectVerdict("waiting for the change's approval")
	approveAs(t, cr)
	waitPlan(t, cr, "medium", "20")
	expectVerdict("resized")
}

func sameTargets(got *v1alpha1.RequestServiceLevel, want v1alpha1.RequestServiceLevel) error {
	if got == nil || got.Plan != want.Plan || got.ApprovalTarget == nil || *got.ApprovalTarget != *want.ApprovalTarget ||
		got.FulfilmentTarget == nil || *got.FulfilmentTarget != *want.FulfilmentTarget {
		return fmt.Errorf("serviceLevel = %+v, want targets %v and %v from plan %s", got, want.ApprovalTarget, want.FulfilmentTarget, want.Plan)
	}
	return nil
}

// TestAgreementWithoutTargetsRollsUpPlanTargets: under an agreement that
// sets no targets, a request measured against its plan's default is
// counted on the agreement, with the default objective.
func TestAgreementWithoutTargetsRollsUpPlanTargets(t *testing.T) {
	f := newFixture(t, withPlans(), withManualApproval(), withPlanServiceLevels("small", time.Minute, 0))
	cr := f.resourceRequest("unanswered")
	mustCreate(t, cr)
	waitPhase(t, cr, v1alpha1.RequestAwaitingApproval)
	waitCondition(t, cr, v1alpha1.ConditionWithinServiceLevel, metav1.ConditionTrue)
	testClock.Step(61 * time.Second)
	touch(t, cr)
	waitCondition(t, cr, v1alpha1.ConditionWithinServiceLevel, metav1.ConditionFalse)
	eventually(t, 20*time.Second, "the agreement's roll-up", func() error {
		get(t, f.agreement)
		sl := f.agreement.Status.ServiceLevels
		if sl == nil || sl.Measured != 1 || sl.Breached != 1 || sl.Objective != "100" || len(sl.RecentBreaches) != 1 {
			return fmt.Errorf("serviceLevels = %+v", sl)
		}
		return nil
	})
	met := waitCondition(t, f.agreement, v1alpha1.ConditionServiceLevelsMet, metav1.ConditionFalse)
	if met.Reason != v1alpha1.ReasonObjectiveMissed || !strings.Contains(met.Message, cr.Name) {
		t.Fatalf("ServiceLevelsMet: %s: %s", met.Reason, met.Message)
	}
}
