package controllers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// member is one running member cluster: its cluster.Cluster (client and
// cache), what its registration said, and what the last probe found.
type member struct {
	name string
	// registration is the resourceVersion of the Secret it was started from:
	// a new one restarts it.
	registration string
	labels       map[string]string
	server       string
	cl           cluster.Cluster
	client       client.Client
	discovery    discovery.ServerVersionInterface
	cancel       context.CancelFunc
	done         chan struct{}
	// synced is set once its cache has listed every kind it holds: until
	// then nothing is read from it or written to it.
	synced atomic.Bool

	mu    sync.Mutex
	probe probeResult
}

// probeResult is what the last probe of a member found.
type probeResult struct {
	at      time.Time
	version string
	err     error
}

// memberKinds are the kinds the operator writes in a member: its cache
// holds only those carrying the operator's labels, exactly as the hub's
// cache does (CacheOptions), and their events go to the request controller.
func memberKinds() []client.Object {
	return []client.Object{&corev1.Namespace{}, &rbacv1.RoleBinding{}, &corev1.ResourceQuota{}, &corev1.LimitRange{}, &networkingv1.NetworkPolicy{}}
}

// memberCacheOptions is the member cache: the hub's options for the kinds of
// a grant, plus ClusterRoles (the roles bound are checked in the member).
// It never starts an informer for another kind on a read.
func memberCacheOptions() cache.Options {
	hub := CacheOptions()
	opts := cache.Options{DefaultTransform: forCache, ReaderFailOnMissingInformer: true, ByObject: map[client.Object]cache.ByObject{}}
	for obj, by := range hub.ByObject {
		for _, kind := range memberKinds() {
			if fmt.Sprintf("%T", obj) == fmt.Sprintf("%T", kind) {
				opts.ByObject[obj] = by
			}
		}
	}
	opts.ByObject[&rbacv1.ClusterRole{}] = cache.ByObject{Transform: forCache}
	return opts
}

// startMember connects to a member and starts its cache, whose events go to
// f.events. It returns at once: the cache syncs in the background.
func (f *fleet) startMember(name, registration string, lbls map[string]string, cfg *rest.Config) (*member, error) {
	cl, err := cluster.New(cfg, func(o *cluster.Options) {
		o.Scheme = f.scheme
		o.Cache = memberCacheOptions()
		o.Logger = ctrl.Log.WithName("member").WithValues("cluster", name)
	})
	if err != nil {
		return nil, err
	}
	probeCfg := rest.CopyConfig(cfg)
	probeCfg.Timeout = 5 * time.Second
	disc, err := discovery.NewDiscoveryClientForConfig(probeCfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{name: name, registration: registration, labels: lbls, server: cfg.Host, cl: cl, client: cl.GetClient(),
		discovery: disc, cancel: cancel, done: make(chan struct{})}
	if err := f.forwardEvents(ctx, m); err != nil {
		cancel()
		return nil, err
	}
	go func() {
		defer close(m.done)
		if err := cl.Start(ctx); err != nil {
			ctrl.Log.WithName("member").Error(err, "member cluster stopped", "cluster", name)
		}
	}()
	go func() {
		if cl.GetCache().WaitForCacheSync(ctx) {
			m.synced.Store(true)
			// What happened there while the operator was not watching.
			f.notifyAll(ctx, m)
		}
	}()
	return m, nil
}

// forwardEvents makes the informers of the member's kinds and sends their
// events, mapped by labels to requests, to the request controller.
func (f *fleet) forwardEvents(ctx context.Context, m *member) error {
	send := func(obj any) {
		if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		if o, ok := obj.(client.Object); ok {
			select {
			case f.events <- event.GenericEvent{Object: o}:
			case <-ctx.Done():
			}
		}
	}
	for _, kind := range memberKinds() {
		inf, err := m.cl.GetCache().GetInformer(ctx, kind, cache.BlockUntilSynced(false))
		if err != nil {
			return err
		}
		_, isQuota := kind.(*corev1.ResourceQuota)
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: send,
			UpdateFunc: func(o, n any) {
				oo, ok1 := o.(client.Object)
				no, ok2 := n.(client.Object)
				if isQuota && ok1 && ok2 && !quotaChanged().Update(event.UpdateEvent{ObjectOld: oo, ObjectNew: no}) {
					return
				}
				send(n)
			},
			DeleteFunc: send,
		}); err != nil {
			return err
		}
	}
	_, err := m.cl.GetCache().GetInformer(ctx, &rbacv1.ClusterRole{}, cache.BlockUntilSynced(false))
	return err
}

// notifyAll asks the request controller to look again at every request
// placed in m.
func (f *fleet) notifyAll(ctx context.Context, m *member) {
	if f.hub == nil {
		return
	}
	requests, err := placedIn(ctx, f.hub, m.name)
	if err != nil {
		ctrl.Log.WithName("member").Error(err, "listing the requests placed in a member", "cluster", m.name)
		return
	}
	f.notify(requests)
}

// stop stops the member's cache and waits for it.
func (m *member) stop() {
	m.cancel()
	<-m.done
}

// probeNow asks the member's API server for its version and records the answer.
func (m *member) probeNow(now time.Time) probeResult {
	v, err := m.discovery.ServerVersion()
	p := probeResult{at: now, err: err}
	if err == nil {
		p.version = v.GitVersion
	}
	m.mu.Lock()
	m.probe = p
	m.mu.Unlock()
	return p
}

// lastProbe is what the last probe found.
func (m *member) lastProbe() probeResult {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.probe
}

// unreachable says why the member cannot be used now, or nil.
func (m *member) unreachable() error {
	if m == nil {
		return errors.New("it is not registered (no Secret labelled " + v1alpha1.LabelMemberCluster + "=true of that name in the operator's namespace)")
	}
	if p := m.lastProbe(); p.err != nil {
		return p.err
	}
	if !m.synced.Load() {
		return errors.New("the operator's cache of the cluster has not synced yet")
	}
	return nil
}

// isUnreachableError reports whether err means the member did not answer
// (no connection, a timeout, unavailable), rather than that it refused what
// was asked.
func isUnreachableError(err error) bool {
	if err == nil {
		return false
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return apierrors.IsServiceUnavailable(err) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err)
	}
	// No API answer: the transport failed (dial, TLS, a cut stream) or the
	// call ran out of time. Anything else is a refusal worked out here (a
	// role the member's admin has not made grantable) and is said as such.
	var urlErr *url.Error
	var netErr net.Error
	return errors.As(err, &urlErr) || errors.As(err, &netErr) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) ||
		utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err)
}
