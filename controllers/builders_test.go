package controllers

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
	"github.com/offering-operator/offering-operator/internal/testutil"
)

var seq atomic.Int64

// uniq returns a name that no other test uses.
func uniq(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, seq.Add(1))
}

// fixture is one isolated world for a test: a consumer namespace, a grantable
// ClusterRole, an offering with one access item and an agreement.
type fixture struct {
	t         *testing.T
	ns        string
	role      string
	offering  *v1alpha1.ServiceOffering
	agreement *v1alpha1.ServiceAgreement
}

type fixtureOption func(*fixture)

func withMaxGrants(n int32) fixtureOption {
	return func(f *fixture) { f.agreement.Spec.Entitlements.Resources[0].MaxGrants = &n }
}

func withManualApproval() fixtureOption {
	return func(f *fixture) { f.agreement.Spec.ApprovalPolicy = v1alpha1.ApprovalManual }
}

func withRevocation(p v1alpha1.RevocationPolicy) fixtureOption {
	return func(f *fixture) { f.offering.Spec.Resources[0].RevocationPolicy = p }
}

func withValidUntil(t time.Time) fixtureOption {
	return func(f *fixture) { f.agreement.Spec.ValidUntil = &metav1.Time{Time: t} }
}

func withAllowRequestedName() fixtureOption {
	return func(f *fixture) { f.offering.Spec.Resources[0].Namespace.AllowRequestedName = true }
}

// newFixture creates the objects and waits for the agreement to be Active.
func newFixture(t *testing.T, opts ...fixtureOption) *fixture {
	t.Helper()
	requireAPIServer(t)
	f := &fixture{t: t, ns: uniq("consumer"), role: uniq("workload-operator")}
	mustCreate(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}})
	mustCreate(t, grantableRole(f.role))
	f.offering = &v1alpha1.ServiceOffering{
		ObjectMeta: metav1.ObjectMeta{Name: uniq("offering")},
		Spec: v1alpha1.ServiceOfferingSpec{
			Provider:          v1alpha1.Provider{Name: "Test Provider"},
			ProviderNamespace: "default",
			Resources: []v1alpha1.ResourceItem{{
				Name:         "space",
				ClusterRoles: []v1alpha1.ClusterRoleName{v1alpha1.ClusterRoleName(f.role)},
				Quota:        corev1.ResourceList{corev1.ResourcePods: resource.MustParse("10")},
				Limits: []corev1.LimitRangeItem{{
					Type:           corev1.LimitTypeContainer,
					DefaultRequest: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
				}},
				NetworkIsolation: v1alpha1.NetworkIsolationNamespace,
				RevocationPolicy: v1alpha1.RevocationPolicyDelete,
			}},
		},
	}
	f.agreement = &v1alpha1.ServiceAgreement{
		ObjectMeta: metav1.ObjectMeta{Name: "agreement", Namespace: f.ns},
		Spec: v1alpha1.ServiceAgreementSpec{
			Offering: v1alpha1.OfferingName(f.offering.Name),
			Consumer: v1alpha1.Consumer{Name: "Team", Subjects: []v1alpha1.Subject{
				{Kind: v1alpha1.SubjectUser, Name: "dev-" + f.ns},
				{Kind: v1alpha1.SubjectServiceAccount, Name: "deployer", Namespace: v1alpha1.NamespaceName(f.ns)},
			}},
			Entitlements:   v1alpha1.Entitlements{Resources: []v1alpha1.ResourceEntitlement{{Name: "space"}}},
			ApprovalPolicy: v1alpha1.ApprovalAutomatic,
		},
	}
	for _, o := range opts {
		o(f)
	}
	mustCreate(t, f.offering)
	mustCreate(t, f.agreement)
	waitCondition(t, f.agreement, v1alpha1.ConditionActive, metav1.ConditionTrue)
	return f
}

func grantableRole(name string) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.LabelGrantable: "true"}},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods", "configmaps"}, Verbs: []string{"get", "list", "watch", "create", "delete"}},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list", "create", "update"}},
		},
	}
}

func (f *fixture) resourceRequest(name string) *v1alpha1.ConsumptionRequest {
	return makeRequest(name, f.ns).resource("space").obj()
}

// grantedRequest creates a resource request under the fixture's agreement
// and waits until it is Ready.
func (f *fixture) grantedRequest(name string) *v1alpha1.ConsumptionRequest {
	f.t.Helper()
	cr := f.resourceRequest(name)
	mustCreate(f.t, cr)
	waitCondition(f.t, cr, v1alpha1.ConditionReady, metav1.ConditionTrue)
	return cr
}

func mustCreate(t *testing.T, obj client.Object) {
	t.Helper()
	requireAPIServer(t)
	if err := admin.Create(testCtx, obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// eventually and consistently wait for what a user would observe.
var (
	eventually   = testutil.Eventually
	consistently = testutil.Consistently
)

func get(t *testing.T, obj client.Object) {
	t.Helper()
	if err := admin.Get(testCtx, client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatalf("getting %T %s: %v", obj, obj.GetName(), err)
	}
}

func conditionsOf(obj client.Object) []metav1.Condition {
	switch o := obj.(type) {
	case *v1alpha1.ServiceOffering:
		return o.Status.Conditions
	case *v1alpha1.ServiceAgreement:
		return o.Status.Conditions
	case *v1alpha1.ConsumptionRequest:
		return o.Status.Conditions
	}
	panic(fmt.Sprintf("no conditions on %T", obj))
}

// waitCondition waits until obj has the condition with the status, and returns it.
func waitCondition(t *testing.T, obj client.Object, typ string, status metav1.ConditionStatus) *metav1.Condition {
	t.Helper()
	var found *metav1.Condition
	eventually(t, 20*time.Second, fmt.Sprintf("%T %s condition %s=%s", obj, obj.GetName(), typ, status), func() error {
		if err := admin.Get(testCtx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		c := meta.FindStatusCondition(conditionsOf(obj), typ)
		if c == nil {
			return fmt.Errorf("no %s condition yet: %+v", typ, conditionsOf(obj))
		}
		if c.Status != status {
			return fmt.Errorf("%s is %s (%s: %s)", typ, c.Status, c.Reason, c.Message)
		}
		found = c
		return nil
	})
	return found
}

func waitPhase(t *testing.T, cr *v1alpha1.ConsumptionRequest, phase v1alpha1.RequestPhase) {
	t.Helper()
	eventually(t, 20*time.Second, fmt.Sprintf("request %s phase %s", cr.Name, phase), func() error {
		if err := admin.Get(testCtx, client.ObjectKeyFromObject(cr), cr); err != nil {
			return err
		}
		if cr.Status.Phase != phase {
			return fmt.Errorf("phase is %q; conditions %+v", cr.Status.Phase, cr.Status.Conditions)
		}
		return nil
	})
}

func exists(obj client.Object) (bool, error) {
	err := admin.Get(testCtx, client.ObjectKeyFromObject(obj), obj)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// gone waits until obj is deleted, or (for namespaces, which envtest never
// finalizes without a namespace controller) is terminating.
func gone(t *testing.T, obj client.Object) {
	t.Helper()
	eventually(t, 20*time.Second, fmt.Sprintf("%T %s gone", obj, obj.GetName()), func() error {
		ok, err := exists(obj)
		if err != nil {
			return err
		}
		if _, isNS := obj.(*corev1.Namespace); ok && (!isNS || obj.GetDeletionTimestamp().IsZero()) {
			return fmt.Errorf("still exists (deletionTimestamp %v, finalizers %v)", obj.GetDeletionTimestamp(), obj.GetFinalizers())
		}
		return nil
	})
}

func nsKey(name string) types.NamespacedName { return types.NamespacedName{Name: name} }

// userClient returns a client that acts as one of the test identities.
func userClient(t *testing.T, user string) client.Client {
	t.Helper()
	c, err := client.New(testUsers[user], client.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func nsObj(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// assertNotLeaked fails the test when v, marshalled to JSON (a string is
// checked as it is), contains the secret value, plain or base64-encoded.
func assertNotLeaked(t *testing.T, secret, what string, v any) {
	t.Helper()
	text, ok := v.(string)
	if !ok {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		text = string(b)
	}
	for _, needle := range []string{secret, base64.StdEncoding.EncodeToString([]byte(secret))} {
		if strings.Contains(text, needle) {
			t.Errorf("the secret value appears in %s", what)
		}
	}
}

func setSuspended(t *testing.T, agr *v1alpha1.ServiceAgreement, v bool) {
	t.Helper()
	get(t, agr)
	patch := client.MergeFrom(agr.DeepCopy())
	agr.Spec.Suspended = v
	if err := admin.Patch(testCtx, agr, patch); err != nil {
		t.Fatal(err)
	}
}

// touch changes an annotation so that controllers look at obj again.
func touch(t *testing.T, obj client.Object) {
	t.Helper()
	get(t, obj)
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	a := obj.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a["test/touched"] = time.Now().String()
	obj.SetAnnotations(a)
	if err := admin.Patch(testCtx, obj, patch); err != nil {
		t.Fatal(err)
	}
}

// requestWrapper builds a ConsumptionRequest fluently, in the style of
// Kueue's MakeWorkload(...).Obj(): makeRequest("r", ns).resource("space").obj().
type requestWrapper struct{ v1alpha1.ConsumptionRequest }

// makeRequest starts a request under the agreement named "agreement".
func makeRequest(name, namespace string) *requestWrapper {
	return &requestWrapper{v1alpha1.ConsumptionRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       v1alpha1.ConsumptionRequestSpec{Agreement: "agreement"},
	}}
}

func (w *requestWrapper) resource(item string) *requestWrapper {
	w.Spec.Resource = &v1alpha1.ResourceRequest{Name: v1alpha1.ItemName(item)}
	return w
}

func (w *requestWrapper) goods(item string, qty int32) *requestWrapper {
	w.Spec.Goods = &v1alpha1.GoodsRequest{Name: v1alpha1.ItemName(item), Quantity: qty}
	return w
}

func (w *requestWrapper) decision(d v1alpha1.GoodsDecision) *requestWrapper {
	w.Spec.Goods.Decision = d
	return w
}

// action asks for an action item with plain parameters as name, value pairs.
func (w *requestWrapper) action(item string, nameValues ...string) *requestWrapper {
	w.Spec.Action = &v1alpha1.ActionRequest{Name: v1alpha1.ItemName(item)}
	for i := 0; i+1 < len(nameValues); i += 2 {
		w.Spec.Action.Parameters = append(w.Spec.Action.Parameters,
			v1alpha1.ParameterValue{Name: v1alpha1.ParameterName(nameValues[i]), Value: nameValues[i+1]})
	}
	return w
}

func (w *requestWrapper) secretParameter(name, secret, key string) *requestWrapper {
	w.Spec.Action.SecretParameters = append(w.Spec.Action.SecretParameters, v1alpha1.SecretParameterValue{
		Name: v1alpha1.ParameterName(name), SecretKeyRef: v1alpha1.SecretKeySelector{Name: v1alpha1.ObjectName(secret), Key: key}})
	return w
}

func (w *requestWrapper) phase(p v1alpha1.RequestPhase) *requestWrapper {
	w.Status.Phase = p
	return w
}

func (w *requestWrapper) actionRun(run *v1alpha1.ActionRun) *requestWrapper {
	w.Status.Action = run
	return w
}

func (w *requestWrapper) obj() *v1alpha1.ConsumptionRequest { return &w.ConsumptionRequest }

// agreementWrapper builds a ServiceAgreement fluently: makeAgreement("a", ns,
// offering).group("g").goodsEntitlement("kit").obj().
type agreementWrapper struct{ v1alpha1.ServiceAgreement }

// makeAgreement starts an agreement with automatic approval for the consumer "C".
func makeAgreement(name, namespace, offering string) *agreementWrapper {
	return &agreementWrapper{v1alpha1.ServiceAgreement{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: v1alpha1.ServiceAgreementSpec{Offering: v1alpha1.OfferingName(offering), Consumer: v1alpha1.Consumer{Name: "C"},
			ApprovalPolicy: v1alpha1.ApprovalAutomatic},
	}}
}

func (w *agreementWrapper) group(name string) *agreementWrapper {
	w.Spec.Consumer.Subjects = append(w.Spec.Consumer.Subjects, v1alpha1.Subject{Kind: v1alpha1.SubjectGroup, Name: name})
	return w
}

func (w *agreementWrapper) resourceEntitlement(item string) *agreementWrapper {
	w.Spec.Entitlements.Resources = append(w.Spec.Entitlements.Resources, v1alpha1.ResourceEntitlement{Name: v1alpha1.ItemName(item)})
	return w
}

func (w *agreementWrapper) goodsEntitlement(item string) *agreementWrapper {
	w.Spec.Entitlements.Goods = append(w.Spec.Entitlements.Goods, v1alpha1.GoodsEntitlement{Name: v1alpha1.ItemName(item)})
	return w
}

// approval sets the approval policy ("" leaves it to the API's default).
func (w *agreementWrapper) approval(p v1alpha1.ApprovalPolicy) *agreementWrapper {
	w.Spec.ApprovalPolicy = p
	return w
}

func (w *agreementWrapper) obj() *v1alpha1.ServiceAgreement { return &w.ServiceAgreement }
