package plugin

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// newGoodsCommand builds `accept` or `reject`.
func newGoodsCommand(o *options, decision v1alpha1.GoodsDecision) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "accept REQUEST [-n NAMESPACE]",
		Short: "Accept the goods delivered for a request (sets spec.goods.decision to Accept)",
		Long: `Sets spec.goods.decision to Accept. Once accepted, the delivered objects belong to you:
the operator lets go of them and they stay when the agreement ends. The decision cannot
be changed afterwards.

Refuses (exit 3) when the request is not a goods request or already has a decision.`,
		Example: `  # Team Payments accepts the two HA devices
  kubectl offering accept ha-pair -n team-payments`,
		Args:              exactArgs("REQUEST"),
		ValidArgsFunction: o.completeRequests,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGoodsDecision(cmd.Context(), o, args[0], decision)
		},
	}
	if decision == v1alpha1.GoodsReject {
		cmd.Use = "reject REQUEST [-n NAMESPACE]"
		cmd.Short = "Reject the goods delivered for a request (sets spec.goods.decision to Reject)"
		cmd.Long = `Sets spec.goods.decision to Reject: the operator removes the delivered copies. The
decision cannot be changed afterwards.

Refuses (exit 3) when the request is not a goods request or already has a decision.`
		cmd.Example = `  # Team Payments sends the HA devices back
  kubectl offering reject ha-pair -n team-payments`
	}
	return cmd
}

func runGoodsDecision(ctx context.Context, o *options, name string, decision v1alpha1.GoodsDecision) error {
	c, cr, err := o.readRequest(ctx, name)
	if err != nil {
		return err
	}
	if cr.Spec.Goods == nil {
		kind, item := requestItem(cr)
		return refusedf("request %s is not a goods request (it asks for the %s item %s): there is nothing to accept or reject",
			cr.Name, kindFlag(kind), item)
	}
	if d := cr.Spec.Goods.Decision; d != "" {
		return refusedf("request %s already has the decision %s, which cannot be changed", cr.Name, d)
	}
	if p := cr.Status.Phase; p == v1alpha1.RequestAccepted || p == v1alpha1.RequestRejected {
		return refusedf("the goods of request %s are already settled (phase %s): %s", cr.Name, p, readyMessage(cr))
	}
	orig := cr.DeepCopy()
	cr.Spec.Goods.Decision = decision
	patch := client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})
	if err := c.Patch(ctx, cr, patch, client.FieldOwner(FieldManager)); err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Errorf("request %s changed while deciding on it; look at it again and retry: %w", cr.Name, err)
		}
		return fmt.Errorf("setting the decision of %s: %w", cr.Name, err)
	}
	verb := "accepted"
	if decision == v1alpha1.GoodsReject {
		verb = "rejected"
	}
	fmt.Fprintf(o.streams.Out, "consumptionrequest/%s goods %s\n", cr.Name, verb)
	if cr.Status.Phase != "" && cr.Status.Phase != v1alpha1.RequestDelivered {
		fmt.Fprintf(o.streams.ErrOut, "note: the goods are not delivered yet (phase %s); the decision takes effect on delivery\n", cr.Status.Phase)
	}
	return nil
}
