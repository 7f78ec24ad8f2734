package controllers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestMemberConfigTakesInlineCredentialsOnly: a member Secret's kubeconfig
// is read under "kubeconfig" or Cluster API's "value"; one that would run a
// program or read a file on the operator's host is refused with a reason.
func TestMemberConfigTakesInlineCredentialsOnly(t *testing.T) {
	kubeconfig := func(user string) []byte {
		return []byte(`apiVersion: v1
kind: Config
clusters:
- name: m
  cluster:
    server: https://member.example:6443
    certificate-authority-data: ""
contexts:
- name: m
  context: {cluster: m, user: u}
current-context: m
users:
- name: u
  user:
` + user)
	}
	cases := []struct {
		name string
		data map[string][]byte
		want string // "" accepted; otherwise a part of the error
	}{
		{"token under kubeconfig", map[string][]byte{"kubeconfig": kubeconfig("    token: abc\n")}, ""},
		{"Cluster API's value key", map[string][]byte{"value": kubeconfig("    token: abc\n")}, ""},
		{"no kubeconfig", map[string][]byte{"config": kubeconfig("    token: abc\n")}, "no kubeconfig"},
		{"exec plugin", map[string][]byte{"kubeconfig": kubeconfig("    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n")}, "exec plugin"},
		{"token file", map[string][]byte{"kubeconfig": kubeconfig("    tokenFile: /var/run/secrets/token\n")}, "exec plugin, auth provider or file"},
		{"client key file", map[string][]byte{"kubeconfig": kubeconfig("    client-key: /etc/key.pem\n")}, "exec plugin, auth provider or file"},
		{"not YAML", map[string][]byte{"kubeconfig": []byte("{")}, "does not parse"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := memberConfig(&corev1.Secret{Data: c.data})
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want == "" && cfg.Host != "https://member.example:6443":
				t.Fatalf("host %q", cfg.Host)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
		})
	}
}

// TestOnlyUnansweredCallsMakeAMemberUnreachable: a member that refused what
// was asked (a role its admin has not made grantable, a forbidden write, a
// missing object) answered, so the request says why, not that the cluster
// is unreachable; only a call that got no answer makes it so.
func TestOnlyUnansweredCallsMakeAMemberUnreachable(t *testing.T) {
	gr := schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "rolebindings"}
	refused := NewRolePolicy(nil).Check(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "colo-rack-operator"}})
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", &url.Error{Op: "Get", URL: "https://10.0.0.1:6443", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}, true},
		{"connection reset", fmt.Errorf("list: %w", syscall.ECONNRESET), true},
		{"deadline", fmt.Errorf("get namespace: %w", context.DeadlineExceeded), true},
		{"stream cut", fmt.Errorf("watch: %w", io.ErrUnexpectedEOF), true},
		{"unavailable", apierrors.NewServiceUnavailable("etcd is down"), true},
		{"server timeout", apierrors.NewServerTimeout(gr, "create", 1), true},
		{"role not grantable", fmt.Errorf("rolebindings: %w", refused), false},
		{"forbidden", apierrors.NewForbidden(gr, "edit", errors.New("no")), false},
		{"not found", apierrors.NewNotFound(gr, "edit"), false},
		{"invalid", errors.New("quota: spec.hard: invalid quantity"), false},
		{"none", nil, false},
	}
	for _, c := range cases {
		if got := isUnreachableError(c.err); got != c.want {
			t.Errorf("%s: isUnreachableError(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
