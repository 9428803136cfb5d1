//go:build !wasip1

package sandboxd_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
)

// docExampleLines returns the lines of the code examples in doc.go's
// package comment (those indented by a tab), without the "…" that stands
// for what an example leaves out, each with its runs of spaces made one.
func docExampleLines(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile(abitest.Path("abi/sdk/sandboxd/doc.go"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for l := range strings.SplitSeq(string(doc), "\n") {
		code, ok := strings.CutPrefix(l, "//\t")
		if ok && strings.TrimSpace(code) != "…" {
			lines = append(lines, strings.Join(strings.Fields(code), " "))
		}
	}
	return lines
}

// Every code example of the package doc compiles and does what the doc
// says: testdata/docexamples holds each line of them, in order, with
// what they leave out around them, and runs them.
func TestDocExamplesCompileAndRun(t *testing.T) {
	src, err := os.ReadFile(abitest.Path("abi/sdk/sandboxd/testdata/docexamples/main.go"))
	if err != nil {
		t.Fatal(err)
	}
	var guest []string
	for l := range strings.SplitSeq(string(src), "\n") {
		guest = append(guest, strings.Join(strings.Fields(l), " "))
	}
	want := docExampleLines(t)
	if len(want) < 15 {
		t.Fatalf("found %d example lines in doc.go", len(want))
	}
	at := 0
	for _, l := range want {
		for at < len(guest) && guest[at] != l {
			at++
		}
		if at == len(guest) {
			t.Fatalf("doc.go's example line %q is not in testdata/docexamples/main.go (after the lines before it)", l)
		}
	}

	data, bin := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "notes.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	self := abitest.Go(t, "abi/sdk/sandboxd/testdata/docexamples")
	if err := os.WriteFile(filepath.Join(bin, "child.wasm"), self, 0o644); err != nil {
		t.Fatal(err)
	}
	st, out, errOut := run(t, "testdata/docexamples", map[string]string{"data": data, "bin": bin}, map[string]bool{"bin": true}, nil)
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v\nstdout %s\nstderr %s", st, out, errOut)
	}
	wantOut := `child: read "hello", create refused true
delegation: child exit status 0, forwarder revoked true, own handle <nil>
supervised: grant logs, fd true (stdio, <nil>), <nil>, lost false
supervisor: child exit status 0
channels: "here" with 1 handle: dir delegate <nil>
startup: args ["testdata/docexamples"], data at 3 true, File <nil>, entries ["notes.txt"]
`
	if out != wantOut {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, wantOut)
	}
}
