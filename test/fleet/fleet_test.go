package fleet

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
	"github.com/offering-operator/offering-operator/internal/testutil"
)

const (
	providerNamespace = "fleet-provider"
	wait              = 90 * time.Second
)

func requireFleet(t *testing.T) {
	t.Helper()
	if hub == nil || hub.admin == nil {
		t.Skip("fleet test: needs three API servers (run without -short, through `make test`)")
	}
}

// register registers a member with the hub, as its cluster admin does.
func register(t *testing.T, name string) {
	t.Helper()
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: operatorNamespace,
			Labels: map[string]string{v1alpha1.LabelMemberCluster: "true", "fleet.example/zone": name}},
		Data: map[string][]byte{v1alpha1.MemberKubeconfigKey: members[name].kubeconfig},
	}
	if err := hub.admin.Create(testCtx, sec); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	testutil.Eventually(t, wait, "MemberCluster "+name+" Ready", func() error {
		var mc v1alpha1.MemberCluster
		if err := hub.admin.Get(testCtx, types.NamespacedName{Name: name}, &mc); err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(mc.Status.Conditions, v1alpha1.ConditionReady) || mc.Status.Version == "" {
			return fmt.Errorf("status %+v", mc.Status)
		}
		return nil
	})
}

// offering creates an offering of one access item placed by placement.
func offering(t *testing.T, name string, placement *v1alpha1.Placement) {
	t.Helper()
	off := &v1alpha1.ServiceOffering{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.ServiceOfferingSpec{
		Provider: v1alpha1.Provider{Name: "Fleet team"}, ProviderNamespace: providerNamespace,
		Resources: []v1alpha1.ResourceItem{{Name: "space", ClusterRoles: []v1alpha1.ClusterRoleName{grantedRole},
			Quota: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("10")}, Placement: placement}},
	}}
	if err := hub.admin.Create(testCtx, off); err != nil {
		t.Fatal(err)
	}
}

// agreement creates a consumer namespace and an agreement there for the
// offering's item, at most maxGrants grants (0: unlimited).
func agreement(t *testing.T, ns, offering string, maxGrants int32) *v1alpha1.ServiceAgreement {
	t.Helper()
	if err := hub.admin.Create(testCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	ent := v1alpha1.ResourceEntitlement{Name: "space"}
	if maxGrants > 0 {
		ent.MaxGrants = ptr.To(maxGrants)
	}
	agr := &v1alpha1.ServiceAgreement{ObjectMeta: metav1.ObjectMeta{Name: "agr", Namespace: ns}, Spec: v1alpha1.ServiceAgreementSpec{
		Offering:     v1alpha1.OfferingName(offering),
		Consumer:     v1alpha1.Consumer{Name: ns, Subjects: []v1alpha1.Subject{{Kind: v1alpha1.SubjectUser, Name: "dev-" + ns}}},
		Entitlements: v1alpha1.Entitlements{Resources: []v1alpha1.ResourceEntitlement{ent}},
	}}
	if err := hub.admin.Create(testCtx, agr); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, wait, "agreement active", func() error {
		if err := hub.admin.Get(testCtx, client.ObjectKeyFromObject(agr), agr); err != nil {
			return err
		}
		if agr.Status.Phase != v1alpha1.AgreementActive {
			return fmt.Errorf("phase %q", agr.Status.Phase)
		}
		return nil
	})
	return agr
}

// request creates a request for the item as the shipped consumer role,
// naming a cluster or none.
func request(t *testing.T, ns, name, cluster string) *v1alpha1.ConsumptionRequest {
	t.Helper()
	cr := &v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: v1alpha1.ConsumptionRequestSpec{
		Agreement: "agr", Resource: &v1alpha1.ResourceRequest{Name: "space", Cluster: v1alpha1.ClusterName(cluster)}}}
	if err := consumer.Create(testCtx, cr); err != nil {
		t.Fatal(err)
	}
	return cr
}

// readyIn waits for a request to be Ready and returns it.
func readyIn(t *testing.T, ns, name string) *v1alpha1.ConsumptionRequest {
	t.Helper()
	return waitReason(t, ns, name, v1alpha1.ReasonGranted)
}

// waitReason waits until the request's Ready reason is reason.
func waitReason(t *testing.T, ns, name, reason string) *v1alpha1.ConsumptionRequest {
	t.Helper()
	cr := &v1alpha1.ConsumptionRequest{}
	testutil.Eventually(t, wait, ns+"/"+name+" "+reason, func() error {
		if err := hub.admin.Get(testCtx, types.NamespacedName{Namespace: ns, Name: name}, cr); err != nil {
			return err
		}
		c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Reason != reason {
			return fmt.Errorf("Ready %+v", c)
		}
		return nil
	})
	return cr
}

// grantedNamespaces lists the namespaces a cluster holds for a request.
func grantedNamespaces(t *testing.T, c *cluster, uid types.UID) []corev1.Namespace {
	t.Helper()
	var list corev1.NamespaceList
	if err := c.admin.List(testCtx, &list, client.MatchingLabels{v1alpha1.LabelRequestUID: string(uid)}); err != nil {
		t.Fatal(err)
	}
	var live []corev1.Namespace
	for _, ns := range list.Items {
		if ns.DeletionTimestamp.IsZero() {
			live = append(live, ns)
		}
	}
	return live
}

// canUse asks a cluster whether the user may create ConfigMaps in ns.
func canUse(t *testing.T, c *cluster, user, ns string) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Resource: "configmaps"}}}
	if err := c.admin.Create(testCtx, sar); err != nil {
		t.Fatal(err)
	}
	return sar.Status.Allowed
}

// placedOnlyIn checks that the request's grant is in the named member, once,
// and nowhere else.
func placedOnlyIn(t *testing.T, cr *v1alpha1.ConsumptionRequest, name string) string {
	t.Helper()
	if cr.Status.Cluster != name {
		t.Fatalf("%s: status.cluster %q, want %q", cr.Name, cr.Status.Cluster, name)
	}
	for _, c := range []*cluster{hub, members["member-a"], members["member-b"]} {
		nss := grantedNamespaces(t, c, cr.UID)
		want := 0
		if c.name == name {
			want = 1
		}
		if len(nss) != want {
			t.Fatalf("%s: %d granted namespace(s) in %s, want %d", cr.Name, len(nss), c.name, want)
		}
	}
	return cr.Status.Grant.Namespace
}

// TestGrantsArePlacedInMembers: requests choosing a member, and one leaving
// the choice to the operator, are granted there and nowhere else, and the
// member's own API server confirms the agreement's subject can use the
// namespace while the consumer's own hub identity gets nothing there. A
// consumer cannot place a grant in a cluster the item does not allow.
func TestGrantsArePlacedInMembers(t *testing.T) {
	requireFleet(t)
	register(t, "member-a")
	register(t, "member-b")
	offering(t, "placed", &v1alpha1.Placement{Clusters: []v1alpha1.ClusterName{"member-a", "member-b"}})
	offering(t, "hub-only", nil)
	agreement(t, "team-place", "placed", 0)

	request(t, "team-place", "in-a", "member-a")
	request(t, "team-place", "in-b", "member-b")
	for name, cluster := range map[string]string{"in-a": "member-a", "in-b": "member-b"} {
		cr := readyIn(t, "team-place", name)
		ns := placedOnlyIn(t, cr, cluster)
		if !canUse(t, members[cluster], "dev-team-place", ns) {
			t.Errorf("%s: the agreement's subject cannot use namespace %s in %s", name, ns, cluster)
		}
		if canUse(t, members[cluster], consumerUser, ns) {
			t.Errorf("%s: the consumer's hub identity got rights in %s beyond the grant", name, cluster)
		}
		var rb rbacv1.RoleBinding
		if err := members[cluster].admin.Get(testCtx, types.NamespacedName{Namespace: ns, Name: cr.Status.Grant.RoleBindings[0]}, &rb); err != nil {
			t.Fatalf("%s: the RoleBinding is not in %s: %v", name, cluster, err)
		}
	}
	// The operator's choice: the member holding fewer grants, then the first by name.
	want := "member-a"
	if placedCount(t, "member-a") > placedCount(t, "member-b") {
		want = "member-b"
	}
	request(t, "team-place", "chosen", "")
	placedOnlyIn(t, readyIn(t, "team-place", "chosen"), want)

	// A cluster the placement does not allow, chosen by the consumer.
	request(t, "team-place", "elsewhere", "member-z")
	cr := waitReason(t, "team-place", "elsewhere", v1alpha1.ReasonClusterNotAllowed)
	if cr.Status.Cluster != "" || cr.Status.Grant != nil || cr.Status.Phase != v1alpha1.RequestFailed {
		t.Fatalf("a refused placement: phase %s, recorded %q / %+v", cr.Status.Phase, cr.Status.Cluster, cr.Status.Grant)
	}
	agreement(t, "team-hub", "hub-only", 0)
	request(t, "team-hub", "forced", "member-a")
	waitReason(t, "team-hub", "forced", v1alpha1.ReasonClusterNotAllowed)
	for _, c := range members {
		var list corev1.NamespaceList
		if err := c.admin.List(testCtx, &list, client.MatchingLabels{v1alpha1.LabelRequestNamespace: "team-hub"}); err != nil || len(list.Items) > 0 {
			t.Fatalf("%s holds %d namespace(s) of a refused placement (%v)", c.name, len(list.Items), err)
		}
	}
	// The consumer cannot move a placed request.
	var placed v1alpha1.ConsumptionRequest
	if err := consumer.Get(testCtx, types.NamespacedName{Namespace: "team-place", Name: "in-a"}, &placed); err != nil {
		t.Fatal(err)
	}
	placed.Spec.Resource.Cluster = "member-b"
	if err := consumer.Update(testCtx, &placed); err == nil {
		t.Fatal("the consumer changed spec.resource.cluster of a placed request")
	}
}

// TestDriftInAMemberIsRepaired: a RoleBinding deleted in a member is made
// again from the member's watch events.
func TestDriftInAMemberIsRepaired(t *testing.T) {
	requireFleet(t)
	register(t, "member-a")
	offering(t, "drift", &v1alpha1.Placement{Clusters: []v1alpha1.ClusterName{"member-a"}})
	agreement(t, "team-drift", "drift", 0)
	request(t, "team-drift", "r", "")
	cr := readyIn(t, "team-drift", "r")
	ns := placedOnlyIn(t, cr, "member-a")
	key := types.NamespacedName{Namespace: ns, Name: cr.Status.Grant.RoleBindings[0]}
	a := members["member-a"]
	var rb rbacv1.RoleBinding
	if err := a.admin.Get(testCtx, key, &rb); err != nil {
		t.Fatal(err)
	}
	if err := a.admin.Delete(testCtx, &rb); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "the RoleBinding made again in member-a", func() error {
		var again rbacv1.RoleBinding
		if err := a.admin.Get(testCtx, key, &again); err != nil {
			return err
		}
		if again.UID == rb.UID {
			return errors.New("still the deleted one")
		}
		return nil
	})
}

// TestGlobalEntitlementsAcrossMembers: a burst of concurrent requests over
// two members never holds more grants than maxGrants, counted across both.
func TestGlobalEntitlementsAcrossMembers(t *testing.T) {
	requireFleet(t)
	register(t, "member-a")
	register(t, "member-b")
	offering(t, "limited", &v1alpha1.Placement{ClusterSelector: &metav1.LabelSelector{
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "fleet.example/zone", Operator: metav1.LabelSelectorOpExists}}}})
	const limit, burst = 3, 10
	agreement(t, "team-limit", "limited", limit)
	var wg sync.WaitGroup
	for i := range burst {
		cluster := []string{"member-a", "member-b", ""}[i%3]
		wg.Go(func() { request(t, "team-limit", fmt.Sprintf("r%d", i), cluster) })
	}
	wg.Wait()
	granted, denied := 0, 0
	testutil.Eventually(t, wait, "every request decided", func() error {
		var list v1alpha1.ConsumptionRequestList
		if err := hub.admin.List(testCtx, &list, client.InNamespace("team-limit")); err != nil {
			return err
		}
		granted, denied = 0, 0
		for _, cr := range list.Items {
			switch cr.Status.Phase {
			case v1alpha1.RequestFulfilled:
				granted++
			case v1alpha1.RequestDenied:
				denied++
			}
		}
		if granted+denied != burst {
			return fmt.Errorf("%d granted, %d denied of %d", granted, denied, burst)
		}
		return nil
	})
	held := 0
	for _, c := range members {
		var list corev1.NamespaceList
		if err := c.admin.List(testCtx, &list, client.MatchingLabels{v1alpha1.LabelRequestNamespace: "team-limit"}); err != nil {
			t.Fatal(err)
		}
		held += len(list.Items)
	}
	if granted != limit || held != limit {
		t.Fatalf("%d granted and %d namespaces held across the members, want %d (maxGrants)", granted, held, limit)
	}
}

// placedCount is how many requests of the hub are placed in a member.
func placedCount(t *testing.T, name string) int {
	t.Helper()
	var list v1alpha1.ConsumptionRequestList
	if err := hub.admin.List(testCtx, &list); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, cr := range list.Items {
		if cr.Status.Cluster == name {
			n++
		}
	}
	return n
}
