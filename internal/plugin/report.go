package plugin

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Report is the relationship report of one agreement (the output of `report -o json|yaml`).
type Report struct {
	Agreement      string                  `json:"agreement"`
	Namespace      string                  `json:"namespace"`
	Offering       string                  `json:"offering"`
	Consumer       string                  `json:"consumer"`
	ApprovalPolicy v1alpha1.ApprovalPolicy `json:"approvalPolicy"`
	ValidFrom      *metav1.Time            `json:"validFrom,omitempty"`
	ValidUntil     *metav1.Time            `json:"validUntil,omitempty"`
	Suspended      bool                    `json:"suspended,omitempty"`
	// Renewal is the agreement's renewal terms and where they stand.
	Renewal    Renewal                 `json:"renewal"`
	Phase      v1alpha1.AgreementPhase `json:"phase,omitempty"`
	Conditions []metav1.Condition      `json:"conditions"`
	// Usage is the use of each entitlement, as the agreement's status.usage
	// reports it, with a row for every entitlement (none used yet included).
	Usage      []v1alpha1.EntitlementUsage `json:"usage"`
	RequestsBy v1alpha1.RequestCounts      `json:"requestsByPhase"`
	Goods      v1alpha1.GoodsCounts        `json:"goods"`
	// ServiceLevelTargets are the agreement's targets; absent when it sets none.
	ServiceLevelTargets *v1alpha1.ServiceLevels `json:"serviceLevelTargets,omitempty"`
	// ServiceLevels is the agreement's service-level record over its window.
	ServiceLevels *v1alpha1.AgreementServiceLevels `json:"serviceLevels,omitempty"`
	Requests      []RequestRow                     `json:"requests"`
}

// Renewal is how an agreement is renewed and when it ends.
type Renewal struct {
	// Ends is the current end (status.validUntil): spec.validUntil moved on by autoRenew.
	Ends *metav1.Time `json:"ends,omitempty"`
	// RenewBefore is the notice period before the end (spec.renewBefore).
	RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`
	// AutoRenew is the period the agreement renews itself by (spec.autoRenew).
	AutoRenew *metav1.Duration `json:"autoRenew,omitempty"`
	// Renewals counts the automatic renewals (status.renewals).
	Renewals int32 `json:"renewals,omitempty"`
	// ExpiringSoon is the agreement's ExpiringSoon condition; absent without renewBefore.
	ExpiringSoon *metav1.Condition `json:"expiringSoon,omitempty"`
}

// renewalOf reads an agreement's renewal terms and state.
func renewalOf(agr *v1alpha1.ServiceAgreement) Renewal {
	return Renewal{Ends: agr.Status.ValidUntil, RenewBefore: agr.Spec.RenewBefore, AutoRenew: agr.Spec.AutoRenew,
		Renewals: agr.Status.Renewals, ExpiringSoon: meta.FindStatusCondition(agr.Status.Conditions, v1alpha1.ConditionExpiringSoon)}
}

// renewalLine is an agreement's renewal in a line: when it ends, how it is
// renewed, and EXPIRING SOON within the notice.
func renewalLine(r Renewal) string {
	if r.Ends == nil {
		return "open-ended"
	}
	s := "ends " + formatTime(r.Ends)
	switch {
	case r.AutoRenew != nil:
		s += fmt.Sprintf(", renews itself every %s (renewed %d times)", formatDuration(r.AutoRenew), r.Renewals)
	case r.RenewBefore != nil:
		s += fmt.Sprintf(", notice %s before", formatDuration(r.RenewBefore))
	}
	if c := r.ExpiringSoon; c != nil && c.Status == metav1.ConditionTrue {
		s += "; EXPIRING SOON: extend spec.validUntil or set spec.autoRenew"
	}
	return s
}

// RequestRow summarises one request under the agreement.
type RequestRow struct {
	Name string            `json:"name"`
	Kind v1alpha1.ItemKind `json:"kind"`
	Item string            `json:"item"`
	// Plan is as in RequestStatus: granted, and asked for while a change waits.
	Plan               string                `json:"plan,omitempty"`
	Phase              v1alpha1.RequestPhase `json:"phase,omitempty"`
	ReadyReason        string                `json:"readyReason,omitempty"`
	ApprovedAt         *metav1.Time          `json:"approvedAt,omitempty"`
	FulfilledAt        *metav1.Time          `json:"fulfilledAt,omitempty"`
	FulfilmentDuration *metav1.Duration      `json:"fulfilmentDuration,omitempty"`
	// ServiceLevel is the WithinServiceLevel reason: TargetsMet, OnTrack or TargetBreached.
	ServiceLevel string `json:"serviceLevel,omitempty"`
	// Breached lists the targets the request missed.
	Breached []v1alpha1.ServiceLevelTarget `json:"breached,omitempty"`
	// Created is when the request was created (the table's AGE).
	Created metav1.Time `json:"created"`
}

func newReportCommand(o *options) *cobra.Command {
	out := newOutputFlags(false)
	cmd := &cobra.Command{
		Use:   "report AGREEMENT [-n NAMESPACE]",
		Short: "Report on a service relationship: an agreement, its usage, its service levels and its requests",
		Long: `Shows the agreement's phase and conditions, the usage of each entitlement (used/limit),
the number of requests by phase and the goods figures (from the agreement's status), and a
section on service levels (the targets, compliance over the window against the objective,
open and at-risk requests, and the most recent breaches: which request missed which target and
by how much), and a table of the agreement's requests: item, phase, Ready reason, when approved
and fulfilled, how long fulfilment took, whether the request met its targets, and its
age.`,
		Example: `  # How is the relationship between Acme Colocation and Team Payments going?
  kubectl offering report acme-payments -n team-payments
  kubectl offering report acme-payments -n team-payments -o yaml`,
		Args:              exactArgs("AGREEMENT"),
		ValidArgsFunction: o.completeAgreements,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			return runReport(cmd.Context(), o, args[0], out)
		},
	}
	out.addFlags(cmd, false)
	return cmd
}

func runReport(ctx context.Context, o *options, name string, out *outputFlags) error {
	c, ns, err := o.connect()
	if err != nil {
		return err
	}
	r, err := buildReport(ctx, c, ns, name)
	if err != nil {
		return err
	}
	if out.format() != "" {
		return out.printView(o.streams.Out, "Report", r)
	}
	return printReport(o.streams.Out, r)
}

func buildReport(ctx context.Context, c client.Client, ns, name string) (*Report, error) {
	var agr v1alpha1.ServiceAgreement
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &agr); err != nil {
		return nil, fmt.Errorf("reading ServiceAgreement %s/%s: %w", ns, name, err)
	}
	var crs v1alpha1.ConsumptionRequestList
	if err := c.List(ctx, &crs, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing ConsumptionRequests in namespace %s: %w", ns, err)
	}
	r := &Report{
		Agreement:           agr.Name,
		Namespace:           agr.Namespace,
		Offering:            string(agr.Spec.Offering),
		Consumer:            agr.Spec.Consumer.Name,
		ApprovalPolicy:      policyOrDefault(agr.Spec.ApprovalPolicy),
		ValidFrom:           agr.Spec.ValidFrom,
		ValidUntil:          agr.Spec.ValidUntil,
		Suspended:           agr.Spec.Suspended,
		Renewal:             renewalOf(&agr),
		Phase:               agr.Status.Phase,
		Conditions:          agr.Status.Conditions,
		RequestsBy:          agr.Status.Requests,
		Goods:               agr.Status.Goods,
		ServiceLevelTargets: agr.Spec.ServiceLevels,
		ServiceLevels:       agr.Status.ServiceLevels,
		Usage:               []v1alpha1.EntitlementUsage{},
		Requests:            []RequestRow{},
	}
	if r.Conditions == nil {
		r.Conditions = []metav1.Condition{}
	}
	seen := map[string]bool{}
	for _, e := range entitlementsOf(&agr) {
		row := v1alpha1.EntitlementUsage{Kind: e.Kind, Item: v1alpha1.ItemName(e.Name), Limit: e.Limit}
		if u := usageOf(&agr, e.Kind, e.Name); u != nil {
			row.Used, row.Period, row.PeriodEnds = u.Used, u.Period, u.PeriodEnds
			if row.Limit == nil {
				row.Limit = u.Limit
			}
		}
		seen[string(e.Kind)+"/"+e.Name] = true
		r.Usage = append(r.Usage, row)
	}
	// Usage the operator still reports for items no longer in the agreement.
	for _, u := range agr.Status.Usage {
		if !seen[string(u.Kind)+"/"+string(u.Item)] {
			r.Usage = append(r.Usage, u)
		}
	}

	items := crs.Items
	sort.SliceStable(items, func(i, j int) bool {
		ti, tj := items[i].CreationTimestamp, items[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return items[i].Name < items[j].Name
	})
	for i := range items {
		cr := &items[i]
		if string(cr.Spec.Agreement) != agr.Name {
			continue
		}
		kind, item := requestItem(cr)
		row := RequestRow{
			Name:               cr.Name,
			Kind:               kind,
			Item:               item,
			Plan:               planCell(cr),
			Phase:              cr.Status.Phase,
			ApprovedAt:         cr.Status.ApprovedAt,
			FulfilledAt:        cr.Status.FulfilledAt,
			FulfilmentDuration: cr.Status.FulfilmentDuration,
			Created:            cr.CreationTimestamp,
		}
		if rc := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionReady); rc != nil {
			row.ReadyReason = rc.Reason
		}
		if sc := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionWithinServiceLevel); sc != nil {
			row.ServiceLevel = sc.Reason
		}
		if cr.Status.ServiceLevel != nil {
			row.Breached = cr.Status.ServiceLevel.Breached
		}
		r.Requests = append(r.Requests, row)
	}
	return r, nil
}

func printReport(w io.Writer, r *Report) error {
	phase := string(r.Phase)
	if phase == "" {
		phase = "(not reported yet)"
	}
	validity := formatTime(r.ValidFrom) + " to " + formatTime(r.ValidUntil)
	if r.ValidFrom == nil && r.ValidUntil == nil {
		validity = "unbounded"
	}
	if err := printFields(w, "",
		[2]string{"Agreement", r.Namespace + "/" + r.Agreement},
		[2]string{"Offering", r.Offering},
		[2]string{"Consumer", r.Consumer},
		[2]string{"Approval", string(r.ApprovalPolicy)},
		[2]string{"Valid", validity},
		[2]string{"Renewal", renewalLine(r.Renewal)},
		[2]string{"Suspended", fmt.Sprint(r.Suspended)},
		[2]string{"Phase", phase},
	); err != nil {
		return err
	}

	if err := printConditions(w, "\nConditions:", r.Conditions, false); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nUsage:")
	t := newTable("KIND", "ITEM", "USED/LIMIT", "PERIOD", "RENEWS")
	for _, u := range r.Usage {
		period, renews := "-", "-"
		if u.Period != nil {
			period, renews = formatDuration(u.Period), formatTime(u.PeriodEnds)
		}
		addRow(t, nil, kindFlag(u.Kind), string(u.Item), fmt.Sprintf("%d/%s", u.Used, formatLimit(u.Limit)), period, renews)
	}
	if err := printIndented(w, "  ", t); err != nil {
		return err
	}

	rc := r.RequestsBy
	fmt.Fprintln(w, "\nRequests by phase:")
	t = newTable("TOTAL", "PENDING", "AWAITING-APPROVAL", "PROVISIONING", "FULFILLED", "DENIED", "FAILED", "REVOKED")
	addRow(t, nil, fmt.Sprint(rc.Total), fmt.Sprint(rc.Pending), fmt.Sprint(rc.AwaitingApproval), fmt.Sprint(rc.Provisioning),
		fmt.Sprint(rc.Fulfilled), fmt.Sprint(rc.Denied), fmt.Sprint(rc.Failed), fmt.Sprint(rc.Revoked))
	if err := printIndented(w, "  ", t); err != nil {
		return err
	}
	if g := r.Goods; g.Delivered+g.Accepted+g.Returned > 0 {
		fmt.Fprintf(w, "  goods: %d delivered, %d accepted, %d returned\n", g.Delivered, g.Accepted, g.Returned)
	}

	if err := printServiceLevels(w, r); err != nil {
		return err
	}

	t = newTable("NAME", "KIND", "ITEM", "PLAN", "PHASE", "READY-REASON", "APPROVED-AT", "FULFILLED-AT", "FULFILMENT", "SERVICE-LEVEL", "AGE")
	for _, q := range r.Requests {
		addRow(t, nil, q.Name, kindFlag(q.Kind), q.Item, orDash(q.Plan), string(q.Phase), q.ReadyReason,
			formatTime(q.ApprovedAt), formatTime(q.FulfilledAt), formatDuration(q.FulfilmentDuration), serviceLevelCell(q), age(q.Created))
	}
	return printSection(w, "\nRequests:", "none", t)
}

// printConditions prints a heading and a table of conditions; withAge adds
// when each last changed.
func printConditions(w io.Writer, heading string, conds []metav1.Condition, withAge bool) error {
	return printSection(w, heading, "none reported", conditionsTable(conds, withAge))
}

// printSection prints a heading and an indented table, or empty when the table has no rows.
func printSection(w io.Writer, heading, empty string, t *metav1.Table) error {
	fmt.Fprintln(w, heading)
	if len(t.Rows) == 0 {
		fmt.Fprintln(w, "  "+empty)
		return nil
	}
	return printIndented(w, "  ", t)
}

// conditionsTable is a table of conditions; withAge adds when each last changed.
func conditionsTable(conds []metav1.Condition, withAge bool) *metav1.Table {
	cols := []string{"TYPE", "STATUS", "REASON", "MESSAGE"}
	if withAge {
		cols = []string{"TYPE", "STATUS", "REASON", "AGE", "MESSAGE"}
	}
	t := newTable(cols...)
	for _, c := range conds {
		if withAge {
			addRow(t, nil, c.Type, string(c.Status), c.Reason, age(c.LastTransitionTime), c.Message)
		} else {
			addRow(t, nil, c.Type, string(c.Status), c.Reason, c.Message)
		}
	}
	return t
}

// printServiceLevels prints the targets, the record over the window and the recent breaches.
func printServiceLevels(w io.Writer, r *Report) error {
	fmt.Fprintln(w, "\nService levels:")
	tg := r.ServiceLevelTargets
	if tg == nil || (tg.ApprovalTime == nil && tg.FulfilmentTime == nil) {
		fmt.Fprintln(w, "  no targets set (spec.serviceLevels)")
		return nil
	}
	targets := [2]string{"Targets", fmt.Sprintf("approval %s, fulfilment %s, objective %s%%",
		formatDuration(tg.ApprovalTime), formatDuration(tg.FulfilmentTime), orDash(tg.Objective))}
	sl := r.ServiceLevels
	if sl == nil {
		return printFields(w, "  ", targets, [2]string{"Record", "not reported yet"})
	}
	if err := printFields(w, "  ", targets,
		[2]string{"Window", formatDuration(sl.Window)},
		[2]string{"Compliance", fmt.Sprintf("%s%% of %d measured (%d within target, %d breached); %d open, %d at risk",
			orDash(sl.Compliance), sl.Measured, sl.WithinTarget, sl.Breached, sl.Open, sl.AtRisk)},
	); err != nil {
		return err
	}
	if len(sl.RecentBreaches) == 0 {
		return nil
	}
	fmt.Fprintln(w, "  Recent breaches:")
	b := newTable("REQUEST", "ITEM", "TARGET", "LIMIT", "BREACHED-AT", "TOOK")
	for _, x := range sl.RecentBreaches {
		took := "still open"
		if x.Took != nil {
			took = formatDuration(x.Took)
		}
		addRow(b, nil, x.Request, x.Item, string(x.Target), formatDuration(&x.Limit), formatTime(&x.BreachedAt), took)
	}
	return printIndented(w, "    ", b)
}

// serviceLevelCell is a request's service level in a word: met, on-track,
// breached (with the targets missed), or "-" when it is not measured.
func serviceLevelCell(q RequestRow) string {
	switch q.ServiceLevel {
	case v1alpha1.ReasonTargetsMet:
		return "met"
	case v1alpha1.ReasonOnTrack:
		return "on-track"
	case v1alpha1.ReasonTargetBreached:
		missed := make([]string, len(q.Breached))
		for i, t := range q.Breached {
			missed[i] = strings.ToLower(string(t))
		}
		return "breached:" + strings.Join(missed, ",")
	}
	return "-"
}

// orDash prints "" as the tables' empty cell, inside a formatted cell.
func orDash(s string) string {
	if s == "" {
		return none
	}
	return s
}
