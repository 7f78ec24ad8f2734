package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// validate checks what the schema cannot: roles exist and are grantable,
// the provider namespace exists and a cluster admin marked it
// (providerNamespace), every action's Job template reads parameters only from
// the environment and runs as an allowed ServiceAccount (actionRefusal), and
// the goods sources exist. The
// provider namespace is checked only when the offering has goods or actions,
// the only items that use it. It returns the Ready reason
// and message, and whether to look again later (for objects not watched).
func (r *OfferingReconciler) validate(ctx context.Context, off *v1alpha1.ServiceOffering) (reason, msg string, recheck bool, err error) {
	for _, item := range off.Spec.Resources {
		for _, name := range item.ClusterRoles {
			var role rbacv1.ClusterRole
			if err := r.Get(ctx, types.NamespacedName{Name: string(name)}, &role); err != nil {
				if apierrors.IsNotFound(err) {
					return v1alpha1.ReasonClusterRoleNotFound,
						fmt.Sprintf("resources[%s]: ClusterRole %s does not exist", item.Name, name), false, nil
				}
				return "", "", false, err
			}
			if err := r.Policy.Check(&role); err != nil {
				return v1alpha1.ReasonClusterRoleForbidden, fmt.Sprintf("resources[%s]: %v", item.Name, err), false, nil
			}
		}
	}
	if len(off.Spec.Goods) == 0 && len(off.Spec.Actions) == 0 {
		return v1alpha1.ReasonValid, "all referenced ClusterRoles exist and are grantable", false, nil
	}
	ns, reason, msg, err := r.Options.providerNamespace(ctx, r.APIReader, string(off.Spec.ProviderNamespace))
	if err != nil || reason != "" {
		// Namespaces are not watched: a missing or unmarked one is looked at again.
		return reason, msg, true, err
	}
	for i := range off.Spec.Actions {
		if reason, msg := r.Options.actionRefusal(ns, &off.Spec.Actions[i]); reason != "" {
			return reason, fmt.Sprintf("actions[%s]: %s", off.Spec.Actions[i].Name, msg), true, nil
		}
	}
	for _, item := range off.Spec.Goods {
		for _, src := range item.Sources {
			obj := &metav1.PartialObjectMetadata{}
			obj.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(string(src.Kind)))
			key := types.NamespacedName{Namespace: string(off.Spec.ProviderNamespace), Name: string(src.Name)}
			if err := r.APIReader.Get(ctx, key, obj); err != nil {
				if apierrors.IsNotFound(err) {
					return v1alpha1.ReasonGoodsSourceNotFound,
						fmt.Sprintf("goods[%s]: %s %s/%s does not exist", item.Name, src.Kind, key.Namespace, key.Name), true, nil
				}
				return "", "", false, err
			}
		}
	}
	return v1alpha1.ReasonValid, "all referenced ClusterRoles, the provider namespace and the goods sources exist and are allowed", false, nil
}
