package gitops

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Argo CD health statuses.
const (
	argoHealthy     = "Healthy"
	argoProgressing = "Progressing"
	argoDegraded    = "Degraded"
	argoSuspended   = "Suspended"
)

// kstatus results; "" means the case is not checked against kstatus.
const (
	ksCurrent     = "Current"
	ksInProgress  = "InProgress"
	ksFailed      = "Failed"
	ksTerminating = "Terminating"
)

// healthCase is an object as the API server returns it, and how Argo CD (with
// our health check) and kstatus must read it.
type healthCase struct {
	name    string
	obj     func() map[string]any
	argo    string
	message string // the Argo CD health message; "" means the Ready condition's message
	kstatus string
}

var (
	created = metav1.NewTime(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	later   = metav1.NewTime(created.Add(3 * time.Second))
)

func cond(typ string, status metav1.ConditionStatus, reason, msg string, gen int64) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: gen, LastTransitionTime: later}
}

// toMap converts a typed object to the map the API server would return for it.
// noStatus drops the status, as for an object the operator has not reconciled yet.
func toMap(obj runtime.Object, noStatus bool) map[string]any {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		panic(err)
	}
	if noStatus {
		delete(m, "status")
	}
	return m
}

func objectMeta(name, namespace string, gen int64) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: name, Namespace: namespace, Generation: gen, UID: "6a1f9f0e-1c1e-4f55-9d7b-2b4c3e1f0a01",
		ResourceVersion: "4711", CreationTimestamp: created,
	}
}

// --- ServiceOffering -------------------------------------------------------

func offering(gen, observed int64, conds ...metav1.Condition) *v1alpha1.ServiceOffering {
	return &v1alpha1.ServiceOffering{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ServiceOffering"},
		ObjectMeta: objectMeta("colocation", "", gen),
		Spec: v1alpha1.ServiceOfferingSpec{
			Provider:          v1alpha1.Provider{Name: "Acme Colocation"},
			ProviderNamespace: "colo-provider",
			Resources: []v1alpha1.ResourceItem{{
				Name: "rack-space", ClusterRoles: []v1alpha1.ClusterRoleName{"colo-rack-operator"},
				NetworkIsolation: v1alpha1.NetworkIsolationNamespace, RevocationPolicy: v1alpha1.RevocationPolicyDelete,
			}},
		},
		Status: v1alpha1.ServiceOfferingStatus{ObservedGeneration: observed, Conditions: conds, Agreements: 1, ActiveConsumers: 1},
	}
}

func offeringReady(status metav1.ConditionStatus, reason, msg string) func() map[string]any {
	return func() map[string]any {
		return toMap(offering(1, 1, cond(v1alpha1.ConditionReady, status, reason, msg, 1)), false)
	}
}

func offeringCases() []healthCase {
	return asTheOperatorWrites(offeringStalled, []healthCase{
		{name: "no status yet", argo: argoProgressing, message: "Waiting for offering-operator to report status", kstatus: ksCurrent,
			obj: func() map[string]any { return toMap(offering(1, 0), true) }},
		{name: "observedGeneration behind", argo: argoProgressing, message: "Waiting for offering-operator to observe generation 2", kstatus: ksInProgress,
			obj: func() map[string]any {
				return toMap(offering(2, 1, cond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonValid,
					"all referenced ClusterRoles exist and are grantable", 1)), false)
			}},
		{name: "Ready Unknown", argo: argoProgressing, kstatus: ksInProgress,
			obj: offeringReady(metav1.ConditionUnknown, v1alpha1.ReasonReconciling, "validating the offering")},
		{name: "Valid", argo: argoHealthy, kstatus: ksCurrent,
			obj: offeringReady(metav1.ConditionTrue, v1alpha1.ReasonValid, "all referenced ClusterRoles exist and are grantable")},
		{name: "Valid with goods", argo: argoHealthy, kstatus: ksCurrent,
			obj: offeringReady(metav1.ConditionTrue, v1alpha1.ReasonValid,
				"all referenced ClusterRoles, the provider namespace and the goods sources exist and are allowed")},
		{name: "ClusterRoleNotFound", argo: argoDegraded, kstatus: ksFailed,
			obj: offeringReady(metav1.ConditionFalse, v1alpha1.ReasonClusterRoleNotFound, "resources[rack-space]: ClusterRole colo-rack-operator does not exist")},
		{name: "ClusterRoleForbidden", argo: argoDegraded, kstatus: ksFailed,
			obj: offeringReady(metav1.ConditionFalse, v1alpha1.ReasonClusterRoleForbidden,
				"resources[rack-space]: ClusterRole cluster-admin is never granted unless named in --allowed-cluster-roles")},
		{name: "ProviderNamespaceNotFound", argo: argoDegraded, kstatus: ksFailed,
			obj: offeringReady(metav1.ConditionFalse, v1alpha1.ReasonProviderNamespaceNotFound, "provider namespace colo-provider does not exist")},
		{name: "ProviderNamespaceForbidden", argo: argoDegraded, kstatus: ksFailed,
			obj: offeringReady(metav1.ConditionFalse, v1alpha1.ReasonProviderNamespaceForbidden,
				"provider namespace colo-provider is not marked as one: goods are read and action Jobs run only in namespaces a cluster "+
					"admin labelled service.offering.dev/provider-namespace=true (or named in --provider-namespaces); ask one to run: "+
					"kubectl label namespace colo-provider service.offering.dev/provider-namespace=true")},
		{name: "UnsafeParameterExpansion", argo: argoDegraded, kstatus: ksFailed,
			obj: offeringReady(metav1.ConditionFalse, v1alpha1.ReasonUnsafeParameterExpansion,
				"actions[install]: job.command[2] references parameter RACK as $(RACK), which the kubelet replaces by the consumer's value "+
					"before the program starts (a value could then run as code); parameters reach the Job only as environment variables: "+
					"read it from the environment instead, as \"$RACK\" in a shell")},
		{name: "ActionServiceAccountForbidden", argo: argoDegraded, kstatus: ksFailed,
			obj: offeringReady(metav1.ConditionFalse, v1alpha1.ReasonActionServiceAccountForbidden,
				"actions[install]: action install would run as ServiceAccount colo-provider/installer, which a cluster admin has not "+
					"allowed to run action Jobs")},
		{name: "GoodsSourceNotFound", argo: argoDegraded, kstatus: ksFailed,
			obj: offeringReady(metav1.ConditionFalse, v1alpha1.ReasonGoodsSourceNotFound,
				"goods[ha-device]: Secret colo-provider/ha-device-credentials does not exist")},
	})
}

// --- ServiceAgreement ------------------------------------------------------

func agreement(gen, observed int64, phase v1alpha1.AgreementPhase, conds ...metav1.Condition) *v1alpha1.ServiceAgreement {
	one := int32(1)
	return &v1alpha1.ServiceAgreement{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ServiceAgreement"},
		ObjectMeta: objectMeta("acme-payments", "team-payments", gen),
		Spec: v1alpha1.ServiceAgreementSpec{
			Offering:       "colocation",
			Consumer:       v1alpha1.Consumer{Name: "Team Payments", Subjects: []v1alpha1.Subject{{Kind: v1alpha1.SubjectGroup, Name: "team-payments"}}},
			Entitlements:   v1alpha1.Entitlements{Resources: []v1alpha1.ResourceEntitlement{{Name: "rack-space", MaxGrants: &one}}},
			ApprovalPolicy: v1alpha1.ApprovalAutomatic,
		},
		Status: v1alpha1.ServiceAgreementStatus{
			ObservedGeneration: observed, Phase: phase, Conditions: conds,
			Usage: []v1alpha1.EntitlementUsage{{Kind: v1alpha1.ItemKindResource, Item: "rack-space", Used: 0, Limit: &one}},
		},
	}
}

// agreementIn returns an agreement in a phase as evaluateLifecycle and the
// agreement controller report it: Active and Ready carry the lifecycle's
// reason and message; Ready is True only when Active and every entitlement is known.
func agreementIn(phase v1alpha1.AgreementPhase, reason, msg string, mutate ...func(*v1alpha1.ServiceAgreement)) func() map[string]any {
	return func() map[string]any {
		active := metav1.ConditionFalse
		if phase == v1alpha1.AgreementActive {
			active = metav1.ConditionTrue
		}
		a := agreement(1, 1, phase,
			cond(v1alpha1.ConditionReady, active, reason, msg, 1),
			cond(v1alpha1.ConditionActive, active, reason, msg, 1),
			cond(v1alpha1.ConditionEntitlementsExhausted, metav1.ConditionFalse, v1alpha1.ReasonAvailable, "every entitlement has room left", 1))
		for _, m := range mutate {
			m(a)
		}
		return toMap(a, false)
	}
}

func agreementCases() []healthCase {
	return asTheOperatorWrites(agreementStalled, agreementCaseList())
}

func agreementCaseList() []healthCase {
	inForce := "the agreement is in force until 2027-12-31T00:00:00Z"
	return []healthCase{
		{name: "no status yet", argo: argoProgressing, message: "Waiting for offering-operator to report status", kstatus: ksCurrent,
			obj: func() map[string]any { return toMap(agreement(1, 0, ""), true) }},
		{name: "observedGeneration behind", argo: argoProgressing, message: "Waiting for offering-operator to observe generation 3", kstatus: ksInProgress,
			obj: agreementIn(v1alpha1.AgreementActive, v1alpha1.ReasonActive, inForce, func(a *v1alpha1.ServiceAgreement) { a.Generation = 3; a.Status.ObservedGeneration = 2 })},
		{name: "Pending OfferingNotFound", argo: argoProgressing, kstatus: ksInProgress,
			obj: agreementIn(v1alpha1.AgreementPending, v1alpha1.ReasonOfferingNotFound, "ServiceOffering colocation does not exist")},
		{name: "Pending OfferingNotReady", argo: argoProgressing, kstatus: ksInProgress,
			obj: agreementIn(v1alpha1.AgreementPending, v1alpha1.ReasonOfferingNotReady,
				"ServiceOffering colocation is not Ready: resources[rack-space]: ClusterRole colo-rack-operator does not exist")},
		{name: "Pending NotYetValid", argo: argoProgressing, kstatus: ksInProgress,
			obj: agreementIn(v1alpha1.AgreementPending, v1alpha1.ReasonNotYetValid, "the agreement becomes valid at 2027-01-01T00:00:00Z")},
		{name: "Active", argo: argoHealthy, kstatus: ksCurrent,
			obj: agreementIn(v1alpha1.AgreementActive, v1alpha1.ReasonActive, inForce)},
		{name: "Active with an entitlement exhausted", argo: argoHealthy, kstatus: ksCurrent,
			obj: agreementIn(v1alpha1.AgreementActive, v1alpha1.ReasonActive, inForce, func(a *v1alpha1.ServiceAgreement) {
				a.Status.Conditions[2] = cond(v1alpha1.ConditionEntitlementsExhausted, metav1.ConditionTrue, v1alpha1.ReasonExhausted,
					"fully used: [Resource/rack-space]; further requests for them are denied", 1)
				a.Status.Usage[0].Used = 1
			})},
		{name: "Active but an entitlement names an unknown item", argo: argoDegraded, kstatus: ksFailed,
			message: "entitlements name items that offering colocation does not have: [resource rack-spaec]",
			obj: agreementIn(v1alpha1.AgreementActive, v1alpha1.ReasonActive, inForce, func(a *v1alpha1.ServiceAgreement) {
				a.Status.Conditions[0] = cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonEntitlementUnknownItem,
					"entitlements name items that offering colocation does not have: [resource rack-spaec]", 1)
			})},
		{name: "Suspended", argo: argoSuspended, kstatus: ksInProgress,
			obj: agreementIn(v1alpha1.AgreementSuspended, v1alpha1.ReasonSuspended, "spec.suspended is true: access is revoked and new requests wait")},
		{name: "Expired", argo: argoDegraded, kstatus: ksFailed,
			obj: agreementIn(v1alpha1.AgreementExpired, v1alpha1.ReasonExpired,
				"the agreement expired at 2026-12-31T00:00:00Z; extend spec.validUntil to restore it")},
		{name: "Terminating", argo: argoProgressing, kstatus: ksTerminating,
			obj: agreementIn(v1alpha1.AgreementTerminating, v1alpha1.ReasonTerminating, "revoking access: 2 request(s) still hold grants",
				func(a *v1alpha1.ServiceAgreement) {
					a.DeletionTimestamp = &later
					a.Finalizers = []string{v1alpha1.Finalizer}
				})},
	}
}

// --- ConsumptionRequest ----------------------------------------------------

func request(gen, observed int64, phase v1alpha1.RequestPhase, conds ...metav1.Condition) *v1alpha1.ConsumptionRequest {
	return &v1alpha1.ConsumptionRequest{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ConsumptionRequest"},
		ObjectMeta: objectMeta("rack-a", "team-payments", gen),
		Spec: v1alpha1.ConsumptionRequestSpec{
			Agreement: "acme-payments",
			Resource:  &v1alpha1.ResourceRequest{Name: "rack-space"},
		},
		Status: v1alpha1.ConsumptionRequestStatus{
			ObservedGeneration: observed, Phase: phase, Item: "Resource/rack-space", Offering: "colocation", Conditions: conds,
		},
	}
}

const grantedNS = "team-payments-rack-a-3f2a1c"

// req builds a resource request in phase with the given conditions (generation 1, observed).
func req(phase v1alpha1.RequestPhase, conds ...metav1.Condition) func() map[string]any {
	return func() map[string]any { return toMap(request(1, 1, phase, conds...), false) }
}

// goodsReq builds a goods request in phase with the given conditions.
func goodsReq(gen int64, phase v1alpha1.RequestPhase, decision v1alpha1.GoodsDecision, conds ...metav1.Condition) func() map[string]any {
	return func() map[string]any {
		r := request(gen, gen, phase, conds...)
		r.Name = "ha-pair"
		r.Spec.Resource = nil
		r.Spec.Goods = &v1alpha1.GoodsRequest{Name: "ha-device", Quantity: 2, Decision: decision}
		r.Status.Item = "Goods/ha-device"
		if phase == v1alpha1.RequestDelivered || phase == v1alpha1.RequestAccepted {
			r.Status.TransferredAt = &later
			r.Status.Delivered = []v1alpha1.DeliveredObject{
				{Kind: v1alpha1.GoodsSourceSecret, Name: "ha-pair-ha-device-credentials-9c1d2e", Namespace: "team-payments"},
				{Kind: v1alpha1.GoodsSourceConfigMap, Name: "ha-pair-ha-device-config-41b0aa", Namespace: "team-payments"},
			}
		}
		return toMap(r, false)
	}
}

var (
	autoApproved = cond(v1alpha1.ConditionApproved, metav1.ConditionTrue, v1alpha1.ReasonAutoApproved,
		"ServiceAgreement acme-payments approves requests automatically", 1)
	granted = cond(v1alpha1.ConditionFulfilled, metav1.ConditionTrue, v1alpha1.ReasonGranted,
		"namespace "+grantedNS+" granted with 1 RoleBinding(s)", 1)
	delivered = "Secret ha-pair-ha-device-credentials-9c1d2e, ConfigMap ha-pair-ha-device-config-41b0aa delivered into namespace team-payments"
)

func notReady(reason, msg string) metav1.Condition {
	return cond(v1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg, 1)
}

// denied is a request refused at admission (or by a provider) as finishDenied reports it.
func denied(reason, msg string) func() map[string]any {
	return req(v1alpha1.RequestDenied,
		cond(v1alpha1.ConditionDenied, metav1.ConditionTrue, reason, msg, 1),
		notReady(reason, msg),
		cond(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, reason, "the request was denied", 1))
}

// revoked is a request whose access was revoked by revokeAndReport.
func revoked(why string) func() map[string]any {
	return req(v1alpha1.RequestRevoked, autoApproved,
		notReady(v1alpha1.ReasonRevoked, why+"; access is revoked"),
		cond(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, v1alpha1.ReasonRevoked, why, 1),
		cond(v1alpha1.ConditionAccessVerified, metav1.ConditionFalse, v1alpha1.ReasonRevoked, "access was revoked", 1))
}

// waiting is a request the operator keeps in a non-final phase with Ready=False and reason.
func waiting(phase v1alpha1.RequestPhase, reason, msg string) func() map[string]any {
	return req(phase, autoApproved, cond(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, reason, msg, 1), notReady(reason, msg))
}

func requestCases() []healthCase {
	return asTheOperatorWrites(requestStalled, requestCaseList())
}

func requestCaseList() []healthCase {
	accessDenied := "User alice cannot get pods in namespace " + grantedNS + " (ClusterRole colo-rack-operator): denied by webhook"
	awaitMsg := "goods ha-device are delivered and wait for the consumer's decision: set spec.goods.decision to Accept or Reject"
	return []healthCase{
		{name: "no status yet", argo: argoProgressing, message: "Waiting for offering-operator to report status", kstatus: ksCurrent,
			obj: func() map[string]any { return toMap(request(1, 0, ""), true) }},
		{name: "goods decision not observed yet", argo: argoProgressing, message: "Waiting for offering-operator to observe generation 2", kstatus: ksInProgress,
			obj: func() map[string]any {
				m := goodsReq(1, v1alpha1.RequestDelivered, "", autoApproved, notReady(v1alpha1.ReasonAwaitingAcceptance, awaitMsg))()
				m["metadata"].(map[string]any)["generation"] = int64(2)
				m["spec"].(map[string]any)["goods"].(map[string]any)["decision"] = string(v1alpha1.GoodsAccept)
				return m
			}},
		{name: "Pending AgreementNotFound", argo: argoProgressing, kstatus: ksInProgress,
			obj: req(v1alpha1.RequestPending, notReady(v1alpha1.ReasonAgreementNotFound,
				"ServiceAgreement acme-payments does not exist in namespace team-payments; the request waits for it"))},
		{name: "Pending AgreementNotActive", argo: argoProgressing, kstatus: ksInProgress,
			obj: req(v1alpha1.RequestPending, notReady(v1alpha1.ReasonAgreementNotActive,
				"ServiceAgreement acme-payments is suspended; the request waits until it is Active"))},
		{name: "AwaitingApproval", argo: argoProgressing, kstatus: ksInProgress,
			obj: req(v1alpha1.RequestAwaitingApproval, notReady(v1alpha1.ReasonAwaitingApproval,
				"ServiceAgreement acme-payments requires a provider to approve this request: add the condition Approved=True "+
					"(or Denied=True) through the status subresource"))},
		{name: "Provisioning while verifying access", argo: argoProgressing, kstatus: ksInProgress,
			obj: req(v1alpha1.RequestProvisioning, autoApproved, granted,
				cond(v1alpha1.ConditionAccessVerified, metav1.ConditionUnknown, v1alpha1.ReasonReconciling, "waiting for the authorizer: "+accessDenied, 1),
				notReady(v1alpha1.ReasonProvisioning, "verifying access: "+accessDenied))},
		{name: "Provisioning NamespaceTerminating", argo: argoProgressing, kstatus: ksInProgress,
			obj: waiting(v1alpha1.RequestProvisioning, v1alpha1.ReasonNamespaceTerminating,
				"namespace "+grantedNS+" from an earlier grant is still being deleted")},
		{name: "Provisioning GrantFailed", argo: argoProgressing, kstatus: ksInProgress,
			obj: waiting(v1alpha1.RequestProvisioning, v1alpha1.ReasonGrantFailed, "resourcequotas \"offering-quota\" is forbidden: exceeded")},
		{name: "Fulfilled while repairing drift fails", argo: argoProgressing, kstatus: ksInProgress,
			obj: waiting(v1alpha1.RequestFulfilled, v1alpha1.ReasonGrantFailed, "rolebindings.rbac.authorization.k8s.io is forbidden")},
		{name: "Provisioning AccessDenied", argo: argoDegraded, kstatus: ksFailed,
			obj: req(v1alpha1.RequestProvisioning, autoApproved, granted,
				cond(v1alpha1.ConditionAccessVerified, metav1.ConditionFalse, v1alpha1.ReasonAccessDenied, accessDenied, 1),
				notReady(v1alpha1.ReasonAccessDenied, accessDenied))},
		{name: "action UnsafeParameterExpansion", argo: argoDegraded, kstatus: ksFailed,
			obj: waiting(v1alpha1.RequestProvisioning, v1alpha1.ReasonUnsafeParameterExpansion,
				"action install of ServiceOffering colo is not run: job.command[2] references parameter RACK as $(RACK), which the kubelet replaces by "+
					"the consumer's value before the program starts (a value could then run as code); parameters reach the Job only as "+
					"environment variables: read it from the environment instead, as \"$RACK\" in a shell; "+
					"no Job or secret copy was created and the request waits")},
		{name: "action ProviderNamespaceForbidden", argo: argoDegraded, kstatus: ksFailed,
			obj: waiting(v1alpha1.RequestProvisioning, v1alpha1.ReasonProviderNamespaceForbidden,
				"action install of ServiceOffering colo is not run: provider namespace colo-provider is not marked as one: goods are read and "+
					"action Jobs run only in namespaces a cluster admin labelled service.offering.dev/provider-namespace=true (or named in "+
					"--provider-namespaces); ask one to run: kubectl label namespace colo-provider service.offering.dev/provider-namespace=true; "+
					"no Job or secret copy was created and the request waits")},
		{name: "action ProviderNamespaceNotFound", argo: argoDegraded, kstatus: ksFailed,
			obj: waiting(v1alpha1.RequestProvisioning, v1alpha1.ReasonProviderNamespaceNotFound,
				"action install of ServiceOffering colo is not run: provider namespace colo-provider does not exist; "+
					"no Job or secret copy was created and the request waits")},
		{name: "action ActionServiceAccountForbidden", argo: argoDegraded, kstatus: ksFailed,
			obj: waiting(v1alpha1.RequestProvisioning, v1alpha1.ReasonActionServiceAccountForbidden,
				"action install of ServiceOffering colo is not run: action install would run as ServiceAccount colo-provider/installer, which a "+
					"cluster admin has not allowed to run action Jobs: allowed are the ServiceAccounts listed in the namespace's "+
					"service.offering.dev/action-service-accounts annotation (\"default\") and those named namespace/name in "+
					"--action-service-accounts; ask one to add it, for example: kubectl annotate namespace colo-provider "+
					"service.offering.dev/action-service-accounts=installer; no Job or secret copy was created and the request waits")},
		{name: "action UnsupportedItemKind", argo: argoDegraded, kstatus: ksFailed,
			obj: waiting(v1alpha1.RequestProvisioning, v1alpha1.ReasonUnsupportedItemKind,
				"this version of offering-operator does not fulfil Action items yet; the request stays approved and waits")},
		{name: "goods SourceNotFound", argo: argoDegraded, kstatus: ksFailed,
			obj: goodsReq(1, v1alpha1.RequestProvisioning, "", autoApproved,
				notReady(v1alpha1.ReasonSourceNotFound, "goods source Secret colo-provider/ha-device-credentials does not exist; "+
					"the request waits for the provider to create it"))},
		{name: "goods CopyConflict", argo: argoDegraded, kstatus: ksFailed,
			obj: goodsReq(1, v1alpha1.RequestProvisioning, "", autoApproved,
				notReady(v1alpha1.ReasonCopyConflict, "Secret team-payments/ha-pair-ha-device-credentials-9c1d2e already exists and was not "+
					"delivered for this request; it is never overwritten: rename or delete it"))},
		{name: "goods Delivered awaiting acceptance", argo: argoProgressing, kstatus: ksInProgress,
			obj: goodsReq(1, v1alpha1.RequestDelivered, "", autoApproved,
				cond(v1alpha1.ConditionTransferred, metav1.ConditionTrue, v1alpha1.ReasonDelivered, delivered, 1),
				cond(v1alpha1.ConditionFulfilled, metav1.ConditionTrue, v1alpha1.ReasonDelivered, delivered, 1),
				cond(v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonAwaitingAcceptance, awaitMsg, 1),
				notReady(v1alpha1.ReasonAwaitingAcceptance, awaitMsg))},
		{name: "Fulfilled", argo: argoHealthy, kstatus: ksCurrent,
			obj: req(v1alpha1.RequestFulfilled, autoApproved, granted,
				cond(v1alpha1.ConditionAccessVerified, metav1.ConditionTrue, v1alpha1.ReasonVerified,
					"SubjectAccessReview confirms all 2 subject(s) can use namespace "+grantedNS, 1),
				cond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonGranted, "access to namespace "+grantedNS+" is granted and verified", 1))},
		{name: "goods Accepted by the consumer", argo: argoHealthy, kstatus: ksCurrent,
			obj: goodsReq(2, v1alpha1.RequestAccepted, v1alpha1.GoodsAccept,
				cond(v1alpha1.ConditionTransferred, metav1.ConditionTrue, v1alpha1.ReasonDelivered, delivered, 2),
				cond(v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAcceptedByConsumer,
					"the consumer accepted the goods; the consumer owns the delivered objects", 2),
				cond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAcceptedByConsumer,
					"the consumer accepted the goods; the consumer owns the delivered objects", 2))},
		{name: "goods Accepted implicitly", argo: argoHealthy, kstatus: ksCurrent,
			obj: goodsReq(1, v1alpha1.RequestAccepted, "",
				cond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAcceptedImplicitly,
					"the goods need no acceptance: delivery is acceptance; the consumer owns the delivered objects", 1))},
		{name: "goods Rejected by the consumer", argo: argoHealthy, kstatus: ksInProgress,
			obj: goodsReq(2, v1alpha1.RequestRejected, v1alpha1.GoodsReject,
				cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonRejectedByConsumer,
					"the consumer rejected the goods; the delivered objects were removed and the entitlement given back", 2))},
		{name: "goods returned at the acceptance deadline", argo: argoDegraded, kstatus: ksFailed,
			obj: goodsReq(1, v1alpha1.RequestRejected, "",
				notReady(v1alpha1.ReasonAcceptanceDeadlinePassed, "the consumer did not accept or reject the goods by the acceptance "+
					"deadline 2026-03-04T10:00:03Z; the goods are returned; the delivered objects were removed and the entitlement given back"))},
		{name: "Denied ItemNotEntitled", argo: argoDegraded, kstatus: ksFailed,
			obj: denied(v1alpha1.ReasonItemNotEntitled, "ServiceAgreement acme-payments does not include Resource dedicated-server")},
		{name: "Denied EntitlementExhausted", argo: argoDegraded, kstatus: ksFailed,
			obj: denied(v1alpha1.ReasonEntitlementExhausted,
				"the entitlement for Resource rack-space is used up (2 of 2 in use); release one or ask the provider for more")},
		{name: "Denied by a provider", argo: argoDegraded, kstatus: ksFailed,
			obj: denied(v1alpha1.ReasonDeniedByProvider, "rack A is reserved for the migration")},
		{name: "Failed NamespaceConflict", argo: argoDegraded, kstatus: ksFailed,
			obj: req(v1alpha1.RequestFailed, autoApproved,
				notReady(v1alpha1.ReasonNamespaceConflict, "namespace payments-prod already exists and was not created by offering-operator "+
					"for this request; it is never adopted: delete it or request another name"),
				cond(v1alpha1.ConditionFulfilled, metav1.ConditionFalse, v1alpha1.ReasonNamespaceConflict, "namespace payments-prod already exists", 1))},
		{name: "Revoked: agreement suspended", argo: argoSuspended, kstatus: ksInProgress,
			obj: revoked("ServiceAgreement acme-payments is suspended")},
		{name: "Revoked: agreement expired", argo: argoSuspended, kstatus: ksInProgress,
			obj: revoked("ServiceAgreement acme-payments expired at 2026-12-31T00:00:00Z")},
		{name: "Revoked: agreement deleted", argo: argoSuspended, kstatus: ksInProgress,
			obj: revoked("ServiceAgreement acme-payments no longer exists")},
		{name: "being deleted", argo: "", kstatus: ksTerminating,
			obj: func() map[string]any {
				m := req(v1alpha1.RequestFulfilled, autoApproved, granted,
					cond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonGranted, "access to namespace "+grantedNS+" is granted and verified", 1))()
				m["metadata"].(map[string]any)["deletionTimestamp"] = later.UTC().Format(time.RFC3339)
				return m
			}},
	}
}

// readyMessage returns the message of the Ready condition of obj, or "".
func readyMessage(t *testing.T, obj map[string]any) string {
	t.Helper()
	status, _ := obj["status"].(map[string]any)
	conds, _ := status["conditions"].([]any)
	for _, c := range conds {
		cm := c.(map[string]any)
		if cm["type"] == v1alpha1.ConditionReady {
			msg, _ := cm["message"].(string)
			return msg
		}
	}
	return ""
}

// --- Stalled ------------------------------------------------------------------

// The rules by which the operator writes Stalled=True, with the Ready
// condition's reason and message (for requests, setRequestStatus in
// controllers/request_status.go, from the kind of outcome a step returns;
// controllers/request_status_test.go holds the table of every reason; the
// agreement and offering status setters). The fixtures above
// hold the other conditions as the operator writes them; asTheOperatorWrites
// adds Stalled where the operator would, so that kstatus reads the same
// status the operator produces. The expectations (kstatus Failed exactly
// where Argo CD reads Degraded) are written by hand in the cases.

func offeringStalled(_ string, ready map[string]any) bool { return ready["status"] == "False" }

func agreementStalled(phase string, ready map[string]any) bool {
	return phase == string(v1alpha1.AgreementExpired) || (phase == string(v1alpha1.AgreementActive) && ready["status"] == "False")
}

func requestStalled(phase string, ready map[string]any) bool {
	switch v1alpha1.RequestPhase(phase) {
	case v1alpha1.RequestDenied, v1alpha1.RequestFailed:
		return true
	case v1alpha1.RequestRejected:
		return ready["reason"] != v1alpha1.ReasonRejectedByConsumer
	}
	switch ready["reason"] {
	case v1alpha1.ReasonAccessDenied, v1alpha1.ReasonCopyConflict, v1alpha1.ReasonSourceNotFound, v1alpha1.ReasonSourceNotAllowed,
		v1alpha1.ReasonItemNotOffered, v1alpha1.ReasonUnsupportedItemKind, v1alpha1.ReasonUnsafeParameterExpansion,
		v1alpha1.ReasonProviderNamespaceForbidden, v1alpha1.ReasonProviderNamespaceNotFound, v1alpha1.ReasonActionServiceAccountForbidden:
		return ready["status"] == "False"
	}
	return false
}

func asTheOperatorWrites(stalled func(phase string, ready map[string]any) bool, cases []healthCase) []healthCase {
	for i := range cases {
		obj := cases[i].obj
		cases[i].obj = func() map[string]any {
			m := obj()
			status, _ := m["status"].(map[string]any)
			conds, _ := status["conditions"].([]any)
			phase, _ := status["phase"].(string)
			for _, c := range conds {
				if ready := c.(map[string]any); ready["type"] == v1alpha1.ConditionReady && stalled(phase, ready) {
					st := map[string]any{}
					for k, v := range ready {
						st[k] = v
					}
					st["type"] = v1alpha1.ConditionStalled
					st["status"] = "True"
					status["conditions"] = append(conds, st)
					break
				}
			}
			return m
		}
	}
	return cases
}
