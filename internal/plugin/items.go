package plugin

import (
	"strings"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// entitlement is one item an agreement includes.
type entitlement struct {
	Kind  v1alpha1.ItemKind
	Name  string
	Limit *int32
}

// entitlementsOf lists the items an agreement includes, resources first, then goods, then actions.
func entitlementsOf(agr *v1alpha1.ServiceAgreement) []entitlement {
	e := agr.Spec.Entitlements
	out := make([]entitlement, 0, len(e.Resources)+len(e.Goods)+len(e.Actions))
	for _, r := range e.Resources {
		out = append(out, entitlement{Kind: v1alpha1.ItemKindResource, Name: string(r.Name), Limit: r.MaxGrants})
	}
	for _, g := range e.Goods {
		out = append(out, entitlement{Kind: v1alpha1.ItemKindGoods, Name: string(g.Name), Limit: g.MaxQuantity})
	}
	for _, a := range e.Actions {
		out = append(out, entitlement{Kind: v1alpha1.ItemKindAction, Name: string(a.Name), Limit: a.MaxRuns})
	}
	return out
}

// offeringItem is one item of an offering, for the entities.
type offeringItem struct {
	kind        v1alpha1.ItemKind
	name        string
	description string
}

func itemsOf(off *v1alpha1.ServiceOffering) []offeringItem {
	items := make([]offeringItem, 0, len(off.Spec.Resources)+len(off.Spec.Goods)+len(off.Spec.Actions))
	for _, r := range off.Spec.Resources {
		items = append(items, offeringItem{v1alpha1.ItemKindResource, string(r.Name), r.Description})
	}
	for _, g := range off.Spec.Goods {
		items = append(items, offeringItem{v1alpha1.ItemKindGoods, string(g.Name), g.Description})
	}
	for _, a := range off.Spec.Actions {
		items = append(items, offeringItem{v1alpha1.ItemKindAction, string(a.Name), a.Description})
	}
	return items
}

// offeredKinds returns the kinds under which an offering offers an item called name.
func offeredKinds(off *v1alpha1.ServiceOffering, name string) []v1alpha1.ItemKind {
	var kinds []v1alpha1.ItemKind
	for _, it := range itemsOf(off) {
		if it.name == name {
			kinds = append(kinds, it.kind)
		}
	}
	return kinds
}

// describe returns the offering's description of an item, or "".
func describe(off *v1alpha1.ServiceOffering, kind v1alpha1.ItemKind, name string) string {
	if off == nil {
		return ""
	}
	for _, it := range itemsOf(off) {
		if it.kind == kind && it.name == name {
			return it.description
		}
	}
	return ""
}

// usageOf returns the agreement's reported usage of an item.
func usageOf(agr *v1alpha1.ServiceAgreement, kind v1alpha1.ItemKind, name string) *v1alpha1.EntitlementUsage {
	for i := range agr.Status.Usage {
		u := &agr.Status.Usage[i]
		if u.Kind == kind && string(u.Item) == name {
			return u
		}
	}
	return nil
}

// requestItem returns the kind and name of the item a request asks for.
func requestItem(cr *v1alpha1.ConsumptionRequest) (v1alpha1.ItemKind, string) {
	switch {
	case cr.Spec.Resource != nil:
		return v1alpha1.ItemKindResource, string(cr.Spec.Resource.Name)
	case cr.Spec.Goods != nil:
		return v1alpha1.ItemKindGoods, string(cr.Spec.Goods.Name)
	case cr.Spec.Action != nil:
		return v1alpha1.ItemKindAction, string(cr.Spec.Action.Name)
	}
	return "", cr.Status.Item
}

// parseKind maps the --kind flag (resource, goods, action; any case) to an ItemKind.
func parseKind(s string) (v1alpha1.ItemKind, bool) {
	switch strings.ToLower(s) {
	case "resource", "resources":
		return v1alpha1.ItemKindResource, true
	case "goods":
		return v1alpha1.ItemKindGoods, true
	case "action", "actions":
		return v1alpha1.ItemKindAction, true
	}
	return "", false
}

func kindFlag(k v1alpha1.ItemKind) string { return strings.ToLower(string(k)) }

// readyMessage returns the message of the request's Ready condition, or its phase.
func readyMessage(cr *v1alpha1.ConsumptionRequest) string {
	for _, c := range cr.Status.Conditions {
		if c.Type == v1alpha1.ConditionReady {
			return c.Message
		}
	}
	return string(cr.Status.Phase)
}
