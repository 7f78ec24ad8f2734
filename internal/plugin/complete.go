package plugin

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// ReasonCompleted is the default reason of the Fulfilled=True condition `complete` writes.
const ReasonCompleted = "Completed"

type completeOptions struct {
	failed  bool
	reason  string
	message string
}

// newCompleteCommand builds `complete`: a provider marks a manual action done or failed.
func newCompleteCommand(o *options) *cobra.Command {
	co := &completeOptions{}
	cmd := &cobra.Command{
		Use:   "complete REQUEST [-n NAMESPACE] [--failed] [--message MESSAGE] [--reason REASON]",
		Short: "Mark a manual service action completed (or failed) as its provider",
		Long: `Adds the condition Fulfilled=True (reason Completed) to an action request whose action
is Manual and that waits for a provider (phase Provisioning, Ready reason
AwaitingProvider); with --failed, Fulfilled=False with reason ActionFailed (--message is
then required: tell the consumer why). The condition is written through the status
subresource with server-side apply (field manager kubectl-offering) and the request's
resourceVersion, so the operator's own conditions are left alone. The message names the
provider (from a SelfSubjectReview) when the cluster tells who you are. The operator
then moves the request to Fulfilled or Failed.

Refuses (exit 3) when the request is not an action request, when the offering's action
is Automated, when the action is already marked completed or failed (or the request is
Fulfilled or Failed), or when the request does not wait for a provider yet (for example
it is still AwaitingApproval). Exit 1 when the agreement or offering cannot be read.`,
		Example: `  # Acme's support desk closed Team Payments' ticket
  kubectl offering complete support-ticket -n team-payments --message "OPS-1234 resolved"

  # ... or could not help
  kubectl offering complete support-ticket -n team-payments --failed --message "OPS-1234: hardware out of support"`,
		Args:              exactArgs("REQUEST"),
		ValidArgsFunction: o.completeRequests,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runComplete(cmd.Context(), o, co, cmd.Flags().Changed("reason"), args[0])
		},
	}
	cmd.Flags().BoolVar(&co.failed, "failed", false, "Mark the action failed (Fulfilled=False, reason ActionFailed); needs --message")
	cmd.Flags().StringVar(&co.reason, "reason", ReasonCompleted,
		"The condition's reason (CamelCase); with --failed it must be ActionFailed")
	cmd.Flags().StringVar(&co.message, "message", "", "The condition's message (the provider's identity is added)")
	return cmd
}

func runComplete(ctx context.Context, o *options, co *completeOptions, reasonSet bool, name string) error {
	reason := co.reason
	if co.failed {
		if reasonSet && reason != v1alpha1.ReasonActionFailed {
			return usageErrorf("--failed: the reason must be %s (the operator only takes a failure with that reason), not %s",
				v1alpha1.ReasonActionFailed, reason)
		}
		reason = v1alpha1.ReasonActionFailed
		if co.message == "" {
			return usageErrorf("complete --failed needs --message: tell the consumer why")
		}
	} else {
		if !conditionReason.MatchString(reason) || len(reason) > 1024 {
			return usageErrorf("--reason %q: must be CamelCase letters, digits, '_', ',' or ':', starting with a letter", reason)
		}
		if reason == v1alpha1.ReasonActionFailed {
			return usageErrorf("--reason %s marks a failure: use --failed", reason)
		}
	}
	c, cr, err := o.readRequest(ctx, name, checkCompletable)
	if err != nil {
		return err
	}

	status, verb := metav1.ConditionTrue, "completed"
	if co.failed {
		status, verb = metav1.ConditionFalse, "failed"
	}
	msg := decisionMessage(verb, whoAmI(ctx, c), co.message)
	if err := applyCondition(ctx, c, cr, v1alpha1.ConditionFulfilled, status, reason, msg); err != nil {
		return err
	}
	fmt.Fprintf(o.streams.Out, "consumptionrequest/%s action %s\n", cr.Name, verb)
	return nil
}

// checkCompletable refuses to mark an action that is not a manual action waiting for a provider.
func checkCompletable(ctx context.Context, c client.Client, cr *v1alpha1.ConsumptionRequest) error {
	if cr.Spec.Action == nil {
		return refusedf("request %s is not an action request: there is no action to complete", cr.Name)
	}
	action := cr.Spec.Action.Name
	var agr v1alpha1.ServiceAgreement
	if err := c.Get(ctx, client.ObjectKey{Namespace: cr.Namespace, Name: string(cr.Spec.Agreement)}, &agr); err != nil {
		return fmt.Errorf("reading ServiceAgreement %s/%s to find the type of action %s: %w", cr.Namespace, cr.Spec.Agreement, action, err)
	}
	var off v1alpha1.ServiceOffering
	if err := c.Get(ctx, client.ObjectKey{Name: string(agr.Spec.Offering)}, &off); err != nil {
		if apierrors.IsForbidden(err) {
			return fmt.Errorf("reading ServiceOffering %s to find the type of action %s (you need get on serviceofferings): %w",
				agr.Spec.Offering, action, err)
		}
		return fmt.Errorf("reading ServiceOffering %s to find the type of action %s: %w", agr.Spec.Offering, action, err)
	}
	var item *v1alpha1.ActionItem
	for i := range off.Spec.Actions {
		if off.Spec.Actions[i].Name == action {
			item = &off.Spec.Actions[i]
			break
		}
	}
	if item == nil {
		return refusedf("ServiceOffering %s has no action %s: there is nothing to complete for %s", off.Name, action, cr.Name)
	}
	if item.Type != v1alpha1.ActionManual {
		return refusedf("action %s of ServiceOffering %s is %s: its Job decides the outcome, not a provider; there is nothing to complete for %s",
			action, off.Name, item.Type, cr.Name)
	}
	if f := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionFulfilled); f != nil {
		switch {
		case f.Status == metav1.ConditionTrue:
			return refusedf("request %s is already marked completed: Fulfilled=True (%s): %s", cr.Name, f.Reason, f.Message)
		case f.Status == metav1.ConditionFalse && f.Reason == v1alpha1.ReasonActionFailed:
			return refusedf("request %s is already marked failed: Fulfilled=False (%s): %s", cr.Name, f.Reason, f.Message)
		}
	}
	switch cr.Status.Phase {
	case v1alpha1.RequestFulfilled, v1alpha1.RequestFailed:
		return refusedf("request %s is already %s: its action is over", cr.Name, cr.Status.Phase)
	}
	readyReason := ""
	if r := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionReady); r != nil {
		readyReason = r.Reason
	}
	if cr.Status.Phase != v1alpha1.RequestProvisioning || readyReason != v1alpha1.ReasonAwaitingProvider {
		phase := string(cr.Status.Phase)
		if phase == "" {
			phase = "not yet reported by the operator"
		}
		if readyReason == "" {
			readyReason = "none"
		}
		return refusedf("request %s does not wait for a provider (phase: %s, Ready reason: %s; want Provisioning, %s)",
			cr.Name, phase, readyReason, v1alpha1.ReasonAwaitingProvider)
	}
	return nil
}
