package controllers

import (
	"maps"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// outcomeKind is what a step of the request reconciler found. The status
// (Ready, Stalled) and the requeue are derived from it in one place,
// setRequestStatus, so that a step never decides them itself.
type outcomeKind int

const (
	// proceed: the step's work is done and the next step runs.
	proceed outcomeKind = iota
	// ready: the request is what was asked for (Ready=True).
	ready
	// waiting: the request waits for something that happens without a
	// person's help (Ready=False; not Stalled).
	waiting
	// stalled: the request ended other than as asked, or only a person can
	// move it on (Ready=False, Stalled=True).
	stalled
	// closed: the request ended as its consumer asked without being Ready
	// (returned goods): Ready=False, not Stalled.
	closed
	// settled: nothing is left to do; the status stays as it is.
	settled
	// transient: an error the work queue retries with backoff. Ready
	// records it when the step gave a reason.
	transient
)

// verdict is the value a step found for one condition besides Ready.
type verdict struct {
	status          metav1.ConditionStatus
	reason, message string
}

// outcome is the one result of a request step. Only the kind, the phase
// and the Ready reason and message are required; the other conditions are
// set only when a step found them.
type stepOutcome struct {
	kind            outcomeKind
	phase           v1alpha1.RequestPhase // "" keeps the phase
	reason, message string                // Ready's; "" leaves Ready as it is
	requeue         time.Duration
	err             error

	// found are the verdicts on the other conditions, by type.
	found map[string]verdict
}

// foundConditions are the condition types a step may find, besides Ready,
// in the order they are written.
var foundConditions = []string{
	v1alpha1.ConditionApproved, v1alpha1.ConditionDenied, v1alpha1.ConditionFulfilled,
	v1alpha1.ConditionAccessVerified, v1alpha1.ConditionTransferred, v1alpha1.ConditionAccepted,
}

func newOutcome(kind outcomeKind, phase v1alpha1.RequestPhase, reason, msg string) stepOutcome {
	return stepOutcome{kind: kind, phase: phase, reason: reason, message: msg}
}

// readyAs: the request is what was asked for.
func readyAs(phase v1alpha1.RequestPhase, reason, msg string) stepOutcome {
	return newOutcome(ready, phase, reason, msg)
}

// waitFor: the request waits; nothing is wrong.
func waitFor(phase v1alpha1.RequestPhase, reason, msg string) stepOutcome {
	return newOutcome(waiting, phase, reason, msg)
}

// stall: the request cannot go on without a person, or ended other than as asked.
func stall(phase v1alpha1.RequestPhase, reason, msg string) stepOutcome {
	return newOutcome(stalled, phase, reason, msg)
}

// closeAs: the request ended as its consumer asked, without being Ready.
func closeAs(phase v1alpha1.RequestPhase, reason, msg string) stepOutcome {
	return newOutcome(closed, phase, reason, msg)
}

// failing is a transient error that Ready reports with reason.
func failing(phase v1alpha1.RequestPhase, reason, msg string, err error) stepOutcome {
	o := newOutcome(transient, phase, reason, msg)
	o.err = err
	return o
}

// errored is a transient error that leaves the status as it is.
func errored(err error) stepOutcome { return stepOutcome{kind: transient, err: err} }

// fulfilment marks Fulfilled=False with the outcome's own reason and
// message: a fulfilment step that is not done says the same in both.
func (o stepOutcome) fulfilment() stepOutcome {
	return o.with(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, o.reason, o.message)
}

// with sets the verdict of one condition besides Ready.
func (o stepOutcome) with(typ string, status metav1.ConditionStatus, reason, msg string) stepOutcome {
	o.found = maps.Clone(o.found)
	if o.found == nil {
		o.found = map[string]verdict{}
	}
	o.found[typ] = verdict{status: status, reason: reason, message: msg}
	return o
}

// after requeues after d (zero: only on events).
func (o stepOutcome) after(d time.Duration) stepOutcome {
	o.requeue = d
	return o
}

// over lays o over what earlier steps found: o's verdicts win, earlier
// ones it does not set are kept.
func (o stepOutcome) over(prev stepOutcome) stepOutcome {
	for typ, v := range prev.found {
		if _, ok := o.found[typ]; !ok {
			o = o.with(typ, v.status, v.reason, v.message)
		}
	}
	return o
}

// orPhase sets the phase when the outcome keeps it.
func (o stepOutcome) orPhase(phase v1alpha1.RequestPhase) stepOutcome {
	if o.phase == "" {
		o.phase = phase
	}
	return o
}
