package controllers

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// +kubebuilder:rbac:groups=service.offering.dev,resources=memberclusters,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=service.offering.dev,resources=memberclusters/status,verbs=get;update;patch

// MemberClusterReconciler follows the member cluster Secrets of the
// operator's namespace: it starts, restarts and stops members, probes them,
// and reports each in its MemberCluster and in metrics.
type MemberClusterReconciler struct {
	reconciler
	fleet *fleet
	// secrets is a cache of the member cluster Secrets alone.
	secrets cache.Cache
}

// setupFleet creates the fleet and, when the operator knows its namespace,
// the controller of its members.
func setupFleet(ctx context.Context, mgr ctrl.Manager, base reconciler) (*fleet, error) {
	f := newFleet(mgr.GetScheme(), base.Options.FleetProbeInterval)
	f.hub = mgr.GetClient()
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.ConsumptionRequest{}, indexRequestCluster, func(o client.Object) []string {
		if c := o.(*v1alpha1.ConsumptionRequest).Status.Cluster; c != "" {
			return []string{c}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		f.stopAll()
		return nil
	})); err != nil {
		return nil, err
	}
	if base.Options.OperatorNamespace == "" {
		return f, nil
	}
	secrets, err := cache.New(mgr.GetConfig(), cache.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		DefaultNamespaces: map[string]cache.Config{base.Options.OperatorNamespace: {}},
		ByObject: map[client.Object]cache.ByObject{&corev1.Secret{}: {
			Label: labels.SelectorFromSet(labels.Set{v1alpha1.LabelMemberCluster: v1alpha1.MemberClusterValue})}}})
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(secrets); err != nil {
		return nil, err
	}
	r := &MemberClusterReconciler{reconciler: base, fleet: f, secrets: secrets}
	return f, ctrl.NewControllerManagedBy(mgr).Named("membercluster").
		WatchesRawSource(source.Kind(secrets, &corev1.Secret{}, &handler.TypedEnqueueRequestForObject[*corev1.Secret]{})).
		// A MemberCluster deleted by hand is written again.
		Watches(&v1alpha1.MemberCluster{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: base.Options.OperatorNamespace, Name: o.GetName()}}}
		}), builder.WithPredicates(predicate.Funcs{
			CreateFunc: func(event.CreateEvent) bool { return false }, UpdateFunc: func(event.UpdateEvent) bool { return false },
			GenericFunc: func(event.GenericEvent) bool { return false },
		})).
		Complete(r)
}

// Reconcile registers, probes or removes the member of one Secret.
func (r *MemberClusterReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var sec corev1.Secret
	err := r.secrets.Get(ctx, req.NamespacedName, &sec)
	if apierrors.IsNotFound(err) || (err == nil && !sec.DeletionTimestamp.IsZero()) {
		return r.unregister(ctx, req.Name)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	m, err := r.register(&sec)
	if err != nil {
		r.fleet.remove(sec.Name)
		metricMemberReachable.WithLabelValues(sec.Name).Set(0)
		return ctrl.Result{}, r.report(ctx, sec.Name, func(st *v1alpha1.MemberClusterStatus) {
			setMemberReady(st, metav1.ConditionFalse, v1alpha1.ReasonInvalidKubeconfig, err.Error())
		})
	}
	was := m.lastProbe()
	p := m.probeNow(r.Options.Clock.Now())
	if p.err != nil {
		metricMemberErrors.WithLabelValues(m.name).Inc()
		metricMemberReachable.WithLabelValues(m.name).Set(0)
	} else {
		metricMemberReachable.WithLabelValues(m.name).Set(1)
	}
	if (was.err == nil) != (p.err == nil) || was.at.IsZero() {
		// Reachable again, or not any more: its requests say so.
		r.fleet.notifyAll(ctx, m)
	}
	err = r.report(ctx, m.name, func(st *v1alpha1.MemberClusterStatus) { probed(st, m, p) })
	return ctrl.Result{RequeueAfter: r.fleet.probeEvery}, err
}

// register returns the running member of a Secret, starting it (again) when
// the Secret is new or changed.
func (r *MemberClusterReconciler) register(sec *corev1.Secret) (*member, error) {
	if m := r.fleet.get(sec.Name); m != nil && m.registration == sec.ResourceVersion {
		return m, nil
	}
	if errs := validation.IsDNS1123Label(sec.Name); len(errs) > 0 {
		return nil, fmt.Errorf("the Secret's name is the cluster's name and must be a DNS label: %s", strings.Join(errs, "; "))
	}
	cfg, err := memberConfig(sec)
	if err != nil {
		return nil, err
	}
	m, err := r.fleet.startMember(sec.Name, sec.ResourceVersion, sec.Labels, cfg)
	if err != nil {
		return nil, err
	}
	r.fleet.put(m)
	return m, nil
}

// unregister stops a member whose Secret is gone. Its MemberCluster goes
// too, unless grants are still placed there: those are reported (Ready
// False, ClusterRemoved, a Warning event and a metric), and revoked if the
// cluster is registered again.
func (r *MemberClusterReconciler) unregister(ctx context.Context, name string) (ctrl.Result, error) {
	r.fleet.remove(name)
	metricMemberReachable.DeleteLabelValues(name)
	placed, err := holdingIn(ctx, r.Client, name)
	if err != nil {
		return ctrl.Result{}, err
	}
	metricMemberStranded.WithLabelValues(name).Set(float64(len(placed)))
	if len(placed) == 0 {
		metricMemberStranded.DeleteLabelValues(name)
		mc := &v1alpha1.MemberCluster{ObjectMeta: metav1.ObjectMeta{Name: name}}
		return ctrl.Result{}, client.IgnoreNotFound(r.Delete(ctx, mc))
	}
	r.fleet.notify(placed)
	names := make([]string, 0, min(len(placed), 5))
	for i := range placed[:min(len(placed), 5)] {
		names = append(names, placed[i].Namespace+"/"+placed[i].Name)
	}
	msg := fmt.Sprintf("the cluster's Secret was deleted while %d request(s) hold grants placed in it (%s): they cannot be revoked "+
		"until it is registered again", len(placed), strings.Join(names, ", "))
	err = r.report(ctx, name, func(st *v1alpha1.MemberClusterStatus) {
		st.Grants = int32(len(placed))
		if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady); c == nil || c.Reason != v1alpha1.ReasonClusterRemoved {
			r.Recorder.Eventf(&v1alpha1.MemberCluster{ObjectMeta: metav1.ObjectMeta{Name: name}}, nil, corev1.EventTypeWarning,
				v1alpha1.ReasonClusterRemoved, "Unregister", "%s", msg)
		}
		setMemberReady(st, metav1.ConditionFalse, v1alpha1.ReasonClusterRemoved, msg)
	})
	return ctrl.Result{RequeueAfter: r.fleet.probeEvery}, err
}

// probed records a probe in a MemberCluster's status.
func probed(st *v1alpha1.MemberClusterStatus, m *member, p probeResult) {
	at := metav1.NewTime(p.at)
	st.LastProbeTime, st.Server = &at, m.server
	if p.err != nil {
		setMemberReady(st, metav1.ConditionFalse, v1alpha1.ReasonClusterUnreachable, p.err.Error())
		return
	}
	st.Version = p.version
	if !m.synced.Load() {
		setMemberReady(st, metav1.ConditionFalse, v1alpha1.ReasonClusterUnreachable, "the API server answers; the operator's cache of the cluster is syncing")
		return
	}
	setMemberReady(st, metav1.ConditionTrue, v1alpha1.ReasonReachable, "the operator reaches the cluster's API server, version "+p.version)
}

func setMemberReady(st *v1alpha1.MemberClusterStatus, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: status, Reason: reason, Message: truncate(msg, 1024)})
}

// report writes what change makes of a MemberCluster's status, creating
// the MemberCluster when it does not exist.
func (r *MemberClusterReconciler) report(ctx context.Context, name string, change func(*v1alpha1.MemberClusterStatus)) error {
	mc := &v1alpha1.MemberCluster{}
	if err := r.Get(ctx, types.NamespacedName{Name: name}, mc); err != nil {
		if !apierrors.IsNotFound(err) {
			return err
		}
		mc = &v1alpha1.MemberCluster{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := r.Create(ctx, mc); err != nil {
			return err
		}
	}
	want := mc.Status.DeepCopy()
	change(want)
	placed, err := holdingIn(ctx, r.Client, name)
	if err != nil {
		return err
	}
	want.Grants = int32(len(placed))
	if equality.Semantic.DeepEqual(*want, mc.Status) {
		return nil
	}
	mc.Status = *want
	return client.IgnoreNotFound(r.Status().Update(ctx, mc, client.FieldOwner(FieldOwner)))
}

// holdingIn lists the requests that hold a grant placed in the named
// cluster, or are being deleted and wait to revoke one.
func holdingIn(ctx context.Context, c client.Reader, name string) ([]v1alpha1.ConsumptionRequest, error) {
	placed, err := placedIn(ctx, c, name)
	out := placed[:0]
	for i := range placed {
		if holdsAccess(&placed[i]) || !placed[i].DeletionTimestamp.IsZero() {
			out = append(out, placed[i])
		}
	}
	return out, err
}
