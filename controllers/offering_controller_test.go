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
	agr := &v1alpha1.ServiceAgreement{
		ObjectMeta: metav1.ObjectMeta{Name: "early", Namespace: ns},
		Spec: v1alpha1.ServiceAgreementSpec{
			Offering:     "not-there-yet",
			Consumer:     v1alpha1.Consumer{Name: "C", Subjects: []v1alpha1.Subject{{Kind: v1alpha1.SubjectGroup, Name: "g"}}},
			Entitlements: v1alpha1.Entitlements{Resources: []v1alpha1.ResourceEntitlement{{Name: "space"}}},
		},
	}
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
