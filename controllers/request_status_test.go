package controllers

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
	"github.com/offering-operator/offering-operator/internal/testutil"
)

// readyCase is one Ready reason a kind reports, in one phase, and how
// kstatus (Flux, kubectl-style waiters) must read the status the operator
// writes for it. For requests, kind is the outcome a step returns with it.
type readyCase struct {
	reason  string
	kind    outcomeKind
	phase   string
	kstatus status.Status
}

const (
	ksCurrent    = status.CurrentStatus
	ksInProgress = status.InProgressStatus
	ksFailed     = status.FailedStatus
)

// requestReadyCases is every Ready reason of a ConsumptionRequest. A new
// reason fails TestEveryReadyReasonHasItsKstatus until it is added here;
// whether it stalls comes from the kind of outcome its step returns.
var requestReadyCases = []readyCase{
	{v1alpha1.ReasonAgreementNotFound, waiting, "Pending", ksInProgress},
	{v1alpha1.ReasonAgreementNotActive, waiting, "Pending", ksInProgress},
	{v1alpha1.ReasonItemNotEntitled, stalled, "Denied", ksFailed},
	{v1alpha1.ReasonItemNotOffered, stalled, "Denied", ksFailed},
	{v1alpha1.ReasonItemNotOffered, stalled, "Provisioning", ksFailed},
	{v1alpha1.ReasonItemNotOffered, stalled, "Fulfilled", ksFailed},
	{v1alpha1.ReasonRevisionNotFound, stalled, "Pending", ksFailed},
	{v1alpha1.ReasonRevisionNotFound, stalled, "Fulfilled", ksFailed},
	{v1alpha1.ReasonEntitlementExhausted, stalled, "Denied", ksFailed},
	{v1alpha1.ReasonRequestedNameNotAllowed, stalled, "Denied", ksFailed},
	{v1alpha1.ReasonDeniedByProvider, stalled, "Denied", ksFailed},
	{v1alpha1.ReasonPlanNotAllowed, stalled, "Denied", ksFailed},
	{v1alpha1.ReasonPlanNotAllowed, stalled, "Fulfilled", ksFailed},
	{v1alpha1.ReasonPlanChangeNotAllowed, stalled, "Fulfilled", ksFailed},
	{v1alpha1.ReasonDowngradeBlocked, waiting, "Fulfilled", ksInProgress},
	{v1alpha1.ReasonAwaitingApproval, waiting, "AwaitingApproval", ksInProgress},
	{v1alpha1.ReasonAwaitingApproval, waiting, "Fulfilled", ksInProgress},
	{v1alpha1.ReasonApprovalSuperseded, waiting, "AwaitingApproval", ksInProgress},
	{v1alpha1.ReasonProvisioning, waiting, "Provisioning", ksInProgress},
	{v1alpha1.ReasonGranted, ready, "Fulfilled", ksCurrent},
	{v1alpha1.ReasonNamespaceConflict, stalled, "Failed", ksFailed},
	{v1alpha1.ReasonNamespaceTerminating, waiting, "Provisioning", ksInProgress},
	{v1alpha1.ReasonGrantFailed, transient, "Provisioning", ksInProgress},
	{v1alpha1.ReasonGrantFailed, transient, "Fulfilled", ksInProgress},
	{v1alpha1.ReasonAccessDenied, stalled, "Provisioning", ksFailed},
	{v1alpha1.ReasonRevoked, waiting, "Revoked", ksInProgress},
	{v1alpha1.ReasonGracePeriod, waiting, "Revoked", ksInProgress},
	{v1alpha1.ReasonAwaitingAcceptance, waiting, "Delivered", ksInProgress},
	{v1alpha1.ReasonAcceptedByConsumer, ready, "Accepted", ksCurrent},
	{v1alpha1.ReasonAcceptedImplicitly, ready, "Accepted", ksCurrent},
	{v1alpha1.ReasonAcceptanceDeadlinePassed, ready, "Accepted", ksCurrent},
	{v1alpha1.ReasonAcceptanceDeadlinePassed, stalled, "Rejected", ksFailed},
	{v1alpha1.ReasonRejectedByConsumer, closed, "Rejected", ksInProgress},
	{v1alpha1.ReasonSourceNotFound, stalled, "Provisioning", ksFailed},
	{v1alpha1.ReasonSourceNotAllowed, stalled, "Provisioning", ksFailed},
	{v1alpha1.ReasonCopyConflict, stalled, "Provisioning", ksFailed},
	{v1alpha1.ReasonDeliveryFailed, transient, "Provisioning", ksInProgress},
	{v1alpha1.ReasonInvalidParameters, stalled, "Failed", ksFailed},
	{v1alpha1.ReasonSecretParameterNotFound, waiting, "Provisioning", ksInProgress},
	{v1alpha1.ReasonActionStartFailed, transient, "Provisioning", ksInProgress},
	{v1alpha1.ReasonActionRunning, waiting, "Provisioning", ksInProgress},
	{v1alpha1.ReasonActionSucceeded, ready, "Fulfilled", ksCurrent},
	{v1alpha1.ReasonActionFailed, stalled, "Failed", ksFailed},
	{v1alpha1.ReasonActionTimedOut, stalled, "Failed", ksFailed},
	{v1alpha1.ReasonAwaitingProvider, waiting, "Provisioning", ksInProgress},
	{v1alpha1.ReasonActionJobConflict, waiting, "Provisioning", ksInProgress},
	{v1alpha1.ReasonUnsafeParameterExpansion, stalled, "Provisioning", ksFailed},
	{v1alpha1.ReasonUnsupportedItemKind, stalled, "Provisioning", ksFailed},
	{v1alpha1.ReasonProviderNamespaceForbidden, stalled, "Provisioning", ksFailed},
	{v1alpha1.ReasonProviderNamespaceNotFound, stalled, "Provisioning", ksFailed},
	{v1alpha1.ReasonActionServiceAccountForbidden, stalled, "Provisioning", ksFailed},
	{v1alpha1.ReasonSecretNotReadable, stalled, "Provisioning", ksFailed},
}

// agreementReadyCases is every Ready reason of a ServiceAgreement (kind unused).
var agreementReadyCases = []readyCase{
	{reason: v1alpha1.ReasonActive, phase: "Active", kstatus: ksCurrent},
	{reason: v1alpha1.ReasonEntitlementUnknownItem, phase: "Active", kstatus: ksFailed},
	{reason: v1alpha1.ReasonRevisionNotFound, phase: "Active", kstatus: ksFailed},
	{reason: v1alpha1.ReasonSuspended, phase: "Suspended", kstatus: ksInProgress},
	{reason: v1alpha1.ReasonExpired, phase: "Expired", kstatus: ksFailed},
	{reason: v1alpha1.ReasonNotYetValid, phase: "Pending", kstatus: ksInProgress},
	{reason: v1alpha1.ReasonOfferingNotFound, phase: "Pending", kstatus: ksInProgress},
	{reason: v1alpha1.ReasonOfferingNotReady, phase: "Pending", kstatus: ksInProgress},
	{reason: v1alpha1.ReasonTerminating, phase: "Terminating", kstatus: ksInProgress},
}

// offeringReadyCases is every Ready reason of a ServiceOffering.
var offeringReadyCases = []readyCase{
	{reason: v1alpha1.ReasonValid, kstatus: ksCurrent},
	{reason: v1alpha1.ReasonClusterRoleNotFound, kstatus: ksFailed},
	{reason: v1alpha1.ReasonClusterRoleForbidden, kstatus: ksFailed},
	{reason: v1alpha1.ReasonProviderNamespaceForbidden, kstatus: ksFailed},
	{reason: v1alpha1.ReasonProviderNamespaceNotFound, kstatus: ksFailed},
	{reason: v1alpha1.ReasonGoodsSourceNotFound, kstatus: ksFailed},
	{reason: v1alpha1.ReasonUnsafeParameterExpansion, kstatus: ksFailed},
	{reason: v1alpha1.ReasonActionServiceAccountForbidden, kstatus: ksFailed},
}

// notReadyReasons are the reasons of conditions other than Ready.
var notReadyReasons = []string{
	v1alpha1.ReasonTargetsMet, v1alpha1.ReasonOnTrack, v1alpha1.ReasonTargetBreached, v1alpha1.ReasonObjectiveMet,
	v1alpha1.ReasonObjectiveMissed, v1alpha1.ReasonNoneMeasured, v1alpha1.ReasonReconciling, v1alpha1.ReasonAutoApproved,
	v1alpha1.ReasonVerified, v1alpha1.ReasonDelivered, v1alpha1.ReasonExhausted, v1alpha1.ReasonAvailable,
	v1alpha1.ReasonRenewalDue, v1alpha1.ReasonNotDue, v1alpha1.ReasonAutoRenews,
}

// TestEveryReadyReasonHasItsKstatus: every reason the API declares is in one
// of the tables above; the status the operator writes for each reads as the
// table says in kstatus; and the Argo CD health check's list of reasons that
// need a person is exactly the request reasons that stall a request that has
// not ended.
func TestEveryReadyReasonHasItsKstatus(t *testing.T) {
	known := append([]string{}, notReadyReasons...)
	for _, tables := range [][]readyCase{requestReadyCases, agreementReadyCases, offeringReadyCases} {
		for _, c := range tables {
			known = append(known, c.reason)
		}
	}
	for name, value := range apiReasons(t) {
		if !slices.Contains(known, value) {
			t.Errorf("v1alpha1.%s (%q) is in no table of %s: add it with the kstatus it must read as", name, value, t.Name())
		}
	}
	for _, c := range requestReadyCases {
		if got := requestKstatus(t, c); got != c.kstatus {
			t.Errorf("request %s in phase %s (%v outcome): kstatus %s, want %s", c.reason, c.phase, c.kind, got, c.kstatus)
		}
	}
	for _, c := range agreementReadyCases {
		if got := agreementKstatus(t, c); got != c.kstatus {
			t.Errorf("agreement %s in phase %s: kstatus %s, want %s", c.reason, c.phase, got, c.kstatus)
		}
	}
	for _, c := range offeringReadyCases {
		if got := offeringKstatus(t, c); got != c.kstatus {
			t.Errorf("offering %s: kstatus %s, want %s", c.reason, got, c.kstatus)
		}
	}
	checkArgoNeedsAttention(t)
}

// TestStepsReturnTheKindsInTheTable: every outcome a step builds with a
// reason constant (directly, or through a helper that passes its reason on)
// has a row of that reason and kind in requestReadyCases, so the table says
// what the code does.
func TestStepsReturnTheKindsInTheTable(t *testing.T) {
	for reason, kinds := range outcomeKindsInCode(t) {
		for kind := range kinds {
			if !slices.ContainsFunc(requestReadyCases, func(c readyCase) bool { return c.reason == reason && c.kind == kind }) {
				t.Errorf("a step returns reason %s as a %v outcome, which requestReadyCases does not list", reason, kind)
			}
		}
	}
}

func (k outcomeKind) String() string {
	return [...]string{"proceed", "ready", "waiting", "stalled", "closed", "settled", "transient"}[k]
}

func kstatusOf(t *testing.T, obj runtime.Object) status.Status {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	res, err := status.Compute(&unstructured.Unstructured{Object: m})
	if err != nil {
		t.Fatal(err)
	}
	return res.Status
}

func requestKstatus(t *testing.T, c readyCase) status.Status {
	cr := &v1alpha1.ConsumptionRequest{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ConsumptionRequest"},
		ObjectMeta: metav1.ObjectMeta{Name: "req", Namespace: "team", Generation: 1},
		Spec:       v1alpha1.ConsumptionRequestSpec{Agreement: "agr", Resource: &v1alpha1.ResourceRequest{Name: "rack"}},
	}
	s := newRequestState(cr, time.Now())
	if _, err := setRequestStatus(s, newOutcome(c.kind, v1alpha1.RequestPhase(c.phase), c.reason, "the message")); err != nil {
		t.Fatal(err)
	}
	s.status.ObservedGeneration = cr.Generation
	cr.Status = s.status
	return kstatusOf(t, cr)
}

func agreementKstatus(t *testing.T, c readyCase) status.Status {
	agr := &v1alpha1.ServiceAgreement{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ServiceAgreement"},
		ObjectMeta: metav1.ObjectMeta{Name: "agr", Namespace: "team", Generation: 1},
		Spec:       v1alpha1.ServiceAgreementSpec{Offering: "off"},
	}
	var off *v1alpha1.ServiceOffering
	if c.reason == v1alpha1.ReasonEntitlementUnknownItem {
		agr.Spec.Entitlements.Resources = []v1alpha1.ResourceEntitlement{{Name: "gone"}}
		off = &v1alpha1.ServiceOffering{ObjectMeta: metav1.ObjectMeta{Name: "off"}}
	}
	lc := lifecycle{Phase: v1alpha1.AgreementPhase(c.phase), Reason: c.reason, Message: "the message"}
	var pin revisionPin
	if c.reason == v1alpha1.ReasonRevisionNotFound {
		// In force, pinned to a revision that does not exist (agreement_controller.go).
		lc.Reason, pin = v1alpha1.ReasonActive, revisionPin{reason: c.reason, message: "the message"}
	}
	st, _ := agreementStatus(agr, off, nil, nil, lc, time.Now())
	pin.report(agr, st, lc, time.Now())
	st.ObservedGeneration = agr.Generation
	agr.Status = *st
	return kstatusOf(t, agr)
}

func offeringKstatus(t *testing.T, c readyCase) status.Status {
	off := &v1alpha1.ServiceOffering{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ServiceOffering"},
		ObjectMeta: metav1.ObjectMeta{Name: "off", Generation: 1},
	}
	setOfferingConditions(off, &off.Status, c.reason, "the message", metav1.Now())
	return kstatusOf(t, off)
}

// apiReasons are the Reason constants of api/v1alpha1, by name.
func apiReasons(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "api", "v1alpha1", "conditions.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Values) != 1 || !strings.HasPrefix(vs.Names[0].Name, "Reason") {
			return true
		}
		if lit, ok := vs.Values[0].(*ast.BasicLit); ok {
			out[vs.Names[0].Name], _ = strconv.Unquote(lit.Value)
		}
		return true
	})
	if len(out) == 0 {
		t.Fatal("no Reason constants found in api/v1alpha1/conditions.go")
	}
	return out
}

// checkArgoNeedsAttention compares the Argo CD health check's needsAttention
// list (Degraded while the request has not ended) with the reasons that
// stall a request in a phase that has not ended.
func checkArgoNeedsAttention(t *testing.T) {
	t.Helper()
	lua, err := os.ReadFile(filepath.Join("..", "config", "gitops", "argocd", "health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)local needsAttention = \{(.*?)\n\}`).FindSubmatch(lua)
	if block == nil {
		t.Fatal("no needsAttention table in the Argo CD health check")
	}
	var argo []string
	for _, m := range regexp.MustCompile(`(?m)^\s*(\w+) = true`).FindAllSubmatch(block[1], -1) {
		argo = append(argo, string(m[1]))
	}
	var want []string
	for _, c := range requestReadyCases {
		ended := slices.Contains([]string{"Denied", "Failed", "Rejected"}, c.phase)
		if c.kind == stalled && !ended && !slices.Contains(want, c.reason) {
			want = append(want, c.reason)
		}
	}
	slices.Sort(argo)
	slices.Sort(want)
	if !slices.Equal(argo, want) {
		t.Errorf("Argo CD needsAttention = %v, want the reasons that stall a request that has not ended: %v", argo, want)
	}
}

// outcomeKindsInCode finds, in the package's source, the kind of outcome
// each reason constant is returned with: by the outcome constructors, and by
// functions that pass a reason parameter on to one.
func outcomeKindsInCode(t *testing.T) map[string]map[outcomeKind]bool {
	t.Helper()
	_, parsed := testutil.PackageSources(t, ".")
	// passes: function name -> position of its reason argument -> kinds.
	passes := map[string]map[int]map[outcomeKind]bool{
		"readyAs": {1: {ready: true}}, "waitFor": {1: {waiting: true}}, "stall": {1: {stalled: true}},
		"closeAs": {1: {closed: true}}, "failing": {1: {transient: true}},
	}
	for range 4 { // wrappers of wrappers: a few rounds reach the fixed point
		for _, f := range parsed {
			ast.Inspect(f, func(n ast.Node) bool { learnWrapper(n, passes); return true })
		}
	}
	found := map[string]map[outcomeKind]bool{}
	for _, f := range parsed {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			for pos, kinds := range passes[calleeName(call)] {
				if pos < len(call.Args) {
					if sel, ok := call.Args[pos].(*ast.SelectorExpr); ok && isAPIReason(sel) {
						reason := apiReasonValue(t, sel.Sel.Name)
						if found[reason] == nil {
							found[reason] = map[outcomeKind]bool{}
						}
						for k := range kinds {
							found[reason][k] = true
						}
					}
				}
			}
			return true
		})
	}
	return found
}

// learnWrapper records a function (declared, or a literal assigned to a
// name) that passes one of its parameters to a known function as the reason.
func learnWrapper(n ast.Node, passes map[string]map[int]map[outcomeKind]bool) {
	var name string
	var typ *ast.FuncType
	var body *ast.BlockStmt
	switch d := n.(type) {
	case *ast.FuncDecl:
		name, typ, body = d.Name.Name, d.Type, d.Body
	case *ast.AssignStmt:
		if len(d.Lhs) != 1 || len(d.Rhs) != 1 {
			return
		}
		id, ok1 := d.Lhs[0].(*ast.Ident)
		lit, ok2 := d.Rhs[0].(*ast.FuncLit)
		if !ok1 || !ok2 {
			return
		}
		name, typ, body = id.Name, lit.Type, lit.Body
	default:
		return
	}
	if body == nil {
		return
	}
	var params []string
	for _, field := range typ.Params.List {
		for _, id := range field.Names {
			params = append(params, id.Name)
		}
	}
	ast.Inspect(body, func(m ast.Node) bool {
		call, ok := m.(*ast.CallExpr)
		if !ok {
			return true
		}
		for pos, kinds := range passes[calleeName(call)] {
			if pos >= len(call.Args) {
				continue
			}
			id, ok := call.Args[pos].(*ast.Ident)
			if p := slices.Index(params, idName(id, ok)); p >= 0 {
				if passes[name] == nil {
					passes[name] = map[int]map[outcomeKind]bool{}
				}
				if passes[name][p] == nil {
					passes[name][p] = map[outcomeKind]bool{}
				}
				for k := range kinds {
					passes[name][p][k] = true
				}
			}
		}
		return true
	})
}

// isAPIReason reports whether e is v1alpha1.ReasonSomething.
func isAPIReason(e *ast.SelectorExpr) bool {
	pkg, ok := e.X.(*ast.Ident)
	return ok && pkg.Name == "v1alpha1" && strings.HasPrefix(e.Sel.Name, "Reason")
}

func idName(id *ast.Ident, ok bool) string {
	if !ok {
		return ""
	}
	return id.Name
}

func calleeName(call *ast.CallExpr) string {
	switch fn := call.Fun.(type) {
	case *ast.Ident:
		return fn.Name
	case *ast.SelectorExpr:
		return fn.Sel.Name
	}
	return ""
}

var reasonValues map[string]string

func apiReasonValue(t *testing.T, name string) string {
	if reasonValues == nil {
		reasonValues = apiReasons(t)
	}
	return reasonValues[name]
}
