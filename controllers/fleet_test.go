package controllers

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
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
