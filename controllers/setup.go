// Package controllers holds the reconcilers of offering-operator: one for
// ServiceOfferings, one for ServiceAgreements and one for ConsumptionRequests.
package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unique"

	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// FieldOwner is the field manager of every server-side apply the operator issues.
const FieldOwner = "offering-operator"

// Field indexes registered on the manager's cache.
const (
	indexAgreementOffering = "spec.offering"
	indexRequestAgreement  = "spec.agreement"
	indexRequestOffering   = "status.offering"
	indexOfferingRole      = "spec.resources.clusterRoles"
)

// Options configure the controllers.
type Options struct {
	// AllowedClusterRoles may be granted even if unlabelled or powerful.
	AllowedClusterRoles []string
	// MaxConcurrentReconciles is the number of workers per controller.
	MaxConcurrentReconciles int
	// Clock tells the time; tests inject a fake one.
	Clock clock.PassiveClock
	// RollupDelay batches roll-up reconciles of agreements and offerings: events
	// within this delay cause one reconcile. Defaults to one second.
	RollupDelay time.Duration
	// OperatorNamespace is the namespace the operator runs in; offerings may
	// not use it as their provider namespace. Empty: not checked.
	OperatorNamespace string
	// grantKey signs the namespaces the operator creates (grantMarker).
	// Setup loads it from GrantKeySecret, or creates it.
	grantKey []byte
	// ProviderNamespaces are the namespaces offerings may use as their
	// provider namespace (--provider-namespaces) besides those labelled
	// service.offering.dev/provider-namespace=true: namespace names, or prefix
	// patterns ending in "*" such as "team-*". Empty: only the labelled ones.
	// Setup refuses a malformed entry (ParseProviderNamespaces).
	ProviderNamespaces []string
	// ActionServiceAccounts are ServiceAccounts ("namespace/name") that action
	// Jobs may run as (--action-service-accounts), besides those a provider
	// namespace's service.offering.dev/action-service-accounts annotation
	// lists. Empty: only the annotated ones.
	ActionServiceAccounts []string
	// VerifyTimeout is how long a grant may wait for its SubjectAccessReviews
	// to succeed before AccessVerified turns False. Defaults to 30 seconds.
	VerifyTimeout time.Duration
	// OmitEvents are Event reasons the operator does not record (for example
	// "Granted": the grant's time and duration are in the request's status).
	// Empty: every Event is recorded.
	OmitEvents []string
	// FleetProbeInterval is how often each member cluster's API server is
	// asked for its version (--member-probe-interval). Defaults to 15 seconds.
	FleetProbeInterval time.Duration
	// fleet holds the member clusters (fleet.go); Setup creates it.
	fleet *fleet
	// RevisionHistory is how many revisions of each offering are kept, the
	// newest, besides those in use (--offering-revision-history). Defaults
	// to DefaultRevisionHistory.
	RevisionHistory int
}

func (o *Options) defaults() {
	if o.MaxConcurrentReconciles <= 0 {
		o.MaxConcurrentReconciles = 16
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.RollupDelay <= 0 {
		o.RollupDelay = time.Second
	}
	if o.VerifyTimeout <= 0 {
		o.VerifyTimeout = 30 * time.Second
	}
	if o.FleetProbeInterval <= 0 {
		o.FleetProbeInterval = 15 * time.Second
	}
}

// CacheOptions scopes the informers of the kinds the operator creates to the
// objects it manages, and strips managedFields from everything it caches.
// The managed-by label that scopes them is one any namespace editor can set,
// so what a tenant can create with it must cost the cache little: Secrets and
// ConfigMaps are cached without their content, annotations or foreign labels
// (contentless), Jobs without their spec (jobStatusOnly). A thousand
// labelled ConfigMaps of a MiB each then hold a few hundred bytes each.
// ResourceQuotas are cached without their status: the operator compares only
// their spec, and kube-controller-manager rewrites the usage in the status
// whenever something is created in the namespace.
//
// ConsumptionRequests, which consumers write, are cached without what a
// consumer chooses the size of (requestForCache).
//
// With namespaces, only the ServiceAgreements and ConsumptionRequests of those
// namespaces are cached, and so served (--watch-namespaces); offerings are
// cluster-scoped and always cached, and so are the managed objects, which
// live in granted and provider namespaces of any name.
func CacheOptions(namespaces ...string) cache.Options {
	selector := labels.SelectorFromSet(labels.Set{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue})
	// A grant's children share their specs and labels in the cache (cache_shared.go).
	managed := cache.ByObject{Label: selector, Transform: sharedChildren}
	named := func(name string) fields.Selector { return fields.OneTermEqualSelector("metadata.name", name) }
	opts := cache.Options{
		DefaultTransform: forCache,
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Namespace{}:   managed,
			&rbacv1.RoleBinding{}: managed,
			// The grant's children of a fixed name: only that name is cached, so
			// that the labelled ones a namespace editor writes (edit may write
			// NetworkPolicies) stay out.
			&corev1.ResourceQuota{}:       {Label: selector, Field: named(quotaName), Transform: stripQuotaStatus},
			&corev1.LimitRange{}:          {Label: selector, Field: named(limitRangeName), Transform: sharedChildren},
			&networkingv1.NetworkPolicy{}: {Label: selector, Field: named(networkPolicyName), Transform: sharedChildren},
			// Goods copies and copies of secret parameters; they leave the cache when
			// accepted (the label is removed). Cached without content (contentless):
			// liveContent reads the content from the API server.
			&corev1.Secret{}:    {Label: selector, Transform: contentless},
			&corev1.ConfigMap{}: {Label: selector, Transform: contentless},
			// Action Jobs in provider namespaces; only their status is read.
			&batchv1.Job{}: {Label: selector, Transform: jobStatusOnly},
			// The slots of limited grant entitlements (claims.go).
			&coordinationv1.Lease{}: {Label: claimSelector()},
		},
	}
	requests := cache.ByObject{Transform: requestForCache}
	if len(namespaces) > 0 {
		served := map[string]cache.Config{}
		for _, ns := range namespaces {
			served[ns] = cache.Config{}
		}
		opts.ByObject[&v1alpha1.ServiceAgreement{}] = cache.ByObject{Namespaces: served}
		requests.Namespaces = served
	}
	opts.ByObject[&v1alpha1.ConsumptionRequest{}] = requests
	return opts
}

// requestForCache is what the cache keeps of a ConsumptionRequest: what the
// reconcilers act on, not what its consumer chose the size of. Its labels and
// annotations go (the operator reads none of a request's), and so do the
// values of its action parameters and the Secret keys its secret parameters
// name (their names stay, for validation): liveAction reads them from the API
// server when the action's Job is built. So does spec.creator (its groups and
// extra), which only the check of secret parameters reads, from that same
// live copy.
func requestForCache(in any) (any, error) {
	if cr, ok := in.(*v1alpha1.ConsumptionRequest); ok {
		cr.Labels, cr.Annotations = nil, nil
		cr.Spec.Creator = nil
		internRequest(cr)
		if a := cr.Spec.Action; a != nil {
			for i := range a.Parameters {
				a.Parameters[i].Value = ""
			}
			for i := range a.SecretParameters {
				a.SecretParameters[i].SecretKeyRef = v1alpha1.SecretKeySelector{}
			}
		}
	}
	return forCache(in)
}

// forCache prepares an object for the cache: no managedFields, and its
// label keys, annotation keys and the label values that repeat across objects
// (managed-by, the request's namespace, offering, item) interned, so that the
// 70,000 objects of 10,000 grants share one copy of each instead of one
// string per object.
func forCache(in any) (any, error) {
	out, err := cache.TransformStripManagedFields()(in)
	if o, ok := out.(metav1.Object); ok {
		o.SetLabels(interned(o.GetLabels(), func(key string) bool { return !uniqueLabelValues[key] }))
		o.SetAnnotations(interned(o.GetAnnotations(), func(string) bool { return false }))
	}
	return out, err
}

// uniqueLabelValues are the labels whose values differ on every object:
// interning them would only add entries to the intern table.
var uniqueLabelValues = map[string]bool{
	v1alpha1.LabelRequestName: true, v1alpha1.LabelRequestUID: true, corev1.LabelMetadataName: true,
}

// interned is a copy of in with its keys interned, and the values of the keys
// for which value is true.
func interned(in map[string]string, value func(key string) bool) map[string]string {
	if len(in) == 0 {
		return in
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		if value(k) {
			v = unique.Make(v).Value()
		}
		out[unique.Make(k).Value()] = v
	}
	return out
}

// contentless is what the cache keeps of a Secret or ConfigMap: its identity,
// resourceVersion, timestamps and the operator's own labels (which map events
// to requests and select lists), not its content, annotations or other
// labels, which the object's writer, perhaps a tenant, chose the size of. The
// reconcilers read content through liveContent.
func contentless(in any) (any, error) {
	meta := func(m *metav1.ObjectMeta) metav1.ObjectMeta {
		labels := map[string]string{}
		for k, v := range m.Labels {
			if k == v1alpha1.LabelManagedBy || strings.HasPrefix(k, v1alpha1.GroupVersion.Group+"/") {
				labels[k] = v
			}
		}
		return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
			CreationTimestamp: m.CreationTimestamp, DeletionTimestamp: m.DeletionTimestamp,
			Labels: interned(labels, func(key string) bool { return !uniqueLabelValues[key] })}
	}
	switch o := in.(type) {
	case *corev1.Secret:
		return &corev1.Secret{TypeMeta: o.TypeMeta, ObjectMeta: meta(&o.ObjectMeta)}, nil
	case *corev1.ConfigMap:
		return &corev1.ConfigMap{TypeMeta: o.TypeMeta, ObjectMeta: meta(&o.ObjectMeta)}, nil
	}
	return forCache(in)
}

// jobStatusOnly drops the spec of a Job before it enters the cache: the
// operator reads only the status of the Jobs it created.
func jobStatusOnly(in any) (any, error) {
	out, err := forCache(in)
	if j, ok := out.(*batchv1.Job); ok {
		j.Spec = batchv1.JobSpec{}
	}
	return out, err
}

// liveContent is the reconcilers' client: Secrets and ConfigMaps, which the
// cache holds without content (contentless), are looked up in the cache and,
// when there, read whole from the API server. Everything else is the
// manager's client.
type liveContent struct {
	client.Client
	live client.Reader
}

func (c liveContent) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := c.Client.Get(ctx, key, obj, opts...); err != nil {
		return err
	}
	switch obj.(type) {
	case *corev1.Secret, *corev1.ConfigMap:
		return c.live.Get(ctx, key, obj, opts...)
	}
	return nil
}

// stripQuotaStatus drops managedFields and the status of a ResourceQuota
// before it enters the cache, where it shares its spec and labels.
func stripQuotaStatus(in any) (any, error) {
	out, err := sharedChildren(in)
	if q, ok := out.(*corev1.ResourceQuota); ok {
		q.Status = corev1.ResourceQuotaStatus{}
	}
	return out, err
}

// Setup registers the field indexes and the three controllers with mgr.
func Setup(mgr ctrl.Manager, opts Options) error {
	opts.defaults()
	if err := validateProviderNamespaces(opts.ProviderNamespaces); err != nil {
		return fmt.Errorf("provider namespaces: %w", err)
	}
	if opts.grantKey == nil {
		key, err := loadGrantKey(context.Background(), mgr.GetAPIReader(), mgr.GetClient(), grantKeyNamespace(opts.OperatorNamespace))
		if err != nil {
			return fmt.Errorf("grant marker key: %w", err)
		}
		opts.grantKey = key
	}
	if err := setupIndexes(context.Background(), mgr); err != nil {
		return err
	}
	policy := NewRolePolicy(opts.AllowedClusterRoles)
	events := omitEvents(mgr.GetEventRecorder("offering-operator"), opts.OmitEvents)
	c := liveContent{Client: mgr.GetClient(), live: mgr.GetAPIReader()}
	base := reconciler{Client: c, APIReader: mgr.GetAPIReader(), Recorder: events, Options: opts}
	fleet, err := setupFleet(context.Background(), mgr, base)
	if err != nil {
		return fmt.Errorf("member clusters: %w", err)
	}
	base.Options.fleet = fleet
	if err := (&OfferingReconciler{reconciler: base, Policy: policy}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("offering controller: %w", err)
	}
	if err := (&AgreementReconciler{reconciler: base}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("agreement controller: %w", err)
	}
	if err := (&RequestReconciler{reconciler: base, Policy: policy}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("request controller: %w", err)
	}
	return nil
}

func setupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &v1alpha1.ServiceAgreement{}, indexAgreementOffering, func(o client.Object) []string {
		return []string{string(o.(*v1alpha1.ServiceAgreement).Spec.Offering)}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &v1alpha1.ConsumptionRequest{}, indexRequestAgreement, func(o client.Object) []string {
		return []string{string(o.(*v1alpha1.ConsumptionRequest).Spec.Agreement)}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &v1alpha1.ConsumptionRequest{}, indexRequestOffering, func(o client.Object) []string {
		if off := o.(*v1alpha1.ConsumptionRequest).Status.Offering; off != "" {
			return []string{off}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := setupClaimIndexes(ctx, idx); err != nil {
		return err
	}
	return idx.IndexField(ctx, &v1alpha1.ServiceOffering{}, indexOfferingRole, func(o client.Object) []string {
		var roles []string
		for _, r := range o.(*v1alpha1.ServiceOffering).Spec.Resources {
			for _, cr := range r.ClusterRoles {
				roles = append(roles, string(cr))
			}
		}
		return roles
	})
}
