package controllers

// Fuzz tests for everything that turns user input into object names, a Job's
// environment, or a decision. They run with their seeds (f.Add and
// testdata/fuzz/<target>/) in every `go test`, -short included; `make fuzz`
// explores each target further (FUZZTIME per target).

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// requireDNSLabel fails unless name is a DNS-1123 label (at most 63 characters):
// namespace and Job names (a Job's name is also a label value on its Pods).
func requireDNSLabel(t *testing.T, what, name string) {
	t.Helper()
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		t.Fatalf("%s %q is not a DNS label: %v", what, name, errs)
	}
}

// requireDNSSubdomain fails unless name is a DNS-1123 subdomain (at most 253
// characters) made of lower-case letters, digits and '-' only, so that it is
// also a valid path segment name (RoleBindings).
func requireDNSSubdomain(t *testing.T, what, name string) {
	t.Helper()
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		t.Fatalf("%s %q is not a DNS subdomain: %v", what, name, errs)
	}
	if strings.Contains(name, ".") {
		t.Fatalf("%s %q contains a dot", what, name)
	}
}

// FuzzDerivedNames: every name the operator derives from user input (request
// namespace, name and UID, ClusterRole names, goods source names) is a valid
// object name of its kind, within its length limit, and deterministic, for
// any input at all, not only for what the API server admits.
func FuzzDerivedNames(f *testing.F) {
	f.Add("team-payments", "rack-a", "0b5a0c2e-5a4e-4a83-9a55-2f1d3c4b5a69", "workload-operator", "ha-device-credentials")
	f.Add("a-b", "c", "uid", "system:aggregate-to-edit", "x")
	f.Add("a", "b-c", "uid", "view", "x")
	f.Add(strings.Repeat("n", 63), strings.Repeat("r", 253), strings.Repeat("u", 64), strings.Repeat("r", 253), strings.Repeat("s", 253))
	f.Add("team.x", "UPPER_case", "", "Role With Spaces", "Secret.Name")
	f.Add("", "", "", "", "")                  // nothing at all
	f.Add("-", ".", "/", ":", "--")            // only separators
	f.Add("tëam", "réquest", "ü", "rôle", "ß") // non-ASCII
	f.Add("a\x00b", "\xff\xfe", "\n", "\t", "\x80")
	f.Fuzz(func(t *testing.T, ns, name, uid, role, src string) {
		cr := &v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)}}

		derived := grantNamespaceName(cr, nil)
		requireDNSLabel(t, "granted namespace", derived)
		if again := grantNamespaceName(cr.DeepCopy(), nil); again != derived {
			t.Fatalf("granted namespace not deterministic: %q then %q", derived, again)
		}
		if isReservedNamespace(derived) {
			t.Fatalf("derived namespace %q is reserved: every grant of the request would fail", derived)
		}
		// A requested name is ignored unless the item allows it, and used as is when it does
		// (the API server has checked it: a DNS label, not reserved).
		cr.Spec.Resource = &v1alpha1.ResourceRequest{Name: "space", NamespaceName: v1alpha1.NamespaceName(name)}
		if got := grantNamespaceName(cr, &v1alpha1.ResourceItem{}); got != derived {
			t.Fatalf("requested name %q used although the item does not allow it: %q", name, got)
		}
		allow := &v1alpha1.ResourceItem{Namespace: v1alpha1.NamespaceTemplate{AllowRequestedName: true}}
		if got := grantNamespaceName(cr, allow); name != "" && got != name {
			t.Fatalf("requested name %q, allowed, gave %q", name, got)
		}

		requireDNSLabel(t, "action Job", actionJobName(cr))
		requireDNSSubdomain(t, "action secret copy", actionSecretName(cr))
		requireDNSSubdomain(t, "RoleBinding", roleBindingName(role))
		for _, kind := range []v1alpha1.GoodsSourceKind{v1alpha1.GoodsSourceSecret, v1alpha1.GoodsSourceConfigMap} {
			requireDNSSubdomain(t, "goods copy", goodsCopyName(cr, v1alpha1.GoodsSource{Kind: kind, Name: v1alpha1.ObjectName(src)}))
		}
		if actionJobName(cr) != actionJobName(cr.DeepCopy()) || actionSecretName(cr) != actionSecretName(cr.DeepCopy()) ||
			roleBindingName(role) != roleBindingName(strings.Clone(role)) {
			t.Fatal("a derived name is not deterministic")
		}
	})
}

// isValidNamespaceAndName reports whether ns and name could be a request's
// namespace (a DNS label) and name (a DNS subdomain).
func isValidNamespaceAndName(ns, name string) bool {
	return len(validation.IsDNS1123Label(ns)) == 0 && len(validation.IsDNS1123Subdomain(name)) == 0
}

// FuzzGrantNamespaceNameCollisions: two different requests derive the same
// namespace name only when both the visible part (namespace and name, cut to
// fit) and the six hex digits of the hash of "<namespace>/<name>" agree. The
// hash is 24 bits: such collisions exist (TestDerivedNamespaceCollisionsExist
// shows one) and are refused as a NamespaceConflict, never shared
// (TestDerivedNameCollisionNeverSharesANamespace); the fuzzer checks that no
// other way to collide exists, such as "a-b"/"c" and "a"/"b-c".
func FuzzGrantNamespaceNameCollisions(f *testing.F) {
	f.Add("a-b", "c", "a", "b-c")
	f.Add("team", "a.b", "team", "a-b")
	f.Add("team", "x", "team-x", "x")
	f.Add(strings.Repeat("n", 63), strings.Repeat("r", 200)+"a", strings.Repeat("n", 63), strings.Repeat("r", 200)+"b")
	f.Add("consumer-12", "a.b-c.d-e-f.g.h-i-j.k.l-m.n-o-p", "consumer-12", "a-b.c-d-e.f-g-h.i-j.k.l.m-n.o-p") // a real collision
	f.Fuzz(func(t *testing.T, ns1, name1, ns2, name2 string) {
		if !isValidNamespaceAndName(ns1, name1) || !isValidNamespaceAndName(ns2, name2) || (ns1 == ns2 && name1 == name2) {
			return // not two different requests
		}
		a := grantNamespaceName(&v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns1, Name: name1}}, nil)
		b := grantNamespaceName(&v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns2, Name: name2}}, nil)
		if a != b {
			return
		}
		h1, h2 := sha256.Sum256([]byte(ns1+"/"+name1)), sha256.Sum256([]byte(ns2+"/"+name2))
		if hex.EncodeToString(h1[:3]) != hex.EncodeToString(h2[:3]) {
			t.Fatalf("%s/%s and %s/%s derive the same namespace %q without a hash collision", ns1, name1, ns2, name2, a)
		}
		t.Logf("24-bit hash collision: %s/%s and %s/%s both derive %q", ns1, name1, ns2, name2, a)
	})
}

// TestDerivedNamespaceCollisionsExist documents the limit of the 24-bit hash:
// within one namespace, a consumer can pick two request names whose derived
// namespaces collide ('.' and '-' are both turned into '-', so the visible
// part is the same). The second request is then refused with
// NamespaceConflict; see TestDerivedNameCollisionNeverSharesANamespace.
func TestDerivedNamespaceCollisionsExist(t *testing.T) {
	a, b, ok := findDerivedNameCollision("consumer-12")
	if !ok {
		t.Fatal("no collision among 2^15 names: the hash is longer than 24 bits now; update the docs and this test")
	}
	if a == b || !isValidNamespaceAndName("consumer-12", a) || !isValidNamespaceAndName("consumer-12", b) {
		t.Fatalf("not two valid, different names: %q %q", a, b)
	}
}

// findDerivedNameCollision finds two valid request names in namespace ns that
// derive the same granted namespace: the 2^15 ways of separating 16 letters
// with '.' or '-' share one visible part, and among 32,768 hashes of 24 bits
// a collision is all but certain (about 32 are expected).
func findDerivedNameCollision(ns string) (string, string, bool) {
	seen := map[string]string{}
	const letters = "abcdefghijklmnop"
	for m := range 1 << 15 {
		var b strings.Builder
		for i := range len(letters) {
			b.WriteByte(letters[i])
			if i == len(letters)-1 {
				break
			}
			if m&(1<<i) != 0 {
				b.WriteByte('.')
			} else {
				b.WriteByte('-')
			}
		}
		name := b.String()
		derived := grantNamespaceName(&v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}, nil)
		if other, ok := seen[derived]; ok {
			return other, name, true
		}
		seen[derived] = name
	}
	return "", "", false
}

// Parameter names the fuzzer picks from: declared ones and unknown ones.
var fuzzParameterNames = []v1alpha1.ParameterName{"RACK", "DEVICE", "TOKEN", "TICKET", "A", "B_2", "COLOUR", "Z"}

var parameterNamePattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// valueMarker starts every fuzzed parameter value, so that a value showing in
// a message can be told from the message's own words.
const valueMarker = "\x00value:"

// FuzzActionParameters: validateParameters never panics, accepts exactly the
// requests an independent reading of the rules accepts, names every problem,
// and never shows a value; for accepted requests, the Job's environment holds
// exactly the declared parameters that were given, plain ones by value and
// secret ones by reference to the copy in the provider namespace, never by value.
//
// decl: one byte per declared parameter (bits 0-2 the name, bit 3 required,
// bit 4 secret). req: one byte per parameter given (bits 0-2 the name, bit 3
// passed as a secret reference). extra is one more name, declared and given as
// a plain parameter when it is a valid parameter name; value is the value
// given to every plain parameter; timeout the Job's timeout in nanoseconds.
func FuzzActionParameters(f *testing.F) {
	// The test world's install action: RACK required, DEVICE optional, TOKEN secret.
	install := []byte{0 | 8, 1, 2 | 16}
	f.Add(install, []byte{0, 1, 2 | 8}, "", "rack-a", int64(10*time.Minute))            // valid
	f.Add(install, []byte{0, 1, 2 | 8, 6}, "", "red", int64(0))                         // unknown COLOUR
	f.Add(install, []byte{1, 2 | 8}, "", "x", int64(time.Hour))                         // RACK missing
	f.Add(install, []byte{0, 2}, "", "plain", int64(-1))                                // secret passed as plain
	f.Add(install, []byte{0, 1 | 8}, "", "x", int64(1))                                 // plain passed as secret
	f.Add([]byte{4 | 8, 5 | 16}, []byte{4, 4 | 8}, "", "x", int64(time.Second))         // A passed twice
	f.Add([]byte{}, []byte{}, "", "", int64(0))                                         // nothing declared, nothing given
	f.Add([]byte{3 | 8}, []byte{3}, "EXTRA_1", "$(RACK); rm -rf / #", int64(1<<62))     // shell in a value
	f.Add(install, []byte{0, 0, 0, 2 | 8, 2 | 8}, "lower", "x", int64(time.Nanosecond)) // repeats are dropped, as the API does
	f.Fuzz(func(t *testing.T, decl, req []byte, extra, value string, timeout int64) {
		item := &v1alpha1.ActionItem{Name: "install", Type: v1alpha1.ActionAutomated,
			Job: &v1alpha1.ActionJob{Image: "busybox", Timeout: &metav1.Duration{Duration: time.Duration(timeout)}}}
		ar := &v1alpha1.ActionRequest{Name: "install"}
		// The API server keeps names unique within each list (listType=map); do the same.
		declared := map[v1alpha1.ParameterName]v1alpha1.ActionParameterSpec{}
		for _, b := range decl {
			p := v1alpha1.ActionParameterSpec{Name: fuzzParameterNames[b&7], Required: b&8 != 0, Secret: b&16 != 0}
			if _, dup := declared[p.Name]; !dup {
				declared[p.Name] = p
				item.Parameters = append(item.Parameters, p)
			}
		}
		plain, secret := map[v1alpha1.ParameterName]string{}, map[v1alpha1.ParameterName]bool{}
		givePlain := func(name v1alpha1.ParameterName, v string) {
			if _, dup := plain[name]; !dup {
				plain[name] = v
				ar.Parameters = append(ar.Parameters, v1alpha1.ParameterValue{Name: name, Value: v})
			}
		}
		for i, b := range req {
			name := fuzzParameterNames[b&7]
			if b&8 != 0 {
				if !secret[name] {
					secret[name] = true
					ar.SecretParameters = append(ar.SecretParameters, v1alpha1.SecretParameterValue{Name: name,
						SecretKeyRef: v1alpha1.SecretKeySelector{Name: "consumer-secret", Key: "key"}})
				}
				continue
			}
			givePlain(name, fmt.Sprintf("%s%d:%s", valueMarker, i, value))
		}
		if len(extra) <= 63 && parameterNamePattern.MatchString(extra) {
			name := v1alpha1.ParameterName(extra)
			if _, dup := declared[name]; !dup {
				declared[name] = v1alpha1.ActionParameterSpec{Name: name}
				item.Parameters = append(item.Parameters, declared[name])
			}
			givePlain(name, valueMarker+"extra:"+value)
		}

		// The rules, read independently.
		var want []string
		for _, p := range ar.Parameters {
			d, ok := declared[p.Name]
			switch {
			case !ok:
				want = append(want, "unknown parameter "+string(p.Name))
			case d.Secret:
				want = append(want, "parameter "+string(p.Name)+" is secret")
			}
		}
		for _, p := range ar.SecretParameters {
			d, ok := declared[p.Name]
			if _, both := plain[p.Name]; both {
				want = append(want, "parameter "+string(p.Name)+" is passed twice")
			}
			switch {
			case !ok:
				want = append(want, "unknown parameter "+string(p.Name))
			case !d.Secret:
				want = append(want, "parameter "+string(p.Name)+" is not secret")
			}
		}
		for _, p := range item.Parameters {
			_, isPlain := plain[p.Name]
			if p.Required && !isPlain && !secret[p.Name] {
				want = append(want, "missing required parameter "+string(p.Name))
			}
		}

		msg := validateParameters(item, ar)
		if strings.Contains(msg, valueMarker) {
			t.Fatalf("the message shows a parameter's value: %q", msg)
		}
		if len(want) > 0 {
			if !strings.HasPrefix(msg, "action install refuses the request's parameters: ") {
				t.Fatalf("refusal %q does not say which action refuses what; want %v", msg, want)
			}
			for _, w := range want {
				if !strings.Contains(msg, w) {
					t.Fatalf("message %q does not say %q", msg, w)
				}
			}
			return
		}
		if msg != "" {
			t.Fatalf("valid parameters refused: %q", msg)
		}

		// Accepted: the Job's environment.
		cr := &v1alpha1.ConsumptionRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "install-1", UID: "uid-1"},
			Spec: v1alpha1.ConsumptionRequestSpec{Agreement: "agreement", Action: ar}}
		agr := &v1alpha1.ServiceAgreement{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "agreement"}}
		secretName := actionSecretName(cr)
		job := desiredJob(cr, agr, item, "provider", secretName, childLabels(cr, "offering", item.Name))
		requireDNSLabel(t, "Job", job.Name)
		if job.Namespace != "provider" {
			t.Fatalf("Job in %q, want the provider namespace", job.Namespace)
		}
		if d := job.Spec.ActiveDeadlineSeconds; d == nil || *d < 1 {
			t.Fatalf("activeDeadlineSeconds %v for timeout %d", d, timeout)
		}
		env := job.Spec.Template.Spec.Containers[0].Env
		got := map[string]corev1.EnvVar{}
		for _, e := range env {
			if _, dup := got[e.Name]; dup {
				t.Fatalf("environment variable %s set twice: %+v", e.Name, env)
			}
			got[e.Name] = e
		}
		for _, p := range item.Parameters {
			e, present := got[string(p.Name)]
			v, isPlain := plain[p.Name]
			switch {
			case secret[p.Name]:
				ref := e.ValueFrom
				if !present || e.Value != "" || ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != secretName ||
					ref.SecretKeyRef.Key != string(p.Name) {
					t.Fatalf("secret parameter %s: env %+v, want a reference to key %s of Secret %s", p.Name, e, p.Name, secretName)
				}
			case isPlain:
				if !present || e.Value != v || e.ValueFrom != nil {
					t.Fatalf("parameter %s: env %+v, want its value", p.Name, e)
				}
			case present:
				t.Fatalf("parameter %s was not given but is in the environment: %+v", p.Name, e)
			}
			delete(got, string(p.Name))
		}
		if len(got) > 0 {
			t.Fatalf("undeclared environment variables: %v", got)
		}
	})
}

// rbacVerbMatches and rbacResourceMatches decide, as the API server's RBAC
// authorizer does (k8s.io/kubernetes/pkg/apis/rbac/v1/evaluation_helpers.go),
// whether a rule allows a verb and a resource.
func rbacVerbMatches(rule rbacv1.PolicyRule, verb string) bool {
	for _, v := range rule.Verbs {
		if v == rbacv1.VerbAll || v == verb {
			return true
		}
	}
	return false
}

func rbacResourceMatches(rule rbacv1.PolicyRule, resource, subresource string) bool {
	combined := resource
	if subresource != "" {
		combined += "/" + subresource
	}
	for _, r := range rule.Resources {
		if r == rbacv1.ResourceAll || r == combined {
			return true
		}
		if subresource != "" && r == "*/"+subresource {
			return true
		}
	}
	return false
}

// splitFuzzList splits a fuzzed string into list items at ','.
func splitFuzzList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// FuzzRolePolicy: whatever a ClusterRole holds, RolePolicy.Check never panics,
// says why it refuses, always lets through what --allowed-cluster-roles names,
// and otherwise passes only a labelled, non-aggregated role other than
// cluster-admin whose rules, as RBAC evaluates them, allow neither escalate,
// bind nor impersonate, nor every resource (or every resource's subresource).
//
// rules: rules separated by ';', each "verbs|resources" with ','-separated lists.
func FuzzRolePolicy(f *testing.F) {
	f.Add("workload-operator", true, false, "get,list,watch,create,delete|pods,configmaps;get,list,create,update|deployments", "")
	f.Add("cluster-admin", true, false, "*|*", "")
	f.Add("cluster-admin", false, false, "*|*", "cluster-admin")
	f.Add("esc", true, false, "escalate|roles", "")
	f.Add("bnd", true, false, "bind|clusterroles", "")
	f.Add("imp", true, false, "impersonate|users,groups,serviceaccounts", "")
	f.Add("wild-verb", true, false, "*|pods", "")
	f.Add("wild-resource", true, false, "get|*", "")
	f.Add("agg", true, true, "get|pods", "")
	f.Add("plain", false, false, "get|pods", "")
	f.Add("case", true, false, "ESCALATE, bind|roles", "")
	f.Add("edit", false, true, "impersonate|serviceaccounts", "edit,view")
	f.Add("", true, false, "", "")
	f.Fuzz(func(t *testing.T, name string, labelled, aggregated bool, rules, allowed string) {
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if labelled {
			role.Labels = map[string]string{v1alpha1.LabelGrantable: "true"}
		}
		if aggregated {
			role.AggregationRule = &rbacv1.AggregationRule{}
		}
		if rules != "" {
			for _, r := range strings.Split(rules, ";") {
				verbs, resources, _ := strings.Cut(r, "|")
				role.Rules = append(role.Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Verbs: splitFuzzList(verbs), Resources: splitFuzzList(resources)})
			}
		}
		allowList := splitFuzzList(allowed)
		err := NewRolePolicy(allowList).Check(role.DeepCopy())
		for _, a := range allowList {
			if a == name && err != nil {
				t.Fatalf("ClusterRole %q is named in --allowed-cluster-roles but refused: %v", name, err)
			}
		}
		if err != nil {
			if err.Error() == "" || !strings.Contains(err.Error(), "ClusterRole "+name) {
				t.Fatalf("refusal %q does not name ClusterRole %q", err, name)
			}
			return
		}
		for _, a := range allowList {
			if a == name {
				return
			}
		}
		switch {
		case name == "cluster-admin":
			t.Fatal("cluster-admin passed without being named in --allowed-cluster-roles")
		case !labelled:
			t.Fatalf("ClusterRole %q passed without the %s label", name, v1alpha1.LabelGrantable)
		case aggregated:
			t.Fatalf("aggregated ClusterRole %q passed", name)
		}
		for _, rule := range role.Rules {
			for _, verb := range []string{"escalate", "bind", "impersonate"} {
				if rbacVerbMatches(rule, verb) {
					t.Fatalf("ClusterRole %q passed although its rule %+v allows %s", name, rule, verb)
				}
			}
			// A resource name no role would ever list, with and without a subresource.
			for _, sub := range []string{"", "status", "exec", "token", "scale", "proxy"} {
				if rbacResourceMatches(rule, "fuzz-unlisted-resource", sub) {
					t.Fatalf("ClusterRole %q passed although its rule %+v covers every resource (subresource %q)", name, rule, sub)
				}
			}
		}
	})
}

// FuzzParameterExpansion checks the rule that parameters reach an action's
// Job only as environment variables, against the kubelet's own expansion
// (kubeletExpand): for any command and args, the template is accepted exactly
// when expanding them with the parameters' values, as the kubelet does before
// the container starts, leaves every value out. No accepted template lets a
// consumer's value into a command line, and nothing the kubelet leaves alone
// ($$(RACK), $RACK, $(RACK without its ")") is refused.
func FuzzParameterExpansion(f *testing.F) {
	f.Add("sh\x00-c\x00echo $(RACK)", "")
	f.Add("bash\x00--noprofile\x00--rcfile\x00/dev/null\x00-c", "install $(RACK)")
	f.Add("timeout\x00--kill-after\x005\x0060\x00sh\x00-c\x00echo $(TOKEN)", "")
	f.Add("node\x00--eval=$$(RACK)", "$$$(RACK)")
	f.Add("env\x00-S\x00sh -c 'echo $(RACK'", "$($(RACK)")
	f.Add("sh\x00-c\x00install \"$RACK\"", "$é$(TOKEN)")
	params := []v1alpha1.ActionParameterSpec{{Name: "RACK"}, {Name: "TOKEN", Secret: true}}
	// Values no template can hold: argv is split on NUL.
	values := map[string]string{"RACK": "\x00rack-value\x00", "TOKEN": "\x00token-value\x00"}
	f.Fuzz(func(t *testing.T, command, args string) {
		job := &v1alpha1.ActionJob{Command: strings.Split(command, "\x00"), Args: strings.Split(args, "\x00")}
		refused := parameterExpansion(&v1alpha1.ActionItem{Parameters: params, Job: job}) != ""
		leaks := false
		for _, a := range slices.Concat(job.Command, job.Args) {
			expanded := kubeletExpand(a, func(name string) string {
				if v, ok := values[name]; ok {
					return v
				}
				return "$(" + name + ")"
			})
			leaks = leaks || strings.Contains(expanded, "\x00")
		}
		if leaks && !refused {
			t.Fatalf("command %q args %q accepted, but the kubelet would paste a parameter's value into them", job.Command, job.Args)
		}
		if refused && !leaks {
			t.Fatalf("command %q args %q refused, but the kubelet expands no parameter in them", job.Command, job.Args)
		}
	})
}

// kubeletExpand is the kubelet's expansion of $(NAME) in a container's command
// and args, as k8s.io/kubernetes third_party/forked/golang/expansion.Expand
// does it (Apache License 2.0, The Kubernetes Authors), kept here as the fuzz
// oracle: an independent reading of the same syntax as expandedNames.
func kubeletExpand(input string, mapping func(string) string) string {
	var buf strings.Builder
	checkpoint := 0
	for cursor := 0; cursor < len(input); cursor++ {
		if input[cursor] == '$' && cursor+1 < len(input) {
			buf.WriteString(input[checkpoint:cursor])
			read, isVar, advance := kubeletReadVariableName(input[cursor+1:])
			if isVar {
				buf.WriteString(mapping(read))
			} else {
				buf.WriteString(read)
			}
			cursor += advance
			checkpoint = cursor + 1
		}
	}
	return buf.String() + input[checkpoint:]
}

func kubeletReadVariableName(input string) (string, bool, int) {
	r, size := utf8.DecodeRuneInString(input)
	switch r {
	case '$':
		return input[0:size], false, size
	case '(':
		for i := 1; i < len(input); i++ {
			if input[i] == ')' {
				return input[1:i], true, i + 1
			}
		}
		return "$(", false, 1
	default:
		return "$" + string(r), false, size
	}
}
