package controllers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// The fleet: the member clusters registered with the operator (its own
// cluster is the hub). A cluster administrator registers a member with a
// Secret in the operator's namespace, labelled LabelMemberCluster=true and
// holding a kubeconfig; the operator keeps one controller-runtime
// cluster.Cluster per member, whose cache holds only the operator's own
// objects there, and forwards their events to the request controller. A
// member is started, restarted or stopped when its Secret appears, changes or
// disappears; the manager keeps running. fleet_members.go runs one member,
// fleet_controller.go follows the Secrets, request_placement.go places grants.

// indexRequestCluster indexes requests by the member cluster their grant is placed in.
const indexRequestCluster = "status.cluster"

// fleet is the set of running members.
type fleet struct {
	scheme *runtime.Scheme
	// events carries the events of the members' objects, and the requests to
	// look at again when a member comes or goes, to the request controller.
	events chan event.GenericEvent
	// probeEvery is how often each member's API server is asked for its version.
	probeEvery time.Duration
	// timeout bounds every call the operator makes to a member, so that an
	// unreachable member holds a worker for no longer.
	timeout time.Duration

	// hub reads the hub's cache: the requests placed in a member.
	hub client.Reader

	mu      sync.RWMutex
	members map[string]*member
}

func newFleet(scheme *runtime.Scheme, probeEvery time.Duration) *fleet {
	return &fleet{scheme: scheme, events: make(chan event.GenericEvent, 1024), probeEvery: probeEvery,
		timeout: 10 * time.Second, members: map[string]*member{}}
}

// get returns the running member of that name, or nil.
func (f *fleet) get(name string) *member {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.members[name]
}

// put runs m in place of the member of its name, which is stopped.
func (f *fleet) put(m *member) {
	f.mu.Lock()
	old := f.members[m.name]
	f.members[m.name] = m
	f.mu.Unlock()
	if old != nil {
		old.stop()
	}
}

// remove stops the member of that name, if it runs.
func (f *fleet) remove(name string) {
	f.mu.Lock()
	old := f.members[name]
	delete(f.members, name)
	f.mu.Unlock()
	if old != nil {
		old.stop()
	}
}

// stopAll stops every member (the manager is stopping).
func (f *fleet) stopAll() {
	f.mu.Lock()
	all := f.members
	f.members = map[string]*member{}
	f.mu.Unlock()
	for _, m := range all {
		m.stop()
	}
}

// matching lists the registered members a placement allows, by name.
func (f *fleet) matching(p *v1alpha1.Placement) ([]*member, error) {
	var sel labels.Selector
	if p.ClusterSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(p.ClusterSelector)
		if err != nil {
			return nil, fmt.Errorf("placement.clusterSelector: %w", err)
		}
		sel = s
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []*member
	for _, m := range f.members {
		if allows(p, sel, m.name, m.labels) {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// allows reports whether a placement allows the cluster of that name and
// registration labels. sel is the placement's selector, parsed.
func allows(p *v1alpha1.Placement, sel labels.Selector, name string, lbls map[string]string) bool {
	if sel != nil {
		return sel.Matches(labels.Set(lbls))
	}
	for _, c := range p.Clusters {
		if string(c) == name {
			return true
		}
	}
	return false
}

// notify asks the request controller to look at these requests again.
func (f *fleet) notify(requests []v1alpha1.ConsumptionRequest) {
	for i := range requests {
		f.events <- event.GenericEvent{Object: &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{
			v1alpha1.LabelRequestNamespace: requests[i].Namespace, v1alpha1.LabelRequestName: requests[i].Name,
		}}}}
	}
}

// errNoKubeconfig: a member Secret holds no kubeconfig under either key.
var errNoKubeconfig = errors.New("the Secret has no kubeconfig under the key " + v1alpha1.MemberKubeconfigKey + " (nor value)")

// memberConfig is the REST config of the kubeconfig a member Secret holds:
// under "kubeconfig", or "value" as Cluster API writes it. Only the
// kubeconfig's current context is used; exec plugins and files it names are
// refused, since they would run or read on the operator's machine.
func memberConfig(sec *corev1.Secret) (*rest.Config, error) {
	data := sec.Data[v1alpha1.MemberKubeconfigKey]
	if len(data) == 0 {
		data = sec.Data["value"]
	}
	if len(data) == 0 {
		return nil, errNoKubeconfig
	}
	raw, err := clientcmd.Load(data)
	if err != nil {
		return nil, fmt.Errorf("the kubeconfig does not parse: %w", err)
	}
	for name, a := range raw.AuthInfos {
		if a.Exec != nil || a.AuthProvider != nil || a.TokenFile != "" || a.ClientCertificate != "" || a.ClientKey != "" {
			return nil, fmt.Errorf("user %s of the kubeconfig uses an exec plugin, auth provider or file: only inline credentials are accepted", name)
		}
	}
	for name, c := range raw.Clusters {
		if c.CertificateAuthority != "" {
			return nil, fmt.Errorf("cluster %s of the kubeconfig names a CA file: give certificate-authority-data instead", name)
		}
	}
	cfg, err := clientcmd.NewDefaultClientConfig(*raw, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("the kubeconfig is not usable: %w", err)
	}
	return cfg, nil
}

// placedIn lists the requests whose grant is placed in the named cluster.
func placedIn(ctx context.Context, c client.Reader, name string) ([]v1alpha1.ConsumptionRequest, error) {
	var list v1alpha1.ConsumptionRequestList
	if err := c.List(ctx, &list, client.MatchingFields{indexRequestCluster: name}); err != nil {
		return nil, err
	}
	return list.Items, nil
}
