// Package admissiontest installs the admission policies of config/admission
// into a test API server (envtest), as `make install` does into a cluster,
// and waits until the API server enforces them.
package admissiontest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
	"github.com/offering-operator/offering-operator/internal/testutil"
)

// probeName names the objects that probe whether the policies are enforced.
const probeName = "admission-probe"

// Install creates every object of the kustomization in dir (its resources
// files), as an administrator, but those named in skip.
func Install(ctx context.Context, c client.Client, dir string, skip ...string) error {
	objs, err := Load(dir)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if slices.Contains(skip, o.GetName()) {
			continue
		}
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return nil
}

// Load reads the objects of the kustomization in dir: the files its
// resources list, in that order.
func Load(dir string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := sigsyaml.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	var out []*unstructured.Unstructured
	for _, f := range k.Resources {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil, err
		}
		objs, err := testutil.DecodeObjects(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, objs...)
	}
	return out, nil
}

// probeUser may write the status of requests in the probe namespace but is
// not the operator: the policies must refuse its writes.
const probeUser = "offering-operator:admission-probe"

// Wait returns once the API server enforces the policies: a new request gets
// spec.creator, and a status write by someone other than
// the operator is refused. cfg is an administrator's; namespace is created
// for the probe and left in place, the probe request is deleted (a manager
// started afterwards would otherwise find it in its first list).
func Wait(ctx context.Context, cfg *rest.Config, c client.Client, namespace string, timeout time.Duration) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: probeName, Namespace: namespace},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group},
			Resources: []string{"consumptionrequests/status"}, Verbs: []string{"get", "update", "patch"}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: probeName, Namespace: namespace},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: probeUser}}}
	for _, o := range []client.Object{role, binding} {
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	probeCfg := rest.CopyConfig(cfg)
	probeCfg.Impersonate = rest.ImpersonationConfig{UserName: probeUser}
	probe, err := client.New(probeCfg, client.Options{Scheme: c.Scheme()})
	if err != nil {
		return err
	}
	cr := &v1alpha1.ConsumptionRequest{
		ObjectMeta: metav1.ObjectMeta{Name: probeName, Namespace: namespace},
		Spec:       v1alpha1.ConsumptionRequestSpec{Agreement: probeName, Resource: &v1alpha1.ResourceRequest{Name: "probe"}},
	}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if last = enforced(ctx, c, probe, cr); last == nil {
			return removeProbe(ctx, c, cr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the admission policies are not enforced after %s: %w", timeout, last)
}

// removeProbe deletes the probe request, which no operator reconciles yet:
// an administrator may remove the finalizer the policy added.
func removeProbe(ctx context.Context, c client.Client, cr *v1alpha1.ConsumptionRequest) error {
	if err := c.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
		return client.IgnoreNotFound(err)
	}
	patch := client.MergeFrom(cr.DeepCopy())
	cr.Finalizers = nil
	if err := c.Patch(ctx, cr, patch); err != nil {
		return fmt.Errorf("removing the probe's finalizer: %w", err)
	}
	return client.IgnoreNotFound(c.Delete(ctx, cr))
}

func enforced(ctx context.Context, c, probe client.Client, cr *v1alpha1.ConsumptionRequest) error {
	// Under another name than the probe: once the probe exists (a status
	// check that failed before), a dry run under its name is AlreadyExists.
	dry := cr.DeepCopy()
	dry.Name = probeName + "-creator"
	if err := c.Create(ctx, dry, client.DryRunAll); err != nil {
		return err
	}
	if dry.Spec.Creator == nil {
		return errors.New("a new request is not stamped with its creator yet")
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(cr), cr); apierrors.IsNotFound(err) {
		err = c.Create(ctx, cr)
		if err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	st := cr.DeepCopy()
	st.Status.Phase = v1alpha1.RequestFailed
	err := probe.Status().Update(ctx, st, client.DryRunAll)
	if err == nil {
		return errors.New("a status write by someone other than the operator is still admitted")
	}
	if !strings.Contains(err.Error(), "only the offering-operator") {
		return err
	}
	return nil
}
