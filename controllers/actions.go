package controllers

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
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
) (ctrl.Result, error) {
	if msg := validateParameters(item, cr.Spec.Action); msg != "" {
		return ctrl.Result{}, r.failBeforeRunning(ctx, cr, agr, s, v1alpha1.ReasonInvalidParameters, msg)
	}
	if item.Type == v1alpha1.ActionManual {
		s.disown(v1alpha1.ConditionFulfilled)
		s.status.Action = &v1alpha1.ActionRun{Type: v1alpha1.ActionManual, StartedAt: &s.now}
		r.Recorder.Eventf(cr, nil, corev1.EventTypeNormal, "AwaitingProvider", "Run", "manual action %s was handed to the provider", item.Name)
		r.followManual(cr, s)
		return ctrl.Result{}, nil
	}
	if item.Job == nil {
		msg := fmt.Sprintf("action %s of ServiceOffering %s is Automated but has no job; the request waits", item.Name, off.Name)
		s.notReady(v1alpha1.RequestProvisioning, v1alpha1.ReasonItemNotOffered, msg)
		s.set(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, v1alpha1.ReasonItemNotOffered, msg)
		return ctrl.Result{}, nil
	}
	if why := unsafeExpansion(item); why != "" {
		msg := fmt.Sprintf("action %s of ServiceOffering %s is not run: %s; the request waits for the offering to be fixed", item.Name, off.Name, why)
		s.notReady(v1alpha1.RequestProvisioning, v1alpha1.ReasonUnsafeParameterExpansion, msg)
		s.set(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, v1alpha1.ReasonUnsafeParameterExpansion, msg)
		return ctrl.Result{}, nil
	}
	s.status.Phase = v1alpha1.RequestProvisioning
	providerNS := string(off.Spec.ProviderNamespace)
	if why := r.Options.providerNamespaceRefusal(providerNS); why != "" {
		// The offering is not Ready then, but the request may be reconciled before its agreement shows it.
		msg := fmt.Sprintf("action %s of ServiceOffering %s is not run: %s; no Job or secret copy was created and the request waits",
			item.Name, off.Name, why)
		s.notReady(v1alpha1.RequestProvisioning, v1alpha1.ReasonProviderNamespaceForbidden, msg)
		s.set(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, v1alpha1.ReasonProviderNamespaceForbidden, msg)
		return ctrl.Result{}, nil
	}
	lbls := childLabels(cr, string(agr.Spec.Offering), item.Name)

	// Secret parameters: read live from the consumer's namespace and copied to the provider namespace,
	// only those the request's creator may read itself (request_secret_access.go).
	if why, err := secretAccessRefusal(ctx, r.Client, r.APIReader, cr); why != "" || err != nil {
		return r.refuseSecretAccess(s, why, err)
	}
	secretData := map[string][]byte{}
	for _, p := range cr.Spec.Action.SecretParameters {
		var sec corev1.Secret
		err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: cr.Namespace, Name: string(p.SecretKeyRef.Name)}, &sec)
		if apierrors.IsNotFound(err) {
			return r.waitForSecret(s, fmt.Sprintf("secret parameter %s: Secret %s/%s does not exist; the request waits for it",
				p.Name, cr.Namespace, p.SecretKeyRef.Name))
		}
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("reading secret parameter %s: %w", p.Name, redact(err))
		}
		v, ok := sec.Data[p.SecretKeyRef.Key]
		if !ok {
			return r.waitForSecret(s, fmt.Sprintf("secret parameter %s: Secret %s/%s has no key %s; the request waits for it",
				p.Name, cr.Namespace, p.SecretKeyRef.Name, p.SecretKeyRef.Key))
		}
		secretData[string(p.Name)] = v
	}
	secretName := actionSecretName(cr)
	if len(secretData) > 0 {
		if err := r.ensureActionSecret(ctx, cr, providerNS, secretName, lbls, secretData); err != nil {
			return r.actionError(s, err)
		}
	}

	desired := desiredJob(cr, agr, item, providerNS, secretName, lbls)
	job, conflict, err := r.ensureJob(ctx, cr, desired)
	if err != nil {
		return r.actionError(s, err)
	}
	if conflict {
		msg := fmt.Sprintf("Job %s/%s already exists and was not created for this request; it is never adopted: remove it", providerNS, desired.Name)
		s.notReady(v1alpha1.RequestProvisioning, v1alpha1.ReasonActionJobConflict, msg)
		s.set(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, v1alpha1.ReasonActionJobConflict, msg)
		return ctrl.Result{RequeueAfter: secretParameterRecheck}, nil
	}
	if len(secretData) > 0 {
		if err := r.ownSecretByJob(ctx, providerNS, secretName, job); err != nil {
			return r.actionError(s, err)
		}
	}
	s.status.Action = &v1alpha1.ActionRun{Type: v1alpha1.ActionAutomated, Job: providerNS + "/" + job.Name, StartedAt: &s.now}
	r.Recorder.Eventf(cr, nil, corev1.EventTypeNormal, "ActionStarted", "Run", "action %s started as Job %s/%s", item.Name, providerNS, job.Name)
	return r.followJob(ctx, cr, s)
}

func (r *RequestReconciler) waitForSecret(s *requestState, msg string) (ctrl.Result, error) {
	s.notReady(v1alpha1.RequestProvisioning, v1alpha1.ReasonSecretParameterNotFound, msg)
	s.set(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, v1alpha1.ReasonSecretParameterNotFound, msg)
	return ctrl.Result{RequeueAfter: secretParameterRecheck}, nil
}

// actionError reports an error starting the action; the operator retries.
func (r *RequestReconciler) actionError(s *requestState, err error) (ctrl.Result, error) {
	msg := "starting the action: " + err.Error()
	s.notReady(v1alpha1.RequestProvisioning, v1alpha1.ReasonActionStartFailed, msg)
	s.set(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, v1alpha1.ReasonActionStartFailed, msg)
	return ctrl.Result{}, err
}

// failBeforeRunning fails an action request that never ran: its entitlement is given back.
func (r *RequestReconciler) failBeforeRunning(ctx context.Context, cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement, s *requestState,
	reason, msg string,
) error {
	if hasAllocation(agr, string(cr.UID)) || s.status.AdmittedAt != nil {
		if err := releaseAllocations(ctx, r.Client, r.APIReader, agr, string(cr.UID)); err != nil {
			return err
		}
	}
	s.status.Action = nil
	full := msg + "; nothing ran and the entitlement was given back"
	s.notReady(v1alpha1.RequestFailed, reason, full)
	s.set(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, reason, full)
	r.Recorder.Eventf(cr, nil, corev1.EventTypeWarning, "Failed", "Run", "%s", full)
	return nil
}

// desiredJob is the Job that runs an automated action for cr.
func desiredJob(cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement, item *v1alpha1.ActionItem, ns, secretName string,
	lbls map[string]string,
) *batchv1.Job {
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
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{v1alpha1.LabelRequestUID: string(cr.UID)}},
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

// isOurs reports whether obj was created by the operator for cr.
func isOurs(obj client.Object, cr *v1alpha1.ConsumptionRequest) bool {
	l := obj.GetLabels()
	return l[v1alpha1.LabelManagedBy] == v1alpha1.ManagedByValue && l[v1alpha1.LabelRequestUID] == string(cr.UID)
}

// ensureJob creates the action's Job, or finds the one created earlier. A Job
// of that name not created for cr is never adopted: conflict is true.
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
func (r *RequestReconciler) followAction(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState) (ctrl.Result, error) {
	if isManualAction(cr) {
		r.followManual(cr, s)
		return ctrl.Result{}, nil
	}
	return r.followJob(ctx, cr, s)
}

// followManual reports a manual action: a provider's Fulfilled condition decides it.
func (r *RequestReconciler) followManual(cr *v1alpha1.ConsumptionRequest, s *requestState) {
	s.disown(v1alpha1.ConditionFulfilled)
	run := s.status.Action.DeepCopy()
	s.status.Action = run
	c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionFulfilled)
	switch {
	case c != nil && c.Status == metav1.ConditionTrue:
		r.finishAction(cr, s, true, v1alpha1.ReasonActionSucceeded, "a provider marked the action completed: "+c.Message, c.LastTransitionTime)
	case c != nil && c.Status == metav1.ConditionFalse && c.Reason == v1alpha1.ReasonActionFailed:
		r.finishAction(cr, s, false, v1alpha1.ReasonActionFailed, "a provider marked the action failed: "+c.Message, c.LastTransitionTime)
	default:
		s.notReady(v1alpha1.RequestProvisioning, v1alpha1.ReasonAwaitingProvider,
			fmt.Sprintf("manual action %s waits for a provider: add the condition Fulfilled=True when done (or Fulfilled=False "+
				"with reason ActionFailed) through the status subresource", cr.Spec.Action.Name))
	}
}

// followJob reports the outcome of the action's Job.
func (r *RequestReconciler) followJob(ctx context.Context, cr *v1alpha1.ConsumptionRequest, s *requestState) (ctrl.Result, error) {
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
	if apierrors.IsNotFound(err) {
		if run.CompletedAt != nil {
			return ctrl.Result{}, nil
		}
		r.finishAction(cr, s, false, v1alpha1.ReasonActionFailed, fmt.Sprintf("Job %s was deleted before it finished", run.Job), s.now)
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, redact(err)
	}
	if !isOurs(&job, cr) {
		r.finishAction(cr, s, false, v1alpha1.ReasonActionFailed, fmt.Sprintf("Job %s was replaced by one not created for this request", run.Job), s.now)
		return ctrl.Result{}, nil
	}
	run.Attempts = job.Status.Failed + job.Status.Succeeded + job.Status.Active
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
			r.finishAction(cr, s, true, v1alpha1.ReasonActionSucceeded, jobMessage(&job, c, "completed"), end)
			return ctrl.Result{}, nil
		case batchv1.JobFailed:
			reason := v1alpha1.ReasonActionFailed
			if c.Reason == batchv1.JobReasonDeadlineExceeded {
				reason = v1alpha1.ReasonActionTimedOut
			}
			if !c.LastTransitionTime.IsZero() {
				end = c.LastTransitionTime
			}
			r.finishAction(cr, s, false, reason, jobMessage(&job, c, "failed"), end)
			return ctrl.Result{}, nil
		}
	}
	msg := fmt.Sprintf("Job %s is running (%d attempt(s))", run.Job, run.Attempts)
	s.notReady(v1alpha1.RequestProvisioning, v1alpha1.ReasonActionRunning, msg)
	s.set(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, v1alpha1.ReasonActionRunning, msg)
	return ctrl.Result{}, nil
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

// finishAction records the outcome of an action.
func (r *RequestReconciler) finishAction(cr *v1alpha1.ConsumptionRequest, s *requestState, ok bool, reason, msg string, at metav1.Time) {
	msg = truncate(msg, 1024)
	run := s.status.Action
	first := run.CompletedAt == nil
	if first {
		run.CompletedAt = &at
	}
	run.Message = msg
	manual := run.Type == v1alpha1.ActionManual
	if ok {
		s.status.Phase = v1alpha1.RequestFulfilled
		if !manual {
			s.set(v1alpha1.ConditionFulfilled, metav1.ConditionTrue, reason, msg)
		}
		s.set(v1alpha1.ConditionReady, metav1.ConditionTrue, reason, msg)
		if s.status.FulfilledAt == nil {
			s.status.FulfilledAt = &s.now
			d := s.now.Sub(cr.CreationTimestamp.Time).Round(time.Millisecond)
			s.status.FulfilmentDuration = &metav1.Duration{Duration: d}
		}
		if first {
			r.Recorder.Eventf(cr, nil, corev1.EventTypeNormal, reason, "Run", "%s", msg)
		}
		return
	}
	s.notReady(v1alpha1.RequestFailed, reason, msg)
	if !manual {
		s.set(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, reason, msg)
	}
	if first {
		r.Recorder.Eventf(cr, nil, corev1.EventTypeWarning, reason, "Run", "%s", msg)
	}
}

// cancelAction deletes the action's Job (with its Pods: background
// propagation) and the copy of its secret parameters. It reports whether a
// running Job was cancelled.
func (r *RequestReconciler) cancelAction(ctx context.Context, cr *v1alpha1.ConsumptionRequest) (bool, error) {
	if cr.Spec.Action == nil {
		return false, nil
	}
	sel := client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelRequestUID: string(cr.UID)}
	jobs := map[types.NamespacedName]bool{}
	var list batchv1.JobList
	if err := r.List(ctx, &list, sel); err != nil {
		return false, err
	}
	for i := range list.Items {
		jobs[client.ObjectKeyFromObject(&list.Items[i])] = true
	}
	secrets := map[types.NamespacedName]bool{}
	if run := cr.Status.Action; run != nil && run.Job != "" {
		ns, name, _ := strings.Cut(run.Job, "/")
		jobs[types.NamespacedName{Namespace: ns, Name: name}] = true
		secrets[types.NamespacedName{Namespace: ns, Name: actionSecretName(cr)}] = true
	}
	var secList corev1.SecretList
	if err := r.List(ctx, &secList, sel); err != nil {
		return false, err
	}
	for i := range secList.Items {
		secrets[client.ObjectKeyFromObject(&secList.Items[i])] = true
	}
	cancelled, err := r.deleteActionJobs(ctx, cr, jobs)
	if err != nil {
		return cancelled, err
	}
	return cancelled, r.deleteActionSecrets(ctx, cr, secrets)
}

// deleteActionJobs deletes the given Jobs that were created for cr, with
// their Pods. It reports whether one of them was still running.
func (r *RequestReconciler) deleteActionJobs(ctx context.Context, cr *v1alpha1.ConsumptionRequest, jobs map[types.NamespacedName]bool) (bool, error) {
	cancelled := false
	keys := make([]types.NamespacedName, 0, len(jobs))
	for k := range jobs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		var job batchv1.Job
		if err := r.APIReader.Get(ctx, k, &job); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return cancelled, redact(err)
		}
		if !isOurs(&job, cr) || !job.DeletionTimestamp.IsZero() {
			continue
		}
		uid := job.UID
		err := r.Delete(ctx, &job, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &uid})
		if client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
			return cancelled, redact(err)
		}
		if !jobFinished(&job) {
			cancelled = true
		}
	}
	return cancelled, nil
}

// deleteActionSecrets deletes the given secret-parameter copies that were created for cr.
func (r *RequestReconciler) deleteActionSecrets(ctx context.Context, cr *v1alpha1.ConsumptionRequest, secrets map[types.NamespacedName]bool) error {
	for k := range secrets {
		var sec corev1.Secret
		if err := r.APIReader.Get(ctx, k, &sec); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return redact(err)
		}
		if !isOurs(&sec, cr) {
			continue
		}
		if err := deleteWithUID(ctx, r.Client, &sec); err != nil {
			return redact(err)
		}
	}
	return nil
}

func jobFinished(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
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
