package daemon

import (
	"fmt"
	"strings"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/policies"
)

// A policy's declared paths (a dir or file resource's path, a sock or
// listen resource's unix path) are the operator's, written with whatever
// links the operator meant. Their links are resolved when the policy is
// put in force (a listen path's, those of its directory only:
// resolveSocket), and each grant opens, connects to or binds in what they
// led to then, following no link (caps.OpenNoLinks: openat2's
// RESOLVE_NO_SYMLINKS, or without openat2 a walk with O_NOFOLLOW; a socket
// is connected to or bound beneath its directory so opened, and a dialer
// holds that directory for all its connections: sockUnix and listenUnix
// in grant_sock.go), never by the path resolved again: a link put in
// place later, by a guest given a writable directory above the path or
// by anyone else, cannot move a grant elsewhere. A path that leads elsewhere now than it did then is refused,
// naming both, until the policy is loaded again.

// pins are the declared paths of one policy, resolved when it was put
// in force: declared path → the path it led to.
type pins struct {
	policy *policies.Policy
	paths  map[string]string
	// binds are the unix paths of listen resources, each with the links
	// of its directory only resolved (resolveSocket): what they are bound
	// at.
	binds map[string]string
}

// pinPaths resolves every declared path of p.
func pinPaths(p *policies.Policy) *pins {
	pn := &pins{policy: p, paths: map[string]string{}, binds: map[string]string{}}
	if p == nil {
		return pn
	}
	for _, r := range p.Resources() {
		for _, declared := range []string{r.Path, r.Unix} {
			if declared != "" && !strings.HasPrefix(declared, "@") {
				pn.paths[declared] = caps.RealPath(declared)
			}
		}
		if r.Kind == GrantListen.String() && r.Unix != "" && !strings.HasPrefix(r.Unix, "@") {
			pn.binds[r.Unix] = resolveSocket(GrantListen, r.Unix)
		}
	}
	return pn
}

// pinnedPath returns where declared, a path of a resource of p, led when
// p was put in force, if it leads there still: for a listen resource's
// unix path (bind), where its directory led (resolveSocket).
func (s *Supervisor) pinnedPath(p *policies.Policy, declared string, bind bool) (string, error) {
	now := caps.RealPath(declared)
	if bind {
		now = resolveSocket(GrantListen, declared)
	}
	pn := s.pins.Load()
	if pn == nil || pn.policy != p {
		return now, nil // p is being put in force: resolved now
	}
	then, ok := pn.paths[declared]
	if bind {
		then, ok = pn.binds[declared]
	}
	if !ok || then == now {
		return now, nil
	}
	return "", &MovedError{Declared: declared, Then: then, Now: now}
}

// realPath is where host path p leads: where the policy in force pinned
// it, if it declares p, or where its links lead now (caps.RealPath). A
// launch's deny list covers that place too (policies.DenyList.WithRealPaths).
func (s *Supervisor) realPath(p string) string { return s.pins.Load().realPath(p) }

// realPath is where host path p leads: where pn pinned it, if its policy
// declares p, or where its links lead now.
func (pn *pins) realPath(p string) string {
	if pn != nil {
		if then, ok := pn.paths[p]; ok {
			return then
		}
	}
	return caps.RealPath(p)
}

// MovedError is a declared path that leads elsewhere than it did when
// the policy was put in force.
type MovedError struct{ Declared, Then, Now string }

func (e *MovedError) Error() string {
	return fmt.Sprintf("%s leads to %s, and led to %s when the policy was loaded: a symbolic link on it changed; reload the policy (SIGHUP) if the operator moved it", e.Declared, e.Now, e.Then)
}
