package controllers

import (
	"context"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// The verb "operate" on the status of the three kinds is how the admission
// policies of config/admission recognise the operator: only the operator's
// ClusterRole grants it (see config/admission/requests.yaml).
// +kubebuilder:rbac:groups=service.offering.dev,resources=consumptionrequests/status;serviceagreements/status;serviceofferings/status,verbs=operate
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingadmissionpolicies;validatingadmissionpolicybindings,verbs=get,resourceNames=offering-operator-requests

// creatorPolicy is the ValidatingAdmissionPolicy (and its binding) that
// refuses a ConsumptionRequest whose spec.creator is not its creator's
// (config/admission/requests.yaml).
const creatorPolicy = "offering-operator-requests"

// secretAccessRefusal says why the operator will not read the Secrets that
// cr names in spec.action.secretParameters on its creator's behalf, or ""
// when the creator may read every one of them. The operator acts for the
// consumer only where the consumer itself may act: otherwise a consumer who
// may not read a Secret of its namespace would have the operator copy it to
// the provider's Job. The creator is spec.creator, which admission stamps;
// it is trusted only while the policy that guarantees it is installed.
// Nothing is read here: the check is a SubjectAccessReview per Secret.
func secretAccessRefusal(ctx context.Context, c client.Client, live client.Reader, cr *v1alpha1.ConsumptionRequest) (string, error) {
	if cr.Spec.Action == nil || len(cr.Spec.Action.SecretParameters) == 0 {
		return "", nil
	}
	creator := cr.Spec.Creator
	if creator == nil {
		return "the request records no creator (spec.creator is stamped at creation by the admission policies of " +
			"config/admission, which were not installed when it was created), so the operator cannot check who may " +
			"read its secret parameters and reads none: create the request again", nil
	}
	if why, err := creatorPolicyMissing(ctx, live); why != "" || err != nil {
		return why, err
	}
	checked := map[string]bool{}
	for _, p := range cr.Spec.Action.SecretParameters {
		name := string(p.SecretKeyRef.Name)
		if checked[name] {
			continue
		}
		checked[name] = true
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   creator.Username,
			UID:    creator.UID,
			Groups: creator.Groups,
			Extra:  sarExtra(creator.Extra),
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: cr.Namespace, Verb: "get", Resource: "secrets", Name: name,
			},
		}}
		if err := c.Create(ctx, sar); err != nil {
			return "", fmt.Errorf("asking whether %s may read Secret %s/%s: %w", creator.Username, cr.Namespace, name, err)
		}
		if !sar.Status.Allowed {
			return fmt.Sprintf("secret parameter %s: the request's creator %s may not get Secret %s/%s, so the operator "+
				"does not read it on the creator's behalf; grant the creator get on that Secret, or have someone who may "+
				"read it create the request", p.Name, creator.Username, cr.Namespace, name), nil
		}
	}
	return "", nil
}

// creatorPolicyMissing says why spec.creator cannot be trusted on this
// cluster, or "" when the policy that guarantees it is installed.
func creatorPolicyMissing(ctx context.Context, live client.Reader) (string, error) {
	key := types.NamespacedName{Name: creatorPolicy}
	for _, obj := range []client.Object{
		&admissionregistrationv1.ValidatingAdmissionPolicy{},
		&admissionregistrationv1.ValidatingAdmissionPolicyBinding{},
	} {
		err := live.Get(ctx, key, obj)
		if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			return fmt.Sprintf("the admission policy %s (config/admission) is not installed, so spec.creator may have "+
				"been typed by anyone and the operator reads no secret parameter on its behalf; install it "+
				"(make deploy, or kubectl apply -k config/admission)", creatorPolicy), nil
		}
		if err != nil {
			return "", fmt.Errorf("reading the admission policy %s: %w", creatorPolicy, err)
		}
	}
	return "", nil
}

func sarExtra(extra map[string]v1alpha1.ExtraValue) map[string]authorizationv1.ExtraValue {
	if len(extra) == 0 {
		return nil
	}
	out := make(map[string]authorizationv1.ExtraValue, len(extra))
	for k, v := range extra {
		out[k] = authorizationv1.ExtraValue(v)
	}
	return out
}

// secretAccessRefused is the outcome when the action's secret parameters
// are not read (why), or the error that kept the check from being made.
// Nothing was read or created; the request holds its entitlement and waits
// for a person, but is looked at again, since the creator may be granted
// access meanwhile.
func secretAccessRefused(why string, err error) stepOutcome {
	if err != nil {
		return errored(err)
	}
	return stall(v1alpha1.RequestProvisioning, v1alpha1.ReasonSecretNotReadable, why).fulfilment().after(secretParameterRecheck)
}
