package main

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/policies"
)

// guestFlags are the flags run and launch share: the module, its
// arguments and environment, its grants and its limits.
type guestFlags struct {
	grants, deny, env, args, labels stringList
	workdir                         *string
	mem                             *string
	maxStack                        *string
	timeout                         *time.Duration
	maxFDs                          *int
}

// guestArgs is what guestFlags give once checked.
type guestArgs struct {
	path     string
	argv     []string
	env      []string
	grants   []string
	deny     []string // --deny selectors, host paths made absolute (denySelectors)
	labels   []string // KEY=VALUE, checked
	memLimit uint64
	maxStack uint64 // 0: the daemon's default
	timeout  time.Duration
	maxFDs   int
}

// maxFDs is --max-fds's default: run's own, or 0 for launch, where 0
// leaves the size to the daemon (serve --max-fds).
func addGuestFlags(fs *flag.FlagSet, grantHelp string, maxFDs int) *guestFlags {
	f := &guestFlags{}
	fs.Var(&f.grants, "grant", grantHelp)
	fs.Var(&f.deny, "deny", "never give the guest, or a guest it spawns, what `SELECTOR` covers, whatever is granted or delegated: dir:PATH or file:PATH (and all beneath, and any directory containing it), KIND:NAME of a policy's resource, KIND:GLOB, sock:* (repeatable; docs/GRANTS.md)")
	fs.Var(&f.env, "env", "set `KEY=VALUE` in the guest's environment, which is otherwise empty (repeatable)")
	f.workdir = fs.String("workdir", "", "the guest's working directory `DIR`, a path in its namespace such as / or /data (sets PWD, where a Go guest's relative paths start; wasi-libc's start from / until the guest calls chdir; docs/WASI.md)")
	fs.Var(&f.labels, "label", "label the module `KEY=VALUE` for the policy's module and to blocks, and for ps (repeatable)")
	fs.Var(&f.args, "arg", "an `ARG` for the guest, instead of arguments after prog.wasm (repeatable)")
	f.mem = fs.String("mem", defaultMem, "the guest's memory limit, a `SIZE` in KiB, MiB or GiB (0: the wasm32 maximum, 4GiB)")
	stackHelp := "bound the guest's call stack to `SIZE`, as sandboxd counts each call's frame (64KiB to 64MiB; docs/CLI.md, Call stack); a call past it traps, exit status 134"
	stackDefault := abi.SizeText(abi.DefaultMaxStack)
	if maxFDs == 0 {
		stackHelp += " (default: the daemon's, serve --max-stack)"
		stackDefault = ""
	}
	f.maxStack = fs.String("max-stack", stackDefault, stackHelp)
	f.timeout = new(time.Duration)
	durationFlag(fs, f.timeout, "timeout", 0, "kill the guest after `DURATION`, e.g. 30s; exit status 124 (0: no limit)")
	fdsHelp := "the most handles (`N`) the guest may hold at once, stdio included"
	if maxFDs == 0 {
		fdsHelp += " (0: the daemon's default, serve --max-fds)"
	}
	f.maxFDs = fs.Int("max-fds", maxFDs, fdsHelp)
	return f
}

// check validates the flags after parsing; rest is fs.Args(). On a usage
// error it returns the exit status and ok false.
func (f *guestFlags) check(c command, verb string, rest []string) (g guestArgs, code int, ok bool) {
	if len(rest) == 0 {
		return g, usageError(c, "no module: give the .wasm file to %s", verb), false
	}
	g.path = rest[0]
	if len(f.args) > 0 && len(rest) > 1 {
		return g, usageError(c, "guest arguments given both with --arg and after %s: use one or the other", g.path), false
	}
	g.argv = rest[1:]
	if len(f.args) > 0 {
		g.argv = f.args
	}
	var err error
	if g.memLimit, err = parseSize(*f.mem); err != nil {
		return g, usageError(c, "--mem %q: %v", *f.mem, err), false
	}
	if *f.maxStack != "" {
		if g.maxStack, err = parseMaxStack(*f.maxStack); err != nil {
			return g, usageError(c, "%v", err), false
		}
	}
	if *f.timeout < 0 {
		return g, usageError(c, "--timeout %v is negative: use 0 for no limit", *f.timeout), false
	}
	if *f.maxFDs < 3 && (*f.maxFDs != 0 || verb == "run") {
		return g, usageError(c, "--max-fds %d leaves no room for the 3 stdio handles", *f.maxFDs), false
	}
	if code, ok := f.checkEnv(c); !ok {
		return g, code, false
	}
	if code, ok := f.checkLabels(c); !ok {
		return g, code, false
	}
	if g.deny, err = denySelectors(f.deny); err != nil {
		return g, usageError(c, "%v", err), false
	}
	g.env, g.grants, g.labels, g.timeout, g.maxFDs = f.env, f.grants, f.labels, *f.timeout, *f.maxFDs
	if *f.workdir != "" {
		g.env = append(append([]string(nil), f.env...), "PWD="+*f.workdir)
	}
	return g, 0, true
}

// denySelectors checks --deny selectors (policies.ParseDenyList) once a
// dir or file path in them is made absolute against this process's
// working directory: KIND:VALUE with a "/" in VALUE is a path, as in a
// grant; a bare word names a resource of the policy.
func denySelectors(texts []string) ([]string, error) {
	out := make([]string, len(texts))
	for i, t := range texts {
		out[i] = t
		kind, v, _ := strings.Cut(t, ":")
		if (kind == "dir" || kind == "file") && strings.Contains(v, "/") {
			abs, err := filepath.Abs(v)
			if err != nil {
				return nil, fmt.Errorf("--deny %q: %v", t, err)
			}
			out[i] = kind + ":" + abs
		}
	}
	if _, err := policies.ParseDenyList(out); err != nil {
		return nil, fmt.Errorf("--%v (docs/GRANTS.md, --deny)", err)
	}
	return out, nil
}

// parseMaxStack reads a --max-stack SIZE and checks its range.
func parseMaxStack(s string) (uint64, error) {
	n, err := parseSize(s)
	if err == nil && (n < abi.MinMaxStack || n > abi.MaxMaxStack) {
		err = fmt.Errorf("outside %s to %s (a Go program needs about 128KiB to start; wazero's own stack ceiling ends a guest near 64MiB)", abi.SizeText(abi.MinMaxStack), abi.SizeText(abi.MaxMaxStack))
	}
	if err != nil {
		return 0, fmt.Errorf("--max-stack %q: %v", s, err)
	}
	return n, nil
}

// checkEnv checks --env entries, each key once, and --workdir.
func (f *guestFlags) checkEnv(c command) (int, bool) {
	seen := map[string]bool{}
	for _, kv := range f.env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageError(c, "--env %q is not KEY=VALUE", kv), false
		}
		if seen[k] {
			return usageError(c, "--env %s is given twice: give each key once", k), false
		}
		seen[k] = true
		if k == "PWD" && *f.workdir != "" {
			return usageError(c, "--workdir and --env PWD=… both set the working directory: give one"), false
		}
	}
	if w := *f.workdir; w != "" && !strings.HasPrefix(w, "/") {
		return usageError(c, "--workdir %q: give a path in the guest's namespace, starting with / (a grant named /data is /data)", w), false
	}
	return 0, true
}

// checkLabels checks --label entries: KEY=VALUE, each key once.
func (f *guestFlags) checkLabels(c command) (int, bool) {
	seen := map[string]bool{}
	for _, l := range f.labels {
		k, _, err := daemon.ParseLabel(l)
		if err == nil && seen[k] {
			err = fmt.Errorf("label %s is given twice", k)
		}
		if err != nil {
			return usageError(c, "--label: %v", err), false
		}
		seen[k] = true
	}
	return 0, true
}
