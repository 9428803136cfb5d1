package abi_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/abi/abitest"
)

// The C header and docs/ABI.md are generated from the call table; this
// fails when either was edited by hand or the table changed without
// `go generate ./abi`.
func TestGeneratedFilesMatchCallTable(t *testing.T) {
	var h bytes.Buffer
	if err := abi.WriteCHeader(&h); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(abitest.Path("abi/include/sandboxd.h"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, h.Bytes()) {
		t.Error("abi/include/sandboxd.h is stale: run go generate ./abi")
	}
	doc, err := os.ReadFile(abitest.Path("docs/ABI.md"))
	if err != nil {
		t.Fatal(err)
	}
	var tb bytes.Buffer
	if err := abi.WriteMarkdown(&tb); err != nil {
		t.Fatal(err)
	}
	want, err := abi.ReplaceGenerated(doc, tb.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, want) {
		t.Error("docs/ABI.md call table is stale: run go generate ./abi")
	}
}
