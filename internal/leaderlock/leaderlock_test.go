package leaderlock

import (
	"context"
	"testing"

	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// fakeLock is a lease held in memory: Get returns it, Update replaces it.
type fakeLock struct {
	resourcelock.Interface // the methods Guard does not call
	held                   resourcelock.LeaderElectionRecord
	updates                int
}

func (f *fakeLock) Get(context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec := f.held
	return &rec, nil, nil
}

func (f *fakeLock) Update(_ context.Context, rec resourcelock.LeaderElectionRecord) error {
	f.held = rec
	f.updates++
	return nil
}

func (f *fakeLock) Identity() string { return "me" }
func (f *fakeLock) Describe() string { return "default/lease" }

func TestGuardReleasesOnlyALeaseItHolds(t *testing.T) {
	ctx := context.Background()
	release := resourcelock.LeaderElectionRecord{LeaseDurationSeconds: 1}
	for _, tc := range []struct {
		name, holder string
		update       resourcelock.LeaderElectionRecord
		want         string // the holder afterwards
	}{
		{name: "its own lease is released", holder: "me", update: release, want: ""},
		{name: "a successor's lease is left alone", holder: "the-new-leader", update: release, want: "the-new-leader"},
		{name: "an unheld lease is not released again", holder: "", update: release, want: ""},
		{name: "a renewal or an acquisition goes through", holder: "the-new-leader", update: resourcelock.LeaderElectionRecord{HolderIdentity: "me"}, want: "me"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeLock{held: resourcelock.LeaderElectionRecord{HolderIdentity: tc.holder}}
			g := Guard(f)
			if _, _, err := g.Get(ctx); err != nil {
				t.Fatal(err)
			}
			err := g.Update(ctx, tc.update)
			if f.held.HolderIdentity != tc.want {
				t.Fatalf("holder %q after the update (error %v), want %q", f.held.HolderIdentity, err, tc.want)
			}
			if refused := f.updates == 0; refused != (err != nil) {
				t.Fatalf("update sent: %t, error: %v", !refused, err)
			}
		})
	}
}
