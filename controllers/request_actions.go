package controllers

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Service actions. An admitted and approved action request runs its action
// once:
//
//   - Automated: a Job built from the offering's job template runs in the
//     offering's provider namespace, with the request's parameters as
//     environment variables. Secret parameters are read (live) from the
//     consumer's Secret, copied into a Secret in the provider namespace
//     (labelled as managed, owned by the Job once it exists) and passed with
//     env valueFrom.secretKeyRef: their values never appear in the Job's
//     spec, in status, events or logs. The Job's outcome is the request's
//     outcome. Finished Jobs are removed by the TTL controller one hour after
//     they finish (jobTTLAfterFinished); status.action keeps the record.
//   - Manual: the request waits (Ready=False, AwaitingProvider) until a
//     provider sets the condition Fulfilled through the status subresource;
//     the operator never writes Fulfilled on a manual action.
//
// Parameters are checked against the action's declaration before anything
// runs: a refused request fails for good and gives its entitlement back. An
// action that ran keeps its entitlement used, whatever its outcome.
//
// Once an action has started, suspending, expiring or deleting the agreement
// does not cancel it: work already started is finished and its outcome
// recorded. Deleting the request cancels it: the Job is deleted with
// background propagation (its Pods go too) and the secret copy with it.

// jobTTLAfterFinished is how long a finished action Job (and its Pods, for
// their logs) stays in the provider namespace: one hour.
const jobTTLAfterFinished int32 = 3600

// defaultActionTimeout and defaultBackoffLimit apply when the offering leaves them out.
const (
	defaultActionTimeout       = time.Hour
	defaultBackoffLimit  int32 = 2
	// secretParameterRecheck is how soon a request waiting for a missing Secret is looked at again.
	secretParameterRecheck = 30 * time.Second
)

// actionJobName is the Job of an action request: "action-<request name>-<hash>",
// at most 63 characters (Pods carry it in a label). The hash covers the
// request's namespace and UID.
func actionJobName(cr *v1alpha1.ConsumptionRequest) string {
	return derivedName("action-"+cr.Name, cr.Namespace+"/"+string(cr.UID), 63)
}

// actionSecretName is the Secret holding the copies of an action request's secret parameters.
func actionSecretName(cr *v1alpha1.ConsumptionRequest) string {
	return derivedName("action-"+cr.Name+"-params", cr.Namespace+"/"+string(cr.UID)+"/params", 253)
}

// actionStarted reports whether an action request's action has started.
func actionStarted(cr *v1alpha1.ConsumptionRequest) bool {
	return cr.Spec.Action != nil && cr.Status.Action != nil && cr.Status.Action.StartedAt != nil
}

// isManualAction reports whether the operator recorded the request as a manual action.
func isManualAction(cr *v1alpha1.ConsumptionRequest) bool {
	return cr.Spec.Action != nil && cr.Status.Action != nil && cr.Status.Action.Type == v1alpha1.ActionManual
}

// validateParameters checks the request's parameters against the action's
// declaration. It returns "" when they are valid, or what is wrong; it names
// parameters only, never values.
func validateParameters(item *v1alpha1.ActionItem, ar *v1alpha1.ActionRequest) string {
	declared := map[v1alpha1.ParameterName]v1alpha1.ActionParameterSpec{}
	for _, p := range item.Parameters {
		declared[p.Name] = p
	}
	var problems []string
	given := map[v1alpha1.ParameterName]bool{}
	for _, p := range ar.Parameters {
		given[p.Name] = true
		switch d, ok := declared[p.Name]; {
		case !ok:
			problems = append(problems, fmt.Sprintf("unknown parameter %s", p.Name))
		case d.Secret:
			problems = append(problems, fmt.Sprintf("parameter %s is secret: pass it in secretParameters", p.Name))
		}
	}
	for _, p := range ar.SecretParameters {
		if given[p.Name] {
			problems = append(problems, fmt.Sprintf("parameter %s is passed twice", p.Name))
		}
		given[p.Name] = true
		switch d, ok := declared[p.Name]; {
		case !ok:
			problems = append(problems, fmt.Sprintf("unknown parameter %s", p.Name))
		case !d.Secret:
			problems = append(problems, fmt.Sprintf("parameter %s is not secret: pass it in parameters", p.Name))
		}
	}
	for _, p := range item.Parameters {
		if p.Required && !given[p.Name] {
			problems = append(problems, fmt.Sprintf("missing required parameter %s", p.Name))
		}
	}
	if len(problems) == 0 {
		return ""
	}
	return fmt.Sprintf("action %s refuses the request's parameters: %s", item.Name, strings.Join(problems, "; "))
}

// runAction starts an approved action request's action, or follows it.
func (r *RequestReconciler) runAction(ctx context.Context, cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement, off *v1alpha1.ServiceOffering,
	item *v1alpha1.ActionItem, s *requestState,
) stepOutcome {
	if msg := validateParameters(item, cr.Spec.Action); msg != "" {
		return r.failBeforeRunning(ctx, cr, agr, s, v1alpha1.ReasonInvalidParameters, msg)
	}
	if item.Type == v1alpha1.ActionManual {
		s.disown(v1alpha1.ConditionFulfilled)
		s.status.Action = &v1alpha1.ActionRun{Type: v1alpha1.ActionManual, StartedAt: &s.now}
		s.tell(relatedAgreement(cr, s), corev1.EventTypeNormal, "AwaitingProvider", "Run", "manual action %s was handed to the provider", item.Name)
		return r.followManual(cr, s)
	}
	if o := r.automatedActionRefusal(ctx, off, item); o.kind != proceed {
		return o
	}
	cr, o := r.liveAction(ctx, cr)
	if o.kind != proceed {
		return o
	}
	providerNS := string(off.Spec.ProviderNamespace)
	lbls := childLabels(cr, string(agr.Spec.Offering), item.Name)
	secretData, o := r.readSecretParameters(ctx, cr)
	if o.kind != proceed {
		return o.orPhase(v1alpha1.RequestProvisioning)
	}
	secretName := actionSecretName(cr)
	if len(secretData) > 0 {
		if err := r.ensureActionSecret(ctx, cr, providerNS, secretName, lbls, secretData); err != nil {
			return actionError(err)
		}
	}
	job, o := r.startJob(ctx, cr, desiredJob(cr, agr, item, providerNS, secretName, lbls))
	if o.kind != proceed {
		return o
	}
	if len(secretData) > 0 {
		if err := r.ownSecretByJob(ctx, providerNS, secretName, job); err != nil {
			return actionError(err)
		}
	}
	s.status.Action = &v1alpha1.ActionRun{Type: v1alpha1.ActionAutomated, Job: providerNS + "/" + job.Name, StartedAt: &s.now}
	s.tell(job, corev1.EventTypeNormal, "ActionStarted", "Run", "action %s started as Job %s/%s", item.Name, providerNS, job.Name)
	return r.followJob(ctx, cr, s).orPhase(v1alpha1.RequestProvisioning)
}

// automatedActionRefusal says why the offering's automated action cannot
// run as it stands (no job; a provider namespace or ServiceAccount no cluster
// admin marked; parameters pasted into its command line): the request waits
// for the offering or the marks to be fixed.
func (r *RequestReconciler) automatedActionRefusal(ctx context.Context, off *v1alpha1.ServiceOffering, item *v1alpha1.ActionItem) stepOutcome {
	if item.Job == nil {
		return stall(v1alpha1.RequestProvisioning, v1alpha1.ReasonItemNotOffered, fmt.Sprintf("action %s of ServiceOffering %s is Automated but has no job; the request waits",
			item.Name, off.Name)).fulfilment()
	}
	// The offering is not Ready then, but the request may be reconciled before its agreement shows it.
	ns, reason, why, err := r.Options.providerNamespace(ctx, r.APIReader, string(off.Spec.ProviderNamespace))
	if err == nil && reason == "" {
		reason, why = r.Options.actionRefusal(ns, item)
	}
	if err != nil || reason != "" {
		return actionRefused(item, off, reason, why, err)
	}
	return stepOutcome{}
}

// liveAction is cr with its spec.action and spec.creator as the API server
// holds them, when the action has parameters: the cache keeps their names but
// not their values, nor the Secret keys of secret parameters, nor the creator
// (requestForCache). spec.action is immutable, so what is read is what the
// request was validated with.
func (r *RequestReconciler) liveAction(ctx context.Context, cr *v1alpha1.ConsumptionRequest) (*v1alpha1.ConsumptionRequest, stepOutcome) {
	if len(cr.Spec.Action.Parameters)+len(cr.Spec.Action.SecretParameters) == 0 {
		return cr, stepOutcome{}
	}
	var live v1alpha1.ConsumptionRequest
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(cr), &live); err != nil {
		return nil, errored(fmt.Errorf("reading the parameters of request %s/%s: %w", cr.Namespace, cr.Name, err))
	}
	if live.UID != cr.UID || live.Spec.Action == nil {
		return nil, errored(fmt.Errorf("request %s/%s was replaced while its action was starting", cr.Namespace, cr.Name))
	}
	out := *cr
	out.Spec.Action, out.Spec.Creator = live.Spec.Action, live.Spec.Creator
	return &out, stepOutcome{}
}

// readSecretParameters reads the request's secret parameters live from the
// consumer's namespace, to be copied to the provider namespace, only those
// the request's creator may read itself (request_secret_access.go). A
// missing Secret or key is waited for.
func (r *RequestReconciler) readSecretParameters(ctx context.Context, cr *v1alpha1.ConsumptionRequest) (map[string][]byte, stepOutcome) {
	if why, err := secretAccessRefusal(ctx, r.Client, r.APIReader, cr); why != "" || err != nil {
		return nil, secretAccessRefused(why, err)
	}
	waitForSecret := func(msg string) (map[string][]byte, stepOutcome) {
		return nil, waitFor(v1alpha1.RequestProvisioning, v1alpha1.ReasonSecretParameterNotFound, msg).fulfilment().after(secretParameterRecheck)
	}
	secretData := map[string][]byte{}
	for _, p := range cr.Spec.Action.SecretParameters {
		var sec corev1.Secret
		err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: cr.Namespace, Name: string(p.SecretKeyRef.Name)}, &sec)
		if apierrors.IsNotFound(err) {
			return waitForSecret(fmt.Sprintf("secret parameter %s: Secret %s/%s does not exist; the request waits for it",
				p.Name, cr.Namespace, p.SecretKeyRef.Name))
		}
		if err != nil {
			return nil, errored(fmt.Errorf("reading secret parameter %s: %w", p.Name, redact(err)))
		}
		v, ok := sec.Data[p.SecretKeyRef.Key]
		if !ok {
			return waitForSecret(fmt.Sprintf("secret parameter %s: Secret %s/%s has no key %s; the request waits for it",
				p.Name, cr.Namespace, p.SecretKeyRef.Name, p.SecretKeyRef.Key))
		}
		secretData[string(p.Name)] = v
	}
	return secretData, stepOutcome{}
}

// actionError reports an error starting the action; the operator retries.
func actionError(err error) stepOutcome {
	return failing(v1alpha1.RequestProvisioning, v1alpha1.ReasonActionStartFailed, "starting the action: "+err.Error(), err).fulfilment()
}

// failBeforeRunning fails an action request that never ran: its entitlement is given back.
func (r *RequestReconciler) failBeforeRunning(ctx context.Context, cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement, s *requestState,
	reason, msg string,
) stepOutcome {
	if hasAllocation(agr, string(cr.UID)) || s.status.AdmittedAt != nil {
		if err := releaseAllocations(ctx, r.Client, r.APIReader, agr, string(cr.UID)); err != nil {
			return errored(err)
		}
	}
	s.status.Action = nil
	full := msg + "; nothing ran and the entitlement was given back"
	s.tell(relatedAgreement(cr, s), corev1.EventTypeWarning, "Failed", "Run", "%s", full)
	return stall(v1alpha1.RequestFailed, reason, full).fulfilment()
}

// desiredJob is the Job that runs an automated action for cr.
func desiredJob(cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement, item *v1alpha1.ActionItem, ns, secretName string,
	lbls map[string]string,
) *batchv1.Job {
	env := actionEnv(cr, item, secretName)
	timeout := defaultActionTimeout
	if item.Job.Timeout != nil && item.Job.Timeout.Duration > 0 {
		timeout = item.Job.Timeout.Duration
	}
	deadline := max(int64(timeout/time.Second), 1)
	backoff := defaultBackoffLimit
	if item.Job.BackoffLimit != nil {
		backoff = *item.Job.BackoffLimit
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: actionJobName(cr), Namespace: ns, Labels: lbls,
			Annotations: map[string]string{
				v1alpha1.AnnotationRequest:   cr.Namespace + "/" + cr.Name,
				v1alpha1.AnnotationAgreement: agr.Namespace + "/" + agr.Name,
			},
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To(backoff),
			ActiveDeadlineSeconds:   ptr.To(deadline),
			TTLSecondsAfterFinished: ptr.To(jobTTLAfterFinished),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      map[string]string{v1alpha1.LabelRequestUID: string(cr.UID)},
					Annotations: maps.Clone(item.Job.PodAnnotations),
				},
				Spec: corev1.PodSpec{
					RestartPolicy:      corev1.RestartPolicyNever,
					ServiceAccountName: item.Job.ServiceAccountName,
					Containers: []corev1.Container{{
						Name: "action", Image: item.Job.Image, Command: item.Job.Command, Args: item.Job.Args,
						Env: env, Resources: item.Job.Resources,
					}},
				},
			},
		},
	}
}

// actionEnv passes the request's parameters to the Job as environment
// variables, in the order the item declares them; a secret parameter is read
// from the copy made in the provider namespace (secretName).
func actionEnv(cr *v1alpha1.ConsumptionRequest, item *v1alpha1.ActionItem, secretName string) []corev1.EnvVar {
	values := map[v1alpha1.ParameterName]string{}
	for _, p := range cr.Spec.Action.Parameters {
		values[p.Name] = p.Value
	}
	secret := map[v1alpha1.ParameterName]bool{}
	for _, p := range cr.Spec.Action.SecretParameters {
		secret[p.Name] = true
	}
	var env []corev1.EnvVar
	for _, p := range item.Parameters {
		switch {
		case secret[p.Name]:
			env = append(env, corev1.EnvVar{Name: string(p.Name), ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: secretName}, Key: string(p.Name),
			}}})
		default:
			if v, ok := values[p.Name]; ok {
				env = append(env, corev1.EnvVar{Name: string(p.Name), Value: v})
			}
		}
	}
	return env
}

// startJob creates the action's Job, or finds the one created earlier. A Job
// of that name not created for cr is never adopted: the request waits.
func (r *RequestReconciler) startJob(ctx context.Context, cr *v1alpha1.ConsumptionRequest, desired *batchv1.Job) (*batchv1.Job, stepOutcome) {
	job, conflict, err := r.ensureJob(ctx, cr, desired)
	if err != nil {
		return nil, actionError(err)
	}
	if conflict {
		return nil, waitFor(v1alpha1.RequestProvisioning, v1alpha1.ReasonActionJobConflict,
			fmt.Sprintf("Job %s/%s already exists and was not created for this request; it is never adopted: remove it", desired.Namespace, desired.Name)).
			fulfilment().after(secretParameterRecheck)
	}
	return job, stepOutcome{}
}

// ensureJob creates the action's Job, or finds the one created earlier.
// conflict is true for a Job of that name not created for cr.
func (r *RequestReconciler) ensureJob(ctx context.Context, cr *v1alpha1.ConsumptionRequest, desired *batchv1.Job) (*batchv1.Job, bool, error) {
	var have batchv1.Job
	err := r.Get(ctx, client.ObjectKeyFromObject(desired), &have)
	if apierrors.IsNotFound(err) {
		err = r.Create(ctx, desired)
		if err == nil {
			return desired, false, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, false, fmt.Errorf("creating Job %s/%s: %w", desired.Namespace, desired.Name, redact(err))
		}
		err = r.APIReader.Get(ctx, client.ObjectKeyFromObject(desired), &have)
	}
	if err != nil {
		return nil, false, redact(err)
	}
	if !isOurs(&have, cr) {
		return nil, true, nil
	}
	return &have, false, nil
}

// ensureActionSecret creates or updates the copy of the secret parameters in the provider namespace.
func (r *RequestReconciler) ensureActionSecret(ctx context.Context, cr *v1alpha1.ConsumptionRequest, ns, name string, lbls map[string]string,
	data map[string][]byte,
) error {
	desired := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: lbls,
			Annotations: map[string]string{v1alpha1.AnnotationRequest: cr.Namespace + "/" + cr.Name}},
		Type: corev1.SecretTypeOpaque, Data: data,
	}
	var have corev1.Secret
	err := r.Get(ctx, client.ObjectKeyFromObject(desired), &have)
	if apierrors.IsNotFound(err) {
		err = r.Create(ctx, desired)
		if !apierrors.IsAlreadyExists(err) {
			if err != nil {
				return fmt.Errorf("creating Secret %s/%s: %w", ns, name, redact(err))
			}
			return nil
		}
		err = r.APIReader.Get(ctx, client.ObjectKeyFromObject(desired), &have)
	}
	if err != nil {
		return fmt.Errorf("reading Secret %s/%s: %w", ns, name, redact(err))
	}
	if !isOurs(&have, cr) {
		return fmt.Errorf("secret %s/%s exists and was not created for this request; it is never overwritten", ns, name)
	}
	if equalBytesMap(have.Data, data) {
		return nil
	}
	have.Data = data
	if err := r.Update(ctx, &have); err != nil {
		return fmt.Errorf("updating Secret %s/%s: %w", ns, name, redact(err))
	}
	return nil
}

func equalBytesMap(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || string(v) != string(w) {
			return false
		}
	}
	return true
}

// ownSecretByJob makes the Job the owner of the secret-parameter copy, so
// that garbage collection removes it with the Job (also when the TTL
// controller removes a finished Job).
func (r *RequestReconciler) ownSecretByJob(ctx context.Context, ns, name string, job *batchv1.Job) error {
	var sec corev1.Secret
	key := types.NamespacedName{Namespace: ns, Name: name}
	err := r.Get(ctx, key, &sec)
	if apierrors.IsNotFound(err) {
		// The cache may not show a Secret created moments ago.
		err = r.APIReader.Get(ctx, key, &sec)
	}
	if err != nil {
		return redact(err)
	}
	if hasOwnerRef(&sec, job.UID) {
		return nil
	}
	patch := client.MergeFrom(sec.DeepCopy())
	sec.OwnerReferences = append(sec.OwnerReferences, metav1.OwnerReference{
		APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID,
	})
	if err := r.Patch(ctx, &sec, patch); err != nil {
		return fmt.Errorf("setting the owner of Secret %s/%s: %w", ns, name, redact(err))
	}
	return nil
}

// followAction follows an action that has started, whatever the agreement's state.
func (r *RequestReconciler) followAction(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState) stepOutcome {
	if isManualAction(cr) {
		return r.followManual(cr, s)
	}
	return r.followJob(ctx, cr, s)
}

// followManual reports a manual action: a provider's Fulfilled condition decides it.
func (r *RequestReconciler) followManual(cr *v1alpha1.ConsumptionRequest, s *requestState) stepOutcome {
	s.disown(v1alpha1.ConditionFulfilled)
	run := s.status.Action.DeepCopy()
	s.status.Action = run
	c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionFulfilled)
	switch {
	case c != nil && c.Status == metav1.ConditionTrue:
		return r.finishAction(cr, s, actionSucceeded("a provider marked the action completed: "+c.Message), c.LastTransitionTime)
	case c != nil && c.Status == metav1.ConditionFalse && c.Reason == v1alpha1.ReasonActionFailed:
		return r.finishAction(cr, s, actionFailed(v1alpha1.ReasonActionFailed, "a provider marked the action failed: "+c.Message), c.LastTransitionTime)
	}
	return waitFor(v1alpha1.RequestProvisioning, v1alpha1.ReasonAwaitingProvider,
		fmt.Sprintf("manual action %s waits for a provider: add the condition Fulfilled=True when done (or Fulfilled=False "+
			"with reason ActionFailed) through the status subresource", cr.Spec.Action.Name))
}

// followJob reports the outcome of the action's Job.
func (r *RequestReconciler) followJob(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState) stepOutcome {
	run := s.status.Action.DeepCopy()
	s.status.Action = run
	ns, name, _ := strings.Cut(run.Job, "/")
	key := types.NamespacedName{Namespace: ns, Name: name}
	var job batchv1.Job
	err := r.Get(ctx, key, &job)
	if apierrors.IsNotFound(err) {
		// The cache may not show a Job created moments ago.
		err = r.APIReader.Get(ctx, key, &job)
	}
	switch {
	case apierrors.IsNotFound(err) && run.CompletedAt != nil:
		return stepOutcome{}
	case apierrors.IsNotFound(err):
		return r.finishAction(cr, s, actionFailed(v1alpha1.ReasonActionFailed, fmt.Sprintf("Job %s was deleted before it finished", run.Job)), s.now)
	case err != nil:
		return errored(redact(err))
	case !isOurs(&job, cr):
		return r.finishAction(cr, s, actionFailed(v1alpha1.ReasonActionFailed, fmt.Sprintf("Job %s was replaced by one not created for this request", run.Job)), s.now)
	}
	run.Attempts = job.Status.Failed + job.Status.Succeeded + job.Status.Active
	if o := r.jobOutcome(cr, s, &job); o.kind != proceed {
		return o
	}
	msg := fmt.Sprintf("Job %s is running (%d attempt(s))", run.Job, run.Attempts)
	return waitFor(v1alpha1.RequestProvisioning, v1alpha1.ReasonActionRunning, msg).fulfilment()
}

// jobOutcome finishes the action when its Job has completed or failed. It
// proceeds while the Job runs.
func (r *RequestReconciler) jobOutcome(cr *v1alpha1.ConsumptionRequest, s *requestState, job *batchv1.Job) stepOutcome {
	end := s.now
	if job.Status.CompletionTime != nil {
		end = *job.Status.CompletionTime
	}
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return r.finishAction(cr, s, actionSucceeded(jobMessage(job, c, "completed")), end)
		case batchv1.JobFailed:
			reason := v1alpha1.ReasonActionFailed
			if c.Reason == batchv1.JobReasonDeadlineExceeded {
				reason = v1alpha1.ReasonActionTimedOut
			}
			if !c.LastTransitionTime.IsZero() {
				end = c.LastTransitionTime
			}
			return r.finishAction(cr, s, actionFailed(reason, jobMessage(job, c, "failed")), end)
		}
	}
	return stepOutcome{}
}

func jobMessage(job *batchv1.Job, c batchv1.JobCondition, what string) string {
	msg := fmt.Sprintf("Job %s/%s %s", job.Namespace, job.Name, what)
	if c.Reason != "" {
		msg += " (" + c.Reason + ")"
	}
	if c.Message != "" {
		msg += ": " + c.Message
	}
	return msg
}

// actionSucceeded: the action was performed.
func actionSucceeded(msg string) stepOutcome {
	return readyAs(v1alpha1.RequestFulfilled, v1alpha1.ReasonActionSucceeded, msg)
}

// actionFailed: the action ran and failed, for good; it keeps its entitlement used.
func actionFailed(reason, msg string) stepOutcome {
	return stall(v1alpha1.RequestFailed, reason, msg)
}

// finishAction records the outcome of an action: o is ready when it
// succeeded, stalled when it failed. A manual action's Fulfilled is the
// provider's and is left as the provider wrote it.
func (r *RequestReconciler) finishAction(cr *v1alpha1.ConsumptionRequest, s *requestState, o stepOutcome, at metav1.Time) stepOutcome {
	o.message = truncate(o.message, 1024)
	run := s.status.Action
	first := run.CompletedAt == nil
	if first {
		run.CompletedAt = &at
	}
	run.Message = o.message
	ok := o.kind == ready
	event := corev1.EventTypeWarning
	if ok {
		event = corev1.EventTypeNormal
		recordFulfilment(cr, s)
	}
	if first {
		s.tell(relatedActionRun(cr, s), event, o.reason, "Run", "%s", o.message)
	}
	if run.Type == v1alpha1.ActionManual {
		return o
	}
	return o.with(v1alpha1.ConditionFulfilled, boolStatus(ok), o.reason, o.message)
}

// countActions counts action requests by running, succeeded and failed.
func countActions(requests []v1alpha1.ConsumptionRequest) v1alpha1.ActionCounts {
	var c v1alpha1.ActionCounts
	for i := range requests {
		cr := &requests[i]
		if cr.Spec.Action == nil {
			continue
		}
		switch cr.Status.Phase {
		case v1alpha1.RequestFulfilled:
			c.Succeeded++
		case v1alpha1.RequestFailed:
			c.Failed++
		case v1alpha1.RequestProvisioning:
			if actionStarted(cr) {
				c.Running++
			}
		}
	}
	return c
}
