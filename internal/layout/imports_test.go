// Package layout holds the rules of docs/ARCHITECTURE.md that the compiler
// does not: which of sandboxd's packages may import which.
package layout

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path"
	"strings"
	"testing"
)

const module = "github.com/sandboxd/sandboxd"

// allowed maps each top-level folder to the top-level folders its
// packages may import (a package may always import packages of its own
// folder), or to single packages of another folder (internal/plural, as
// only the daemon and the CLI may import it: the rest of internal is for
// tests). It is docs/ARCHITECTURE.md's picture; change both together.
var allowed = map[string][]string{
	"caps":     nil,
	"abi":      {"caps"},
	"policies": {"caps"},
	"audit":    {"caps", "policies"},
	"schemas":  nil,
	"client":   {"schemas"},
	"daemon":   {"caps", "abi", "policies", "schemas", "audit", "internal/plural"},
	"cmd":      {"client", "daemon", "abi", "caps", "policies", "audit", "internal/plural"},
	"internal": nil,
	// Benchmark programs drive a daemon as any client program does.
	"bench":   {"client"},
	"scripts": nil,
	// The example guests: the guest SDK and their generated interfaces.
	"examples": {"abi", "schemas"},
}

// narrower lists subtrees whose rules differ from their folder's: the
// guest SDK runs inside guests, and its Cap'n Proto part speaks the
// guest-facing schema (schemas/guest) and nothing else of ours.
var narrower = map[string][]string{
	"abi/sdk": {"abi", "schemas"},
}

// rulesOf returns what the package at importPath may import: its
// subtree's rules if narrower lists it, else its folder's.
func rulesOf(importPath string) ([]string, bool) {
	r := rel(importPath)
	for prefix, rules := range narrower {
		if r == prefix || strings.HasPrefix(r, prefix+"/") {
			return rules, true
		}
	}
	rules, ok := allowed[folder(importPath)]
	return rules, ok
}

// The guest SDK is listed for GOOS=wasip1 too, where its calls are
// compiled. Test-only imports (the test-guest builders, a test daemon) may
// cross more freely; what ships may not.
func TestPackagesImportOnlyWhatArchitectureAllows(t *testing.T) {
	reported := map[string]bool{}
	for _, goos := range []string{"", "wasip1"} {
		for _, p := range listPackages(t, goos) {
			from := folder(p.ImportPath)
			rules, ok := rulesOf(p.ImportPath)
			if !ok {
				t.Errorf("%s: top-level folder %q is not in docs/ARCHITECTURE.md's picture (add it here and there)", p.ImportPath, from)
				continue
			}
			for _, imp := range p.Imports {
				if !strings.HasPrefix(imp, module+"/") {
					continue
				}
				to := folder(imp)
				if to != from && !contains(rules, to) && !contains(rules, rel(imp)) && !reported[p.ImportPath+" "+imp] {
					reported[p.ImportPath+" "+imp] = true
					t.Errorf("%s imports %s: %s may import only %v (docs/ARCHITECTURE.md)", rel(p.ImportPath), rel(imp), from, rules)
				}
			}
		}
	}
}

// The rules are not vacuous: every folder with code is listed and checked.
func TestEveryFolderIsListed(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range listPackages(t, "") {
		seen[folder(p.ImportPath)] = true
	}
	for _, f := range []string{"caps", "abi", "daemon", "client", "schemas", "cmd"} {
		if !seen[f] {
			t.Errorf("no package found in %s: the import check read nothing", f)
		}
	}
}

type pkg struct {
	ImportPath string
	Imports    []string
}

// listPackages is `go list` of every package in the module for GOOS goos
// ("" for the host's).
func listPackages(t *testing.T, goos string) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", module+"/...")
	if goos != "" {
		cmd.Env = append(cmd.Environ(), "GOOS="+goos, "GOARCH=wasm")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var ps []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

func rel(importPath string) string { return strings.TrimPrefix(importPath, module+"/") }

// folder is the top-level folder of one of the module's packages.
func folder(importPath string) string {
	r := rel(importPath)
	if i := strings.IndexByte(r, '/'); i >= 0 {
		return r[:i]
	}
	return path.Clean(r)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
