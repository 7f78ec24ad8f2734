package controllers

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

func TestEntitlementIsNeverOverGranted(t *testing.T) {
	f := newFixture(t, withMaxGrants(3))
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- admin.Create(testCtx, f.resourceRequest(fmt.Sprintf("burst-%02d", i)))
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var final map[v1alpha1.RequestPhase]int
	eventually(t, 60*time.Second, "every request decided", func() error {
		var list v1alpha1.ConsumptionRequestList
		if err := admin.List(testCtx, &list, client.InNamespace(f.ns)); err != nil {
			return err
		}
		final = map[v1alpha1.RequestPhase]int{}
		for _, cr := range list.Items {
			final[cr.Status.Phase]++
		}
		if final[v1alpha1.RequestFulfilled]+final[v1alpha1.RequestDenied] != n {
			return fmt.Errorf("phases %v", final)
		}
		return nil
	})
	if final[v1alpha1.RequestFulfilled] != 3 || final[v1alpha1.RequestDenied] != n-3 {
		t.Fatalf("phases %v, want exactly 3 Fulfilled and %d Denied", final, n-3)
	}
	// Denied requests name the reason, and created nothing.
	var list v1alpha1.ConsumptionRequestList
	if err := admin.List(testCtx, &list, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	for _, cr := range list.Items {
		if cr.Status.Phase != v1alpha1.RequestDenied {
			continue
		}
		c := waitCondition(t, &cr, v1alpha1.ConditionDenied, metav1.ConditionTrue)
		if c.Reason != v1alpha1.ReasonEntitlementExhausted || !strings.Contains(c.Message, "3 of 3") {
			t.Errorf("denied %s: %s %q", cr.Name, c.Reason, c.Message)
		}
		if ok, _ := exists(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: grantNamespaceName(&cr, nil)}}); ok {
			t.Errorf("denied request %s has a namespace", cr.Name)
		}
	}
	eventually(t, 10*time.Second, "agreement reports exhaustion", func() error {
		if n := len(grantSlotsOf(t, f)); n != 3 {
			return fmt.Errorf("%d grant slots held", n)
		}
		return nil
	})
	waitCondition(t, f.agreement, v1alpha1.ConditionEntitlementsExhausted, metav1.ConditionTrue)

	// Deleting a granted request gives its entitlement back.
	for _, cr := range list.Items {
		if cr.Status.Phase == v1alpha1.RequestFulfilled {
			if err := admin.Delete(testCtx, &cr); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	waitCondition(t, f.agreement, v1alpha1.ConditionEntitlementsExhausted, metav1.ConditionFalse)
	again := f.resourceRequest("after-release")
	mustCreate(t, again)
	waitCondition(t, again, v1alpha1.ConditionReady, metav1.ConditionTrue)
}
