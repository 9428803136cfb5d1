package main

import (
	"os"
	"path/filepath"
	"testing"
)

// serve --policy DIR loads the *.hcl files that `sandboxd policy check
// DIR/*.hcl`, which its errors tell the operator to run, checks: not the
// hidden ones a shell's * leaves out, such as the lock an editor keeps
// beside a file being edited (Emacs's .#main.hcl, a dangling symbolic
// link) or a copy put aside (.old.hcl), which would make a reload fail
// while the check says the policy loads.
func TestServeLoadsThePolicyFilesAShellGlobNames(t *testing.T) {
	dir := t.TempDir()
	policy := "resource \"chan\" \"jobs\" {}\n"
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".old.hcl"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("alice@host.4242:1765000000", filepath.Join(dir, ".#main.hcl")); err != nil {
		t.Fatal(err)
	}
	p, err := loadPolicyDir(dir, false)
	if err != nil {
		t.Fatalf("loadPolicyDir: %v, want main.hcl alone loaded", err)
	}
	if n := len(p.Resources()); n != 1 {
		t.Fatalf("%d resources loaded, want main.hcl's one", n)
	}
	if err := os.Remove(filepath.Join(dir, "main.hcl")); err != nil {
		t.Fatal(err)
	}
	if _, err := loadPolicyDir(dir, false); err == nil {
		t.Fatal("a directory of hidden files only loaded, want the error of one with no *.hcl file")
	}
}
