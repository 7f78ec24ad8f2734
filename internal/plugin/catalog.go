package plugin

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// Catalog is the output of `catalog -o json|yaml` (kind Catalog in OutputGroupVersion).
type Catalog struct {
	// Namespace is the namespace listed, or "" for every namespace (-A).
	Namespace string         `json:"namespace"`
	Items     []CatalogEntry `json:"items"`
}

type catalogOptions struct {
	out           *outputFlags
	allNamespaces bool
	skeletonURL   string
}

func newCatalogCommand(o *options) *cobra.Command {
	co := &catalogOptions{out: newOutputFlags(false, outputBackstage)}
	cmd := &cobra.Command{
		Use:   "catalog [OFFERING...] [-n NAMESPACE | -A]",
		Short: "List the offerings and items your agreements in a namespace entitle you to",
		Long: `For every ServiceAgreement in the namespace (every namespace with -A): the offering, and
per item it includes the kind, the name, the offering's description, the limit
(maxGrants, maxQuantity or maxRuns), what is used (from the agreement's status.usage)
and the agreement's phase. Naming offerings lists only their agreements' items.

-o backstage writes Backstage catalog entities for the offerings instead (a Component
per offering, a Resource per item, and a Software Template per offering that writes a
ConsumptionRequest into a GitOps repository); see docs/plugin.md.`,
		Example: `  # What may Team Payments request?
  kubectl offering catalog -n team-payments
  kubectl offering catalog -n team-payments -o json

  # Every agreement's items, in every namespace, without headers
  kubectl offering catalog -A --no-headers

  # Backstage entities for every offering
  kubectl offering catalog -o backstage > catalog-info.yaml`,
		ValidArgsFunction: o.completeOfferings,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := co.out.validate(); err != nil {
				return err
			}
			if co.out.format() == outputBackstage {
				return runBackstage(cmd.Context(), o, co, args)
			}
			return runCatalog(cmd.Context(), o, co, args)
		},
	}
	co.out.addFlags(cmd, true)
	cmd.Flags().BoolVarP(&co.allNamespaces, "all-namespaces", "A", false, "List the agreements of every namespace.")
	addBackstageFlags(cmd, co)
	return cmd
}

func runCatalog(ctx context.Context, o *options, co *catalogOptions, offerings []string) error {
	c, ns, err := o.connect()
	if err != nil {
		return err
	}
	if co.allNamespaces {
		ns = ""
	}
	cat, err := buildCatalog(ctx, c, ns, offerings)
	if err != nil {
		return err
	}
	if co.out.format() != "" {
		return co.out.printView(o.streams.Out, "Catalog", cat)
	}
	if len(cat.Items) == 0 {
		where := "namespace " + ns
		if ns == "" {
			where = "any namespace"
		}
		fmt.Fprintf(o.streams.ErrOut, "No agreements with entitlements found in %s.\n", where)
		return nil
	}
	t := newTable("AGREEMENT", "OFFERING", "KIND", "ITEM", "LIMIT", "USED", "PHASE", "DESCRIPTION")
	for _, e := range cat.Items {
		agr := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: e.Agreement}}
		addRow(t, agr, e.Agreement, e.Offering, kindFlag(e.Kind), e.Item, formatLimit(e.Limit), fmt.Sprint(e.Used), string(e.Phase), e.Description)
	}
	return co.out.printTable(o.streams.Out, t, co.allNamespaces)
}

// buildCatalog lists the items of the agreements in ns ("" for every
// namespace), of the named offerings only when any are named.
func buildCatalog(ctx context.Context, c client.Client, ns string, only []string) (*Catalog, error) {
	var agrs v1alpha1.ServiceAgreementList
	if err := c.List(ctx, &agrs, client.InNamespace(ns)); err != nil {
		where := "namespace " + ns
		if ns == "" {
			where = "any namespace"
		}
		return nil, fmt.Errorf("listing ServiceAgreements in %s: %w", where, err)
	}
	sort.Slice(agrs.Items, func(i, j int) bool {
		a, b := agrs.Items[i], agrs.Items[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	offerings := map[string]*v1alpha1.ServiceOffering{}
	cat := &Catalog{Namespace: ns, Items: []CatalogEntry{}}
	for i := range agrs.Items {
		agr := &agrs.Items[i]
		name := string(agr.Spec.Offering)
		if len(only) > 0 && !slices.Contains(only, name) {
			continue
		}
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
