package controllers

import (
	"bytes"
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// TestGrantMarker: only the marker computed with the operator's key, for this
// request and this namespace, is taken.
func TestGrantMarker(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	uid := types.UID("3f0c1c56-8a8e-4c1e-9d8e-2b7f7d1d4a10")
	ns := func(marker string) *corev1.Namespace {
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a-space-1a2b3c"}}
		if marker != "" {
			n.Annotations = map[string]string{v1alpha1.AnnotationGrantMarker: marker}
		}
		return n
	}
	good := grantMarker(key, uid, "team-a-space-1a2b3c")
	cases := []struct {
		name string
		ns   *corev1.Namespace
		uid  types.UID
		want bool
	}{
		{"the operator's marker", ns(good), uid, true},
		{"no marker", ns(""), uid, false},
		{"a made-up marker", ns("forged"), uid, false},
		{"another key's marker", ns(grantMarker([]byte("another key, as long as the real"), uid, "team-a-space-1a2b3c")), uid, false},
		{"another request's marker", ns(grantMarker(key, "another-uid", "team-a-space-1a2b3c")), uid, false},
		{"another namespace's marker", ns(grantMarker(key, uid, "team-a-space-ffffff")), uid, false},
		{"checked for another request", ns(good), "another-uid", false},
	}
	for _, c := range cases {
		if got := markedFor(key, c.ns, c.uid); got != c.want {
			t.Errorf("%s: markedFor = %v, want %v", c.name, got, c.want)
		}
	}
	if len(good) != 43 || strings.ContainsAny(good, "+/=") {
		t.Errorf("marker %q: want 43 characters of unpadded base64url (an annotation value)", good)
	}
}

// TestLoadGrantKey: the key is created once, read back by every later start
// and by a replica that lost the race to create it, and a Secret holding no
// usable key is an error that says what to do.
func TestLoadGrantKey(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientBuilder().WithScheme(scheme.Scheme).Build()
	first, err := loadGrantKey(ctx, c, c, "operator-system")
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 32 {
		t.Fatalf("key of %d bytes, want 32", len(first))
	}
	again, err := loadGrantKey(ctx, c, c, "operator-system")
	if err != nil || !bytes.Equal(again, first) {
		t.Fatalf("second start: %x, %v; want the same key %x", again, err, first)
	}

	// Another replica creates the Secret between this one's read and create.
	raced := fake.NewClientBuilder().WithScheme(scheme.Scheme).Build()
	winner := []byte("the key the other replica wrote!")
	writer := interceptor.NewClient(raced, interceptor.Funcs{
		Create: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: obj.GetNamespace(), Name: obj.GetName()}, Data: map[string][]byte{"key": winner}}
			if err := cl.Create(ctx, sec); err != nil {
				return err
			}
			return apierrors.NewAlreadyExists(schema.GroupResource{Resource: "secrets"}, obj.GetName())
		},
	})
	got, err := loadGrantKey(ctx, raced, writer, "operator-system")
	if err != nil || !bytes.Equal(got, winner) {
		t.Fatalf("after a lost race: %q, %v; want the winner's key", got, err)
	}

	short := fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "operator-system", Name: GrantKeySecret}, Data: map[string][]byte{"key": []byte("short")}}).Build()
	if _, err := loadGrantKey(ctx, short, short, "operator-system"); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Errorf("a 5-byte key: %v, want an error saying to delete the Secret", err)
	}
	if got := grantKeyNamespace(""); got != "default" {
		t.Errorf("outside a cluster the key lives in %q, want default", got)
	}
}
