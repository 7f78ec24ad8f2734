package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

type requestOptions struct {
	agreement     string
	kind          string
	quantity      int32
	params        []string
	namespaceName string
	plan          string
	name          string
	wait          bool
	timeout       time.Duration
	dryRun        string
	out           *outputFlags
}

// The values of --dry-run, as kubectl takes them.
const (
	dryRunNone   = "none"
	dryRunClient = "client"
	dryRunServer = "server"
)

func newRequestCommand(o *options) *cobra.Command {
	ro := &requestOptions{out: newOutputFlags(true)}
	cmd := &cobra.Command{
		Use:   "request ITEM --agreement AGREEMENT [flags]",
		Short: "Request an item under an agreement (creates a ConsumptionRequest)",
		Long: `Creates a ConsumptionRequest for ITEM under the agreement, in the namespace (-n), and
prints its name. The kind of item (resource, goods or action) is inferred from the
agreement's offering when the name is unambiguous; otherwise give --kind. Without
--name the request's name is generated from the item's.

With --wait the command waits (at most --timeout) until the request is Ready, is
Delivered (goods waiting for your decision) or has ended (Denied, Failed, Rejected,
Revoked), and reports the final phase and reason. A request that ended without being
fulfilled exits 3; a timeout exits 1.

With --dry-run=client nothing is created: the request is printed (-o yaml gives a
manifest to commit to a GitOps repository; without --name a name is generated, since
a manifest needs one). With --dry-run=server the API server validates the request
without storing it.`,
		Example: `  # Rack space for Team Payments, waiting for the grant
  kubectl offering request rack-space --agreement acme-payments -n team-payments --wait

  # A dedicated server in a namespace of your choosing
  kubectl offering request dedicated-server --agreement acme-payments -n team-payments --namespace-name payments-db

  # Two HA devices (goods)
  kubectl offering request ha-device --agreement acme-payments -n team-payments --quantity 2 --name ha-pair

  # A service action with parameters
  kubectl offering request installation --agreement acme-payments -n team-payments --param RACK=rack-a --param DEVICE=ha-device-1

  # A manifest for Git instead of an object in the cluster
  kubectl offering request rack-space --agreement acme-payments -n team-payments --name rack-b --dry-run=client -o yaml`,
		Args:              exactArgs("ITEM"),
		ValidArgsFunction: o.completeItems,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRequest(cmd.Context(), o, ro, args[0], cmd.Flags().Changed("quantity"))
		},
	}
	f := cmd.Flags()
	f.StringVar(&ro.agreement, "agreement", "", "The ServiceAgreement to request under (required)")
	f.StringVar(&ro.kind, "kind", "", "The kind of item: resource, goods or action (default: inferred from the offering)")
	f.Int32Var(&ro.quantity, "quantity", 1, "How many of the goods item (goods only)")
	f.StringArrayVar(&ro.params, "param", nil, "An action parameter NAME=VALUE (actions only; repeatable)")
	f.StringVar(&ro.namespaceName, "namespace-name", "", "The namespace to grant, if the offering allows choosing it (resources only)")
	f.StringVar(&ro.plan, "plan", "", "The plan of the item (resources only; default: the item's defaultPlan)")
	f.StringVar(&ro.name, "name", "", "The request's name (default: generated from the item)")
	f.BoolVar(&ro.wait, "wait", false, "Wait until the request is Ready or has ended, and report its phase")
	f.DurationVar(&ro.timeout, "timeout", 60*time.Second, "How long --wait waits")
	f.StringVar(&ro.dryRun, "dry-run", dryRunNone,
		`"none", "client" (print the request, create nothing) or "server" (the API server validates it, stores nothing)`)
	f.Lookup("dry-run").NoOptDefVal = dryRunClient
	ro.out.addFlags(cmd, false)
	_ = cmd.MarkFlagRequired("agreement")
	_ = cmd.RegisterFlagCompletionFunc("agreement", o.completeAgreements)
	_ = cmd.RegisterFlagCompletionFunc("kind", fixedCompletion("resource", "goods", "action"))
	_ = cmd.RegisterFlagCompletionFunc("dry-run", fixedCompletion(dryRunNone, dryRunClient, dryRunServer))
	return cmd
}

func runRequest(ctx context.Context, o *options, ro *requestOptions, item string, quantitySet bool) error {
	kind, params, err := ro.validate()
	if err != nil {
		return err
	}
	c, ns, err := o.connect()
	if err != nil {
		return err
	}
	var agr v1alpha1.ServiceAgreement
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: ro.agreement}, &agr); err != nil {
		return fmt.Errorf("reading ServiceAgreement %s/%s: %w", ns, ro.agreement, err)
	}
	if kind == "" {
		if kind, err = inferKind(ctx, c, &agr, item); err != nil {
			return err
		}
	}
	if err := ro.checkKindFlags(kind, item, quantitySet, len(params) > 0); err != nil {
		return err
	}

	cr := newRequest(ns, ro, kind, item, params)
	if ro.dryRun == dryRunClient {
		return ro.printDryRun(o, cr)
	}
	opts := []client.CreateOption{client.FieldOwner(FieldManager)}
	if ro.dryRun == dryRunServer {
		opts = append(opts, client.DryRunAll)
	}
	if err := c.Create(ctx, cr, opts...); err != nil {
		return fmt.Errorf("creating the ConsumptionRequest: %w", err)
	}
	if ro.out.format() == "" {
		fmt.Fprintln(o.streams.Out, cr.Name)
	}
	if !ro.wait || ro.dryRun == dryRunServer {
		if ro.out.format() != "" {
			return ro.out.printObject(o.streams.Out, cr)
		}
		return nil
	}
	final, waitErr := o.waitForRequest(ctx, client.ObjectKeyFromObject(cr), ro.timeout)
	if final != nil {
		if ro.out.format() != "" {
			if err := ro.out.printObject(o.streams.Out, final); err != nil {
				return err
			}
		} else {
			fmt.Fprintln(o.streams.ErrOut, describeOutcome(final))
		}
	}
	if waitErr != nil {
		return waitErr
	}
	switch final.Status.Phase {
	case v1alpha1.RequestDenied, v1alpha1.RequestFailed, v1alpha1.RequestRejected, v1alpha1.RequestRevoked:
		return refusedf("request %s ended %s", final.Name, final.Status.Phase)
	}
	return nil
}

// printDryRun prints the request that would be created, as a manifest: a
// name (generated when --name is not given), no status, no server fields.
func (ro *requestOptions) printDryRun(o *options, cr *v1alpha1.ConsumptionRequest) error {
	if cr.Name == "" {
		cr.Name = cr.GenerateName + utilrand.String(5)
		cr.GenerateName = ""
	}
	if ro.out.format() == "" {
		fmt.Fprintf(o.streams.Out, "consumptionrequest.%s/%s created (dry run)\n", v1alpha1.GroupVersion.Group, cr.Name)
		return nil
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cr)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("ConsumptionRequest"))
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	return ro.out.printObject(o.streams.Out, u)
}

// validate checks the flags that need no cluster: it returns the --kind (or "") and the parameters.
func (ro *requestOptions) validate() (v1alpha1.ItemKind, []v1alpha1.ParameterValue, error) {
	if err := ro.out.validate(); err != nil {
		return "", nil, err
	}
	switch ro.dryRun {
	case dryRunNone, dryRunClient, dryRunServer:
	default:
		return "", nil, usageErrorf("--dry-run %q: use none, client or server", ro.dryRun)
	}
	if ro.wait && ro.dryRun != dryRunNone {
		return "", nil, usageErrorf("--wait and --dry-run exclude each other: a dry run creates nothing to wait for")
	}
	var kind v1alpha1.ItemKind
	if ro.kind != "" {
		k, ok := parseKind(ro.kind)
		if !ok {
			return "", nil, usageErrorf("unknown --kind %q: use resource, goods or action", ro.kind)
		}
		kind = k
	}
	params, err := parseParams(ro.params)
	if err != nil {
		return "", nil, err
	}
	if ro.timeout <= 0 {
		return "", nil, usageErrorf("--timeout must be positive")
	}
	return kind, params, nil
}

// checkKindFlags refuses the flags that belong to another kind of item: they are mistakes, not hints.
func (ro *requestOptions) checkKindFlags(kind v1alpha1.ItemKind, item string, quantitySet, paramsSet bool) error {
	switch {
	case quantitySet && kind != v1alpha1.ItemKindGoods:
		return usageErrorf("--quantity applies to goods only; %s is a %s item", item, kindFlag(kind))
	case paramsSet && kind != v1alpha1.ItemKindAction:
		return usageErrorf("--param applies to actions only; %s is a %s item", item, kindFlag(kind))
	case ro.namespaceName != "" && kind != v1alpha1.ItemKindResource:
		return usageErrorf("--namespace-name applies to resources only; %s is a %s item", item, kindFlag(kind))
	case ro.plan != "" && kind != v1alpha1.ItemKindResource:
		return usageErrorf("--plan applies to resources only; %s is a %s item", item, kindFlag(kind))
	case quantitySet && ro.quantity < 1:
		return usageErrorf("--quantity must be at least 1")
	}
	return nil
}

func newRequest(ns string, ro *requestOptions, kind v1alpha1.ItemKind, item string, params []v1alpha1.ParameterValue) *v1alpha1.ConsumptionRequest {
	cr := &v1alpha1.ConsumptionRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ro.name},
		Spec:       v1alpha1.ConsumptionRequestSpec{Agreement: v1alpha1.AgreementName(ro.agreement)},
	}
	if ro.name == "" {
		cr.GenerateName = item + "-"
	}
	switch kind {
	case v1alpha1.ItemKindResource:
		cr.Spec.Resource = &v1alpha1.ResourceRequest{Name: v1alpha1.ItemName(item), NamespaceName: v1alpha1.NamespaceName(ro.namespaceName),
			Plan: v1alpha1.PlanName(ro.plan)}
	case v1alpha1.ItemKindGoods:
		cr.Spec.Goods = &v1alpha1.GoodsRequest{Name: v1alpha1.ItemName(item), Quantity: ro.quantity}
	case v1alpha1.ItemKindAction:
		cr.Spec.Action = &v1alpha1.ActionRequest{Name: v1alpha1.ItemName(item), Parameters: params}
	}
	return cr
}

// parseParams parses --param NAME=VALUE flags.
func parseParams(raw []string) ([]v1alpha1.ParameterValue, error) {
	out := make([]v1alpha1.ParameterValue, 0, len(raw))
	seen := map[string]bool{}
	for _, p := range raw {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usageErrorf("--param %q: expected NAME=VALUE", p)
		}
		if seen[k] {
			return nil, usageErrorf("--param %s given twice", k)
		}
		seen[k] = true
		out = append(out, v1alpha1.ParameterValue{Name: v1alpha1.ParameterName(k), Value: v})
	}
	return out, nil
}

// inferKind finds the kind of item from the agreement's offering (or, when the
// offering cannot be read, from the agreement's entitlements).
func inferKind(ctx context.Context, c client.Client, agr *v1alpha1.ServiceAgreement, item string) (v1alpha1.ItemKind, error) {
	off, err := getOffering(ctx, c, string(agr.Spec.Offering))
	if err != nil {
		return "", err
	}
	var kinds []v1alpha1.ItemKind
	source := fmt.Sprintf("ServiceOffering %s", agr.Spec.Offering)
	if off != nil {
		kinds = offeredKinds(off, item)
	}
	if len(kinds) == 0 {
		source = fmt.Sprintf("ServiceAgreement %s", agr.Name)
		for _, e := range entitlementsOf(agr) {
			if e.Name == item {
				kinds = append(kinds, e.Kind)
			}
		}
	}
	switch len(kinds) {
	case 1:
		return kinds[0], nil
	case 0:
		names := make([]string, 0, 8)
		for _, e := range entitlementsOf(agr) {
			names = append(names, e.Name)
		}
		return "", usageErrorf("%s has no item %q (the agreement includes: %s); see kubectl offering catalog",
			source, item, strings.Join(names, ", "))
	}
	ks := make([]string, 0, len(kinds))
	for _, k := range kinds {
		ks = append(ks, kindFlag(k))
	}
	return "", usageErrorf("%s offers %q as more than one kind (%s): give --kind", source, item, strings.Join(ks, ", "))
}

// waitForRequest watches the request (watch.UntilWithSync: a list, then a
// watch that survives dropped connections and expired resource versions)
// until it is Ready, Delivered or has ended, or the timeout passes. It returns
// the last state seen.
func (o *options) waitForRequest(ctx context.Context, key client.ObjectKey, timeout time.Duration) (*v1alpha1.ConsumptionRequest, error) {
	wc, err := o.watchClient()
	if err != nil {
		return nil, err
	}
	sel := fields.OneTermEqualSelector("metadata.name", key.Name).String()
	listOpts := func(opts metav1.ListOptions) *client.ListOptions {
		opts.FieldSelector = sel
		return &client.ListOptions{Namespace: key.Namespace, Raw: &opts}
	}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			var l v1alpha1.ConsumptionRequestList
			return &l, wc.List(ctx, &l, listOpts(opts))
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return wc.Watch(ctx, &v1alpha1.ConsumptionRequestList{}, listOpts(opts))
		},
	}
	var last *v1alpha1.ConsumptionRequest
	errDeleted := fmt.Errorf("request %s was deleted while waiting", key.Name)
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Once the first list is in, a request that is not there was deleted
	// before the watch began: no event would ever report it.
	gone := func(store cache.Store) (bool, error) {
		if _, exists, err := store.GetByKey(key.String()); err != nil || exists {
			return false, err
		}
		return false, errDeleted
	}
	_, err = watchtools.UntilWithSync(wctx, lw, &v1alpha1.ConsumptionRequest{}, gone, func(ev watch.Event) (bool, error) {
		cr, ok := ev.Object.(*v1alpha1.ConsumptionRequest)
		if !ok {
			return false, nil
		}
		if ev.Type == watch.Deleted {
			return false, errDeleted
		}
		last = cr
		return settled(cr), nil
	})
	switch {
	case err == nil:
		return last, nil
	case errors.Is(err, errDeleted):
		return nil, err
	case ctx.Err() != nil:
		return last, ctx.Err()
	case wctx.Err() != nil:
		msg := fmt.Sprintf("timed out after %s waiting for request %s to become Ready", timeout, key.Name)
		if last != nil && last.Status.Phase != "" {
			msg += fmt.Sprintf(" (phase %s)", last.Status.Phase)
		}
		return last, errors.New(msg)
	}
	return last, err
}

// settled reports whether a request needs no more waiting: Ready, waiting for the consumer, or ended.
func settled(cr *v1alpha1.ConsumptionRequest) bool {
	if meta.IsStatusConditionTrue(cr.Status.Conditions, v1alpha1.ConditionReady) {
		return true
	}
	switch cr.Status.Phase {
	case v1alpha1.RequestDelivered, v1alpha1.RequestDenied, v1alpha1.RequestFailed, v1alpha1.RequestRejected, v1alpha1.RequestRevoked:
		return true
	}
	return false
}

// describeOutcome is the one-line report of a request's phase and Ready condition.
func describeOutcome(cr *v1alpha1.ConsumptionRequest) string {
	phase := string(cr.Status.Phase)
	if phase == "" {
		phase = "(none yet)"
	}
	s := fmt.Sprintf("request %s: phase %s", cr.Name, phase)
	if c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		s += fmt.Sprintf(", Ready=%s (%s)", c.Status, c.Reason)
		if c.Message != "" {
			s += ": " + c.Message
		}
	}
	if cr.Status.Phase == v1alpha1.RequestDelivered {
		s += fmt.Sprintf("\naccept or reject the goods: kubectl offering accept %s -n %s", cr.Name, cr.Namespace)
	}
	return s
}
