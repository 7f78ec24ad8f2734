// Command golangci-lint-kal is golangci-lint with the kube-api-linter module
// plugin compiled in: the binary `golangci-lint custom` would build from
// .custom-gcl.yml. `golangci-lint custom` clones golangci-lint from GitHub
// first; this package builds the same binary from the versions pinned in
// hack/tools/go.mod, so `make lint` needs nothing but the Go module proxy.
package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/golangci/golangci-lint/v2/pkg/commands"
	"github.com/golangci/golangci-lint/v2/pkg/exitcodes"

	// The module plugin registers itself as "kubeapilinter" (see
	// .golangci.yml's linters.settings.custom).
	_ "sigs.k8s.io/kube-api-linter"
)

func main() {
	info := commands.BuildInfo{Version: "(unknown)", Commit: "(unknown)", Date: "(unknown)"}
	if build, ok := debug.ReadBuildInfo(); ok {
		info.GoVersion = build.GoVersion
		for _, dep := range build.Deps {
			if dep.Path == "github.com/golangci/golangci-lint/v2" {
				info.Version = dep.Version + "-kal"
			}
		}
	}
	if err := commands.Execute(info); err != nil {
		_, _ = fmt.Fprintf(os.Stderr, "The command is terminated due to an error: %v\n", err)
		os.Exit(exitcodes.Failure)
	}
}
