package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

func TestParseProviderNamespaces(t *testing.T) {
	cases := []struct {
		value string
		want  []string
		// err is part of the error; "" when the value is valid.
		err string
	}{
		{value: "", want: nil},
		{value: "  ", want: nil},
		{value: "colo-provider", want: []string{"colo-provider"}},
		{value: "team-*", want: []string{"team-*"}},
		{value: "team*", want: []string{"team*"}},
		{value: " colo-provider , team-* ,ops", want: []string{"colo-provider", "team-*", "ops"}},
		{value: "a", want: []string{"a"}},
		{value: "0-team-*", want: []string{"0-team-*"}},
		{value: strings.Repeat("a", 63), want: []string{strings.Repeat("a", 63)}},

		{value: "*a", err: `entry 1 "*a": "*" may only end an entry`},
		{value: "a*b", err: `entry 1 "a*b": "*" may only end an entry`},
		{value: "team-**", err: `entry 1 "team-**": "*" may only end an entry`},
		{value: "*", err: `entry 1 "*": a lone "*" would allow every namespace`},
		{value: "ops,,team-*", err: `entry 2 "": empty entry`},
		{value: "ops,", err: `entry 2 "": empty entry`},
		{value: ",ops", err: `entry 1 "": empty entry`},
		{value: "ops, ,team-*", err: `entry 2 "": empty entry`},
		{value: "Team", err: `entry 1 "Team": not a namespace name`},
		{value: "team_a", err: `entry 1 "team_a": not a namespace name`},
		{value: "team.a", err: `entry 1 "team.a": not a namespace name`},
		{value: "team-", err: `entry 1 "team-": not a namespace name`},
		{value: "-team", err: `entry 1 "-team": not a namespace name`},
		{value: strings.Repeat("a", 64), err: "not a namespace name"},
		{value: "Team-*", err: `entry 1 "Team-*": Team- is not the beginning of a namespace name`},
		{value: "-team*", err: `entry 1 "-team*": -team is not the beginning of a namespace name`},
		{value: "ops,*a,Bad", err: `entry 2 "*a": "*" may only end an entry, as in team-*; entry 3 "Bad": not a namespace name`},
	}
	for _, tc := range cases {
		t.Run(tc.value, func(t *testing.T) {
			got, err := ParseProviderNamespaces(tc.value)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || got != nil {
					t.Errorf("ParseProviderNamespaces(%q) = %q, %v; want an error containing %q", tc.value, got, err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) || (tc.want == nil) != (got == nil) {
				t.Errorf("ParseProviderNamespaces(%q) = %q, %v; want %q", tc.value, got, err, tc.want)
			}
		})
	}
}

func TestProviderNamespaceAllowed(t *testing.T) {
	cases := []struct {
		allowed []string
		ns      string
		want    bool
	}{
		// No list allows none: only the label marks a provider namespace then.
		{nil, "anything", false},
		{nil, "colo-provider", false},
		{[]string{}, "colo-provider", false},

		{[]string{"colo-provider"}, "colo-provider", true},
		{[]string{"colo-provider"}, "colo-provider-2", false},
		{[]string{"colo-provider"}, "colo", false},
		{[]string{"colo-provider"}, "", false},

		{[]string{"team-*"}, "team-a", true},
		{[]string{"team-*"}, "team-payments-prod", true},
		{[]string{"team-*"}, "team", false},
		{[]string{"team-*"}, "teams", false},
		{[]string{"team-*"}, "a-team-a", false},
		{[]string{"team-*"}, "", false},
		{[]string{"team*"}, "team", true},
		{[]string{"team*"}, "teams", true},

		{[]string{"colo-provider", "team-*"}, "colo-provider", true},
		{[]string{"colo-provider", "team-*"}, "team-b", true},
		{[]string{"colo-provider", "team-*"}, "default", false},
		{[]string{"colo-provider", "team-*"}, "kube-system", false},
	}
	for _, tc := range cases {
		if got := providerNamespaceAllowed(tc.allowed, tc.ns); got != tc.want {
			t.Errorf("providerNamespaceAllowed(%q, %q) = %v, want %v", tc.allowed, tc.ns, got, tc.want)
		}
	}
}

func TestProviderNamespaceRefusal(t *testing.T) {
	marked := map[string]string{v1alpha1.LabelProviderNamespace: "true"}
	granted := map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelRequestNamespace: "team-a",
		v1alpha1.LabelRequestName: "rack", v1alpha1.LabelProviderNamespace: "true"}
	cases := []struct {
		name        string
		opts        Options
		ns          string
		labels, ann map[string]string
		// want is part of the refusal; nil when the namespace may be used.
		want []string
	}{
		{"closed by default", Options{}, "colo", nil, nil,
			[]string{"provider namespace colo is not marked as one", "kubectl label namespace colo " + v1alpha1.LabelProviderNamespace + "=true"}},
		{"labelled", Options{}, "colo", marked, nil, nil},
		{"labelled other than true", Options{}, "colo", map[string]string{v1alpha1.LabelProviderNamespace: "yes"}, nil, []string{"not marked"}},
		{"in the flag", Options{ProviderNamespaces: []string{"colo", "team-*"}}, "team-a", nil, nil, nil},
		{"labelled, outside the flag", Options{ProviderNamespaces: []string{"colo"}}, "team-a", marked, nil, nil},
		{"neither", Options{ProviderNamespaces: []string{"colo", "team-*"}}, "default", nil, nil,
			[]string{"provider namespace default is neither labelled", "--provider-namespaces", "(colo, team-*)", "kubectl label namespace default"}},
		// A namespace the operator granted never serves, whatever marks it.
		{"granted, labelled", Options{}, "team-a-rack", granted, nil, []string{"was granted to a consumer by the operator (request team-a/rack)"}},
		{"granted, in the flag", Options{ProviderNamespaces: []string{"team-*"}}, "team-a-rack", granted, nil, []string{"was granted to a consumer"}},
		{"grant marker only", Options{}, "team-a-rack", marked, map[string]string{v1alpha1.AnnotationGrantMarker: "x"}, []string{"was granted to a consumer"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tc.ns, Labels: tc.labels, Annotations: tc.ann}}
			got := tc.opts.providerNamespaceRefusal(ns)
			if (got == "") != (tc.want == nil) {
				t.Errorf("refusal %q, want one containing %q", got, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("refusal %q, want it to contain %q", got, w)
				}
			}
		})
	}
}

func TestProviderNamespaceReadsTheNamespace(t *testing.T) {
	c, _ := recordingClient(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "colo", Labels: map[string]string{v1alpha1.LabelProviderNamespace: "true"}}})
	opts := Options{OperatorNamespace: "offering-operator-system"}
	for name, want := range map[string]string{
		"colo": "", "missing": v1alpha1.ReasonProviderNamespaceNotFound, "offering-operator-system": v1alpha1.ReasonProviderNamespaceForbidden,
	} {
		ns, reason, msg, err := opts.providerNamespace(context.Background(), c, name)
		if err != nil || reason != want || (reason == "") != (ns != nil) {
			t.Errorf("providerNamespace(%s) = %v, %q, %q, %v; want reason %q", name, ns, reason, msg, err, want)
		}
	}
}

func TestSetupRefusesMalformedProviderNamespaces(t *testing.T) {
	// Setup checks the list before it touches the manager.
	err := Setup(nil, Options{ProviderNamespaces: []string{"team-*", "a*b"}})
	if err == nil || !strings.Contains(err.Error(), `entry 2 "a*b"`) {
		t.Errorf("Setup with a malformed entry: %v, want an error naming it", err)
	}
}

// callLog records the calls a fake client receives, as "verb kind namespace/name".
type callLog struct{ calls []string }

func (l *callLog) add(verb string, obj client.Object, key client.ObjectKey) {
	l.calls = append(l.calls, fmt.Sprintf("%s %T %s", verb, obj, key))
}

// touching lists the recorded calls in namespace ns, or with ns "" every write.
func (l *callLog) touching(ns string) []string {
	var out []string
	for _, c := range l.calls {
		if (ns == "" && !strings.HasPrefix(c, "get ") && !strings.HasPrefix(c, "list ")) || (ns != "" && strings.Contains(c, " "+ns+"/")) {
			out = append(out, c)
		}
	}
	return out
}

// wantUntouched fails t when a call reached the refused provider namespace
// ns, or anything was written anywhere (nothing delivered is removed either).
func (l *callLog) wantUntouched(t *testing.T, ns string) {
	t.Helper()
	if calls := l.touching(ns); len(calls) != 0 {
		t.Errorf("calls in the refused provider namespace: %q", calls)
	}
	if writes := l.touching(""); len(writes) != 0 {
		t.Errorf("writes: %q, want none", writes)
	}
}

// offeringIn is an offering "colo" with provider namespace provider, and an
// agreement "agreement" for it in namespace consumer.
func offeringIn(provider, consumer string) (*v1alpha1.ServiceOffering, *v1alpha1.ServiceAgreement) {
	return &v1alpha1.ServiceOffering{ObjectMeta: metav1.ObjectMeta{Name: "colo"},
			Spec: v1alpha1.ServiceOfferingSpec{ProviderNamespace: v1alpha1.NamespaceName(provider)}},
		&v1alpha1.ServiceAgreement{ObjectMeta: metav1.ObjectMeta{Name: "agreement", Namespace: consumer},
			Spec: v1alpha1.ServiceAgreementSpec{Offering: "colo"}}
}

// recordingClient is a fake client holding objs that logs every call.
func recordingClient(t *testing.T, objs ...client.Object) (client.WithWatch, *callLog) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	log := &callLog{}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			log.add("get", obj, key)
			return c.Get(ctx, key, obj, opts...)
		},
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			lo := (&client.ListOptions{}).ApplyOptions(opts)
			log.calls = append(log.calls, fmt.Sprintf("list %T %s/", list, lo.Namespace))
			return c.List(ctx, list, opts...)
		},
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			log.add("create", obj, client.ObjectKeyFromObject(obj))
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			log.add("update", obj, client.ObjectKeyFromObject(obj))
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			log.add("patch", obj, client.ObjectKeyFromObject(obj))
			return c.Patch(ctx, obj, patch, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			log.add("delete", obj, client.ObjectKeyFromObject(obj))
			return c.Delete(ctx, obj, opts...)
		},
	}).Build()
	return c, log
}

// wantRefused checks that s reports ProviderNamespaceForbidden, False, on
// each of types, with a message naming the namespace, the list and the flag.
func wantRefused(t *testing.T, s *requestState, ns string, allowed []string, types ...string) {
	t.Helper()
	for _, typ := range types {
		c := meta.FindStatusCondition(s.status.Conditions, typ)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonProviderNamespaceForbidden {
			t.Errorf("%s = %+v, want False with reason %s", typ, c, v1alpha1.ReasonProviderNamespaceForbidden)
			continue
		}
		for _, w := range []string{"provider namespace " + ns + " ", "--provider-namespaces", "(" + strings.Join(allowed, ", ") + ")"} {
			if !strings.Contains(c.Message, w) {
				t.Errorf("%s message %q does not contain %q", typ, c.Message, w)
			}
		}
	}
}

// TestGoodsSourceNotReadOutsideProviderNamespaces: the request controller
// checks the provider namespace again before it reads a goods source. Refused,
// it reads nothing there, writes nothing, and leaves goods already delivered
// in place: the request reports ProviderNamespaceForbidden and waits.
func TestGoodsSourceNotReadOutsideProviderNamespaces(t *testing.T) {
	const provider, consumer = "outside", "team-payments"
	allowed := []string{"colo-provider", "team-*"}
	source := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "device-credentials", Namespace: provider},
		Data: map[string][]byte{"password": []byte("s3cr3t")}}
	off, agr := offeringIn(provider, consumer)
	item := &v1alpha1.GoodsItem{Name: "ha-devices", Acceptance: v1alpha1.AcceptanceRequired,
		Sources: []v1alpha1.GoodsSource{{Kind: v1alpha1.GoodsSourceSecret, Name: "device-credentials"}}}
	newRequest := func() *v1alpha1.ConsumptionRequest {
		return &v1alpha1.ConsumptionRequest{
			ObjectMeta: metav1.ObjectMeta{Name: "ha", Namespace: consumer, UID: "uid-ha", Generation: 1},
			Spec:       v1alpha1.ConsumptionRequestSpec{Agreement: "agreement", Goods: &v1alpha1.GoodsRequest{Name: "ha-devices", Quantity: 1}},
		}
	}

	// deliverRefused runs deliver for cr and checks that nothing in the
	// provider namespace was touched and nothing was written.
	deliverRefused := func(t *testing.T, opts Options, cr *v1alpha1.ConsumptionRequest, objs ...client.Object) (client.Client, *requestState) {
		t.Helper()
		c, log := recordingClient(t, append(objs, nsObj(provider))...)
		r := &RequestReconciler{reconciler: reconciler{Client: c, APIReader: c, Recorder: events.NewFakeRecorder(10), Options: opts}}
		s := newRequestState(cr, time.Now())
		if _, err := setRequestStatus(s, r.deliver(context.Background(), cr, agr, off, item, s)); err != nil {
			t.Fatal(err)
		}
		log.wantUntouched(t, provider)
		return c, s
	}

	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"not in --provider-namespaces", Options{ProviderNamespaces: allowed}},
		{"the operator's own", Options{OperatorNamespace: provider}},
		{"not marked", Options{}},
	} {
		t.Run(tc.name+", nothing delivered yet", func(t *testing.T) {
			_, s := deliverRefused(t, tc.opts, newRequest(), source.DeepCopy())
			if s.status.Phase != v1alpha1.RequestProvisioning || len(s.status.Delivered) != 0 || s.status.TransferredAt != nil {
				t.Errorf("phase %s, delivered %v, transferredAt %v; want Provisioning and nothing delivered",
					s.status.Phase, s.status.Delivered, s.status.TransferredAt)
			}
			if tc.opts.ProviderNamespaces != nil {
				wantRefused(t, s, provider, allowed, v1alpha1.ConditionReady, v1alpha1.ConditionFulfilled, v1alpha1.ConditionTransferred)
			} else if c := meta.FindStatusCondition(s.status.Conditions, v1alpha1.ConditionReady); c == nil ||
				c.Reason != v1alpha1.ReasonProviderNamespaceForbidden || !strings.Contains(c.Message, "provider namespace "+provider+" is") {
				t.Errorf("Ready = %+v, want ProviderNamespaceForbidden naming the namespace", c)
			}
		})
	}

	t.Run("already delivered", func(t *testing.T) {
		cr := newRequest()
		copyName := goodsCopyName(cr, item.Sources[0])
		delivered := desiredCopy(cr, agr, item.Sources[0], source, childLabels(cr, "colo", item.Name))
		transferred := metav1.NewTime(time.Now().Add(-time.Minute))
		cr.Status = v1alpha1.ConsumptionRequestStatus{
			Phase:         v1alpha1.RequestDelivered,
			TransferredAt: &transferred,
			Delivered:     []v1alpha1.DeliveredObject{{Kind: v1alpha1.GoodsSourceSecret, Name: copyName, Namespace: consumer}},
		}
		c, s := deliverRefused(t, Options{ProviderNamespaces: allowed}, cr, source.DeepCopy(), delivered)
		var still corev1.Secret
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: consumer, Name: copyName}, &still); err != nil {
			t.Errorf("the delivered copy is gone: %v", err)
		}
		if s.status.Phase != v1alpha1.RequestDelivered || len(s.status.Delivered) != 1 || s.status.TransferredAt == nil {
			t.Errorf("phase %s, delivered %v, transferredAt %v; want the delivery kept as it was",
				s.status.Phase, s.status.Delivered, s.status.TransferredAt)
		}
		wantRefused(t, s, provider, allowed, v1alpha1.ConditionReady, v1alpha1.ConditionFulfilled)
	})

	t.Run("allowed", func(t *testing.T) {
		c, _ := recordingClient(t, source.DeepCopy(), nsObj(provider))
		r := &RequestReconciler{reconciler: reconciler{Client: c, APIReader: c, Recorder: events.NewFakeRecorder(10),
			Options: Options{ProviderNamespaces: append([]string{provider}, allowed...)}}}
		cr := newRequest()
		s := newRequestState(cr, time.Now())
		if _, err := setRequestStatus(s, r.deliver(context.Background(), cr, agr, off, item, s)); err != nil {
			t.Fatal(err)
		}
		if s.status.Phase != v1alpha1.RequestDelivered || len(s.status.Delivered) != 1 {
			t.Errorf("phase %s, delivered %v; want the goods delivered from an allowed namespace", s.status.Phase, s.status.Delivered)
		}
	})
}

// TestActionNotStartedOutsideProviderNamespaces: the request controller checks
// the provider namespace again before it creates an action's Job or the copy
// of its secret parameters. Refused, it creates nothing, reads no secret
// parameter, keeps the entitlement, and the request reports
// ProviderNamespaceForbidden and waits.
func TestActionNotStartedOutsideProviderNamespaces(t *testing.T) {
	const provider, consumer = "outside", "team-payments"
	allowed := []string{"colo-provider", "team-*"}
	token := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "install-token", Namespace: consumer},
		Data: map[string][]byte{"token": []byte("t0ken")}}
	off, agr := offeringIn(provider, consumer)
	item := &v1alpha1.ActionItem{Name: "install", Type: v1alpha1.ActionAutomated,
		Parameters: []v1alpha1.ActionParameterSpec{{Name: "RACK", Required: true}, {Name: "TOKEN", Secret: true}},
		Job:        &v1alpha1.ActionJob{Image: "busybox:1.36", Command: []string{"sh", "-c", `install "$RACK"`}, ServiceAccountName: "installer"}}
	cr := &v1alpha1.ConsumptionRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "install-a", Namespace: consumer, UID: "uid-install", Generation: 1},
		Spec: v1alpha1.ConsumptionRequestSpec{Agreement: "agreement", Action: &v1alpha1.ActionRequest{
			Name:       "install",
			Parameters: []v1alpha1.ParameterValue{{Name: "RACK", Value: "rack-a"}},
			SecretParameters: []v1alpha1.SecretParameterValue{{Name: "TOKEN",
				SecretKeyRef: v1alpha1.SecretKeySelector{Name: "install-token", Key: "token"}}},
		}},
	}
	admitted := metav1.NewTime(time.Now().Add(-time.Minute))
	cr.Status.AdmittedAt = &admitted

	run := func(opts Options) (*requestState, ctrl.Result, *callLog, client.Client) {
		ns := nsObj(provider)
		ns.Annotations = map[string]string{v1alpha1.AnnotationActionServiceAccounts: "installer"}
		// The request as the API server holds it: the Job is built from its live spec.action.
		c, log := recordingClient(t, token.DeepCopy(), ns, cr.DeepCopy())
		r := &RequestReconciler{reconciler: reconciler{Client: c, APIReader: c, Recorder: events.NewFakeRecorder(10), Options: opts}}
		s := newRequestState(cr, time.Now())
		res, err := setRequestStatus(s, r.runAction(context.Background(), cr, agr, off, item, s))
		if err != nil {
			t.Fatal(err)
		}
		return s, res, log, c
	}

	s, res, log, c := run(Options{ProviderNamespaces: allowed})
	if res.RequeueAfter != secretParameterRecheck {
		t.Errorf("requeue after %s, want %s: namespaces are not watched, a cluster admin's mark is looked for again", res.RequeueAfter, secretParameterRecheck)
	}
	log.wantUntouched(t, provider)
	if calls := log.touching(consumer); len(calls) != 0 {
		t.Errorf("the consumer's secret parameter was read: %q", calls)
	}
	var jobs batchv1.JobList
	if err := c.List(context.Background(), &jobs); err != nil || len(jobs.Items) != 0 {
		t.Errorf("Jobs: %d (err %v), want none", len(jobs.Items), err)
	}
	if s.status.Phase != v1alpha1.RequestProvisioning || s.status.Action != nil || s.status.AdmittedAt == nil {
		t.Errorf("phase %s, action %+v, admittedAt %v; want Provisioning, not started, still admitted",
			s.status.Phase, s.status.Action, s.status.AdmittedAt)
	}
	wantRefused(t, s, provider, allowed, v1alpha1.ConditionReady, v1alpha1.ConditionFulfilled)
	if c := meta.FindStatusCondition(s.status.Conditions, v1alpha1.ConditionReady); !strings.Contains(c.Message, "no Job or secret copy was created") {
		t.Errorf("Ready message %q does not say that nothing was created", c.Message)
	}

	// Allowed: the Job is created in the provider namespace. (Reading the
	// secret parameter also needs the creator's SubjectAccessReview, which a
	// fake client cannot answer: request_secret_access_test.go tests it.)
	cr.Spec.Action.SecretParameters = nil
	s, _, _, c = run(Options{ProviderNamespaces: []string{"out*"}})
	if err := c.List(context.Background(), &jobs, client.InNamespace(provider)); err != nil || len(jobs.Items) != 1 {
		t.Errorf("Jobs in %s: %d (err %v), want the action's Job", provider, len(jobs.Items), err)
	}
	if s.status.Action == nil || s.status.Action.StartedAt == nil {
		t.Errorf("action %+v, want started", s.status.Action)
	}
}
