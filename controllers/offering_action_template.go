package controllers

import (
	"fmt"
	"unicode/utf8"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// Parameters reach an action's Job only as environment variables. The kubelet
// replaces $(NAME) in a container's command and args by the value of the
// environment variable NAME before the container starts, so a parameter
// referenced there puts the consumer's text into the program's command line,
// where any program may parse it as code (the script of `sh -c`, of
// `bash --rcfile /dev/null -c`, behind `timeout`, `env -S`, an interpreter
// nobody listed). Which programs parse what cannot be known, so the rule does
// not try: no parameter may be referenced with $(NAME) in command or args at
// all. The template reads it from the environment instead ("$NAME" in a
// shell), where it stays data.

// parameterExpansion says where an action's Job template lets the kubelet
// expand a parameter in command or args, and how to read it instead; "" when
// it does not. It finds references exactly as the kubelet does (expandedNames).
func parameterExpansion(item *v1alpha1.ActionItem) string {
	if item.Job == nil || len(item.Parameters) == 0 {
		return ""
	}
	declared := make(map[string]bool, len(item.Parameters))
	for _, p := range item.Parameters {
		declared[string(p.Name)] = true
	}
	for _, field := range []struct {
		name   string
		values []string
	}{{"command", item.Job.Command}, {"args", item.Job.Args}} {
		for i, s := range field.values {
			for _, name := range expandedNames(s) {
				if declared[name] {
					return fmt.Sprintf("job.%s[%d] references parameter %s as $(%s), which the kubelet replaces by the consumer's value "+
						"before the program starts (a value could then run as code); parameters reach the Job only as environment "+
						"variables: read it from the environment instead, as \"$%s\" in a shell "+
						"(sh -c 'exec installer --rack \"$%s\"'), and write $$(%s) where the text $(%s) is meant",
						field.name, i, name, name, name, name, name, name)
				}
			}
		}
	}
	return ""
}

// expandedNames returns the names of the variable references $(NAME) in s,
// read as the kubelet's expansion (k8s.io/kubernetes
// third_party/forked/golang/expansion) reads them: "$$" is an escaped "$",
// "$(" runs to the first ")", and a "$(" without one is text.
func expandedNames(s string) []string {
	var names []string
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			continue
		}
		rest := s[i+1:]
		r, size := utf8.DecodeRuneInString(rest)
		switch r {
		case '$':
			i += size
		case '(':
			advance := 1
			for j := 1; j < len(rest); j++ {
				if rest[j] == ')' {
					names = append(names, rest[1:j])
					advance = j + 1
					break
				}
			}
			i += advance
		default:
			i += size
		}
	}
	return names
}
