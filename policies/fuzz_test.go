package policies

import (
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
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

// FuzzDenyList checks deny lists on arbitrary selectors and requests: it
// never panics, a denial names one of the list's selectors, and a list
// that denies a host path denies every directory above it, which holds
// it.
func FuzzDenyList(f *testing.F) {
	f.Add("dir:/srv/reports/private", "file", "", "/srv/reports/private/key")
	f.Add("dir:reports", "dir", "reports", "")
	f.Add("sock:*", "sock", "", "")
	f.Add("chan:secret-*", "chan", "secret-1", "")
	f.Add("file:/etc/shadow", "dir", "", "/")
	p, err := Parse("p.hcl", []byte(denyListPolicy))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, sel, kind, name, hostPath string) {
		l, err := ParseDenyList([]string{sel})
		if err != nil {
			return
		}
		for _, under := range []*Policy{nil, p} {
			req := Request{Op: OpGrant, Kind: kind, Name: name, Path: hostPath}
			d, denied := l.Decide(under, req)
			if !denied {
				continue
			}
			if d.Allowed || d.Rule == nil || d.Rule.File != DenyFile || d.Rule.Name != sel {
				t.Fatalf("denial %+v does not name the selector %q", d, sel)
			}
			if !IsKind(kind) || !strings.HasPrefix(hostPath, "/") {
				continue
			}
			clean := path.Clean(hostPath)
			if _, ok := l.Decide(under, Request{Op: OpGrant, Kind: "dir", Path: path.Dir(clean)}); !ok && (kind == "dir" || kind == "file") {
				t.Fatalf("%s denies %s:%s but not the directory %s above it", sel, kind, clean, path.Dir(clean))
			}
		}
	})
}
