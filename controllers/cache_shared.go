package controllers

import (
	"crypto/sha256"
	"maps"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"unique"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// What the children of many grants have in common is cached once. Every
// grant of an item has the same quota, limit range, network policy and role
// bindings, and the RoleBindings, quota, limit range and network policy of
// one grant carry the same labels: the cache keeps one copy of each distinct
// spec and of each distinct label set, and every object that has it points
// at that copy. Objects leave the cache unchanged in content (the client's
// reads deep-copy them), so comparisons, drift repair and writes see what
// they saw before.

// sharedChildren replaces the spec (and, for RoleBindings, roleRef and
// subjects) and the labels of a cached child by the copies already held for
// the same content, and interns their names; forCache comes first.
func sharedChildren(in any) (any, error) {
	out, err := forCache(in)
	switch o := out.(type) {
	case *rbacv1.RoleBinding:
		b := shared(rbacv1.RoleBinding{RoleRef: o.RoleRef, Subjects: o.Subjects})
		o.RoleRef, o.Subjects = b.RoleRef, b.Subjects
		shareLabels(o)
	case *corev1.ResourceQuota:
		o.Spec = shared(o.Spec)
		shareLabels(o)
	case *corev1.LimitRange:
		o.Spec = shared(o.Spec)
		shareLabels(o)
	case *networkingv1.NetworkPolicy:
		o.Spec = shared(o.Spec)
		shareLabels(o)
	case *corev1.Namespace:
		n := shared(corev1.Namespace{Spec: o.Spec, Status: o.Status})
		o.Spec, o.Status = n.Spec, n.Status
	}
	// Names repeat across grants (the children's) and a grant's namespace
	// name across its children.
	if o, ok := out.(metav1.Object); ok {
		o.SetName(internString(o.GetName()))
		o.SetNamespace(internString(o.GetNamespace()))
	}
	return out, err
}

// internRequest shares the strings a cached request has in common with
// others: its finalizer, the types, statuses and reasons of its conditions,
// its phase, item, offering and agreement, and who decided under which
// policy. Messages and names, which differ, are left alone.
func internRequest(cr *v1alpha1.ConsumptionRequest) {
	for i := range cr.Finalizers {
		intern(&cr.Finalizers[i])
	}
	intern(&cr.Spec.Agreement)
	st := &cr.Status
	for i := range st.Conditions {
		c := &st.Conditions[i]
		intern(&c.Type)
		intern(&c.Status)
		intern(&c.Reason)
	}
	intern(&st.Phase)
	intern(&st.Item)
	intern(&st.Offering)
	if d := st.Decision; d != nil {
		intern(&d.Type)
		intern(&d.AgreementUID)
		intern(&d.ApprovalPolicy)
		intern(&d.By.Username)
		for i := range d.By.Groups {
			intern(&d.By.Groups[i])
		}
	}
}

func intern[S ~string](s *S) { *s = S(internString(string(*s))) }

func internString(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}

// specs holds one copy of each distinct content seen, by the digest of its
// type and protobuf encoding. The operator writes a handful of distinct specs (one per item
// and plan); the rest are what someone else wrote, perhaps a tenant (a
// namespace admin may label RoleBindings), so what the table keeps that no
// cached object still points at is bounded: contents above maxSharedSize are
// not shared, and the table is emptied when it reaches maxSharedSpecs
// entries (objects keep the copy they point at; sharing starts again).
var specs = struct {
	sync.Mutex
	m map[[sha256.Size]byte]any
}{m: map[[sha256.Size]byte]any{}}

const (
	maxSharedSpecs = 1024
	maxSharedSize  = 4 << 10
)

// shared returns the copy held for content equal to v: of the same protobuf
// encoding, which for these types is semantic equality (quantities are
// encoded in canonical form, map keys in order, nil and empty alike), holding
// v when it is new.
func shared[T any, PT interface {
	*T
	Marshal() ([]byte, error)
}](v T) T {
	key, ok := specKey[T, PT](v)
	if !ok {
		return v
	}
	specs.Lock()
	defer specs.Unlock()
	if have, ok := specs.m[key].(T); ok {
		return have
	}
	if len(specs.m) >= maxSharedSpecs {
		clear(specs.m)
	}
	specs.m[key] = v
	return v
}

// specKey is the digest of v's type and encoding; false when v is not to be
// shared (it does not encode, or is above maxSharedSize).
func specKey[T any, PT interface {
	*T
	Marshal() ([]byte, error)
}](v T) ([sha256.Size]byte, bool) {
	b, err := PT(&v).Marshal()
	if err != nil || len(b) > maxSharedSize {
		return [sha256.Size]byte{}, false
	}
	return sha256.Sum256(append([]byte(reflect.TypeFor[T]().String()+"\x00"), b...)), true
}

// labelSets holds one map per distinct label set of the cached children,
// with the number of cached objects that point at it: an entry goes when the
// last of them is collected (runtime.AddCleanup), so the table follows the
// cache. Label sets above maxSharedSize are not shared.
var labelSets = struct {
	sync.Mutex
	m map[[sha256.Size]byte]*labelSet
}{m: map[[sha256.Size]byte]*labelSet{}}

type labelSet struct {
	key    [sha256.Size]byte
	labels map[string]string
	refs   int
}

// shareLabels points obj's labels at the map held for the same set.
func shareLabels[T any, PT interface {
	*T
	metav1.Object
}](obj PT) {
	lbls := obj.GetLabels()
	key, ok := labelKey(lbls)
	if !ok {
		return
	}
	labelSets.Lock()
	set, ok := labelSets.m[key]
	if !ok {
		set = &labelSet{key: key, labels: lbls}
		labelSets.m[key] = set
	}
	set.refs++
	labelSets.Unlock()
	obj.SetLabels(set.labels)
	runtime.AddCleanup((*T)(obj), releaseLabels, set)
}

func releaseLabels(set *labelSet) {
	labelSets.Lock()
	defer labelSets.Unlock()
	if set.refs--; set.refs <= 0 && labelSets.m[set.key] == set {
		delete(labelSets.m, set.key)
	}
}

// labelKey is the digest of a label set, keys in order; NUL separates keys
// and values, which label syntax never contains. It reports false for no
// labels and for sets above maxSharedSize.
func labelKey(lbls map[string]string) ([sha256.Size]byte, bool) {
	var b []byte
	for _, k := range slices.Sorted(maps.Keys(lbls)) {
		b = append(append(append(append(b, k...), 0), lbls[k]...), 0)
		if len(b) > maxSharedSize {
			return [sha256.Size]byte{}, false
		}
	}
	return sha256.Sum256(b), len(b) > 0
}
