package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

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
	var entities []map[string]any
	for i := range offs.Items {
		off := &offs.Items[i]
		if len(only) > 0 && !slices.Contains(only, off.Name) {
			continue
		}
		entities = append(entities, backstageEntities(off, co.skeletonURL)...)
	}
	if len(entities) == 0 {
		return fmt.Errorf("no ServiceOfferings found%s", namedSuffix(only))
	}
	return writeYAMLStream(o.streams.Out, entities)
}

func namedSuffix(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return " named " + strings.Join(names, ", ")
}

// writeYAMLStream writes documents separated by "---".
func writeYAMLStream(w io.Writer, docs []map[string]any) error {
	for i, d := range docs {
		b, err := yaml.Marshal(d)
		if err != nil {
			return err
		}
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
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

// backstageEntities returns the Component, the Resources and the Template of an offering.
func backstageEntities(off *v1alpha1.ServiceOffering, skeletonURL string) []map[string]any {
	owner := "group:default/" + entityName(off.Spec.Provider.Name)
	component := entityName(off.Name)
	annotations := map[string]any{
		// The Backstage Kubernetes plugin shows the objects the operator created under this offering.
		"backstage.io/kubernetes-label-selector": v1alpha1.LabelOffering + "=" + off.Name,
		"service.offering.dev/offering":          off.Name,
	}
	meta := map[string]any{
		"name": component, "title": off.Name, "description": off.Spec.Description,
		"annotations": annotations, "tags": []any{"service-offering"},
	}
	if off.Spec.Provider.Contact != "" {
		meta["links"] = []any{map[string]any{"url": contactURL(off.Spec.Provider.Contact), "title": "Contact " + off.Spec.Provider.Name}}
	}
	out := []map[string]any{{
		"apiVersion": "backstage.io/v1alpha1",
		"kind":       "Component",
		"metadata":   meta,
		"spec":       map[string]any{"type": "service-offering", "lifecycle": "production", "owner": owner},
	}}
	items := itemsOf(off)
	for _, it := range items {
		out = append(out, map[string]any{
			"apiVersion": "backstage.io/v1alpha1",
			"kind":       "Resource",
			"metadata": map[string]any{
				"name": entityName(off.Name, kindFlag(it.kind), it.name), "title": it.name + " (" + kindFlag(it.kind) + ")", "description": it.description,
				"annotations": map[string]any{"service.offering.dev/offering": off.Name, "service.offering.dev/item": it.name},
			},
			"spec": map[string]any{
				"type": "offering-" + kindFlag(it.kind), "owner": owner,
				"dependencyOf": []any{"component:default/" + component},
			},
		})
	}
	return append(out, requestTemplate(off, items, owner, skeletonURL))
}

// contactURL makes a link of the provider's contact (an e-mail address or a URL).
func contactURL(contact string) string {
	if strings.Contains(contact, "@") && !strings.Contains(contact, "://") {
		return "mailto:" + contact
	}
	return contact
}

// requestTemplate is a Software Template that writes a ConsumptionRequest for
// an item of the offering into a GitOps repository and opens a pull request.
func requestTemplate(off *v1alpha1.ServiceOffering, items []offeringItem, owner, skeletonURL string) map[string]any {
	var kinds []any
	var oneOf []any
	for _, k := range []v1alpha1.ItemKind{v1alpha1.ItemKindResource, v1alpha1.ItemKindGoods, v1alpha1.ItemKindAction} {
		var names, titles []any
		for _, it := range items {
			if it.kind == k {
				names = append(names, it.name)
				title := it.name
				if it.description != "" {
					title += ": " + it.description
				}
				titles = append(titles, title)
			}
		}
		if len(names) == 0 {
			continue
		}
		kinds = append(kinds, kindFlag(k))
		props := map[string]any{
			"kind": map[string]any{"enum": []any{kindFlag(k)}},
			"item": map[string]any{"title": "Item", "type": "string", "enum": names, "enumNames": titles},
		}
		required := []any{"item"}
		if k == v1alpha1.ItemKindGoods {
			props["quantity"] = map[string]any{"title": "Quantity", "type": "integer", "minimum": 1, "default": 1}
			required = append(required, "quantity")
		}
		oneOf = append(oneOf, map[string]any{"properties": props, "required": required})
	}
	dnsLabel := "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
	what := map[string]any{
		"title":    "What to request from " + off.Name,
		"required": []any{"namespace", "agreement", "name", "kind"},
		"properties": map[string]any{
			"namespace": map[string]any{"title": "Namespace", "type": "string", "pattern": dnsLabel, "maxLength": 63,
				"description": "Your team's namespace, where your ServiceAgreement is"},
			"agreement": map[string]any{"title": "Agreement", "type": "string", "pattern": dnsLabel, "maxLength": 253,
				"description": "The ServiceAgreement (with " + off.Name + ") to request under"},
			"name": map[string]any{"title": "Request name", "type": "string", "pattern": dnsLabel, "maxLength": 63},
			"kind": map[string]any{"title": "Kind of item", "type": "string", "enum": kinds},
		},
		"dependencies": map[string]any{"kind": map[string]any{"oneOf": oneOf}},
	}
	where := map[string]any{
		"title":    "Where to write it",
		"required": []any{"repoUrl"},
		"properties": map[string]any{
			"repoUrl": map[string]any{"title": "GitOps repository", "type": "string", "ui:field": "RepoUrlPicker",
				"ui:options": map[string]any{"allowedHosts": []any{"github.com"}}},
			"path": map[string]any{"title": "Directory in the repository", "type": "string", "default": "requests"},
		},
	}
	return map[string]any{
		"apiVersion": "scaffolder.backstage.io/v1beta3",
		"kind":       "Template",
		"metadata": map[string]any{
			"name": entityName("request", off.Name), "title": "Request from " + off.Name,
			"description": "Writes a ConsumptionRequest for an item of " + off.Name +
				" into a GitOps repository and opens a pull request; once merged, offering-operator admits it.",
			"tags": []any{"service-offering", "offering-operator"},
		},
		"spec": map[string]any{
			"owner":      owner,
			"type":       "service-request",
			"parameters": []any{what, where},
			"steps": []any{
				map[string]any{"id": "fetch", "name": "Write the ConsumptionRequest", "action": "fetch:template", "input": map[string]any{
					"url":        strings.TrimRight(skeletonURL, "/") + "/${{ parameters.kind }}",
					"targetPath": "${{ parameters.path }}/${{ parameters.namespace }}",
					"values": map[string]any{
						"name": "${{ parameters.name }}", "namespace": "${{ parameters.namespace }}",
						"agreement": "${{ parameters.agreement }}", "item": "${{ parameters.item }}",
						"quantity": "${{ parameters.quantity }}",
					},
				}},
				map[string]any{"id": "publish", "name": "Open a pull request", "action": "publish:github:pull-request", "input": map[string]any{
					"repoUrl":     "${{ parameters.repoUrl }}",
					"branchName":  "request-${{ parameters.namespace }}-${{ parameters.name }}",
					"title":       "Request ${{ parameters.item }} under ${{ parameters.agreement }}",
					"description": "A ConsumptionRequest for ${{ parameters.kind }} ${{ parameters.item }} of " + off.Name + ", written by Backstage.",
				}},
			},
			"output": map[string]any{"links": []any{
				map[string]any{"title": "Pull request", "url": "${{ steps.publish.output.remoteUrl }}"},
			}},
		},
	}
}
