//go:build !wasip1

package sandboxd_test

import (
	"archive/zip"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
)

// sdkVersion is the version the test publishes the repository's module
// at, in a proxy of its own.
const sdkVersion = "v0.0.1"

// Another module gets the SDK with `go get`, no replace directive: the
// test publishes this repository's module (what git tracks, as a module
// zip) in a file:// module proxy, and a new module fetches the SDK from
// it, builds a guest with it and tidies, offline (docs/API.md, Using the
// SDK).
func TestSDKIsGoGettableFromAnotherModule(t *testing.T) {
	root := abitest.RepoRoot()
	files, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Skipf("not a git checkout (%v): the module zip is made from git's files", err)
	}
	proxy := t.TempDir()
	publish(t, root, proxy, strings.Split(strings.TrimRight(string(files), "\x00"), "\x00"))

	mod := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(mod, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/guest\n\ngo 1.26.0\n")
	write("main.go", `package main

import (
	"fmt"

	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd"
)

func main() { fmt.Println(sandboxd.Handles()) }
`)
	// The daemon's own dependencies, which go mod tidy wants for the
	// SDK's tests, come from this machine's module cache: nothing is
	// fetched from the network.
	cached, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(),
		"GOPROXY=file://"+proxy+",file://"+filepath.Join(strings.TrimSpace(string(cached)), "cache", "download"),
		"GOSUMDB=off", "GONOSUMDB=", "GOPRIVATE=", "GONOPROXY=", "GOWORK=off", "GOTOOLCHAIN=local",
		"GOFLAGS=-mod=mod -modcacherw", "GOMODCACHE="+t.TempDir(),
		"GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	goCmd := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = mod, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	goCmd("get", "github.com/sandboxd/sandboxd/abi/sdk/sandboxd@"+sdkVersion)
	goCmd("build", "-o", "guest.wasm", ".")
	goCmd("mod", "tidy")
	gomod, err := os.ReadFile(filepath.Join(mod, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(gomod, []byte("require github.com/sandboxd/sandboxd "+sdkVersion+"\n")) || bytes.Contains(gomod, []byte("replace")) {
		t.Fatalf("go.mod after go get and tidy:\n%s", gomod)
	}
	if wasm, err := os.ReadFile(filepath.Join(mod, "guest.wasm")); err != nil || !bytes.HasPrefix(wasm, []byte("\x00asm")) {
		t.Fatalf("guest.wasm: %v", err)
	}
}

// publish writes the module at root, as the files git tracks (those of
// nested modules left out, as the go command leaves them), into the module
// proxy directory proxy at sdkVersion.
func publish(t *testing.T, root, proxy string, files []string) {
	t.Helper()
	const path = "github.com/sandboxd/sandboxd"
	var nested []string
	for _, f := range files {
		if filepath.Base(f) == "go.mod" && f != "go.mod" {
			nested = append(nested, filepath.Dir(f)+"/")
		}
	}
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
next:
	for _, f := range files {
		for _, n := range nested {
			if strings.HasPrefix(f, n) {
				continue next
			}
		}
		b, err := os.ReadFile(filepath.Join(root, f))
		if os.IsNotExist(err) {
			continue // deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		w, err := zw.Create(path + "@" + sdkVersion + "/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(proxy, path, "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"list":               []byte(sdkVersion + "\n"),
		sdkVersion + ".info": []byte(`{"Version":"` + sdkVersion + `","Time":"2026-01-01T00:00:00Z"}`),
		sdkVersion + ".mod":  gomod,
		sdkVersion + ".zip":  zbuf.Bytes(),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
