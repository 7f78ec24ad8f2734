package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMalformedProviderNamespacesExit: a malformed --provider-namespaces stops
// the manager at startup, with exit status 1 and an error naming the flag and
// the entry, before it reads a kubeconfig or starts anything. A well-formed
// value gets past the check (and then stops at the missing kubeconfig).
func TestMalformedProviderNamespacesExit(t *testing.T) {
	if value, ok := os.LookupEnv("MANAGER_PROVIDER_NAMESPACES"); ok {
		// The child: run the manager itself.
		os.Args = []string{"manager", "--provider-namespaces=" + value}
		main()
		return
	}
	run := func(value string) (int, string) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestMalformedProviderNamespacesExit$")
		// No kubeconfig and not in a cluster: a manager that got past the flag stops at GetConfigOrDie.
		cmd.Env = append(os.Environ(), "MANAGER_PROVIDER_NAMESPACES="+value, "KUBECONFIG="+t.TempDir()+"/none",
			"KUBERNETES_SERVICE_HOST=", "KUBERNETES_SERVICE_PORT=")
		out, err := cmd.CombinedOutput()
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
