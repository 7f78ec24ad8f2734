package controllers

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

func withPin(n int32) fixtureOption {
	return func(f *fixture) {
		f.agreement.Spec.RevisionPolicy = v1alpha1.RevisionPolicyPinned
		f.agreement.Spec.Revision = n
	}
}

// editOffering changes the offering's spec with edit and waits until the
// operator has recorded it as the latest revision, which it returns.
func editOffering(t *testing.T, off *v1alpha1.ServiceOffering, edit func(*v1alpha1.ServiceOfferingSpec)) int32 {
	t.Helper()
	get(t, off)
	patch := client.MergeFrom(off.DeepCopy())
	edit(&off.Spec)
	if err := admin.Patch(testCtx, off, patch); err != nil {
		t.Fatal(err)
	}
	return waitLatestRevision(t, off)
}

// waitLatestRevision waits until the offering's status records a revision
// for its current generation, and returns its number.
func waitLatestRevision(t *testing.T, off *v1alpha1.ServiceOffering) int32 {
	t.Helper()
	eventually(t, 20*time.Second, "offering "+off.Name+" to record its revision", func() error {
		get(t, off)
		if off.Status.ObservedGeneration != off.Generation || off.Status.LatestRevision == 0 {
			return fmt.Errorf("observed generation %d of %d, latest revision %d", off.Status.ObservedGeneration, off.Generation, off.Status.LatestRevision)
		}
		return nil
	})
	return off.Status.LatestRevision
}

// revisionNumbers lists the numbers of the offering's revisions, lowest first.
func revisionNumbers(t *testing.T, off *v1alpha1.ServiceOffering) []int32 {
	t.Helper()
	var list v1alpha1.ServiceOfferingRevisionList
	if err := admin.List(testCtx, &list, client.MatchingLabels{v1alpha1.LabelOffering: off.Name}); err != nil {
		t.Fatal(err)
	}
	var out []int32
	for _, rev := range list.Items {
		out = append(out, rev.Spec.Revision)
	}
	slices.Sort(out)
	return out
}

func TestOfferingRecordsEachSpecAsRevision(t *testing.T) {
	f := newFixture(t)
	if n := waitLatestRevision(t, f.offering); n != 1 {
		t.Fatalf("latest revision %d, want 1", n)
	}
	var rev v1alpha1.ServiceOfferingRevision
	if err := admin.Get(testCtx, types.NamespacedName{Name: f.offering.Name + "-r1"}, &rev); err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(rev.Spec.OfferingSpec, f.offering.Spec) || rev.Spec.Offering != v1alpha1.OfferingName(f.offering.Name) {
		t.Errorf("revision 1 holds %+v, want the offering's spec", rev.Spec)
	}
	if !hasOwnerRef(&rev, f.offering.UID) {
		t.Errorf("revision 1 is not owned by the offering: %+v", rev.OwnerReferences)
	}

	// A change of metadata only is no new revision; a change of spec is.
	touch(t, f.offering)
	if n := editOffering(t, f.offering, func(s *v1alpha1.ServiceOfferingSpec) { s.Description = "second" }); n != 2 {
		t.Fatalf("latest revision %d after one edit, want 2", n)
	}
	if got := revisionNumbers(t, f.offering); !slices.Equal(got, []int32{1, 2}) {
		t.Errorf("revisions %v, want [1 2]", got)
	}
	eventually(t, 20*time.Second, "the offering to count its agreement on revision 2", func() error {
		get(t, f.offering)
		if want := []v1alpha1.RevisionUsage{{Revision: 2, Agreements: 1}}; !slices.Equal(f.offering.Status.Revisions, want) {
			return fmt.Errorf("revisions %+v, want %+v", f.offering.Status.Revisions, want)
		}
		return nil
	})

	// Revisions are immutable, even for an admin; providers and consumers only read them.
	if err := admin.Get(testCtx, client.ObjectKeyFromObject(&rev), &rev); err != nil {
		t.Fatal(err)
	}
	rev.Spec.OfferingSpec.Description = "rewritten"
	if err := admin.Update(testCtx, &rev); err == nil || !strings.Contains(err.Error(), "immutable") {
		t.Errorf("rewriting a revision: %v, want refused as immutable", err)
	}
	for _, user := range []string{providerUser, consumerUser} {
		c := userClient(t, user)
		var list v1alpha1.ServiceOfferingRevisionList
		if err := c.List(testCtx, &list); err != nil {
			t.Errorf("%s cannot list revisions: %v", user, err)
		}
		forged := newRevision(f.offering, 7, rev.Spec.SpecHash)
		if err := c.Create(testCtx, forged); err == nil {
			t.Errorf("%s created a revision", user)
		}
	}
}

func TestPinnedAgreementKeepsItsRevisionWhileLatestFollows(t *testing.T) {
	f := newFixture(t, withPin(1))
	pinned := f.grantedRequest("pinned")
	// A second consumer follows the latest revision of the same offering.
	latestNS := uniq("consumer")
	mustCreate(t, nsObj(latestNS))
	agr := makeAgreement("agreement", latestNS, f.offering.Name).group("team").resourceEntitlement("space").obj()
	mustCreate(t, agr)
	waitCondition(t, agr, v1alpha1.ConditionReady, metav1.ConditionTrue)
	latest := makeRequest("latest", latestNS).resource("space").obj()
	mustCreate(t, latest)
	waitCondition(t, latest, v1alpha1.ConditionReady, metav1.ConditionTrue)
	pinnedRB := roleBindingOf(t, pinned, f.role)

	extra := uniq("extra-role")
	mustCreate(t, grantableRole(extra))
	if n := editOffering(t, f.offering, func(s *v1alpha1.ServiceOfferingSpec) {
		s.Resources[0].Quota = corev1.ResourceList{corev1.ResourcePods: resource.MustParse("20")}
		s.Resources[0].ClusterRoles = append(s.Resources[0].ClusterRoles, v1alpha1.ClusterRoleName(extra))
	}); n != 2 {
		t.Fatalf("latest revision %d, want 2", n)
	}
	waitGrantFollows(t, latest, "20", 2)
	get(t, pinned)
	if pinned.Status.OfferingRevision != 1 {
		t.Errorf("pinned request is on revision %d, want 1", pinned.Status.OfferingRevision)
	}
	assertQuota(t, pinned, "10")
	if rb := roleBindingOf(t, pinned, f.role); rb.UID != pinnedRB.UID {
		t.Errorf("the pinned grant's RoleBinding was replaced")
	}
	if len(pinned.Status.Grant.RoleBindings) != 1 {
		t.Errorf("the pinned grant has RoleBindings %v, want only revision 1's", pinned.Status.Grant.RoleBindings)
	}

	// The provider moves the pin: the grant is changed in place, nothing is revoked.
	quotaUID := quotaOf(t, pinned).UID
	movePin(t, f.agreement, 2)
	waitGrantFollows(t, pinned, "20", 2)
	if q := quotaOf(t, pinned); q.UID != quotaUID {
		t.Errorf("the quota was replaced, not changed in place")
	}
	if rb := roleBindingOf(t, pinned, f.role); rb.UID != pinnedRB.UID {
		t.Errorf("the RoleBinding the new revision still offers was replaced")
	}
	roleBindingOf(t, pinned, extra)
}

func TestPinToMissingRevisionKeepsTheGrant(t *testing.T) {
	f := newFixture(t, withPin(1))
	cr := f.grantedRequest("held")
	rb := roleBindingOf(t, cr, f.role)
	movePin(t, f.agreement, 99)
	c := waitCondition(t, f.agreement, v1alpha1.ConditionReady, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonRevisionNotFound || !strings.Contains(c.Message, "revision 99") {
		t.Errorf("agreement Ready %s: %s, want RevisionNotFound naming revision 99", c.Reason, c.Message)
	}
	if c := waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionFalse); c.Reason != v1alpha1.ReasonRevisionNotFound {
		t.Errorf("request Ready %s: %s, want RevisionNotFound", c.Reason, c.Message)
	}
	if got := roleBindingOf(t, cr, f.role); got.UID != rb.UID || !got.DeletionTimestamp.IsZero() {
		t.Errorf("the grant's RoleBinding was touched while the pin was wrong")
	}
	// A request filed meanwhile waits, and nothing is granted for it.
	waiting := f.resourceRequest("waiting")
	mustCreate(t, waiting)
	if c := waitCondition(t, waiting, v1alpha1.ConditionReady, metav1.ConditionFalse); c.Reason != v1alpha1.ReasonRevisionNotFound {
		t.Errorf("new request Ready %s: %s, want RevisionNotFound", c.Reason, c.Message)
	}
	movePin(t, f.agreement, 1)
	waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionTrue)
	waitCondition(t, waiting, v1alpha1.ConditionReady, metav1.ConditionTrue)
}

func TestRevisionCollectionKeepsRevisionsInUse(t *testing.T) {
	f := newFixture(t, withPin(1))
	f.grantedRequest("on-one")
	var latest int32
	for i := range 5 {
		latest = editOffering(t, f.offering, func(s *v1alpha1.ServiceOfferingSpec) { s.Description = fmt.Sprintf("edit %d", i) })
	}
	if latest != 6 {
		t.Fatalf("latest revision %d after five edits, want 6", latest)
	}
	// The suite keeps three; revision 1 is pinned and a request is granted under it.
	want := []int32{1, 4, 5, 6}
	eventually(t, 20*time.Second, "old revisions to be collected", func() error {
		if got := revisionNumbers(t, f.offering); !slices.Equal(got, want) {
			return fmt.Errorf("revisions %v, want %v", got, want)
		}
		return nil
	})
	get(t, f.offering)
	if want := []v1alpha1.RevisionUsage{{Revision: 1, Agreements: 1}}; !slices.Equal(f.offering.Status.Revisions, want) {
		t.Errorf("usage %+v, want %+v", f.offering.Status.Revisions, want)
	}
}

func TestCollectableNeverTakesARevisionInUse(t *testing.T) {
	revs := make([]v1alpha1.ServiceOfferingRevision, 0, 8)
	for n := int32(8); n >= 1; n-- {
		revs = append(revs, v1alpha1.ServiceOfferingRevision{Spec: v1alpha1.ServiceOfferingRevisionSpec{Revision: n}})
	}
	cases := []struct {
		keep  int
		inUse map[int32]bool
		want  []int32
	}{
		{keep: 10, want: nil},
		{keep: 3, want: []int32{5, 4, 3, 2, 1}},
		{keep: 3, inUse: map[int32]bool{2: true, 5: true}, want: []int32{4, 3, 1}},
		{keep: 1, inUse: map[int32]bool{1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true}, want: nil},
	}
	for _, tc := range cases {
		var got []int32
		for _, rev := range collectable(revs, tc.keep, tc.inUse) {
			got = append(got, rev.Spec.Revision)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("keep %d, in use %v: collected %v, want %v", tc.keep, tc.inUse, got, tc.want)
		}
	}
}

// waitGrantFollows waits until the request is granted under revision n with
// a quota of pods and n RoleBindings.
func waitGrantFollows(t *testing.T, cr *v1alpha1.ConsumptionRequest, pods string, bindings int) {
	t.Helper()
	eventually(t, 20*time.Second, "request "+cr.Namespace+"/"+cr.Name+" to follow the new revision", func() error {
		get(t, cr)
		if cr.Status.OfferingRevision != 2 || cr.Status.Grant == nil || len(cr.Status.Grant.RoleBindings) != bindings {
			return fmt.Errorf("revision %d, grant %+v", cr.Status.OfferingRevision, cr.Status.Grant)
		}
		if q := quotaOf(t, cr).Spec.Hard[corev1.ResourcePods]; q.String() != pods {
			return fmt.Errorf("quota pods %s, want %s", q.String(), pods)
		}
		return nil
	})
}

func assertQuota(t *testing.T, cr *v1alpha1.ConsumptionRequest, pods string) {
	t.Helper()
	if q := quotaOf(t, cr).Spec.Hard[corev1.ResourcePods]; q.String() != pods {
		t.Errorf("request %s: quota pods %s, want %s", cr.Name, q.String(), pods)
	}
}

func quotaOf(t *testing.T, cr *v1alpha1.ConsumptionRequest) *corev1.ResourceQuota {
	t.Helper()
	var q corev1.ResourceQuota
	if err := admin.Get(testCtx, client.ObjectKey{Namespace: cr.Status.Grant.Namespace, Name: quotaName}, &q); err != nil {
		t.Fatal(err)
	}
	return &q
}

func roleBindingOf(t *testing.T, cr *v1alpha1.ConsumptionRequest, role string) *rbacv1.RoleBinding {
	t.Helper()
	var rb rbacv1.RoleBinding
	if err := admin.Get(testCtx, client.ObjectKey{Namespace: cr.Status.Grant.Namespace, Name: roleBindingName(role)}, &rb); err != nil {
		t.Fatal(err)
	}
	return &rb
}
