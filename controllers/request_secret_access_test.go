package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// TestSecretParametersNeedACreatorWhoMayReadThem: a consumer bound to the
// shipped consumer role alone, who may not read the Secrets of its own
// namespace, names one in secretParameters. The operator must not read it
// with its own rights and hand it to the provider's Job.
func TestSecretParametersNeedACreatorWhoMayReadThem(t *testing.T) {
	w := newActionWorld(t)
	cr := w.installRequest("confused-deputy")
	if err := userClient(t, consumerUser).Create(testCtx, cr); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the request to be refused its secret parameter", func() error {
		c := waitCondition(t, cr, v1alpha1.ConditionReady, metav1.ConditionFalse)
		if c.Reason != v1alpha1.ReasonSecretNotReadable {
			return fmt.Errorf("phase %s Ready %+v", cr.Status.Phase, c)
		}
		if !strings.Contains(c.Message, consumerUser) || !strings.Contains(c.Message, w.tokenSecret) {
			t.Errorf("the message names neither the creator nor the Secret: %s", c.Message)
		}
		return nil
	})
	consistently(t, 2*time.Second, "nothing read or started", func() error {
		for _, obj := range []client.Object{
			&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: w.provider, Name: actionJobName(cr)}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: w.provider, Name: actionSecretName(cr)}},
		} {
			if ok, err := exists(obj); ok || err != nil {
				return fmt.Errorf("%T %s exists (%w)", obj, obj.GetName(), err)
			}
		}
		return nil
	})

	// The same request by someone who may read the Secret runs.
	allowed := w.installRequest("may-read")
	w.startedJob(t, allowed)
	if allowed.Spec.Creator == nil || allowed.Spec.Creator.Username == consumerUser {
		t.Fatalf("creator %+v", allowed.Spec.Creator)
	}
}

// TestSecretAccessRefusal covers the cases envtest cannot reach: a request
// without a creator, and a cluster without the policy that guarantees it.
func TestSecretAccessRefusal(t *testing.T) {
	const ns, secret, reader = "team", "token", "reader"
	cr := &v1alpha1.ConsumptionRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: ns},
		Spec: v1alpha1.ConsumptionRequestSpec{Action: &v1alpha1.ActionRequest{Name: "install",
			SecretParameters: []v1alpha1.SecretParameterValue{
				{Name: "A", SecretKeyRef: v1alpha1.SecretKeySelector{Name: secret, Key: "a"}},
				{Name: "B", SecretKeyRef: v1alpha1.SecretKeySelector{Name: secret, Key: "b"}},
			}}},
	}
	policy := []client.Object{
		&admissionregistrationv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: creatorPolicy}},
		&admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: creatorPolicy}},
	}
	var reviews []authorizationv1.SubjectAccessReviewSpec
	newClient := func(objs ...client.Object) client.Client {
		return fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
			Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
				sar, ok := obj.(*authorizationv1.SubjectAccessReview)
				if !ok {
					return c.Create(ctx, obj, opts...)
				}
				reviews = append(reviews, sar.Spec)
				sar.Status.Allowed = sar.Spec.User == reader
				return nil
			},
		}).Build()
	}
	cases := []struct {
		name    string
		creator *v1alpha1.UserInfo
		objs    []client.Object
		want    string // "" means allowed
		reviews int
	}{
		{"no creator", nil, policy, "records no creator", 0},
		{"no policy", &v1alpha1.UserInfo{Username: reader}, nil, "is not installed", 0},
		{"creator may not read", &v1alpha1.UserInfo{Username: "bob", Groups: []string{ns}}, policy, "the request's creator bob may not get Secret team/token", 1},
		{"creator may read", &v1alpha1.UserInfo{Username: reader, UID: "u1", Groups: []string{"g"},
			Extra: map[string]v1alpha1.ExtraValue{"scopes": {"s"}}}, policy, "", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reviews = nil
			r := cr.DeepCopy()
			r.Spec.Creator = tc.creator
			c := newClient(tc.objs...)
			why, err := secretAccessRefusal(context.Background(), c, c, r)
			if err != nil {
				t.Fatal(err)
			}
			if (tc.want == "") != (why == "") || !strings.Contains(why, tc.want) {
				t.Fatalf("refusal %q, want %q", why, tc.want)
			}
			if len(reviews) != tc.reviews {
				t.Fatalf("%d SubjectAccessReviews, want %d (one per Secret)", len(reviews), tc.reviews)
			}
			for _, rv := range reviews {
				ra := rv.ResourceAttributes
				if rv.User != tc.creator.Username || rv.UID != tc.creator.UID || len(rv.Groups) != len(tc.creator.Groups) ||
					len(rv.Extra) != len(tc.creator.Extra) || ra == nil || ra.Namespace != ns || ra.Verb != "get" ||
					ra.Resource != "secrets" || ra.Name != secret {
					t.Errorf("review %+v %+v", rv, ra)
				}
			}
		})
	}
}
