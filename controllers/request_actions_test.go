package controllers

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
	"github.com/offering-operator/offering-operator/internal/testutil"
)

// There is no kubelet and no job controller in envtest: Jobs never run. The
// tests drive a Job's outcome the way the job controller would, by writing
// its status subresource (startTime, completionTime, counters and the
// terminal conditions with status True), and check what the operator makes of it.

// actionWorld is a fixture with a provider namespace, an automated action
// "install" (RACK required, DEVICE optional, TOKEN secret) and a manual
// action "support" (TICKET required), and a consumer Secret holding TOKEN.
type actionWorld struct {
	*fixture
	provider    string
	tokenSecret string
	tokenValue  string
}

const (
	installAction = "install"
	supportAction = "support"
)

func newActionWorld(t *testing.T) *actionWorld {
	t.Helper()
	requireAPIServer(t)
	w := &actionWorld{provider: uniq("provider"), tokenSecret: "install-token", tokenValue: uniq("t0ken-value-never-shown")}
	// A provider namespace a cluster admin allowed the installer ServiceAccount in.
	mustCreate(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.provider,
		Annotations: map[string]string{v1alpha1.AnnotationActionServiceAccounts: "installer"}}})
	withActions := func(f *fixture) {
		f.offering.Spec.ProviderNamespace = v1alpha1.NamespaceName(w.provider)
		f.offering.Spec.Actions = []v1alpha1.ActionItem{
			{Name: installAction, Type: v1alpha1.ActionAutomated,
				Parameters: []v1alpha1.ActionParameterSpec{
					{Name: "RACK", Required: true}, {Name: "DEVICE"}, {Name: "TOKEN", Secret: true},
				},
				Job: &v1alpha1.ActionJob{Image: "busybox:1.36", Command: []string{"sh", "-c", `echo installing in "$RACK"`},
					ServiceAccountName: "installer", BackoffLimit: ptr.To[int32](1), Timeout: &metav1.Duration{Duration: 10 * time.Minute}}},
			{Name: supportAction, Type: v1alpha1.ActionManual,
				Parameters: []v1alpha1.ActionParameterSpec{{Name: "TICKET", Required: true}}},
		}
		f.agreement.Spec.Entitlements.Actions = []v1alpha1.ActionEntitlement{
			{Name: installAction, MaxRuns: ptr.To[int32](5)}, {Name: supportAction, MaxRuns: ptr.To[int32](5)},
		}
	}
	w.fixture = newFixture(t, withActions)
	mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: w.tokenSecret, Namespace: w.ns},
		Data: map[string][]byte{"token": []byte(w.tokenValue)}})
	return w
}

func (w *actionWorld) installRequest(name string) *v1alpha1.ConsumptionRequest {
	return makeRequest(name, w.ns).action(string(installAction), "RACK", "rack-a", "DEVICE", "ha-1").
		secretParameter("TOKEN", w.tokenSecret, "token").obj()
}

func (w *actionWorld) supportRequest(name string) *v1alpha1.ConsumptionRequest {
	return makeRequest(name, w.ns).action(string(supportAction), "TICKET", "OPS-42").obj()
}

// startedJob creates cr and waits for its Job and the secret-parameter copy.
func (w *actionWorld) startedJob(t *testing.T, cr *v1alpha1.ConsumptionRequest) (*batchv1.Job, *corev1.Secret) {
	t.Helper()
	mustCreate(t, cr)
	waitPhase(t, cr, v1alpha1.RequestProvisioning)
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: w.provider, Name: actionJobName(cr)}}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: w.provider, Name: actionSecretName(cr)}}
	eventually(t, 20*time.Second, "Job and secret copy", func() error {
		if _, err := exists(job); err != nil {
			return err
		}
		if job.UID == "" {
			return fmt.Errorf("no Job yet")
		}
		if ok, err := exists(sec); !ok {
			return fmt.Errorf("no secret copy yet: %w", err)
		}
		return nil
	})
	return job, sec
}

// finishJob writes a terminal outcome to the Job's status, as the job controller would.
func finishJob(t *testing.T, job *batchv1.Job, complete bool, reason, msg string) {
	t.Helper()
	eventually(t, 10*time.Second, "Job status written", func() error {
		if err := admin.Get(testCtx, client.ObjectKeyFromObject(job), job); err != nil {
			return err
		}
		now := metav1.Now()
		start := metav1.NewTime(now.Add(-time.Minute))
		job.Status.StartTime = &start
		job.Status.Active = 0
		if complete {
			job.Status.Succeeded = 1
			job.Status.CompletionTime = &now
			job.Status.Conditions = []batchv1.JobCondition{
				{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: reason, Message: msg, LastTransitionTime: now, LastProbeTime: now},
				{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: reason, Message: msg, LastTransitionTime: now, LastProbeTime: now},
			}
		} else {
			job.Status.Failed = 2
			job.Status.Conditions = []batchv1.JobCondition{
				{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: reason, Message: msg, LastTransitionTime: now, LastProbeTime: now},
				{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: reason, Message: msg, LastTransitionTime: now, LastProbeTime: now},
			}
		}
		return admin.Status().Update(testCtx, job)
	})
}

func allocationOf(t *testing.T, agr *v1alpha1.ServiceAgreement, cr *v1alpha1.ConsumptionRequest) bool {
	t.Helper()
	get(t, agr)
	if hasAllocation(agr, string(cr.UID)) {
		return true
	}
	// Settled: counted in the record of consumption.
	for _, it := range agr.Status.Consumption {
		for _, r := range it.RecentRequests {
			if r.UID == string(cr.UID) {
				return true
			}
		}
	}
	return false
}

func TestActionJobSucceeds(t *testing.T) {
	w := newActionWorld(t)
	cr := w.installRequest("install-ok")
	job, sec := w.startedJob(t, cr)

	// The Job is built from the offering's template.
	if job.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue || job.Labels[v1alpha1.LabelRequestUID] != string(cr.UID) {
		t.Errorf("Job labels %v", job.Labels)
	}
	if ptr.Deref(job.Spec.ActiveDeadlineSeconds, 0) != 600 || ptr.Deref(job.Spec.BackoffLimit, -1) != 1 ||
		ptr.Deref(job.Spec.TTLSecondsAfterFinished, 0) != jobTTLAfterFinished {
		t.Errorf("Job spec deadline %v backoff %v ttl %v", job.Spec.ActiveDeadlineSeconds, job.Spec.BackoffLimit, job.Spec.TTLSecondsAfterFinished)
	}
	pod := job.Spec.Template.Spec
	if pod.ServiceAccountName != "installer" || len(pod.Containers) != 1 || pod.Containers[0].Image != "busybox:1.36" {
		t.Errorf("pod spec %+v", pod)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range pod.Containers[0].Env {
		env[e.Name] = e
	}
	if env["RACK"].Value != "rack-a" || env["DEVICE"].Value != "ha-1" {
		t.Errorf("env %+v", env)
	}
	if tok := env["TOKEN"]; tok.Value != "" || tok.ValueFrom == nil || tok.ValueFrom.SecretKeyRef == nil ||
		tok.ValueFrom.SecretKeyRef.Name != sec.Name || tok.ValueFrom.SecretKeyRef.Key != "TOKEN" {
		t.Errorf("TOKEN env %+v", tok)
	}
	// The secret copy holds the value and is owned by the Job.
	if string(sec.Data["TOKEN"]) != w.tokenValue || !hasOwnerRef(sec, job.UID) || sec.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue {
		t.Errorf("secret copy: owners %v labels %v", sec.OwnerReferences, sec.Labels)
	}

	ready := waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionFalse)
	if ready.Reason != v1alpha1.ReasonActionRunning || cr.Status.Action == nil ||
		cr.Status.Action.Job != w.provider+"/"+job.Name || cr.Status.Action.StartedAt == nil {
		t.Fatalf("running: Ready %+v action %+v", ready, cr.Status.Action)
	}

	finishJob(t, job, true, "CompletionsReached", "Reached expected number of succeeded pods")
	waitPhase(t, cr, v1alpha1.RequestFulfilled)
	c := waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionTrue)
	if c.Reason != v1alpha1.ReasonActionSucceeded {
		t.Errorf("Ready %+v", c)
	}
	if f := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionFulfilled); f == nil || f.Status != metav1.ConditionTrue {
		t.Errorf("Fulfilled %+v", f)
	}
	a := cr.Status.Action
	if a.CompletedAt == nil || a.Attempts != 1 || !strings.Contains(a.Message, "completed") || cr.Status.FulfilledAt == nil {
		t.Errorf("action status %+v", a)
	}
	eventually(t, 10*time.Second, "agreement counts the success", func() error {
		get(t, w.agreement)
		if w.agreement.Status.Actions.Succeeded != 1 {
			return fmt.Errorf("actions %+v", w.agreement.Status.Actions)
		}
		return nil
	})
	if !allocationOf(t, w.agreement, cr) {
		t.Error("a completed action must keep its entitlement used")
	}
	assertSecretNeverShown(t, w, cr, "ActionSucceeded")
}

// assertSecretNeverShown checks that the secret parameter's value appears in
// neither event API (consumer and provider namespaces) nor the request's or
// agreement's status.
func assertSecretNeverShown(t *testing.T, w *actionWorld, cr *v1alpha1.ConsumptionRequest, wantReason string) {
	t.Helper()
	check := func(what string, v any) {
		t.Helper()
		assertNotLeaked(t, w.tokenValue, what, v)
	}
	var events eventsv1.EventList
	eventually(t, 10*time.Second, "events recorded", func() error {
		if err := admin.List(testCtx, &events, client.InNamespace(w.ns)); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Reason == wantReason {
				return nil
			}
		}
		return fmt.Errorf("no %s event yet", wantReason)
	})
	for _, ns := range []string{w.ns, w.provider} {
		var ev eventsv1.EventList
		var core corev1.EventList
		if err := admin.List(testCtx, &ev, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		if err := admin.List(testCtx, &core, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		check("events.k8s.io events in "+ns, ev)
		check("core events in "+ns, core)
	}
	get(t, cr)
	check("request status", cr.Status)
	get(t, w.agreement)
	check("agreement status", w.agreement.Status)
	if logs := managerLogs.String(); len(logs) == 0 {
		t.Error("no manager logs captured: the log check would prove nothing")
	} else {
		check("the manager's logs (all levels)", logs)
	}
}

func TestActionJobFailsKeepsEntitlement(t *testing.T) {
	w := newActionWorld(t)
	cr := w.installRequest("install-fails")
	job, _ := w.startedJob(t, cr)
	finishJob(t, job, false, batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit")
	waitPhase(t, cr, v1alpha1.RequestFailed)
	c := waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonActionFailed || !strings.Contains(c.Message, "backoff limit") {
		t.Errorf("Ready %+v", c)
	}
	if f := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionFulfilled); f == nil || f.Status != metav1.ConditionFalse ||
		f.Reason != v1alpha1.ReasonActionFailed {
		t.Errorf("Fulfilled %+v", f)
	}
	if a := cr.Status.Action; a == nil || a.Attempts != 2 || a.CompletedAt == nil {
		t.Errorf("action %+v", a)
	}
	consistently(t, time.Second, "entitlement kept", func() error {
		if !allocationOf(t, w.agreement, cr) {
			return fmt.Errorf("a run that failed must not give its entitlement back")
		}
		return nil
	})
	eventually(t, 10*time.Second, "agreement counts the failure", func() error {
		get(t, w.agreement)
		if w.agreement.Status.Actions.Failed != 1 {
			return fmt.Errorf("actions %+v", w.agreement.Status.Actions)
		}
		return nil
	})
	assertSecretNeverShown(t, w, cr, v1alpha1.ReasonActionFailed)
}

func TestActionJobTimesOut(t *testing.T) {
	w := newActionWorld(t)
	cr := w.installRequest("install-slow")
	job, _ := w.startedJob(t, cr)
	finishJob(t, job, false, batchv1.JobReasonDeadlineExceeded, "Job was active longer than specified deadline")
	waitPhase(t, cr, v1alpha1.RequestFailed)
	c := waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonActionTimedOut || !strings.Contains(c.Message, "deadline") {
		t.Errorf("Ready %+v", c)
	}
}

func TestActionCancelledWhenRequestDeleted(t *testing.T) {
	w := newActionWorld(t)
	cr := w.installRequest("install-cancel")
	job, sec := w.startedJob(t, cr)
	waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionFalse)
	if err := admin.Delete(testCtx, cr); err != nil {
		t.Fatal(err)
	}
	gone(t, job)
	gone(t, sec)
	gone(t, cr)
}

func TestActionNotCancelledBySuspension(t *testing.T) {
	w := newActionWorld(t)
	cr := w.installRequest("install-suspended")
	job, _ := w.startedJob(t, cr)
	setSuspended(t, w.agreement, true)
	waitCondition(t, w.agreement, v1alpha1.ConditionActive, metav1.ConditionFalse)
	consistently(t, 2*time.Second, "work already started is finished", func() error {
		if ok, err := exists(job); !ok {
			return fmt.Errorf("the Job was removed: %w", err)
		}
		get(t, cr)
		if cr.Status.Phase != v1alpha1.RequestProvisioning {
			return fmt.Errorf("phase %s", cr.Status.Phase)
		}
		return nil
	})
	finishJob(t, job, true, "CompletionsReached", "done")
	waitPhase(t, cr, v1alpha1.RequestFulfilled)
}

func TestManualAction(t *testing.T) {
	w := newActionWorld(t)
	cr := w.supportRequest("ticket")
	mustCreate(t, cr)
	waitPhase(t, cr, v1alpha1.RequestProvisioning)
	c := waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonAwaitingProvider {
		t.Fatalf("Ready %+v", c)
	}
	if f := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionFulfilled); f != nil {
		t.Errorf("the operator wrote Fulfilled on a manual action: %+v", f)
	}
	if cr.Status.Action == nil || cr.Status.Action.Type != v1alpha1.ActionManual || cr.Status.Action.StartedAt == nil {
		t.Errorf("action %+v", cr.Status.Action)
	}
	var jobs batchv1.JobList
	if err := admin.List(testCtx, &jobs, client.InNamespace(w.provider)); err != nil || len(jobs.Items) != 0 {
		t.Errorf("a manual action created Jobs: %v %d", err, len(jobs.Items))
	}

	mark := func(user string, cr *v1alpha1.ConsumptionRequest, status metav1.ConditionStatus, reason string) error {
		get(t, cr)
		patch := client.MergeFromWithOptions(cr.DeepCopy(), client.MergeFromWithOptimisticLock{})
		meta.SetStatusCondition(&cr.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionFulfilled, Status: status,
			Reason: reason, Message: "engineer closed OPS-42", LastTransitionTime: metav1.Now()})
		return userClient(t, user).Status().Patch(testCtx, cr, patch)
	}
	// A consumer cannot mark it done.
	if err := mark(consumerUser, cr, metav1.ConditionTrue, "Done"); !apierrors.IsForbidden(err) {
		t.Fatalf("consumer marking the action done: got %v, want Forbidden", err)
	}
	// A provider can.
	if err := mark(providerUser, cr, metav1.ConditionTrue, "ClosedByEngineer"); err != nil {
		t.Fatalf("provider marking the action done: %v", err)
	}
	waitPhase(t, cr, v1alpha1.RequestFulfilled)
	waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionTrue)
	consistently(t, time.Second, "the provider's condition is kept", func() error {
		get(t, cr)
		f := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionFulfilled)
		if f == nil || f.Status != metav1.ConditionTrue || f.Reason != "ClosedByEngineer" {
			return fmt.Errorf("Fulfilled %+v", f)
		}
		return nil
	})
	if a := cr.Status.Action; a.CompletedAt == nil || !strings.Contains(a.Message, "engineer closed OPS-42") {
		t.Errorf("action %+v", a)
	}

	failed := w.supportRequest("ticket-failed")
	mustCreate(t, failed)
	waitCondition(t, failed, v1alpha1.ConditionReady, metav1.ConditionFalse)
	if err := mark(providerUser, failed, metav1.ConditionFalse, v1alpha1.ReasonActionFailed); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, failed, v1alpha1.RequestFailed)
	c = waitCondition(t, failed, v1alpha1.ConditionReady, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonActionFailed {
		t.Errorf("Ready %+v", c)
	}
	if !allocationOf(t, w.agreement, failed) {
		t.Error("a manual action that failed keeps its entitlement used")
	}
}

func TestActionParameterValidation(t *testing.T) {
	w := newActionWorld(t)
	secretRef := func(name v1alpha1.ParameterName) v1alpha1.SecretParameterValue {
		return v1alpha1.SecretParameterValue{Name: name, SecretKeyRef: v1alpha1.SecretKeySelector{Name: v1alpha1.ObjectName(w.tokenSecret), Key: "token"}}
	}
	cases := []struct {
		name    string
		mutate  func(*v1alpha1.ActionRequest)
		message string
	}{
		{"unknown", func(a *v1alpha1.ActionRequest) {
			a.Parameters = append(a.Parameters, v1alpha1.ParameterValue{Name: "COLOUR", Value: "red"})
		}, "unknown parameter COLOUR"},
		{"missing", func(a *v1alpha1.ActionRequest) { a.Parameters = a.Parameters[1:] }, "missing required parameter RACK"},
		{"secret-as-plain", func(a *v1alpha1.ActionRequest) {
			a.SecretParameters = nil
			a.Parameters = append(a.Parameters, v1alpha1.ParameterValue{Name: "TOKEN", Value: "plain"})
		}, "parameter TOKEN is secret"},
		{"plain-as-secret", func(a *v1alpha1.ActionRequest) {
			a.Parameters = a.Parameters[:1]
			a.SecretParameters = append(a.SecretParameters, secretRef("DEVICE"))
		}, "parameter DEVICE is not secret"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cr := w.installRequest("bad-" + c.name)
			c.mutate(cr.Spec.Action)
			mustCreate(t, cr)
			waitPhase(t, cr, v1alpha1.RequestFailed)
			r := waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionFalse)
			if r.Reason != v1alpha1.ReasonInvalidParameters || !strings.Contains(r.Message, c.message) {
				t.Errorf("Ready %+v", r)
			}
			if ok, _ := exists(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: w.provider, Name: actionJobName(cr)}}); ok {
				t.Error("a Job was created for refused parameters")
			}
			eventually(t, 10*time.Second, "entitlement given back", func() error {
				if allocationOf(t, w.agreement, cr) {
					return fmt.Errorf("still allocated")
				}
				return nil
			})
		})
	}
}

func TestActionWaitsForSecretParameter(t *testing.T) {
	w := newActionWorld(t)
	cr := w.installRequest("install-no-secret")
	cr.Spec.Action.SecretParameters[0].SecretKeyRef.Name = "not-there"
	mustCreate(t, cr)
	c := waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionFalse)
	eventually(t, 10*time.Second, "waiting for the Secret", func() error {
		c = waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionFalse)
		if c.Reason != v1alpha1.ReasonSecretParameterNotFound || cr.Status.Phase != v1alpha1.RequestProvisioning {
			return fmt.Errorf("phase %s Ready %+v", cr.Status.Phase, c)
		}
		return nil
	})
	if ok, _ := exists(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: w.provider, Name: actionJobName(cr)}}); ok {
		t.Error("a Job was created without its secret parameter")
	}
}

func TestValidateParametersAndCounting(t *testing.T) {
	item := &v1alpha1.ActionItem{Name: "a", Parameters: []v1alpha1.ActionParameterSpec{
		{Name: "A", Required: true}, {Name: "S", Secret: true}}}
	ok := &v1alpha1.ActionRequest{Parameters: []v1alpha1.ParameterValue{{Name: "A", Value: "x"}},
		SecretParameters: []v1alpha1.SecretParameterValue{{Name: "S"}}}
	if msg := validateParameters(item, ok); msg != "" {
		t.Errorf("valid parameters refused: %s", msg)
	}
	twice := &v1alpha1.ActionRequest{Parameters: []v1alpha1.ParameterValue{{Name: "A"}}, SecretParameters: []v1alpha1.SecretParameterValue{{Name: "A"}}}
	if msg := validateParameters(item, twice); !strings.Contains(msg, "passed twice") {
		t.Errorf("got %q", msg)
	}

	started := &v1alpha1.ActionRun{StartedAt: &metav1.Time{Time: time.Now()}}
	mk := func(phase v1alpha1.RequestPhase, run *v1alpha1.ActionRun) v1alpha1.ConsumptionRequest {
		return *makeRequest("", "").action("a").phase(phase).actionRun(run).obj()
	}
	reqs := []v1alpha1.ConsumptionRequest{
		mk(v1alpha1.RequestProvisioning, started), mk(v1alpha1.RequestProvisioning, nil), mk(v1alpha1.RequestFulfilled, started),
		mk(v1alpha1.RequestFailed, started), mk(v1alpha1.RequestFailed, nil),
	}
	if got := countActions(reqs); got != (v1alpha1.ActionCounts{Running: 1, Succeeded: 1, Failed: 2}) {
		t.Errorf("countActions %+v", got)
	}
	if releasesEntitlement(&reqs[3]) || !releasesEntitlement(&reqs[4]) {
		t.Error("a run that failed keeps its entitlement; one refused before running releases it")
	}
}

// TestActionSamples applies the samples' prerequisites, offering, agreement
// and both action requests: install-ha (automated) gets its Job in the
// provider namespace, support-ticket (manual) waits for a provider.
func TestActionSamples(t *testing.T) {
	requireAPIServer(t)
	dir := filepath.Join("..", "config", "samples")
	for _, f := range []string{"prerequisites.yaml", "service_v1alpha1_serviceoffering.yaml", "service_v1alpha1_serviceagreement.yaml",
		"service_v1alpha1_consumptionrequest_action.yaml", "service_v1alpha1_consumptionrequest_support.yaml"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		objs, err := testutil.DecodeObjects(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, u := range objs {
			if u.GetKind() == "ServiceOffering" {
				dropViewRole(t, u)
			}
			if err := admin.Create(testCtx, u); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatalf("%s: %s %s: %v", f, u.GetKind(), u.GetName(), err)
			}
		}
	}
	install := &v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "team-payments", Name: "install-ha"}}
	waitCondition(t, install, v1alpha1.ConditionFulfilled, metav1.ConditionFalse)
	eventually(t, 20*time.Second, "install-ha's Job", func() error {
		get(t, install)
		if install.Status.Action == nil || install.Status.Action.Job == "" {
			return fmt.Errorf("no Job recorded; conditions %+v", install.Status.Conditions)
		}
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "colo-provider", Name: actionJobName(install)}}
		if ok, err := exists(job); !ok {
			return fmt.Errorf("Job %s not found: %w", job.Name, err)
		}
		return nil
	})
	support := &v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "team-payments", Name: "support-ticket"}}
	c := waitCondition(t, support, v1alpha1.ConditionReady, metav1.ConditionFalse)
	eventually(t, 20*time.Second, "support-ticket awaits the provider", func() error {
		c = waitCondition(t, support, v1alpha1.ConditionReady, metav1.ConditionFalse)
		if c.Reason != v1alpha1.ReasonAwaitingProvider {
			return fmt.Errorf("Ready %+v", c)
		}
		return nil
	})
}

// dropViewRole removes the Kubernetes default ClusterRole "view" from the
// sample offering's access items: a cluster allows it with
// --allowed-cluster-roles=view, which the test manager does not set, and
// the offering would not be Ready. The actions do not depend on it.
func dropViewRole(t *testing.T, u *unstructured.Unstructured) {
	t.Helper()
	items, _, err := unstructured.NestedSlice(u.Object, "spec", "resources")
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		m := it.(map[string]any)
		roles, _, _ := unstructured.NestedStringSlice(m, "clusterRoles")
		kept := make([]any, 0, len(roles))
		for _, r := range roles {
			if r != "view" {
				kept = append(kept, r)
			}
		}
		m["clusterRoles"] = kept
	}
	if err := unstructured.SetNestedSlice(u.Object, items, "spec", "resources"); err != nil {
		t.Fatal(err)
	}
}

// TestActionRefusesParameterInShellScript: a provider (the shipped provider
// role) writes an action whose Job template pastes a parameter into a
// command line, here the script of a bash behind long options that a parser
// of command lines once took for a program. The offering is not Ready
// (UnsafeParameterExpansion, with a message saying to read "$RACK" from the
// environment), and a consumer's request never runs: no Job, no copy of its
// secret parameters. Once the provider reads "$RACK" from the environment,
// the offering is Ready and the Job is created.
func TestActionRefusesParameterInShellScript(t *testing.T) {
	t.Parallel() // waits out a quiet period (see parallel tests in suite_test.go)
	w := newActionWorld(t)
	provider := userClient(t, providerUser)
	setInstallCommand := func(command ...string) {
		t.Helper()
		get(t, w.offering)
		patch := client.MergeFrom(w.offering.DeepCopy())
		w.offering.Spec.Actions[0].Job.Command = command
		if err := provider.Patch(testCtx, w.offering, patch); err != nil {
			t.Fatal(err)
		}
	}
	setInstallCommand("bash", "--noprofile", "--rcfile", "/dev/null", "-c", "install --rack $(RACK)")
	eventually(t, 20*time.Second, "the offering refused for its action's template", func() error {
		get(t, w.offering)
		c := meta.FindStatusCondition(w.offering.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonUnsafeParameterExpansion ||
			c.ObservedGeneration != w.offering.Generation {
			return fmt.Errorf("Ready %+v", c)
		}
		if !strings.Contains(c.Message, "actions[install]: job.command[5]") || !strings.Contains(c.Message, "$(RACK)") ||
			!strings.Contains(c.Message, `"$RACK"`) {
			return fmt.Errorf("the message does not name the expansion and its fix: %s", c.Message)
		}
		return nil
	})
	cr := w.installRequest("unsafe-script")
	mustCreate(t, cr)
	consistently(t, 2*time.Second, "nothing started", func() error {
		for _, obj := range []client.Object{
			&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: w.provider, Name: actionJobName(cr)}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: w.provider, Name: actionSecretName(cr)}},
		} {
			ok, err := exists(obj)
			if err != nil {
				return err
			}
			if ok {
				return fmt.Errorf("%T %s exists", obj, obj.GetName())
			}
		}
		get(t, cr)
		if cr.Status.Action != nil {
			return fmt.Errorf("phase %s, action %+v", cr.Status.Phase, cr.Status.Action)
		}
		return nil
	})

	setInstallCommand("bash", "--noprofile", "--rcfile", "/dev/null", "-c", `install --rack "$RACK"`)
	waitCondition(t, w.offering, v1alpha1.ConditionReady, metav1.ConditionTrue)
	eventually(t, 30*time.Second, "the Job created once the template is safe", func() error {
		ok, err := exists(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: w.provider, Name: actionJobName(cr)}})
		if err == nil && !ok {
			err = errors.New("no Job yet")
		}
		return err
	})
}

// TestDesiredJobPodAnnotations: the job template's podAnnotations reach the
// pods (a simulated node reads its outcome there), next to the operator's own
// label, and are copied, not shared with the offering in the cache.
func TestDesiredJobPodAnnotations(t *testing.T) {
	item := &v1alpha1.ActionItem{Name: installAction, Type: v1alpha1.ActionAutomated, Job: &v1alpha1.ActionJob{
		Image: "busybox:1.36", PodAnnotations: map[string]string{"kwok.offering.dev/exit-code": "1", "sidecar.istio.io/inject": "false"},
	}}
	cr := &v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "install-1", UID: "uid-1"},
		Spec: v1alpha1.ConsumptionRequestSpec{Agreement: "agreement", Action: &v1alpha1.ActionRequest{Name: installAction}}}
	agr := &v1alpha1.ServiceAgreement{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "agreement"}}
	job := desiredJob(cr, agr, item, "provider", actionSecretName(cr), childLabels(cr, "offering", item.Name))
	tpl := job.Spec.Template.ObjectMeta
	if len(tpl.Annotations) != 2 || tpl.Annotations["kwok.offering.dev/exit-code"] != "1" || tpl.Annotations["sidecar.istio.io/inject"] != "false" {
		t.Fatalf("pod annotations %v, want the template's podAnnotations", tpl.Annotations)
	}
	if tpl.Labels[v1alpha1.LabelRequestUID] != "uid-1" {
		t.Fatalf("pod labels %v lack the request UID", tpl.Labels)
	}
	tpl.Annotations["kwok.offering.dev/exit-code"] = "0"
	if item.Job.PodAnnotations["kwok.offering.dev/exit-code"] != "1" {
		t.Fatal("the Job shares its annotations map with the offering")
	}
	item.Job.PodAnnotations = nil
	if a := desiredJob(cr, agr, item, "provider", "", nil).Spec.Template.Annotations; a != nil {
		t.Fatalf("pod annotations %v without podAnnotations, want none", a)
	}
}
