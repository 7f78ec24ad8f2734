package plugin

import (
	"context"
	"crypto/sha256"
	_ "embed" // the entities' template
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/template"

	"github.com/spf13/cobra"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// outputBackstage is `catalog -o backstage`.
const outputBackstage = "backstage"

// DefaultSkeletonURL is where the Software Template fetches the
// ConsumptionRequest skeletons from: one directory per kind of item
// (resource, goods, action) under config/backstage/skeleton.
const DefaultSkeletonURL = "https://github.com/offering-operator/offering-operator/tree/main/config/backstage/skeleton"

// backstageEntityName is the pattern of a Backstage entity's metadata.name.
var backstageEntityName = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// backstageTemplate writes the entities of one offering.
//
//go:embed backstage.yaml.tmpl
var backstageTemplate string

// maxEntityName is Backstage's limit on metadata.name.
const maxEntityName = 63

func addBackstageFlags(cmd *cobra.Command, co *catalogOptions) {
	cmd.Flags().StringVar(&co.skeletonURL, "skeleton-url", DefaultSkeletonURL,
		"With -o backstage: where the Software Template fetches the ConsumptionRequest skeletons (resource/, goods/, action/) from")
}

// runBackstage writes Backstage catalog entities for the offerings (all, or
// those named): per offering a Component, a Resource per item and a Software
// Template that writes a ConsumptionRequest into a GitOps repository.
func runBackstage(ctx context.Context, o *options, co *catalogOptions, only []string) error {
	c, _, err := o.connect()
	if err != nil {
		return err
	}
	var offs v1alpha1.ServiceOfferingList
	if err := c.List(ctx, &offs); err != nil {
		return fmt.Errorf("listing ServiceOfferings: %w", err)
	}
	sort.Slice(offs.Items, func(i, j int) bool { return offs.Items[i].Name < offs.Items[j].Name })
	tmpl, err := template.New("backstage").Delims("[[", "]]").Funcs(template.FuncMap{"q": jsonString}).Parse(backstageTemplate)
	if err != nil {
		return err // the template is compiled in: an error is a programming error
	}
	first := true
	for i := range offs.Items {
		off := &offs.Items[i]
		if len(only) > 0 && !slices.Contains(only, off.Name) {
			continue
		}
		if !first {
			fmt.Fprintln(o.streams.Out, "---")
		}
		first = false
		if err := tmpl.Execute(o.streams.Out, backstageData(off, co.skeletonURL)); err != nil {
			return err
		}
	}
	if first {
		return fmt.Errorf("no ServiceOfferings found%s", namedSuffix(only))
	}
	return nil
}

func namedSuffix(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return " named " + strings.Join(names, ", ")
}

// entityName makes a valid Backstage entity name; a name too long keeps a
// hash of the whole so that two long names stay distinct.
func entityName(parts ...string) string {
	s := strings.Trim(backstageEntityName.ReplaceAllString(strings.ToLower(strings.Join(parts, "-")), "-"), "-")
	if len(s) <= maxEntityName {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return strings.TrimRight(s[:maxEntityName-9], "-") + "-" + hex.EncodeToString(sum[:])[:8]
}

// backstageOffering is what the entities of one offering are made of.
type backstageOffering struct {
	Offering, Description, Provider, Contact string
	Component, Template, Owner, Selector     string
	SkeletonURL                              string
	Items                                    []backstageItem
	Kinds                                    []backstageKind
	KindNames                                []string
}

// backstageItem is one item, as a Resource entity.
type backstageItem struct {
	Entity, Name, Title, Description, Type string
}

// backstageKind is the items of one kind, as the Template offers them.
type backstageKind struct {
	Kind          string
	Names, Titles []string
}

func backstageData(off *v1alpha1.ServiceOffering, skeletonURL string) backstageOffering {
	d := backstageOffering{
		Offering: off.Name, Description: off.Spec.Description, Provider: off.Spec.Provider.Name,
		Contact:   contactURL(off.Spec.Provider.Contact),
		Component: entityName(off.Name), Template: entityName("request", off.Name),
		Owner:       "group:default/" + entityName(off.Spec.Provider.Name),
		Selector:    v1alpha1.LabelOffering + "=" + off.Name,
		SkeletonURL: strings.TrimRight(skeletonURL, "/"),
	}
	items := itemsOf(off)
	for _, it := range items {
		d.Items = append(d.Items, backstageItem{Entity: entityName(off.Name, kindFlag(it.kind), it.name), Name: it.name,
			Title: it.name + " (" + kindFlag(it.kind) + ")", Description: it.description, Type: "offering-" + kindFlag(it.kind)})
	}
	for _, k := range []v1alpha1.ItemKind{v1alpha1.ItemKindResource, v1alpha1.ItemKindGoods, v1alpha1.ItemKindAction} {
		bk := backstageKind{Kind: kindFlag(k)}
		for _, it := range items {
			if it.kind != k {
				continue
			}
			title := it.name
			if it.description != "" {
				title += ": " + it.description
			}
			bk.Names, bk.Titles = append(bk.Names, it.name), append(bk.Titles, title)
		}
		if len(bk.Names) > 0 {
			d.Kinds = append(d.Kinds, bk)
			d.KindNames = append(d.KindNames, bk.Kind)
		}
	}
	return d
}

// contactURL makes a link of the provider's contact (an e-mail address or a URL), or "".
func contactURL(contact string) string {
	if strings.Contains(contact, "@") && !strings.Contains(contact, "://") {
		return "mailto:" + contact
	}
	return contact
}

// jsonString writes v as JSON, which YAML reads as it is (a quoted string, a list).
func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
