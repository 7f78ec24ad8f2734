package controllers

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// withServiceLevels sets targets measured from the request's creation. The
// test clock may be ahead of the API server's (earlier tests stepped it), so
// the targets are moved by that offset: a request is then on track until the
// given time has really passed, or the clock is stepped past it.
func withServiceLevels(approval, fulfilment time.Duration, objective string) fixtureOption {
	return func(f *fixture) {
		sl := &v1alpha1.ServiceLevels{Objective: objective}
		if approval > 0 {
			sl.ApprovalTime = dur(approval + testClock.Offset())
		}
		if fulfilment > 0 {
			sl.FulfilmentTime = dur(fulfilment + testClock.Offset())
		}
		f.agreement.Spec.ServiceLevels = sl
	}
}

// approveAsProvider approves a request the way an approver does: a condition
// through the status subresource.
func approveAsProvider(t *testing.T, cr *v1alpha1.ConsumptionRequest) {
	t.Helper()
	approver := userClient(t, approverUser)
	get(t, cr)
	patch := client.MergeFromWithOptions(cr.DeepCopy(), client.MergeFromWithOptimisticLock{})
	cr.Status.Conditions = append(cr.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionApproved, Status: metav1.ConditionTrue,
		Reason: "ApprovedByProvider", Message: "late, but approved", LastTransitionTime: metav1.NewTime(testClock.Now())})
	if err := approver.Status().Patch(testCtx, cr, patch); err != nil {
		t.Fatalf("approving: %v", err)
	}
}

// TestOpenRequestBreachIsReportedWhenItHappens: a request still waiting past
// its approval target is in breach at once (condition, event, agreement
// roll-up and metric), not when it finally completes; and the breach is final.
func TestOpenRequestBreachIsReportedWhenItHappens(t *testing.T) {
	f := newFixture(t, withManualApproval(), withServiceLevels(time.Minute, time.Hour, "90"))
	onTime := f.resourceRequest("on-time")
	late := f.resourceRequest("late")
	mustCreate(t, onTime)
	mustCreate(t, late)
	waitPhase(t, late, v1alpha1.RequestAwaitingApproval)
	c := waitCondition(t, late, v1alpha1.ConditionWithinServiceLevel, metav1.ConditionTrue)
	if c.Reason != v1alpha1.ReasonOnTrack || !strings.Contains(c.Message, "approval due by") {
		t.Fatalf("before the deadline: %s: %s", c.Reason, c.Message)
	}
	approveAsProvider(t, onTime)
	waitPhase(t, onTime, v1alpha1.RequestFulfilled)

	// One minute and a bit later (the injected clock), the open request is in breach.
	testClock.Step(61 * time.Second)
	touch(t, late)
	c = waitCondition(t, late, v1alpha1.ConditionWithinServiceLevel, metav1.ConditionFalse)
	approvalTarget := f.agreement.Spec.ServiceLevels.ApprovalTime.Duration
	if c.Reason != v1alpha1.ReasonTargetBreached || !strings.Contains(c.Message, "approval not done "+shortDuration(approvalTarget)+" after the request") {
		t.Fatalf("breach: %s: %s", c.Reason, c.Message)
	}
	if late.Status.Phase != v1alpha1.RequestAwaitingApproval {
		t.Fatalf("the breach changed the phase: %s", late.Status.Phase)
	}
	if lvl := late.Status.ServiceLevel; lvl == nil || len(lvl.Breached) != 1 || lvl.Breached[0] != v1alpha1.TargetApproval || lvl.BreachedAt == nil {
		t.Fatalf("serviceLevel = %+v", late.Status.ServiceLevel)
	}
	eventually(t, 10*time.Second, "a ServiceLevelBreached Warning event", func() error {
		var events eventsv1.EventList
		if err := admin.List(testCtx, &events, client.InNamespace(f.ns)); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Reason == "ServiceLevelBreached" && e.Type == "Warning" && e.Regarding.Name == late.Name {
				return nil
			}
		}
		return fmt.Errorf("none among %d events", len(events.Items))
	})

	// The agreement: 1 of 2 measured within target, below the 90% objective; the breach is named.
	eventually(t, 20*time.Second, "the agreement's roll-up", func() error {
		get(t, f.agreement)
		sl := f.agreement.Status.ServiceLevels
		if sl == nil || sl.Measured != 2 || sl.WithinTarget != 1 || sl.Breached != 1 || sl.Compliance != "50" {
			return fmt.Errorf("serviceLevels = %+v", sl)
		}
		if len(sl.RecentBreaches) != 1 || sl.RecentBreaches[0].Request != late.Name || sl.RecentBreaches[0].Target != v1alpha1.TargetApproval {
			return fmt.Errorf("recentBreaches = %+v", sl.RecentBreaches)
		}
		return nil
	})
	met := waitCondition(t, f.agreement, v1alpha1.ConditionServiceLevelsMet, metav1.ConditionFalse)
	if met.Reason != v1alpha1.ReasonObjectiveMissed || !strings.Contains(met.Message, late.Name) {
		t.Fatalf("ServiceLevelsMet: %s: %s", met.Reason, met.Message)
	}
	labels := map[string]string{"namespace": f.ns, "agreement": "agreement", "target": "Approval"}
	eventually(t, 10*time.Second, "the breach counter", func() error {
		return expectMetric(t, "offering_operator_service_level_breaches_total", labels, 1)
	})

	// Approved late and granted: still a breach, counted once.
	approveAsProvider(t, late)
	waitPhase(t, late, v1alpha1.RequestFulfilled)
	c = waitCondition(t, late, v1alpha1.ConditionWithinServiceLevel, metav1.ConditionFalse)
	if !strings.Contains(c.Message, "approval took") {
		t.Fatalf("after approval: %s", c.Message)
	}
	if err := expectMetric(t, "offering_operator_service_level_breaches_total", labels, 1); err != nil {
		t.Fatal(err)
	}
	// The offering rolls the agreement up.
	eventually(t, 20*time.Second, "the offering's roll-up", func() error {
		get(t, f.offering)
		sl := f.offering.Status.ServiceLevels
		if sl == nil || sl.Agreements != 1 || sl.AgreementsMissingObjective != 1 || sl.Breached != 1 || sl.Compliance != "50" {
			return fmt.Errorf("offering serviceLevels = %+v", sl)
		}
		return nil
	})
}

// TestServiceLevelMetricsOnTheMetricsEndpoint scrapes the running manager and
// checks the figures against the requests' own status.
func TestServiceLevelMetricsOnTheMetricsEndpoint(t *testing.T) {
	f := newFixture(t, withServiceLevels(0, time.Hour, "99"))
	var sum float64
	for i := range 3 {
		cr := f.resourceRequest(fmt.Sprintf("m-%d", i))
		mustCreate(t, cr)
		waitPhase(t, cr, v1alpha1.RequestFulfilled)
		c := waitCondition(t, cr, v1alpha1.ConditionWithinServiceLevel, metav1.ConditionTrue)
		if c.Reason != v1alpha1.ReasonTargetsMet {
			t.Fatalf("%s: %s: %s", cr.Name, c.Reason, c.Message)
		}
		sum += cr.Status.FulfilledAt.Sub(cr.CreationTimestamp.Time).Seconds()
	}
	agr := map[string]string{"namespace": f.ns, "agreement": "agreement"}
	resource := map[string]string{"namespace": f.ns, "agreement": "agreement", "kind": "Resource", "offering": f.offering.Name}
	eventually(t, 20*time.Second, "metrics", func() error {
		if err := expectMetric(t, "offering_operator_request_fulfilment_duration_seconds_count", resource, 3); err != nil {
			return err
		}
		if err := expectMetric(t, "offering_operator_request_approval_duration_seconds_count", resource, 3); err != nil {
			return err
		}
		if err := expectMetric(t, "offering_operator_active_grants", resource, 3); err != nil {
			return err
		}
		if err := expectMetric(t, "offering_operator_requests", with(resource, "phase", "Fulfilled"), 3); err != nil {
			return err
		}
		if err := expectMetric(t, "offering_operator_requests", with(resource, "phase", "Pending"), 0); err != nil {
			return err
		}
		if err := expectMetric(t, "offering_operator_service_level_compliance_ratio", agr, 1); err != nil {
			return err
		}
		return expectMetric(t, "offering_operator_service_level_objective_ratio", agr, 0.99)
	})
	// The histogram's sum is the requests' recorded fulfilment times (status times are whole seconds).
	got, err := scrapeMetric(t, "offering_operator_request_fulfilment_duration_seconds_sum", resource)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got-sum) > 3 {
		t.Fatalf("fulfilment seconds sum = %.3f, the requests' status says %.3f", got, sum)
	}
	if err := expectMetric(t, "offering_operator_service_level_breaches_total", agr, 0); err == nil {
		t.Fatal("a breach counter exists for an agreement without breaches")
	}

	// Deleting the agreement removes its gauges.
	if err := admin.Delete(testCtx, f.agreement); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the agreement's gauges removed", func() error {
		if _, err := scrapeMetric(t, "offering_operator_active_grants", resource); err == nil {
			return fmt.Errorf("offering_operator_active_grants still reported")
		}
		return nil
	})
}

// TestRollupIsBatchedUnderABurst: 200 requests under one agreement cause far
// fewer agreement status writes than requests, counted from a watch on the
// agreement (every write the API server persisted, whoever made it).
func TestRollupIsBatchedUnderABurst(t *testing.T) {
	if testing.Short() {
		t.Skip("envtest")
	}
	const n = 200
	f := newFixture(t, withServiceLevels(0, time.Hour, "99"))
	get(t, f.agreement)
	ctx, cancel := context.WithCancel(testCtx)
	defer cancel()
	wc, err := client.NewWithWatch(testEnv.Config, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(ctx, &v1alpha1.ServiceAgreementList{}, client.InNamespace(f.ns),
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: f.agreement.ResourceVersion}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	statusWrites := 0
	prev := f.agreement.Status.DeepCopy()
	go func() {
		for ev := range w.ResultChan() {
			if ev.Type != watch.Modified {
				continue
			}
			agr := ev.Object.(*v1alpha1.ServiceAgreement)
			mu.Lock()
			if !equality.Semantic.DeepEqual(prev, &agr.Status) {
				statusWrites++
			}
			prev = agr.Status.DeepCopy()
			mu.Unlock()
		}
	}()

	start := time.Now()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := admin.Create(testCtx, f.resourceRequest(fmt.Sprintf("burst-%03d", i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	eventually(t, 3*time.Minute, "every request rolled up as fulfilled and measured", func() error {
		get(t, f.agreement)
		st := f.agreement.Status
		if st.Requests.Fulfilled != n || st.ServiceLevels == nil || st.ServiceLevels.Measured != n {
			return fmt.Errorf("fulfilled %d, serviceLevels %+v", st.Requests.Fulfilled, st.ServiceLevels)
		}
		return nil
	})
	elapsed := time.Since(start)
	// The burst is over when the request controller has nothing left to do:
	// its queue drains (a hot loop would keep it busy), and the tests after
	// this one are not starved.
	eventually(t, 2*time.Minute, "the request queue drained", func() error {
		return queueDrained(t, "consumptionrequest")
	})
	t.Logf("request queue drained %s after the burst was rolled up", (time.Since(start) - elapsed).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // let the watch deliver the last writes
	mu.Lock()
	writes := statusWrites
	mu.Unlock()
	t.Logf("%d requests fulfilled in %s; %d agreement status writes (%.2f per request)", n, elapsed.Round(time.Millisecond), writes, float64(writes)/n)
	if sl := f.agreement.Status.ServiceLevels; sl.Compliance != "100" || sl.WithinTarget != n {
		t.Errorf("serviceLevels after the burst: %+v", sl)
	}
	// Unbatched, every request status change (admitted, granted, verified)
	// would cause an agreement write: at least 2n. The roll-up waits a second
	// and merges what happened meanwhile, so writes follow elapsed seconds.
	if limit := int(elapsed/time.Second) + 10; writes > limit || writes >= n/2 {
		t.Fatalf("%d agreement status writes for %d requests in %s: not batched (limits: %d, one a second, and %d)", writes, n, elapsed, limit, n/2)
	}
	if writes == 0 {
		t.Fatal("no agreement status write observed: the watch saw nothing")
	}
}

func with(labels map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for a, b := range labels {
		out[a] = b
	}
	return out
}

// scrapeMetric reads the manager's metrics endpoint and returns the value of
// the one sample of name whose labels include labels. Histograms are read
// through their _count and _sum samples.
func scrapeMetric(t *testing.T, name string, labels map[string]string) (float64, error) {
	t.Helper()
	found, err := metricSamples(t, name, labels)
	if err != nil {
		return 0, err
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("%s%v: %d samples, want 1", name, labels, len(found))
	}
	return found[0], nil
}

// queueDrained reports whether a controller's work queue is empty: its
// depth is one series per priority the queue has held (the priority queue
// puts resyncs and relisted objects at a low priority), so all must be 0.
func queueDrained(t *testing.T, controller string) error {
	t.Helper()
	found, err := metricSamples(t, "workqueue_depth", map[string]string{"name": controller})
	if err != nil {
		return err
	}
	if len(found) == 0 {
		return fmt.Errorf("no workqueue_depth for %s", controller)
	}
	if depth := sumOf(found); depth != 0 {
		return fmt.Errorf("the %s queue holds %v items", controller, depth)
	}
	return nil
}

func sumOf(xs []float64) float64 {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum
}

// metricSamples scrapes the test manager's metrics endpoint for the samples
// of name that carry labels.
func metricSamples(t *testing.T, name string, labels map[string]string) ([]float64, error) {
	t.Helper()
	resp, err := http.Get(metricsURL) //nolint:noctx // a test against a local endpoint
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	family, suffix := name, ""
	for _, s := range []string{"_count", "_sum"} {
		if base, ok := strings.CutSuffix(name, s); ok && families[base] != nil && families[base].GetType() == dto.MetricType_HISTOGRAM {
			family, suffix = base, s
		}
	}
	mf := families[family]
	if mf == nil {
		return nil, fmt.Errorf("metric %s not exposed", family)
	}
	var found []float64
	for _, m := range mf.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case suffix == "_count":
			found = append(found, float64(m.GetHistogram().GetSampleCount()))
		case suffix == "_sum":
			found = append(found, m.GetHistogram().GetSampleSum())
		case m.Counter != nil:
			found = append(found, m.GetCounter().GetValue())
		case m.Gauge != nil:
			found = append(found, m.GetGauge().GetValue())
		}
	}
	return found, nil
}

func expectMetric(t *testing.T, name string, labels map[string]string, want float64) error {
	t.Helper()
	got, err := scrapeMetric(t, name, labels)
	if err != nil {
		return err
	}
	if math.Abs(got-want) > 1e-9 {
		return fmt.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
	return nil
}

func hasLabels(m *dto.Metric, labels map[string]string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range labels {
		if have[k] != v {
			return false
		}
	}
	return true
}

// TestServiceLevelHistoryOutlivesRequests: one request meets its targets,
// another misses its approval target; then the consumer deletes both (as a
// GitOps prune would). The agreement's compliance over its window does not
// change: their verdicts moved into status.serviceLevelHistory.
func TestServiceLevelHistoryOutlivesRequests(t *testing.T) {
	f := newFixture(t, withManualApproval(), withServiceLevels(time.Minute, time.Hour, "90"))
	onTime, late := f.resourceRequest("kept-on-time"), f.resourceRequest("kept-late")
	mustCreate(t, onTime)
	mustCreate(t, late)
	waitPhase(t, late, v1alpha1.RequestAwaitingApproval)
	approveAsProvider(t, onTime)
	waitPhase(t, onTime, v1alpha1.RequestFulfilled)
	testClock.Step(61 * time.Second)
	touch(t, late)
	waitCondition(t, late, v1alpha1.ConditionWithinServiceLevel, metav1.ConditionFalse)

	halfMet := func() error {
		get(t, f.agreement)
		sl := f.agreement.Status.ServiceLevels
		if sl == nil || sl.Measured != 2 || sl.WithinTarget != 1 || sl.Breached != 1 || sl.Compliance != "50" {
			return fmt.Errorf("serviceLevels = %+v", sl)
		}
		return nil
	}
	eventually(t, 20*time.Second, "the agreement's roll-up of both requests", halfMet)

	consumer := userClient(t, consumerUser)
	for _, cr := range []*v1alpha1.ConsumptionRequest{onTime, late} {
		if err := consumer.Delete(testCtx, cr); err != nil {
			t.Fatal(err)
		}
		gone(t, cr)
	}
	touch(t, f.agreement)
	eventually(t, 20*time.Second, "the history to hold both verdicts", func() error {
		get(t, f.agreement)
		h := f.agreement.Status.ServiceLevelHistory
		if h == nil || len(h.Days) != 1 || h.Days[0].Measured != 2 || h.Days[0].WithinTarget != 1 || h.Days[0].Breached != 1 || len(h.Recorded) != 2 {
			return fmt.Errorf("serviceLevelHistory = %+v", h)
		}
		return nil
	})
	consistently(t, 3*time.Second, "compliance unchanged by the deletions", halfMet)
	met := waitCondition(t, f.agreement, v1alpha1.ConditionServiceLevelsMet, metav1.ConditionFalse)
	if met.Reason != v1alpha1.ReasonObjectiveMissed {
		t.Fatalf("ServiceLevelsMet: %s: %s", met.Reason, met.Message)
	}
}
