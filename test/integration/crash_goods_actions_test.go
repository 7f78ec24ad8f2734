package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Goods and automated actions, crashed on at every write. The worlds are those
// of crash_test.go with a goods item or an action added (withGoods,
// withAction). There is no job controller and no garbage collector in
// envtest: the tests write a Job's outcome as the job controller would, and
// check the owner references the garbage collector would follow.

const (
	goodsSecret    = "device-credentials"
	goodsConfigMap = "device-config"
	tokenSecret    = "install-token"
)

// withGoods adds a goods item "kit" delivering a Secret and a ConfigMap of the
// provider namespace, with the consumer's acceptance required, entitles the
// agreement to one, and makes the request ask for it.
func withGoods(w *world, off *v1alpha1.ServiceOffering, agr *v1alpha1.ServiceAgreement) []client.Object {
	off.Spec.Goods = []v1alpha1.GoodsItem{{Name: "kit", Acceptance: v1alpha1.AcceptanceRequired, Sources: []v1alpha1.GoodsSource{
		{Kind: v1alpha1.GoodsSourceSecret, Name: goodsSecret},
		{Kind: v1alpha1.GoodsSourceConfigMap, Name: goodsConfigMap},
	}}}
	agr.Spec.Entitlements.Goods = []v1alpha1.GoodsEntitlement{{Name: "kit", MaxQuantity: ptr.To[int32](1)}}
	w.request.Name = "goods"
	w.request.Spec.Resource, w.request.Spec.Goods = nil, &v1alpha1.GoodsRequest{Name: "kit", Quantity: 1}
	return []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: goodsSecret, Namespace: w.provider},
			Data: map[string][]byte{"password": []byte("pw-" + w.ns)}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: goodsConfigMap, Namespace: w.provider},
			Data: map[string]string{"model": "HA-2000"}},
	}
}

// withAction adds an automated action "install" (RACK, and the secret TOKEN)
// run as a Job in the provider namespace, entitles the agreement to one run,
// and makes the request ask for it with a TOKEN from the consumer's Secret.
func withAction(w *world, off *v1alpha1.ServiceOffering, agr *v1alpha1.ServiceAgreement) []client.Object {
	off.Spec.Actions = []v1alpha1.ActionItem{{Name: "install", Type: v1alpha1.ActionAutomated,
		Parameters: []v1alpha1.ActionParameterSpec{{Name: "RACK", Required: true}, {Name: "TOKEN", Secret: true}},
		Job:        &v1alpha1.ActionJob{Image: "busybox:1.36", Command: []string{"sh", "-c", `echo installing in "$RACK"`}},
	}}
	agr.Spec.Entitlements.Actions = []v1alpha1.ActionEntitlement{{Name: "install", MaxRuns: ptr.To[int32](1)}}
	w.request.Name = "action"
	w.request.Spec.Resource, w.request.Spec.Action = nil, &v1alpha1.ActionRequest{Name: "install",
		Parameters: []v1alpha1.ParameterValue{{Name: "RACK", Value: "rack-a"}},
		SecretParameters: []v1alpha1.SecretParameterValue{{Name: "TOKEN",
			SecretKeyRef: v1alpha1.SecretKeySelector{Name: tokenSecret, Key: "token"}}},
	}
	return []client.Object{&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: tokenSecret, Namespace: w.ns},
		Data: map[string][]byte{"token": []byte("t0ken-" + w.ns)}}}
}

// decideWhenDelivered plays the consumer: once the goods are delivered, it
// sets the decision d on the request.
func (w *world) decideWhenDelivered(d v1alpha1.GoodsDecision) func() error {
	return func() error {
		cr, err := w.current()
		if err != nil || cr.Status.Phase != v1alpha1.RequestDelivered || cr.Spec.Goods.Decision != "" {
			return err
		}
		patch := client.MergeFromWithOptions(cr.DeepCopy(), client.MergeFromWithOptimisticLock{})
		cr.Spec.Goods.Decision = d
		return admin.Patch(context.Background(), cr, patch)
	}
}

// startedJob returns the Job the request records as started, nil before.
func (w *world) startedJob() (*batchv1.Job, error) {
	cr, err := w.current()
	if err != nil || cr.Status.Action == nil || cr.Status.Action.Job == "" {
		return nil, err
	}
	ns, name, _ := strings.Cut(cr.Status.Action.Job, "/")
	var job batchv1.Job
	if err := admin.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &job); err != nil {
		return nil, fmt.Errorf("the recorded Job: %w", err)
	}
	return &job, nil
}

// jobRunning is reached when the request records its Job as started and the Job runs.
func (w *world) jobRunning() error {
	job, err := w.startedJob()
	if err == nil && job == nil {
		err = errors.New("no Job recorded as started")
	}
	return err
}

// completeStartedJob plays the job controller: once the request records its
// Job as started, the Job completes.
func (w *world) completeStartedJob() error {
	job, err := w.startedJob()
	if err != nil || job == nil || len(job.Status.Conditions) > 0 {
		return err
	}
	now := metav1.Now()
	start := metav1.NewTime(now.Add(-time.Minute))
	job.Status = batchv1.JobStatus{StartTime: &start, CompletionTime: &now, Succeeded: 1, Conditions: []batchv1.JobCondition{
		{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonCompletionsReached, LastTransitionTime: now, LastProbeTime: now},
		{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonCompletionsReached, LastTransitionTime: now, LastProbeTime: now},
	}}
	return admin.Status().Update(context.Background(), job)
}

// copies returns the goods copies in the consumer namespace (objects with a
// source annotation), by "<kind> <source>".
func (w *world) copies(t *testing.T) map[string][]client.Object {
	t.Helper()
	ctx := context.Background()
	var secrets corev1.SecretList
	var cms corev1.ConfigMapList
	if err := admin.List(ctx, &secrets, client.InNamespace(w.ns)); err != nil {
		t.Fatal(err)
	}
	if err := admin.List(ctx, &cms, client.InNamespace(w.ns)); err != nil {
		t.Fatal(err)
	}
	out := map[string][]client.Object{}
	add := func(kind v1alpha1.GoodsSourceKind, o client.Object) {
		if src := o.GetAnnotations()[v1alpha1.AnnotationSource]; src != "" {
			out[string(kind)+" "+src] = append(out[string(kind)+" "+src], o)
		}
	}
	for i := range secrets.Items {
		add(v1alpha1.GoodsSourceSecret, &secrets.Items[i])
	}
	for i := range cms.Items {
		add(v1alpha1.GoodsSourceConfigMap, &cms.Items[i])
	}
	return out
}

// assertNothingManaged checks that no Secret, ConfigMap or Job in any
// namespace is still managed for the request uid.
func assertNothingManaged(t *testing.T, k int64, uid types.UID) {
	t.Helper()
	for _, list := range []client.ObjectList{&corev1.SecretList{}, &corev1.ConfigMapList{}, &batchv1.JobList{}} {
		if err := admin.List(context.Background(), list, client.MatchingLabels{v1alpha1.LabelRequestUID: string(uid)}); err != nil {
			t.Fatal(err)
		}
		if n := meta.LenList(list); n != 0 {
			t.Fatalf("fault %d: %d objects of %T still managed for the request", k, n, list)
		}
	}
}

// assertGoodsAccepted checks the state of a fault-free delivery and
// acceptance: exactly one copy of each source, with its content, handed over
// (no labels, owner reference or finalizer of the operator's); the request
// Accepted and listing them; the entitlement used.
func (w *world) assertGoodsAccepted(t *testing.T, k int64) {
	t.Helper()
	cr := w.get(t)
	if cr.Status.Phase != v1alpha1.RequestAccepted || !meta.IsStatusConditionTrue(cr.Status.Conditions, v1alpha1.ConditionAccepted) ||
		cr.Status.AcceptedAt == nil || len(cr.Status.Delivered) != 2 {
		t.Fatalf("fault %d: phase %s acceptedAt %v delivered %+v conditions %+v", k, cr.Status.Phase, cr.Status.AcceptedAt,
			cr.Status.Delivered, cr.Status.Conditions)
	}
	copies := w.copies(t)
	if len(copies) != 2 {
		t.Fatalf("fault %d: copies of %d sources, want 2", k, len(copies))
	}
	sources := map[v1alpha1.GoodsSourceKind]client.Object{
		v1alpha1.GoodsSourceSecret:    &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: w.provider, Name: goodsSecret}},
		v1alpha1.GoodsSourceConfigMap: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: w.provider, Name: goodsConfigMap}},
	}
	for _, d := range cr.Status.Delivered {
		src := sources[d.Kind]
		if err := admin.Get(context.Background(), client.ObjectKeyFromObject(src), src); err != nil {
			t.Fatal(err)
		}
		got := copies[string(d.Kind)+" "+w.provider+"/"+src.GetName()]
		if len(got) != 1 || got[0].GetName() != d.Name || d.Namespace != w.ns {
			t.Fatalf("fault %d: copies of %s %s: %d, want exactly the delivered %s/%s", k, d.Kind, src.GetName(), len(got), d.Namespace, d.Name)
		}
		c := got[0]
		l := c.GetLabels()
		if l[v1alpha1.LabelManagedBy] != "" || l[v1alpha1.LabelRequestUID] != "" || len(c.GetOwnerReferences()) != 0 ||
			len(c.GetFinalizers()) != 0 || !c.GetDeletionTimestamp().IsZero() || c.GetAnnotations()[v1alpha1.AnnotationAcceptedFrom] != string(cr.UID) {
			t.Fatalf("fault %d: %s %s not handed over: labels %v owners %v finalizers %v annotations %v", k, d.Kind, c.GetName(), l,
				c.GetOwnerReferences(), c.GetFinalizers(), c.GetAnnotations())
		}
		if !sameContent(src, c) {
			t.Fatalf("fault %d: %s %s does not hold its source's content", k, d.Kind, c.GetName())
		}
	}
	assertNothingManaged(t, k, cr.UID)
	w.assertConsumed(t, k, cr.UID, true)
}

func sameContent(a, b client.Object) bool {
	switch a := a.(type) {
	case *corev1.Secret:
		return equality.Semantic.DeepEqual(a.Data, b.(*corev1.Secret).Data)
	case *corev1.ConfigMap:
		return equality.Semantic.DeepEqual(a.Data, b.(*corev1.ConfigMap).Data)
	}
	return false
}

// assertGoodsReturned checks the state of a fault-free delivery and
// rejection: no copy left, the request Rejected, the entitlement given back.
func (w *world) assertGoodsReturned(t *testing.T, k int64) {
	t.Helper()
	cr := w.get(t)
	if cr.Status.Phase != v1alpha1.RequestRejected || len(cr.Status.Delivered) != 0 ||
		meta.IsStatusConditionTrue(cr.Status.Conditions, v1alpha1.ConditionTransferred) {
		t.Fatalf("fault %d: phase %s delivered %+v conditions %+v", k, cr.Status.Phase, cr.Status.Delivered, cr.Status.Conditions)
	}
	if copies := w.copies(t); len(copies) != 0 {
		t.Fatalf("fault %d: copies left %v", k, copies)
	}
	assertNothingManaged(t, k, cr.UID)
	w.assertConsumed(t, k, cr.UID, false)
}

// assertActionFulfilled checks the state of a fault-free automated action:
// the request Fulfilled with its run completed; exactly one Job, the recorded
// one, in the provider namespace; exactly one copy of the secret parameters,
// next to it, used by it and owned by it (so that it goes when the TTL
// controller removes the Job); the entitlement used.
func (w *world) assertActionFulfilled(t *testing.T, k int64) {
	t.Helper()
	ctx := context.Background()
	cr := w.get(t)
	run := cr.Status.Action
	if cr.Status.Phase != v1alpha1.RequestFulfilled || !meta.IsStatusConditionTrue(cr.Status.Conditions, v1alpha1.ConditionFulfilled) ||
		run == nil || run.StartedAt == nil || run.CompletedAt == nil {
		t.Fatalf("fault %d: phase %s action %+v conditions %+v", k, cr.Status.Phase, run, cr.Status.Conditions)
	}
	owned := client.MatchingLabels{v1alpha1.LabelRequestUID: string(cr.UID)}
	var jobs batchv1.JobList
	if err := admin.List(ctx, &jobs, owned); err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 1 || jobs.Items[0].Namespace+"/"+jobs.Items[0].Name != run.Job || jobs.Items[0].Namespace != w.provider {
		t.Fatalf("fault %d: %d Jobs for the request, want exactly the recorded %s", k, len(jobs.Items), run.Job)
	}
	job := &jobs.Items[0]
	var secrets corev1.SecretList
	if err := admin.List(ctx, &secrets, owned); err != nil {
		t.Fatal(err)
	}
	if len(secrets.Items) != 1 || secrets.Items[0].Namespace != w.provider {
		t.Fatalf("fault %d: %d secret-parameter copies, want 1 in %s", k, len(secrets.Items), w.provider)
	}
	sec := &secrets.Items[0]
	if refs := sec.OwnerReferences; len(refs) != 1 || refs[0].UID != job.UID || refs[0].Kind != "Job" {
		t.Fatalf("fault %d: the secret-parameter copy is owned by %+v, want the Job %s only", k, refs, job.UID)
	}
	used := false
	for _, e := range job.Spec.Template.Spec.Containers[0].Env {
		used = used || (e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == sec.Name)
	}
	if !used || string(sec.Data["TOKEN"]) != "t0ken-"+w.ns {
		t.Fatalf("fault %d: the Job does not take TOKEN from %s, or it holds the wrong value", k, sec.Name)
	}
	w.assertConsumed(t, k, cr.UID, true)
}

// assertActionCancelled checks the state after cr, whose Job was running, was
// deleted: no Job and no copy of its secret parameters left, the run still
// counted (it started).
func (w *world) assertActionCancelled(t *testing.T, k int64, cr *v1alpha1.ConsumptionRequest) {
	t.Helper()
	assertNothingManaged(t, k, cr.UID)
	w.assertConsumed(t, k, cr.UID, true)
}

// TestCrashAtEveryWriteOnGoodsAcceptance crashes at every write while goods
// are delivered and, once the consumer accepts them, handed over.
func TestCrashAtEveryWriteOnGoodsAcceptance(t *testing.T) {
	crashAtEveryWrite(t, "a goods delivery and its acceptance", 30, func(t *testing.T) path {
		w := newWorld(t, withGoods)
		return path{drive: w.decideWhenDelivered(v1alpha1.GoodsAccept), reached: w.inPhase(v1alpha1.RequestAccepted),
			check: w.assertGoodsAccepted, spare: agreementOrOfferingStatus}
	})
}

// TestCrashAtEveryWriteOnGoodsRejection crashes at every write while
// delivered goods the consumer rejects are returned.
func TestCrashAtEveryWriteOnGoodsRejection(t *testing.T) {
	crashAtEveryWrite(t, "returning rejected goods", 20, func(t *testing.T) path {
		w := newWorld(t, withGoods)
		settle(t, "the goods delivered", path{reached: w.inPhase(v1alpha1.RequestDelivered)})
		if err := w.decideWhenDelivered(v1alpha1.GoodsReject)(); err != nil {
			t.Fatal(err)
		}
		return path{reached: w.inPhase(v1alpha1.RequestRejected), check: w.assertGoodsReturned, spare: agreementOrOfferingStatus}
	})
}

// TestCrashAtEveryWriteOnAction crashes at every write while an automated
// action starts its Job and, once the Job completes, records the outcome.
func TestCrashAtEveryWriteOnAction(t *testing.T) {
	crashAtEveryWrite(t, "an automated action (Job started, completed, request Fulfilled)", 30, func(t *testing.T) path {
		w := newWorld(t, withAction)
		return path{drive: w.completeStartedJob, reached: w.inPhase(v1alpha1.RequestFulfilled),
			check: w.assertActionFulfilled, spare: agreementOrOfferingStatus}
	})
}

// TestCrashAtEveryWriteOnActionCancel crashes at every write while the
// request of a running action is deleted: its Job and secret-parameter copy go,
// its entitlement is given back and the request is released.
func TestCrashAtEveryWriteOnActionCancel(t *testing.T) {
	crashAtEveryWrite(t, "cancelling an action by deleting its request", 20, func(t *testing.T) path {
		w := newWorld(t, withAction)
		settle(t, "the action's Job running", path{reached: w.jobRunning})
		cr := w.deleteRequest(t)
		return path{reached: w.gone, check: func(t *testing.T, k int64) { w.assertActionCancelled(t, k, cr) }, spare: agreementOrOfferingStatus}
	})
}

// resting is a world driven to a state a request rests in.
type resting struct {
	what string
	path
}

// restingWorlds creates one world for every state a request rests in.
func restingWorlds(t *testing.T) []resting {
	t.Helper()
	grant, delivered, accepted, returned := newWorld(t), newWorld(t, withGoods), newWorld(t, withGoods), newWorld(t, withGoods)
	running, fulfilled := newWorld(t, withAction), newWorld(t, withAction)
	return []resting{
		{"a grant Ready", path{reached: grant.ready}},
		{"goods awaiting the decision", path{reached: delivered.inPhase(v1alpha1.RequestDelivered)}},
		{"goods accepted", path{drive: accepted.decideWhenDelivered(v1alpha1.GoodsAccept), reached: accepted.inPhase(v1alpha1.RequestAccepted)}},
		{"goods returned", path{drive: returned.decideWhenDelivered(v1alpha1.GoodsReject), reached: returned.inPhase(v1alpha1.RequestRejected)}},
		{"an action running", path{reached: running.jobRunning}},
		{"an action fulfilled", path{drive: fulfilled.completeStartedJob, reached: fulfilled.inPhase(v1alpha1.RequestFulfilled)}},
	}
}

// assertConsumed checks the agreement's ledger for a goods or action
// request: counted (in flight in the allocations, or settled into the
// record of consumption) when consumed, otherwise in neither.
func (w *world) assertConsumed(t *testing.T, k int64, uid types.UID, consumed bool) {
	t.Helper()
	var agr v1alpha1.ServiceAgreement
	if err := admin.Get(context.Background(), client.ObjectKey{Namespace: w.ns, Name: "agreement"}, &agr); err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, a := range agr.Status.Allocations {
		if a.UID == string(uid) {
			found++
		}
	}
	for _, it := range agr.Status.Consumption {
		for _, r := range it.RecentRequests {
			if r.UID == string(uid) {
				found++
			}
		}
	}
	if consumed && found != 1 || !consumed && found != 0 {
		t.Fatalf("fault %d: the request is counted %d time(s) (allocations %+v, consumption %+v), want %v",
			k, found, agr.Status.Allocations, agr.Status.Consumption, consumed)
	}
}
