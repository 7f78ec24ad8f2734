// Package apicalls counts the requests a client sends to the Kubernetes API
// server, by verb and resource, as the Prometheus counter
// offering_operator_api_requests_total, with the status code of the answer.
// Wrapped around the manager's transport, it shows how many writes a grant
// costs, how many were refused (409 conflicts, 403, 422) and that converged
// objects cost none.
package apicalls

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Requests counts API requests by verb (get, list, watch, create, update,
// patch, apply, delete, deletecollection) and resource (plural, with the
// subresource after a slash, for example "consumptionrequests/status") and
// code: the HTTP status code of the answer ("201", "409"), or "error" when no
// answer came (a connection refused or cut, a timeout).
var Requests = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "offering_operator_api_requests_total",
	Help: "Requests the operator sent to the Kubernetes API server, by verb, resource and the status code of the answer (\"error\" when none came).",
}, []string{"verb", "resource", "code"})

func init() {
	metrics.Registry.MustRegister(Requests)
}

// Wrap returns a RoundTripper that counts every request it passes on, once
// its answer has come (for a watch: once the stream has started).
func Wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper{next: rt}
}

type roundTripper struct{ next http.RoundTripper }

func (c roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if verb, resource, ok := Classify(req); ok {
		code := "error"
		if err == nil && resp != nil {
			code = strconv.Itoa(resp.StatusCode)
		}
		Requests.WithLabelValues(verb, resource, code).Inc()
	}
	return resp, err
}

// Classify returns the Kubernetes verb and resource of an API request, and
// false for requests that are not for a resource (discovery, /healthz).
func Classify(req *http.Request) (verb, resource string, ok bool) {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	// /api/v1/... or /apis/<group>/<version>/...
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return "", "", false
	}
	if len(parts) >= 2 && parts[0] == "namespaces" && len(parts) != 2 {
		// namespaces/<ns>/<resource>[/<name>[/<sub>]]; "namespaces/<name>" is the namespace itself.
		parts = parts[2:]
	}
	if len(parts) == 0 {
		return "", "", false
	}
	resource = parts[0]
	named := len(parts) >= 2
	if len(parts) >= 3 {
		resource += "/" + parts[2]
	}
	switch req.Method {
	case http.MethodGet:
		switch {
		case req.URL.Query().Get("watch") == "true" || req.URL.Query().Get("watch") == "1":
			verb = "watch"
		case named:
			verb = "get"
		default:
			verb = "list"
		}
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
		if strings.HasPrefix(req.Header.Get("Content-Type"), "application/apply-patch") {
			verb = "apply"
		}
	case http.MethodDelete:
		verb = "delete"
		if !named {
			verb = "deletecollection"
		}
	default:
		verb = strings.ToLower(req.Method)
	}
	return verb, resource, true
}

// IsWrite reports whether a verb changes state on the server.
func IsWrite(verb string) bool {
	switch verb {
	case "create", "update", "patch", "apply", "delete", "deletecollection":
		return true
	}
	return false
}
