package controllers

// Tenants and privilege (issue #9): what a consumer cannot do, whatever it
// writes, and what the operator refuses to grant, whatever a provider writes.
// The identities are the suite's personas (the shipped ClusterRoles in
// config/rbac bound to test users) and, for tenant isolation, users bound to
// the shipped consumer role with a RoleBinding in one namespace only, as
// config/rbac/consumer_role.yaml tells cluster admins to bind it.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// tenantUser binds the shipped consumer ClusterRole to a new user with a
// RoleBinding in namespace ns only, and returns the user's name and a client
// acting as that user (the admin impersonates it, so the API server
// authorizes every call as the user).
func tenantUser(t *testing.T, ns string) (string, client.Client) {
	t.Helper()
	user := uniq("tenant-user")
	mustCreate(t, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "consumer-" + user, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "offering-operator-consumer"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	})
	cfg := rest.CopyConfig(testEnv.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	c, err := client.New(cfg, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	// The RoleBinding is in the authorizer's cache once the user can list requests.
	eventually(t, 10*time.Second, "tenant user authorized", func() error {
		return c.List(testCtx, &v1alpha1.ConsumptionRequestList{}, client.InNamespace(ns))
	})
	return user, c
}

// canI asks the API server whether user may do verb on resource (group/resource[/subresource]) in ns.
func canI(t *testing.T, user, verb, group, resource, sub, ns string) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: []string{"system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: group, Resource: resource, Subresource: sub},
	}}
	if err := admin.Create(testCtx, sar); err != nil {
		t.Fatal(err)
	}
	return sar.Status.Allowed
}

type outcome string

const (
	allowed   outcome = "allowed"
	forbidden outcome = "Forbidden"
	invalid   outcome = "Invalid"
)

func outcomeOf(err error) outcome {
	switch {
	case err == nil:
		return allowed
	case apierrors.IsForbidden(err):
		return forbidden
	case apierrors.IsInvalid(err):
		return invalid
	}
	return outcome("error: " + err.Error())
}

// TestConsumerIsolationMatrix: every write a consumer could use to approve,
// change its terms, or reach another tenant, tried against the real API
// server as a consumer. "tenant" is bound to the shipped consumer role in its
// namespace (the documented binding); "consumer" is the suite's consumer, bound
// to the same role cluster-wide. Positive rows show the identities work, so
// that the Forbidden rows mean something.
func TestConsumerIsolationMatrix(t *testing.T) {
	a := newFixture(t, withManualApproval())
	b := newFixture(t)
	crA := a.resourceRequest("waiting")
	mustCreate(t, crA)
	waitPhase(t, crA, v1alpha1.RequestAwaitingApproval)
	crB := b.resourceRequest("granted")
	mustCreate(t, crB)
	waitCondition(t, crB, v1alpha1.ConditionReady, metav1.ConditionTrue)
	provider := uniq("provider")
	mustCreate(t, nsObj(provider))
	mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "source", Namespace: provider}, StringData: map[string]string{"k": "v"}})

	_, tenant := tenantUser(t, a.ns)
	clients := map[string]client.Client{"tenant": tenant, "consumer": userClient(t, consumerUser)}

	cond := func(typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: "by a consumer", LastTransitionTime: metav1.Now()}
	}
	// fresh returns a current copy of obj, read as the admin.
	fresh := func(obj client.Object) client.Object {
		o := obj.DeepCopyObject().(client.Object)
		get(t, o)
		return o
	}
	statusUpdate := func(c client.Client, obj client.Object, mutate func(client.Object)) error {
		o := fresh(obj)
		mutate(o)
		return c.Status().Update(testCtx, o)
	}
	statusPatch := func(c client.Client, obj client.Object, mutate func(client.Object)) error {
		o := fresh(obj)
		patch := client.MergeFrom(o.DeepCopyObject().(client.Object))
		mutate(o)
		return c.Status().Patch(testCtx, o, patch)
	}
	addCondition := func(c metav1.Condition) func(client.Object) {
		return func(o client.Object) {
			r := o.(*v1alpha1.ConsumptionRequest)
			r.Status.Conditions = append(r.Status.Conditions, c)
		}
	}
	newAgreement := func(ns string) *v1alpha1.ServiceAgreement {
		agr := a.agreement.DeepCopy()
		agr.ObjectMeta = metav1.ObjectMeta{Name: uniq("own-agreement"), Namespace: ns}
		agr.Status = v1alpha1.ServiceAgreementStatus{}
		return agr
	}
	newRequest := func(ns, agreement string) *v1alpha1.ConsumptionRequest {
		return &v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{Name: uniq("req"), Namespace: ns},
			Spec: v1alpha1.ConsumptionRequestSpec{Agreement: v1alpha1.AgreementName(agreement), Resource: &v1alpha1.ResourceRequest{Name: "space"}}}
	}
	specUpdate := func(c client.Client, obj client.Object, mutate func(client.Object)) error {
		o := fresh(obj)
		mutate(o)
		return c.Update(testCtx, o)
	}

	cases := []struct {
		name string
		do   func(c client.Client) error
		want map[string]outcome // by identity; identities left out are not tried
	}{
		// Approval and status.
		{"approve own request (status update)", func(c client.Client) error {
			return statusUpdate(c, crA, addCondition(cond(v1alpha1.ConditionApproved, metav1.ConditionTrue, "SelfApproved")))
		}, map[string]outcome{"tenant": forbidden, "consumer": forbidden}},
		{"approve own request (status patch)", func(c client.Client) error {
			return statusPatch(c, crA, addCondition(cond(v1alpha1.ConditionApproved, metav1.ConditionTrue, "SelfApproved")))
		}, map[string]outcome{"tenant": forbidden, "consumer": forbidden}},
		{"mark own action or grant Fulfilled", func(c client.Client) error {
			return statusPatch(c, crA, addCondition(cond(v1alpha1.ConditionFulfilled, metav1.ConditionTrue, "Done")))
		}, map[string]outcome{"tenant": forbidden, "consumer": forbidden}},
		{"write own request's phase and grant", func(c client.Client) error {
			return statusPatch(c, crA, func(o client.Object) {
				r := o.(*v1alpha1.ConsumptionRequest)
				r.Status.Phase = v1alpha1.RequestFulfilled
				r.Status.Grant = &v1alpha1.AccessGrant{Namespace: crB.Status.Grant.Namespace}
			})
		}, map[string]outcome{"tenant": forbidden, "consumer": forbidden}},
		{"clear own agreement's allocations (status)", func(c client.Client) error {
			return statusPatch(c, a.agreement, func(o client.Object) { o.(*v1alpha1.ServiceAgreement).Status.Allocations = nil })
		}, map[string]outcome{"tenant": forbidden, "consumer": forbidden}},
		{"write the offering's status", func(c client.Client) error {
			return statusPatch(c, a.offering, func(o client.Object) { o.(*v1alpha1.ServiceOffering).Status.Agreements = 42 })
		}, map[string]outcome{"tenant": forbidden, "consumer": forbidden}},

		// Terms: agreements and offerings.
		{"create an agreement in own namespace", func(c client.Client) error {
			return c.Create(testCtx, newAgreement(a.ns))
		}, map[string]outcome{"tenant": forbidden, "consumer": forbidden}},
		{"switch own agreement to automatic approval", func(c client.Client) error {
			return specUpdate(c, a.agreement, func(o client.Object) {
				o.(*v1alpha1.ServiceAgreement).Spec.ApprovalPolicy = v1alpha1.ApprovalAutomatic
			})
		}, map[string]outcome{"tenant": forbidden, "consumer": forbidden}},
		{"raise own entitlement", func(c client.Client) error {
			return specUpdate(c, a.agreement, func(o client.Object) {
				o.(*v1alpha1.ServiceAgreement).Spec.Entitlements.Resources[0].MaxGrants = ptr.To[int32](10000)
			})
		}, map[string]outcome{"tenant": forbidden, "consumer": forbidden}},
		{"add a subject to own agreement", func(c client.Client) error {
			return specUpdate(c, a.agreement, func(o client.Object) {
				s := &o.(*v1alpha1.ServiceAgreement).Spec.Consumer
				s.Subjects = append(s.Subjects, v1alpha1.Subject{Kind: v1alpha1.SubjectGroup, Name: "system:authenticated"})
			})
		}, map[string]outcome{"tenant": forbidden, "consumer": forbidden}},
		{"delete own agreement", func(c client.Client) error {
			return c.Delete(testCtx, fresh(a.agreement))
		}, map[string]outcome{"tenant": forbidden, "consumer": forbidden}},
		{"create an offering", func(c client.Client) error {
			off := a.offering.DeepCopy()
			off.ObjectMeta = metav1.ObjectMeta{Name: uniq("consumer-offering")}
			off.Status = v1alpha1.ServiceOfferingStatus{}
			return c.Create(testCtx, off)
		}, map[string]outcome{"tenant": forbidden, "consumer": forbidden}},
		{"add a ClusterRole to an offering", func(c client.Client) error {
			return specUpdate(c, a.offering, func(o client.Object) {
				r := &o.(*v1alpha1.ServiceOffering).Spec.Resources[0]
				r.ClusterRoles = append(r.ClusterRoles, "cluster-admin")
			})
		}, map[string]outcome{"tenant": forbidden, "consumer": forbidden}},
		{"delete an offering", func(c client.Client) error {
			return c.Delete(testCtx, fresh(a.offering))
		}, map[string]outcome{"tenant": forbidden, "consumer": forbidden}},

		// Own requests: the schema keeps them bound to their agreement and item.
		{"move own request to another agreement", func(c client.Client) error {
			return specUpdate(c, crA, func(o client.Object) { o.(*v1alpha1.ConsumptionRequest).Spec.Agreement = "other" })
		}, map[string]outcome{"tenant": invalid}},
		{"name an agreement in another namespace", func(c client.Client) error {
			return c.Create(testCtx, newRequest(a.ns, b.ns+"/agreement"))
		}, map[string]outcome{"tenant": invalid}},

		// Other tenants.
		{"list requests in another namespace", func(c client.Client) error {
			return c.List(testCtx, &v1alpha1.ConsumptionRequestList{}, client.InNamespace(b.ns))
		}, map[string]outcome{"tenant": forbidden, "consumer": allowed}},
		{"list requests in all namespaces", func(c client.Client) error {
			return c.List(testCtx, &v1alpha1.ConsumptionRequestList{})
		}, map[string]outcome{"tenant": forbidden, "consumer": allowed}},
		{"read another tenant's request", func(c client.Client) error {
			return c.Get(testCtx, client.ObjectKeyFromObject(crB), &v1alpha1.ConsumptionRequest{})
		}, map[string]outcome{"tenant": forbidden}},
		{"read another tenant's agreement", func(c client.Client) error {
			return c.Get(testCtx, client.ObjectKeyFromObject(b.agreement), &v1alpha1.ServiceAgreement{})
		}, map[string]outcome{"tenant": forbidden}},
		{"file a request under another tenant's agreement, in its namespace", func(c client.Client) error {
			return c.Create(testCtx, newRequest(b.ns, "agreement"))
		}, map[string]outcome{"tenant": forbidden}},
		{"delete another tenant's request", func(c client.Client) error {
			return c.Delete(testCtx, fresh(crB))
		}, map[string]outcome{"tenant": forbidden}},
		{"approve another tenant's request", func(c client.Client) error {
			return statusPatch(c, crB, addCondition(cond(v1alpha1.ConditionDenied, metav1.ConditionTrue, "Sabotage")))
		}, map[string]outcome{"tenant": forbidden, "consumer": forbidden}},

		// What the operator creates and reads.
		{"read a goods source in a provider namespace", func(c client.Client) error {
			return c.Get(testCtx, client.ObjectKey{Namespace: provider, Name: "source"}, &corev1.Secret{})
		}, map[string]outcome{"tenant": forbidden, "consumer": forbidden}},
		{"bind a role in own namespace", func(c client.Client) error {
			return c.Create(testCtx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: uniq("self"), Namespace: a.ns},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: a.role},
				Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "anyone"}}})
		}, map[string]outcome{"tenant": forbidden, "consumer": forbidden}},
		{"remove a RoleBinding from another tenant's granted namespace", func(c client.Client) error {
			return c.Delete(testCtx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: crB.Status.Grant.Namespace,
				Name: crB.Status.Grant.RoleBindings[0]}})
		}, map[string]outcome{"tenant": forbidden, "consumer": forbidden}},

		// Positive controls: the identities work where they should.
		{"list requests in own namespace", func(c client.Client) error {
			return c.List(testCtx, &v1alpha1.ConsumptionRequestList{}, client.InNamespace(a.ns))
		}, map[string]outcome{"tenant": allowed, "consumer": allowed}},
		{"read own agreement", func(c client.Client) error {
			return c.Get(testCtx, client.ObjectKeyFromObject(a.agreement), &v1alpha1.ServiceAgreement{})
		}, map[string]outcome{"tenant": allowed, "consumer": allowed}},
		{"file and withdraw a request in own namespace", func(c client.Client) error {
			cr := newRequest(a.ns, "agreement")
			if err := c.Create(testCtx, cr); err != nil {
				return err
			}
			return c.Delete(testCtx, cr)
		}, map[string]outcome{"tenant": allowed}},
	}
	for _, tc := range cases {
		for _, who := range []string{"tenant", "consumer"} {
			want, ok := tc.want[who]
			if !ok {
				continue
			}
			t.Run(who+"/"+tc.name, func(t *testing.T) {
				if got := outcomeOf(tc.do(clients[who])); got != want {
					t.Errorf("%s: %s, want %s", tc.name, got, want)
				}
			})
		}
	}

	// Whatever the consumer tried, A's request still waits for a provider and
	// B's grant is untouched.
	get(t, crA)
	if crA.Status.Phase != v1alpha1.RequestAwaitingApproval || crA.Status.Grant != nil {
		t.Errorf("request A: phase %s grant %+v", crA.Status.Phase, crA.Status.Grant)
	}
	waitCondition(t, crB, v1alpha1.ConditionReady, metav1.ConditionTrue)
}

// TestStatusInACreatedRequestIsIgnored: a consumer that creates a request with
// a status (Approved, Fulfilled, someone else's namespace as its grant) gets
// none of it: the status subresource drops status on create, and the operator
// starts from nothing (here: waiting for a provider's approval).
func TestStatusInACreatedRequestIsIgnored(t *testing.T) {
	a := newFixture(t, withManualApproval())
	victim := newFixture(t)
	granted := victim.resourceRequest("granted")
	mustCreate(t, granted)
	waitCondition(t, granted, v1alpha1.ConditionReady, metav1.ConditionTrue)

	_, tenant := tenantUser(t, a.ns)
	cr := a.resourceRequest("forged")
	now := metav1.Now()
	cr.Status = v1alpha1.ConsumptionRequestStatus{
		Phase:      v1alpha1.RequestFulfilled,
		AdmittedAt: &now, ApprovedAt: &now,
		Grant: &v1alpha1.AccessGrant{Namespace: granted.Status.Grant.Namespace, RoleBindings: granted.Status.Grant.RoleBindings},
		Conditions: []metav1.Condition{
			{Type: v1alpha1.ConditionApproved, Status: metav1.ConditionTrue, Reason: "Forged", Message: "m", LastTransitionTime: now},
			{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Forged", Message: "m", LastTransitionTime: now},
		},
	}
	if err := tenant.Create(testCtx, cr); err != nil {
		t.Fatalf("a consumer may create requests: %v", err)
	}
	waitPhase(t, cr, v1alpha1.RequestAwaitingApproval)
	for _, c := range cr.Status.Conditions {
		if c.Reason == "Forged" {
			t.Errorf("forged condition kept: %+v", c)
		}
	}
	if cr.Status.Grant != nil {
		t.Errorf("forged grant kept: %+v", cr.Status.Grant)
	}
	// The victim's namespace still binds the victim's subjects only.
	var rb rbacv1.RoleBinding
	if err := admin.Get(testCtx, client.ObjectKey{Namespace: granted.Status.Grant.Namespace, Name: granted.Status.Grant.RoleBindings[0]}, &rb); err != nil {
		t.Fatal(err)
	}
	for _, s := range rb.Subjects {
		if !strings.Contains(s.Name, victim.ns) && s.Name != "deployer" {
			t.Errorf("victim's RoleBinding binds %+v", s)
		}
	}
	// Deleting the forged request (after approval) never touches the victim's namespace.
	if err := tenant.Delete(testCtx, cr); err != nil {
		t.Fatal(err)
	}
	gone(t, cr)
	waitCondition(t, granted, v1alpha1.ConditionReady, metav1.ConditionTrue)
	if err := admin.Get(testCtx, client.ObjectKeyFromObject(&rb), &rbacv1.RoleBinding{}); err != nil {
		t.Errorf("victim's RoleBinding: %v", err)
	}
}

// TestRequesterIdentityIsNotCheckedAgainstSubjects documents how far the
// operator trusts a request: it cannot know who created it (Kubernetes tells a
// controller nothing about the author of an object), so it does not check the
// requester against the agreement's consumer subjects. Whoever may create
// requests in the agreement's namespace draws on its entitlements; the access
// granted always goes to the agreement's subjects, never to the requester.
// The namespace, through RBAC on consumptionrequests, is the tenant boundary.
func TestRequesterIdentityIsNotCheckedAgainstSubjects(t *testing.T) {
	a := newFixture(t)
	outsider, tenant := tenantUser(t, a.ns) // may create requests in a.ns, is not a subject of the agreement
	cr := a.resourceRequest("by-outsider")
	if err := tenant.Create(testCtx, cr); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionTrue)
	ns := cr.Status.Grant.Namespace
	if canI(t, outsider, "create", "", "pods", "", ns) {
		t.Errorf("the requester %s, not a subject of the agreement, got access to %s", outsider, ns)
	}
	if !canI(t, "dev-"+a.ns, "create", "", "pods", "", ns) {
		t.Errorf("the agreement's subject has no access to %s", ns)
	}
}

// TestDerivedNameCollisionNeverSharesANamespace: the derived namespace name
// carries a 24-bit hash, so a consumer can pick two request names that derive
// the same namespace (TestDerivedNamespaceCollisionsExist). The second request
// is refused with NamespaceConflict; the first keeps its namespace alone.
func TestDerivedNameCollisionNeverSharesANamespace(t *testing.T) {
	f := newFixture(t)
	n1, n2, ok := findDerivedNameCollision(f.ns)
	if !ok {
		t.Skip("no collision found for this namespace") // all but impossible: 2^15 names, 24 bits
	}
	first, second := f.resourceRequest(n1), f.resourceRequest(n2)
	mustCreate(t, first)
	waitCondition(t, first, v1alpha1.ConditionReady, metav1.ConditionTrue)
	mustCreate(t, second)
	waitPhase(t, second, v1alpha1.RequestFailed)
	c := waitCondition(t, second, v1alpha1.ConditionReady, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonNamespaceConflict {
		t.Errorf("second request: Ready %s %q, want NamespaceConflict", c.Reason, c.Message)
	}
	ns := first.Status.Grant.Namespace
	if ns != grantNamespaceName(second, nil) {
		t.Fatalf("not a collision: %s and %s", ns, grantNamespaceName(second, nil))
	}
	var rbs rbacv1.RoleBindingList
	if err := admin.List(testCtx, &rbs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, rb := range rbs.Items {
		if rb.Labels[v1alpha1.LabelRequestUID] != string(first.UID) {
			t.Errorf("RoleBinding %s in %s is not the first request's: %v", rb.Name, ns, rb.Labels)
		}
	}
	// Withdrawing the refused request leaves the first one's namespace alone.
	if err := admin.Delete(testCtx, second); err != nil {
		t.Fatal(err)
	}
	gone(t, second)
	waitCondition(t, first, v1alpha1.ConditionReady, metav1.ConditionTrue)
	var nsObj corev1.Namespace
	if err := admin.Get(testCtx, nsKey(ns), &nsObj); err != nil || !nsObj.DeletionTimestamp.IsZero() {
		t.Errorf("the first request's namespace: %v, deletion %v", err, nsObj.DeletionTimestamp)
	}
}

// TestNamespaceReachRefused: a request can only ever receive a namespace that
// the operator creates for it. Names that are reserved, or that exist already
// (another tenant's own or granted namespace, a provider namespace), are
// refused, and the namespace is left as it was.
func TestNamespaceReachRefused(t *testing.T) {
	victim := newFixture(t)
	granted := victim.resourceRequest("granted")
	mustCreate(t, granted)
	waitCondition(t, granted, v1alpha1.ConditionReady, metav1.ConditionTrue)
	attacker := newFixture(t, withAllowRequestedName())

	// Reserved names never reach the operator: the API server refuses them.
	for _, name := range []string{"default", "kube-system", "kube-public", "kube-node-lease", "openshift-config"} {
		t.Run("reserved/"+name, func(t *testing.T) {
			cr := attacker.resourceRequest(uniq("reserved"))
			cr.Spec.Resource.NamespaceName = v1alpha1.NamespaceName(name)
			if err := admin.Create(testCtx, cr); !apierrors.IsInvalid(err) {
				t.Errorf("request for namespace %s: %v, want Invalid", name, err)
			}
		})
	}

	// Names outside the consumer's space are denied at admission (see
	// TestRequestedNameSquattingRefused); an existing namespace inside it is
	// refused with NamespaceConflict and never adopted.
	inSpace := attacker.ns + "-planted"
	mustCreate(t, nsObj(inSpace))
	for _, tc := range []struct{ what, name string }{
		{"a namespace someone created in the consumer's space", inSpace},
	} {
		t.Run("existing/"+tc.what, func(t *testing.T) {
			var before corev1.Namespace
			if err := admin.Get(testCtx, nsKey(tc.name), &before); err != nil {
				t.Fatal(err)
			}
			cr := attacker.resourceRequest(uniq("take"))
			cr.Spec.Resource.NamespaceName = v1alpha1.NamespaceName(tc.name)
			mustCreate(t, cr)
			waitPhase(t, cr, v1alpha1.RequestFailed)
			c := waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionFalse)
			if c.Reason != v1alpha1.ReasonNamespaceConflict || !strings.Contains(c.Message, "never adopted") {
				t.Errorf("Ready %s %q, want NamespaceConflict", c.Reason, c.Message)
			}
			var rbs rbacv1.RoleBindingList
			if err := admin.List(testCtx, &rbs, client.InNamespace(tc.name), client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)}); err != nil {
				t.Fatal(err)
			}
			if len(rbs.Items) != 0 {
				t.Errorf("RoleBindings for the attacker in %s: %d", tc.name, len(rbs.Items))
			}
			var after corev1.Namespace
			if err := admin.Get(testCtx, nsKey(tc.name), &after); err != nil {
				t.Fatal(err)
			}
			if after.ResourceVersion != before.ResourceVersion {
				t.Errorf("namespace %s was changed: labels %v", tc.name, after.Labels)
			}
			// Withdrawing the refused request never deletes the namespace.
			if err := admin.Delete(testCtx, cr); err != nil {
				t.Fatal(err)
			}
			gone(t, cr)
			if err := admin.Get(testCtx, nsKey(tc.name), &after); err != nil || !after.DeletionTimestamp.IsZero() {
				t.Errorf("namespace %s after the request went: %v, deletion %v", tc.name, err, after.DeletionTimestamp)
			}
		})
	}

	// A request in another namespace naming the victim's agreement finds none.
	t.Run("agreement of another namespace", func(t *testing.T) {
		stray := &v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{Name: "stray", Namespace: attacker.ns},
			Spec: v1alpha1.ConsumptionRequestSpec{Agreement: "victims-agreement", Resource: &v1alpha1.ResourceRequest{Name: "space"}}}
		renamed := victim.agreement.DeepCopy()
		renamed.ObjectMeta = metav1.ObjectMeta{Name: "victims-agreement", Namespace: victim.ns}
		renamed.Status = v1alpha1.ServiceAgreementStatus{}
		mustCreate(t, renamed)
		waitCondition(t, renamed, v1alpha1.ConditionActive, metav1.ConditionTrue)
		mustCreate(t, stray)
		c := waitCondition(t, stray, v1alpha1.ConditionReady, metav1.ConditionFalse)
		if c.Reason != v1alpha1.ReasonAgreementNotFound || !strings.Contains(c.Message, "namespace "+attacker.ns) {
			t.Errorf("Ready %s %q, want AgreementNotFound in %s", c.Reason, c.Message, attacker.ns)
		}
		consistently(t, time.Second, "nothing granted or allocated", func() error {
			if ok, _ := exists(nsObj(grantNamespaceName(stray, nil))); ok {
				return fmt.Errorf("a namespace was created for the stray request")
			}
			get(t, renamed)
			if len(renamed.Status.Allocations) != 0 {
				return fmt.Errorf("the victim's agreement was drawn on: %+v", renamed.Status.Allocations)
			}
			var slots coordinationv1.LeaseList
			if err := admin.List(testCtx, &slots, client.InNamespace(renamed.Namespace), client.HasLabels{v1alpha1.LabelClaim}); err != nil || len(slots.Items) != 0 {
				return fmt.Errorf("the victim's agreement holds grants: %d %w", len(slots.Items), err)
			}
			return nil
		})
	})
}

// dangerousRole returns a grantable-labelled ClusterRole with one more rule.
func dangerousRole(name string, rule rbacv1.PolicyRule, aggregated bool) *rbacv1.ClusterRole {
	r := grantableRole(name)
	r.Rules = append(r.Rules, rule)
	if aggregated {
		r.AggregationRule = &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"never": "matches"}}}}
	}
	return r
}

// TestEscalationRefused: an offering is not Ready (ClusterRoleForbidden), and
// nothing is ever bound, for every role that would let a consumer escalate,
// unless a cluster admin names it in --allowed-cluster-roles.
// TestOfferingValidatesClusterRoles covers cluster-admin, escalate, an
// unlabelled and an allowed role; this covers the rest, including the
// built-in aggregated roles.
func TestEscalationRefused(t *testing.T) {
	requireAPIServer(t)
	rule := func(group, resource string, verbs ...string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{resource}, Verbs: verbs}
	}
	cases := []struct {
		name string
		role *rbacv1.ClusterRole // nil: a built-in role of that name
		msg  string
	}{
		{"bind", dangerousRole(uniq("bind"), rule("rbac.authorization.k8s.io", "clusterroles", "bind"), false), `holds the verb "bind"`},
		{"impersonate", dangerousRole(uniq("impersonate"), rule("", "serviceaccounts", "impersonate"), false), `holds the verb "impersonate"`},
		{"wildcard verb", dangerousRole(uniq("wildverb"), rule("", "secrets", "*"), false), `holds the verb "*"`},
		{"wildcard resource", dangerousRole(uniq("wildres"), rule("", "*", "get"), false), `wildcard resource "*"`},
		{"wildcard subresource", dangerousRole(uniq("wildsub"), rule("", "*/exec", "create"), false), `wildcard resource "*/exec"`},
		{"aggregated", dangerousRole(uniq("aggregated"), rule("", "pods", "get"), true), "is aggregated"},
		// The consumer could bind its own subjects and keep access after revocation.
		{"writes RoleBindings", dangerousRole(uniq("rbwriter"), rule("rbac.authorization.k8s.io", "rolebindings", "get", "create"), false),
			"may create RoleBindings"},
		{"built-in admin", nil, "not grantable"},
		{"built-in edit", nil, "not grantable"},
		{"built-in cluster-admin", nil, "cluster-admin is never granted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			roleName := strings.TrimPrefix(tc.name, "built-in ")
			if tc.role != nil {
				mustCreate(t, tc.role)
				roleName = tc.role.Name
			}
			off := offeringWithRole(roleName)
			mustCreate(t, off)
			c := waitCondition(t, off, v1alpha1.ConditionReady, metav1.ConditionFalse)
			if c.Reason != v1alpha1.ReasonClusterRoleForbidden || !strings.Contains(c.Message, tc.msg) {
				t.Errorf("Ready %s %q, want ClusterRoleForbidden containing %q", c.Reason, c.Message, tc.msg)
			}
			var rbs rbacv1.RoleBindingList
			if err := admin.List(testCtx, &rbs, client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}); err != nil {
				t.Fatal(err)
			}
			for _, rb := range rbs.Items {
				if rb.RoleRef.Name == roleName {
					t.Errorf("RoleBinding %s/%s binds %s", rb.Namespace, rb.Name, roleName)
				}
			}
		})
	}
}

// TestRoleTurnedDangerousIsUnbound: a role that was grantable when access was
// granted, and is then given an escalating verb, makes the offering not Ready;
// its agreements go Pending and the access is revoked (the namespace stays);
// when the role is fixed, access comes back.
func TestRoleTurnedDangerousIsUnbound(t *testing.T) {
	f := newFixture(t)
	cr := f.grantedRequest("before")
	ns, rbName := cr.Status.Grant.Namespace, cr.Status.Grant.RoleBindings[0]

	setRules := func(rules []rbacv1.PolicyRule) {
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: f.role}}
		get(t, role)
		role.Rules = rules
		if err := admin.Update(testCtx, role); err != nil {
			t.Fatal(err)
		}
	}
	safe := grantableRole(f.role).Rules
	setRules(append(append([]rbacv1.PolicyRule{}, safe...),
		rbacv1.PolicyRule{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"roles"}, Verbs: []string{"escalate"}}))
	c := waitCondition(t, f.offering, v1alpha1.ConditionReady, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonClusterRoleForbidden {
		t.Errorf("offering Ready %s %q", c.Reason, c.Message)
	}
	waitPhase(t, cr, v1alpha1.RequestRevoked)
	gone(t, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rbName}})
	if canI(t, "dev-"+f.ns, "create", "", "pods", "", ns) {
		t.Error("access remains after the role turned dangerous")
	}
	// A new request waits; nothing is bound for it.
	late := f.resourceRequest("while-dangerous")
	mustCreate(t, late)
	c = waitCondition(t, late, v1alpha1.ConditionReady, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonAgreementNotActive {
		t.Errorf("new request: Ready %s %q, want AgreementNotActive", c.Reason, c.Message)
	}

	setRules(safe)
	waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionTrue)
	waitCondition(t, late, v1alpha1.ConditionReady, metav1.ConditionTrue)
}

// operatorRules reads the operator's generated ClusterRole (config/rbac/role.yaml).
func operatorRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(data, &role); err != nil {
		t.Fatal(err)
	}
	if role.Name != "offering-operator-manager" || len(role.Rules) == 0 {
		t.Fatalf("unexpected role.yaml: %s with %d rules", role.Name, len(role.Rules))
	}
	return role.Rules
}

// TestOperatorRBACCannotEscalate reads the operator's generated ClusterRole:
// no wildcard, no ClusterRoleBinding or Role at all, no write to ClusterRoles,
// no escalate or impersonate, and bind only on ClusterRoles (so that it can
// bind them in RoleBindings without holding their permissions).
func TestOperatorRBACCannotEscalate(t *testing.T) {
	for _, r := range operatorRules(t) {
		for _, list := range [][]string{r.APIGroups, r.Resources, r.Verbs} {
			for _, v := range list {
				if v == "*" || strings.HasPrefix(v, "*/") {
					t.Errorf("wildcard in rule %+v", r)
				}
			}
		}
		if len(r.NonResourceURLs) > 0 {
			t.Errorf("non-resource rule %+v", r)
		}
		for _, res := range r.Resources {
			for _, v := range r.Verbs {
				isRBAC := len(r.APIGroups) == 1 && r.APIGroups[0] == rbacv1.GroupName
				switch {
				case v == "escalate" || v == "impersonate":
					t.Errorf("verb %s on %s", v, res)
				case isRBAC && (res == "clusterrolebindings" || res == "roles"):
					t.Errorf("the operator may %s %s", v, res)
				case isRBAC && res == "clusterroles" && v != "get" && v != "list" && v != "watch" && v != "bind":
					t.Errorf("the operator may %s clusterroles", v)
				case v == "bind" && (!isRBAC || res != "clusterroles"):
					t.Errorf("bind on %v/%s", r.APIGroups, res)
				}
			}
		}
	}
}

// TestOperatorIdentityCannotEscalate asks the API server what the operator's
// identity (bound to the generated ClusterRole, as in a deployment) may do:
// never create a ClusterRoleBinding, a Role or a ClusterRole, escalate,
// impersonate, run Pods directly, exec into them or mint tokens. A bug in the
// operator could not do more than this. After all the grants of this suite,
// no ClusterRoleBinding carries the operator's label.
func TestOperatorIdentityCannotEscalate(t *testing.T) {
	requireAPIServer(t)
	const rbac = rbacv1.GroupName
	cases := []struct {
		verb, group, resource, sub, ns string
		want                           bool
	}{
		{"create", rbac, "clusterrolebindings", "", "", false},
		{"update", rbac, "clusterrolebindings", "", "", false},
		{"create", rbac, "clusterroles", "", "", false},
		{"update", rbac, "clusterroles", "", "", false},
		{"escalate", rbac, "clusterroles", "", "", false},
		{"create", rbac, "roles", "", "team", false},
		{"escalate", rbac, "roles", "", "team", false},
		{"impersonate", "", "users", "", "", false},
		{"impersonate", "", "serviceaccounts", "", "team", false},
		{"create", "", "pods", "", "team", false},
		{"create", "", "pods", "exec", "team", false},
		{"create", "", "serviceaccounts", "token", "team", false},
		{"update", "", "nodes", "", "", false},
		{"create", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "", false},
		{"update", "apiextensions.k8s.io", "customresourcedefinitions", "", "", false},
		// What it needs, so that the refusals above are not a broken identity.
		{"create", rbac, "rolebindings", "", "team", true},
		{"bind", rbac, "clusterroles", "", "", true},
		{"create", "", "namespaces", "", "", true},
		{"create", "authorization.k8s.io", "subjectaccessreviews", "", "", true},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%s %s/%s", tc.verb, tc.resource, tc.sub)
		t.Run(name, func(t *testing.T) {
			if got := canI(t, operatorUser, tc.verb, tc.group, tc.resource, tc.sub, tc.ns); got != tc.want {
				t.Errorf("operator may %s: %v, want %v", name, got, tc.want)
			}
		})
	}
	var crbs rbacv1.ClusterRoleBindingList
	if err := admin.List(testCtx, &crbs, client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}); err != nil {
		t.Fatal(err)
	}
	if len(crbs.Items) != 0 {
		t.Errorf("ClusterRoleBindings created by the operator: %d", len(crbs.Items))
	}
}

// TestGoodsSourcesStayInTheProviderNamespace: a goods source names a kind and
// a name, nothing else: a namespace written into it is dropped by the API
// server (structural schema pruning), so a source is only ever read from the
// offering's provider namespace. A ServiceAccount token Secret there is never
// copied. (TestGoodsOnlyIntoTheRequestsNamespace holds the other direction:
// copies only go into the request's own namespace.)
func TestGoodsSourcesStayInTheProviderNamespace(t *testing.T) {
	requireAPIServer(t)
	t.Run("namespace in a source is pruned", func(t *testing.T) {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1alpha1.GroupVersion.String(), "kind": "ServiceOffering",
			"metadata": map[string]any{"name": uniq("pruned-source")},
			"spec": map[string]any{
				"provider": map[string]any{"name": "P"}, "providerNamespace": "default",
				"goods": []any{map[string]any{"name": "kit", "sources": []any{
					map[string]any{"kind": "Secret", "name": "kube-root-ca", "namespace": "kube-system"},
				}}},
			},
		}}
		if err := admin.Create(testCtx, u); err != nil {
			t.Fatal(err)
		}
		stored := &unstructured.Unstructured{}
		stored.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("ServiceOffering"))
		if err := admin.Get(testCtx, client.ObjectKey{Name: u.GetName()}, stored); err != nil {
			t.Fatal(err)
		}
		goods, _, _ := unstructured.NestedSlice(stored.Object, "spec", "goods")
		src := goods[0].(map[string]any)["sources"].([]any)[0].(map[string]any)
		if _, ok := src["namespace"]; ok || len(src) != 2 {
			t.Errorf("stored source %v, want kind and name only", src)
		}
	})

	t.Run("ServiceAccount token refused", func(t *testing.T) {
		w := newGoodsWorld(t, nil)
		token := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: w.secretName + "-token", Namespace: w.provider,
			Annotations: map[string]string{corev1.ServiceAccountNameKey: "default"}},
			Type: corev1.SecretTypeServiceAccountToken, Data: map[string][]byte{"token": []byte(w.secretValue)}}
		mustCreate(t, token)
		get(t, w.offering)
		patch := client.MergeFrom(w.offering.DeepCopy())
		w.offering.Spec.Goods[0].Sources = []v1alpha1.GoodsSource{{Kind: v1alpha1.GoodsSourceSecret, Name: v1alpha1.ObjectName(token.Name)}}
		if err := admin.Patch(testCtx, w.offering, patch); err != nil {
			t.Fatal(err)
		}
		waitCondition(t, w.offering, v1alpha1.ConditionReady, metav1.ConditionTrue)
		cr := w.goodsRequest("token", 1)
		mustCreate(t, cr)
		eventually(t, 20*time.Second, "SourceNotAllowed", func() error {
			get(t, cr)
			for _, c := range cr.Status.Conditions {
				if c.Reason == v1alpha1.ReasonSourceNotAllowed {
					return nil
				}
			}
			return fmt.Errorf("conditions %+v", cr.Status.Conditions)
		})
		var secrets corev1.SecretList
		if err := admin.List(testCtx, &secrets, client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)}); err != nil {
			t.Fatal(err)
		}
		if len(secrets.Items) != 0 {
			t.Errorf("the token was copied: %d copies", len(secrets.Items))
		}
	})
}

// TestRequestedNameSquattingRefused: a consumer (the shipped consumer role, in
// its own namespace only) under an offering that lets requests choose the
// namespace name asks for names outside its space: another tenant's granted
// or own namespace, the namespace of a tenant onboarded later, a provider
// namespace still to be created. Each request is Denied
// (RequestedNameNotAllowed) and no namespace is created; a name in its space
// is granted. A namespace the operator granted never serves as a provider
// namespace: an offering naming it is not Ready.
func TestRequestedNameSquattingRefused(t *testing.T) {
	victim := newFixture(t)
	granted := victim.grantedRequest("granted")
	attacker := newFixture(t, withAllowRequestedName())
	_, consumer := tenantUser(t, attacker.ns)
	for _, tc := range []struct{ what, name string }{
		{"another tenant's granted namespace", granted.Status.Grant.Namespace},
		{"another tenant's own namespace", victim.ns},
		{"a tenant's future namespace", uniq("team-onboarded-later")},
		{"a provider's future namespace", uniq("provider")},
		{"the bare prefix's neighbour", attacker.ns + "x"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			cr := attacker.resourceRequest(uniq("squat"))
			cr.Spec.Resource.NamespaceName = v1alpha1.NamespaceName(tc.name)
			if err := consumer.Create(testCtx, cr); err != nil {
				t.Fatal(err)
			}
			c := waitCondition(t, cr, v1alpha1.ConditionDenied, metav1.ConditionTrue)
			if c.Reason != v1alpha1.ReasonRequestedNameNotAllowed || !strings.Contains(c.Message, `must start with "`+attacker.ns+`-"`) {
				t.Errorf("Denied %s %q, want %s naming the prefix", c.Reason, c.Message, v1alpha1.ReasonRequestedNameNotAllowed)
			}
			get(t, cr)
			if cr.Status.Grant != nil {
				t.Errorf("grant %+v", cr.Status.Grant)
			}
		})
	}
	future := &corev1.Namespace{}
	if err := admin.Get(testCtx, nsKey(uniq("team-onboarded-later")), future); !apierrors.IsNotFound(err) {
		t.Errorf("a future namespace exists: %v", err)
	}

	mine := attacker.resourceRequest("mine")
	mine.Spec.Resource.NamespaceName = v1alpha1.NamespaceName(attacker.ns + "-mine")
	if err := consumer.Create(testCtx, mine); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, mine, v1alpha1.ConditionReady, metav1.ConditionTrue)
	if mine.Status.Grant.Namespace != attacker.ns+"-mine" {
		t.Errorf("granted %s, want %s-mine", mine.Status.Grant.Namespace, attacker.ns)
	}

	// The granted namespace, even marked by mistake, never serves as a provider namespace.
	ns := nsObj(mine.Status.Grant.Namespace)
	get(t, ns)
	patch := client.MergeFrom(ns.DeepCopy())
	ns.Labels[v1alpha1.LabelProviderNamespace] = "true"
	if err := admin.Patch(testCtx, ns, patch); err != nil {
		t.Fatal(err)
	}
	off := &v1alpha1.ServiceOffering{ObjectMeta: metav1.ObjectMeta{Name: uniq("from-granted")},
		Spec: v1alpha1.ServiceOfferingSpec{Provider: v1alpha1.Provider{Name: "Test"}, ProviderNamespace: v1alpha1.NamespaceName(ns.Name),
			Goods: []v1alpha1.GoodsItem{{Name: "kit", Acceptance: v1alpha1.AcceptanceImplicit,
				Sources: []v1alpha1.GoodsSource{{Kind: v1alpha1.GoodsSourceSecret, Name: "anything"}}}}}}
	if err := userClient(t, providerUser).Create(testCtx, off); err != nil {
		t.Fatal(err)
	}
	c := waitCondition(t, off, v1alpha1.ConditionReady, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonProviderNamespaceForbidden || !strings.Contains(c.Message, "was granted to a consumer") {
		t.Errorf("Ready %s %q, want %s: a granted namespace", c.Reason, c.Message, v1alpha1.ReasonProviderNamespaceForbidden)
	}
}

// TestRequestedNamePrefixOfTheOffering: an offering declares a prefix for
// requested namespace names. A consumer (the shipped consumer role, in its
// own namespace only) can no longer claim a name that merely extends its
// namespace with "-", the name a tenant onboarded later may get (team-a for
// a consumer in team): that request is Denied and nothing is created. A name
// in the offering's space, the prefix then the consumer's namespace, is
// granted.
func TestRequestedNamePrefixOfTheOffering(t *testing.T) {
	f := newFixture(t, withAllowRequestedName(), func(f *fixture) { f.offering.Spec.Resources[0].Namespace.RequestedNamePrefix = "sbx-" })
	_, consumer := tenantUser(t, f.ns)
	space := "sbx-" + f.ns + "-"

	squat := f.resourceRequest("squat")
	squat.Spec.Resource.NamespaceName = v1alpha1.NamespaceName(f.ns + "-a")
	if err := consumer.Create(testCtx, squat); err != nil {
		t.Fatal(err)
	}
	c := waitCondition(t, squat, v1alpha1.ConditionDenied, metav1.ConditionTrue)
	if c.Reason != v1alpha1.ReasonRequestedNameNotAllowed || !strings.Contains(c.Message, `must start with "`+space+`" (for example `+space+`a)`) {
		t.Errorf("Denied %s %q, want %s naming %q", c.Reason, c.Message, v1alpha1.ReasonRequestedNameNotAllowed, space)
	}
	if err := admin.Get(testCtx, nsKey(f.ns+"-a"), &corev1.Namespace{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s-a: %v, want it not created", f.ns, err)
	}

	mine := f.resourceRequest("mine")
	mine.Spec.Resource.NamespaceName = v1alpha1.NamespaceName(space + "mine")
	if err := consumer.Create(testCtx, mine); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, mine, v1alpha1.ConditionReady, metav1.ConditionTrue)
	if mine.Status.Grant.Namespace != space+"mine" {
		t.Errorf("granted %s, want %smine", mine.Status.Grant.Namespace, space)
	}
}
