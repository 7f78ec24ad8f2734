package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
	"github.com/offering-operator/offering-operator/controllers"
)

// This file holds the harness of the fault and race tests: a manager whose
// HTTP transport the test controls (every client of the manager goes through
// it, leader election included), and a recorder of every version of the
// requests of a namespace.

var errKilled = errors.New("injected fault: the process was killed")

// operator is one running manager of the controllers, built like main.go's.
type operator struct {
	mgr    ctrl.Manager
	cancel context.CancelFunc
	done   chan struct{} // closed when the manager returned, with err
	err    error
	once   sync.Once
	// killed fails every request the manager sends, as if its process had died.
	killed atomic.Bool
	// writes counts the writes it sent, lease renewals aside.
	writes atomic.Int64
}

type operatorOptions struct {
	// leaderElectionID turns leader election on, with short leases in the
	// default namespace, not released on cancel (as when the process is killed).
	leaderElectionID string
	// beforeWrite runs before every write (POST, PUT, PATCH, DELETE) the
	// manager sends; an error fails the write. It may block: the controller
	// has decided, but its write lands only when the test lets it.
	beforeWrite func(*http.Request) error
	// get replaces the reads the manager's client serves from its cache.
	get func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error
	// namespaces are the namespaces served, as --watch-namespaces gives them (none: all).
	namespaces []string
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func isWrite(r *http.Request) bool {
	return r.Method != http.MethodGet && r.Method != http.MethodHead
}

// isLeaderLease reports whether r writes the leader-election Lease, which is
// not counted among the operator's writes; grant slots ("grant-…") are.
func isLeaderLease(r *http.Request) bool {
	if !strings.Contains(r.URL.Path, "/apis/coordination.k8s.io/") || strings.Contains(r.URL.Path, "/leases/grant-") {
		return false
	}
	if r.Method == http.MethodPost && r.GetBody != nil {
		body, err := r.GetBody()
		if err != nil {
			return true
		}
		data, _ := io.ReadAll(body)
		return !bytes.Contains(data, []byte("grant-"))
	}
	return true
}

func runOperator(t *testing.T, o operatorOptions) *operator {
	t.Helper()
	op := &operator{done: make(chan struct{})}
	rc := rest.CopyConfig(cfg)
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			if op.killed.Load() {
				return nil, errKilled
			}
			if isWrite(r) && !isLeaderLease(r) {
				op.writes.Add(1)
				if o.beforeWrite != nil {
					if err := o.beforeWrite(r); err != nil {
						return nil, err
					}
				}
			}
			return rt.RoundTrip(r)
		})
	})
	opts := ctrl.Options{
		Scheme: scheme.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache: controllers.CacheOptions(o.namespaces...),
		// Managers follow each other, or run side by side, in one process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	}
	if o.leaderElectionID != "" {
		opts.LeaderElection = true
		opts.LeaderElectionID = o.leaderElectionID
		opts.LeaderElectionNamespace = "default"
		opts.LeaderElectionReleaseOnCancel = false
		// Short, but with room for a renewal on two busy cores: a leader that
		// cannot renew within the deadline stops (and its manager exits).
		opts.LeaseDuration = ptr.To(3 * time.Second)
		opts.RenewDeadline = ptr.To(2500 * time.Millisecond)
		opts.RetryPeriod = ptr.To(500 * time.Millisecond)
	}
	if o.get != nil {
		opts.NewClient = func(config *rest.Config, options client.Options) (client.Client, error) {
			c, err := client.NewWithWatch(config, options)
			if err != nil {
				return nil, err
			}
			return interceptor.NewClient(c, interceptor.Funcs{Get: o.get}), nil
		}
	}
	mgr, err := ctrl.NewManager(rc, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := controllers.Setup(mgr, controllers.Options{MaxConcurrentReconciles: 4, RollupDelay: 20 * time.Millisecond, VerifyTimeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	op.mgr = mgr
	ctx, cancel := context.WithCancel(context.Background())
	op.cancel = cancel
	go func() {
		op.err = mgr.Start(ctx)
		close(op.done)
	}()
	t.Cleanup(func() { op.stop(t) })
	return op
}

// stop shuts the manager down and waits for it.
func (op *operator) stop(t *testing.T) {
	t.Helper()
	op.once.Do(func() {
		op.cancel()
		select {
		case <-op.done:
			if op.err != nil && !op.killed.Load() {
				t.Errorf("manager exited with %v", op.err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the manager did not stop within 30s")
		}
	})
}

// running fails the test if the manager stopped on its own.
func (op *operator) running(t *testing.T) {
	t.Helper()
	select {
	case <-op.done:
		t.Fatalf("the manager stopped: %v", op.err)
	default:
	}
}

// kill stops the manager as a crash would: from now on nothing it sends
// reaches the API server, in-flight reconciles included, and its lease is not
// released.
func (op *operator) kill(t *testing.T) {
	t.Helper()
	op.killed.Store(true)
	op.stop(t)
}

// settle waits until cond holds and the manager has been quiet (no write)
// for a second.
func (op *operator) settle(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	last, quietSince := int64(-1), time.Now()
	eventually(t, timeout, what, func() error {
		if n := op.writes.Load(); n != last {
			last, quietSince = n, time.Now()
		}
		if err := cond(); err != nil {
			return err
		}
		if time.Since(quietSince) < time.Second {
			return errors.New("the manager is still writing")
		}
		return nil
	})
}

// hold keeps back the writes that match while it is armed, until let is called.
type hold struct {
	match   func(*http.Request) bool
	armed   atomic.Bool
	held    atomic.Int64
	release chan struct{}
	once    sync.Once
}

func newHold(match func(*http.Request) bool) *hold {
	h := &hold{match: match, release: make(chan struct{})}
	h.armed.Store(true)
	return h
}

func (h *hold) beforeWrite(r *http.Request) error {
	if !h.armed.Load() || !h.match(r) {
		return nil
	}
	h.held.Add(1)
	select {
	case <-h.release:
		return nil
	case <-r.Context().Done():
		return r.Context().Err()
	}
}

func (h *hold) let() {
	h.once.Do(func() {
		h.armed.Store(false)
		close(h.release)
	})
}

// waitHeld waits until at least one write is held back.
func (h *hold) waitHeld(t *testing.T, what string) {
	t.Helper()
	eventually(t, 30*time.Second, what, func() error {
		if h.held.Load() == 0 {
			return errors.New("no write held yet")
		}
		return nil
	})
}

// apiPath is the path of a namespaced object of this API group, as the manager's client addresses it.
func apiPath(ns, resource, name string) string {
	return fmt.Sprintf("/apis/%s/%s/namespaces/%s/%s/%s", v1alpha1.GroupVersion.Group, v1alpha1.GroupVersion.Version, ns, resource, name)
}

// requestLog records every version of the requests of a namespace, from a
// watch started before the test acts, so that transient states are seen too.
type requestLog struct {
	mu       sync.Mutex
	versions map[types.UID][]*v1alpha1.ConsumptionRequest
	byName   map[string]types.UID
	err      error
	stop     context.CancelFunc
	done     chan struct{}
}

func watchRequests(t *testing.T, ns string) *requestLog {
	t.Helper()
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// Start from a list, so that a watch resumed after the API server ends it
	// (it may, at any time) continues from the last version seen and misses nothing.
	var list v1alpha1.ConsumptionRequestList
	if err := wc.List(ctx, &list, client.InNamespace(ns)); err != nil {
		cancel()
		t.Fatal(err)
	}
	l := &requestLog{versions: map[types.UID][]*v1alpha1.ConsumptionRequest{}, byName: map[string]types.UID{}, stop: cancel, done: make(chan struct{})}
	for i := range list.Items {
		cr := list.Items[i].DeepCopy()
		l.versions[cr.UID] = append(l.versions[cr.UID], cr)
		l.byName[cr.Name] = cr.UID
	}
	go func() {
		defer close(l.done)
		rv := list.ResourceVersion
		for ctx.Err() == nil {
			w, err := wc.Watch(ctx, &v1alpha1.ConsumptionRequestList{}, client.InNamespace(ns),
				&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
			if err != nil {
				if ctx.Err() == nil {
					l.fail(fmt.Errorf("watching requests: %w", err))
				}
				return
			}
			if rv, err = l.consume(w, rv); err != nil {
				l.fail(err)
				return
			}
		}
	}()
	t.Cleanup(l.close)
	return l
}

// consume records the events of one watch until it ends, and returns the
// last resourceVersion seen.
func (l *requestLog) consume(w watch.Interface, rv string) (string, error) {
	defer w.Stop()
	for ev := range w.ResultChan() {
		if ev.Type == watch.Error {
			return rv, fmt.Errorf("watch error: %v", ev.Object)
		}
		cr, ok := ev.Object.(*v1alpha1.ConsumptionRequest)
		if !ok {
			return rv, fmt.Errorf("watch event of type %T", ev.Object)
		}
		rv = cr.ResourceVersion
		if ev.Type == watch.Bookmark || ev.Type == watch.Deleted {
			continue
		}
		l.mu.Lock()
		l.versions[cr.UID] = append(l.versions[cr.UID], cr)
		l.byName[cr.Name] = cr.UID
		l.mu.Unlock()
	}
	return rv, nil
}

func (l *requestLog) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = err
	}
}

func (l *requestLog) close() {
	l.stop()
	<-l.done
}

// history returns every version of a request seen so far, oldest first.
func (l *requestLog) history(uid types.UID) []*v1alpha1.ConsumptionRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*v1alpha1.ConsumptionRequest(nil), l.versions[uid]...)
}

// latest returns the last version seen of the request of that name, or nil.
func (l *requestLog) latest(name string) *v1alpha1.ConsumptionRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := l.versions[l.byName[name]]
	if len(v) == 0 {
		return nil
	}
	return v[len(v)-1]
}

// check fails the test if the watch broke: the history would have gaps.
func (l *requestLog) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		t.Fatal(l.err)
	}
}

// phases returns the phases a request went through, without repeats.
func phases(history []*v1alpha1.ConsumptionRequest) []v1alpha1.RequestPhase {
	var out []v1alpha1.RequestPhase
	for _, cr := range history {
		if p := cr.Status.Phase; len(out) == 0 || out[len(out)-1] != p {
			out = append(out, p)
		}
	}
	return out
}

// sibling returns a new request under w's agreement for the same item.
func sibling(w *world, name string) *v1alpha1.ConsumptionRequest {
	return &v1alpha1.ConsumptionRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.ns},
		Spec:       *w.request.Spec.DeepCopy(),
	}
}
