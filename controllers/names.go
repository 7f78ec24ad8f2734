package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Names of the objects created in a granted namespace.
const (
	quotaName         = "offering-quota"
	limitRangeName    = "offering-limits"
	networkPolicyName = "offering-isolation"
	roleBindingPrefix = "offering-"
)

// grantedNamespace is the namespace a resource request's grant lives in:
// the one its status records once granted, so that an edit of the offering
// (an item that stops allowing requested names, a revision move) changes the
// grant in place and never moves it to a second namespace beside the first;
// before that, grantNamespaceName.
func grantedNamespace(cr *v1alpha1.ConsumptionRequest, item *v1alpha1.ResourceItem) string {
	if g := cr.Status.Grant; g != nil && g.Namespace != "" {
		return g.Namespace
	}
	return grantNamespaceName(cr, item)
}

// grantNamespaceName is the namespace granted to a resource request: the name
// the request asked for where the item allows it, otherwise
// "<request namespace>-<request name>-<hash>", cut to fit a DNS label. The hash
// of "<namespace>/<name>" tells apart requests whose visible parts agree
// ("a-b"/"c" and "a"/"b-c", "a.b" and "a-b"), and is stable so that a grant is
// found again. It is 24 bits: two requests can still derive the same name (see
// TestDerivedNamespaceCollisionsExist); the second is then refused with
// NamespaceConflict, because an existing namespace is never adopted.
//
// A request in a namespace called "kube" or "openshift" would derive a reserved
// name ("kube-..."), which is never granted: it gets "ns-" in front instead.
func grantNamespaceName(cr *v1alpha1.ConsumptionRequest, item *v1alpha1.ResourceItem) string {
	if cr.Spec.Resource != nil && cr.Spec.Resource.NamespaceName != "" && item != nil && item.Namespace.AllowRequestedName {
		return string(cr.Spec.Resource.NamespaceName)
	}
	key := cr.Namespace + "/" + cr.Name
	name := derivedName(cr.Namespace+"-"+cr.Name, key, 63)
	if isReservedNamespace(name) {
		name = derivedName("ns-"+cr.Namespace+"-"+cr.Name, key, 63)
	}
	return name
}

// requestedNameRefusal says why a resource request may not have the namespace
// name it asks for (spec.resource.namespaceName), and what to do instead; ""
// when it may, or asks for none. The item must allow choosing the name, and
// the name must start with the item's requestedNamePrefix (if any), the
// request's namespace and "-": a consumer names namespaces only in its own
// space, never another tenant's or a provider's namespace still to be
// created (a name that exists already is never adopted, see
// ensureNamespace). Without a prefix that space also holds the names that
// extend the consumer's namespace with "-" (team-a for a consumer in team);
// the prefix keeps requested names apart from every namespace the cluster
// admin names outside it (docs/security.md).
func requestedNameRefusal(cr *v1alpha1.ConsumptionRequest, item *v1alpha1.ResourceItem) string {
	if cr.Spec.Resource == nil || cr.Spec.Resource.NamespaceName == "" {
		return ""
	}
	if item == nil || !item.Namespace.AllowRequestedName {
		return fmt.Sprintf("resource %s does not allow choosing the namespace name; remove spec.resource.namespaceName", cr.Spec.Resource.Name)
	}
	asked := string(cr.Spec.Resource.NamespaceName)
	prefix := item.Namespace.RequestedNamePrefix + cr.Namespace + "-"
	if strings.HasPrefix(asked, prefix) && len(asked) > len(prefix) {
		return ""
	}
	example := strings.TrimPrefix(strings.TrimPrefix(asked, item.Namespace.RequestedNamePrefix), cr.Namespace+"-")
	if example == "" {
		example = "dev"
	}
	return fmt.Sprintf("namespace name %s is not in this namespace's space: a requested name must start with %q "+
		"(for example %s%s), so that no consumer can claim the name of another tenant's or a provider's future namespace",
		asked, prefix, prefix, example)
}

// roleBindingName is the RoleBinding that binds a ClusterRole in a granted namespace.
func roleBindingName(role string) string {
	return derivedName(roleBindingPrefix+sanitize(role), role, 253)
}

// derivedName returns base, made DNS-safe, followed by "-" and six hex digits
// of the hash of key, cut so that the whole is at most maxLen characters.
func derivedName(base, key string, maxLen int) string {
	sum := sha256.Sum256([]byte(key))
	suffix := hex.EncodeToString(sum[:])[:6]
	base = sanitize(base)
	if room := maxLen - len(suffix) - 1; len(base) > room {
		base = base[:room]
	}
	base = strings.Trim(base, "-.")
	if base == "" {
		return suffix
	}
	return base + "-" + suffix
}

// sanitize lower-cases s and replaces every character that is not a letter,
// digit or '-' with '-'.
func sanitize(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			b[i] = '-'
		}
	}
	return string(b)
}

// isReservedNamespace reports whether a namespace name belongs to the platform and is never granted.
func isReservedNamespace(name string) bool {
	return name == "default" || strings.HasPrefix(name, "kube-") || strings.HasPrefix(name, "openshift-")
}
