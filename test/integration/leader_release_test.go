package integration

import (
	"context"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	clientleaderelection "k8s.io/client-go/tools/leaderelection"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/leaderelection"

	"github.com/offering-operator/offering-operator/internal/leaderlock"
)

// TestDeposedLeaderLeavesTheNewLeadersLease runs the manager's lock (a
// Lease, released on cancel as main.go sets it) in client-go's elector,
// lets another process take the lease over between two renewals, as when
// the leader was paused past its lease, and then stops the deposed elector:
// its release must leave the new holder's lease as it is. The faults
// scenario of the bench (BENCH_FAULTS_PAUSE_LEADER) found the lease freed
// this way and a third process leading while the second still did.
func TestDeposedLeaderLeavesTheNewLeadersLease(t *testing.T) {
	if admin == nil {
		t.Skip("integration test: run without -short, through `make test`")
	}
	name := "release-" + rand.String(6)
	lock, err := leaderlock.New(cfg, leaderelection.Options{LeaderElection: true, LeaderElectionID: name,
		LeaderElectionNamespace: metav1.NamespaceDefault, RenewDeadline: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	leading := make(chan struct{})
	elector, err := clientleaderelection.NewLeaderElector(clientleaderelection.LeaderElectionConfig{
		Lock: lock, LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second,
		// Renewals far apart: the takeover lands between two of them.
		RetryPeriod: 8 * time.Second, ReleaseOnCancel: true, Name: name,
		Callbacks: clientleaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { close(leading) },
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); elector.Run(ctx) }()
	select {
	case <-leading:
	case <-time.After(30 * time.Second):
		t.Fatal("the elector never led")
	}
	time.Sleep(time.Second) // its first renewal, right after it acquired, is over

	// Another process holds the lease now.
	key := client.ObjectKey{Namespace: metav1.NamespaceDefault, Name: name}
	var lease coordinationv1.Lease
	if err := admin.Get(ctx, key, &lease); err != nil {
		t.Fatal(err)
	}
	lease.Spec.HolderIdentity = ptr.To("the-new-leader")
	lease.Spec.AcquireTime, lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}, &metav1.MicroTime{Time: time.Now()}
	if err := admin.Update(ctx, &lease); err != nil {
		t.Fatal(err)
	}

	cancel() // the deposed leader stops, and releases what it believes it holds
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the elector did not stop")
	}
	if err := admin.Get(context.Background(), key, &lease); err != nil {
		t.Fatal(err)
	}
	if got := ptr.Deref(lease.Spec.HolderIdentity, ""); got != "the-new-leader" {
		t.Fatalf("the deposed leader's release left the lease held by %q, want the new leader's", got)
	}
}
