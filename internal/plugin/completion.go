package plugin

import (
	"context"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Shell completion (cobra's __complete, which kubectl 1.26 and later call
// through the kubectl_complete-offering helper on the PATH): names are read
// from the cluster with the connection flags already on the command line.

// completionTimeout bounds how long a completion waits for the cluster: a
// shell must not hang on a slow or unreachable API server.
const completionTimeout = 5 * time.Second

// complete lists the names and keeps those starting with toComplete.
func (o *options) complete(cmd *cobra.Command, toComplete string, list lister) ([]string, cobra.ShellCompDirective) {
	c, ns, err := o.connect()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	names, err := list(ctx, c, ns, cmd)
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	return withPrefix(names, toComplete), cobra.ShellCompDirectiveNoFileComp
}

// withPrefix returns the distinct names that start with prefix, sorted.
func withPrefix(names []string, prefix string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if strings.HasPrefix(n, prefix) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// lister lists the names to complete.
type lister func(ctx context.Context, c client.Client, ns string, cmd *cobra.Command) ([]string, error)

// namesOf lists the names of the objects of a list type, in the namespace or,
// for a cluster-scoped kind, everywhere.
func namesOf(newList func() client.ObjectList, namespaced bool) lister {
	return func(ctx context.Context, c client.Client, ns string, _ *cobra.Command) ([]string, error) {
		l := newList()
		var opts []client.ListOption
		if namespaced {
			opts = append(opts, client.InNamespace(ns))
		}
		if err := c.List(ctx, l, opts...); err != nil {
			return nil, err
		}
		var names []string
		err := meta.EachListItem(l, func(obj runtime.Object) error {
			if m, err := meta.Accessor(obj); err == nil {
				names = append(names, m.GetName())
			}
			return nil
		})
		return names, err
	}
}

// firstArg completes the first positional argument only.
func (o *options) firstArg(list lister) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return o.complete(cmd, toComplete, list)
	}
}

// completeRequests completes the name of a ConsumptionRequest in the namespace.
func (o *options) completeRequests(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	return o.firstArg(namesOf(func() client.ObjectList { return &v1alpha1.ConsumptionRequestList{} }, true))(cmd, args, toComplete)
}

// completeAgreements completes the name of a ServiceAgreement in the namespace
// (a positional argument or the --agreement flag).
func (o *options) completeAgreements(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	list := namesOf(func() client.ObjectList { return &v1alpha1.ServiceAgreementList{} }, true)
	if cmd.Flags().Lookup("agreement") != nil {
		return o.complete(cmd, toComplete, list) // the flag's value, whatever the arguments
	}
	return o.firstArg(list)(cmd, args, toComplete)
}

// completeOfferings completes the names of ServiceOfferings not named yet.
func (o *options) completeOfferings(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	names, directive := o.complete(cmd, toComplete, namesOf(func() client.ObjectList { return &v1alpha1.ServiceOfferingList{} }, false))
	return slices.DeleteFunc(names, func(n string) bool { return slices.Contains(args, n) }), directive
}

// completeNamespaces completes -n/--namespace.
func (o *options) completeNamespaces(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	return o.complete(cmd, toComplete, namesOf(func() client.ObjectList { return &corev1.NamespaceList{} }, false))
}

// completeItems completes the item of `request`: the items of the agreement
// given with --agreement, or of every agreement in the namespace.
func (o *options) completeItems(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return o.complete(cmd, toComplete, func(ctx context.Context, c client.Client, ns string, cmd *cobra.Command) ([]string, error) {
		agreement, _ := cmd.Flags().GetString("agreement")
		var l v1alpha1.ServiceAgreementList
		if err := c.List(ctx, &l, client.InNamespace(ns)); err != nil {
			return nil, err
		}
		var names []string
		for i := range l.Items {
			if agreement != "" && l.Items[i].Name != agreement {
				continue
			}
			for _, e := range entitlementsOf(&l.Items[i]) {
				names = append(names, e.Name)
			}
		}
		return names, nil
	})
}

// fixedCompletion completes a flag from a fixed list of values.
func fixedCompletion(values ...string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return withPrefix(values, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}
