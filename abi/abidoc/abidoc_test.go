package abidoc_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abidoc"
	"github.com/sandboxd/sandboxd/abi/abitest"
)

// generated returns what Generate makes of the file at path.
func generated(t *testing.T, path string) []byte {
	t.Helper()
	files, err := abidoc.Generate(abitest.RepoRoot())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Path == path {
			return f.Data
		}
	}
	t.Fatalf("Generate makes no %s", path)
	return nil
}

// checkGenerated fails when the file at path is not what Generate makes:
// it was edited by hand, or the call tables changed without
// `go generate ./abi/...`.
func checkGenerated(t *testing.T, path string) {
	t.Helper()
	got, err := os.ReadFile(abitest.Path(path))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, generated(t, path)) {
		t.Errorf("%s is stale: run go generate ./abi/...", path)
	}
}

// The C header and docs/ABI.md's call table are generated from the native
// call table.
func TestGeneratedFilesMatchCallTable(t *testing.T) {
	checkGenerated(t, abidoc.HeaderPath)
	checkGenerated(t, "docs/ABI.md")
}

// docs/WASI.md's function and rights tables are generated from the WASI
// call table and the rights translation.
func TestWASIDocMatchesTables(t *testing.T) {
	checkGenerated(t, "docs/WASI.md")
}
