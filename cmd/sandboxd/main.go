// Command sandboxd runs untrusted WebAssembly programs with least
// authority: a guest starts with no access to anything and can use only
// the handles granted to it.
//
// Each verb lives in its own file and registers itself from init, so a new
// verb never touches this one. Exit codes are in docs/CLI.md.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// command is one verb: `sandboxd NAME USAGE`.
type command struct {
	name    string
	usage   string // what follows the verb in a synopsis: "[flags] prog.wasm [args…]"
	summary string // one line for `sandboxd help`
	run     func(args []string) int
	// guestArgs marks a verb whose first argument is a module and whose
	// later arguments belong to the guest (run, launch): its flags end at
	// the first argument. Every other verb takes flags before and after
	// its arguments, until "--".
	guestArgs bool
}

var commands = map[string]command{}

// register adds a verb. Registering a name twice is a programming error.
func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("sandboxd: verb registered twice: " + c.name)
	}
	commands[c.name] = c
}

// Exit codes every verb shares; verbs add their own (docs/CLI.md).
const (
	exitOK      = 0
	exitFailure = 1 // the operation failed for a reason printed on stderr
	exitUsage   = 2 // bad flags or arguments: nothing was done
)

func main() { os.Exit(dispatch(os.Args[1:])) }

func dispatch(args []string) int {
	if len(args) == 0 {
		printHelp(os.Stderr)
		return exitUsage
	}
	switch {
	case isHelp(args[0]):
		// help help, and help's own -h: this list, which says what help does.
		if len(args) > 1 && !isHelp(args[1]) {
			c, ok := commands[args[1]]
			if !ok {
				return unknownVerb(args[1])
			}
			return c.run([]string{"-h"})
		}
		return printHelpOut()
	case args[0] == "--version" || args[0] == "-version":
		return commands["version"].run(args[1:])
	}
	c, ok := commands[args[0]]
	if !ok {
		return unknownVerb(args[0])
	}
	return c.run(args[1:])
}

// isHelp reports whether arg asks for the list of commands.
func isHelp(arg string) bool {
	switch arg {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
}

func unknownVerb(name string) int {
	fail("unknown command %q: run 'sandboxd help' for the list of commands", name)
	return exitUsage
}

// printHelpOut prints the list of commands on stdout, and returns the
// exit status: exitFailure when stdout cannot be written.
func printHelpOut() int {
	var b strings.Builder
	printHelp(&b)
	return printOut("%s", b.String())
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "sandboxd runs untrusted WebAssembly programs with least authority: a guest")
	fmt.Fprintln(w, "can use only the handles granted to it, and every handle can be revoked.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: sandboxd COMMAND [flags] [args…]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "  help       show this list, or `sandboxd help COMMAND` for one command")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run `sandboxd COMMAND -h` for a command's flags. Exit codes: docs/CLI.md.")
}

// fail prints one line on stderr: "sandboxd: " and the message, with any
// line breaks inside it folded so that the line stays one line, and other
// control characters escaped (printable).
func fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	msg = printable(strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", " ")), " "))
	fmt.Fprintln(os.Stderr, "sandboxd: "+msg)
}

// newFlags returns the flag set of verb c. Its errors are reported by
// parseFlags as one line; -h prints c's usage and flags on stdout.
func newFlags(c command) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // parseFlags prints usage, on stdout, for -h only
	return fs
}

// parseFlags parses args into fs. When it returns ok=false the verb must
// return code: 0 after -h, exitUsage after a bad flag.
func parseFlags(c command, fs *flag.FlagSet, args []string) (code int, ok bool) {
	var err error
	if c.guestArgs {
		err = fs.Parse(args)
	} else {
		err = parseInterleaved(fs, args)
	}
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		var b strings.Builder
		printUsage(&b, c, fs)
		return printOut("%s", b.String()), false
	}
	fail("%s: %v (see 'sandboxd %s -h')", c.name, err, c.name)
	return exitUsage, false
}

// parseInterleaved parses flags wherever they are among args: before,
// between and after the arguments, until a "--", after which everything
// is an argument. fs.Args() then holds the arguments in order.
func parseInterleaved(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Parsing "--" alone sets no flag and leaves the arguments in fs.Args.
	return fs.Parse(append([]string{"--"}, positional...))
}

// usageError reports a bad argument of verb c in one line.
func usageError(c command, format string, args ...any) int {
	fail("%s: %s (see 'sandboxd %s -h')", c.name, fmt.Sprintf(format, args...), c.name)
	return exitUsage
}

func printUsage(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: sandboxd %s %s\n\n%s\n", c.name, c.usage, c.summary)
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprintln(w, "\nFlags:")
			first = false
		}
		arg, help := flag.UnquoteUsage(f)
		dashes := "--"
		if len(f.Name) == 1 {
			dashes = "-"
		}
		fmt.Fprintf(w, "  %s%s", dashes, f.Name)
		if arg != "" {
			fmt.Fprintf(w, " %s", arg)
		}
		fmt.Fprintf(w, "\n        %s", help)
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "[]" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// stringList is a repeatable string flag.
type stringList []string

// printOut writes the text output of a verb on stdout, and returns the
// exit status: exitFailure, with the line that says why, when stdout
// cannot be written (a full disk), as printJSON does for --json.
func printOut(format string, args ...any) int {
	if _, err := fmt.Printf(format, args...); err != nil {
		fail("writing output: %v", err)
		return exitFailure
	}
	return exitOK
}

// printJSON writes v as one line of JSON on stdout, as every verb's
// --json does, and returns the exit status.
func printJSON(v any) int {
	if err := json.NewEncoder(os.Stdout).Encode(v); err != nil {
		fail("writing output: %v", err)
		return exitFailure
	}
	return exitOK
}

// durationValue is a time.Duration flag whose error says what a duration
// looks like: a bare number ("5") is refused with the units to add.
type durationValue struct{ d *time.Duration }

// durationFlag defines a duration flag with durationValue's messages.
func durationFlag(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var(durationValue{p}, name, usage)
}

func (v durationValue) String() string {
	if v.d == nil {
		return "0s"
	}
	return v.d.String()
}

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err == nil {
		*v.d = d
		return nil
	}
	if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
		return fmt.Errorf("a duration needs a unit: %ss, %sms or %sm", s, s, s)
	}
	return errors.New("not a duration: write a number and a unit, e.g. 500ms, 30s, 5m, 1h30m")
}

func (l *stringList) String() string     { return strings.Join(*l, ", ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }
