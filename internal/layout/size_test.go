package layout

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Functions stay short enough to read at once: at most maxLines lines and
// a cyclomatic complexity (as gocyclo counts it) of at most maxComplexity.
// Generated code, the vendored third_party tree and the opcode switch of
// the wasm rewriter (one case per instruction family, nothing to split)
// are exempt. docs/ARCHITECTURE.md says how to check with gocyclo too.
const (
	maxLines      = 80
	maxComplexity = 20
)

// exempt names the functions allowed past the bounds, and why.
var exempt = map[string]string{
	"abi/internal/wasmbin.(*instrumenter).instruction": "the rewriter's opcode switch",
}

func TestFunctionsAreShortAndSimple(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "third_party" || n == "testdata" || strings.HasPrefix(n, ".") && p != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, p, src, parser.ParseComments)
		if err != nil {
			return err
		}
		if ast.IsGenerated(f) {
			return nil
		}
		dir, _ := filepath.Rel(root, filepath.Dir(p))
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			name := filepath.ToSlash(dir) + "." + funcName(fn)
			if _, ok := exempt[name]; ok {
				continue
			}
			pos, end := fset.Position(fn.Pos()), fset.Position(fn.End())
			if n := end.Line - pos.Line + 1; n > maxLines {
				t.Errorf("%s:%d: %s is %d lines long (at most %d)", pos.Filename, pos.Line, name, n, maxLines)
			}
			if c := complexity(fn); c > maxComplexity {
				t.Errorf("%s:%d: %s has cyclomatic complexity %d (at most %d)", pos.Filename, pos.Line, name, c, maxComplexity)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// funcName is Name or (Recv).Name, as gocyclo prints it.
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	typ := fn.Recv.List[0].Type
	star := ""
	if s, ok := typ.(*ast.StarExpr); ok {
		typ, star = s.X, "*"
	}
	if ix, ok := typ.(*ast.IndexExpr); ok {
		typ = ix.X
	}
	if ix, ok := typ.(*ast.IndexListExpr); ok {
		typ = ix.X
	}
	id, _ := typ.(*ast.Ident)
	if id == nil {
		return fn.Name.Name
	}
	if star != "" {
		return "(*" + id.Name + ")." + fn.Name.Name
	}
	return "(" + id.Name + ")." + fn.Name.Name
}

// complexity is gocyclo's: 1, plus one for each if, for, range, non-default
// case and select clause, && and ||. Function literals count toward the
// function that holds them.
func complexity(fn *ast.FuncDecl) int {
	c := 1
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.IfStmt, *ast.ForStmt, *ast.RangeStmt:
			c++
		case *ast.CaseClause:
			if n.List != nil {
				c++
			}
		case *ast.CommClause:
			if n.Comm != nil {
				c++
			}
		case *ast.BinaryExpr:
			if n.Op == token.LAND || n.Op == token.LOR {
				c++
			}
		}
		return true
	})
	return c
}
