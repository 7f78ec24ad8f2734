// Package plugin implements kubectl-offering, the kubectl plugin for the human
// steps of offering-operator: browsing what an agreement entitles a consumer
// to, requesting an item, approving or denying a request, marking a manual
// action completed or failed, accepting or rejecting goods, and reporting on a
// service relationship.
//
// The command tree is built by NewRootCommand; Run executes it and maps the
// outcome to the plugin's exit codes.
package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Exit codes of kubectl-offering.
const (
	// ExitOK: the command did what was asked.
	ExitOK = 0
	// ExitError: an error talking to the cluster, an object was not found, or --wait timed out.
	ExitError = 1
	// ExitUsage: wrong command, arguments or flags.
	ExitUsage = 2
	// ExitRefused: the plugin refused the operation (for example approving a
	// request under an Automatic agreement, or completing an Automated
	// action), or a request waited for with --wait ended Denied, Failed,
	// Rejected or Revoked.
	ExitRefused = 3
)

// FieldManager is the field manager of every write the plugin makes.
const FieldManager = "kubectl-offering"

const exitCodesHelp = `Exit codes:
  0  success
  1  error talking to the cluster, an object was not found, or --wait timed out
  2  usage error (unknown command, bad arguments or flags)
  3  refused: the operation does not apply (for example approving a request
     under an Automatic agreement, deciding twice, or completing an Automated
     action), or a request waited for with --wait ended Denied, Failed,
     Rejected or Revoked`

// exitError carries an exit code with an error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

func refusedf(format string, args ...any) error {
	return &exitError{code: ExitRefused, err: fmt.Errorf(format, args...)}
}

// ExitCode returns the exit code for an error returned by a command.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return ExitError
}

// Scheme knows the offering-operator API and the built-in Kubernetes types.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// options is shared by all commands: the kubectl connection flags and the IO streams.
type options struct {
	flags   *genericclioptions.ConfigFlags
	streams genericiooptions.IOStreams
}

// connect returns a controller-runtime client for the configured cluster and
// the namespace the command works in: -n, or the kubeconfig context's, or "default".
func (o *options) connect() (client.Client, string, error) {
	c, err := o.watchClient()
	if err != nil {
		return nil, "", err
	}
	ns, _, err := o.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, "", err
	}
	return c, ns, nil
}

// watchClient returns a client that can also watch, for --wait.
func (o *options) watchClient() (client.WithWatch, error) {
	cfg, err := o.flags.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = "kubectl-offering/" + Version()
	s, err := Scheme()
	if err != nil {
		return nil, err
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	return c, nil
}

// NewRootCommand builds the kubectl-offering command tree writing to streams.
func NewRootCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &options{flags: genericclioptions.NewConfigFlags(true), streams: streams}
	root := &cobra.Command{
		Use:   "kubectl-offering",
		Short: "Work with offering-operator service offerings, agreements and requests",
		Long: `kubectl offering covers the human steps of the offering-operator service relationship:
see what your agreements entitle you to, request an item, approve or deny a request and
complete a manual action (providers), accept or reject delivered goods (consumers),
report on an agreement, and explain where a request is and why (status).

Shell completion: put kubectl_complete-offering (shipped beside the binary) on your
PATH, and kubectl completes commands, agreements, requests, items and offerings.

` + exitCodesHelp,
		SilenceErrors: true,
		SilenceUsage:  true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl offering"},
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	o.flags.AddFlags(root.PersistentFlags())
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: ExitUsage, err: err}
	})
	root.AddCommand(
		newCatalogCommand(o),
		newRequestCommand(o),
		newDecisionCommand(o, true),
		newDecisionCommand(o, false),
		newCompleteCommand(o),
		newGoodsCommand(o, v1alpha1.GoodsAccept),
		newGoodsCommand(o, v1alpha1.GoodsReject),
		newReportCommand(o),
		newStatusCommand(o),
		newRevisionsCommand(o),
		newDiffCommand(o),
		newVersionCommand(o),
	)
	_ = root.RegisterFlagCompletionFunc("namespace", o.completeNamespaces)
	root.CompletionOptions.DisableDefaultCmd = true
	for _, c := range root.Commands() {
		c.Long = c.Short + "\n\n" + c.Long + "\n\n" + exitCodesHelp
	}
	return root
}

// Run executes kubectl-offering with args, writes errors to streams.ErrOut and
// returns the exit code.
func Run(ctx context.Context, args []string, streams genericiooptions.IOStreams) int {
	root := NewRootCommand(streams)
	started := false
	for _, c := range root.Commands() {
		if run := c.RunE; run != nil {
			c.RunE = func(cmd *cobra.Command, args []string) error {
				started = true
				return run(cmd, args)
			}
		}
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	// Whatever fails before a command starts (unknown command, wrong number of
	// arguments, missing required flags) is a usage error.
	if !started {
		var ee *exitError
		if !errors.As(err, &ee) {
			err = &exitError{code: ExitUsage, err: err}
		}
	}
	fmt.Fprintf(streams.ErrOut, "error: %v\n", err)
	code := ExitCode(err)
	if code == ExitUsage && cmd != nil {
		fmt.Fprintf(streams.ErrOut, "See '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// exactArgs is cobra.ExactArgs with a message naming the argument.
func exactArgs(what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageErrorf("expected exactly one %s, got %d arguments", what, len(args))
		}
		return nil
	}
}
