package layout

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Every run of the CLI, `sandboxd help` as much as `sandboxd serve`, pays
// for the initialisation of every package linked into it, before main
// runs (docs/BENCHMARKS.md, "The CLI's own start"). These packages cost
// the most of it and are not needed: none may be linked into sandboxd.
var notInTheCLI = map[string]string{
	"github.com/google/go-cmp/cmp":         "pulled by hcl's gohcl through hclwrite: policies decodes with hcl's schema API (policies/decode.go)",
	"github.com/hashicorp/hcl/v2/gohcl":    "imports hclwrite and go-cmp: policies decodes with hcl's schema API (policies/decode.go)",
	"github.com/hashicorp/hcl/v2/hclwrite": "imports go-cmp",
	"runtime/metrics":                      "builds its table of every metric at init: read runtime.MemStats",
	"text/template":                        "a parser and a function table at init, for output a Printf writes",
	"html/template":                        "as text/template, and more",
}

func TestCLILinksNoHeavyPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", module+"/cmd/sandboxd").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if why, ok := notInTheCLI[p]; ok {
			t.Errorf("cmd/sandboxd links %s (%s); `go mod why -m` or `go list -deps -f '{{.ImportPath}} {{.Imports}}'` says through which package", p, why)
		}
	}
}

// initBudget bounds what each of sandboxd's own packages (and main) may
// allocate while it is initialised. Package-level values that need work
// (regular expressions, tables built by code) are built on first use
// instead (sync.OnceValue), where the verbs that need them pay.
const initBudget = 16 << 10

// The help path runs no package initialisation of sandboxd's that
// allocates more than initBudget, as GODEBUG=inittrace=1 reports it: a
// count of bytes, not a time, so the test does not depend on the
// machine's speed.
func TestHelpInitialisesLittle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	bin := filepath.Join(t.TempDir(), "sandboxd")
	build := exec.Command("go", "build", "-o", bin, module+"/cmd/sandboxd")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	help := exec.Command(bin, "help")
	help.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	help.Stderr = &stderr
	if err := help.Run(); err != nil {
		t.Fatalf("sandboxd help: %v\n%s", err, stderr.String())
	}
	seen := 0
	for _, line := range strings.Split(stderr.String(), "\n") {
		// init PKG @T ms, D ms clock, B bytes, A allocs
		f := strings.Fields(line)
		if len(f) < 10 || f[0] != "init" {
			continue
		}
		seen++
		pkg := f[1]
		if why, ok := notInTheCLI[pkg]; ok {
			t.Errorf("sandboxd help initialised %s (%s)", pkg, why)
		}
		if pkg != "main" && !strings.HasPrefix(pkg, module+"/") {
			continue
		}
		bytes, err := strconv.Atoi(f[7])
		if err != nil {
			t.Fatalf("unexpected inittrace line %q", line)
		}
		if bytes > initBudget {
			t.Errorf("%s allocates %d bytes at initialisation (at most %d): build what it builds on first use (sync.OnceValue)", pkg, bytes, initBudget)
		}
	}
	if seen == 0 {
		t.Fatalf("GODEBUG=inittrace=1 printed no init lines:\n%s", stderr.String())
	}
}
