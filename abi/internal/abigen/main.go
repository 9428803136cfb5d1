// Command abigen rewrites the files generated from abi's call tables:
// abi/include/sandboxd.h and the generated tables of docs/ABI.md and
// docs/WASI.md (see package abidoc). `go generate ./abi/...` runs it with
// the repository root as its argument.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/sandboxd/sandboxd/abi/abidoc"
)

func main() {
	root := "."
	if len(os.Args) > 1 {
		root = os.Args[1]
	}
	files, err := abidoc.Generate(root)
	if err != nil {
		fail(err)
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(root, f.Path), f.Data, 0o644); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "abigen:", err)
	os.Exit(1)
}
