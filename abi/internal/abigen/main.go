// Command abigen regenerates abi/include/sandboxd.h and the call table in
// docs/ABI.md from abi's call table. Run it with `go generate ./abi`.
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sandboxd/sandboxd/abi"
)

func main() {
	root := "."
	if len(os.Args) > 1 {
		root = os.Args[1]
	}
	var h bytes.Buffer
	if err := abi.WriteCHeader(&h); err != nil {
		fail(err)
	}
	if err := os.WriteFile(filepath.Join(root, "abi/include/sandboxd.h"), h.Bytes(), 0o644); err != nil {
		fail(err)
	}
	doc := filepath.Join(root, "docs/ABI.md")
	old, err := os.ReadFile(doc)
	if err != nil {
		fail(err)
	}
	var t bytes.Buffer
	if err := abi.WriteMarkdown(&t); err != nil {
		fail(err)
	}
	upd, err := abi.ReplaceGenerated(old, t.Bytes())
	if err != nil {
		fail(fmt.Errorf("%s: %w", doc, err))
	}
	if err := os.WriteFile(doc, upd, 0o644); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "abigen:", err)
	os.Exit(1)
}
