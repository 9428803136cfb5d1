package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/policies"
)

// explainCmd names `policy explain` in its usage line and messages.
var explainCmd = command{
	name:    "policy explain",
	usage:   "--policy FILE [--policy FILE…] [--as USER|UID] [--label k=v …] --grant KIND:NAME|dir:HOSTPATH|file:HOSTPATH [--rights r1,r2] [--json] prog.wasm",
	summary: "decide one grant request against the policy files and explain the decision: exit 0 allowed, 1 denied (docs/POLICY.md)",
}

// explainArgs holds explain's flags as given.
type explainArgs struct {
	policies stringList
	labels   stringList
	as       string
	grant    string
	rights   string
	json     bool
}

// policyExplain is `sandboxd policy explain …`: it builds one grant
// request, evaluates it and prints the decision on stdout. It exits 0 when
// the request is allowed, 1 when it is denied or the policy does not load
// (a "sandboxd:" line on stderr says which), 2 on a usage error and 4
// when the module cannot be read.
func policyExplain(args []string) int {
	c := explainCmd
	fs := newFlags(c)
	var a explainArgs
	fs.Var(&a.policies, "policy", "a policy `FILE`; repeat to load several as one policy")
	fs.StringVar(&a.as, "as", "", "the requesting `USER` (name or uid); default: the invoking user")
	fs.Var(&a.labels, "label", "a module label `k=v`; repeat for several")
	fs.StringVar(&a.grant, "grant", "", "the resource asked for: `KIND:NAME` (a declared resource), or dir:HOSTPATH, file:HOSTPATH")
	fs.StringVar(&a.rights, "rights", "", "the rights asked for, comma-separated `r1,r2` (`sandboxd abi` lists them); default: every right")
	fs.BoolVar(&a.json, "json", false, "print the decision as JSON")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(c, "want exactly one module (prog.wasm) after the flags, got %d argument(s)", fs.NArg())
	}
	req, gr, err := a.request()
	if err != nil {
		return usageError(c, "%v", err)
	}
	p, ok := loadPolicy(c.name, a.policies)
	if !ok {
		return exitFailure
	}
	// Its deny rules cover where their links lead, as the daemon's do
	// once it puts the policy in force (Supervisor.SetPolicy).
	p = p.WithRealPaths(caps.RealPath)
	if req.Module.SHA256, err = moduleSHA256(fs.Arg(0)); err != nil {
		fail("%s: %v", c.name, err)
		return exitModule // as run does for a module it cannot read
	}
	return printDecision(decide(p, req, gr), a.json)
}

// decide decides req for gr as the daemon does. A :create grant is denied
// when the deciding rule would give the file no fd_write, which the
// daemon asks for whatever --rights narrows (daemon.DecideCreate).
func decide(p *policies.Policy, req policies.Request, gr daemon.Grant) policies.Decision {
	d := decideHostPath(p, req)
	if gr.Create && req.Rights&caps.RightFDWrite == 0 {
		full := req
		full.Rights |= caps.RightFDWrite
		if c := daemon.DecideCreate(gr, full, decideHostPath(p, full)); !c.Allowed {
			return c
		}
	}
	return daemon.DecideCreate(gr, req, d)
}

// decideHostPath is Evaluate, and for a host path daemon.DecideHostPath
// of where its links lead, as the daemon decides it.
func decideHostPath(p *policies.Policy, req policies.Request) policies.Decision {
	if req.Path == "" {
		return policies.Evaluate(p, req)
	}
	asked := req.Path
	req.Path = caps.RealPath(asked)
	_, d := daemon.DecideHostPath(p, req, asked)
	return d
}

// request builds the grant request from the flags, less the module's
// hash, and returns it with the grant as --grant gives it. Its errors are
// usage errors.
func (a *explainArgs) request() (req policies.Request, gr daemon.Grant, err error) {
	req = policies.Request{Op: policies.OpGrant}
	if len(a.policies) == 0 {
		return req, gr, fmt.Errorf("want at least one --policy FILE")
	}
	if req.Kind, req.Name, req.Path, gr, err = parseResource(a.grant); err != nil {
		return req, gr, err
	}
	if req.Path != "" {
		req.Path = filepath.Clean(req.Path)
	}
	if req.Rights, err = parseRightsList(a.rights); err != nil {
		return req, gr, err
	}
	// As the daemon asks: what the grant's kind holds, read-only or not.
	if asked := gr.AskedRights(); req.Rights == 0 {
		req.Rights = asked
	} else if req.Rights &= asked; req.Rights == 0 {
		return req, gr, fmt.Errorf("--rights %s: a %s grant holds none of them", a.rights, a.grant)
	}
	if req.Module.Labels, err = parseLabels(a.labels); err != nil {
		return req, gr, err
	}
	req.Subject, err = lookupSubject(a.as)
	return req, gr, err
}

// parseResource reads --grant as run and launch read a grant (the grant
// grammar, docs/GRANTS.md: a guest name and options after the source are
// not part of it) and names its source as the daemon does: a dir or file
// source with a "/" is a host path (made absolute), any other source a
// declared resource's name.
func parseResource(text string) (kind, name, path string, gr daemon.Grant, err error) {
	if text == "" {
		return "", "", "", gr, fmt.Errorf("want --grant KIND:NAME (or dir:HOSTPATH, file:HOSTPATH)")
	}
	kind, rest, ok := strings.Cut(text, ":")
	switch {
	case !ok || rest == "":
		return "", "", "", gr, fmt.Errorf("--grant %q: want KIND:NAME (or dir:HOSTPATH, file:HOSTPATH)", text)
	case !policies.IsKind(kind):
		return "", "", "", gr, fmt.Errorf("--grant %q: unknown kind %q: want dir, file, sock, listen or chan", text, kind)
	}
	if gr, err = daemon.ParseGrant(text); err != nil {
		return "", "", "", gr, fmt.Errorf("--grant: %v", err)
	}
	if (gr.Kind == daemon.GrantSock || gr.Kind == daemon.GrantListen) && strings.Contains(gr.Source, ":") {
		// A resource name has no ":": this is an address, which run and
		// serve refuse under a policy before they ask it.
		return "", "", "", gr, fmt.Errorf("--grant %q: %s grants give an address inline, which a policy does not name: declare it as a %s resource and ask for it by name", text, kind, kind)
	}
	if (kind == "dir" || kind == "file") && !daemon.IsResourceName(gr.Source) {
		abs, err := filepath.Abs(gr.Source)
		return kind, "", abs, gr, err
	}
	return kind, gr.Source, "", gr, nil
}

// parseRightsList reads comma-separated right names; empty is every right
// (the request then takes whatever the deciding rule allows).
func parseRightsList(text string) (caps.Rights, error) {
	if text == "" {
		return 0, nil
	}
	var r caps.Rights
	for _, n := range strings.Split(text, ",") {
		bit, ok := caps.ParseRight(strings.TrimSpace(n))
		if !ok {
			return 0, fmt.Errorf("--rights: unknown right %q (`sandboxd abi` lists them)", n)
		}
		r |= bit
	}
	return r, nil
}

// parseLabels reads --label as run and launch read it (daemon.CheckLabel,
// each key once): a label they refuse is no request explain can answer.
func parseLabels(list []string) (map[string]string, error) {
	labels := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--label %q: want KEY=VALUE", kv)
		}
		if err := daemon.CheckLabel(k, v); err != nil {
			return nil, fmt.Errorf("--label: %v", err)
		}
		if _, seen := labels[k]; seen {
			return nil, fmt.Errorf("--label: label %s is given twice", k)
		}
		labels[k] = v
	}
	return labels, nil
}

// lookupSubject resolves --as: empty is the invoking user, as run judges
// it (currentPrincipal: the groups the process holds, which a group
// joined since the session began, or taken up with sg, makes differ from
// the user database's); a number is a uid (its name and groups filled in
// when the system knows it), anything else a user name that must exist.
func lookupSubject(as string) (policies.Subject, error) {
	var u *user.User
	var err error
	switch uid, perr := strconv.ParseUint(as, 10, 32); {
	case as == "":
		p := currentPrincipal()
		return policies.Subject{UID: p.UID, GIDs: append([]uint32{p.GID}, p.Groups...), User: p.Name}, nil
	case perr == nil:
		if u, err = user.LookupId(as); err != nil {
			return policies.Subject{UID: uint32(uid)}, nil
		}
	default:
		u, err = user.Lookup(as)
	}
	if err != nil {
		return policies.Subject{}, fmt.Errorf("--as %q: %v", as, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return policies.Subject{}, fmt.Errorf("--as %q: uid %q is not a number", as, u.Uid)
	}
	sub := policies.Subject{UID: uint32(uid), User: u.Username}
	gids, _ := u.GroupIds() // unknown groups: the subject has none
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			sub.GIDs = append(sub.GIDs, uint32(n))
		}
	}
	return sub, nil
}

// moduleSHA256 is the lower-case hex SHA-256 of the module file at path,
// read as run reads it (readModule).
func moduleSHA256(path string) (string, error) {
	data, err := readModule(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// printDecision prints d on stdout, as text or JSON, and returns the exit
// status: 0 allowed, 1 denied.
func printDecision(d policies.Decision, asJSON bool) int {
	if asJSON {
		out, err := d.JSON()
		if err != nil {
			fail("policy explain: %v", err)
			return exitFailure
		}
		fmt.Println(string(out))
	} else {
		fmt.Print(d.Explain())
	}
	if !d.Allowed {
		return exitFailure
	}
	return exitOK
}
