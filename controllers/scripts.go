package controllers

import (
	"fmt"
	"path"
	"slices"
	"strings"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// shells are the programs whose -c operand is a script that the shell parses.
var shells = map[string]bool{"sh": true, "bash": true, "dash": true, "ash": true, "zsh": true, "ksh": true, "mksh": true}

// unsafeExpansion says why an Automated action's Job would run a consumer's
// parameter value as code, or returns "" when it would not. The kubelet
// replaces $(NAME) in a container's command and args before the container
// starts, so $(NAME) inside the script of a shell's -c puts the consumer's text
// into the script the shell then parses: a value such as `x; curl …` would run
// as the Job's ServiceAccount. Used as its own argument ("--rack", "$(RACK)"),
// or as "$RACK" inside the script, the value stays data.
func unsafeExpansion(item *v1alpha1.ActionItem) string {
	if item.Job == nil || len(item.Parameters) == 0 {
		return ""
	}
	argv := slices.Concat(item.Job.Command, item.Job.Args)
	script, ok := shellScript(argv)
	if !ok {
		return ""
	}
	for _, name := range expansions(script) {
		for _, p := range item.Parameters {
			if string(p.Name) == name {
				return fmt.Sprintf("$(%s) is in the script of a shell's -c, where the kubelet would paste the consumer's value into the script before the shell parses it "+
					"(a value could run commands as the Job's ServiceAccount): write \"$%s\" inside the script instead, which the shell reads as data", name, name)
			}
		}
	}
	return ""
}

// shellScript returns the script a command line gives a shell with -c:
// `sh -c SCRIPT`, `/bin/bash -euo pipefail -c SCRIPT`, `env sh -c SCRIPT` or
// `busybox sh -c SCRIPT`. ok is false when argv does not run a shell script.
func shellScript(argv []string) (script string, ok bool) {
	for len(argv) > 0 {
		prog := path.Base(argv[0])
		argv = argv[1:]
		switch {
		case prog == "busybox":
			continue
		case prog == "env":
			// env's own options and VAR=value assignments come before the program.
			for len(argv) > 0 && (strings.HasPrefix(argv[0], "-") || strings.Contains(argv[0], "=")) {
				argv = argv[1:]
			}
			continue
		case !shells[prog]:
			return "", false
		}
		withC := false
		for i := 0; i < len(argv); i++ {
			a := argv[i]
			switch {
			case a == "--":
				if withC && i+1 < len(argv) {
					return argv[i+1], true
				}
				return "", false
			case strings.HasPrefix(a, "--"):
				// a long option, such as --norc
			case len(a) > 1 && (a[0] == '-' || a[0] == '+'):
				if a[0] == '-' && strings.ContainsRune(a[1:], 'c') {
					withC = true
				}
				if last := a[len(a)-1]; last == 'o' || last == 'O' {
					i++ // -o and -O take an argument, such as pipefail
				}
			default:
				return a, withC
			}
		}
		return "", false
	}
	return "", false
}

// expansions are the variable names the kubelet expands in s, as it does:
// $(NAME) is replaced, $$ is a literal $.
func expansions(s string) []string {
	var names []string
	for i := 0; i+1 < len(s); i++ {
		if s[i] != '$' {
			continue
		}
		switch s[i+1] {
		case '$':
			i++
		case '(':
			if end := strings.IndexByte(s[i+2:], ')'); end >= 0 {
				names = append(names, s[i+2:i+2+end])
				i += 2 + end
			}
		}
	}
	return names
}
