package controllers

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// hostileObjectsBound is how much the manager's heap may grow when a tenant
// fills its namespace with objects carrying the operator's labels.
const hostileObjectsBound = 50 << 20

// hostileCount is how many hostile objects a memory test creates: the
// environment variable env (make bench sets a thousand), or def, enough to
// exceed hostileObjectsBound several times over when cached whole.
func hostileCount(t *testing.T, env string, def int) int {
	if v := os.Getenv(env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive count", env, v)
		}
		return n
	}
	return def
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// hostileWriters is how many objects a memory test's tenant has in flight at
// a time. A tenant is not limited to one, and what the test is about is what
// each object costs the manager, not a sequence of round trips.
const hostileWriters = 8

// createAll creates the n objects obj makes with c, hostileWriters at a time,
// and returns how long that took.
func createAll(t *testing.T, c client.Client, n int, obj func(i int) client.Object) time.Duration {
	t.Helper()
	start := time.Now()
	var g errgroup.Group
	g.SetLimit(hostileWriters)
	for i := range n {
		g.Go(func() error {
			o := obj(i)
			if err := c.Create(testCtx, o); err != nil {
				return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// namespaceEditor is a client for a user who holds in ns what the built-in
// edit role gives on resource of group (envtest runs no aggregation
// controller, so edit itself holds no rules there); list is of that kind.
func namespaceEditor(t *testing.T, ns, group, resource string, list client.ObjectList) client.Client {
	t.Helper()
	user := uniq("editor")
	mustCreate(t, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "edit", Namespace: ns},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{group}, Resources: []string{resource},
			Verbs: []string{"create", "delete", "deletecollection", "patch", "update", "get", "list", "watch"}}}})
	mustCreate(t, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "edit", Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "edit"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}})
	cfg := rest.CopyConfig(testEnv.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	cfg.QPS, cfg.Burst = 100, 100
	editor, err := client.New(cfg, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "editor authorized", func() error {
		return editor.List(testCtx, list, client.InNamespace(ns))
	})
	return editor
}

// TestHostileLabelledObjectsStayOutOfTheCache: a namespace editor (what the
// built-in edit role allows on ConfigMaps, in its own namespace only) creates ConfigMaps of almost
// a MiB each that carry the operator's managed-by and request labels, so that
// the manager's informers receive them. The cache keeps them (the label is all
// it selects by) but without their content, annotations or foreign labels:
// the manager's heap grows by less than hostileObjectsBound. The figures are
// printed for docs/performance.md (HOSTILE_CONFIGMAPS=1000 for the figure of
// a thousand).
func TestHostileLabelledObjectsStayOutOfTheCache(t *testing.T) {
	requireAPIServer(t)
	n := hostileCount(t, "HOSTILE_CONFIGMAPS", 200)
	ns := uniq("hostile")
	mustCreate(t, nsObj(ns))
	t.Cleanup(func() { _ = admin.Delete(testCtx, nsObj(ns)) })
	editor := namespaceEditor(t, ns, "", "configmaps", &corev1.ConfigMapList{})

	before := heapInUse()
	payload := strings.Repeat("x", 1000<<10)
	annotation := strings.Repeat("a", 200<<10)
	created := createAll(t, editor, n, func(i int) client.Object {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("junk-%d", i), Namespace: ns,
			Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelRequestUID: fmt.Sprintf("forged-%d", i),
				v1alpha1.LabelRequestNamespace: ns, v1alpha1.LabelRequestName: "junk", "tenant.example/junk": "x"},
			Annotations: map[string]string{v1alpha1.AnnotationSource: annotation}},
			Data: map[string]string{"junk": payload[:len(payload)-len(annotation)]}}
	})
	eventually(t, 2*time.Minute, "the manager's cache holds every labelled ConfigMap", func() error {
		var list corev1.ConfigMapList
		if err := managerCache.List(testCtx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		if len(list.Items) != n {
			return fmt.Errorf("%d of %d", len(list.Items), n)
		}
		for i := range list.Items {
			if cm := &list.Items[i]; len(cm.Data) != 0 || len(cm.Annotations) != 0 || cm.Labels["tenant.example/junk"] != "" {
				return fmt.Errorf("ConfigMap %s is cached with its content: %d keys, %d annotations, labels %v",
					cm.Name, len(cm.Data), len(cm.Annotations), cm.Labels)
			}
		}
		return nil
	})
	after := heapInUse()
	growth := int64(after) - int64(before)
	t.Logf("%d labelled ConfigMaps of %d KiB (created %d at a time in %s): manager heap %.1f MiB before, %.1f MiB after, growth %.1f MiB (bound %d MiB)",
		n, len(payload)>>10, hostileWriters, created.Round(time.Second), float64(before)/(1<<20), float64(after)/(1<<20),
		float64(growth)/(1<<20), hostileObjectsBound>>20)
	if growth > hostileObjectsBound {
		t.Errorf("the heap grew by %.1f MiB with %d hostile ConfigMaps, more than %d MiB", float64(growth)/(1<<20), n, hostileObjectsBound>>20)
	}
}

// TestHostileNetworkPoliciesStayOutOfTheCache: a namespace editor (the
// built-in edit role may write NetworkPolicies) creates NetworkPolicies that
// carry the operator's labels and a large annotation. The cache holds only
// the one NetworkPolicy name the operator gives its own (networkPolicyName),
// so none of them reaches the manager's heap; the last, created under that
// name, shows that the informer saw everything before it.
func TestHostileNetworkPoliciesStayOutOfTheCache(t *testing.T) {
	requireAPIServer(t)
	ns := uniq("hostile-netpol")
	mustCreate(t, nsObj(ns))
	t.Cleanup(func() { _ = admin.Delete(testCtx, nsObj(ns)) })
	editor := namespaceEditor(t, ns, networkingv1.GroupName, "networkpolicies", &networkingv1.NetworkPolicyList{})
	annotation := strings.Repeat("a", 200<<10)
	policy := func(name string) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Labels:      map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelRequestUID: "forged"},
			Annotations: map[string]string{"tenant.example/junk": annotation}}}
	}
	for i := range 50 {
		if err := editor.Create(testCtx, policy(fmt.Sprintf("junk-%d", i))); err != nil {
			t.Fatalf("the editor creating NetworkPolicy %d: %v", i, err)
		}
	}
	if err := editor.Create(testCtx, policy(networkPolicyName)); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the informer reaches the last NetworkPolicy", func() error {
		return managerCache.Get(testCtx, client.ObjectKey{Namespace: ns, Name: networkPolicyName}, &networkingv1.NetworkPolicy{})
	})
	var list networkingv1.NetworkPolicyList
	if err := managerCache.List(testCtx, &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Errorf("the manager caches %d of the editor's labelled NetworkPolicies, want only %s", len(list.Items), networkPolicyName)
	}
}

// maxSizeRequest is a ConsumptionRequest as large as a consumer can make it:
// every parameter and secret parameter the CRD admits at its longest, an
// annotation of almost the API server's limit and a set of labels.
func maxSizeRequest(name, ns string) *v1alpha1.ConsumptionRequest {
	cr := makeRequest(name, ns).action("install").obj()
	cr.Annotations = map[string]string{"tenant.example/junk": strings.Repeat("a", 250<<10)}
	cr.Labels = map[string]string{}
	for i := range 64 {
		cr.Labels[fmt.Sprintf("tenant.example/junk-%02d", i)] = strings.Repeat("l", 63)
		cr.Labels[fmt.Sprintf("%s/junk-%02d", v1alpha1.GroupVersion.Group, i)] = strings.Repeat("l", 63)
	}
	for i := range 32 {
		cr.Spec.Action.Parameters = append(cr.Spec.Action.Parameters,
			v1alpha1.ParameterValue{Name: v1alpha1.ParameterName(fmt.Sprintf("P%02d", i)), Value: strings.Repeat("v", 4096)})
	}
	for i := range 16 {
		cr.Spec.Action.SecretParameters = append(cr.Spec.Action.SecretParameters, v1alpha1.SecretParameterValue{
			Name:         v1alpha1.ParameterName(fmt.Sprintf("S%02d", i)),
			SecretKeyRef: v1alpha1.SecretKeySelector{Name: v1alpha1.ObjectName(strings.Repeat("s", 253)), Key: strings.Repeat("k", 253)}})
	}
	return cr
}

// TestMaxSizeRequestsStayOutOfTheCache: a consumer (the shipped consumer
// role) creates action requests as large as the CRD and the API server let
// it: every parameter at its longest, a large annotation, many labels. The
// manager caches its requests, but not what the consumer chose the size of:
// parameter values and secret references are read live when the Job is
// built, annotations and labels are not read at all. The manager's heap
// grows by less than hostileObjectsBound; HOSTILE_REQUESTS sets how many
// (make bench: a thousand).
func TestMaxSizeRequestsStayOutOfTheCache(t *testing.T) {
	requireAPIServer(t)
	n := hostileCount(t, "HOSTILE_REQUESTS", 200)
	ns := uniq("hostile-requests")
	mustCreate(t, nsObj(ns))
	t.Cleanup(func() {
		_ = admin.DeleteAllOf(testCtx, &v1alpha1.ConsumptionRequest{}, client.InNamespace(ns))
		_ = admin.Delete(testCtx, nsObj(ns))
	})
	cfg := rest.CopyConfig(testUsers[consumerUser])
	cfg.QPS, cfg.Burst = 100, 100
	consumer, err := client.New(cfg, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}

	before := heapInUse()
	created := createAll(t, consumer, n, func(i int) client.Object { return maxSizeRequest(fmt.Sprintf("junk-%d", i), ns) })
	eventually(t, 3*time.Minute, "the manager caches and reconciles every request", func() error {
		var list v1alpha1.ConsumptionRequestList
		if err := managerCache.List(testCtx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		reconciled := 0
		for i := range list.Items {
			if meta.FindStatusCondition(list.Items[i].Status.Conditions, v1alpha1.ConditionReady) != nil {
				reconciled++
			}
		}
		if len(list.Items) != n || reconciled != n {
			return fmt.Errorf("%d of %d cached, %d reconciled", len(list.Items), n, reconciled)
		}
		return nil
	})
	after := heapInUse()
	growth := int64(after) - int64(before)
	t.Logf("%d maximum-size requests (created %d at a time in %s): manager heap %.1f MiB before, %.1f MiB after, growth %.1f MiB (bound %d MiB)",
		n, hostileWriters, created.Round(time.Second), float64(before)/(1<<20), float64(after)/(1<<20), float64(growth)/(1<<20), hostileObjectsBound>>20)
	if growth > hostileObjectsBound {
		t.Errorf("the heap grew by %.1f MiB with %d maximum-size requests, more than %d MiB", float64(growth)/(1<<20), n, hostileObjectsBound>>20)
	}
	var list v1alpha1.ConsumptionRequestList
	if err := managerCache.List(testCtx, &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for i := range list.Items {
		cr := &list.Items[i]
		values, refs := 0, 0
		for _, p := range cr.Spec.Action.Parameters {
			values += len(p.Value)
		}
		for _, p := range cr.Spec.Action.SecretParameters {
			refs += len(p.SecretKeyRef.Name) + len(p.SecretKeyRef.Key)
		}
		if len(cr.Annotations) != 0 || len(cr.Labels) != 0 || values != 0 || refs != 0 || len(cr.Spec.Action.Parameters) != 32 {
			t.Fatalf("request %s is cached with %d annotations, %d labels, %d bytes of parameter values, %d of secret references "+
				"(and %d parameter names, want 32)", cr.Name, len(cr.Annotations), len(cr.Labels), values, refs, len(cr.Spec.Action.Parameters))
		}
	}
}

func TestContentless(t *testing.T) {
	meta := metav1.ObjectMeta{Name: "copy", Namespace: "team-a", UID: "u", ResourceVersion: "7",
		Labels:          map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelRequestUID: "r", "tenant/x": "y"},
		Annotations:     map[string]string{v1alpha1.AnnotationSource: "colo/src", "big": strings.Repeat("a", 1024)},
		OwnerReferences: []metav1.OwnerReference{{Name: "owner"}},
		ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}
	wantLabels := map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelRequestUID: "r"}
	for _, in := range []client.Object{
		&corev1.Secret{ObjectMeta: *meta.DeepCopy(), Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"k": []byte("v")}},
		&corev1.ConfigMap{ObjectMeta: *meta.DeepCopy(), Data: map[string]string{"k": "v"}, BinaryData: map[string][]byte{"b": {1}}},
	} {
		out, err := contentless(in)
		if err != nil {
			t.Fatal(err)
		}
		o := out.(client.Object)
		if o.GetName() != "copy" || o.GetNamespace() != "team-a" || o.GetUID() != "u" || o.GetResourceVersion() != "7" {
			t.Errorf("%T: identity lost: %+v", o, o)
		}
		if fmt.Sprint(o.GetLabels()) != fmt.Sprint(wantLabels) || len(o.GetAnnotations()) != 0 || len(o.GetOwnerReferences()) != 0 || len(o.GetManagedFields()) != 0 {
			t.Errorf("%T: labels %v, annotations %v, owners %v, managedFields %v; want only the operator's labels",
				o, o.GetLabels(), o.GetAnnotations(), o.GetOwnerReferences(), o.GetManagedFields())
		}
		switch c := o.(type) {
		case *corev1.Secret:
			if c.Data != nil || c.Type != "" {
				t.Errorf("Secret content kept: %v %s", c.Data, c.Type)
			}
		case *corev1.ConfigMap:
			if c.Data != nil || c.BinaryData != nil {
				t.Errorf("ConfigMap content kept: %v %v", c.Data, c.BinaryData)
			}
		}
	}
}
