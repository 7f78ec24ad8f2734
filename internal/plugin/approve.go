package plugin

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Default reasons of the conditions the plugin writes.
const (
	ReasonApprovedByProvider = "ApprovedByProvider"
	ReasonDeniedByProvider   = v1alpha1.ReasonDeniedByProvider
)

// conditionReason is the pattern metav1.Condition.Reason must match.
var conditionReason = regexp.MustCompile(`^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`)

// operatorReasons are the reasons the operator uses for its own Approved and
// Denied conditions: a condition with one of them would be taken for the operator's.
var operatorReasons = map[string]bool{
	v1alpha1.ReasonAutoApproved:            true,
	v1alpha1.ReasonItemNotEntitled:         true,
	v1alpha1.ReasonItemNotOffered:          true,
	v1alpha1.ReasonEntitlementExhausted:    true,
	v1alpha1.ReasonRequestedNameNotAllowed: true,
}

type decisionOptions struct {
	reason  string
	message string
}

// newDecisionCommand builds `approve` (approve=true) or `deny`.
func newDecisionCommand(o *options, approve bool) *cobra.Command {
	do := &decisionOptions{}
	cmd := &cobra.Command{
		Use:   "approve REQUEST [-n NAMESPACE] [--reason REASON] [--message MESSAGE]",
		Short: "Approve a ConsumptionRequest that waits for a provider's approval",
		Long: `Adds the condition Approved=True to a request under a Manual agreement, through the
status subresource with server-side apply (field manager kubectl-offering), so the
operator's own conditions are left alone. The message names the approver (from a
SelfSubjectReview) when the cluster tells who you are.

Refuses (exit 3) when the agreement approves automatically, when the request already
has an Approved or Denied condition, or when it is not AwaitingApproval.`,
		Example: `  # Acme approves Team Payments' request for a dedicated server
  kubectl offering approve dedicated-server-x7k2q -n team-payments --message "capacity confirmed"`,
		Args:              exactArgs("REQUEST"),
		ValidArgsFunction: o.completeRequests,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDecision(cmd.Context(), o, do, args[0], approve)
		},
	}
	defaultReason := ReasonApprovedByProvider
	if !approve {
		cmd.Use = "deny REQUEST --message MESSAGE [-n NAMESPACE] [--reason REASON]"
		cmd.Short = "Deny a ConsumptionRequest that waits for a provider's approval"
		cmd.Long = `Adds the condition Denied=True to a request under a Manual agreement, through the
status subresource with server-side apply (field manager kubectl-offering). The
message is required: it tells the consumer why, and names the approver (from a
SelfSubjectReview) when the cluster tells who you are.

Refuses (exit 3) when the agreement approves automatically, when the request already
has an Approved or Denied condition, or when it is not AwaitingApproval.`
		cmd.Example = `  # Acme denies a request for a second dedicated server
  kubectl offering deny dedicated-server-x7k2q -n team-payments --message "no capacity in fra-1 until March"`
		defaultReason = ReasonDeniedByProvider
	}
	cmd.Flags().StringVar(&do.reason, "reason", defaultReason, "The condition's reason (CamelCase)")
	cmd.Flags().StringVar(&do.message, "message", "", "The condition's message (the approver's identity is added)")
	if !approve {
		_ = cmd.MarkFlagRequired("message")
	}
	return cmd
}

func runDecision(ctx context.Context, o *options, do *decisionOptions, name string, approve bool) error {
	if !conditionReason.MatchString(do.reason) || len(do.reason) > 1024 {
		return usageErrorf("--reason %q: must be CamelCase letters, digits, '_', ',' or ':', starting with a letter", do.reason)
	}
	if operatorReasons[do.reason] {
		return usageErrorf("--reason %s is reserved for the operator", do.reason)
	}
	if !approve && do.message == "" {
		return usageErrorf("deny needs --message: tell the consumer why")
	}
	c, cr, err := o.readRequest(ctx, name, checkDecidable)
	if err != nil {
		return err
	}

	condType, verb := v1alpha1.ConditionApproved, "approved"
	if !approve {
		condType, verb = v1alpha1.ConditionDenied, "denied"
	}
	msg := decisionMessage(verb, whoAmI(ctx, c), do.message)
	if err := applyCondition(ctx, c, cr, condType, metav1.ConditionTrue, do.reason, msg); err != nil {
		return err
	}
	fmt.Fprintf(o.streams.Out, "consumptionrequest/%s %s\n", cr.Name, verb)
	return nil
}

// checkDecidable refuses a decision on a request that does not wait for one.
func checkDecidable(ctx context.Context, c client.Client, cr *v1alpha1.ConsumptionRequest) error {
	var agr v1alpha1.ServiceAgreement
	err := c.Get(ctx, client.ObjectKey{Namespace: cr.Namespace, Name: string(cr.Spec.Agreement)}, &agr)
	switch {
	case err == nil:
		if agr.Spec.ApprovalPolicy != v1alpha1.ApprovalManual {
			return refusedf("ServiceAgreement %s approves requests automatically (approvalPolicy %s): there is nothing to approve or deny for %s",
				agr.Name, policyOrDefault(agr.Spec.ApprovalPolicy), cr.Name)
		}
	case apierrors.IsNotFound(err):
		// The phase check below explains what happened to the request.
	default:
		return fmt.Errorf("reading ServiceAgreement %s/%s: %w", cr.Namespace, cr.Spec.Agreement, err)
	}
	for _, t := range []string{v1alpha1.ConditionApproved, v1alpha1.ConditionDenied} {
		if c := meta.FindStatusCondition(cr.Status.Conditions, t); c != nil && c.Status == metav1.ConditionTrue {
			return refusedf("request %s already has a decision: %s=True (%s): %s", cr.Name, t, c.Reason, c.Message)
		}
	}
	if cr.Status.Phase != v1alpha1.RequestAwaitingApproval {
		phase := string(cr.Status.Phase)
		if phase == "" {
			phase = "not yet reported by the operator"
		}
		return refusedf("request %s is not AwaitingApproval (phase: %s)", cr.Name, phase)
	}
	return nil
}

func policyOrDefault(p v1alpha1.ApprovalPolicy) v1alpha1.ApprovalPolicy {
	if p == "" {
		return v1alpha1.ApprovalAutomatic
	}
	return p
}

func decisionMessage(verb, user, message string) string {
	s := verb
	if user != "" {
		s += " by " + user
	}
	s += " with kubectl-offering"
	if message != "" {
		s += ": " + message
	}
	return s
}

// whoAmI returns the user name the API server authenticates us as, or "" when it cannot tell.
func whoAmI(ctx context.Context, c client.Client) string {
	ssr := &authenticationv1.SelfSubjectReview{}
	if err := c.Create(ctx, ssr); err != nil {
		return ""
	}
	return ssr.Status.UserInfo.Username
}

// applyCondition adds one condition to the request's status with server-side
// apply: the plugin owns only that condition, and the apply fails if the
// request changed since it was read.
func applyCondition(ctx context.Context, c client.Client, cr *v1alpha1.ConsumptionRequest,
	condType string, status metav1.ConditionStatus, reason, message string,
) error {
	condMap := map[string]any{
		"type":               condType,
		"status":             string(status),
		"observedGeneration": cr.Generation,
		"lastTransitionTime": time.Now().UTC().Truncate(time.Second).Format(time.RFC3339),
		"reason":             reason,
		"message":            message,
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       "ConsumptionRequest",
		"metadata": map[string]any{
			"name":            cr.Name,
			"namespace":       cr.Namespace,
			"resourceVersion": cr.ResourceVersion,
		},
		"status": map[string]any{"conditions": []any{condMap}},
	}}
	err := c.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager))
	if apierrors.IsConflict(err) {
		return fmt.Errorf("request %s changed while deciding on it; look at it again and retry: %w", cr.Name, err)
	}
	if err != nil {
		return fmt.Errorf("writing the %s condition of %s: %w", condType, cr.Name, err)
	}
	return nil
}

// readRequest returns a client and the named ConsumptionRequest in the
// command's namespace, for the commands that act on one request.
// Each check may refuse the request read, with the reason.
func (o *options) readRequest(ctx context.Context, name string,
	checks ...func(context.Context, client.Client, *v1alpha1.ConsumptionRequest) error,
) (client.Client, *v1alpha1.ConsumptionRequest, error) {
	c, ns, err := o.connect()
	if err != nil {
		return nil, nil, err
	}
	var cr v1alpha1.ConsumptionRequest
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &cr); err != nil {
		return nil, nil, fmt.Errorf("reading ConsumptionRequest %s/%s: %w", ns, name, err)
	}
	for _, check := range checks {
		if err := check(ctx, c, &cr); err != nil {
			return nil, nil, err
		}
	}
	return c, &cr, nil
}
