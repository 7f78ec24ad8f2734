package controllers

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func TestSplitString(t *testing.T) {
	for in, want := range map[string][]string{
		"":                        nil,
		"  sh  -c\t'echo a b'  ":  {"sh", "-c", "'echo a b'"},
		`a "b \" c" d\ e 'f"g' h`: {"a", `"b \" c"`, `d\ e`, `'f"g'`, "h"},
		`unclosed 'x y`:           {"unclosed", "'x y"},
	} {
		if got := splitString(in); !slices.Equal(got, want) {
			t.Errorf("splitString(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnsafeExpansion(t *testing.T) {
	params := []v1alpha1.ActionParameterSpec{{Name: "RACK"}, {Name: "TOKEN", Secret: true}}
	cases := []struct {
		name          string
		command, args []string
		unsafe        string // the parameter named in the refusal, "" when safe
	}{
		{"sh -c with $(RACK)", []string{"sh", "-c", "install $(RACK)"}, nil, "RACK"},
		{"secret parameter", []string{"sh", "-c", "login $(TOKEN)"}, nil, "TOKEN"},
		{"bash with option clusters", []string{"/bin/bash", "-euo", "pipefail", "-c", "x=$(RACK)"}, nil, "RACK"},
		{"-ec cluster", []string{"/bin/sh", "-ec", "echo $(RACK)"}, nil, "RACK"},
		{"script in args", []string{"sh"}, []string{"-c", "echo $(RACK)"}, "RACK"},
		{"no command: args are the command line", nil, []string{"sh", "-c", "echo $(RACK)"}, "RACK"},
		{"busybox sh", []string{"busybox", "sh", "-c", "echo $(RACK)"}, nil, "RACK"},
		{"env with an assignment", []string{"/usr/bin/env", "-i", "LANG=C", "bash", "-c", "echo $(RACK)"}, nil, "RACK"},
		{"after --", []string{"sh", "-c", "--", "echo $(RACK)"}, nil, "RACK"},
		{"the shell reads the variable", []string{"sh", "-c", `install "$RACK"`}, nil, ""},
		{"escaped by $$", []string{"sh", "-c", "echo $$(RACK)"}, nil, ""},
		{"an undeclared variable", []string{"sh", "-c", "echo $(HOME)"}, nil, ""},
		{"value as a positional parameter", []string{"sh", "-c", `install "$1"`, "sh", "$(RACK)"}, nil, ""},
		{"a script file", []string{"sh", "/scripts/install.sh", "$(RACK)"}, nil, ""},
		{"not a shell", []string{"/bin/installer", "--rack", "$(RACK)"}, nil, ""},
		{"no -c", []string{"sh", "-e"}, []string{"$(RACK)"}, ""},
		{"nothing", nil, nil, ""},
		// other interpreters' inline code; fix is how the refusal says to read the value
		{"python -c", []string{"python3", "-c", "import sys; install('$(RACK)')"}, nil, "RACK"},
		{"python with a flag cluster", []string{"/usr/bin/python3.12", "-uc", "print('$(RACK)')"}, nil, "RACK"},
		{"python reads the environment", []string{"python3", "-c", `import os; install(os.environ["RACK"])`}, nil, ""},
		{"python module", []string{"python3", "-m", "installer", "$(RACK)"}, nil, ""},
		{"python script file", []string{"python3", "-W", "ignore", "/app/install.py", "$(RACK)"}, nil, ""},
		{"perl -e", []string{"perl", "-e", "print '$(RACK)'"}, nil, "RACK"},
		{"perl -ne cluster", []string{"perl", "-lne", "print if /$(RACK)/", "/data/list"}, nil, "RACK"},
		{"perl -I before -e", []string{"perl", "-I", "/lib", "-e", "use X; X::go('$(RACK)')"}, nil, "RACK"},
		{"perl script with the value as argument", []string{"perl", "/app/install.pl", "$(RACK)"}, nil, ""},
		{"ruby -e", []string{"ruby", "-rjson", "-e", "puts '$(RACK)'"}, nil, "RACK"},
		{"node --eval=", []string{"node", "--eval=install('$(RACK)')"}, nil, "RACK"},
		{"node -p", []string{"nodejs", "-p", "'$(RACK)'.length"}, nil, "RACK"},
		{"php -r", []string{"php", "-r", "echo '$(RACK)';"}, nil, "RACK"},
		{"awk program", []string{"awk", "-F:", "-v", "x=1", "{ print \"$(RACK)\" }", "/etc/passwd"}, nil, "RACK"},
		{"awk value as an assignment", []string{"awk", "-v", "rack=$(RACK)", "{ print rack }"}, nil, ""},
		{"awk program file", []string{"gawk", "-f", "/app/x.awk", "$(RACK)"}, nil, ""},
		{"through timeout", []string{"timeout", "-s", "KILL", "30s", "sh", "-c", "echo $(RACK)"}, nil, "RACK"},
		{"through tini and nice", []string{"tini", "--", "nice", "-n", "5", "bash", "-c", "echo $(RACK)"}, nil, "RACK"},
		{"through nohup, value as argument", []string{"nohup", "/bin/installer", "$(RACK)"}, nil, ""},
		{"env -u NAME before the shell", []string{"env", "-u", "HOME", "sh", "-c", "echo $(RACK)"}, nil, "RACK"},
		{"env -C DIR before the shell", []string{"env", "-C", "/work", "bash", "-c", "run $(RACK)"}, nil, "RACK"},
		{"env -S splits a shell line", []string{"/usr/bin/env", "-S", "sh -c 'echo $(RACK)'"}, nil, "RACK"},
		{"env -S with the program quoted", []string{"env", "-S", `"/bin/sh" -e -c 'echo $(RACK)'`}, nil, "RACK"},
		{"python through env --split-string=", []string{"env", "--split-string=python3 -c 'print(\"$(RACK)\")'"}, nil, "RACK"},
		{"perl through an env -iS cluster", []string{"env", "-iSperl -e 'print q($(RACK))'"}, nil, "RACK"},
		{"env -S, the shell reads the variable", []string{"env", "-S", `sh -c 'install "$RACK"'`}, nil, ""},
		{"env -S, value as an argument", []string{"env", "-S", "/bin/installer --rack", "$(RACK)"}, nil, ""},
		{"env -u takes the value, not a program", []string{"env", "-u", "sh", "/bin/installer", "-c", "$(RACK)"}, nil, ""},
	}
	fixes := map[string]string{"python": `os.environ["RACK"]`, "perl": `$ENV{RACK}`, "ruby": `ENV["RACK"]`,
		"node": `process.env.RACK`, "php": `getenv("RACK")`, "awk": `ENVIRON["RACK"]`}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			item := &v1alpha1.ActionItem{Name: "install", Type: v1alpha1.ActionAutomated, Parameters: params,
				Job: &v1alpha1.ActionJob{Image: "busybox", Command: c.command, Args: c.args}}
			got := unsafeExpansion(item)
			switch {
			case c.unsafe == "" && got != "":
				t.Errorf("refused: %s", got)
			case c.unsafe != "" && !strings.Contains(got, "$("+c.unsafe+")"):
				t.Errorf("not refused for $(%s): %q", c.unsafe, got)
			case c.unsafe != "":
				fix := `"$` + c.unsafe + `"`
				for lang, f := range fixes {
					if strings.HasPrefix(c.name, lang) {
						fix = f
					}
				}
				if !strings.Contains(got, fix) {
					t.Errorf("the refusal does not say how to fix it (%s): %q", fix, got)
				}
			}
		})
	}
	// Without parameters nothing is a consumer's value.
	if got := unsafeExpansion(&v1alpha1.ActionItem{Job: &v1alpha1.ActionJob{Command: []string{"sh", "-c", "echo $(RACK)"}}}); got != "" {
		t.Errorf("refused without parameters: %s", got)
	}
}
