package controllers

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// told is an Event as a person reads it in `kubectl describe`: its reason and
// the kind and name of its related object.
type told struct{ reason, related string }

// eventsAbout waits until the events.k8s.io Events regarding obj include
// last, waits a moment for any that would follow it, and returns them all
// in the order they were first recorded.
func eventsAbout(t *testing.T, obj client.Object, last string) []eventsv1.Event {
	t.Helper()
	var list eventsv1.EventList
	read := func() error {
		list = eventsv1.EventList{}
		return admin.List(testCtx, &list, client.InNamespace(obj.GetNamespace()))
	}
	eventually(t, 20*time.Second, last+" event", func() error {
		if err := read(); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.UID == obj.GetUID() && e.Reason == last {
				return nil
			}
		}
		return fmt.Errorf("no %s event regarding %s yet", last, obj.GetName())
	})
	time.Sleep(2 * time.Second) // an Event after the last one expected would be a duplicate
	if err := read(); err != nil {
		t.Fatal(err)
	}
	var about []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.UID == obj.GetUID() {
			about = append(about, e)
		}
	}
	slices.SortStableFunc(about, func(a, b eventsv1.Event) int { return a.EventTime.Compare(b.EventTime.Time) })
	return about
}

func toldOf(events []eventsv1.Event) []told {
	out := make([]told, 0, len(events))
	for _, e := range events {
		rel := ""
		if e.Related != nil {
			rel = e.Related.Kind + " " + e.Related.Name
		}
		out = append(out, told{e.Reason, rel})
	}
	return out
}

// TestEventsPerGrant counts the Events of one grant, which are stored writes
// (docs/performance.md, "Knobs"). On the fast path (automatic approval) the
// only Event is Granted, related to the namespace granted; the production
// default --omit-events=Granted drops it, so a grant costs no Event write
// (TestOmitEventsDropsOnlyTheNamedReasons). The test manager omits nothing.
func TestEventsPerGrant(t *testing.T) {
	f := newFixture(t)
	cr := f.grantedRequest("fast")
	events := eventsAbout(t, cr, "Granted")
	get(t, cr)
	want := []told{{"Granted", "Namespace " + cr.Status.Grant.Namespace}}
	if got := toldOf(events); !slices.Equal(got, want) {
		t.Fatalf("events of one automatically approved grant: got %v, want %v", got, want)
	}
	if e := events[0]; e.Type != corev1.EventTypeNormal || e.Related.APIVersion != "v1" || e.Series != nil {
		t.Errorf("Granted event: type %s, related %+v, series %+v", e.Type, e.Related, e.Series)
	}
}

// TestEventsTellAManualApproval: a request waiting for a person tells so once,
// then who approved it, then the grant; each Event leads to what it is about.
func TestEventsTellAManualApproval(t *testing.T) {
	f := newFixture(t, withManualApproval())
	cr := f.resourceRequest("manual")
	mustCreate(t, cr)
	waitPhase(t, cr, v1alpha1.RequestAwaitingApproval)
	touch(t, cr) // another reconcile in the same phase tells nothing new
	approveAsProvider(t, cr)
	waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionTrue)
	events := eventsAbout(t, cr, "Granted")
	get(t, cr)
	agreement := "ServiceAgreement " + f.agreement.Name
	want := []told{
		{v1alpha1.ReasonAwaitingApproval, agreement},
		{v1alpha1.ConditionApproved, agreement},
		{"Granted", "Namespace " + cr.Status.Grant.Namespace},
	}
	if got := toldOf(events); !slices.Equal(got, want) {
		t.Fatalf("events of a manually approved grant: got %v, want %v", got, want)
	}
	if note := events[1].Note; !strings.Contains(note, "by "+approverUser) {
		t.Errorf("the Approved event does not say who approved: %q", note)
	}
	if rel := events[0].Related; rel.Namespace != f.ns || rel.APIVersion != v1alpha1.GroupVersion.String() {
		t.Errorf("AwaitingApproval related: %+v", rel)
	}
}

// TestOfferingReadinessIsToldAndMeasured: an offering that turns not Ready
// records a Warning with its reason and its gauge falls to 0; Ready again, a
// Normal event and 1; deleted, its series is gone.
func TestOfferingReadinessIsToldAndMeasured(t *testing.T) {
	requireAPIServer(t)
	role := uniq("workload-operator") // created later: the offering is not Ready until then
	off := &v1alpha1.ServiceOffering{
		ObjectMeta: metav1.ObjectMeta{Name: uniq("offering")},
		Spec: v1alpha1.ServiceOfferingSpec{
			Provider:          v1alpha1.Provider{Name: "Test Provider"},
			ProviderNamespace: "default",
			Resources: []v1alpha1.ResourceItem{{
				Name: "space", ClusterRoles: []v1alpha1.ClusterRoleName{v1alpha1.ClusterRoleName(role)},
				RevocationPolicy: v1alpha1.RevocationPolicyDelete,
			}},
		},
	}
	mustCreate(t, off)
	labels := map[string]string{lblOffering: off.Name}
	waitGauge := func(want float64) {
		t.Helper()
		eventually(t, 20*time.Second, fmt.Sprintf("offering_ready %v", want), func() error {
			v, err := scrapeMetric(t, "offering_operator_offering_ready", labels)
			if err == nil && v != want {
				err = fmt.Errorf("offering_operator_offering_ready is %v", v)
			}
			return err
		})
	}
	waitCondition(t, off, v1alpha1.ConditionReady, metav1.ConditionFalse)
	waitGauge(0)
	get(t, off)
	patch := client.MergeFrom(off.DeepCopy())
	off.Spec.Provider.Name = "Another Provider" // a new generation, reconciled again: nothing new to tell
	if err := admin.Patch(testCtx, off, patch); err != nil {
		t.Fatal(err)
	}
	waitGeneration(t, off)
	mustCreate(t, grantableRole(role))
	waitCondition(t, off, v1alpha1.ConditionReady, metav1.ConditionTrue)
	waitGauge(1)
	get(t, off)
	// Each generation is also recorded as a revision (RevisionCreated), which is not about readiness.
	ev := slices.DeleteFunc(eventsAbout(t, off, v1alpha1.ConditionReady), func(e eventsv1.Event) bool { return e.Reason == "RevisionCreated" })
	want := []told{{v1alpha1.ReasonClusterRoleNotFound, ""}, {v1alpha1.ConditionReady, ""}}
	if got := toldOf(ev); !slices.Equal(got, want) {
		t.Fatalf("events of an offering not Ready, then Ready: got %v, want %v", got, want)
	}
	if ev[0].Type != corev1.EventTypeWarning || ev[1].Type != corev1.EventTypeNormal {
		t.Errorf("event types: %s, %s", ev[0].Type, ev[1].Type)
	}
	if err := admin.Delete(testCtx, off); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the deleted offering's series removed", func() error {
		if _, err := scrapeMetric(t, "offering_operator_offering_ready", labels); err == nil {
			return fmt.Errorf("offering_operator_offering_ready{offering=%q} still exposed", off.Name)
		}
		return nil
	})
}

// waitGeneration waits until the offering's status is of its generation.
func waitGeneration(t *testing.T, off *v1alpha1.ServiceOffering) {
	t.Helper()
	eventually(t, 20*time.Second, "the offering's new generation observed", func() error {
		var cur v1alpha1.ServiceOffering
		if err := admin.Get(testCtx, client.ObjectKeyFromObject(off), &cur); err != nil {
			return err
		}
		if cur.Status.ObservedGeneration != cur.Generation {
			return fmt.Errorf("observed generation %d of %d", cur.Status.ObservedGeneration, cur.Generation)
		}
		return nil
	})
}
