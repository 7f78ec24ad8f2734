package main

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// managerArgs, in the environment of a child process of the test binary,
// holds the arguments of the manager that child runs, one per line.
const managerArgs = "MANAGER_ARGS"

// runAsChild runs the manager with the arguments of managerArgs and reports
// true when this process is such a child; the test then returns.
func runAsChild() bool {
	args, ok := os.LookupEnv(managerArgs)
	if !ok {
		return false
	}
	os.Args = append([]string{"manager"}, strings.Split(args, "\n")...)
	main()
	return true
}

// runManager runs the manager with args in a child process of the test
// binary, re-entering test (which must call runAsChild first), with env
// added to the environment. It returns the child's exit error and output.
func runManager(ctx context.Context, test string, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(append(os.Environ(), env...), managerArgs+"="+strings.Join(args, "\n"))
	return cmd.CombinedOutput()
}

// TestMalformedProviderNamespacesExit: a malformed --provider-namespaces stops
// the manager at startup, with exit status 1 and an error naming the flag and
// the entry, before it reads a kubeconfig or starts anything. A well-formed
// value gets past the check (and then stops at the missing kubeconfig).
func TestMalformedProviderNamespacesExit(t *testing.T) {
	if runAsChild() {
		return
	}
	run := func(value string) (int, string) {
		t.Helper()
		// No kubeconfig and not in a cluster: a manager that got past the flag stops at GetConfigOrDie.
		out, err := runManager(context.Background(), "TestMalformedProviderNamespacesExit",
			[]string{"KUBECONFIG=" + t.TempDir() + "/none", "KUBERNETES_SERVICE_HOST=", "KUBERNETES_SERVICE_PORT="},
			"--provider-namespaces="+value)
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("--provider-namespaces=%q: %v, want an exit status; output:\n%s", value, err, out)
		}
		return exit.ExitCode(), string(out)
	}
	// The log line is JSON: the entry's quotes are escaped.
	for _, tc := range []struct{ value, entry string }{
		{"*a", `entry 1 \"*a\"`}, {"a*b", `entry 1 \"a*b\"`}, {"*", `entry 1 \"*\"`},
		{"team-a,,team-b", `entry 2 \"\"`}, {"team-a,", `entry 2 \"\"`},
		{"Team-A", `entry 1 \"Team-A\"`}, {"team_a", `entry 1 \"team_a\"`}, {"-team*", `entry 1 \"-team*\"`},
		{"team-a, Team-B", `entry 2 \"Team-B\"`},
	} {
		code, out := run(tc.value)
		if code != 1 || !strings.Contains(out, "invalid --provider-namespaces") || !strings.Contains(out, tc.entry) {
			t.Errorf("--provider-namespaces=%q: exit %d, want 1 with an error naming the flag and %s; output:\n%s", tc.value, code, tc.entry, out)
		}
		if strings.Contains(out, "kubeconfig") {
			t.Errorf("--provider-namespaces=%q: the manager went on to load a kubeconfig; output:\n%s", tc.value, out)
		}
	}
	for _, value := range []string{"", "team-*", "colo-provider, team-*"} {
		if _, out := run(value); strings.Contains(out, "invalid --provider-namespaces") || !strings.Contains(out, "kubeconfig") {
			t.Errorf("--provider-namespaces=%q refused, or the manager did not go on to load a kubeconfig; output:\n%s", value, out)
		}
	}
}

// TestKubeAPICompression: by default the manager asks the API server for no
// gzip (the CPU it costs both sides outweighs the bytes it saves on a local
// network, docs/performance.md); --kube-api-compression=true asks for it.
// The child manager talks to a server that records each request's
// Accept-Encoding and answers 503, so the manager stops at its first calls.
func TestKubeAPICompression(t *testing.T) {
	if runAsChild() {
		return
	}
	for _, tc := range []struct {
		flag string
		gzip bool
	}{{"", false}, {"--kube-api-compression=true", true}} {
		var mu sync.Mutex
		var seen []string
		// TLS, as an API server is: client-go gives a plain-HTTP config with no
		// TLS options http.DefaultTransport, which ignores DisableCompression.
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, r.Method+" "+r.URL.Path+" Accept-Encoding="+r.Header.Get("Accept-Encoding"))
			mu.Unlock()
			http.Error(w, "not an API server", http.StatusServiceUnavailable)
		}))
		kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
		ca := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
		cfg := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: " + srv.URL +
			"\n    certificate-authority-data: " + ca + "\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\nusers:\n- name: u\n  user:\n    token: t\ncurrent-context: c\n"
		if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"--metrics-bind-address=0", "--health-probe-bind-address=0"}
		if tc.flag != "" {
			args = append(args, tc.flag)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := runManager(ctx, "TestKubeAPICompression",
			[]string{"KUBECONFIG=" + kubeconfig, "POD_NAMESPACE=offering-operator-system"}, args...)
		cancel()
		srv.Close()
		if err == nil {
			t.Fatalf("%q: the manager started against a server that answers 503; output:\n%s", tc.flag, out)
		}
		mu.Lock()
		if len(seen) == 0 {
			t.Errorf("%q: the manager sent no request; output:\n%s", tc.flag, out)
		}
		for _, s := range seen {
			if strings.Contains(s, "gzip") != tc.gzip {
				t.Errorf("%q: %s, want gzip asked for: %v", tc.flag, s, tc.gzip)
			}
		}
		mu.Unlock()
	}
}
