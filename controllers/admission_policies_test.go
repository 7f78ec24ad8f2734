package controllers

import (
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
	"github.com/offering-operator/offering-operator/internal/admissiontest"
)

// The tests of config/admission run against the real API server with the
// policies installed as `make install` installs them (suite_test.go), each
// write made by the persona that would make it.

// writeStatus patches cr's status as user, with the changes mutate makes to
// a fresh copy, and returns the API server's answer.
func patchStatusAs(t *testing.T, user string, cr *v1alpha1.ConsumptionRequest, mutate func(*v1alpha1.ConsumptionRequest)) error {
	t.Helper()
	get(t, cr)
	patch := client.MergeFromWithOptions(cr.DeepCopy(), client.MergeFromWithOptimisticLock{})
	mutate(cr)
	return userClient(t, user).Status().Patch(testCtx, cr, patch)
}

// expectRefused fails unless err is the API server refusing with a message containing want.
func expectRefused(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the write was admitted; want it refused with %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("refused with %v; want a message containing %q", err, want)
	}
}

// approvedInTest is the reason of the tests' approvals.
const approvedInTest = "ApprovedInTest"

func decisionCondition(typ, reason string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: metav1.ConditionTrue, Reason: reason, Message: "decided in a test", LastTransitionTime: metav1.Now()}
}

// TestConsumerCannotStripTheFinalizer: a consumer who may patch its requests
// removes the finalizer of a granted request, to delete it with nothing left
// to revoke the grant. Only the operator may remove the finalizer; the
// request is revoked when the consumer deletes it.
func TestConsumerCannotStripTheFinalizer(t *testing.T) {
	f := newFixture(t)
	cr := f.grantedRequest("strip-finalizer")
	consumer := userClient(t, consumerUser)

	get(t, cr)
	patch := client.MergeFrom(cr.DeepCopy())
	cr.Finalizers = nil
	expectRefused(t, consumer.Patch(testCtx, cr, patch), "only the offering-operator removes the finalizer")
	deleteAndExpectRevoked(t, consumer, cr)

	// The same while the request is being deleted: the consumer patches
	// right after its delete. The operator may finish the revocation before
	// the patch arrives (the patch then finds nothing); a fresh request is
	// tried until the patch reaches one still being deleted.
	const attempts = 8
	for i := range attempts {
		cr := f.grantedRequest(fmt.Sprintf("strip-while-deleting-%d", i))
		if err := consumer.Delete(testCtx, cr); err != nil {
			t.Fatal(err)
		}
		patch := client.RawPatch(types.JSONPatchType, []byte(`[{"op":"remove","path":"/metadata/finalizers"}]`))
		err := consumer.Patch(testCtx, cr, patch)
		if apierrors.IsNotFound(err) || apierrors.IsInvalid(err) && strings.Contains(err.Error(), "finalizers") {
			deleteAndExpectRevoked(t, consumer, cr)
			continue
		}
		expectRefused(t, err, "only the offering-operator removes the finalizer")
		deleteAndExpectRevoked(t, consumer, cr)
		return
	}
	t.Fatalf("in %d attempts the operator always revoked the request before the consumer's patch arrived", attempts)
}

// deleteAndExpectRevoked deletes cr as who (if it still exists) and waits
// for it to be gone and its granted namespace to be deleted.
func deleteAndExpectRevoked(t *testing.T, who client.Client, cr *v1alpha1.ConsumptionRequest) {
	t.Helper()
	ns := cr.Status.Grant.Namespace
	if err := who.Delete(testCtx, cr); client.IgnoreNotFound(err) != nil {
		t.Fatal(err)
	}
	gone(t, cr)
	var nsObj corev1.Namespace
	eventually(t, 20*time.Second, "the granted namespace to be revoked", func() error {
		if err := admin.Get(testCtx, nsKey(ns), &nsObj); err != nil {
			return client.IgnoreNotFound(err)
		}
		if nsObj.DeletionTimestamp.IsZero() {
			return fmt.Errorf("namespace %s is not being deleted", ns)
		}
		return nil
	})
}

// TestDenialIsFinal: under maxGrants 1 an approver denies A (its claim is
// released), B takes the grant, then the approver turns A's Denied into
// Approved to get a second grant. A denial is final.
func TestDenialIsFinal(t *testing.T) {
	f := newFixture(t, withMaxGrants(1), withManualApproval())
	a := f.resourceRequest("first")
	mustCreate(t, a)
	waitPhase(t, a, v1alpha1.RequestAwaitingApproval)
	if err := patchStatusAs(t, approverUser, a, func(cr *v1alpha1.ConsumptionRequest) {
		meta.SetStatusCondition(&cr.Status.Conditions, decisionCondition(v1alpha1.ConditionDenied, "NotNow"))
	}); err != nil {
		t.Fatalf("denying: %v", err)
	}
	waitPhase(t, a, v1alpha1.RequestDenied)

	b := f.resourceRequest("second")
	mustCreate(t, b)
	waitPhase(t, b, v1alpha1.RequestAwaitingApproval)
	if err := patchStatusAs(t, approverUser, b, func(cr *v1alpha1.ConsumptionRequest) {
		meta.SetStatusCondition(&cr.Status.Conditions, decisionCondition(v1alpha1.ConditionApproved, approvedInTest))
	}); err != nil {
		t.Fatalf("approving: %v", err)
	}
	waitCondition(t, b, v1alpha1.ConditionReady, metav1.ConditionTrue)

	const final = "a denial is final"
	expectRefused(t, patchStatusAs(t, approverUser, a, func(cr *v1alpha1.ConsumptionRequest) {
		meta.RemoveStatusCondition(&cr.Status.Conditions, v1alpha1.ConditionDenied)
		meta.SetStatusCondition(&cr.Status.Conditions, decisionCondition(v1alpha1.ConditionApproved, "ChangedMyMind"))
	}), final)
	expectRefused(t, patchStatusAs(t, approverUser, a, func(cr *v1alpha1.ConsumptionRequest) {
		meta.SetStatusCondition(&cr.Status.Conditions, decisionCondition(v1alpha1.ConditionApproved, "ChangedMyMind"))
	}), final)
	expectRefused(t, patchStatusAs(t, approverUser, a, func(cr *v1alpha1.ConsumptionRequest) {
		meta.SetStatusCondition(&cr.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionDenied,
			Status: metav1.ConditionFalse, Reason: "Withdrawn", Message: "withdrawn", LastTransitionTime: metav1.Now()})
	}), final)
	consistently(t, time.Second, "the denied request stays denied", func() error {
		get(t, a)
		if a.Status.Phase != v1alpha1.RequestDenied || a.Status.Grant != nil {
			return fmt.Errorf("phase %s grant %+v", a.Status.Phase, a.Status.Grant)
		}
		return nil
	})
}

// TestOnlyDecisionsAreWritableInStatus: approvers and providers may write
// the status subresource, but only the decision conditions; the operator's
// records there (phase, grant, its conditions, status.decision) are refused.
func TestOnlyDecisionsAreWritableInStatus(t *testing.T) {
	f := newFixture(t, withManualApproval())
	granted := f.resourceRequest("granted")
	mustCreate(t, granted)
	waitPhase(t, granted, v1alpha1.RequestAwaitingApproval)
	if err := patchStatusAs(t, approverUser, granted, func(cr *v1alpha1.ConsumptionRequest) {
		meta.SetStatusCondition(&cr.Status.Conditions, decisionCondition(v1alpha1.ConditionApproved, approvedInTest))
	}); err != nil {
		t.Fatalf("approving: %v", err)
	}
	waitCondition(t, granted, v1alpha1.ConditionReady, metav1.ConditionTrue)
	pending := f.resourceRequest("pending")
	mustCreate(t, pending)
	waitPhase(t, pending, v1alpha1.RequestAwaitingApproval)

	const fields, conditions = "only the offering-operator writes status fields", "only the offering-operator writes the conditions"
	cases := []struct {
		name   string
		user   string
		cr     *v1alpha1.ConsumptionRequest
		mutate func(*v1alpha1.ConsumptionRequest)
		want   string
	}{
		{"approver fails a granted request", approverUser, granted, func(cr *v1alpha1.ConsumptionRequest) {
			cr.Status.Phase = v1alpha1.RequestFailed
		}, fields},
		{"provider pre-fills the grant", providerUser, pending, func(cr *v1alpha1.ConsumptionRequest) {
			cr.Status.Grant = &v1alpha1.AccessGrant{Namespace: "planted"}
		}, fields},
		{"provider moves approvedAt", providerUser, granted, func(cr *v1alpha1.ConsumptionRequest) {
			cr.Status.ApprovedAt = &metav1.Time{Time: time.Now().Add(-time.Hour).Truncate(time.Second)}
		}, fields},
		{"approver sets Ready", approverUser, pending, func(cr *v1alpha1.ConsumptionRequest) {
			meta.SetStatusCondition(&cr.Status.Conditions, decisionCondition(v1alpha1.ConditionReady, "Granted"))
		}, conditions},
		{"provider removes AccessVerified", providerUser, granted, func(cr *v1alpha1.ConsumptionRequest) {
			meta.RemoveStatusCondition(&cr.Status.Conditions, v1alpha1.ConditionAccessVerified)
		}, conditions},
		{"provider marks a resource request Fulfilled", providerUser, pending, func(cr *v1alpha1.ConsumptionRequest) {
			meta.SetStatusCondition(&cr.Status.Conditions, decisionCondition(v1alpha1.ConditionFulfilled, "Done"))
		}, "the Fulfilled condition is written by a person only on a manual action"},
		{"approver names another decider", approverUser, granted, func(cr *v1alpha1.ConsumptionRequest) {
			cr.Status.Decision = &v1alpha1.RequestDecision{Type: v1alpha1.ConditionApproved, By: v1alpha1.UserInfo{Username: "someone-else"}}
		}, "status.decision records who approved or denied the request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectRefused(t, patchStatusAs(t, tc.user, tc.cr, tc.mutate), tc.want)
		})
	}
	get(t, granted)
	if granted.Status.Phase != v1alpha1.RequestFulfilled || granted.Status.Grant == nil {
		t.Fatalf("the granted request changed: phase %s grant %+v", granted.Status.Phase, granted.Status.Grant)
	}
}

// TestRecordsAreTheOperatorsOnly: the status of agreements and offerings is
// the operator's record. A user whose role may write it (a custom role with
// broad rights) is refused all the same.
func TestRecordsAreTheOperatorsOnly(t *testing.T) {
	f := newFixture(t)
	const user = "dana-status-writer"
	u, err := testEnv.AddUser(envtest.User{Name: user, Groups: []string{"system:authenticated"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	testUsers[user] = u.Config()
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: uniq("status-writer")}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{v1alpha1.GroupVersion.Group},
		Resources: []string{"serviceagreements/status", "serviceofferings/status"}, Verbs: []string{"get", "update", "patch"},
	}}}
	mustCreate(t, role)
	mustCreate(t, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}}})
	c := userClient(t, user)

	eventually(t, 10*time.Second, "the agreement's status write to be refused", func() error {
		get(t, f.agreement)
		patch := client.MergeFrom(f.agreement.DeepCopy())
		f.agreement.Status.Phase = v1alpha1.AgreementExpired
		err := c.Status().Patch(testCtx, f.agreement, patch)
		if err == nil || !strings.Contains(err.Error(), "only the offering-operator writes the status of serviceagreements") {
			return fmt.Errorf("got %w", err)
		}
		return nil
	})
	get(t, f.offering)
	patch := client.MergeFrom(f.offering.DeepCopy())
	f.offering.Status.Agreements = 99
	expectRefused(t, c.Status().Patch(testCtx, f.offering, patch), "only the offering-operator writes the status of serviceofferings")
}

// TestWhoCreatedAndWhoDecidedAreStamped: spec.creator is the creating
// identity whatever the client typed, and cannot be changed; status.decision
// names whoever wrote the decision, the operator for automatic approval.
func TestWhoCreatedAndWhoDecidedAreStamped(t *testing.T) {
	f := newFixture(t, withManualApproval())
	consumer := userClient(t, consumerUser)
	cr := f.resourceRequest("stamped")
	cr.Spec.Creator = &v1alpha1.UserInfo{Username: "cluster-admin-alice", Groups: []string{"system:masters"}}
	if err := consumer.Create(testCtx, cr); err != nil {
		t.Fatal(err)
	}
	if c := cr.Spec.Creator; c == nil || c.Username != consumerUser || slices.Contains(c.Groups, "system:masters") {
		t.Fatalf("spec.creator %+v, want %s as authenticated", c, consumerUser)
	}
	get(t, cr)
	patch := client.MergeFrom(cr.DeepCopy())
	cr.Spec.Creator.Username = "cluster-admin-alice"
	expectRefused(t, consumer.Patch(testCtx, cr, patch), "spec.creator is stamped by admission")

	waitPhase(t, cr, v1alpha1.RequestAwaitingApproval)
	if err := patchStatusAs(t, approverUser, cr, func(cr *v1alpha1.ConsumptionRequest) {
		meta.SetStatusCondition(&cr.Status.Conditions, decisionCondition(v1alpha1.ConditionApproved, approvedInTest))
		cr.Status.Decision = &v1alpha1.RequestDecision{Type: v1alpha1.ConditionApproved, By: v1alpha1.UserInfo{Username: "the-boss"}}
	}); err != nil {
		t.Fatalf("approving: %v", err)
	}
	waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionTrue)
	if d := cr.Status.Decision; d == nil || d.Type != v1alpha1.ConditionApproved || d.By.Username != approverUser {
		t.Fatalf("status.decision %+v, want Approved by %s", d, approverUser)
	}
	waitEvent(t, cr, "Approved", "Approved by "+approverUser)

	denied := f.resourceRequest("stamped-denied")
	mustCreate(t, denied)
	waitPhase(t, denied, v1alpha1.RequestAwaitingApproval)
	if err := patchStatusAs(t, providerUser, denied, func(cr *v1alpha1.ConsumptionRequest) {
		meta.SetStatusCondition(&cr.Status.Conditions, decisionCondition(v1alpha1.ConditionDenied, "NoCapacity"))
	}); err != nil {
		t.Fatalf("denying: %v", err)
	}
	waitPhase(t, denied, v1alpha1.RequestDenied)
	if d := denied.Status.Decision; d == nil || d.Type != v1alpha1.ConditionDenied || d.By.Username != providerUser {
		t.Fatalf("status.decision %+v, want Denied by %s", d, providerUser)
	}
	waitEvent(t, denied, "Denied", "Denied by "+providerUser)

	auto := newFixture(t).grantedRequest("stamped-auto")
	if d := auto.Status.Decision; d == nil || d.Type != v1alpha1.ConditionApproved || d.By.Username != operatorUser {
		t.Fatalf("status.decision %+v, want Approved by the operator", d)
	}
}

// TestRequestPolicyCoversEveryStatusField: the policy lists the fields of
// ConsumptionRequestStatus that only the operator writes; a field added to
// the status and not to the policy would be writable by approvers.
func TestRequestPolicyCoversEveryStatusField(t *testing.T) {
	objs, err := admissiontest.Load(filepath.Join("..", "config", "admission"))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	field := regexp.MustCompile(`object\.\?status\.\?([a-zA-Z]+) == oldObject`)
	for _, o := range objs {
		if o.GetKind() != "ValidatingAdmissionPolicy" || o.GetName() != "offering-operator-requests" {
			continue
		}
		validations, _, _ := unstructured.NestedSlice(o.Object, "spec", "validations")
		for _, v := range validations {
			expr, _ := v.(map[string]any)["expression"].(string)
			if !strings.Contains(expr, "observedGeneration") {
				continue // the validation of the operator's fields is the one that names observedGeneration
			}
			for _, m := range field.FindAllStringSubmatch(expr, -1) {
				listed = append(listed, m[1])
			}
		}
	}
	var want []string
	st := reflect.TypeOf(v1alpha1.ConsumptionRequestStatus{})
	for i := range st.NumField() {
		name := strings.Split(st.Field(i).Tag.Get("json"), ",")[0]
		switch name {
		case "conditions": // checked type by type
		case "decision": // stamped by admission, checked on its own
		default:
			want = append(want, name)
		}
	}
	slices.Sort(listed)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Fatalf("config/admission/requests.yaml freezes %v; ConsumptionRequestStatus has %v", listed, want)
	}
}

// waitEvent waits for an event on obj with reason and a note containing want.
func waitEvent(t *testing.T, obj client.Object, reason, want string) {
	t.Helper()
	eventually(t, 10*time.Second, "event "+reason, func() error {
		var events eventsv1.EventList
		if err := admin.List(testCtx, &events, client.InNamespace(obj.GetNamespace())); err != nil {
			return err
		}
		var seen []string
		for _, e := range events.Items {
			if e.Regarding.UID != obj.GetUID() {
				continue
			}
			if e.Reason == reason && strings.Contains(e.Note, want) {
				return nil
			}
			seen = append(seen, e.Reason+": "+e.Note)
		}
		return fmt.Errorf("no %s event containing %q; events: %v", reason, want, seen)
	})
}
