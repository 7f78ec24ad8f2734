package controllers

import (
	"fmt"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// TestGrantSlotsAreOutOfTenantsReach: the grant slots live in the
// operator's namespace. A tenant with the built-in admin and edit roles and
// the consumer role in its namespace, and the shipped consumer, approver and
// provider roles, may not touch them, so nobody can free a slot to be
// granted more than the agreement allows.
func TestGrantSlotsAreOutOfTenantsReach(t *testing.T) {
	f := newFixture(t, withMaxGrants(1))
	cr := f.grantedRequest("holder")
	slots := grantSlotsOf(t, f)
	if len(slots) != 1 || holder(&slots[0]) != string(cr.UID) {
		t.Fatalf("slots %+v, want one held by %s", slots, cr.UID)
	}
	// The built-in admin and edit roles are aggregated by
	// kube-controller-manager, which envtest does not run: the tenant is
	// bound to the roles they aggregate, and to the shipped consumer role.
	user := uniq("tenant-admin")
	for _, role := range []string{"system:aggregate-to-admin", "system:aggregate-to-edit", "system:aggregate-to-view", "offering-operator-consumer"} {
		mustCreate(t, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: sanitize(user + "-" + role), Namespace: f.ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
		})
	}
	eventually(t, 10*time.Second, user+" authorized", func() error {
		if !canI(t, user, "create", "", "configmaps", "", f.ns) || !canI(t, user, "create", "rbac.authorization.k8s.io", "rolebindings", "", f.ns) ||
			!canI(t, user, "create", v1alpha1.GroupVersion.Group, "consumptionrequests", "", f.ns) {
			return fmt.Errorf("%s is not authorized yet", user)
		}
		return nil
	})
	// Those roles include Leases in the tenant's own namespace, which is
	// why the slots are not kept there.
	if !canI(t, user, "delete", "coordination.k8s.io", "leases", "", f.ns) {
		t.Errorf("the built-in roles no longer include Leases: the slots could move to the consumer's namespace")
	}
	for _, who := range []string{user, consumerUser, approverUser, providerUser} {
		for _, verb := range []string{"delete", "update", "patch", "create", "deletecollection"} {
			if canI(t, who, verb, "coordination.k8s.io", "leases", "", operatorNamespace) {
				t.Errorf("%s may %s the grant slots (Leases in %s)", who, verb, operatorNamespace)
			}
		}
	}
	// The request's own deletion releases the slot for the next request.
	if err := admin.Delete(testCtx, cr); err != nil {
		t.Fatal(err)
	}
	gone(t, cr)
	next := f.grantedRequest("next")
	slots = grantSlotsOf(t, f)
	if len(slots) != 1 || holder(&slots[0]) != string(next.UID) {
		t.Fatalf("slots %+v, want one held by %s", slots, next.UID)
	}
}

// TestUpgradeMovesGrantsIntoSlots: an agreement written by the previous
// version holds its grants in status.allocations. On the first reconcile of
// this version, each becomes a slot held by the same request, and the
// entitlement stays enforced.
func TestUpgradeMovesGrantsIntoSlots(t *testing.T) {
	f := newFixture(t, withMaxGrants(2))
	before := f.grantedRequest("before-upgrade")
	// The state the previous version left: no slot, an allocation.
	slots := grantSlotsOf(t, f)
	if len(slots) != 1 {
		t.Fatalf("slots %+v", slots)
	}
	if err := admin.Delete(testCtx, &slots[0]); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the previous version's ledger written", func() error {
		get(t, f.agreement)
		patch := client.MergeFromWithOptions(f.agreement.DeepCopy(), client.MergeFromWithOptimisticLock{})
		f.agreement.Status.Allocations = []v1alpha1.Allocation{{Request: before.Name, UID: string(before.UID),
			Kind: v1alpha1.ItemKindResource, Item: "space", Quantity: 1}}
		return userClient(t, operatorUser).Status().Patch(testCtx, f.agreement, patch)
	})
	eventually(t, 20*time.Second, "the grant moved into a slot", func() error {
		slots := grantSlotsOf(t, f)
		if len(slots) != 1 || holder(&slots[0]) != string(before.UID) || len(f.agreement.Status.Allocations) != 0 {
			return fmt.Errorf("slots %d, allocations %+v", len(slots), f.agreement.Status.Allocations)
		}
		return nil
	})
	waitCondition(t, before, v1alpha1.ConditionReady, metav1.ConditionTrue)
	f.grantedRequest("after-upgrade")
	over := f.resourceRequest("one-too-many")
	mustCreate(t, over)
	assertExhausted(t, over)
}
