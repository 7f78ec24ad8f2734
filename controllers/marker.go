package controllers

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Grant markers. Labels say whose a namespace is, but anyone who may create
// namespaces can write them. A namespace the operator creates for a grant
// also carries AnnotationGrantMarker: an HMAC-SHA256, under a key only the
// operator holds, of the request's UID and the namespace's name. A namespace
// that exists before its request records it in status.grant is taken for the
// operator's own only with a valid marker: that is the namespace the operator
// created just before a crash or a restart, never one planted with the labels
// (and perhaps RoleBindings) of a request it saw coming.

// GrantKeySecret is the Secret, in the operator's namespace (or "default" when
// the operator runs outside a cluster), that holds the marker key under the
// key "key". The operator creates it at start when it is missing.
const GrantKeySecret = "offering-operator-grant-key"

// grantKeyNamespace is where GrantKeySecret lives.
func grantKeyNamespace(operatorNamespace string) string {
	if operatorNamespace == "" {
		return metav1.NamespaceDefault
	}
	return operatorNamespace
}

// loadGrantKey reads the marker key, or creates it (32 random bytes) when the
// Secret does not exist. Replicas that start together agree: the one whose
// create loses reads the winner's key.
func loadGrantKey(ctx context.Context, reader client.Reader, writer client.Writer, namespace string) ([]byte, error) {
	key := types.NamespacedName{Namespace: namespace, Name: GrantKeySecret}
	var sec corev1.Secret
	err := reader.Get(ctx, key, &sec)
	if apierrors.IsNotFound(err) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		sec = corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: GrantKeySecret,
				Labels: map[string]string{"app.kubernetes.io/name": "offering-operator"}},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{"key": b},
		}
		err = writer.Create(ctx, &sec)
		if err == nil {
			return b, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating Secret %s: %w", key, err)
		}
		err = reader.Get(ctx, key, &sec)
	}
	if err != nil {
		return nil, fmt.Errorf("reading Secret %s: %w", key, err)
	}
	if len(sec.Data["key"]) < 16 {
		return nil, fmt.Errorf("the Secret %s holds no key of at least 16 bytes under \"key\": delete it and the operator creates a new one", key)
	}
	return sec.Data["key"], nil
}

// grantMarker is the marker of the namespace name granted to the request uid.
func grantMarker(key []byte, uid types.UID, name string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(uid))
	m.Write([]byte{0})
	m.Write([]byte(name))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// markedFor reports whether ns carries the marker the operator writes when it
// creates ns for the request uid.
func markedFor(key []byte, ns *corev1.Namespace, uid types.UID) bool {
	got := ns.Annotations[v1alpha1.AnnotationGrantMarker]
	return got != "" && hmac.Equal([]byte(got), []byte(grantMarker(key, uid, ns.Name)))
}
