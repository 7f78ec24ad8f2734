package controllers

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

func TestParameterExpansion(t *testing.T) {
	params := []v1alpha1.ActionParameterSpec{{Name: "RACK"}, {Name: "TOKEN", Secret: true}}
	cases := []struct {
		name          string
		command, args []string
		// refused is the parameter and the place named in the refusal, "" when accepted.
		refused, at string
	}{
		// Whatever program reads the command line: the rule does not depend on it.
		{"sh -c", []string{"sh", "-c", "install $(RACK)"}, nil, "RACK", "job.command[2]"},
		{"secret parameter", []string{"sh", "-c", "login $(TOKEN)"}, nil, "TOKEN", "job.command[2]"},
		{"bash with long options before -c", []string{"bash", "--noprofile", "--rcfile", "/dev/null", "-c", "install $(RACK)"}, nil, "RACK", "job.command[5]"},
		{"timeout --kill-after with a value", []string{"timeout", "--kill-after", "5", "60", "sh", "-c", "install $(RACK)"}, nil, "RACK", "job.command[6]"},
		{"env -S", []string{"env", "-S", "sh -c 'echo $(RACK)'"}, nil, "RACK", "job.command[2]"},
		{"an unknown interpreter", []string{"/opt/tool/run", "--eval", "go($(RACK))"}, nil, "RACK", "job.command[2]"},
		{"an argument of its own", []string{"/bin/installer", "--rack", "$(RACK)"}, nil, "RACK", "job.command[2]"},
		{"in args", []string{"sh"}, []string{"-c", "echo $(RACK)"}, "RACK", "job.args[1]"},
		{"no command: args are the command line", nil, []string{"/bin/installer", "$(RACK)"}, "RACK", "job.args[1]"},
		{"a $(... without ) before", []string{"x", "$(A $(RACK)"}, nil, "", ""},
		{"after an escaped $", []string{"echo", "$$$(RACK)"}, nil, "RACK", "job.command[1]"},
		{"non-ASCII before the reference", []string{"echo", "$é$(RACK)"}, nil, "RACK", "job.command[1]"},
		// The kubelet leaves these alone.
		{"the shell reads the variable", []string{"sh", "-c", `exec installer --rack "$RACK"`}, nil, "", ""},
		{"${RACK}", []string{"sh", "-c", `echo "${RACK}"`}, nil, "", ""},
		{"escaped by $$", []string{"sh", "-c", "echo $$(RACK)"}, nil, "", ""},
		{"an undeclared variable", []string{"sh", "-c", "echo $(HOME)"}, nil, "", ""},
		{"unclosed", []string{"echo", "$(RACK"}, nil, "", ""},
		{"a name that only contains the parameter's", []string{"echo", "$(RACKS) $( RACK) $(rack)"}, nil, "", ""},
		{"a $ at the end", []string{"echo", "RACK$"}, nil, "", ""},
		{"nothing", nil, nil, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			item := &v1alpha1.ActionItem{Name: "install", Type: v1alpha1.ActionAutomated, Parameters: params,
				Job: &v1alpha1.ActionJob{Image: "busybox", Command: c.command, Args: c.args}}
			got := parameterExpansion(item)
			if c.refused == "" {
				if got != "" {
					t.Errorf("refused: %s", got)
				}
				return
			}
			for _, want := range []string{c.at + " ", "$(" + c.refused + ")", `"$` + c.refused + `"`, "only as environment variables"} {
				if !strings.Contains(got, want) {
					t.Errorf("refusal %q does not say %q", got, want)
				}
			}
		})
	}
	// Without parameters nothing is a consumer's value.
	if got := parameterExpansion(&v1alpha1.ActionItem{Job: &v1alpha1.ActionJob{Command: []string{"sh", "-c", "echo $(RACK)"}}}); got != "" {
		t.Errorf("refused without parameters: %s", got)
	}
}

func TestExpandedNamesReadsAsTheKubelet(t *testing.T) {
	for in, want := range map[string][]string{
		"$(A)$(B)":      {"A", "B"},
		"$$(A)":         nil,
		"$$$(A)":        {"A"},
		"$($(A)":        {"$(A"},
		"$(A":           nil,
		"$":             nil,
		"a$b$(C)d":      {"C"},
		"$()":           {""},
		"$(A)$$(B)$(C)": {"A", "C"},
	} {
		if got := expandedNames(in); !slices.Equal(got, want) {
			t.Errorf("expandedNames(%q) = %q, want %q", in, got, want)
		}
		// The oracle agrees: every name found is one kubeletExpand looks up.
		var looked []string
		kubeletExpand(in, func(n string) string { looked = append(looked, n); return "" })
		if !slices.Equal(looked, want) {
			t.Errorf("kubeletExpand(%q) looks up %q, want %q", in, looked, want)
		}
	}
}

func TestActionRefusal(t *testing.T) {
	job := func(sa string) *v1alpha1.ActionItem {
		return &v1alpha1.ActionItem{Name: "install", Type: v1alpha1.ActionAutomated, Parameters: []v1alpha1.ActionParameterSpec{{Name: "RACK"}},
			Job: &v1alpha1.ActionJob{Image: "busybox", Command: []string{"sh", "-c", `install "$RACK"`}, ServiceAccountName: sa}}
	}
	annotated := func(v string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "colo", Annotations: map[string]string{v1alpha1.AnnotationActionServiceAccounts: v}}}
	}
	cases := []struct {
		name   string
		opts   Options
		ns     *corev1.Namespace
		item   *v1alpha1.ActionItem
		reason string
	}{
		{"annotated", Options{}, annotated("installer"), job("installer"), ""},
		{"annotated among others", Options{}, annotated("a, installer ,b"), job("installer"), ""},
		{"not annotated", Options{}, annotated("other"), job("installer"), v1alpha1.ReasonActionServiceAccountForbidden},
		{"no annotation", Options{}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "colo"}}, job("installer"), v1alpha1.ReasonActionServiceAccountForbidden},
		{"default is not implied", Options{}, annotated("installer"), job(""), v1alpha1.ReasonActionServiceAccountForbidden},
		{"default when listed", Options{}, annotated("default"), job(""), ""},
		{"the flag", Options{ActionServiceAccounts: []string{"colo/installer"}}, annotated(""), job("installer"), ""},
		{"the flag names another namespace", Options{ActionServiceAccounts: []string{"other/installer"}}, annotated(""), job("installer"), v1alpha1.ReasonActionServiceAccountForbidden},
		{"an expansion is refused first", Options{}, annotated("installer"),
			&v1alpha1.ActionItem{Name: "x", Parameters: []v1alpha1.ActionParameterSpec{{Name: "RACK"}},
				Job: &v1alpha1.ActionJob{Command: []string{"installer", "$(RACK)"}, ServiceAccountName: "installer"}}, v1alpha1.ReasonUnsafeParameterExpansion},
		{"manual", Options{}, annotated(""), &v1alpha1.ActionItem{Name: "x", Type: v1alpha1.ActionManual}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reason, msg := c.opts.actionRefusal(c.ns, c.item)
			if reason != c.reason {
				t.Fatalf("reason %q (%s), want %q", reason, msg, c.reason)
			}
			if reason == v1alpha1.ReasonActionServiceAccountForbidden &&
				(!strings.Contains(msg, "kubectl annotate namespace colo "+v1alpha1.AnnotationActionServiceAccounts+"=") || !strings.Contains(msg, "--action-service-accounts")) {
				t.Errorf("the refusal does not say how to allow it: %s", msg)
			}
		})
	}
}

func TestParseActionServiceAccounts(t *testing.T) {
	for value, want := range map[string][]string{"": nil, " ": nil, "colo/installer": {"colo/installer"}, "a/b, c/d": {"a/b", "c/d"}} {
		if got, err := ParseActionServiceAccounts(value); err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseActionServiceAccounts(%q) = %q, %v; want %q", value, got, err, want)
		}
	}
	for _, value := range []string{"installer", "a/b,,c/d", "Colo/x", "a/", "/b", "a/b/c"} {
		if got, err := ParseActionServiceAccounts(value); err == nil {
			t.Errorf("ParseActionServiceAccounts(%q) = %q, want an error", value, got)
		}
	}
}
