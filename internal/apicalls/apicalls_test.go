package apicalls

import (
	"net/http"
	"net/http/httptest"
	"testing"

	clientmodel "github.com/prometheus/client_model/go"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		method, url, contentType string
		verb, resource           string
		ok                       bool
	}{
		{"GET", "/api/v1/namespaces/team/pods/p1", "", "get", "pods", true},
		{"GET", "/api/v1/namespaces/team/pods", "", "list", "pods", true},
		{"GET", "/api/v1/namespaces/team/pods?watch=true&resourceVersion=1", "", "watch", "pods", true},
		{"GET", "/api/v1/namespaces/team", "", "get", "namespaces", true},
		{"GET", "/api/v1/namespaces", "", "list", "namespaces", true},
		{"POST", "/api/v1/namespaces", "", "create", "namespaces", true},
		{"DELETE", "/api/v1/namespaces/team", "", "delete", "namespaces", true},
		{"POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings", "", "create", "rolebindings", true},
		{"PUT", "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings/rb", "", "update", "rolebindings", true},
		{"PATCH", "/apis/service.offering.dev/v1alpha1/namespaces/team/consumptionrequests/r/status", "application/apply-patch+yaml", "apply", "consumptionrequests/status", true},
		{"PATCH", "/apis/service.offering.dev/v1alpha1/namespaces/team/consumptionrequests/r", "application/merge-patch+json", "patch", "consumptionrequests", true},
		{"PATCH", "/apis/service.offering.dev/v1alpha1/serviceofferings/o/status", "application/apply-patch+yaml", "apply", "serviceofferings/status", true},
		{"POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", "", "create", "subjectaccessreviews", true},
		{"DELETE", "/api/v1/namespaces/team/configmaps", "", "deletecollection", "configmaps", true},
		{"GET", "/apis", "", "", "", false},
		{"GET", "/api/v1", "", "", "", false},
		{"GET", "/healthz", "", "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.url, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.url, nil)
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			verb, resource, ok := Classify(req)
			if verb != tc.verb || resource != tc.resource || ok != tc.ok {
				t.Errorf("got %q %q %v, want %q %q %v", verb, resource, ok, tc.verb, tc.resource, tc.ok)
			}
		})
	}
}

func TestWrapCounts(t *testing.T) {
	// The server creates the first two widgets and refuses the third with a conflict.
	served := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served++
		if served > 2 {
			w.WriteHeader(http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	c := &http.Client{Transport: Wrap(http.DefaultTransport)}
	created, conflicts := counterValue(t, "create", "widgets", "201"), counterValue(t, "create", "widgets", "409")
	for i := 0; i < 3; i++ {
		resp, err := c.Post(srv.URL+"/apis/example.com/v1/namespaces/x/widgets", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	if got := counterValue(t, "create", "widgets", "201") - created; got != 2 {
		t.Errorf("counted %v creates answered 201, want 2", got)
	}
	if got := counterValue(t, "create", "widgets", "409") - conflicts; got != 1 {
		t.Errorf("counted %v creates answered 409, want 1", got)
	}
	// No answer at all: counted as "error".
	srv.Close()
	failed := counterValue(t, "get", "widgets", "error")
	if resp, err := c.Get(srv.URL + "/apis/example.com/v1/namespaces/x/widgets/w"); err == nil {
		_ = resp.Body.Close()
		t.Fatal("a closed server answered")
	}
	if got := counterValue(t, "get", "widgets", "error") - failed; got != 1 {
		t.Errorf("counted %v failed gets, want 1", got)
	}
	if !IsWrite("apply") || IsWrite("watch") {
		t.Error("IsWrite")
	}
}

func counterValue(t *testing.T, verb, resource, code string) float64 {
	t.Helper()
	m := &dto{}
	if err := Requests.WithLabelValues(verb, resource, code).Write(&m.Metric); err != nil {
		t.Fatal(err)
	}
	return m.Metric.GetCounter().GetValue()
}

type dto struct{ Metric clientmodel.Metric }
