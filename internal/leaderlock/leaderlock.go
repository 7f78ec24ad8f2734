// Package leaderlock builds the manager's leader-election lock:
// controller-runtime's Lease lock, guarded so that a process releases the
// lease only while it still holds it.
package leaderlock

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/leaderelection"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
)

// New returns the lock controller-runtime would build for opts (a Lease,
// its identity the host name and a UUID, "became leader" Events on it),
// wrapped by Guard.
func New(cfg *rest.Config, opts leaderelection.Options) (resourcelock.Interface, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	lock, err := leaderelection.NewResourceLock(cfg, leaseEvents{broadcaster}, opts)
	if err != nil || lock == nil {
		return lock, err
	}
	return Guard(lock), nil
}

// Guard wraps lock so that an update releasing the lease (no holder) is
// sent only when the lease, as last read or written, is held by this
// process. client-go's LeaderElector, told to release on cancel, reads the
// lease and then releases it if it was the holder at its own last renewal,
// whoever holds it now: a leader paused past its lease (a long garbage
// collection, a frozen VM) and deposed meanwhile would, on its way out,
// release the new leader's lease, and a third process could lead while the
// new leader still does.
func Guard(lock resourcelock.Interface) resourcelock.Interface {
	return &guarded{Interface: lock}
}

type guarded struct {
	resourcelock.Interface
	mu     sync.Mutex
	holder string // the lease's holder as last read or written
}

func (g *guarded) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec, raw, err := g.Interface.Get(ctx)
	if err == nil {
		g.observe(rec.HolderIdentity)
	}
	return rec, raw, err
}

func (g *guarded) Create(ctx context.Context, rec resourcelock.LeaderElectionRecord) error {
	err := g.Interface.Create(ctx, rec)
	if err == nil {
		g.observe(rec.HolderIdentity)
	}
	return err
}

func (g *guarded) Update(ctx context.Context, rec resourcelock.LeaderElectionRecord) error {
	g.mu.Lock()
	holder := g.holder
	g.mu.Unlock()
	if rec.HolderIdentity == "" && holder != g.Identity() {
		return fmt.Errorf("not releasing %s: it is held by %q, no longer by this process (%s)", g.Describe(), holder, g.Identity())
	}
	err := g.Interface.Update(ctx, rec)
	if err == nil {
		g.observe(rec.HolderIdentity)
	}
	return err
}

func (g *guarded) observe(holder string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.holder = holder
}

// leaseEvents records the lock's Events with client-go's recorder, as
// controller-runtime's manager does for its own lock.
type leaseEvents struct{ broadcaster record.EventBroadcaster }

func (p leaseEvents) GetEventRecorderFor(name string) record.EventRecorder {
	return p.broadcaster.NewRecorder(clientgoscheme.Scheme, corev1.EventSource{Component: name})
}

// GetEventRecorder is not used by the lock (NewResourceLock asks for the
// old API's recorder).
func (p leaseEvents) GetEventRecorder(string) recorder.EventRecorder { return nil }
