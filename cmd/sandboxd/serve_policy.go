package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/policies"
)

// errPolicyDir is the error of a --policy that is not a directory of
// policy files: there is nothing to check.
type errPolicyDir struct{ msg string }

func (e *errPolicyDir) Error() string { return e.msg }

// loadPolicyDir loads every *.hcl file in dir as one policy: those a
// shell's DIR/*.hcl names, which `sandboxd policy check` is told to
// check, so not the hidden ones (an editor's lock, .#main.hcl, or a copy
// put aside). reload is true for a running daemon's SIGHUP, whose
// operator cannot "leave --policy out" but may restore the directory.
func loadPolicyDir(dir string, reload bool) (*policies.Policy, error) {
	if fi, err := os.Stat(dir); err != nil {
		if reload {
			return nil, &errPolicyDir{fmt.Sprintf("policy directory %s: %v: restore the directory and send SIGHUP again, or restart serve without --policy", dir, reason(err))}
		}
		return nil, &errPolicyDir{fmt.Sprintf("policy directory %s: %v: give the directory that holds the policy's *.hcl files, or leave --policy out", dir, reason(err))}
	} else if !fi.IsDir() {
		return nil, &errPolicyDir{fmt.Sprintf("--policy %s is a file: serve takes the directory of the policy's *.hcl files (--policy %s), and loads each", dir, filepath.Dir(dir))}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.hcl"))
	if err != nil {
		return nil, fmt.Errorf("policy directory %s: %v", dir, err)
	}
	files = slices.DeleteFunc(files, func(f string) bool { return strings.HasPrefix(filepath.Base(f), ".") })
	if len(files) == 0 && reload {
		return nil, &errPolicyDir{fmt.Sprintf("policy directory %s has no *.hcl file: write the policy there (docs/POLICY.md) and send SIGHUP again, or restart serve without --policy", dir)}
	}
	if len(files) == 0 {
		return nil, &errPolicyDir{fmt.Sprintf("policy directory %s has no *.hcl file: write the policy there (docs/POLICY.md), or leave --policy out", dir)}
	}
	sort.Strings(files)
	return policies.Load(files...)
}

// reportPolicyError logs why a policy did not load: each problem with its
// file:line:column.
func reportPolicyError(log hclog.Logger, err error) {
	var problems policies.Errors
	if !errors.As(err, &problems) {
		log.Error("policy does not load", "error", err.Error())
		return
	}
	for _, e := range problems {
		log.Error("policy does not load", "problem", e.Error())
	}
}

// reloadPolicy is serve's SIGHUP: it loads the policy in dir again and, if
// it loads, puts it in force at once for every later grant and delegation.
// A policy that does not load changes nothing: the one in force stays.
// What the new policy would not have granted is logged, not revoked.
func reloadPolicy(log hclog.Logger, sup *daemon.Supervisor, dir string) {
	if dir == "" {
		log.Info("SIGHUP ignored: serve was started without --policy")
		return
	}
	p, err := loadPolicyDir(dir, true)
	if err != nil {
		reportPolicyError(log, err)
		log.Error("policy reload failed: the policy in force is unchanged: fix the files named above and send SIGHUP again", "policy", dir)
		return
	}
	sup.SetPolicy(p)
	log.Info("policy reloaded", "policy", dir, "rules", len(p.Rules()), "resources", len(p.Resources()))
	for _, d := range sup.NotAllowedBy(sup.Policy()) { // p as put in force: its deny rules' links resolved
		log.Warn(daemon.ReloadWarning, "cap", d.Cap, "guest", d.Guest, "grant", d.Grant, "reason", d.Reason)
	}
}

// policyText describes the policy serve started with, for its first log
// line.
func policyText(dir string, p *policies.Policy) string {
	if p == nil {
		return "none (only root and the daemon's user may grant host paths, sockets and channels)"
	}
	return fmt.Sprintf("%s (%d rules, %d resources)", dir, len(p.Rules()), len(p.Resources()))
}
