// Command manager runs the offering-operator controllers.
package main

import (
	"crypto/tls"
	"flag"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/leaderelection"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	servicev1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
	"github.com/offering-operator/offering-operator/controllers"
	"github.com/offering-operator/offering-operator/internal/apicalls"
	"github.com/offering-operator/offering-operator/internal/leaderlock"
)

func main() {
	var (
		metricsAddr, probeAddr, leaderElectionNamespace, pprofAddr string
		enableLeaderElection, secureMetrics, enableHTTP2           bool
		apiCompression                                             bool
		allowedRoles, omitEventReasons, watchNamespaces            string
		providerNamespaces, actionServiceAccounts                  string
		concurrency, revisionHistory                               int
		qps                                                        float64
		burst                                                      int
		leaseDuration                                              time.Duration
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8443",
		"Address the metrics endpoint binds to (:8443 for HTTPS, :8080 for HTTP; 0 disables it).")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz probes bind to.")
	flag.BoolVar(&enableLeaderElection, "leader-elect", false,
		"Elect a leader so that only one replica reconciles at a time. Needed with more than one replica.")
	flag.StringVar(&leaderElectionNamespace, "leader-election-namespace", "",
		"Namespace of the leader-election Lease (default: the namespace the manager runs in).")
	flag.DurationVar(&leaseDuration, "leader-election-lease-duration", 15*time.Second, "Leader-election lease duration.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS with authentication and authorization (TokenReview and SubjectAccessReview).")
	flag.BoolVar(&enableHTTP2, "enable-http2", false,
		"Enable HTTP/2 for the metrics server (off by default: HTTP/2 Stream Cancellation and Rapid Reset CVEs).")
	flag.StringVar(&allowedRoles, "allowed-cluster-roles", "",
		"Comma-separated ClusterRoles that offerings may grant even if they are not labelled "+
			servicev1alpha1.LabelGrantable+"=true or hold escalate, bind, impersonate or wildcard permissions. "+
			"cluster-admin is granted only if named here.")
	flag.StringVar(&providerNamespaces, "provider-namespaces", "",
		"Comma-separated namespaces that offerings may name as their providerNamespace, where the operator reads goods "+
			"sources (Secrets, ConfigMaps) and runs action Jobs, besides those labelled "+servicev1alpha1.LabelProviderNamespace+"=true. "+
			"Each entry is a namespace name or a prefix ending in * (team-* allows every namespace whose name starts with team-). "+
			"Default: none, only the labelled namespaces. Never the operator's own, nor a namespace it granted to a consumer.")
	flag.StringVar(&actionServiceAccounts, "action-service-accounts", "",
		"Comma-separated ServiceAccounts (namespace/name) that action Jobs may run as, besides those a provider namespace's "+
			servicev1alpha1.AnnotationActionServiceAccounts+" annotation lists. Default: none, only the annotated ones "+
			"(the namespace's default ServiceAccount included only if listed).")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "", "Address to serve net/http/pprof on (empty: disabled).")
	flag.IntVar(&concurrency, "max-concurrent-reconciles", 16,
		"Workers per controller. A reconcile mostly waits on the API server, so more workers than cores pay off (docs/performance.md).")
	flag.Float64Var(&qps, "kube-api-qps", 200, "Client-side rate limit towards the API server, in requests per second.")
	flag.IntVar(&burst, "kube-api-burst", 400, "Client-side burst towards the API server.")
	flag.StringVar(&watchNamespaces, "watch-namespaces", "",
		"Comma-separated namespaces whose ServiceAgreements and ConsumptionRequests this operator caches and serves "+
			"(default: all). Offerings and the objects the operator creates are watched everywhere. Run one operator per cluster: "+
			"offering roll-ups count only the requests it serves.")
	flag.BoolVar(&apiCompression, "kube-api-compression", false,
		"Ask the API server to gzip its responses, watch streams included. Off by default: the operator runs next to "+
			"the API server, where compressing every watch event costs CPU on both ends to save bandwidth nobody is short of.")
	flag.StringVar(&omitEventReasons, "omit-events", "Granted",
		"Comma-separated Event reasons not to record. The default leaves out the routine Granted Event: "+
			"the grant's time and duration are in the request's status (Ready, status.fulfilledAt, status.fulfilmentDuration), "+
			"and at onboarding volume the Event is one more write per grant. Set it empty to record every Event.")
	flag.IntVar(&revisionHistory, "offering-revision-history", controllers.DefaultRevisionHistory,
		"How many ServiceOfferingRevisions of each offering are kept, the newest; a revision an agreement is pinned to, "+
			"or a request is fulfilled under, is kept besides them.")
	opts := zap.Options{Development: false}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")

	allowedProviderNamespaces, err := controllers.ParseProviderNamespaces(providerNamespaces)
	if err != nil {
		log.Error(err, "invalid --provider-namespaces: each entry is a namespace name or a prefix ending in * (team-*)",
			"value", providerNamespaces)
		os.Exit(1)
	}

	if revisionHistory < 1 {
		log.Error(nil, "invalid --offering-revision-history: keep at least one revision", "value", revisionHistory)
		os.Exit(1)
	}

	allowedActionServiceAccounts, err := controllers.ParseActionServiceAccounts(actionServiceAccounts)
	if err != nil {
		log.Error(err, "invalid --action-service-accounts: each entry is namespace/name of a ServiceAccount", "value", actionServiceAccounts)
		os.Exit(1)
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(servicev1alpha1.AddToScheme(scheme))

	var tlsOpts []func(*tls.Config)
	if !enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: metricsAddr, SecureServing: secureMetrics, TLSOpts: tlsOpts}
	if secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	cfg := ctrl.GetConfigOrDie()
	cfg.QPS = float32(qps)
	cfg.Burst = burst
	cfg.DisableCompression = !apiCompression
	// Count every request by verb and resource: offering_operator_api_requests_total.
	cfg.Wrap(apicalls.Wrap)

	lock, err := leaderLock(cfg, enableLeaderElection, leaderElectionNamespace)
	if err != nil {
		log.Error(err, "unable to set up leader election")
		os.Exit(1)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        probeAddr,
		LeaderElection:                enableLeaderElection,
		LeaderElectionID:              leaderElectionID,
		LeaderElectionNamespace:       leaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		// A lease released only by its holder (internal/leaderlock).
		LeaderElectionResourceLockInterface: lock,
		LeaseDuration:                       &leaseDuration,
		RenewDeadline:                       ptr.To(renewDeadline),
		Cache:                               controllers.CacheOptions(splitList(watchNamespaces)...),
		PprofBindAddress:                    pprofAddr,
	})
	if err != nil {
		log.Error(err, "unable to create manager")
		os.Exit(1)
	}

	if err := controllers.Setup(mgr, controllers.Options{
		OperatorNamespace:       operatorNamespace(),
		ProviderNamespaces:      allowedProviderNamespaces,
		ActionServiceAccounts:   allowedActionServiceAccounts,
		AllowedClusterRoles:     splitList(allowedRoles),
		MaxConcurrentReconciles: concurrency,
		Clock:                   clock.RealClock{},
		OmitEvents:              splitList(omitEventReasons),
		RevisionHistory:         revisionHistory,
	}); err != nil {
		log.Error(err, "unable to set up controllers")
		os.Exit(1)
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "unable to set up health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		log.Error(err, "unable to set up ready check")
		os.Exit(1)
	}

	log.Info("starting manager")
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "manager exited with an error")
		os.Exit(1)
	}
}

// leaderElectionID names the leader-election Lease; renewDeadline is
// controller-runtime's default, set here because the lock's client timeout
// is derived from it.
const (
	leaderElectionID = "offering-operator.service.offering.dev"
	renewDeadline    = 10 * time.Second
)

// leaderLock returns the leader-election lock (nil without leader election).
func leaderLock(cfg *rest.Config, enabled bool, namespace string) (resourcelock.Interface, error) {
	if !enabled {
		return nil, nil
	}
	return leaderlock.New(cfg, leaderelection.Options{LeaderElection: true, LeaderElectionID: leaderElectionID,
		LeaderElectionNamespace: namespace, RenewDeadline: renewDeadline})
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// operatorNamespace is the namespace the manager runs in: POD_NAMESPACE (set
// from the downward API in config/manager), else the in-cluster
// ServiceAccount's namespace, else "" (out of cluster: not checked).
func operatorNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if data, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		return strings.TrimSpace(string(data))
	}
	return ""
}
