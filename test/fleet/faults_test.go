package fleet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
	"github.com/offering-operator/offering-operator/internal/testutil"
)

// memberReason waits until the hub's MemberCluster of name has Ready reason.
func memberReason(t *testing.T, name, reason string) *v1alpha1.MemberCluster {
	t.Helper()
	mc := &v1alpha1.MemberCluster{}
	testutil.Eventually(t, wait, "MemberCluster "+name+" "+reason, func() error {
		if err := hub.admin.Get(testCtx, types.NamespacedName{Name: name}, mc); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(mc.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Reason != reason {
			return fmt.Errorf("Ready %+v", c)
		}
		return nil
	})
	return mc
}

// TestMemberStoppedMidBurst: one member's API server stops in the middle of
// a burst of requests spread over two members. The other member's requests
// are granted meanwhile; the stopped member's say ClusterUnreachable; once it
// is back, every request is granted, each exactly once, where it was placed.
func TestMemberStoppedMidBurst(t *testing.T) {
	requireFleet(t)
	register(t, "member-a")
	register(t, "member-b")
	offering(t, "burst", &v1alpha1.Placement{Clusters: []v1alpha1.ClusterName{"member-a", "member-b"}})
	agreement(t, "team-burst", "burst", 0)
	const n = 16
	placement := func(i int) string { return []string{"member-a", "member-b"}[i%2] }
	b := members["member-b"].env.ControlPlane.APIServer
	for i := range n {
		if i == n/2 {
			crash(t, b)
		}
		request(t, "team-burst", fmt.Sprintf("r%d", i), placement(i))
	}
	restarted := false
	defer func() {
		if !restarted {
			if err := b.Start(); err != nil {
				t.Errorf("starting member-b's API server again: %v", err)
			}
		}
	}()
	memberReason(t, "member-b", v1alpha1.ReasonClusterUnreachable)
	for i := 0; i < n; i += 2 {
		readyIn(t, "team-burst", fmt.Sprintf("r%d", i))
	}
	waitReason(t, "team-burst", fmt.Sprintf("r%d", n-1), v1alpha1.ReasonClusterUnreachable)

	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	memberReason(t, "member-b", v1alpha1.ReasonReachable)
	for i := range n {
		placedOnlyIn(t, readyIn(t, "team-burst", fmt.Sprintf("r%d", i)), placement(i))
	}
}

// TestMemberRemovedAndAddedAgain: a member whose Secret is deleted while it
// holds a grant is reported, not forgotten: its MemberCluster says
// ClusterRemoved with the grant counted, the request says ClusterUnreachable,
// deleting the request keeps its finalizer and deleting the agreement waits
// with RevocationPending. Registered again, the grant is revoked there and
// both go.
func TestMemberRemovedAndAddedAgain(t *testing.T) {
	requireFleet(t)
	register(t, "member-b")
	offering(t, "removal", &v1alpha1.Placement{Clusters: []v1alpha1.ClusterName{"member-b"}})
	agr := agreement(t, "team-remove", "removal", 0)
	request(t, "team-remove", "r", "")
	cr := readyIn(t, "team-remove", "r")
	ns := placedOnlyIn(t, cr, "member-b")

	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "member-b", Namespace: operatorNamespace}}
	if err := hub.admin.Delete(testCtx, sec); err != nil {
		t.Fatal(err)
	}
	mc := memberReason(t, "member-b", v1alpha1.ReasonClusterRemoved)
	if mc.Status.Grants < 1 {
		t.Fatalf("the removed cluster reports %d grants, want the request's counted", mc.Status.Grants)
	}
	waitReason(t, "team-remove", "r", v1alpha1.ReasonClusterUnreachable)
	if err := hub.admin.Delete(testCtx, cr); err != nil {
		t.Fatal(err)
	}
	if err := hub.admin.Delete(testCtx, agr); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, wait, "the agreement's deletion waiting for the removed cluster", func() error {
		if err := hub.admin.Get(testCtx, types.NamespacedName{Namespace: "team-remove", Name: "agr"}, agr); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(agr.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Reason != v1alpha1.ReasonRevocationPending {
			return fmt.Errorf("Ready %+v", c)
		}
		return nil
	})
	testutil.Consistently(t, 2*time.Second, "the request waits for its revocation", func() error {
		if err := hub.admin.Get(testCtx, types.NamespacedName{Namespace: "team-remove", Name: "r"}, cr); err != nil {
			return err
		}
		if len(grantedNamespaces(t, members["member-b"], cr.UID)) != 1 {
			return errors.New("the namespace in the removed cluster changed")
		}
		return nil
	})

	register(t, "member-b")
	testutil.Eventually(t, wait, "the request and agreement gone, the grant revoked in member-b", func() error {
		if err := hub.admin.Get(testCtx, types.NamespacedName{Namespace: "team-remove", Name: "r"}, cr); !apierrors.IsNotFound(err) {
			return fmt.Errorf("request: %w", err)
		}
		if err := hub.admin.Get(testCtx, types.NamespacedName{Namespace: "team-remove", Name: "agr"}, agr); !apierrors.IsNotFound(err) {
			return fmt.Errorf("agreement: %w", err)
		}
		if left := grantedNamespaces(t, members["member-b"], cr.UID); len(left) > 0 {
			return fmt.Errorf("namespace %s still in member-b", ns)
		}
		return nil
	})
}

// crash kills an API server at once, as a crash or a lost node would (its
// etcd keeps running). A graceful stop would drain its requests for a
// minute first.
func crash(t *testing.T, s *envtest.APIServer) {
	t.Helper()
	flag := "--secure-port=" + s.Port
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	killed := false
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if strings.HasSuffix(args[0], "kube-apiserver") && slices.Contains(args, flag) {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	if !killed {
		t.Fatalf("no kube-apiserver process with %s", flag)
	}
	// envtest sees the process gone and lets go of it.
	_ = s.Stop()
}
