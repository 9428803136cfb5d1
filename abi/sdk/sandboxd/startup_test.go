//go:build !wasip1

package sandboxd

import (
	"slices"
	"testing"

	"github.com/sandboxd/sandboxd/abi/argdata"
	"github.com/sandboxd/sandboxd/caps"
)

func TestParseStartupReadsArgsEnvAndHandles(t *testing.T) {
	b := argdata.StringMap(map[string]argdata.Value{
		"args":    argdata.Seq(argdata.String("prog"), argdata.String("x"), argdata.Int(7)),
		"env":     argdata.StringMap(map[string]argdata.Value{"K": argdata.String("V"), "BAD": argdata.Int(1)}),
		"handles": argdata.StringMap(map[string]argdata.Value{"data": argdata.Fd(3), "bad": argdata.String("3")}),
		"extra":   argdata.Bool(true),
	}).Encode()
	st, err := ParseStartup(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Args) != 2 || st.Args[0] != "prog" || st.Args[1] != "x" {
		t.Errorf("args %q", st.Args)
	}
	if len(st.Env) != 1 || st.Env["K"] != "V" {
		t.Errorf("env %v", st.Env)
	}
	if len(st.Handles) != 1 || st.Handles["data"] != 3 {
		t.Errorf("handles %v", st.Handles)
	}
	if v, ok := st.Tree.Get("extra"); !ok || v.Type() != argdata.TypeBool {
		t.Errorf("the whole tree is not kept")
	}
	if _, err := ParseStartup(argdata.String("not a map").Encode()); err == nil {
		t.Error("a startup that is not a map parsed")
	}
	if _, err := ParseStartup([]byte{0x06, 0x85}); err == nil {
		t.Error("truncated argdata parsed")
	}
}

// The child numbers its handles from 0 in list order: stdio first, then
// the named handles in name order, and its argdata names each by its new
// number.
func TestSpawnConfigRenumbersHandlesForTheChild(t *testing.T) {
	data, fds := SpawnConfig{
		Args:    []string{"child", "-v"},
		Env:     map[string]string{"A": "1"},
		Handles: map[string]uint32{"zeta": 9, "alpha": 12},
	}.encode()
	if want := []uint32{0, 1, 2, 12, 9}; len(fds) != len(want) || fds[3] != 12 || fds[4] != 9 {
		t.Fatalf("fds %v, want %v", fds, want)
	}
	st, err := ParseStartup(data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint32{"stdin": 0, "stdout": 1, "stderr": 2, "alpha": 3, "zeta": 4}
	for n, fd := range want {
		if st.Handles[n] != fd {
			t.Errorf("child handle %s = %d, want %d", n, st.Handles[n], fd)
		}
	}
	if len(st.Args) != 2 || st.Env["A"] != "1" {
		t.Errorf("args %q env %v", st.Args, st.Env)
	}
	_, fds = SpawnConfig{NoStdio: true, Handles: map[string]uint32{"x": 5}}.encode()
	if len(fds) != 1 || fds[0] != 5 {
		t.Errorf("without stdio: fds %v", fds)
	}
}

// A handle named after a standard stream takes that stream's place in
// the child's table, rather than a second entry of the same name that
// leaves the stream at 0–2 as it was.
func TestSpawnConfigHandleNamedAfterAStreamReplacesIt(t *testing.T) {
	data, fds := SpawnConfig{Handles: map[string]uint32{"stdout": 7, "db": 5}}.encode()
	if want := []uint32{0, 7, 2, 5}; !slices.Equal(fds, want) {
		t.Fatalf("fds %v, want %v", fds, want)
	}
	st, err := ParseStartup(data)
	if err != nil {
		t.Fatal(err)
	}
	if st.Handles["stdout"] != 1 || st.Handles["db"] != 3 || len(st.Handles) != 4 {
		t.Errorf("child handles %v, want stdin 0, stdout 1, stderr 2, db 3", st.Handles)
	}
	_, fds = SpawnConfig{NoStdio: true, Handles: map[string]uint32{"stdout": 7}}.encode()
	if !slices.Equal(fds, []uint32{7}) {
		t.Errorf("without stdio: fds %v, want [7]", fds)
	}
}

func TestParseDescription(t *testing.T) {
	b := argdata.StringMap(map[string]argdata.Value{
		"id": argdata.String("c01"), "kind": argdata.String("dir"), "name": argdata.String("data"),
		"rights_base": argdata.Int(int64(RightFileOpen | RightFileReaddir)), "rights_inheriting": argdata.Int(int64(RightFDRead)),
		"edge": argdata.String("delegate"), "parent": argdata.String("c00"), "origin": argdata.String(""), "holder": argdata.String("g1"),
	}).Encode()
	d, err := ParseDescription(b)
	if err != nil {
		t.Fatal(err)
	}
	want := Description{ID: "c01", Kind: "dir", Name: "data", Base: RightFileOpen | RightFileReaddir,
		Inheriting: RightFDRead, Edge: "delegate", Parent: "c00", Holder: "g1"}
	if d != want {
		t.Errorf("got %+v\nwant %+v", d, want)
	}
	if got := d.Base.String(); got != "file_open|file_readdir" {
		t.Errorf("rights %q", got)
	}
}

// The SDK's rights are the kernel's, bit for bit and name for name, so a
// guest narrowing with them asks for exactly what it means.
func TestRightsAreTheKernels(t *testing.T) {
	for _, n := range caps.RightNames() {
		r, _ := caps.ParseRight(n)
		if got := Rights(r).String(); got != n {
			t.Errorf("kernel right %s (%#x) is %q in the SDK", n, uint64(r), got)
		}
	}
	all := Rights(0)
	for i := range rightNames {
		if rightNames[i] != "" {
			all |= 1 << i
		}
	}
	if all != Rights(caps.RightsAll) {
		t.Errorf("SDK rights %#x, kernel rights %#x", uint64(all), uint64(caps.RightsAll))
	}
	if RightsReadOnlyFile&Rights(caps.RightsWriteMask) != 0 || RightsReadOnlyDir&Rights(caps.RightsWriteMask) != 0 {
		t.Error("a read-only rights set holds a right that modifies")
	}
}
