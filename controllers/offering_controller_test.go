package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

func offeringWithRole(role string) *v1alpha1.ServiceOffering {
	return &v1alpha1.ServiceOffering{
		ObjectMeta: metav1.ObjectMeta{Name: uniq("validated")},
		Spec: v1alpha1.ServiceOfferingSpec{
			Provider:          v1alpha1.Provider{Name: "P"},
			ProviderNamespace: "default",
			Resources:         []v1alpha1.ResourceItem{{Name: "space", ClusterRoles: []v1alpha1.ClusterRoleName{v1alpha1.ClusterRoleName(role)}}},
		},
	}
}

func TestOfferingValidatesClusterRoles(t *testing.T) {
	escalating := grantableRole(uniq("escalating"))
	escalating.Rules = append(escalating.Rules, rbacv1.PolicyRule{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"clusterroles"}, Verbs: []string{"escalate"}})
	mustCreate(t, escalating)
	unlabelled := grantableRole(uniq("unlabelled"))
	unlabelled.Labels = nil
	mustCreate(t, unlabelled)
	allowed := grantableRole(allowedPowerfulRole)
	allowed.Labels = nil
	allowed.Rules = append(allowed.Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"impersonate"}})
	mustCreate(t, allowed)

	cases := []struct {
		role, reason, msg string
	}{
		{"cluster-admin", v1alpha1.ReasonClusterRoleForbidden, "cluster-admin is never granted"},
		{escalating.Name, v1alpha1.ReasonClusterRoleForbidden, `holds the verb "escalate"`},
		{unlabelled.Name, v1alpha1.ReasonClusterRoleForbidden, "not grantable"},
		{"does-not-exist", v1alpha1.ReasonClusterRoleNotFound, "ClusterRole does-not-exist does not exist"},
		{allowedPowerfulRole, v1alpha1.ReasonValid, ""},
	}
	for _, tc := range cases {
		t.Run(tc.role, func(t *testing.T) {
			off := offeringWithRole(tc.role)
			mustCreate(t, off)
			want := metav1.ConditionFalse
			if tc.reason == v1alpha1.ReasonValid {
				want = metav1.ConditionTrue
			}
			c := waitCondition(t, off, v1alpha1.ConditionReady, want)
			if c.Reason != tc.reason || !strings.Contains(c.Message, tc.msg) {
				t.Errorf("Ready %s %q, want %s containing %q", c.Reason, c.Message, tc.reason, tc.msg)
			}
			// Not Ready needs a person: Stalled carries the same reason (kstatus reads Failed).
			stalled := meta.FindStatusCondition(off.Status.Conditions, v1alpha1.ConditionStalled)
			if want == metav1.ConditionFalse && (stalled == nil || stalled.Status != metav1.ConditionTrue || stalled.Reason != tc.reason) {
				t.Errorf("Stalled = %+v, want True with reason %s", stalled, tc.reason)
			}
			if want == metav1.ConditionTrue && stalled != nil {
				t.Errorf("a Ready offering is Stalled: %+v", stalled)
			}
		})
	}

	// A missing role that appears later makes the offering Ready (watch, not polling).
	name := uniq("late-role")
	off := offeringWithRole(name)
	mustCreate(t, off)
	waitCondition(t, off, v1alpha1.ConditionReady, metav1.ConditionFalse)
	waitCondition(t, off, v1alpha1.ConditionStalled, metav1.ConditionTrue)
	mustCreate(t, grantableRole(name))
	waitCondition(t, off, v1alpha1.ConditionReady, metav1.ConditionTrue)
	if c := meta.FindStatusCondition(off.Status.Conditions, v1alpha1.ConditionStalled); c != nil {
		t.Errorf("Stalled stays after the fix: %+v", c)
	}
}

func TestOfferingRollsUpAgreementsAndRequests(t *testing.T) {
	f := newFixture(t, withManualApproval())
	mustCreate(t, f.resourceRequest("open-1"))
	mustCreate(t, f.resourceRequest("open-2"))
	eventually(t, 15*time.Second, "offering roll-up", func() error {
		get(t, f.offering)
		s := f.offering.Status
		if s.Agreements != 1 || s.ActiveConsumers != 1 || s.OpenRequests != 2 {
			return fmt.Errorf("roll-up %+v", s)
		}
		return nil
	})
}

func TestAgreementPendingWithoutOffering(t *testing.T) {
	ns := uniq("early")
	mustCreate(t, nsObj(ns))
	agr := makeAgreement("early", ns, "not-there-yet").group("g").resourceEntitlement("space").approval("").obj()
	mustCreate(t, agr)
	c := waitCondition(t, agr, v1alpha1.ConditionActive, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonOfferingNotFound || agr.Status.Phase != v1alpha1.AgreementPending {
		t.Errorf("active %s phase %s", c.Reason, agr.Status.Phase)
	}
}

// TestOperatorNamespaceIsNeverAProviderNamespace: goods would be read from,
// and action Jobs run with the ServiceAccounts of, the namespace that holds
// the operator's credentials. System namespaces are refused at admission.
func TestOperatorNamespaceIsNeverAProviderNamespace(t *testing.T) {
	requireAPIServer(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}
	if err := admin.Create(testCtx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	off := &v1alpha1.ServiceOffering{
		ObjectMeta: metav1.ObjectMeta{Name: uniq("own-namespace")},
		Spec: v1alpha1.ServiceOfferingSpec{
			Provider: v1alpha1.Provider{Name: "Test"}, ProviderNamespace: operatorNamespace,
			Actions: []v1alpha1.ActionItem{{Name: "support", Type: v1alpha1.ActionManual}},
		},
	}
	mustCreate(t, off)
	c := waitCondition(t, off, v1alpha1.ConditionReady, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonProviderNamespaceForbidden || !strings.Contains(c.Message, "operator's own") {
		t.Fatalf("Ready %s %q, want %s", c.Reason, c.Message, v1alpha1.ReasonProviderNamespaceForbidden)
	}
	waitCondition(t, off, v1alpha1.ConditionStalled, metav1.ConditionTrue)

	system := off.DeepCopy()
	system.ObjectMeta = metav1.ObjectMeta{Name: uniq("system-namespace")}
	system.Spec.ProviderNamespace = "kube-system"
	if err := admin.Create(testCtx, system); err == nil || !strings.Contains(err.Error(), "must not be a system namespace") {
		t.Fatalf("an offering in kube-system: got %v, want a rejection", err)
	}
}

// TestProviderNamespacesFlagRestrictsOfferings: the test manager runs with
// --provider-namespaces=default,colo-provider,provider-* (providerNamespaces).
// An offering with goods or actions whose provider namespace is outside the
// list is not Ready (ProviderNamespaceForbidden, Stalled), and the message
// names the namespace, the list and the flag; its agreement stays Pending and
// a goods request under it gets nothing. Offerings in "default" (an exact
// entry) and in a provider-N namespace (the pattern) are Ready. An offering
// with only resources does not use its provider namespace and is not checked.
func TestProviderNamespacesFlagRestrictsOfferings(t *testing.T) {
	requireAPIServer(t)
	outside := uniq("outside")
	mustCreate(t, nsObj(outside))
	secretValue := uniq("outside-secret-never-copied")
	mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "device-credentials", Namespace: outside},
		Data: map[string][]byte{"password": []byte(secretValue)}})
	offering := func(prefix, ns string) *v1alpha1.ServiceOffering {
		return &v1alpha1.ServiceOffering{
			ObjectMeta: metav1.ObjectMeta{Name: uniq(prefix)},
			Spec: v1alpha1.ServiceOfferingSpec{
				Provider: v1alpha1.Provider{Name: "Test"}, ProviderNamespace: v1alpha1.NamespaceName(ns),
				Goods: []v1alpha1.GoodsItem{{Name: "kit", Acceptance: v1alpha1.AcceptanceImplicit,
					Sources: []v1alpha1.GoodsSource{{Kind: v1alpha1.GoodsSourceSecret, Name: "device-credentials"}}}},
				Actions: []v1alpha1.ActionItem{{Name: "support", Type: v1alpha1.ActionManual}},
			},
		}
	}

	refused := offering("outside-list", outside)
	mustCreate(t, refused)
	c := waitCondition(t, refused, v1alpha1.ConditionReady, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonProviderNamespaceForbidden {
		t.Errorf("Ready reason %s (%s), want %s", c.Reason, c.Message, v1alpha1.ReasonProviderNamespaceForbidden)
	}
	for _, want := range []string{"provider namespace " + outside + " ", "--provider-namespaces", "(" + strings.Join(providerNamespaces, ", ") + ")",
		"kubectl label namespace " + outside + " " + v1alpha1.LabelProviderNamespace + "=true"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("Ready message %q does not contain %q", c.Message, want)
		}
	}
	if st := waitCondition(t, refused, v1alpha1.ConditionStalled, metav1.ConditionTrue); st.Reason != v1alpha1.ReasonProviderNamespaceForbidden {
		t.Errorf("Stalled reason %s, want %s", st.Reason, v1alpha1.ReasonProviderNamespaceForbidden)
	}

	// Its agreement waits, and a goods request under it gets no copy of the source.
	consumer := uniq("consumer")
	mustCreate(t, nsObj(consumer))
	agr := makeAgreement("agreement", consumer, refused.Name).group("g").goodsEntitlement("kit").obj()
	mustCreate(t, agr)
	if a := waitCondition(t, agr, v1alpha1.ConditionActive, metav1.ConditionFalse); a.Reason != v1alpha1.ReasonOfferingNotReady ||
		!strings.Contains(a.Message, "--provider-namespaces") {
		t.Errorf("agreement Active %s %q, want OfferingNotReady carrying the offering's message", a.Reason, a.Message)
	}
	cr := &v1alpha1.ConsumptionRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "kit", Namespace: consumer},
		Spec:       v1alpha1.ConsumptionRequestSpec{Agreement: "agreement", Goods: &v1alpha1.GoodsRequest{Name: "kit", Quantity: 1}},
	}
	mustCreate(t, cr)
	if r := waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionFalse); r.Reason != v1alpha1.ReasonAgreementNotActive ||
		cr.Status.Phase != v1alpha1.RequestPending {
		t.Errorf("request Ready %s, phase %s; want AgreementNotActive, Pending", r.Reason, cr.Status.Phase)
	}
	var secrets corev1.SecretList
	if err := admin.List(testCtx, &secrets, client.InNamespace(consumer)); err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		if string(s.Data["password"]) == secretValue {
			t.Errorf("the source in %s was copied to %s/%s", outside, consumer, s.Name)
		}
	}
	if len(cr.Status.Delivered) != 0 || cr.Status.TransferredAt != nil {
		t.Errorf("delivered %v, transferredAt %v; want nothing", cr.Status.Delivered, cr.Status.TransferredAt)
	}

	// Inside the list: a provider-N namespace (the pattern) and "default" (an exact entry).
	inside := uniq("provider")
	mustCreate(t, nsObj(inside))
	mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "device-credentials", Namespace: inside},
		Data: map[string][]byte{"password": []byte("inside")}})
	exact := offering("inside-exact", "default")
	exact.Spec.Goods = nil // no source in default: the manual action alone uses the provider namespace
	for _, off := range []*v1alpha1.ServiceOffering{offering("inside-pattern", inside), exact} {
		mustCreate(t, off)
		if c := waitCondition(t, off, v1alpha1.ConditionReady, metav1.ConditionTrue); c.Reason != v1alpha1.ReasonValid {
			t.Errorf("%s in %s: Ready reason %s, want %s", off.Name, off.Spec.ProviderNamespace, c.Reason, v1alpha1.ReasonValid)
		}
	}

	// Resources only: the provider namespace is not used, so not checked.
	role := grantableRole(uniq("outside-role"))
	mustCreate(t, role)
	resourcesOnly := offeringWithRole(role.Name)
	resourcesOnly.Spec.ProviderNamespace = v1alpha1.NamespaceName(outside)
	mustCreate(t, resourcesOnly)
	waitCondition(t, resourcesOnly, v1alpha1.ConditionReady, metav1.ConditionTrue)
}

// TestProviderNamespaceClosedByDefault: a provider (the shipped provider role)
// cannot make the operator read goods from, or run action Jobs in, a
// namespace a cluster admin has not marked, nor run an action's Job as a
// ServiceAccount the admin has not allowed (here one bound to cluster-admin,
// in a namespace the admin did mark). Each offering is not Ready with a reason
// and a message saying what the admin does; once the admin labels the
// namespace and annotates the ServiceAccount, the offering is Ready.
func TestProviderNamespaceClosedByDefault(t *testing.T) {
	t.Parallel() // waits for the offering's recheck (see parallel tests in suite_test.go)
	requireAPIServer(t)
	provider := userClient(t, providerUser)
	unmarked := uniq("unmarked")
	mustCreate(t, nsObj(unmarked))
	mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "device-credentials", Namespace: unmarked},
		Data: map[string][]byte{"password": []byte("s3cr3t")}})
	goods := &v1alpha1.ServiceOffering{ObjectMeta: metav1.ObjectMeta{Name: uniq("unmarked-goods")},
		Spec: v1alpha1.ServiceOfferingSpec{Provider: v1alpha1.Provider{Name: "Test"}, ProviderNamespace: v1alpha1.NamespaceName(unmarked),
			Goods: []v1alpha1.GoodsItem{{Name: "kit", Acceptance: v1alpha1.AcceptanceImplicit,
				Sources: []v1alpha1.GoodsSource{{Kind: v1alpha1.GoodsSourceSecret, Name: "device-credentials"}}}}}}
	if err := provider.Create(testCtx, goods); err != nil {
		t.Fatal(err)
	}
	c := waitCondition(t, goods, v1alpha1.ConditionReady, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonProviderNamespaceForbidden || !strings.Contains(c.Message, "kubectl label namespace "+unmarked) {
		t.Errorf("Ready %s %q, want %s saying how to mark the namespace", c.Reason, c.Message, v1alpha1.ReasonProviderNamespaceForbidden)
	}

	// A marked namespace, whose ServiceAccount root is bound to cluster-admin.
	marked := uniq("marked")
	mustCreate(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: marked, Labels: map[string]string{v1alpha1.LabelProviderNamespace: "true"}}})
	mustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "root", Namespace: marked}})
	mustCreate(t, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: marked + "-root"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "root", Namespace: marked}}})
	action := &v1alpha1.ServiceOffering{ObjectMeta: metav1.ObjectMeta{Name: uniq("root-action")},
		Spec: v1alpha1.ServiceOfferingSpec{Provider: v1alpha1.Provider{Name: "Test"}, ProviderNamespace: v1alpha1.NamespaceName(marked),
			Actions: []v1alpha1.ActionItem{{Name: "install", Type: v1alpha1.ActionAutomated,
				Job: &v1alpha1.ActionJob{Image: "busybox:1.36", Command: []string{"sh", "-c", "kubectl get secrets -A"}, ServiceAccountName: "root"}}}}}
	if err := provider.Create(testCtx, action); err != nil {
		t.Fatal(err)
	}
	c = waitCondition(t, action, v1alpha1.ConditionReady, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonActionServiceAccountForbidden || !strings.Contains(c.Message, "ServiceAccount "+marked+"/root") {
		t.Errorf("Ready %s %q, want %s naming the ServiceAccount", c.Reason, c.Message, v1alpha1.ReasonActionServiceAccountForbidden)
	}
	// The provider role cannot mark a namespace itself.
	for _, name := range []string{unmarked, marked} {
		ns := nsObj(name)
		patch := client.MergeFrom(ns.DeepCopy())
		ns.Labels = map[string]string{v1alpha1.LabelProviderNamespace: "true"}
		if err := provider.Patch(testCtx, ns, patch); !apierrors.IsForbidden(err) {
			t.Errorf("the provider labelling namespace %s: %v, want Forbidden", name, err)
		}
	}

	// The cluster admin marks the namespace and allows the ServiceAccount.
	for name, ann := range map[string]map[string]string{unmarked: nil, marked: {v1alpha1.AnnotationActionServiceAccounts: "root"}} {
		ns := nsObj(name)
		get(t, ns)
		patch := client.MergeFrom(ns.DeepCopy())
		ns.Labels[v1alpha1.LabelProviderNamespace] = "true"
		ns.Annotations = ann
		if err := admin.Patch(testCtx, ns, patch); err != nil {
			t.Fatal(err)
		}
	}
	for _, off := range []*v1alpha1.ServiceOffering{goods, action} {
		eventually(t, 2*sourceRecheckInterval, off.Name+" Ready once the cluster admin marked it", func() error {
			get(t, off)
			if c := meta.FindStatusCondition(off.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
				return fmt.Errorf("Ready %+v", c)
			}
			return nil
		})
	}
}
