package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

func TestPruneNulls(t *testing.T) {
	var typedNil map[string]any
	m := map[string]any{
		"keep":  "x",
		"null":  nil,
		"typed": typedNil,
		"empty": map[string]any{"inner": nil},
		"deep":  map[string]any{"a": map[string]any{}, "b": int64(1)},
		"list":  []any{map[string]any{"x": nil, "y": "z"}},
	}
	pruneNulls(m)
	if _, ok := m["null"]; ok {
		t.Error("null kept")
	}
	if _, ok := m["typed"]; ok {
		t.Error("typed nil map kept")
	}
	if _, ok := m["empty"]; ok {
		t.Error("object emptied by pruning kept")
	}
	if d := m["deep"].(map[string]any); len(d) != 1 || d["b"] != int64(1) {
		t.Errorf("deep %v", d)
	}
	if l := m["list"].([]any)[0].(map[string]any); len(l) != 1 || l["y"] != "z" {
		t.Errorf("list %v", l)
	}
	if m["keep"] != "x" {
		t.Error("value lost")
	}
}

func TestStatusConditionsKeepOtherWriters(t *testing.T) {
	cond := func(typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: typ + " " + reason}
	}
	// The server holds a provider's Approved and Fulfilled (a manual action) and the operator's Ready.
	current := []metav1.Condition{
		cond(v1alpha1.ConditionApproved, metav1.ConditionTrue, "ApprovedByProvider"),
		cond(v1alpha1.ConditionReady, metav1.ConditionFalse, "Provisioning"),
		cond(v1alpha1.ConditionFulfilled, metav1.ConditionTrue, "Done"),
	}
	// The operator's computed list changed the provider's Approved (it must not
	// reach the server), dropped the provider's Fulfilled (it must stay), and
	// sets Ready and a new condition of its own.
	desired := []metav1.Condition{
		cond(v1alpha1.ConditionApproved, metav1.ConditionFalse, "Stale"),
		cond(v1alpha1.ConditionReady, metav1.ConditionTrue, "Fulfilled"),
		cond(v1alpha1.ConditionWithinServiceLevel, metav1.ConditionTrue, "TargetsMet"),
	}
	got := statusConditions(current, desired, []string{v1alpha1.ConditionReady, v1alpha1.ConditionWithinServiceLevel})
	want := []metav1.Condition{current[0], desired[1], desired[2], current[2]}
	if len(got) != len(want) {
		t.Fatalf("got %d conditions %+v, want %+v", len(got), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("condition %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	// An owned condition the operator removed is gone; nothing else is.
	got = statusConditions(current, []metav1.Condition{current[0], current[2]}, []string{v1alpha1.ConditionReady})
	if len(got) != 2 || got[0].Type != v1alpha1.ConditionApproved || got[1].Type != v1alpha1.ConditionFulfilled {
		t.Errorf("after removing Ready: %+v", got)
	}
}
