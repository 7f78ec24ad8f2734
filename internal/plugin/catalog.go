package plugin

import (
	"context"
	"fmt"
	"sort"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// CatalogEntry is one item an agreement entitles its consumer to (the rows of `catalog -o json`).
type CatalogEntry struct {
	Agreement   string                  `json:"agreement"`
	Namespace   string                  `json:"namespace"`
	Offering    string                  `json:"offering"`
	Kind        v1alpha1.ItemKind       `json:"kind"`
	Item        string                  `json:"item"`
	Description string                  `json:"description,omitempty"`
	Limit       *int32                  `json:"limit,omitempty"`
	Used        int32                   `json:"used"`
	Phase       v1alpha1.AgreementPhase `json:"phase,omitempty"`
}

// Catalog is the output of `catalog -o json|yaml`.
type Catalog struct {
	Namespace string         `json:"namespace"`
	Items     []CatalogEntry `json:"items"`
}

func newCatalogCommand(o *options) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "catalog [-n NAMESPACE]",
		Short: "List the offerings and items your agreements in a namespace entitle you to",
		Long: `For every ServiceAgreement in the namespace: the offering, and per item it includes the
kind, the name, the offering's description, the limit (maxGrants, maxQuantity or maxRuns),
what is used (from the agreement's status.usage) and the agreement's phase.`,
		Example: `  # What may Team Payments request?
  kubectl offering catalog -n team-payments
  kubectl offering catalog -n team-payments -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validateOutput(output); err != nil {
				return err
			}
			return runCatalog(cmd.Context(), o, output)
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func runCatalog(ctx context.Context, o *options, output string) error {
	c, ns, err := o.connect()
	if err != nil {
		return err
	}
	cat, err := buildCatalog(ctx, c, ns)
	if err != nil {
		return err
	}
	if output != "" {
		return printStructured(o.streams.Out, output, cat)
	}
	if len(cat.Items) == 0 {
		fmt.Fprintf(o.streams.ErrOut, "No agreements with entitlements found in namespace %s.\n", ns)
		return nil
	}
	t := newTable(o.streams.Out, "AGREEMENT", "OFFERING", "KIND", "ITEM", "LIMIT", "USED", "PHASE", "DESCRIPTION")
	for _, e := range cat.Items {
		t.row(e.Agreement, e.Offering, kindFlag(e.Kind), e.Item, formatLimit(e.Limit), fmt.Sprint(e.Used), string(e.Phase), e.Description)
	}
	return t.flush()
}

func buildCatalog(ctx context.Context, c client.Client, ns string) (*Catalog, error) {
	var agrs v1alpha1.ServiceAgreementList
	if err := c.List(ctx, &agrs, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing ServiceAgreements in namespace %s: %w", ns, err)
	}
	sort.Slice(agrs.Items, func(i, j int) bool { return agrs.Items[i].Name < agrs.Items[j].Name })
	offerings := map[string]*v1alpha1.ServiceOffering{}
	cat := &Catalog{Namespace: ns, Items: []CatalogEntry{}}
	for i := range agrs.Items {
		agr := &agrs.Items[i]
		name := string(agr.Spec.Offering)
		off, seen := offerings[name]
		if !seen {
			var err error
			if off, err = getOffering(ctx, c, name); err != nil {
				return nil, err
			}
			offerings[name] = off
		}
		for _, e := range entitlementsOf(agr) {
			entry := CatalogEntry{
				Agreement:   agr.Name,
				Namespace:   agr.Namespace,
				Offering:    name,
				Kind:        e.Kind,
				Item:        e.Name,
				Description: describe(off, e.Kind, e.Name),
				Limit:       e.Limit,
				Phase:       agr.Status.Phase,
			}
			if u := usageOf(agr, e.Kind, e.Name); u != nil {
				entry.Used = u.Used
				if entry.Limit == nil {
					entry.Limit = u.Limit
				}
			}
			cat.Items = append(cat.Items, entry)
		}
	}
	return cat, nil
}

// getOffering returns the offering, or nil when it does not exist or the user may not read it.
func getOffering(ctx context.Context, c client.Client, name string) (*v1alpha1.ServiceOffering, error) {
	var off v1alpha1.ServiceOffering
	if err := c.Get(ctx, client.ObjectKey{Name: name}, &off); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading ServiceOffering %s: %w", name, err)
	}
	return &off, nil
}
