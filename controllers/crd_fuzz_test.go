package controllers

// Fuzz tests of the boundary between the API server and the operator: every
// value the generated CRDs admit (OpenAPI schema and CEL rules, evaluated
// in-process with the API server's own validators) must decode into the
// operator's Go types. A value the API server stores but the operator cannot
// decode breaks the operator's informer for the whole kind: every list and
// watch of that kind fails until the object is removed, for every tenant.

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	apiextensionsinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

// crdField is one field of a generated CRD: the file, and the path to it
// ("[]" steps into array items, "{}" into additionalProperties).
type crdField struct {
	file string
	path []string
}

func (f crdField) String() string {
	return strings.TrimSuffix(strings.TrimPrefix(f.file, "service.offering.dev_"), ".yaml") + " " + strings.Join(f.path, ".")
}

// fieldValidator validates one value as the API server validates that field.
type fieldValidator struct {
	field      crdField
	schema     validation.SchemaValidator
	structural *structuralschema.Structural
	cel        *cel.Validator
}

func (v *fieldValidator) admits(value any) bool {
	if errs := validation.ValidateCustomResource(nil, value, v.schema); len(errs) > 0 {
		return false
	}
	if v.cel != nil {
		errs, _ := v.cel.Validate(context.Background(), field.NewPath(v.field.path[len(v.field.path)-1]), v.structural, value, nil, celconfig.RuntimeCELCostBudget)
		if len(errs) > 0 {
			return false
		}
	}
	return true
}

var (
	crdValidatorsMu sync.Mutex
	crdValidators   = map[string]*fieldValidator{}
)

// validatorFor builds (once) the validator of a CRD field from config/crd/bases.
func validatorFor(t testing.TB, f crdField) *fieldValidator {
	t.Helper()
	crdValidatorsMu.Lock()
	defer crdValidatorsMu.Unlock()
	if v, ok := crdValidators[f.String()]; ok {
		return v
	}
	data, err := os.ReadFile(filepath.Join("..", "config", "crd", "bases", f.file))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &crd); err != nil {
		t.Fatal(err)
	}
	props := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
	for _, step := range f.path {
		switch step {
		case "[]":
			props = props.Items.Schema
		case "{}":
			props = props.AdditionalProperties.Schema
		default:
			p, ok := props.Properties[step]
			if !ok {
				t.Fatalf("%s: no property %s", f, step)
			}
			props = &p
		}
		if props == nil {
			t.Fatalf("%s: nothing at %s", f, step)
		}
	}
	internal := &apiextensionsinternal.JSONSchemaProps{}
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(props, internal, nil); err != nil {
		t.Fatal(err)
	}
	schema, _, err := validation.NewSchemaValidator(internal)
	if err != nil {
		t.Fatal(err)
	}
	structural, err := structuralschema.NewStructural(internal)
	if err != nil {
		t.Fatal(err)
	}
	v := &fieldValidator{field: f, schema: schema, structural: structural, cel: cel.NewValidator(structural, false, celconfig.PerCallLimit)}
	crdValidators[f.String()] = v
	return v
}

// knownCRDDecodeGaps are the fields whose schema, today, admits values the
// operator cannot decode (issue #9; the fix belongs in api/, see
// docs/security.md). For them a violation is logged, not failed, so that
// `go test` stays green until the schema is fixed: remove an entry with its
// fix, and the seeds in testdata/fuzz then hold the fix.
var knownCRDDecodeGaps = map[string]string{
	// Not a gap: a rule on the status.conditions list rejects these, which a
	// check of one field cannot see; TestConditionTimesMustParse (api/v1alpha1)
	// checks it on the API server.
	"consumptionrequests status.conditions.[].lastTransitionTime": "date-times rejected by the list-level rule on status.conditions",
}

// checkDecodes fails (or, for a known gap, logs) when a field admits s but decode refuses it.
func checkDecodes(t *testing.T, fields []crdField, s string, decode func([]byte) error) {
	t.Helper()
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fields {
		if !validatorFor(t, f).admits(s) {
			continue
		}
		err := decode(raw)
		if err == nil {
			continue
		}
		if gap, known := knownCRDDecodeGaps[f.String()]; known {
			t.Logf("KNOWN GAP (%s): the API server admits %s = %q, which the operator cannot decode: %v", gap, f, s, err)
			continue
		}
		t.Errorf("the API server admits %s = %q, which the operator cannot decode: %v", f, s, err)
	}
}

var durationFields = []crdField{
	{"service.offering.dev_serviceagreements.yaml", []string{"spec", "serviceLevels", "approvalTime"}},
	{"service.offering.dev_serviceagreements.yaml", []string{"spec", "serviceLevels", "fulfilmentTime"}},
	{"service.offering.dev_serviceagreements.yaml", []string{"spec", "renewBefore"}},
	{"service.offering.dev_serviceagreements.yaml", []string{"spec", "autoRenew"}},
	{"service.offering.dev_serviceofferings.yaml", []string{"spec", "resources", "[]", "gracePeriod"}},
	{"service.offering.dev_serviceofferings.yaml", []string{"spec", "resources", "[]", "plans", "[]", "serviceLevels", "approvalTime"}},
	{"service.offering.dev_serviceofferings.yaml", []string{"spec", "resources", "[]", "plans", "[]", "serviceLevels", "fulfilmentTime"}},
	{"service.offering.dev_serviceofferings.yaml", []string{"spec", "actions", "[]", "job", "timeout"}},
	{"service.offering.dev_serviceofferings.yaml", []string{"spec", "goods", "[]", "acceptanceDeadline"}},
}

// FuzzCRDDurations: every duration the CRDs admit decodes as a metav1.Duration.
func FuzzCRDDurations(f *testing.F) {
	for _, s := range []string{"4h", "30s", "1h30m", "1.5h", "168h", "10m", "0s", "2562047h", "9223372036854775807ns", "1h1h1h", "0.000000001s", "1.h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkDecodes(t, durationFields, s, func(raw []byte) error { return json.Unmarshal(raw, &metav1.Duration{}) })
	})
}

var dateTimeFields = []crdField{
	{"service.offering.dev_serviceagreements.yaml", []string{"spec", "validFrom"}},
	{"service.offering.dev_serviceagreements.yaml", []string{"spec", "validUntil"}},
	// Written by approvers and providers through the status subresource.
	{"service.offering.dev_consumptionrequests.yaml", []string{"status", "conditions", "[]", "lastTransitionTime"}},
}

// FuzzCRDDateTimes: every date-time the CRDs admit decodes as a metav1.Time.
func FuzzCRDDateTimes(f *testing.F) {
	for _, s := range []string{"2026-06-01T12:00:00Z", "2026-06-01T12:00:00.123Z", "2026-06-01T12:00:00+02:00",
		"2026-02-30T00:00:00Z", "2026-06-01T24:00:00Z", "0000-01-01T00:00:00Z",
		time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC).Format(time.RFC3339Nano)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkDecodes(t, dateTimeFields, s, func(raw []byte) error { return json.Unmarshal(raw, &metav1.Time{}) })
	})
}

var quantityFields = []crdField{
	{"service.offering.dev_serviceofferings.yaml", []string{"spec", "resources", "[]", "quota", "{}"}},
	{"service.offering.dev_serviceofferings.yaml", []string{"spec", "resources", "[]", "limits", "[]", "max", "{}"}},
	{"service.offering.dev_serviceofferings.yaml", []string{"spec", "resources", "[]", "limits", "[]", "defaultRequest", "{}"}},
}

// FuzzCRDQuantities: every quantity the CRDs admit (as a string) decodes as a resource.Quantity.
func FuzzCRDQuantities(f *testing.F) {
	for _, s := range []string{"4", "100m", "1Gi", "1.5", "20", "+1", "-1", ".5", "1e3", "1E-3", "1e9999999999", "1Ei", "0.000000001n",
		"9223372036854775807", "99999999999999999999999999999999999999Ei", "1.", "1e+", "e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkDecodes(t, quantityFields, s, func(raw []byte) error { return json.Unmarshal(raw, &resource.Quantity{}) })
	})
}

// FuzzCRDRequestedNamespaceName: every namespace name a request may ask for
// is a DNS label that is not reserved, so the operator's own check
// (isReservedNamespace in grant) never has to catch what the API server let through.
func FuzzCRDRequestedNamespaceName(f *testing.F) {
	for _, s := range []string{"my-space", "default", "kube-system", "kube", "openshift-x", "openshift", "Default", "a", strings.Repeat("a", 64),
		"-a", "a-", "a.b", "kube-", "defaul"} {
		f.Add(s)
	}
	fields := []crdField{{"service.offering.dev_consumptionrequests.yaml", []string{"spec", "resource", "namespaceName"}}}
	f.Fuzz(func(t *testing.T, s string) {
		if !validatorFor(t, fields[0]).admits(s) {
			return
		}
		requireDNSLabel(t, "requested namespace", s)
		if isReservedNamespace(s) {
			t.Fatalf("the API server admits the reserved namespace name %q", s)
		}
	})
}
