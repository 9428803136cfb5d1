package main

import (
	"encoding/json"
	"os"
	"runtime"
	"runtime/debug"
)

func init() {
	register(command{
		name:    "version",
		usage:   "[--json]",
		summary: "print sandboxd's version and commit, and the Go, wazero and go-capnp versions it was built with",
		run:     versionCmd,
	})
}

// versionInfo is what `sandboxd version` prints.
type versionInfo struct {
	Version  string `json:"version"`  // the module version, "(devel)" for a build from a checkout
	Commit   string `json:"commit"`   // the VCS revision, "+dirty" when built with changes
	Go       string `json:"go"`       // the Go toolchain
	Platform string `json:"platform"` // GOOS/GOARCH
	Wazero   string `json:"wazero"`
	Capnp    string `json:"capnp"`
}

// commit is the VCS revision `make build` stamps in (-ldflags -X), for
// builds where Go's own stamping is off (GOFLAGS=-buildvcs=false).
var commit string

func buildVersion() versionInfo {
	v := versionInfo{Version: "(unknown)", Commit: "(unknown)", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.Version = bi.Main.Version
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty {
		v.Commit += "+dirty"
	}
	if commit != "" {
		v.Commit = commit
	}
	for _, d := range bi.Deps {
		switch d.Path {
		case "github.com/tetratelabs/wazero":
			v.Wazero = d.Version
		case "capnproto.org/go/capnp/v3":
			v.Capnp = d.Version
		}
	}
	return v
}

func versionCmd(args []string) int {
	c := commands["version"]
	fs := newFlags(c)
	asJSON := fs.Bool("json", false, "print the versions as one JSON object")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(c, "unexpected argument %q: version takes only --json", fs.Arg(0))
	}
	v := buildVersion()
	if *asJSON {
		if err := json.NewEncoder(os.Stdout).Encode(v); err != nil {
			fail("writing output: %v", err)
			return exitFailure
		}
		return exitOK
	}
	return printOut("sandboxd %s (commit %s)\n%s %s, wazero %s, go-capnp %s\n", v.Version, v.Commit, v.Go, v.Platform, v.Wazero, v.Capnp)
}
