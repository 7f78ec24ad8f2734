package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Provider namespaces. An offering's goods sources are read from its provider
// namespace and its automated actions run there as that namespace's
// ServiceAccounts, so only a cluster admin decides which namespaces serve, and
// the default is none: a namespace serves as a provider namespace only when it
// carries the label service.offering.dev/provider-namespace=true or is named
// by --provider-namespaces (Options.ProviderNamespaces); never the operator's
// own (Options.OperatorNamespace), and never one the operator granted to a
// consumer. An action's Job runs only as a ServiceAccount the admin allowed:
// named by the namespace's service.offering.dev/action-service-accounts
// annotation or by --action-service-accounts (Options.ActionServiceAccounts).
// The offering controller refuses anything else (Ready=False), and the request
// controller checks again, on the live namespace, before it reads a goods
// source or creates an action's Job or secret copy.

// ParseProviderNamespaces parses the value of --provider-namespaces: a
// comma-separated list whose entries are namespace names or prefix patterns
// ending in "*" (team-* allows every namespace whose name starts with team-).
// Spaces around entries are ignored. An empty value gives nil: no namespace is
// allowed by name, only those labelled service.offering.dev/provider-namespace=true.
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
		return errors.New(`a lone "*" would allow every namespace, the operator's granted ones included; name the provider namespaces, or label them ` + v1alpha1.LabelProviderNamespace + `=true`)
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
// list allows none.
func providerNamespaceAllowed(allowed []string, ns string) bool {
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

// providerNamespace reads the namespace an offering names as its provider
// namespace and says whether the operator may read goods from it and run
// action Jobs in it: reason and msg are "" when it may, otherwise the Ready
// reason (ProviderNamespaceNotFound or ProviderNamespaceForbidden) and what to
// do. The offering controller and the request controller give the same answer.
func (o *Options) providerNamespace(ctx context.Context, reader client.Reader, name string) (ns *corev1.Namespace, reason, msg string, err error) {
	if name != "" && name == o.OperatorNamespace {
		return nil, v1alpha1.ReasonProviderNamespaceForbidden, fmt.Sprintf("provider namespace %s is the operator's own: goods would be read "+
			"from it and action Jobs run with its ServiceAccounts; use a namespace of the provider's", name), nil
	}
	ns = &corev1.Namespace{}
	if err := reader.Get(ctx, types.NamespacedName{Name: name}, ns); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, v1alpha1.ReasonProviderNamespaceNotFound, fmt.Sprintf("provider namespace %s does not exist", name), nil
		}
		return nil, "", "", fmt.Errorf("reading provider namespace %s: %w", name, err)
	}
	if why := o.providerNamespaceRefusal(ns); why != "" {
		return nil, v1alpha1.ReasonProviderNamespaceForbidden, why, nil
	}
	return ns, "", "", nil
}

// providerNamespaceRefusal says why namespace ns may not serve as a provider
// namespace, and what to do instead; "" when it may.
func (o *Options) providerNamespaceRefusal(ns *corev1.Namespace) string {
	switch {
	case ns.Labels[v1alpha1.LabelManagedBy] == v1alpha1.ManagedByValue || ns.Annotations[v1alpha1.AnnotationGrantMarker] != "":
		return fmt.Sprintf("provider namespace %s was granted to a consumer by the operator (request %s/%s), and a granted namespace "+
			"never serves as a provider namespace: its Secrets are the consumer's; use a namespace of the provider's",
			ns.Name, ns.Labels[v1alpha1.LabelRequestNamespace], ns.Labels[v1alpha1.LabelRequestName])
	case ns.Labels[v1alpha1.LabelProviderNamespace] == "true", providerNamespaceAllowed(o.ProviderNamespaces, ns.Name):
		return ""
	case len(o.ProviderNamespaces) > 0:
		return fmt.Sprintf("provider namespace %s is neither labelled %s=true nor one of the namespaces the operator's "+
			"--provider-namespaces flag allows (%s): goods are read and action Jobs run only in namespaces a cluster admin marked; "+
			"ask one to run: kubectl label namespace %s %s=true",
			ns.Name, v1alpha1.LabelProviderNamespace, strings.Join(o.ProviderNamespaces, ", "), ns.Name, v1alpha1.LabelProviderNamespace)
	default:
		return fmt.Sprintf("provider namespace %s is not marked as one: goods are read and action Jobs run only in namespaces a cluster "+
			"admin labelled %s=true (or named in --provider-namespaces); ask one to run: kubectl label namespace %s %s=true",
			ns.Name, v1alpha1.LabelProviderNamespace, ns.Name, v1alpha1.LabelProviderNamespace)
	}
}

// actionRefusal says why an automated action may not run in provider
// namespace ns (a namespace providerNamespace accepted): its Job template
// expands a parameter in command or args (UnsafeParameterExpansion), or it
// runs as a ServiceAccount a cluster admin has not allowed
// (ActionServiceAccountForbidden). reason and msg are "" when it may run.
func (o *Options) actionRefusal(ns *corev1.Namespace, item *v1alpha1.ActionItem) (reason, msg string) {
	if item.Job == nil {
		return "", ""
	}
	if why := parameterExpansion(item); why != "" {
		return v1alpha1.ReasonUnsafeParameterExpansion, why
	}
	sa := item.Job.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	if slices.Contains(o.ActionServiceAccounts, ns.Name+"/"+sa) {
		return "", ""
	}
	for _, allowed := range strings.Split(ns.Annotations[v1alpha1.AnnotationActionServiceAccounts], ",") {
		if strings.TrimSpace(allowed) == sa {
			return "", ""
		}
	}
	return v1alpha1.ReasonActionServiceAccountForbidden, fmt.Sprintf("action %s would run as ServiceAccount %s/%s, which a cluster admin "+
		"has not allowed to run action Jobs: allowed are the ServiceAccounts listed in the namespace's %s annotation (%q) and those "+
		"named namespace/name in --action-service-accounts; ask one to add it, for example: kubectl annotate namespace %s %s=%s",
		item.Name, ns.Name, sa, v1alpha1.AnnotationActionServiceAccounts, ns.Annotations[v1alpha1.AnnotationActionServiceAccounts],
		ns.Name, v1alpha1.AnnotationActionServiceAccounts, sa)
}

// ParseActionServiceAccounts parses the value of --action-service-accounts: a
// comma-separated list of namespace/name ServiceAccounts that action Jobs may
// run as in addition to those the provider namespaces' annotations allow.
func ParseActionServiceAccounts(value string) ([]string, error) {
	var out, problems []string
	for i, e := range strings.Split(value, ",") {
		if e = strings.TrimSpace(e); e == "" && strings.TrimSpace(value) == "" {
			break
		}
		ns, name, ok := strings.Cut(e, "/")
		if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
			problems = append(problems, fmt.Sprintf("entry %d %q: not namespace/name of a ServiceAccount", i+1, e))
			continue
		}
		out = append(out, e)
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return out, nil
}

// providerNamespaceRecheck is how soon a request refused for its provider
// namespace or its action's ServiceAccount is looked at again: namespaces are
// not watched, and a cluster admin's mark ends the refusal.
const providerNamespaceRecheck = 30 * time.Second

// actionRefused is the outcome of an action the operator may not run
// (providerNamespace, actionRefusal): nothing was created, and the request
// stalls until the provider fixes the offering or a cluster admin marks the
// namespace or ServiceAccount.
func actionRefused(item *v1alpha1.ActionItem, off *v1alpha1.ServiceOffering, reason, why string, err error) stepOutcome {
	if err != nil {
		return actionError(err)
	}
	return stall(v1alpha1.RequestProvisioning, reason,
		fmt.Sprintf("action %s of ServiceOffering %s is not run: %s; no Job or secret copy was created and the request waits",
			item.Name, off.Name, why)).fulfilment().after(providerNamespaceRecheck)
}
