package controllers

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Provider namespaces. An offering's goods sources are read from its provider
// namespace and its automated actions run there as that namespace's
// ServiceAccounts, so the namespaces an offering may name are restricted:
// never the operator's own (Options.OperatorNamespace), and, when the cluster
// admin sets --provider-namespaces (Options.ProviderNamespaces), only those.
// The offering controller refuses any other (Ready=False,
// ProviderNamespaceForbidden), and the request controller checks again before
// it reads a goods source or creates an action's Job or secret copy.

// ParseProviderNamespaces parses the value of --provider-namespaces: a
// comma-separated list whose entries are namespace names or prefix patterns
// ending in "*" (team-* allows every namespace whose name starts with team-).
// Spaces around entries are ignored. An empty value gives nil: any namespace.
func ParseProviderNamespaces(value string) ([]string, error) {
	if strings.TrimSpace(value) == "" {
		return nil, nil
	}
	var entries []string
	for _, e := range strings.Split(value, ",") {
		entries = append(entries, strings.TrimSpace(e))
	}
	if err := validateProviderNamespaces(entries); err != nil {
		return nil, err
	}
	return entries, nil
}

// validateProviderNamespaces checks every entry of an allow-list and reports
// all the malformed ones.
func validateProviderNamespaces(entries []string) error {
	var problems []string
	for i, e := range entries {
		if err := validateProviderNamespace(e); err != nil {
			problems = append(problems, fmt.Sprintf("entry %d %q: %v", i+1, e, err))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func validateProviderNamespace(entry string) error {
	name, pattern := strings.CutSuffix(entry, "*")
	switch {
	case entry == "":
		return errors.New("empty entry (two commas in a row, or a comma at either end)")
	case entry == "*":
		return errors.New(`a lone "*" would allow every namespace; leave the flag empty for that`)
	case strings.Contains(name, "*"):
		return errors.New(`"*" may only end an entry, as in team-*`)
	case pattern:
		// What a namespace name may start with: any name that begins with it and ends well is a DNS label.
		if msgs := validation.IsDNS1123Label(name + "0"); len(msgs) > 0 {
			return fmt.Errorf("%s is not the beginning of a namespace name: %s", name, strings.Join(msgs, ", "))
		}
	default:
		if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
			return fmt.Errorf("not a namespace name: %s", strings.Join(msgs, ", "))
		}
	}
	return nil
}

// providerNamespaceAllowed reports whether ns is one of allowed: equal to an
// entry, or starting with the prefix of an entry that ends in "*". An empty
// list allows every namespace.
func providerNamespaceAllowed(allowed []string, ns string) bool {
	if len(allowed) == 0 {
		return true
	}
	for _, e := range allowed {
		if prefix, pattern := strings.CutSuffix(e, "*"); pattern {
			if strings.HasPrefix(ns, prefix) {
				return true
			}
		} else if ns == e {
			return true
		}
	}
	return false
}

// providerNamespaceRefusal says why the operator may not read goods from, or
// run action Jobs in, namespace ns, and what to do instead; "" when it may.
// The offering controller and the request controller give the same answer.
func (o *Options) providerNamespaceRefusal(ns string) string {
	if ns != "" && ns == o.OperatorNamespace {
		return fmt.Sprintf("provider namespace %s is the operator's own: goods would be read from it and action Jobs run "+
			"with its ServiceAccounts; use a namespace of the provider's", ns)
	}
	if !providerNamespaceAllowed(o.ProviderNamespaces, ns) {
		return fmt.Sprintf("provider namespace %s is not one of the namespaces the operator's --provider-namespaces flag allows (%s): "+
			"goods are read and action Jobs run only in those; use one of them, or ask a cluster admin to add this one to the flag",
			ns, strings.Join(o.ProviderNamespaces, ", "))
	}
	return ""
}
