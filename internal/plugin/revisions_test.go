package plugin_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
	"github.com/offering-operator/offering-operator/internal/plugin"
)

// recordRevisions writes revisions 1 and 2 of the fixture's offering as the
// operator would: 2 is the latest, with one more ClusterRole on rack-space,
// and one agreement is on each.
func recordRevisions(t *testing.T, f fixture) {
	t.Helper()
	ctx := testContext(t)
	var off v1alpha1.ServiceOffering
	must(t, k8sClient.Get(ctx, client.ObjectKey{Name: f.offering}, &off))
	for n := int32(1); n <= 2; n++ {
		spec := *off.Spec.DeepCopy()
		if n == 2 {
			spec.Resources[0].ClusterRoles = append(spec.Resources[0].ClusterRoles, "edit")
		}
		rev := &v1alpha1.ServiceOfferingRevision{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-r%d", f.offering, n), Labels: map[string]string{v1alpha1.LabelOffering: f.offering}},
			Spec: v1alpha1.ServiceOfferingRevisionSpec{Offering: v1alpha1.OfferingName(f.offering), Revision: n,
				SpecHash: strings.Repeat(fmt.Sprint(n), 64), OfferingSpec: spec},
		}
		must(t, k8sClient.Create(ctx, rev))
	}
	patch := client.MergeFrom(off.DeepCopy())
	off.Status.LatestRevision = 2
	off.Status.Revisions = []v1alpha1.RevisionUsage{{Revision: 1, Agreements: 1}, {Revision: 2, Agreements: 1}}
	must(t, k8sClient.Status().Patch(ctx, &off, patch))
}

func TestRevisionsAndDiff(t *testing.T) {
	integration(t)
	f := newFixture(t, v1alpha1.ApprovalAutomatic)
	recordRevisions(t, f)

	r := kubectlOffering(t, "revisions", f.offering)
	expectCode(t, r, plugin.ExitOK)
	row(t, r.stdout, "REVISION", "LATEST", "AGREEMENTS", "AGE", "NAME")
	if got := row(t, r.stdout, "1"); got[1] != "-" || got[2] != "1" || got[4] != f.offering+"-r1" {
		t.Errorf("revision 1 row: %v", got)
	}
	if got := row(t, r.stdout, "2"); got[1] != "yes" || got[2] != "1" {
		t.Errorf("revision 2 row: %v", got)
	}
	r = kubectlOffering(t, "revisions", f.offering, "-o", "json")
	expectCode(t, r, plugin.ExitOK)
	var list v1alpha1.ServiceOfferingRevisionList
	must(t, json.Unmarshal([]byte(r.stdout), &list))
	if len(list.Items) != 2 || list.Items[0].Spec.Revision != 1 {
		t.Errorf("-o json: %+v", list.Items)
	}

	for _, args := range [][]string{{"1", "2"}, {"1"}} {
		r = kubectlOffering(t, append([]string{"diff", f.offering}, args...)...)
		expectCode(t, r, plugin.ExitOK)
		contains(t, "diff", r.stdout, "--- "+f.offering+" revision 1", "+++ "+f.offering+" revision 2", "+  - edit", "   - view")
		if strings.Contains(r.stdout, "-  - view") {
			t.Errorf("diff removes a role both revisions have:\n%s", r.stdout)
		}
	}
	r = kubectlOffering(t, "diff", f.offering, "2", "2")
	expectCode(t, r, plugin.ExitOK)
	if r.stdout != "" {
		t.Errorf("diff of a revision with itself: %q", r.stdout)
	}
	expectCode(t, kubectlOffering(t, "diff", f.offering, "1", "7"), plugin.ExitError)
	expectCode(t, kubectlOffering(t, "diff", f.offering, "one"), plugin.ExitUsage)
}
