package policies

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParsePolicy checks the parser on arbitrary text: it never panics; a
// rejection is Errors, each at a position inside the file; and a policy it
// accepts can be evaluated.
func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(evalPolicy))
	for _, name := range []string{"database-client.hcl", "reporting.hcl", "pipeline.hcl"} {
		src, err := os.ReadFile(filepath.Join("examples", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := Parse("f.hcl", src)
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error %T %v is not a non-empty Errors", err, err)
			}
			for _, e := range es {
				if e.Pos.File != "f.hcl" || e.Pos.Line < 1 || e.Pos.Column < 1 {
					t.Fatalf("error without a position: %q", e.Error())
				}
			}
			return
		}
		if p == nil {
			t.Fatal("Parse returned neither a policy nor an error")
		}
		for _, r := range p.Resources() {
			for _, op := range []Op{OpGrant, OpDelegate} {
				Evaluate(p, Request{Op: op, Kind: r.Kind, Name: r.Name, Depth: 1})
				if r.Path != "" {
					Evaluate(p, Request{Op: op, Kind: r.Kind, Path: r.Path + "/x", Depth: 1})
				}
			}
		}
	})
}
