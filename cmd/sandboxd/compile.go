package main

import (
	"context"
	"path/filepath"
	"time"

	"github.com/sandboxd/sandboxd/client"
)

func init() {
	register(command{
		name:    "compile",
		usage:   "[flags] prog.wasm…",
		summary: "compile modules into the daemon's cache, so that their launches start at once (nothing runs)",
		run:     compileCmd,
	})
}

// compiled is what compile --json prints for one module.
type compiled struct {
	Path   string        // as given
	SHA256 string        // the module's hash, which keys the cache
	Took   time.Duration // how long the daemon took to compile it (0: it had it compiled in memory)
}

func compileCmd(args []string) int {
	c := commands["compile"]
	fs := newFlags(c)
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print each module as a JSON object, one per line: {\"Path\", \"SHA256\", \"Took\"} (Took in nanoseconds)")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		return usageError(c, "give the modules to compile")
	}
	return eachArg(*socket, fs.Args(), func(ctx context.Context, cl *client.Client, path string) int {
		wasm, err := readCoreModule(path)
		if err != nil {
			fail("%v", err)
			return exitModule
		}
		done := progress("compiling %s (%s)", filepath.Base(path), sizeText(len(wasm)))
		sha, took, err := cl.Compile(ctx, filepath.Base(path), wasm)
		done()
		if err != nil {
			return daemonFailure(sentTooMuch(err, len(wasm), *socket))
		}
		if *asJSON {
			return printJSON(compiled{Path: path, SHA256: sha, Took: took})
		}
		return printOut("%s\t%s\t%v\n", path, sha, took.Round(time.Millisecond))
	})
}
