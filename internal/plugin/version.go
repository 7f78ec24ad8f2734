package plugin

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/discovery"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// version is set at build time:
// go build -ldflags "-X github.com/offering-operator/offering-operator/internal/plugin.version=v0.1.0".
var version string

// Version is the plugin's version: the one set at build time, else the
// module's version when installed with `go install ...@VERSION`, else "dev".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// VersionInfo is the output of `version -o json|yaml` (kind Version in OutputGroupVersion).
type VersionInfo struct {
	// Client is the plugin's version.
	Client ClientVersion `json:"clientVersion"`
	// Server is the Kubernetes version of the cluster; absent with --client.
	Server string `json:"serverVersion,omitempty"`
	// API says whether the cluster serves the operator's API group and version; absent with --client.
	API *APIServed `json:"api,omitempty"`
}

// ClientVersion describes the plugin binary.
type ClientVersion struct {
	Version   string `json:"version"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// APIServed says whether the cluster serves offering-operator's API.
type APIServed struct {
	GroupVersion string `json:"groupVersion"`
	Served       bool   `json:"served"`
}

func newVersionCommand(o *options) *cobra.Command {
	out := newOutputFlags(false)
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version [--client]",
		Short: "Print the plugin's version, the cluster's and whether the cluster serves the offering API",
		Long: `Prints the plugin's version, and, unless --client is given, the cluster's Kubernetes
version and whether it serves the ` + v1alpha1.GroupVersion.String() + ` API (that is, whether
offering-operator's CRDs are installed).`,
		Example: `  kubectl offering version
  kubectl offering version --client -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			v := VersionInfo{Client: ClientVersion{Version: Version(), GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}}
			if !clientOnly {
				if err := o.serverVersion(&v); err != nil {
					return err
				}
			}
			if out.format() != "" {
				return out.printView(o.streams.Out, "Version", &v)
			}
			fields := [][2]string{{"Client Version", fmt.Sprintf("%s (%s, %s)", v.Client.Version, v.Client.GoVersion, v.Client.Platform)}}
			if v.API != nil {
				served := "served"
				if !v.API.Served {
					served = "not served: install offering-operator's CRDs"
				}
				fields = append(fields, [2]string{"Server Version", v.Server}, [2]string{"Offering API", v.API.GroupVersion + " (" + served + ")"})
			}
			return printFields(o.streams.Out, "", fields...)
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "Print the plugin's version only; do not contact the cluster.")
	out.addFlags(cmd, false)
	return cmd
}

// serverVersion fills in the cluster's version and whether it serves the API.
func (o *options) serverVersion(v *VersionInfo) error {
	cfg, err := o.flags.ToRESTConfig()
	if err != nil {
		return err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	sv, err := dc.ServerVersion()
	if err != nil {
		return fmt.Errorf("reading the cluster's version: %w", err)
	}
	v.Server = sv.GitVersion
	v.API = &APIServed{GroupVersion: v1alpha1.GroupVersion.String()}
	_, err = dc.ServerResourcesForGroupVersion(v1alpha1.GroupVersion.String())
	switch {
	case err == nil:
		v.API.Served = true
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("asking the cluster whether it serves %s: %w", v1alpha1.GroupVersion, err)
	}
	return nil
}
