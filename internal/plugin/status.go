package plugin

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// maxEvents is how many of a request's most recent events status shows.
const maxEvents = 10

// RequestStatus is the output of `status -o json|yaml` (kind RequestStatus in OutputGroupVersion).
type RequestStatus struct {
	Request   string            `json:"request"`
	Namespace string            `json:"namespace"`
	Created   metav1.Time       `json:"created"`
	Kind      v1alpha1.ItemKind `json:"kind"`
	Item      string            `json:"item"`
	// Plan is the plan the request is granted under, and the one it asks
	// for while a change waits ("small -> large").
	Plan string `json:"plan,omitempty"`
	// Revision is the offering revision the request is fulfilled under, and
	// the one its pinned agreement moved to while the move waits ("1 -> 2").
	Revision string                `json:"revision,omitempty"`
	Phase    v1alpha1.RequestPhase `json:"phase,omitempty"`
	// Why is the request's Ready condition in a sentence: why it is where it is.
	Why string `json:"why"`
	// Next says what a person can do next, when something waits for a person.
	Next       string             `json:"next,omitempty"`
	Conditions []metav1.Condition `json:"conditions"`
	Agreement  AgreementSummary   `json:"agreement"`
	// Cluster is the member cluster the grant is placed in; empty for the
	// operator's own cluster.
	Cluster string `json:"cluster,omitempty"`
	// Grant, Delivered and Action are what was granted, delivered or run.
	Grant              *v1alpha1.AccessGrant         `json:"grant,omitempty"`
	Delivered          []v1alpha1.DeliveredObject    `json:"delivered,omitempty"`
	Action             *v1alpha1.ActionRun           `json:"action,omitempty"`
	ApprovedAt         *metav1.Time                  `json:"approvedAt,omitempty"`
	FulfilledAt        *metav1.Time                  `json:"fulfilledAt,omitempty"`
	FulfilmentDuration *metav1.Duration              `json:"fulfilmentDuration,omitempty"`
	ServiceLevel       *v1alpha1.RequestServiceLevel `json:"serviceLevel,omitempty"`
	// Events are the request's most recent events, oldest first.
	Events []EventRow `json:"events"`
}

// AgreementSummary is the state of the agreement a request is made under.
type AgreementSummary struct {
	Name  string                  `json:"name"`
	Phase v1alpha1.AgreementPhase `json:"phase,omitempty"`
	Ready *metav1.Condition       `json:"ready,omitempty"`
	// Renewal is when the agreement ends and how it is renewed.
	Renewal *Renewal `json:"renewal,omitempty"`
	// Error says why the agreement could not be read (for example it does not exist).
	Error string `json:"error,omitempty"`
}

// EventRow is one event about the request.
type EventRow struct {
	Type     string      `json:"type"`
	Reason   string      `json:"reason"`
	LastSeen metav1.Time `json:"lastSeen"`
	Count    int32       `json:"count"`
	From     string      `json:"from"`
	Message  string      `json:"message"`
}

func newStatusCommand(o *options) *cobra.Command {
	out := newOutputFlags(false)
	cmd := &cobra.Command{
		Use:   "status REQUEST [-n NAMESPACE]",
		Short: "Explain where a ConsumptionRequest is and why",
		Long: `Shows why a request is where it is: its phase and the reason of its Ready condition,
what a person can do next when it waits for one, every condition, the agreement's phase,
what was granted (namespace, role bindings, quota, limit range, network policy),
delivered (objects) or run (the action's Job), when it was approved and fulfilled, its
service level, and its most recent events.`,
		Example: `  # Why is Team Payments' dedicated server not there yet?
  kubectl offering status dedicated-server-x7k2q -n team-payments
  kubectl offering status dedicated-server-x7k2q -n team-payments -o yaml`,
		Args:              exactArgs("REQUEST"),
		ValidArgsFunction: o.completeRequests,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			c, cr, err := o.readRequest(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			st, err := buildStatus(cmd.Context(), c, cr)
			if err != nil {
				return err
			}
			if out.format() != "" {
				return out.printView(o.streams.Out, "RequestStatus", st)
			}
			return printStatus(o.streams.Out, st)
		},
	}
	out.addFlags(cmd, false)
	return cmd
}

func buildStatus(ctx context.Context, c client.Client, cr *v1alpha1.ConsumptionRequest) (*RequestStatus, error) {
	kind, item := requestItem(cr)
	st := &RequestStatus{
		Request: cr.Name, Namespace: cr.Namespace, Created: cr.CreationTimestamp, Kind: kind, Item: item, Plan: planCell(cr),
		Phase: cr.Status.Phase, Why: why(cr), Next: next(cr), Conditions: cr.Status.Conditions,
		Cluster: cr.Status.Cluster, Grant: cr.Status.Grant, Delivered: cr.Status.Delivered, Action: cr.Status.Action,
		ApprovedAt: cr.Status.ApprovedAt, FulfilledAt: cr.Status.FulfilledAt, FulfilmentDuration: cr.Status.FulfilmentDuration,
		ServiceLevel: cr.Status.ServiceLevel,
		Agreement:    AgreementSummary{Name: string(cr.Spec.Agreement)},
		Events:       []EventRow{},
	}
	if st.Conditions == nil {
		st.Conditions = []metav1.Condition{}
	}
	var agr v1alpha1.ServiceAgreement
	switch err := c.Get(ctx, client.ObjectKey{Namespace: cr.Namespace, Name: string(cr.Spec.Agreement)}, &agr); {
	case err == nil:
		st.Agreement.Phase = agr.Status.Phase
		st.Agreement.Ready = meta.FindStatusCondition(agr.Status.Conditions, v1alpha1.ConditionReady)
		renewal := renewalOf(&agr)
		st.Agreement.Renewal = &renewal
		st.Revision = revisionCell(cr, &agr)
	case apierrors.IsNotFound(err), apierrors.IsForbidden(err):
		st.Agreement.Error = err.Error()
	default:
		return nil, fmt.Errorf("reading ServiceAgreement %s/%s: %w", cr.Namespace, cr.Spec.Agreement, err)
	}
	events, err := recentEvents(ctx, c, cr)
	if err != nil {
		return nil, err
	}
	st.Events = events
	return st, nil
}

// recentEvents returns the request's most recent events, oldest first.
func recentEvents(ctx context.Context, c client.Client, cr *v1alpha1.ConsumptionRequest) ([]EventRow, error) {
	var evs corev1.EventList
	if err := c.List(ctx, &evs, client.InNamespace(cr.Namespace), client.MatchingFields{"involvedObject.uid": string(cr.UID)}); err != nil {
		if apierrors.IsForbidden(err) {
			return []EventRow{}, nil // events are a courtesy: a user who may not list them still gets the rest
		}
		return nil, fmt.Errorf("listing the events of %s: %w", cr.Name, err)
	}
	rows := make([]EventRow, 0, len(evs.Items))
	for i := range evs.Items {
		e := &evs.Items[i]
		from := e.Source.Component
		if from == "" {
			from = e.ReportingController
		}
		count := e.Count
		if e.Series != nil {
			count = e.Series.Count
		}
		rows = append(rows, EventRow{Type: e.Type, Reason: e.Reason, LastSeen: lastSeen(e), Count: max(count, 1), From: from, Message: e.Message})
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].LastSeen.Before(&rows[j].LastSeen) })
	if len(rows) > maxEvents {
		rows = rows[len(rows)-maxEvents:]
	}
	return rows, nil
}

// lastSeen is when an event was last observed, whichever API wrote it.
func lastSeen(e *corev1.Event) metav1.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return metav1.NewTime(e.Series.LastObservedTime.Time)
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp
	case !e.EventTime.IsZero():
		return metav1.NewTime(e.EventTime.Time)
	}
	return e.CreationTimestamp
}

// why is the Ready condition in a sentence.
func why(cr *v1alpha1.ConsumptionRequest) string {
	r := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionReady)
	if r == nil {
		return "the operator has not reported on this request yet (is it running, and does it watch this namespace?)"
	}
	s := fmt.Sprintf("Ready=%s, %s", r.Status, r.Reason)
	if r.Message != "" {
		s += ": " + r.Message
	}
	return s
}

// next says what a person can do when the request waits for one.
func next(cr *v1alpha1.ConsumptionRequest) string {
	ready := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionReady)
	switch {
	case cr.Status.Phase == v1alpha1.RequestAwaitingApproval:
		return fmt.Sprintf("a provider approves or denies it: kubectl offering approve %s -n %s (or deny ... --message WHY)", cr.Name, cr.Namespace)
	case cr.Status.Phase == v1alpha1.RequestDelivered:
		return fmt.Sprintf("accept or reject the goods: kubectl offering accept %s -n %s (or reject)", cr.Name, cr.Namespace)
	case ready != nil && ready.Reason == v1alpha1.ReasonGracePeriod && cr.Status.Grant != nil:
		return fmt.Sprintf("a provider renews ServiceAgreement %s (extends spec.validUntil) before %s to get namespace %s back with its data",
			cr.Spec.Agreement, formatTime(cr.Status.Grant.RetainedUntil), cr.Status.Grant.Namespace)
	case ready != nil && ready.Reason == v1alpha1.ReasonAwaitingProvider:
		return fmt.Sprintf("a provider marks the action done: kubectl offering complete %s -n %s (or --failed --message WHY)", cr.Name, cr.Namespace)
	}
	return ""
}

func printStatus(w io.Writer, st *RequestStatus) error {
	phase := string(st.Phase)
	if phase == "" {
		phase = "(not reported yet)"
	}
	fields := [][2]string{
		{"Name", st.Request},
		{"Namespace", st.Namespace},
		{"Created", fmt.Sprintf("%s (%s ago)", formatTime(&st.Created), age(st.Created))},
		{"Item", kindFlag(st.Kind) + " " + st.Item},
		{"Phase", phase},
		{"Why", st.Why},
	}
	if st.Next != "" {
		fields = append(fields, [2]string{"Next", st.Next})
	}
	fields = append(fields, [2]string{"Agreement", agreementLine(st.Agreement)})
	if err := printFields(w, "", fields...); err != nil {
		return err
	}

	if err := printConditions(w, "Conditions:", st.Conditions, true); err != nil {
		return err
	}
	if err := printOutcome(w, st); err != nil {
		return err
	}

	t := newTable("TYPE", "REASON", "AGE", "FROM", "MESSAGE")
	for _, e := range st.Events {
		seen := age(e.LastSeen)
		if e.Count > 1 {
			seen = fmt.Sprintf("%s (x%d)", seen, e.Count)
		}
		addRow(t, nil, e.Type, e.Reason, seen, e.From, e.Message)
	}
	return printSection(w, "Events:", "none", t)
}

// agreementLine is the agreement's name, phase and Ready condition in a line.
func agreementLine(a AgreementSummary) string {
	if a.Error != "" {
		return a.Name + " (" + a.Error + ")"
	}
	phase := string(a.Phase)
	if phase == "" {
		phase = "not reported yet"
	}
	s := a.Name + ", phase " + phase
	if a.Ready != nil {
		s += fmt.Sprintf(" (Ready=%s, %s)", a.Ready.Status, a.Ready.Reason)
	}
	if a.Renewal != nil && a.Renewal.Ends != nil {
		s += "; " + renewalLine(*a.Renewal)
	}
	return s
}

// planCell is the plan a resource request is granted under, followed by
// the one it asks for while a change waits ("small -> large"); "" without plans.
func planCell(cr *v1alpha1.ConsumptionRequest) string {
	var granted, wanted v1alpha1.PlanName
	if cr.Status.Grant != nil {
		granted = cr.Status.Grant.Plan
	}
	if cr.Spec.Resource != nil {
		wanted = cr.Spec.Resource.Plan
	}
	switch {
	case wanted == "" || wanted == granted:
		return string(granted)
	case granted == "":
		return string(wanted)
	}
	return fmt.Sprintf("%s -> %s", granted, wanted)
}

// revisionCell is the offering revision a request is fulfilled under,
// followed by the one its agreement is pinned to when that is another
// (a move that waits, or is being applied).
func revisionCell(cr *v1alpha1.ConsumptionRequest, agr *v1alpha1.ServiceAgreement) string {
	on := cr.Status.OfferingRevision
	switch {
	case on == 0:
		return ""
	case agr.Spec.RevisionPolicy == v1alpha1.RevisionPolicyPinned && agr.Spec.Revision != on:
		return fmt.Sprintf("%d -> %d", on, agr.Spec.Revision)
	}
	return fmt.Sprint(on)
}

// printOutcome prints what was granted, delivered or run, and the timing.
func printOutcome(w io.Writer, st *RequestStatus) error {
	if g := st.Grant; g != nil {
		if err := printFieldSection(w, "Granted", grantFields(st, g)...); err != nil {
			return err
		}
	}
	if len(st.Delivered) > 0 {
		fmt.Fprintln(w, "Delivered:")
		t := newTable("KIND", "NAMESPACE", "NAME")
		for _, d := range st.Delivered {
			addRow(t, nil, string(d.Kind), d.Namespace, d.Name)
		}
		if err := printIndented(w, "  ", t); err != nil {
			return err
		}
	}
	if a := st.Action; a != nil {
		if err := printFieldSection(w, "Action run", actionFields(a)...); err != nil {
			return err
		}
	}
	return printFieldSection(w, "Timing", timingFields(st)...)
}

// printFieldSection prints a titled section of "Name:  value" lines, indented
// under its title.
func printFieldSection(w io.Writer, title string, fields ...[2]string) error {
	fmt.Fprintln(w, title+":")
	return printFields(w, "  ", fields...)
}

// grantFields describe the access a request was granted.
func grantFields(st *RequestStatus, g *v1alpha1.AccessGrant) [][2]string {
	return [][2]string{
		{"Cluster", clusterCell(st.Cluster)},
		{"Namespace", g.Namespace},
		{"Plan", orDash(st.Plan)},
		{"Revision", orDash(st.Revision)},
		{"RoleBindings", strings.Join(g.RoleBindings, ", ")},
		{"ResourceQuota", g.ResourceQuota},
		{"LimitRange", g.LimitRange},
		{"NetworkPolicy", g.NetworkPolicy},
		{"Retained until", retainedUntil(g)},
	}
}

// actionFields describe the run of a request's action.
func actionFields(a *v1alpha1.ActionRun) [][2]string {
	return [][2]string{
		{"Type", string(a.Type)},
		{"Job", a.Job},
		{"Started", formatTime(a.StartedAt)},
		{"Completed", formatTime(a.CompletedAt)},
	}
}

// timingFields are when the request was approved and fulfilled, and its
// service-level targets and breaches.
func timingFields(st *RequestStatus) [][2]string {
	timing := [][2]string{{"Approved", formatTime(st.ApprovedAt)}, {"Fulfilled", formatTime(st.FulfilledAt)},
		{"Fulfilment took", formatDuration(st.FulfilmentDuration)}}
	if targets := serviceLevelTargets(st.ServiceLevel); targets != "" {
		timing = append(timing, [2]string{"Targets", targets})
	}
	if sl := st.ServiceLevel; sl != nil && len(sl.Breached) > 0 {
		missed := make([]string, len(sl.Breached))
		for i, b := range sl.Breached {
			missed[i] = string(b)
		}
		timing = append(timing, [2]string{"Breached", strings.Join(missed, ", ")})
	}
	return timing
}

// serviceLevelTargets are the targets the request is measured against and
// where they come from: "approval 4h, fulfilment 30s (plan small's default
// where the agreement sets none)"; "" when none applies.
func serviceLevelTargets(sl *v1alpha1.RequestServiceLevel) string {
	if sl == nil {
		return ""
	}
	var parts []string
	if sl.ApprovalTarget != nil {
		parts = append(parts, "approval "+sl.ApprovalTarget.Duration.String())
	}
	if sl.FulfilmentTarget != nil {
		parts = append(parts, "fulfilment "+sl.FulfilmentTarget.Duration.String())
	}
	out := strings.Join(parts, ", ")
	if out != "" && sl.Plan != "" {
		out += fmt.Sprintf(" (plan %s's default where the agreement sets none)", sl.Plan)
	}
	return out
}

// retainedUntil says when a namespace kept after its agreement expired is
// deleted, "-" while access is held.
func retainedUntil(g *v1alpha1.AccessGrant) string {
	if g.RetainedUntil == nil {
		return none
	}
	return formatTime(g.RetainedUntil) + " (then deleted, unless the agreement is renewed)"
}

// clusterCell names the cluster a grant is in: a member's name, or the
// operator's own cluster.
func clusterCell(name string) string {
	if name == "" {
		return "(this cluster)"
	}
	return name
}
