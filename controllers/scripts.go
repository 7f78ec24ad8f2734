package controllers

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
)

// unsafeExpansion says why an Automated action's Job would run a consumer's
// parameter value as code, or returns "" when it would not. The kubelet
// replaces $(NAME) in a container's command and args before the container
// starts, so $(NAME) inside code that a program parses from its command line
// (the script of `sh -c`, the program of `python -c`, `perl -e`, `awk '…'`)
// puts the consumer's text into that code: a value such as `x; curl …` would
// run as the Job's ServiceAccount. Used as its own argument ("--rack",
// "$(RACK)"), or read from the environment inside the code ("$RACK",
// os.environ["RACK"]), the value stays data.
func unsafeExpansion(item *v1alpha1.ActionItem) string {
	if item.Job == nil || len(item.Parameters) == 0 {
		return ""
	}
	code, in, ok := inlineCode(slices.Concat(item.Job.Command, item.Job.Args))
	if !ok {
		return ""
	}
	for _, c := range code {
		for _, name := range expansions(c) {
			for _, p := range item.Parameters {
				if string(p.Name) == name {
					return fmt.Sprintf("$(%s) is in %s, where the kubelet would paste the consumer's value into the code before it is parsed "+
						"(a value could run commands as the Job's ServiceAccount): read it from the environment inside the code instead, as %s, which treats it as data",
						name, in.what, in.read(name))
				}
			}
		}
	}
	return ""
}

// interpreter is a program that takes code to parse on its command line.
type interpreter struct {
	// what names the place of the code, for messages: "the script of a shell's -c".
	what string
	// read is how the code reads the environment variable name.
	read func(name string) string
	// code returns the inline code among the program's arguments.
	code func(args []string) []string
}

var (
	shellNames = map[string]bool{"sh": true, "bash": true, "dash": true, "ash": true, "zsh": true, "ksh": true, "mksh": true}
	pythonName = regexp.MustCompile(`^(python|pypy)[0-9.]*$`)
	perlName   = regexp.MustCompile(`^perl[0-9.]*$`)
	rubyName   = regexp.MustCompile(`^ruby[0-9.]*$`)
	nodeName   = regexp.MustCompile(`^(node|nodejs)[0-9.]*$`)
	phpName    = regexp.MustCompile(`^php[0-9.]*$`)
	awkNames   = map[string]bool{"awk": true, "gawk": true, "mawk": true, "nawk": true}
)

// interpreterFor returns the interpreter a program's base name stands for.
func interpreterFor(prog string) (interpreter, bool) {
	switch {
	case shellNames[prog]:
		return interpreter{what: "the script of a shell's -c", read: func(n string) string { return `"$` + n + `"` }, code: shellCode}, true
	case pythonName.MatchString(prog):
		return interpreter{what: "the code of " + prog + " -c", read: func(n string) string { return `os.environ["` + n + `"]` },
			code: clusterCode("c", "WX", "", "", "m")}, true
	case perlName.MatchString(prog):
		// -l and -0 take optional digits; -i an optional extension and -x a
		// directory, attached; -I, -M and -m a value, attached or not.
		return interpreter{what: "the code of " + prog + " -e", read: func(n string) string { return `$ENV{` + n + `}` },
			code: clusterCode("eE", "IMm", "ixCdD", "0l", "")}, true
	case rubyName.MatchString(prog):
		return interpreter{what: "the code of " + prog + " -e", read: func(n string) string { return `ENV["` + n + `"]` },
			code: clusterCode("e", "IrCE", "FixWTK", "0", "")}, true
	case nodeName.MatchString(prog):
		return interpreter{what: "the code of " + prog + " -e", read: func(n string) string { return `process.env.` + n }, code: nodeCode}, true
	case phpName.MatchString(prog):
		// -B, -R and -E are code run before, for and after each input line.
		return interpreter{what: "the code of " + prog + " -r", read: func(n string) string { return `getenv("` + n + `")` },
			code: clusterCode("rBRE", "cdzFtS", "", "", "f")}, true
	case awkNames[prog]:
		return interpreter{what: "the program text of " + prog, read: func(n string) string { return `ENVIRON["` + n + `"]` }, code: awkCode}, true
	}
	return interpreter{}, false
}

// inlineCode returns the code a command line hands an interpreter to parse,
// and the interpreter; ok is false when the command line runs no interpreter
// or gives it no inline code (a script file, a module). Wrappers that run the
// rest of the line as a command are looked through: `env`, `busybox`,
// `nohup`, `nice`, `timeout`, `stdbuf`, `setsid`, `tini` and `dumb-init`.
func inlineCode(argv []string) (code []string, in interpreter, ok bool) {
	for len(argv) > 0 {
		prog := path.Base(strings.Trim(argv[0], `'"`)) // quoted in env -S
		if rest, wrapper := unwrap(prog, argv[1:]); wrapper {
			argv = rest
			continue
		}
		in, ok = interpreterFor(prog)
		if !ok {
			return nil, interpreter{}, false
		}
		code = in.code(argv[1:])
		return code, in, len(code) > 0
	}
	return nil, interpreter{}, false
}

// wrappers are the programs that run the rest of their command line as a
// command, with the short options of theirs that take a value.
var wrappers = map[string]string{
	"busybox": "", "nohup": "", "setsid": "", "nice": "n", "stdbuf": "ioe", "timeout": "sk",
	"tini": "pe", "tini-static": "pe", "dumb-init": "r",
}

// unwrap returns the command line a wrapper program runs, and whether prog
// is such a wrapper.
func unwrap(prog string, args []string) ([]string, bool) {
	if prog == "env" {
		return unwrapEnv(args), true
	}
	withValue, ok := wrappers[prog]
	if !ok {
		return nil, false
	}
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && len(args[0]) > 1 {
		a := args[0]
		args = args[1:]
		if a == "--" {
			break
		}
		if len(a) == 2 && strings.ContainsRune(withValue, rune(a[1])) && len(args) > 0 {
			args = args[1:]
		}
	}
	if prog == "timeout" && len(args) > 0 {
		args = args[1:] // the duration
	}
	return args, true
}

// unwrapEnv returns the command line env runs. Its options and the
// VAR=value assignments come before the program; the options -u (--unset)
// and -C (--chdir) take a value, and -S (--split-string) a string that env
// splits into arguments of their own (`env -S "sh -c 'echo hi'"`), which
// are looked through like the rest of the line.
func unwrapEnv(args []string) []string {
	for len(args) > 0 {
		a := args[0]
		args = args[1:]
		switch {
		case a == "--":
			for len(args) > 0 && strings.Contains(args[0], "=") {
				args = args[1:]
			}
			return args
		case strings.HasPrefix(a, "--"):
			name, value, hasValue := strings.Cut(a[2:], "=")
			if name == "unset" || name == "chdir" || name == "split-string" {
				args = envOptionValue(name == "split-string", value, hasValue, args)
			}
		case len(a) > 1 && a[0] == '-':
			// A cluster such as -iu NAME or -iS'sh -c ...': the first
			// option that takes a value takes the rest of it, or the next
			// argument.
			if i := strings.IndexAny(a[1:], "uCS"); i >= 0 {
				value := a[i+2:]
				args = envOptionValue(a[i+1] == 'S', value, value != "", args)
			}
		case a == "-" || strings.Contains(a, "="):
			// "-" is -i; VAR=value sets a variable.
		default:
			return append([]string{a}, args...)
		}
	}
	return nil
}

// envOptionValue takes the value of an env option from the next argument
// when the option did not carry it, and returns the arguments left; the
// string of -S is split into arguments in their place.
func envOptionValue(split bool, value string, carried bool, args []string) []string {
	if !carried && len(args) > 0 {
		value, args = args[0], args[1:]
	}
	if split {
		return append(splitString(value), args...)
	}
	return args
}

// splitString splits s where env -S would: at blanks outside quotes and not
// escaped by a backslash. The quotes and backslashes stay in the pieces, so
// that each piece is a piece of s and expands exactly the $(NAME) it holds
// there. inlineCode takes a program name out of its quotes; a quoted option
// (sh '-c') is not recognised, a limit docs/security.md states.
func splitString(s string) []string {
	var out []string
	start, quote := -1, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if quote == 0 && strings.IndexByte(" \t\n\v\f\r", c) >= 0 {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote == '"' && c == '\\', quote == 0 && c == '\\':
			i++
		case quote == 0 && (c == '\'' || c == '"'):
			quote = c
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}

// shellCode returns the script of a shell's -c: `sh -c SCRIPT`,
// `bash -euo pipefail -c SCRIPT`, `sh -c -- SCRIPT`.
func shellCode(args []string) []string {
	withC := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if withC && i+1 < len(args) {
				return []string{args[i+1]}
			}
			return nil
		case len(a) > 1 && (a[0] == '-' || a[0] == '+') && strings.Contains(a, "$("):
			// the consumer's value would choose the shell's options, or
			// become its script: taken for code
			return []string{a}
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
			if withC {
				return []string{a}
			}
			return nil
		}
	}
	return nil
}

// clusterCode returns a parser for interpreters whose short options cluster
// (`perl -ne CODE`, `python -uc CODE`): a letter in code takes the code,
// attached or as the next argument; one in value takes a value the same way;
// one in attached takes the rest of the cluster as its value; one in digits
// takes the digits that follow it; one in stop ends the options with no
// inline code (a module or a file). Long options are skipped, `--` or the
// first operand ends the options.
func clusterCode(code, value, attached, digits, stop string) func([]string) []string {
	return func(args []string) []string {
		var found []string
		for i := 0; i < len(args); i++ {
			a := args[i]
			if a == "--" || len(a) < 2 || a[0] != '-' {
				return found
			}
			if strings.Contains(a, "$(") {
				// the consumer's value would choose the interpreter's options,
				// or turn the next argument into code: taken for code
				found = append(found, a)
				continue
			}
			if strings.HasPrefix(a, "--") {
				continue
			}
		cluster:
			for j := 1; j < len(a); j++ {
				letter := rune(a[j])
				rest := a[j+1:]
				switch {
				case strings.ContainsRune(code, letter):
					if rest == "" && i+1 < len(args) {
						i++
						rest = args[i]
					}
					found = append(found, rest)
					break cluster
				case strings.ContainsRune(value, letter):
					if rest == "" {
						i++
					}
					break cluster
				case strings.ContainsRune(attached, letter):
					break cluster
				case strings.ContainsRune(digits, letter):
					for j+1 < len(a) && a[j+1] >= '0' && a[j+1] <= '9' {
						j++
					}
				case strings.ContainsRune(stop, letter):
					return found
				}
			}
		}
		return found
	}
}

// nodeCode returns the code of `node -e CODE`, `--eval CODE`, `--eval=CODE`,
// `-p CODE`, `--print CODE` or `-pe CODE`.
func nodeCode(args []string) []string {
	var found []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--" || !strings.HasPrefix(a, "-"):
			return found
		case strings.HasPrefix(a, "--eval=") || strings.HasPrefix(a, "--print="):
			found = append(found, a[strings.IndexByte(a, '=')+1:])
		case a == "--eval" || a == "--print" || a == "-e" || a == "-p" || a == "-pe" || a == "-ep":
			if i+1 < len(args) {
				i++
				found = append(found, args[i])
			}
		}
	}
	return found
}

// awkCode returns the program text of an awk command line: the first operand,
// unless a program file is given with -f; gawk's -e and --source add text.
func awkCode(args []string) []string {
	var found []string
	file := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if !file && i+1 < len(args) {
				found = append(found, args[i+1])
			}
			return found
		case a == "-f" || a == "--file":
			file = true
			i++
		case strings.HasPrefix(a, "-f") || strings.HasPrefix(a, "--file="):
			file = true
		case a == "-e" || a == "--source":
			if i+1 < len(args) {
				i++
				found = append(found, args[i])
			}
		case strings.HasPrefix(a, "--source="):
			found = append(found, strings.TrimPrefix(a, "--source="))
		case a == "-F" || a == "-v":
			i++ // the field separator or the assignment
		case strings.HasPrefix(a, "-") && len(a) > 1:
			// an option with its value attached (-F:, -vX=1) or a flag
		default:
			if !file {
				found = append(found, a)
			}
			return found
		}
	}
	return found
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
