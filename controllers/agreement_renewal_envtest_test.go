package controllers

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

func withRenewBefore(d time.Duration) fixtureOption {
	return func(f *fixture) { f.agreement.Spec.RenewBefore = &metav1.Duration{Duration: d} }
}

func withAutoRenew(d time.Duration) fixtureOption {
	return func(f *fixture) { f.agreement.Spec.AutoRenew = &metav1.Duration{Duration: d} }
}

// grantUIDs are the UIDs of a request's granted namespace and RoleBindings:
// the same UIDs after a renewal mean nothing was deleted and created again.
func grantUIDs(t *testing.T, cr *v1alpha1.ConsumptionRequest) map[string]types.UID {
	t.Helper()
	get(t, cr)
	ns := cr.Status.Grant.Namespace
	uids := map[string]types.UID{}
	var nsObj corev1.Namespace
	if err := admin.Get(testCtx, nsKey(ns), &nsObj); err != nil {
		t.Fatal(err)
	}
	uids["namespace/"+ns] = nsObj.UID
	var rbs rbacv1.RoleBindingList
	if err := admin.List(testCtx, &rbs, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)}); err != nil {
		t.Fatal(err)
	}
	if len(rbs.Items) == 0 {
		t.Fatalf("no RoleBindings in %s", ns)
	}
	for _, rb := range rbs.Items {
		uids["rolebinding/"+rb.Name] = rb.UID
	}
	return uids
}

// extend sets the agreement's validUntil as its provider does.
func extend(t *testing.T, agr *v1alpha1.ServiceAgreement, until time.Time) {
	t.Helper()
	get(t, agr)
	patch := client.MergeFrom(agr.DeepCopy())
	agr.Spec.ValidUntil = &metav1.Time{Time: until}
	if err := userClient(t, providerUser).Patch(testCtx, agr, patch); err != nil {
		t.Fatal(err)
	}
}

// waitMetric waits until an agreement's gauge has the value.
func waitMetric(t *testing.T, name string, agr *v1alpha1.ServiceAgreement, want float64) {
	t.Helper()
	labels := map[string]string{lblNamespace: agr.Namespace, lblAgreement: agr.Name}
	eventually(t, 10*time.Second, fmt.Sprintf("%s = %v", name, want), func() error {
		got, err := scrapeMetric(t, name, labels)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%s is %v", name, got)
		}
		return nil
	})
}

func TestRenewalInsideTheNoticeWindow(t *testing.T) {
	until := testClock.Now().Add(3 * time.Hour).Truncate(time.Second)
	f := newFixture(t, withValidUntil(until), withRenewBefore(time.Hour))
	cr := f.grantedRequest("renewed")
	before := grantUIDs(t, cr)
	if c := waitCondition(t, f.agreement, v1alpha1.ConditionExpiringSoon, metav1.ConditionFalse); c.Reason != v1alpha1.ReasonNotDue {
		t.Fatalf("ExpiringSoon before the notice: %s: %s", c.Reason, c.Message)
	}
	waitMetric(t, "offering_operator_agreement_expiring_soon", f.agreement, 0)
	waitMetric(t, "offering_operator_agreement_valid_until_timestamp_seconds", f.agreement, float64(until.Unix()))

	// Two and a half hours pass: the notice window (the last hour) is open.
	testClock.Step(150 * time.Minute)
	touch(t, f.agreement)
	c := waitCondition(t, f.agreement, v1alpha1.ConditionExpiringSoon, metav1.ConditionTrue)
	if c.Reason != v1alpha1.ReasonRenewalDue {
		t.Errorf("ExpiringSoon reason %s: %s", c.Reason, c.Message)
	}
	waitEvent(t, f.agreement, v1alpha1.ConditionExpiringSoon, "expires at "+until.UTC().Format(time.RFC3339))
	waitMetric(t, "offering_operator_agreement_expiring_soon", f.agreement, 1)
	if !meta.IsStatusConditionTrue(f.agreement.Status.Conditions, v1alpha1.ConditionReady) {
		t.Errorf("an agreement in its notice window must stay Ready: %+v", f.agreement.Status.Conditions)
	}

	renewed := testClock.Now().Add(48 * time.Hour).Truncate(time.Second)
	extend(t, f.agreement, renewed)
	if c := waitCondition(t, f.agreement, v1alpha1.ConditionExpiringSoon, metav1.ConditionFalse); c.Reason != v1alpha1.ReasonNotDue {
		t.Errorf("ExpiringSoon after the renewal: %s: %s", c.Reason, c.Message)
	}
	waitEvent(t, f.agreement, "Renewed", "spec.validUntil was extended")
	waitMetric(t, "offering_operator_agreement_valid_until_timestamp_seconds", f.agreement, float64(renewed.Unix()))
	waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionTrue)
	assertSameGrant(t, cr, before)
}

// assertSameGrant fails when the request's namespace or RoleBindings are
// not the very objects they were: access was interrupted.
func assertSameGrant(t *testing.T, cr *v1alpha1.ConsumptionRequest, before map[string]types.UID) {
	t.Helper()
	after := grantUIDs(t, cr)
	for k, uid := range before {
		if after[k] != uid {
			t.Errorf("%s was replaced (uid %s, now %q): access was interrupted", k, uid, after[k])
		}
	}
	if len(after) != len(before) {
		t.Errorf("grant changed: %v, was %v", after, before)
	}
}

func TestAutoRenewalKeepsAccess(t *testing.T) {
	until := testClock.Now().Add(time.Hour).Truncate(time.Second)
	f := newFixture(t, withValidUntil(until), withRenewBefore(2*time.Hour), withAutoRenew(24*time.Hour))
	cr := f.grantedRequest("auto-renewed")
	before := grantUIDs(t, cr)
	if c := waitCondition(t, f.agreement, v1alpha1.ConditionExpiringSoon, metav1.ConditionFalse); c.Reason != v1alpha1.ReasonAutoRenews {
		t.Fatalf("an auto-renewing agreement gives no notice: %s: %s", c.Reason, c.Message)
	}

	// The end passes: the agreement renews itself for a day.
	testClock.Step(90 * time.Minute)
	touch(t, f.agreement)
	next := until.Add(24 * time.Hour)
	eventually(t, 20*time.Second, "status.validUntil moved by autoRenew", func() error {
		get(t, f.agreement)
		st := f.agreement.Status
		if st.ValidUntil == nil || !st.ValidUntil.Equal(&metav1.Time{Time: next}) || st.Renewals != 1 {
			return fmt.Errorf("status.validUntil %v renewals %d, want %v and 1", st.ValidUntil, st.Renewals, next)
		}
		return nil
	})
	if f.agreement.Status.Phase != v1alpha1.AgreementActive || !f.agreement.Spec.ValidUntil.Equal(&metav1.Time{Time: until}) {
		t.Errorf("phase %s, spec.validUntil %v: the spec must stay as written", f.agreement.Status.Phase, f.agreement.Spec.ValidUntil)
	}
	waitEvent(t, f.agreement, "Renewed", "renewed by spec.autoRenew")
	touch(t, cr)
	waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionTrue)
	assertSameGrant(t, cr, before)
}
