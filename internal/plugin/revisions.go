package plugin

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

type revisionsOptions struct {
	out *outputFlags
}

func newRevisionsCommand(o *options) *cobra.Command {
	ro := &revisionsOptions{out: newOutputFlags(true)}
	cmd := &cobra.Command{
		Use:   "revisions OFFERING",
		Short: "List the revisions of an offering and how many agreements are on each",
		Long: `Every change of a ServiceOffering's spec is recorded in an immutable
ServiceOfferingRevision. For each revision of the offering kept: its number, whether it
is the latest, how many agreements are on it (pinned to it, or following Latest while it
is the latest), its age and its object's name. -o prints the ServiceOfferingRevisions.`,
		Example: `  kubectl offering revisions rack-space
  kubectl offering revisions rack-space -o yaml`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.completeOfferings,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := ro.out.validate(); err != nil {
				return err
			}
			return runRevisions(cmd.Context(), o, ro, args[0])
		},
	}
	ro.out.addFlags(cmd, true)
	return cmd
}

func runRevisions(ctx context.Context, o *options, ro *revisionsOptions, offering string) error {
	c, revs, err := listRevisions(ctx, o, offering)
	if err != nil {
		return err
	}
	if ro.out.format() != "" {
		return ro.out.printObject(o.streams.Out, revs)
	}
	if len(revs.Items) == 0 {
		fmt.Fprintf(o.streams.ErrOut, "No revisions of ServiceOffering %s found.\n", offering)
		return nil
	}
	off, err := getOffering(ctx, c, offering)
	if err != nil {
		return err
	}
	var latest int32
	usage := map[int32]int32{}
	if off != nil {
		latest = off.Status.LatestRevision
		for _, u := range off.Status.Revisions {
			usage[u.Revision] = u.Agreements
		}
	}
	t := newTable("REVISION", "LATEST", "AGREEMENTS", "AGE", "NAME")
	for i := range revs.Items {
		rev := &revs.Items[i]
		mark := ""
		if rev.Spec.Revision == latest {
			mark = "yes"
		}
		addRow(t, rev, fmt.Sprint(rev.Spec.Revision), mark, fmt.Sprint(usage[rev.Spec.Revision]), age(rev.CreationTimestamp), rev.Name)
	}
	return ro.out.printTable(o.streams.Out, t, false)
}

// listRevisions connects to the cluster and lists the revisions of an
// offering, lowest number first.
func listRevisions(ctx context.Context, o *options, offering string) (client.Client, *v1alpha1.ServiceOfferingRevisionList, error) {
	c, _, err := o.connect()
	if err != nil {
		return nil, nil, err
	}
	var list v1alpha1.ServiceOfferingRevisionList
	if err := c.List(ctx, &list, client.MatchingLabels{v1alpha1.LabelOffering: offering}); err != nil {
		return nil, nil, fmt.Errorf("listing the revisions of ServiceOffering %s: %w", offering, err)
	}
	list.Items = slices.DeleteFunc(list.Items, func(r v1alpha1.ServiceOfferingRevision) bool {
		return string(r.Spec.Offering) != offering
	})
	slices.SortFunc(list.Items, func(a, b v1alpha1.ServiceOfferingRevision) int { return int(a.Spec.Revision - b.Spec.Revision) })
	return c, &list, nil
}

func newDiffCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "diff OFFERING FROM [TO]",
		Short: "Show what changed in an offering's spec between two revisions",
		Long: `Prints a unified diff of the YAML specs of two revisions of the offering: FROM and
TO (default: the latest revision). Nothing is printed when they hold the same spec.`,
		Example: `  # What changed from revision 3 to revision 4?
  kubectl offering diff rack-space 3 4

  # What would moving an agreement pinned to revision 3 to the latest change?
  kubectl offering diff rack-space 3`,
		Args:              cobra.RangeArgs(2, 3),
		ValidArgsFunction: o.completeOfferings,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDiff(cmd.Context(), o, args[0], args[1:])
		},
	}
}

func runDiff(ctx context.Context, o *options, offering string, numbers []string) error {
	want := make([]int32, 0, 2)
	for _, s := range numbers {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || n < 1 {
			return usageErrorf("revision %q is not a revision number (1, 2, ...)", s)
		}
		want = append(want, int32(n))
	}
	_, revs, err := listRevisions(ctx, o, offering)
	if err != nil {
		return err
	}
	if len(want) == 1 {
		if len(revs.Items) == 0 {
			return fmt.Errorf("ServiceOffering %s has no revisions", offering)
		}
		want = append(want, revs.Items[len(revs.Items)-1].Spec.Revision)
	}
	texts := make([]string, 0, 2)
	for _, n := range want {
		i := slices.IndexFunc(revs.Items, func(r v1alpha1.ServiceOfferingRevision) bool { return r.Spec.Revision == n })
		if i < 0 {
			return fmt.Errorf("ServiceOffering %s has no revision %d: see kubectl offering revisions %s", offering, n, offering)
		}
		y, err := yaml.Marshal(revs.Items[i].Spec.OfferingSpec)
		if err != nil {
			return err
		}
		texts = append(texts, string(y))
	}
	diff, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(texts[0]), B: difflib.SplitLines(texts[1]),
		FromFile: fmt.Sprintf("%s revision %d", offering, want[0]), ToFile: fmt.Sprintf("%s revision %d", offering, want[1]),
		Context: 3,
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(o.streams.Out, diff)
	return err
}
